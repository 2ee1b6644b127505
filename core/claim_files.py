"""Which files a run's claims are in: a folder stands for every Parquet file under it, in
path order (which fixes the row numbering). Only the standard library, so that `yibao
explain` can list the files and start reading their ids before the rest of the core is
imported (core/key_mates.py); ``core/sources.py`` opens and checks them."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import YibaoError

IPC_SUFFIXES = (".arrow", ".ipc", ".feather")
MEMORY_FACTOR = 15  # peak bytes of an in-memory settle per byte of Parquet-uncompressed
# claims (measured: 1M generated claims, 60 MB in Parquet pages, peak RSS 0.87 GB); here, not
# in core/sources.py, so that the settle command's read-ahead (core/read_ahead.py) decides
# as the run will without importing the core


class InputError(YibaoError, ValueError):
    """A claims file cannot be read (exit 2)."""


def input_files(inputs) -> list:
    """The claim files of ``inputs`` (a path or a list): a folder stands for every Parquet
    file under it; all files sorted by path, which fixes the row numbering."""
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(f for f in p.rglob("*.parquet") if f.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"no claims file or folder at {p}")
    if not found:
        raise InputError(f"no Parquet files under {', '.join(map(str, paths))}")
    return sorted(found, key=lambda f: f.as_posix())


def default_memory_limit() -> int:
    """Half the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):
        return 4 << 30

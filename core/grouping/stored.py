"""The kernel's compiled CHS-DRG tables kept on disk (issue 14, c18): a run that groups with
the kernel loads them (≈ 6 MB, a few ms) instead of reading the tables' 2.6 MB of JSON and
compiling them (≈ 0.2 s of CPU for the national 1.1 tables, every run of Jinhua or Shanghai).

An entry is found by a digest (``entry_key``) of the sha256 of the folder's ``scheme.json``
and ``codes.json`` (hashed at every use, ≈ 2 ms; once the tables object has parsed them, the
digests of the bytes it parsed, so arrays compiled from tables read earlier are never filed
under files changed since), the MDC order as the grouper gives
it, yibao's version and the size and modification time of this package's own files (the
compiler of the arrays, the kernel's code index: an editable install changes code without a
version bump), numpy's version and the Python's. Its bytes are stored with their sha256
(``disk_cache.read_checked``): an entry that is truncated or damaged reads as missing. Any
entry that is missing, stale or unreadable is compiled again and replaced; a folder that
cannot be written (read-only, missing, no home) leaves the run compiling as before, silently.
Where: ``disk_cache.cache_dir()/drg``; off with ``YIBAO_NO_CACHE=1``.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from yibao.core import disk_cache
from yibao.core.grouping.tables import SOURCE_FILES, source_digest

FORMAT = "yibao.drg-compiled/1"


def stored_or_built(tables, mdc_order, build) -> dict:
    """The compiled arrays of ``tables`` (a ``FolderTables``) under ``mdc_order`` (None: the
    scheme's), from disk when an entry for these files, this order and this code is there,
    else ``build()``, then stored for the next run under the digests of the bytes the build
    compiled (``FolderTables.digests``)."""
    if not disk_cache.enabled():
        return build()
    try:
        found = disk_cache.read_checked(*_entry(_digests(tables), mdc_order))
    except Exception:  # noqa: BLE001 (unreadable tables, no cache folder: build says why)
        return build()
    if isinstance(found, dict):
        return found
    compiled = build()
    built = tables.read_digests()  # the build read the fields: the bytes it compiled
    if built is not None:
        disk_cache.write_checked(*_entry(built, mdc_order), compiled)
    return compiled


def _digests(tables) -> tuple:
    """The digests of the tables' bytes: those already parsed, else the files' now (a hit
    then stands for the files as they are; the tables read them later if asked)."""
    parsed = tables.read_digests()
    if parsed is not None:
        return parsed
    return tuple(source_digest((Path(tables.folder) / name).read_bytes())
                 for name in SOURCE_FILES)


def _entry(digests: tuple, mdc_order) -> tuple:
    """(the entry's file, the header it must carry)."""
    key = entry_key(digests, mdc_order)
    return disk_cache.cache_dir() / "drg" / f"{key}.pickle", (FORMAT, key)


def entry_key(digests: tuple, mdc_order) -> str:
    """The digest naming the entry (module docstring)."""
    import numpy
    from yibao.core import __version__
    parts = (FORMAT, tuple(digests), mdc_order, __version__, code_stamp(), numpy.__version__,
             sys.version, disk_cache.PROTOCOL)
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:40]


def code_stamp() -> tuple:
    """(name, size, mtime_ns) of this package's files (not its data, not bytecode)."""
    here = Path(__file__).parent
    with os.scandir(here) as entries:
        return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns)
                            for e in entries if e.is_file()))

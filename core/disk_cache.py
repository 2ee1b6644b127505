"""Where yibao keeps what it computed once and can compute again: the compiled-policy cache
(``dsl/policy_cache.py``) and the compiled CHS-DRG tables (``core/grouping/stored.py``).

Folder: ``$YIBAO_CACHE_DIR``, else ``$XDG_CACHE_HOME/yibao``, else ``~/.cache/yibao``. Off
with ``YIBAO_NO_CACHE`` set to anything but empty or ``0``. Clearing it is deleting the
folder. An entry is a pickle, loaded as code is: the folder must be writable only by those
whose code you would run (as ``__pycache__`` is).

``read_checked`` and ``write_checked`` keep one value per file with a sha256 of its bytes, so
an entry that is truncated, damaged or from another format reads as missing (the caller
computes the value again), never as a wrong value. Writing goes through a temporary file
renamed into place, so a reader never sees half an entry and processes racing to write one
leave one whole entry. Only the standard library is imported.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from pathlib import Path

NO_CACHE_ENV = "YIBAO_NO_CACHE"
PROTOCOL = pickle.HIGHEST_PROTOCOL


def cache_dir() -> Path:
    """``$YIBAO_CACHE_DIR``, else ``$XDG_CACHE_HOME/yibao``, else ``~/.cache/yibao``."""
    own = os.environ.get("YIBAO_CACHE_DIR")
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "yibao" if xdg else Path.home() / ".cache" / "yibao"


def enabled() -> bool:
    """False when ``YIBAO_NO_CACHE`` is set to anything but empty or ``0``."""
    return os.environ.get(NO_CACHE_ENV, "") in ("", "0")


def read_checked(path: Path, header: tuple):
    """The value stored at ``path`` under ``header`` (a format name and a key), or None when
    the file is missing, unreadable, another entry's, truncated or damaged (its bytes no
    longer hash to the digest stored with them)."""
    try:
        with open(path, "rb") as f:
            stored_header, digest, data = pickle.load(f)
        if stored_header != header or hashlib.sha256(data).digest() != digest:
            return None
        return pickle.loads(data)
    except Exception:  # whatever a damaged or foreign file raises: the caller recomputes
        return None


def write_checked(path: Path, header: tuple, value) -> bool:
    """Store ``value`` at ``path`` (see ``read_checked``); False, silently, when it cannot
    be pickled or the folder cannot be written (read-only, missing, full)."""
    try:
        data = pickle.dumps(value, protocol=PROTOCOL)
    except Exception:  # PicklingError, TypeError …: the value is simply not stored
        return False
    return write_atomically(path, (header, hashlib.sha256(data).digest(), data)) is None


def write_atomically(path: Path, entry) -> OSError | None:
    """Pickle ``entry`` into a temporary file beside ``path`` and rename it into place; the
    OSError when the folder cannot be written (nothing is left behind), else None."""
    import tempfile
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(entry, f, protocol=PROTOCOL)
        os.replace(temp, path)
        temp = None
        return None
    except OSError as exc:
        return exc
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)

"""The compiled-policy cache: a command that settles, explains or prints a policy it compiled
before loads the pickled ``Policy`` instead of parsing, checking and lowering it again.

Where: ``$YIBAO_CACHE_DIR``, else ``$XDG_CACHE_HOME/yibao``, else ``~/.cache/yibao``; one
file per policy under ``policies/``. Off with ``YIBAO_NO_CACHE=1`` or a command's
``--no-cache``; ``yibao check``, ``test``, ``fmt`` and the studio always compile (they exist
to show diagnostics). Clearing it is deleting the folder.

An entry is found by a digest of what the compile depends on besides the policy's own
files (``entry_key``): the policy's path as given (the plan's ``file:line`` provenance is
written with it) and the working folder when that path is relative, yibao's version and the
size and modification time of every file of its code (``core/``, ``dsl/``, ``plugins/``: an
editable install changes code without a version bump), the registry's declarations the
compiler reads with the distributions and versions of the plugins that made them (and the
stats of the modules holding their code), the Python and the pickle protocol. The entry
holds the files the compile read, each with the sha256 of its bytes as the compiler read
them (``source.files_read``: the policy files, its CSV and .xlsx tables), the folder's
``*.yb`` names, the warnings the compile issued and the pickled policy. It is used only when
every one of those files still has that digest and the folder the same versions.

Never a reason for a command to fail: an entry that is missing, stale, damaged or from
another yibao is compiled again (silently) and replaced; an entry that cannot be written
(a read-only home, a full disk) leaves the command as it was and prints one line on stderr
per process naming the folder. Entries are written to a temporary file in the same folder
and renamed into place, so a reader never sees half an entry and two processes writing the
same entry leave one whole one.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
import warnings
from pathlib import Path

from yibao.core import disk_cache

FORMAT = "yibao.policy-cache/1"
PROTOCOL = disk_cache.PROTOCOL
NO_CACHE_ENV = disk_cache.NO_CACHE_ENV
_CODE_PACKAGES = ("yibao.core", "yibao.dsl", "yibao.plugins")
_told_unwritable = False  # one line per process when the folder cannot be written
_WARNED: dict = {}  # the replayed warnings' "once per location" registry (warnings module)


def cache_dir() -> Path:
    """``$YIBAO_CACHE_DIR``, else ``$XDG_CACHE_HOME/yibao``, else ``~/.cache/yibao``: the one
    folder of yibao's caches (``core/disk_cache.py``; the compiled CHS-DRG tables live there
    too)."""
    return disk_cache.cache_dir()


def enabled() -> bool:
    """False when ``YIBAO_NO_CACHE`` is set to anything but empty or ``0``."""
    return disk_cache.enabled()


def cached_compile(where: Path, registry, compile):
    """``compile()`` (the folder's or file's ``Policy`` under ``registry``), or the entry it
    left last time when nothing it read has changed. Its warnings are issued either way,
    in the order the compile issued them, as ``warnings.warn_explicit`` of what it recorded
    (so a hit prints exactly what a compile prints)."""
    try:
        key = entry_key(where, registry)
    except OSError:  # yibao's own folders unreadable: nothing to key an entry by
        return compile()
    path = cache_dir() / "policies" / f"{key}.pickle"
    found = _read_entry(path, key, where)
    if found is not None:
        policy, warned = found
        replay(warned)
        return policy
    from .source import files_read
    try:
        with files_read() as read, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            policy = compile()
    finally:  # a version's warnings are shown even when another version fails to compile
        warned = tuple(_recorded(w) for w in caught)
        replay(warned)
    _store(path, key, where, tuple(dict.fromkeys(read)), warned, policy)
    return policy


def _store(path: Path, key: str, where: Path, read: tuple, warned: tuple, policy) -> None:
    """Write the entry; a policy that does not pickle (a plugin's node holding a lambda)
    is simply not cached."""
    try:
        data = pickle.dumps(policy, protocol=PROTOCOL)
    except Exception:  # PicklingError, TypeError, AttributeError …: whatever pickle raises
        return
    _write_entry(path, (FORMAT, key, read, _versions_in(where), warned, data))


# -- the key ----------------------------------------------------------------------------------

def entry_key(where: Path, registry) -> str:
    """The digest naming the entry (module docstring): everything but the policy's files."""
    parts = (FORMAT, str(where), "" if Path(where).is_absolute() else os.getcwd(),
             _yibao_version(), code_stamp(), registry_stamp(registry), sys.version,
             sys.implementation.cache_tag, sys.prefix, PROTOCOL)
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:40]


def _yibao_version() -> str:
    from yibao.core import __version__
    return __version__


def code_stamp() -> tuple:
    """(path, size, mtime_ns) of every file of yibao's packages but bytecode: ~160 stats,
    about a millisecond."""
    import importlib
    found = []
    for name in _CODE_PACKAGES:
        for folder in importlib.import_module(name).__path__:
            _stat_tree(folder, found)
    return tuple(found)


def _stat_tree(folder: str, found: list) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    _stat_tree(entry.path, found)
            elif not entry.name.endswith(".pyc"):
                st = entry.stat()
                found.append((entry.path, st.st_size, st.st_mtime_ns))


def registry_stamp(registry) -> tuple:
    """What the compiler reads of ``registry`` (functions, keys, groupers, adjustments and
    the plugins' distributions), callables by name, plus the stats of the modules their code
    is in (a plugin's declaration or compile-time code edited in place, no version bump)."""
    modules: set = set()
    declared = tuple(_stable(getattr(registry, part), modules)
                     for part in ("functions", "keys", "groupers", "adjustments",
                                  "distributions"))
    return declared, tuple(_module_stat(name) for name in sorted(modules))


def _stable(value, modules: set):
    """``value`` as a repr that is the same in every process: callables and classes by
    module and name (their module noted in ``modules``), records by their compared fields."""
    if isinstance(value, dict):
        return tuple((k, _stable(v, modules)) for k, v in sorted(value.items(), key=repr))
    if isinstance(value, (tuple, list)):
        return tuple(_stable(v, modules) for v in value)
    if isinstance(value, (set, frozenset)):  # iteration order varies with the hash seed
        return tuple(sorted((_stable(v, modules) for v in value), key=repr))
    if isinstance(value, type) or callable(value):
        _note_modules(value, modules)
        module = getattr(value, "__module__", None) or "?"
        return f"{module}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    compared = getattr(type(value), "_compared", None)
    if compared is not None and hasattr(value, "__dict__"):  # a core.records record
        for name in set(type(value)._fields) - set(compared):  # an impl: its module only
            _stable(getattr(value, name), modules)
        return (type(value).__qualname__,
                tuple((n, _stable(getattr(value, n), modules)) for n in compared))
    return repr(value)


def _note_modules(code, modules: set) -> None:
    """The module of a callable or class and of what it wraps (``__wrapped__``: the
    registry wraps a plugin's functions in ``plugins.decls.exact_results``)."""
    for _ in range(8):  # a wrapper of a wrapper …, never a cycle
        modules.add(getattr(code, "__module__", None) or "?")
        code = getattr(code, "__wrapped__", None)
        if code is None:
            return


def _module_stat(name: str) -> tuple:
    """(module, file, size, mtime_ns), or (module,) for one without a file."""
    file = getattr(sys.modules.get(name), "__file__", None)
    try:
        st = os.stat(file)
    except (TypeError, OSError):
        return (name,)
    return (name, file, st.st_size, st.st_mtime_ns)


# -- what the compile read --------------------------------------------------------------------

def _versions_in(where: Path) -> tuple:
    """The ``*.yb`` names of a folder (a version added or removed changes the policy)."""
    where = Path(where)
    return tuple(sorted(p.name for p in where.glob("*.yb"))) if where.is_dir() else ()


def _unchanged(read: tuple) -> bool:
    """Every file the compile read still holds the bytes it read (sha256)."""
    for path, digest in read:
        try:
            data = Path(path).read_bytes() if os.path.isfile(path) else None
        except OSError:
            return False
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            return False
    return True


# -- entries ----------------------------------------------------------------------------------

def _read_entry(path: Path, key: str, where: Path):
    """(policy, warnings) of a valid entry, else None (missing, stale or damaged)."""
    try:
        with open(path, "rb") as f:
            fmt, stored_key, read, versions, warned, policy = pickle.load(f)
        if fmt != FORMAT or stored_key != key or versions != _versions_in(where):
            return None
        if not _unchanged(read):
            return None
        return pickle.loads(policy), warned
    except Exception:  # whatever a damaged or foreign file raises: compile instead
        return None


def _write_entry(path: Path, entry: tuple) -> None:
    """Write ``entry`` atomically (a temporary file renamed into place); one line on stderr,
    once per process, when the folder cannot be written."""
    failed = disk_cache.write_atomically(path, entry)
    if failed is not None:
        _tell_unwritable(path.parent, failed)


def _tell_unwritable(folder: Path, exc: OSError) -> None:
    global _told_unwritable
    if _told_unwritable:
        return
    _told_unwritable = True
    reason = exc.strerror or type(exc).__name__
    print(f"yibao: compiled policy not cached ({folder}: {reason}); set YIBAO_CACHE_DIR to "
          f"a writable folder, or {NO_CACHE_ENV}=1", file=sys.stderr)


# -- warnings ---------------------------------------------------------------------------------

def _recorded(w) -> tuple:
    """A caught warning as plain data: (text, category module, category name, file, line)."""
    return (str(w.message), w.category.__module__, w.category.__qualname__, w.filename,
            w.lineno)


def replay(warned) -> None:
    """Issue the recorded warnings again, through the current filters, from where the
    compile issued them."""
    for text, module, name, filename, lineno in warned:
        warnings.warn_explicit(text, _category(module, name), filename, lineno,
                               registry=_WARNED)


def _category(module: str, name: str) -> type:
    import importlib
    try:
        category = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return UserWarning
    return category if isinstance(category, type) and issubclass(category, Warning) \
        else UserWarning

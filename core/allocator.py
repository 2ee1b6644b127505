"""The C allocator as a settlement run's process wants it: freed memory kept for reuse.

A run allocates its large arrays (numpy's columns, key ids, the order, the kernel's outputs,
the gathers' buffers: 2 MB to 32 MB each at 2M claims) through glibc's ``malloc``. By default
glibc serves a block that large with its own ``mmap`` and gives it back with ``munmap`` when
it is freed (its threshold starts at 128 KiB and only rises as such blocks are freed), so the
next array of that size faults fresh pages in again, each zeroed by the kernel. On a virtual
machine that reports freed memory to its host (virtio-balloon free page reporting, as the
benchmark machine does), pages given back are dropped by the host and every fault on them is
the host's too: `yibao settle` of 2M claims spent 0.65-1.9 s of *system* time, most of it
zeroing pages (``perf``: ``clear_page_erms`` 27 % of the process's samples), the most right
after another process (the DuckDB script) had freed gigabytes.

``keep_freed_memory()`` sets glibc's mmap threshold to its largest (32 MiB: blocks up to it
come from the heap and are reused when freed) and its trim threshold to 2 GiB (the heap's
free top is not given back), measured in benchmarks/README.md "w17". It changes only how
memory is reused, never what is computed. The settle command calls it once its read-ahead
knows the run settles in memory (dsl/commands/settle.py, core/read_ahead.py): a run in
partitions keeps glibc's defaults, since kept blocks raise the process's peak (measured with
``--memory-limit 300M``: 336-353 MB → 378-380 MB). Elsewhere than glibc (musl, macOS) it
does nothing.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes an int: 2 GiB, far above a run's free top


def keep_freed_memory() -> bool:
    """Have glibc keep and reuse freed blocks up to 32 MiB instead of unmapping them (module
    docstring); whether it could (False when the C library is not glibc)."""
    if not _glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def _glibc() -> bool:
    """Whether the C library is glibc (asked of the library itself: cheap, unlike
    ``platform.libc_ver``, which reads the interpreter's binary)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False

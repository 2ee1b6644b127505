"""Small pages while yibao settles in a caller's process (issue 14, session 9).

numpy advises transparent huge pages (``madvise``) for every array of 4 MiB or more, so the
first touch of such an array zeroes a whole 2 MiB page. On the benchmark VM a fresh huge
page costs more system time than the 4 KiB pages it replaces; the ``yibao`` program turns the
advice off before numpy is imported (``dsl/cli.small_pages``: ``NUMPY_MADVISE_HUGEPAGE=0``),
which a caller of ``engine.settle`` in its own process never gets. ``small_pages()`` turns
numpy's advice off for the duration of a settle and restores the caller's setting when the
last settle running in the process ends (settles on several threads share one switch).
Where the user set ``NUMPY_MADVISE_HUGEPAGE`` (the program does too) it is left alone, and
where numpy has no switch (not Linux, or a numpy without it) nothing is done. The advice only
places memory: results never depend on it.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_held = [0, None]  # settles running with the advice off; the advice before the first of them


def advice_switch():
    """numpy's ``_set_madvise_hugepage(on) -> previous``, or None where it has none."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:
        try:  # numpy 1
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return None
    return _set_madvise_hugepage


@contextmanager
def small_pages():
    """numpy's huge-page advice off inside the block (see the module docstring)."""
    switch = None if "NUMPY_MADVISE_HUGEPAGE" in os.environ else advice_switch()
    if switch is None:
        yield
        return
    with _lock:
        if _held[0] == 0:
            _held[1] = switch(False)
        _held[0] += 1
    try:
        yield
    finally:
        with _lock:
            _held[0] -= 1
            if _held[0] == 0:
                switch(_held[1])

"""Start-up: the ``yibao`` program runs numpy's OpenBLAS on one thread (issue 14, c18).

OpenBLAS starts a pool of spinning threads, one per core, when numpy is imported; yibao does
no linear algebra, so the program sets ``OPENBLAS_NUM_THREADS=1`` before numpy is imported
(``cli.one_blas_thread``), unless the user set it. A fresh process runs ``cli.entry`` as the
console script does, then imports numpy at exit and counts its own threads (Linux's
``/proc/self/task``)."""
from __future__ import annotations

import os

import pytest

from .conftest import program_line

AS_PROGRAM = """
import atexit, os, sys
sys.argv = ["yibao", "check", sys.argv[1]]

def threads_with_numpy():
    import numpy  # noqa: F401  (what a command importing numpy gets)
    print("THREADS", len(os.listdir("/proc/self/task")), os.environ["OPENBLAS_NUM_THREADS"])

atexit.register(threads_with_numpy)
from yibao.dsl import cli
cli.entry()
"""


def threads_and_setting(**env) -> tuple:
    """(threads after numpy's import, OPENBLAS_NUM_THREADS) in a fresh `yibao check`."""
    threads, setting = program_line(AS_PROGRAM, "THREADS", "OPENBLAS_NUM_THREADS", **env)
    return int(threads), setting


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_the_program_imports_numpy_without_a_blas_thread_pool():
    assert threads_and_setting() == (1, "1")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no pool on one core")
def test_a_thread_count_the_user_set_is_kept():
    threads, setting = threads_and_setting(OPENBLAS_NUM_THREADS="2")
    assert setting == "2" and threads == 2  # the main thread and OpenBLAS's second

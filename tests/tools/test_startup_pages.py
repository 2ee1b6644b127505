"""Start-up: the ``yibao`` program turns off numpy's huge-page advice (issue 14, session 9).

numpy madvises transparent huge pages on every array of 4 MiB or more; on the benchmark VM a
fresh huge page cost more system time than the 4 KiB pages it replaces (benchmarks/README.md,
"session 9: small pages"), so the program sets ``NUMPY_MADVISE_HUGEPAGE=0`` before numpy is
imported (``cli.small_pages``), unless the user set it. A fresh process runs ``cli.entry`` as
the console script does, then asks numpy at exit whether it advises huge pages."""
from __future__ import annotations

import sys

import pytest

from .conftest import program_line

AS_PROGRAM = """
import atexit, os, sys
sys.argv = ["yibao", "check", sys.argv[1]]

def advice():
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _set_madvise_hugepage
    print("HUGEPAGE", int(_set_madvise_hugepage(False)), os.environ["NUMPY_MADVISE_HUGEPAGE"])

atexit.register(advice)
from yibao.dsl import cli
cli.entry()
"""


def advice_and_setting(**env) -> tuple:
    """(numpy advises huge pages, NUMPY_MADVISE_HUGEPAGE) in a fresh `yibao check`."""
    advised, setting = program_line(AS_PROGRAM, "HUGEPAGE", "NUMPY_MADVISE_HUGEPAGE", **env)
    return bool(int(advised)), setting


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="numpy advises only on Linux")
def test_the_program_imports_numpy_without_huge_page_advice():
    assert advice_and_setting() == (False, "0")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="numpy advises only on Linux")
def test_a_setting_the_user_chose_is_kept():
    assert advice_and_setting(NUMPY_MADVISE_HUGEPAGE="1") == (True, "1")

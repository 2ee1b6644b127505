"""Start-up: the ``yibao`` program turns off numpy's huge-page advice (issue 14, session 9).

numpy madvises transparent huge pages on every array of 4 MiB or more; on the benchmark VM a
fresh huge page cost more system time than the 4 KiB pages it replaces (benchmarks/README.md,
"session 9: small pages"), so the program sets ``NUMPY_MADVISE_HUGEPAGE=0`` before numpy is
imported (``cli.small_pages``), unless the user set it. A fresh process runs ``cli.entry`` as
the console script does, then asks numpy at exit whether it advises huge pages."""
from __future__ import annotations

import os
import sys
from pathlib import Path

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


# The same program, asked instead whether the process may still get transparent huge pages
# once pyarrow's pool (mimalloc) has allocated: mimalloc reads MIMALLOC_ALLOW_THP then, and
# with 0 turns them off for the process (prctl PR_SET_THP_DISABLE; PR_GET_THP_DISABLE = 42).
AS_PROGRAM_ARROW = """
import atexit, ctypes, os, sys
sys.argv = ["yibao", "check", sys.argv[1]]

def thp():
    import pyarrow as pa
    buf = pa.allocate_buffer(1 << 24)  # mimalloc's first arena, with its options read
    disabled = ctypes.CDLL(None, use_errno=True).prctl(42, 0, 0, 0, 0)
    print("THP", pa.default_memory_pool().backend_name, disabled,
          os.environ["MIMALLOC_ALLOW_THP"])

atexit.register(thp)
from yibao.dsl import cli
cli.entry()
"""


def mimalloc_knows_allow_thp() -> bool:
    """Whether the mimalloc inside this pyarrow has the ``allow_thp`` option (mimalloc
    2.1.8 / 3.0 on; older ones ignore the variable). Its option names are strings in the
    library, which is how this asks."""
    import pyarrow as pa
    libs = [Path(pa.__file__).parent / n for n in os.listdir(Path(pa.__file__).parent)
            if n.startswith("libarrow.so")]
    return any(b"allow_thp\0" in lib.read_bytes() for lib in libs)


def arrow_pages(**env) -> tuple:
    """(pool backend, THP disabled for the process, MIMALLOC_ALLOW_THP) in a fresh `yibao
    check` after pyarrow allocated."""
    backend, disabled, setting = program_line(AS_PROGRAM_ARROW, "THP", "MIMALLOC_ALLOW_THP",
                                              **env)
    return backend, int(disabled), setting


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl THP is Linux's")
def test_the_program_keeps_arrows_pool_off_huge_pages():
    backend, disabled, setting = arrow_pages()
    assert setting == "0"
    if backend == "mimalloc" and mimalloc_knows_allow_thp():
        assert disabled == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl THP is Linux's")
def test_arrows_huge_pages_kept_where_the_user_asks():
    assert arrow_pages(MIMALLOC_ALLOW_THP="1")[1:] == (0, "1")

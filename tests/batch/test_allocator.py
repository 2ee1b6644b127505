"""A settle process keeps the memory it frees for reuse (core/allocator.py, issue 14, w17):
after ``keep_freed_memory`` a freed 16 MB array's pages stay with the process and the next
array of that size faults none in again, where glibc's default gives them back to the kernel;
the settle command sets it for a run in memory, not for one in partitions."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from yibao.core import allocator
from yibao.core.generate import generate_claims
from yibao.dsl import cli

CITY = Path(__file__).resolve().parents[2] / "city_configs" / "reference"
glibc_only = pytest.mark.skipif(not allocator._glibc(), reason="mallopt is glibc's")

PROBE = """
import resource, sys
import numpy as np
from yibao.core.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(2_000_000, np.int64)  # 16 MB, every page written
del a
after_free, before = rss(), faults()
b = np.ones(2_000_000, np.int64)
print(kept, after_free, faults() - before)
"""


def _probe(mode: str) -> tuple:
    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="0")  # 4 KiB pages: faults count pages
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    return out[0], int(out[1]), int(out[2])


@glibc_only
def test_freed_arrays_are_reused_not_faulted_in_again():
    kept, _, faults_kept = _probe("keep")
    _, _, faults_default = _probe("default")
    assert kept == "True"
    assert faults_default > 3_000  # 16 MB faulted in again: ~3,900 pages
    assert faults_kept < 500  # the freed block reused


@glibc_only
def test_freed_memory_stays_with_the_process():
    _, rss_kept, _ = _probe("keep")
    _, rss_default, _ = _probe("default")
    assert rss_kept - rss_default > 12 << 20


def test_not_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: False)
    assert allocator.keep_freed_memory() is False


@pytest.mark.parametrize("extra, kept", [((), True), (("--memory-limit", "1K"), False),
                                         (("--partitions", "2"), False)])
def test_an_in_memory_settle_keeps_freed_memory(extra, kept, monkeypatch, tmp_path):
    """The settle command has the allocator keep freed memory when its run settles in memory
    (the read-ahead's decision), not in partitions, whether chosen by the memory limit or by
    ``--partitions``."""
    monkeypatch.delenv("YIBAO_THREADS", raising=False)
    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1) or True)
    pq.write_table(generate_claims(300, seed=2), tmp_path / "c.parquet")
    code = cli.main(["settle", str(CITY), str(tmp_path / "c.parquet"), "--out",
                     str(tmp_path / "out"), "--no-progress", *extra])
    assert code in (0, 1)
    assert bool(calls) == kept

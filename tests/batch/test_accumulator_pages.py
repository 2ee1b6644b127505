"""The kernel's accumulators are written when they are made (issue 14, w18): the kernel reads
a row before it writes it, and an untouched page of ``np.zeros`` read first is the shared
zero page, which the first write then faults a second time. Made written, reading then
writing the whole block takes no fault at all."""
from __future__ import annotations

import resource

import numpy as np

from yibao.core.lower import CACHE_LINE, Program


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def test_accumulators_are_zero_aligned_and_take_no_fault_when_written_after_a_read(plan):
    program = Program(plan, 0, key_ids=[np.zeros(0, np.int64)], key_counts=[1 << 20])
    program.widths = [8]  # 8 slots per key id: 64 MiB of accumulators
    (block,) = program.accumulator_rows()
    assert block.ctypes.data % CACHE_LINE == 0 and len(block) == 8 << 20
    page = 4096 // 8
    before = _faults()
    assert not block[::page].any()  # the kernel's first touch of each page: a read
    block[::page] = 1  # then its write
    assert _faults() - before < 16  # with np.zeros: one fault per page (or per huge page)
    assert block[::page].all()

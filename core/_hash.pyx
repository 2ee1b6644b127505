# cython: language_level=3, boundscheck=False, wraparound=False
"""FNV-1a 64-bit hashes of Arrow string values, for partitioning claims into buckets.

The hash is part of yibao's output contract (it fixes the row order of results, see
core/partition.py), so it is written out here rather than borrowed from a library whose hash
may change between versions."""
from libc.stdint cimport int64_t, uint64_t, uint8_t

import numpy as np

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL


cdef void _fnv(const int64_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] valid,
               uint64_t[::1] out) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef uint64_t h
    for i in range(out.shape[0]):
        if not valid[i]:
            out[i] = 0  # null: every null hashes to 0
            continue
        h = FNV_OFFSET
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ data[j]) * FNV_PRIME
        out[i] = h


def fnv1a(offsets, data, valid):
    """uint64 hash per value from int64 ``offsets`` (n + 1), uint8 ``data`` and a uint8
    ``valid`` mask (n); a null (valid 0) hashes to 0."""
    n = len(valid)
    out = np.empty(n, dtype=np.uint64)
    if len(data) == 0:
        data = np.zeros(1, dtype=np.uint8)
    _fnv(np.ascontiguousarray(offsets, dtype=np.int64), np.ascontiguousarray(data, np.uint8),
         np.ascontiguousarray(valid, dtype=np.uint8), out)
    return out

# cython: language_level=3, boundscheck=False, wraparound=False
"""FNV-1a 64-bit hashes of Arrow string values, for partitioning claims into buckets.

The hash is part of yibao's output contract (it fixes the row order of results, see
core/partition.py), so it is written out here rather than borrowed from a library whose hash
may change between versions."""
from libc.stdint cimport int64_t, uint64_t, uint8_t

from yibao.core._fnv cimport fnv1a_bytes

import numpy as np
import pyarrow as pa


cdef void _fnv(const int64_t[::1] offsets, const uint8_t[::1] data, const uint8_t[::1] valid,
               uint64_t[::1] out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(out.shape[0]):
        if not valid[i]:
            out[i] = 0  # null: every null hashes to 0
            continue
        out[i] = fnv1a_bytes(&data[0] + offsets[i], offsets[i + 1] - offsets[i])


def plain_strings(values, string_type):
    """One contiguous array of ``string_type`` (pa.string() or pa.large_string()): chunks
    combined, dictionaries decoded, other types cast. The one reader of string buffers that
    the bucket hash (core/partition.py) and the id tables (core/_ids.pyx) share."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.type != string_type:
        values = values.cast(string_type)
    return values


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

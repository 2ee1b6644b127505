# cython: language_level=3, boundscheck=False, wraparound=False
"""FNV-1a 64-bit hashes of Arrow string values, for partitioning claims into buckets.

The hash is part of yibao's output contract (it fixes the row order of results, see
core/partition.py), so it is written out here rather than borrowed from a library whose hash
may change between versions."""
from libc.stdint cimport int32_t, int64_t, uint64_t, uint8_t

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


# -- the hashes of a column read where it is -----------------------------------------------------
# ``fnv1a`` above takes one contiguous large_string copy of the values (partition.hash_strings
# made it: every chunk combined and cast, int64 offsets, a validity array), which for a run's
# 2M person ids was most of the bucket step before ``prepare`` (issue 14, m18). ``hashes_of``
# and ``buckets_of`` read each string or large_string chunk's own buffers instead.

ctypedef fused hashed_t:  # what a chunk's hashes are written as: the hash, or its bucket
    uint64_t
    int32_t


cdef void _fnv_chunk(const uint8_t* valid, int64_t bit_offset, const void* offsets,
                     bint large, const uint8_t* data, int64_t n, uint64_t nbuckets,
                     hashed_t* out) noexcept nogil:
    """FNV-1a of the ``n`` values of one chunk (null: 0) into ``out``: the hash (uint64), or
    the hash modulo ``nbuckets`` (int32)."""
    cdef int64_t i, a, b
    cdef uint64_t h
    for i in range(n):
        if valid != NULL and not (valid[(bit_offset + i) >> 3] >> ((bit_offset + i) & 7)) & 1:
            out[i] = 0
            continue
        if large:
            a = (<const int64_t*>offsets)[i]
            b = (<const int64_t*>offsets)[i + 1]
        else:
            a = (<const int32_t*>offsets)[i]
            b = (<const int32_t*>offsets)[i + 1]
        h = fnv1a_bytes(data + a, b - a)
        if hashed_t is uint64_t:
            out[i] = h
        else:
            out[i] = <int32_t>(h % nbuckets)


def _text_chunks(values) -> list:
    """The chunks of ``values`` (an array or chunked array) as string or large_string arrays:
    those already so as they are, any other (a dictionary, string_view, numbers) cast, chunk
    by chunk, as ``plain_strings`` would cast the whole column (the same values)."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary_decode()
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.large_string())
        out.append(chunk)
    return out


cdef uint64_t _address(buf):
    return <uint64_t>buf.address if buf is not None and buf.size else 0


def hashes_of(values):
    """uint64 FNV-1a of every value of ``values`` (string-like, or cast to string; null: 0),
    what ``fnv1a`` gives for ``plain_strings(values)``, read chunk by chunk in place."""
    out = np.empty(len(values), dtype=np.uint64)
    cdef uint64_t[::1] view = out
    if len(out):
        _hash_chunks(values, 0, &view[0])
    return out


def buckets_of(values, uint64_t nbuckets):
    """int32 bucket of every value: its ``hashes_of`` modulo ``nbuckets`` (null: bucket 0),
    each bucket written as its hash is made: no uint64 array of the hashes first (16 MB of
    fresh pages at 2M claims, on the run's one thread before ``prepare``: issue 14, m20)."""
    if nbuckets == 0 or nbuckets > (<uint64_t>1 << 31):
        raise ValueError(f"buckets_of: {nbuckets} buckets (1 to 2**31)")
    out = np.empty(len(values), dtype=np.int32)
    cdef int32_t[::1] view = out
    if len(out):
        _hash_chunks(values, nbuckets, &view[0])
    return out


cdef void _hash_chunks(values, uint64_t nbuckets, hashed_t* out) except *:
    """``_fnv_chunk`` over every chunk of ``values`` (``_text_chunks``), in place, into
    ``out`` (as long as ``values``)."""
    cdef int64_t at = 0, length
    cdef const uint8_t* valid
    cdef const void* offsets
    cdef const uint8_t* data
    cdef uint8_t nothing = 0
    cdef bint large
    cdef int64_t bit_offset, width
    for chunk in _text_chunks(values):
        length = len(chunk)
        if length == 0:
            continue
        validity, offs, raw = chunk.buffers()
        large = pa.types.is_large_string(chunk.type)
        width = 8 if large else 4
        valid = <const uint8_t*><size_t>_address(validity) if chunk.null_count else NULL
        offsets = <const void*><size_t>(offs.address + width * chunk.offset)
        data = <const uint8_t*><size_t>_address(raw) if _address(raw) else &nothing
        bit_offset = chunk.offset
        with nogil:
            _fnv_chunk(valid, bit_offset, offsets, large, data, length, nbuckets, out + at)
        at += length

# cython: language_level=3
"""Hashing of id strings (claim ids, person ids) straight from Arrow buffers, nogil.

``dense_ids`` numbers the distinct values of a string array 0, 1, … (in order of first
appearance) and ``duplicate_mask`` flags every row whose value appears more than once. Both
replace a general-purpose ``dictionary_encode`` that also builds a dictionary array nobody
reads: an open-addressing table of row numbers, keyed by a 64-bit hash, with the bytes compared
on a hash match, so the result is exact whatever the hash does. Null rows get id -1 and are
never duplicates.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

from yibao.core._fnv cimport fnv1a_bytes

import numpy as np
import pyarrow as pa

from yibao.core._hash import plain_strings

cdef extern from "Python.h":
    void* PyMem_RawMalloc(size_t n) nogil
    void PyMem_RawFree(void* p) nogil


cdef inline uint64_t hash_bytes(const uint8_t* p, int64_t n) noexcept nogil:
    """FNV-1a 64 (core/_fnv.pxd), then a final avalanche so the low bits (the table slot)
    are well mixed."""
    cdef uint64_t h = fnv1a_bytes(p, n)
    h ^= h >> 33
    h *= 0xff51afd7ed558ccdULL
    h ^= h >> 33
    return h


cdef inline bint is_valid(const uint8_t* bitmap, int64_t i) noexcept nogil:
    return bitmap == NULL or (bitmap[i >> 3] >> (i & 7)) & 1


cdef int64_t hash_rows(const int32_t* offsets, const uint8_t* data, const uint8_t* bitmap,
                       int64_t bit_offset, int64_t n, int64_t* ids, uint8_t* dup) noexcept nogil:
    """Fill ids (dense, first appearance) and dup; return the number of distinct values."""
    cdef int64_t cap = 16, mask, slot, i, j, count = 0, a, la
    while cap < 2 * n:
        cap <<= 1
    mask = cap - 1
    cdef int64_t* table = <int64_t*>PyMem_RawMalloc(cap * sizeof(int64_t))
    cdef uint64_t* hashes = <uint64_t*>PyMem_RawMalloc(max(n, 1) * sizeof(uint64_t))
    if table == NULL or hashes == NULL:
        PyMem_RawFree(table)
        PyMem_RawFree(hashes)
        return -1
    for slot in range(cap):
        table[slot] = -1
    for i in range(n):
        if not is_valid(bitmap, i + bit_offset):
            ids[i] = -1
            continue
        a = offsets[i]
        la = offsets[i + 1] - a
        hashes[i] = hash_bytes(data + a, la)
        slot = <int64_t>(hashes[i] & <uint64_t>mask)
        while True:
            j = table[slot]
            if j < 0:
                table[slot] = i
                ids[i] = count
                count += 1
                break
            if hashes[j] == hashes[i] and offsets[j + 1] - offsets[j] == la and \
                    memcmp(data + offsets[j], data + a, la) == 0:
                ids[i] = ids[j]
                dup[i] = 1
                dup[j] = 1
                break
            slot = (slot + 1) & mask
    PyMem_RawFree(table)
    PyMem_RawFree(hashes)
    return count


def _hash(values):
    arr = plain_strings(values, pa.string())
    cdef int64_t n = len(arr)
    ids = np.empty(n, dtype=np.int64)
    dup = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return ids, dup.view(bool), 0
    validity, offsets_buf, data_buf = arr.buffers()
    cdef const int32_t[::1] offsets = np.frombuffer(offsets_buf, dtype=np.int32)[arr.offset:]
    data_np = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and \
        data_buf.size else np.zeros(1, np.uint8)
    cdef const uint8_t[::1] data = data_np
    bitmap_np = np.frombuffer(validity, dtype=np.uint8) if validity is not None else None
    cdef const uint8_t[::1] bitmap
    cdef const uint8_t* bitmap_p = NULL
    if bitmap_np is not None:
        bitmap = bitmap_np
        bitmap_p = &bitmap[0]
    cdef int64_t[::1] ids_v = ids
    cdef uint8_t[::1] dup_v = dup
    cdef int64_t bit_offset = arr.offset
    cdef int64_t count
    with nogil:
        count = hash_rows(&offsets[0], &data[0], bitmap_p, bit_offset, n, &ids_v[0], &dup_v[0])
    if count < 0:
        raise MemoryError("no memory for the id hash table")
    return ids, dup.view(bool), count


def dense_ids(values):
    """(int64 id per row in first-appearance order, -1 for null; number of distinct values)."""
    ids, _, count = _hash(values)
    return ids, int(count)


def duplicate_mask(values):
    """Bool per row: its (non-null) value appears in more than one row."""
    _, dup, _ = _hash(values)
    return dup


def renumber_in_order(ids, order, int64_t count):
    """``ids`` (int64, 0 ≤ id < ``count`` or -1 for null) renumbered 0, 1, … in order of
    first appearance along ``order`` (row indices): the kernel then meets each key's
    accumulator row in the order the claims settle, so a run ordered by key walks its
    accumulators front to back instead of at random. Null (-1) stays -1. Rows ``order``
    leaves out keep ids of no key it visits: the caller passes a permutation of all rows."""
    cdef const int64_t[::1] old = np.ascontiguousarray(ids, dtype=np.int64)
    cdef const int64_t[::1] along = np.ascontiguousarray(order, dtype=np.int64)
    out_arr = np.full(len(old), -1, dtype=np.int64)
    remap_arr = np.full(max(count, 1), -1, dtype=np.int64)
    cdef int64_t[::1] out = out_arr
    cdef int64_t[::1] remap = remap_arr
    cdef int64_t t, row, key, nxt = 0, n = len(along)
    with nogil:
        for t in range(n):
            row = along[t]
            key = old[row]
            if key < 0:
                continue
            if remap[key] < 0:
                remap[key] = nxt
                nxt += 1
            out[row] = remap[key]
    return out_arr


def take_dense(ids, rows, int64_t count):
    """(``ids[rows]`` renumbered 0, 1, … in order of first appearance along ``rows``, the
    number of distinct ids among them): the dense ids of a subset of rows, e.g. the accepted
    rows of a batch whose ids were numbered over all its rows (core/_ingest.pyx). ``ids`` are
    int64, 0 ≤ id < ``count`` or -1 for no value (kept -1); ``rows`` int64 indices into
    ``ids``."""
    cdef const int64_t[::1] old = np.ascontiguousarray(ids, dtype=np.int64)
    cdef const int64_t[::1] along = np.ascontiguousarray(rows, dtype=np.int64)
    cdef int64_t n = len(along), t, key, nxt = 0
    out_arr = np.empty(n, dtype=np.int64)
    remap_arr = np.full(max(count, 1), -1, dtype=np.int64)
    cdef int64_t[::1] out = out_arr
    cdef int64_t[::1] remap = remap_arr
    with nogil:
        for t in range(n):
            key = old[along[t]]
            if key >= 0:
                if remap[key] < 0:
                    remap[key] = nxt
                    nxt += 1
                key = remap[key]
            out[t] = key
    return out_arr, int(nxt)

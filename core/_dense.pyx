# cython: language_level=3, boundscheck=False, wraparound=False
"""A lookup table's value at each row, one C pass per key column and one for the values.

``vector.Evaluator`` lays each lookup table out densely (``vector.DenseTable``: mixed radix
over each key's distinct values). In numpy a lookup made about ten n-element temporaries per
key (the shifted key, its code, the found mask, the code × stride, ...) and four more for the
value; the reference policy's three lookups took 0.045 s CPU of the 2M run's chunk builds
(issue 14, c21). Here each key column adds its code × stride into the flat index and clears a
row's hit where the key is not in the table; the last pass reads the value where the row hit
a present cell. Only for integer keys spanning a small range (the code is one read of a table
over the range); text keys and wide ranges stay numpy's.
"""
from libc.stdint cimport int64_t, uint64_t

import numpy as np


def add_key_codes(const int64_t[:] keys, const int64_t[::1] codes, int64_t lo, int64_t stride,
                  int64_t[::1] index, unsigned char[::1] hit):
    """For each row: where ``keys[t] - lo`` is a position of ``codes`` holding a code (>= 0),
    index[t] += code × stride; elsewhere hit[t] = 0 (the key is not in the table). ``keys``
    may be strided (a constant is a stride-0 broadcast)."""
    cdef Py_ssize_t n = keys.shape[0], span = codes.shape[0], t
    cdef int64_t k, code
    if index.shape[0] != n or hit.shape[0] != n:
        raise ValueError(f"add_key_codes: {n} keys for {index.shape[0]} rows")
    with nogil:
        for t in range(n):
            k = keys[t]
            # k - lo in uint64: exact where k >= lo; where k < lo it wraps to at least span,
            # as lo + span - 1 (the largest key) is an int64 — one compare, never an overflow
            if <uint64_t>k - <uint64_t>lo >= <uint64_t>span:
                hit[t] = 0
                continue
            code = codes[k - lo]
            if code < 0:
                hit[t] = 0
            else:
                index[t] += code * stride


def read_cells(const int64_t[::1] index, unsigned char[::1] hit, const int64_t[::1] values,
               const unsigned char[::1] present):
    """The value of each row's cell (0 where the row did not hit a present cell, whose hit
    is cleared here). A row that missed a key has an index within the table all the same
    (its code counted as 0), as in numpy's version."""
    cdef Py_ssize_t n = index.shape[0], t
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] o = out
    with nogil:
        for t in range(n):
            if hit[t] and present[index[t]]:
                o[t] = values[index[t]]
            else:
                hit[t] = 0
                o[t] = 0
    return out


def in_small_set(const int64_t[:] values, const unsigned char[::1] member, int64_t lo):
    """Whether each value is in a set of integers given as ``member``: member[v - lo] is 1
    for the set's values over the range they span (the same one-compare range test as
    ``add_key_codes``; the set's largest value lo + len(member) - 1 is an int64)."""
    cdef Py_ssize_t n = values.shape[0], span = member.shape[0], t
    cdef uint64_t at
    out = np.empty(n, dtype=np.bool_)
    cdef unsigned char[::1] o = out.view(np.uint8)
    with nogil:
        for t in range(n):
            at = <uint64_t>values[t] - <uint64_t>lo
            o[t] = member[at] if at < <uint64_t>span else 0
    return out

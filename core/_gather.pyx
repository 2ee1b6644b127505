# cython: language_level=3
"""Fixed-width numpy columns gathered into an order in C, without the GIL.

A run's chunk builds (``engine.ChunkedSettlement.build``) take every prepared column the
policy reads and every key id at a chunk's rows of the settlement order. numpy's fancy
indexing (``values[rows]``) walks its generic index iterator per column; a loop typed by the
column's width does the same copy with less CPU (issue 14, w17: the eight columns of the
reference policy over 2M rows, 0.14 s → 0.08 s on fresh arrays in a random order, 8-10 % less
on a run's own prepared columns in its order, where the reads are cache and TLB misses either
way). Fusing the columns into one loop over the rows (one read of the order per row) was
slower than a loop per column (a branch on the width per value), so each column is its own
loop.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

import numpy as np

cimport numpy as cnp

cnp.import_array()


def take(values, rows):
    """``values[rows]`` for a one-dimensional numpy array of 1, 2, 4 or 8-byte items
    (integers, bools, dates as int32 …) and int64 ``rows``, each in range (a settlement
    order's rows: not checked, as the kernel's are not); any other array (objects, other
    widths, not contiguous) is numpy's own fancy indexing. A fresh contiguous array of
    ``values``' dtype; empty ``rows`` give an empty one. The loops are written out here, in
    the one function: the same loops in a helper called with the width took twice the CPU
    (measured, gcc -O3)."""
    if (not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.hasobject
            or values.itemsize not in (1, 2, 4, 8) or not values.flags.c_contiguous):
        return values[rows]
    cdef const int64_t[::1] at = np.ascontiguousarray(rows, dtype=np.int64)
    cdef Py_ssize_t n = at.shape[0], t
    out = np.empty(n, dtype=values.dtype)
    if n == 0:
        return out
    cdef cnp.ndarray source = values, target = out
    cdef const char* s = <const char*>cnp.PyArray_DATA(source)
    cdef char* d = <char*>cnp.PyArray_DATA(target)
    cdef const int64_t* r = &at[0]
    cdef int width = values.itemsize
    with nogil:
        if width == 8:
            for t in range(n):
                (<int64_t*>d)[t] = (<const int64_t*>s)[r[t]]
        elif width == 4:
            for t in range(n):
                (<int32_t*>d)[t] = (<const int32_t*>s)[r[t]]
        elif width == 2:
            for t in range(n):
                (<int16_t*>d)[t] = (<const int16_t*>s)[r[t]]
        else:
            for t in range(n):
                (<int8_t*>d)[t] = (<const int8_t*>s)[r[t]]
    return out

# cython: language_level=3
"""Text columns laid out from codes into a few distinct values, in one nogil pass.

Provider payment carries its text columns (pool, group, grouping status, case class) as
int32 codes into a handful of distinct strings and builds each claim's text only when the
results are written, a stretch of the settlement order at a time (core/provider.py,
``ClaimPieces.columns``). Arrow does that as a take of the codes and then a cast of the
dictionary array, two passes with per-row dispatch; at 1M claims the four columns cost
~0.04 s of CPU on the thread that feeds the writer (issue 14, p19). Here one loop gathers
each row's code (random reads alone, so their cache misses overlap), one measures the rows'
lengths and validity in order, and one copies their bytes as whole words.

``texts_at`` returns the three buffers of an Arrow ``string`` array (Arrow buffers from its
pool); the caller wraps them.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

import numpy as np
import pyarrow as pa

cdef int64_t INT32_MAX = 2147483647  # the most bytes an Arrow ``string`` array holds


cdef inline void _copy_words(uint8_t* dst, const uint8_t* src, int32_t words) noexcept nogil:
    """``words`` * 8 bytes, a word at a time (each memcpy of 8 is one unaligned move)."""
    cdef int32_t k
    cdef uint64_t word
    for k in range(words):
        memcpy(&word, src + 8 * k, 8)
        memcpy(dst + 8 * k, &word, 8)


def texts_at(const int32_t[::1] value_offsets, const uint8_t[::1] value_padded,
             int32_t width, const int32_t[::1] codes, const int64_t[::1] source,
             bint identity):
    """(validity bitmap or None, int32 offsets, data, null count: pyarrow Buffers) of the string
    array whose row i is the distinct value ``codes[source[i]]`` (``identity``: ``codes[i]``,
    ``source`` unused). A negative position or a negative code is a null row (a claim in no
    pool, an unset value). ``value_offsets``: the distinct values' Arrow offsets (len + 1),
    which give each one's length; ``value_padded``: value c's bytes at ``c * width``, each
    slot ``width`` bytes (a multiple of 8, zero-padded), so a row's bytes are copied as
    whole words into a buffer with ``width`` bytes of slack (no per-row memcpy call).
    Returns None when the data would pass 2^31 - 1 bytes (the caller falls back to
    Arrow's take)."""
    cdef Py_ssize_t n = codes.shape[0] if identity else source.shape[0]
    cdef Py_ssize_t i
    cdef int64_t at, total = 0
    cdef int32_t code, words = width // 8
    # Arrow's pool (mimalloc) reuses its pages: numpy's fresh ones are page faults, which on
    # this VM cost more than the copy
    offsets_buf = pa.allocate_buffer(4 * (n + 1))
    cdef int32_t[::1] offsets = np.frombuffer(offsets_buf, np.int32)
    valid_buf = pa.allocate_buffer((n + 7) // 8)
    cdef uint8_t[::1] valid = np.frombuffer(valid_buf, np.uint8)
    # each row's code, gathered once: ``codes[source[i]]`` is a random read (a cache miss
    # per row over a million claims), the copy pass below then reads these in order
    cdef int32_t[::1] gathered = np.empty(0 if identity else n, np.int32)
    cdef const int32_t[::1] row_code = codes if identity else gathered
    cdef Py_ssize_t nulls = 0
    with nogil:
        if not identity:  # a loop of loads alone, so the cache misses overlap
            for i in range(n):
                at = source[i]
                gathered[i] = codes[at] if at >= 0 else -1
        valid[:] = 0  # the rows' lengths and validity, in order
        offsets[0] = 0
        for i in range(n):
            code = row_code[i]
            if code < 0:
                nulls += 1
            else:
                valid[i >> 3] |= <uint8_t>(1 << (i & 7))
                total += value_offsets[code + 1] - value_offsets[code]
                if total > INT32_MAX:
                    break
            offsets[i + 1] = <int32_t>total
    if total > INT32_MAX:
        return None
    # ``width`` bytes of slack: the last row's words may reach past its bytes
    data_buf = pa.allocate_buffer(total + width)
    cdef uint8_t[::1] data = np.frombuffer(data_buf, np.uint8)
    with nogil:  # the bytes, whole words at a time
        for i in range(n):
            if offsets[i + 1] != offsets[i]:
                _copy_words(&data[offsets[i]], &value_padded[<int64_t>row_code[i] * width], words)
    return (valid_buf if nulls else None), offsets_buf, data_buf, nulls

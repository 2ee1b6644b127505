# cython: language_level=3
"""Exact fixed-point products for the points evaluator.

Point arithmetic multiplies three int64 quantities and divides by a fourth (B ×10^4 · k ×10^6 ·
cost fen ÷ (10^6 · average cost)); the product overflows int64 long before realistic inputs
do, so it is held in a 128-bit integer (gcc/clang ``__int128``) and rounded half-up away from
zero once, exactly as the spec rounds. No floating point, no Python objects in the loop.
"""
import numpy as np
cimport numpy as cnp

cdef extern from *:
    ctypedef long long int128 "__int128"

ctypedef long long i64

cdef const i64 I64_MAX = 9223372036854775807


cdef inline int mul3_div_one(i64 a, i64 b, i64 c, i64 d, i64* out) noexcept nogil:
    """round_half_away(a·b·c / d) for d > 0; returns 1 when the result leaves int64."""
    cdef int128 n = <int128>a * <int128>b * <int128>c
    cdef int neg = n < 0
    cdef int128 m = -n if neg else n
    cdef int128 q = m // d
    cdef int128 r = m - q * d
    if 2 * r >= d:
        q += 1
    if q > I64_MAX:
        return 1
    out[0] = <i64>(-q if neg else q)
    return 0


def mul3_div(a, b, c, d):
    """Elementwise round_half_away(a·b·c / d) over int64 arrays (broadcast); every d > 0.
    Raises OverflowError when a result does not fit int64 or a product exceeds 2^127."""
    a, b, c, d = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (a, b, c, d)))
    cdef const i64[:] av = np.ascontiguousarray(a).ravel()
    cdef const i64[:] bv = np.ascontiguousarray(b).ravel()
    cdef const i64[:] cv = np.ascontiguousarray(c).ravel()
    cdef const i64[:] dv = np.ascontiguousarray(d).ravel()
    cdef Py_ssize_t n = av.shape[0], i
    out = np.empty(n, dtype=np.int64)
    cdef i64[:] ov = out
    cdef int bad = 0
    with nogil:
        for i in range(n):
            if dv[i] <= 0:
                bad = 2
                break
            if mul3_div_one(av[i], bv[i], cv[i], dv[i], &ov[i]):
                bad = 1
                break
    if bad == 2:
        raise ZeroDivisionError("mul3_div: divisor must be positive")
    if bad:
        raise OverflowError("mul3_div: result does not fit int64")
    return out.reshape(a.shape)

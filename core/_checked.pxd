# cython: language_level=3
"""Checked int64 addition and subtraction: the one copy, shared by the settlement kernel
(core/_kernel.pyx) and the points pass (core/points/_pass.pyx). No .pyx: cimporting this file
pulls the inline C functions in (as core/_fnv.pxd does for the string hash).

A result that leaves int64 sets ``*over`` (it is never cleared here: one flag collects every
check of a claim, without a branch per operation) and the returned value is then the wrapped
one, meaningless: a caller that sees ``*over`` discards everything it computed for that claim
(the kernel rolls the claim back, the points pass stops and names it), never a wrapped number
in a result (money.py: no arithmetic wraps)."""
from libc.stdint cimport int64_t

cdef extern from *:
    """
    #ifndef YB_CHECKED_ARITHMETIC
    #define YB_CHECKED_ARITHMETIC
    static inline int64_t yb_add(int64_t a, int64_t b, int* over) {
        int64_t r;
        *over |= __builtin_add_overflow(a, b, &r);
        return r;
    }
    static inline int64_t yb_sub(int64_t a, int64_t b, int* over) {
        int64_t r;
        *over |= __builtin_sub_overflow(a, b, &r);
        return r;
    }
    #endif
    """
    int64_t yb_add(int64_t a, int64_t b, int* over) noexcept nogil
    int64_t yb_sub(int64_t a, int64_t b, int* over) noexcept nogil

# cython: language_level=3
"""家庭共济 kernel: personal accounts pay claims' self-pay in settlement order.

Sequential per account (each claim sees the balance the earlier claims left), so it is one
``nogil`` pass over the claims; no Python object is touched inside the loop.
"""
from libc.stdint cimport int64_t


def draw_accounts(const int64_t[::1] account, const int64_t[::1] self_pay,
                  int64_t[::1] balance, int64_t[::1] pay, int64_t[::1] left):
    """For claim i (settlement order) drawing on account ``account[i]`` (-1: none):
    pay[i] = min(max(self_pay[i], 0), balance), balance -= pay[i], left[i] = the balance after.
    ``balance`` is updated in place (it ends as the closing balances)."""
    cdef Py_ssize_t i, n = account.shape[0]
    cdef int64_t a, p, b
    with nogil:
        for i in range(n):
            a = account[i]
            if a < 0:
                pay[i] = 0
                left[i] = 0
                continue
            p = self_pay[i]
            if p < 0:
                p = 0
            b = balance[a]
            if p > b:
                p = b
            balance[a] = b - p
            pay[i] = p
            left[i] = b - p

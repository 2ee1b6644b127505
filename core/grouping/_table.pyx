# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The first-match decision-table loop: one pass over the claims, without the GIL.

``table.py`` turns a ``DecisionTable`` and a batch into integer arrays (``_compiled``): every
string value becomes its rank among the batch's sorted distinct values, so a prefix, a code
range or a set of values is a few rank spans ``[lo, hi)``; a row's conditions become
condition records; and the rows that read the indexed code column are listed per segment of
that column's ranks (rows that do not read it are "global" and are candidates for every
claim). Here each claim walks its segment's rows and the global rows merged in row order,
tests the remaining conditions, and stops at the first row whose conditions all hold. The
cost is the candidate rows each claim tries, not rows × claims.

Semantics are those of ``table.group_claim_table`` (the oracle): a null value (rank -1)
never satisfies a condition; a list condition ignores null codes; ``NO_CODES`` holds when
the list has no non-null code (a null list is empty).
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t
import numpy as np

# condition kinds (``kind`` array); the values are table.py's ``_KIND`` too
cdef enum:
    CODE_SPANS = 0   # the code column's rank lies in one of the spans
    LIST_ANY = 1     # some non-null code of the list column lies in one of the spans
    NO_CODES = 2     # the list column holds no non-null code
    INT_BAND = 3     # lo <= value < hi (``bound`` says which ends bound), value not null
    FLAG = 4         # the bool column equals the value (``bound``), value not null


cdef inline bint in_spans(int32_t rank, const int32_t* lo, const int32_t* hi,
                          int64_t a, int64_t b) noexcept nogil:
    # pointers, not memoryview slices: a slice passed by value takes and drops a reference
    # (an atomic operation) on every call, once per code of every claim
    cdef int64_t s
    if rank < 0:
        return False
    for s in range(a, b):
        if lo[s] <= rank < hi[s]:
            return True
    return False


cdef class Conditions:
    """Condition records, rows and the segment index of one table over one batch (see
    ``table._compiled``); every array is read-only here and C-contiguous (typed ``[::1]``:
    an element is read without a stride multiplication)."""
    cdef const int8_t[::1] kind           # condition -> its kind (above)
    cdef const int32_t[::1] column        # condition -> its column's slot among its kind's
    cdef const int64_t[::1] span_ptr      # condition -> its spans [span_ptr[c], span_ptr[c+1])
    cdef const int32_t[::1] span_lo       # span -> first rank in it
    cdef const int32_t[::1] span_hi       # span -> rank after its last
    cdef const int64_t[::1] int_lo        # INT_BAND: lower end (when has_lo)
    cdef const int64_t[::1] int_hi        # INT_BAND: upper end, excluded (when has_hi)
    cdef const uint8_t[::1] bound         # INT_BAND: bit 0 has_lo, bit 1 has_hi; FLAG: value
    cdef const int64_t[::1] row_ptr       # row -> its conditions [row_ptr[r], row_ptr[r+1])
    cdef const int32_t[::1] row_conds     # the conditions of every row, the indexed one left out
    cdef const int64_t[::1] seg_ptr       # segment -> its rows [seg_ptr[s], seg_ptr[s+1])
    cdef const int32_t[::1] seg_rows      # rows per segment, ascending
    cdef const int32_t[::1] global_rows   # rows that do not read the indexed column, ascending
    cdef const int32_t[::1] seg_of_rank   # indexed column rank -> its segment

    def __init__(self, kind, column, span_ptr, span_lo, span_hi, int_lo, int_hi, bound,
                 row_ptr, row_conds, seg_ptr, seg_rows, global_rows, seg_of_rank):
        self.kind, self.column, self.span_ptr = kind, column, span_ptr
        self.span_lo, self.span_hi = span_lo, span_hi
        self.int_lo, self.int_hi, self.bound = int_lo, int_hi, bound
        self.row_ptr, self.row_conds = row_ptr, row_conds
        self.seg_ptr, self.seg_rows = seg_ptr, seg_rows
        self.global_rows, self.seg_of_rank = global_rows, seg_of_rank


cdef class Columns:
    """The batch's columns as the loop reads them: one row of each 2-D array per column."""
    cdef const int32_t[:, ::1] code_rank   # [code column, claim] rank of the value, -1 null
    cdef const int64_t[:, ::1] list_start  # [list column, claim] first code in ``list_rank``
    cdef const int64_t[:, ::1] list_end    # [list column, claim] after its last code
    cdef const int32_t[::1] list_rank      # every list column's codes, ranks, -1 null
    cdef const int64_t[:, ::1] ints        # [int column, claim] value (0 when null)
    cdef const uint8_t[:, ::1] int_valid   # [int column, claim] 1 when not null
    cdef const uint8_t[:, ::1] flags       # [flag column, claim] value
    cdef const uint8_t[:, ::1] flag_valid  # [flag column, claim] 1 when not null
    cdef const int32_t[::1] index_rank     # the indexed column's rank per claim (-1: null/none)

    def __init__(self, code_rank, list_start, list_end, list_rank, ints, int_valid, flags,
                 flag_valid, index_rank):
        self.code_rank, self.list_start, self.list_end = code_rank, list_start, list_end
        self.list_rank, self.ints, self.int_valid = list_rank, ints, int_valid
        self.flags, self.flag_valid, self.index_rank = flags, flag_valid, index_rank


cdef bint holds(Conditions t, Columns c, int32_t cond, int64_t i) noexcept nogil:
    cdef int8_t kind = t.kind[cond]
    cdef int32_t col = t.column[cond]
    cdef int64_t j, a = t.span_ptr[cond], b = t.span_ptr[cond + 1]
    cdef uint8_t bound
    if kind == CODE_SPANS:
        return in_spans(c.code_rank[col, i], &t.span_lo[0], &t.span_hi[0], a, b)
    if kind == LIST_ANY:
        for j in range(c.list_start[col, i], c.list_end[col, i]):
            if in_spans(c.list_rank[j], &t.span_lo[0], &t.span_hi[0], a, b):
                return True
        return False
    if kind == NO_CODES:
        for j in range(c.list_start[col, i], c.list_end[col, i]):
            if c.list_rank[j] >= 0:
                return False
        return True
    if kind == INT_BAND:
        if not c.int_valid[col, i]:
            return False
        bound = t.bound[cond]
        if (bound & 1) and c.ints[col, i] < t.int_lo[cond]:
            return False
        return not ((bound & 2) and c.ints[col, i] >= t.int_hi[cond])
    # FLAG
    return c.flag_valid[col, i] and (c.flags[col, i] != 0) == (t.bound[cond] != 0)


cdef inline bint row_holds(Conditions t, Columns c, int32_t row, int64_t i) noexcept nogil:
    cdef int64_t k
    for k in range(t.row_ptr[row], t.row_ptr[row + 1]):
        if not holds(t, c, t.row_conds[k], i):
            return False
    return True


cdef int32_t first_row(Conditions t, Columns c, int64_t i) noexcept nogil:
    """The first row (0-based) whose conditions hold for claim i, -1 for none: the claim's
    segment rows and the global rows, merged in row order."""
    cdef int32_t rank = c.index_rank[i], row
    cdef int64_t p = 0, pe = 0, q = 0, qe = t.global_rows.shape[0]
    cdef int32_t seg
    if rank >= 0:
        seg = t.seg_of_rank[rank]
        p, pe = t.seg_ptr[seg], t.seg_ptr[seg + 1]
    while p < pe or q < qe:
        if q >= qe or (p < pe and t.seg_rows[p] < t.global_rows[q]):
            row = t.seg_rows[p]
            p += 1
        else:
            row = t.global_rows[q]
            q += 1
        if row_holds(t, c, row, i):
            return row
    return -1


def first_rows(Conditions t, Columns c, int64_t n):
    """int32 array: the first matching row of each of the n claims, 1-based, 0 for none
    (the result's ``matched_row`` as it is written, and an index into tables of one slot
    per row after the slot of "no row": no int64 array and no +1 pass over the claims)."""
    out = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] o = out
    cdef int64_t i
    with nogil:
        for i in range(n):
            o[i] = first_row(t, c, i) + 1
    return out

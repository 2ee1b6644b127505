# cython: language_level=3
"""The settlement order sorted in C, nogil: row indices by (lead, day, claim id).

``lead`` (a run's bucket, or none) and the discharge day are packed into one integer, the
*group*: ``(lead - min lead) * day span + (day - first day)``. Rows are put in group order by
an LSD radix sort on 16-bit digits of the group (stable, so rows of one group stay in row
order; a digit every row shares costs no pass). A group holds the claims of one day (of one
bucket): a few thousand in date order, one or two in a run's bucket order. Each group is then
sorted by claim id: first by an integer key made of 8 bytes of the id (after ``skip`` bytes
every id shares, big-endian, zero-padded: integer order is byte order where the keys differ),
and where two keys are equal by the ids' bytes themselves, then by row. So the order is exact
byte order of the ids whatever they share, and equal ids (never among accepted claims) keep
their row order, as Arrow's stable sort would.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp

import numpy as np

cdef extern from "Python.h":
    void* PyMem_RawMalloc(size_t n) nogil
    void PyMem_RawFree(void* p) nogil


cdef struct Entry:
    uint64_t key  # 8 bytes of the claim id after the common lead, big-endian
    int64_t row


cdef struct Ids:
    const int32_t* offsets  # Arrow string offsets of the claim ids (n + 1)
    const uint8_t* data


cdef enum:
    SMALL = 16  # runs up to this length are sorted by insertion


cdef inline uint64_t id_key(Ids ids, int64_t row, int64_t skip) noexcept nogil:
    """Bytes skip … skip+7 of the id, big-endian, zero-padded past its end."""
    cdef int64_t start = ids.offsets[row] + skip, end = ids.offsets[row + 1], j
    cdef uint64_t key = 0
    for j in range(8):
        key <<= 8
        if start + j < end:
            key |= ids.data[start + j]
    return key


cdef inline bint before(Ids ids, Entry a, Entry b) noexcept nogil:
    """Entry a sorts before b: its key, else its id's bytes, else its row is smaller."""
    cdef int64_t la, lb, c
    if a.key != b.key:
        return a.key < b.key
    la = ids.offsets[a.row + 1] - ids.offsets[a.row]
    lb = ids.offsets[b.row + 1] - ids.offsets[b.row]
    c = memcmp(ids.data + ids.offsets[a.row], ids.data + ids.offsets[b.row],
               <size_t>(la if la < lb else lb))
    if c != 0:
        return c < 0
    if la != lb:
        return la < lb
    return a.row < b.row


cdef void insertion_sort(Ids ids, Entry* run, int64_t n) noexcept nogil:
    cdef int64_t i, j
    cdef Entry e
    for i in range(1, n):
        e = run[i]
        j = i - 1
        while j >= 0 and before(ids, e, run[j]):
            run[j + 1] = run[j]
            j -= 1
        run[j + 1] = e


cdef void merge_sort(Ids ids, Entry* run, Entry* tmp, int64_t n) noexcept nogil:
    """Bottom-up merge sort of ``run`` (``tmp`` as long): O(n log n) whatever the ids."""
    cdef int64_t width, lo, mid, hi, i, j, k
    cdef Entry* src = run
    cdef Entry* dst = tmp
    cdef Entry* swap
    lo = 0
    while lo < n:
        insertion_sort(ids, run + lo, min(<int64_t>SMALL, n - lo))
        lo += SMALL
    width = SMALL
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if before(ids, src[j], src[i]):
                    dst[k] = src[j]
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
            lo += 2 * width
        swap = src
        src = dst
        dst = swap
        width *= 2
    if src != run:
        for i in range(n):
            run[i] = src[i]


cdef int64_t* radix_by_group(uint64_t* group, uint64_t* group_tmp, int64_t* rows,
                             int64_t* rows_tmp, int64_t n, int digits) noexcept nogil:
    """Stable LSD radix sort of ``rows`` (each with its ``group``) by group, 16 bits a pass.
    Returns the buffer (``rows`` or ``rows_tmp``) holding the sorted rows, the matching
    group buffer swapped alike; NULL if there is no memory for the counts."""
    cdef int64_t* count = <int64_t*>PyMem_RawMalloc(65536 * sizeof(int64_t))
    cdef int64_t i, total, c, at
    cdef int d, shift
    cdef uint64_t digit
    cdef uint64_t* gswap
    cdef int64_t* rswap
    if count == NULL:
        return NULL
    for d in range(digits):
        shift = 16 * d
        for i in range(65536):
            count[i] = 0
        for i in range(n):
            count[(group[i] >> shift) & 0xFFFF] += 1
        if count[(group[0] >> shift) & 0xFFFF] == n:
            continue  # every row has this digit: the pass would move nothing
        total = 0
        for i in range(65536):
            c = count[i]
            count[i] = total
            total += c
        for i in range(n):
            digit = (group[i] >> shift) & 0xFFFF
            at = count[digit]
            count[digit] = at + 1
            group_tmp[at] = group[i]
            rows_tmp[at] = rows[i]
        gswap = group
        group = group_tmp
        group_tmp = gswap
        rswap = rows
        rows = rows_tmp
        rows_tmp = rswap
    PyMem_RawFree(count)
    return rows


cdef void sort_groups_by_id(Ids ids, const uint64_t* group, int64_t* rows, int64_t n,
                            int64_t skip, Entry* run, Entry* tmp) noexcept nogil:
    """Within each run of equal ``group`` (rows already in group order), sort ``rows`` by
    claim id. A run of one row (most of them in a run's bucket order) reads no id."""
    cdef int64_t lo = 0, hi, k, i
    while lo < n:
        hi = lo + 1
        while hi < n and group[hi] == group[lo]:
            hi += 1
        k = hi - lo
        if k > 1:
            for i in range(k):
                run[i].row = rows[lo + i]
                run[i].key = id_key(ids, run[i].row, skip)
            if k <= SMALL:
                insertion_sort(ids, run, k)
            else:
                merge_sort(ids, run, tmp, k)
            for i in range(k):
                rows[lo + i] = run[i].row
        lo = hi


def sort_rows(offsets, data, int64_t skip, group, int digits):
    """Row indices (int64) sorted by (``group``, claim id), see the module docstring.
    ``offsets`` (int32, n + 1) and ``data`` (uint8) are the claim ids' Arrow buffers (no
    nulls), ``skip`` the bytes every id starts with, ``group`` (uint64, n) each row's packed
    (lead, day), ``digits`` the 16-bit digits the groups span (1 to 4)."""
    cdef const int32_t[::1] offs = np.ascontiguousarray(offsets, dtype=np.int32)
    data_arr = np.ascontiguousarray(data, dtype=np.uint8)
    if len(data_arr) == 0:
        data_arr = np.zeros(1, dtype=np.uint8)
    cdef const uint8_t[::1] raw = data_arr
    cdef int64_t n = len(group)
    out = np.arange(n, dtype=np.int64)
    if n < 2:
        return out
    group_arr = np.array(group, dtype=np.uint64)  # a copy: the sort moves it
    group_tmp_arr = np.empty(n, dtype=np.uint64)
    rows_tmp_arr = np.empty(n, dtype=np.int64)
    runs = np.empty((2, n, 2), dtype=np.int64)  # two Entry buffers (key, row)
    cdef uint64_t[::1] g = group_arr
    cdef uint64_t[::1] g_tmp = group_tmp_arr
    cdef int64_t[::1] rows = out
    cdef int64_t[::1] rows_tmp = rows_tmp_arr
    cdef int64_t[:, :, ::1] entries = runs
    cdef Ids ids
    ids.offsets = &offs[0]
    ids.data = &raw[0]
    cdef int64_t* done
    cdef const uint64_t* sorted_group
    with nogil:
        done = radix_by_group(&g[0], &g_tmp[0], &rows[0], &rows_tmp[0], n, digits)
        if done != NULL:
            sorted_group = &g[0] if done == &rows[0] else &g_tmp[0]
            sort_groups_by_id(ids, sorted_group, done, n, skip, <Entry*>&entries[0, 0, 0],
                              <Entry*>&entries[1, 0, 0])
    if done == NULL:
        raise MemoryError("no memory for the settlement sort")
    return out if done == &rows[0] else rows_tmp_arr

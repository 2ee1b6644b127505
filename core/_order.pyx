# cython: language_level=3
"""The settlement order sorted in C, nogil: row indices by (lead, day, claim id); and the
gather of the results' string columns into that order (``gather``, at the end).

``lead`` (a run's bucket, or none) and the discharge day are packed into one integer, the
*group*: ``(lead - min lead) * day span + (day - first day)`` (core/lower.py). Rows are put in
group order stably (rows of one group stay in row order): groups of up to 16 bits (date order
over up to 179 years) by counting, moving only the row numbers (8 bytes a row: peak memory,
issue 14); groups of up to 32 bits no more than a few times as many as the rows (a run's
bucket order: 4,096 buckets of a year of days at 2M claims) by counting on their high bits,
then within each high group on their low bits (``HIGH_BITS``); other wide ones by an LSD
radix sort of (group, row) entries (as few passes as 16-bit digits allow, each as narrow as
possible so its counts stay in cache; a digit every row shares costs no pass). A group holds
the claims of one day (of one bucket): a few thousand in date order, one or two in a run's
bucket order. Each group is then sorted by claim id: first by an integer key made of 8 bytes
of the id (after ``skip`` bytes every id shares, big-endian, zero-padded: integer order is
byte order where the keys differ) — by insertion for a few rows, else by a radix sort of the
keys, 8 bits a pass, in cache — and where two keys are equal by the ids' bytes themselves,
then by row. So the order is exact byte order of the ids whatever they share, and equal ids
(never among accepted claims) keep their row order, as Arrow's stable sort would. Worst case
O(n log n): ids equal on the 8 key bytes go to a merge sort.

The ids are read where the batch holds them, chunk by chunk (``Strings``): a chunked column
is never combined into one copy (at 5M claims that copy was 0.17x of the input columns, held
through the kernel: issue 14, m16). A row's chunk is found where bytes are compared (equal
sort keys) or gathered, through a small table of the chunk at every 2**shift-th row (at most
4,097 entries, in cache) and a step forward past the chunk ends in between. A gather finds
each row's bytes once (its first pass notes where they are; the copy reads them straight):
finding them in both passes, by a binary search of the chunks' first rows, made the gather
of 2M ids of 16 chunks 2x slower than main's combine-then-gather; now it is faster.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcmp, memcpy

import numpy as np
import pyarrow as pa

cdef struct Entry:
    uint64_t key  # 8 bytes of the claim id after the common lead, big-endian
    int64_t row


cdef struct Strings:
    int64_t chunks  # how many chunks (>= 1, none of them empty)
    const int64_t* starts  # the first row of each chunk, then the row count (chunks + 1)
    const int32_t** offsets  # each chunk's Arrow offsets, from its own first row
    const uint8_t** data  # each chunk's bytes
    const int64_t* chunk_at  # the chunk holding row b << shift, for each b
    int shift


cdef struct Ids:
    Strings s  # the claim ids, chunk by chunk
    const uint64_t* keys  # id_key of each row, computed in row order (memory order)


cdef inline int64_t chunk_of(Strings s, int64_t row) noexcept nogil:
    """The chunk holding ``row`` (0 <= row < the row count): from the chunk of the nearest
    tabled row before it, forward past the chunks that end at or before it."""
    cdef int64_t k = s.chunk_at[row >> s.shift]
    while s.starts[k + 1] <= row:
        k += 1
    return k


cdef inline const uint8_t* string_at(Strings s, int64_t row, int64_t* length) noexcept nogil:
    """The bytes of string ``row``; its length in ``length[0]``."""
    cdef int64_t k = 0 if s.chunks == 1 else chunk_of(s, row)
    cdef const int32_t* offs = s.offsets[k]
    cdef int64_t r = row - s.starts[k]
    length[0] = offs[r + 1] - offs[r]
    return s.data[k] + offs[r]


class _StringChunks:
    """The C view (``Strings``) of a string array or chunked array without nulls: the
    addresses of each non-empty chunk's buffers, in numpy arrays this object keeps alive
    (with the chunks themselves) while C reads them. Nothing is copied."""

    def __init__(self, strings):
        chunks = strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]
        self.chunks = [c for c in chunks if len(c)] or [pa.array([""], pa.string())]
        self.empty = np.zeros(1, dtype=np.uint8)  # the bytes of a chunk of empty strings
        count = len(self.chunks)
        self.starts = np.zeros(count + 1, dtype=np.int64)
        self.offsets = np.zeros(count, dtype=np.uintp)
        self.data = np.zeros(count, dtype=np.uintp)
        for k, chunk in enumerate(self.chunks):
            _, offsets_buf, data_buf = chunk.buffers()
            self.starts[k + 1] = self.starts[k] + len(chunk)
            self.offsets[k] = offsets_buf.address + 4 * chunk.offset
            self.data[k] = data_buf.address if data_buf is not None and data_buf.size \
                else self.empty.ctypes.data
        rows = int(self.starts[-1])
        self.shift = max(0, (rows >> 12).bit_length())  # rows >> shift <= 4,096: in cache
        tabled = np.arange((rows >> self.shift) + 1, dtype=np.int64) << self.shift
        self.chunk_at = np.searchsorted(self.starts, tabled, side="right").astype(np.int64) - 1
        np.minimum(self.chunk_at, count - 1, out=self.chunk_at)  # the row count's own entry


cdef Strings strings_of(object view):
    """The ``Strings`` of a ``_StringChunks`` (valid while ``view`` lives)."""
    cdef Strings s
    cdef const int64_t[::1] starts = view.starts
    cdef const uintptr_t[::1] offsets = view.offsets
    cdef const uintptr_t[::1] data = view.data
    cdef const int64_t[::1] chunk_at = view.chunk_at
    s.chunks = len(view.chunks)
    s.chunk_at = &chunk_at[0]
    s.shift = view.shift
    s.starts = &starts[0]
    s.offsets = <const int32_t**>&offsets[0]
    s.data = <const uint8_t**>&data[0]
    return s


cdef int64_t shared_lead(Strings s) noexcept nogil:
    """How many bytes every string starts with: the first string's, cut down by each of the
    others in turn (one pass over the bytes in memory order)."""
    cdef int64_t k, r, j, length, common
    cdef const int32_t* offs = s.offsets[0]
    cdef const uint8_t* lead = s.data[0] + offs[0]
    cdef const uint8_t* text
    common = offs[1] - offs[0]
    for k in range(s.chunks):
        offs = s.offsets[k]
        for r in range(s.starts[k + 1] - s.starts[k]):
            if common == 0:
                return 0
            length = offs[r + 1] - offs[r]
            text = s.data[k] + offs[r]
            if length < common:
                common = length
            j = 0
            while j < common and text[j] == lead[j]:
                j += 1
            common = j
    return common


def common_prefix(strings):
    """How many bytes every string of ``strings`` (an array or chunked array of strings
    without nulls, read in place) starts with; 0 when there are none. The bytes the sort
    keys skip (``sort_rows``): Arrow's min_max over the strings found the same (the
    common lead of the smallest and the largest) in 0.027 s for 2M ids, this in one scan."""
    if len(strings) == 0:
        return 0
    if not pa.types.is_string(strings.type) or strings.null_count:
        raise TypeError("common_prefix reads strings without nulls")
    view = _StringChunks(strings)
    cdef Strings s = strings_of(view)
    cdef int64_t common
    with nogil:
        common = shared_lead(s)
    return int(common)


# -- the groups: (lead, day) packed into one integer ----------------------------------------------
# Packed here in one pass over the days (and the lead) as the callers hold them, int32 days and
# a run's int32 buckets: in numpy the packing made six int64/uint64 temporaries of n (96 MB of
# fresh memory at 2M claims, each page faulted in and zeroed by the kernel: issue 14, m18).
# Groups of up to COUNTED_BITS bits (date order) come as uint16 (2 bytes a row, not 8).

cdef void span_of(const int32_t* v, int64_t n, int64_t* lo, int64_t* hi) noexcept nogil:
    cdef int64_t i
    cdef int32_t a = v[0], b = v[0]
    for i in range(n):
        if v[i] < a:
            a = v[i]
        elif v[i] > b:
            b = v[i]
    lo[0], hi[0] = a, b


ctypedef fused narrow_t:  # a group that fits 16 bits (counted) or 32 (counted in two levels)
    uint16_t
    uint32_t


cdef void packed_into(const int32_t* d, const int32_t* lead, int64_t n, int64_t first,
                      int64_t least, int64_t span, narrow_t* g) noexcept nogil:
    """The packed group of every row, when it fits ``narrow_t`` (``lead`` NULL: none)."""
    cdef int64_t i
    if lead == NULL:
        for i in range(n):
            g[i] = <narrow_t>(d[i] - first)
    else:
        for i in range(n):
            g[i] = <narrow_t>((lead[i] - least) * span + (d[i] - first))


cdef void groups64(const int32_t* d, const int32_t* lead, int64_t n, int64_t first,
                   int64_t least, uint64_t span, uint64_t* g) noexcept nogil:
    """The packed group of every row (``lead`` NULL: none)."""
    cdef int64_t i
    if lead == NULL:
        for i in range(n):
            g[i] = <uint64_t>(d[i] - first)
    else:
        for i in range(n):
            g[i] = <uint64_t>(lead[i] - least) * span + <uint64_t>(d[i] - first)


def _as_int32(values):
    """``values`` as a contiguous int32 array (no copy when they are one), or None when
    they are not integers that int32 holds."""
    values = np.asarray(values)
    if values.dtype == np.int32:
        return np.ascontiguousarray(values)
    if values.dtype.kind not in "iu" or (len(values) and (
            int(values.min()) < -(1 << 31) or int(values.max()) >= 1 << 31)):
        return None
    return values.astype(np.int32)


def _span(const int32_t[::1] v):
    """(least, greatest) of ``v`` (n > 0), one pass in C."""
    cdef int64_t lo = 0, hi = 0
    with nogil:
        span_of(&v[0], v.shape[0], &lo, &hi)
    return lo, hi


def packed_groups(days, lead=None):
    """(group per row, how many low bits of it vary): (lead − least lead) · day span + (day −
    first day), so integer order is (lead, day) order; uint16 when that fits COUNTED_BITS
    bits (``sort_rows`` then counts the rows into place), uint32 when it fits 32 bits (a
    run's bucket order: counted in two levels, or radix sorted), else uint64. None when it does
    not fit 63 bits, or the days or the lead are not integers int32 holds (the caller then
    sorts another way). ``days``, ``lead``: integer arrays of one length n > 0."""
    d = _as_int32(days)
    ld = None if lead is None else _as_int32(lead)
    if d is None or (lead is not None and ld is None):
        return None
    first, last = _span(d)
    span = last - first + 1
    least, most = (0, 0) if ld is None else _span(ld)
    top = (most - least + 1) * span
    if top >= 1 << 63:
        return None
    bits = (top - 1).bit_length()
    cdef const int32_t[::1] dv = d
    cdef const int32_t[::1] lv
    cdef const int32_t* lp = NULL
    if ld is not None:
        lv = ld
        lp = &lv[0]
    cdef int64_t n = len(d), f = first, l0 = least, sp = span
    cdef uint16_t[::1] g16
    cdef uint32_t[::1] g32
    cdef uint64_t[::1] g64
    if bits <= COUNTED_BITS:
        out = np.empty(n, dtype=np.uint16)
        g16 = out
        with nogil:
            packed_into(&dv[0], lp, n, f, l0, sp, &g16[0])
    elif bits <= 32:
        out = np.empty(n, dtype=np.uint32)
        g32 = out
        with nogil:
            packed_into(&dv[0], lp, n, f, l0, sp, &g32[0])
    else:
        out = np.empty(n, dtype=np.uint64)
        g64 = out
        with nogil:
            groups64(&dv[0], lp, n, f, l0, <uint64_t>sp, &g64[0])
    return out, bits


cdef enum:
    SMALL = 16  # runs up to this length are sorted by insertion


cdef inline uint64_t id_key(const uint8_t* id, int64_t length, int64_t skip) noexcept nogil:
    """Bytes skip … skip+7 of the id, big-endian, zero-padded past its end."""
    cdef int64_t j
    cdef uint64_t key = 0
    for j in range(8):
        key <<= 8
        if skip + j < length:
            key |= id[skip + j]
    return key


cdef void id_keys(Strings s, int64_t skip, uint64_t* keys) noexcept nogil:
    """``id_key`` of every row, chunk by chunk, in row order."""
    cdef int64_t k, r, row = 0
    cdef const int32_t* offs
    for k in range(s.chunks):
        offs = s.offsets[k]
        for r in range(s.starts[k + 1] - s.starts[k]):
            keys[row] = id_key(s.data[k] + offs[r], offs[r + 1] - offs[r], skip)
            row += 1


cdef inline bint before(Ids ids, Entry a, Entry b) noexcept nogil:
    """Entry a sorts before b: its key, else its id's bytes, else its row is smaller."""
    cdef int64_t la, lb, c
    cdef const uint8_t* da
    cdef const uint8_t* db
    if a.key != b.key:
        return a.key < b.key
    da = string_at(ids.s, a.row, &la)
    db = string_at(ids.s, b.row, &lb)
    c = memcmp(da, db, <size_t>(la if la < lb else lb))
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


cdef bint radix_pass(Entry* src, Entry* dst, int64_t n, int shift, int64_t mask,
                     int64_t* count) noexcept nogil:
    """One stable counting pass of ``src`` into ``dst`` by bits ``shift``… of the keys
    (``mask`` + 1 counts); False, moving nothing, if every entry has the same digit."""
    cdef int64_t i, total = 0, c, at, digit
    for i in range(mask + 1):
        count[i] = 0
    for i in range(n):
        count[(src[i].key >> shift) & mask] += 1
    if count[(src[0].key >> shift) & mask] == n:
        return False
    for i in range(mask + 1):
        c = count[i]
        count[i] = total
        total += c
    for i in range(n):
        digit = (src[i].key >> shift) & mask
        at = count[digit]
        count[digit] = at + 1
        dst[at] = src[i]
    return True


cdef bint radix_sort(Entry* a, Entry* tmp, int64_t n, int bits, int width,
                     int64_t* count) noexcept nogil:
    """Stable LSD radix sort of ``a`` by the low ``bits`` of the keys, ``width`` bits a pass
    (``count`` holds 2**width). The sorted entries end in ``a`` (True) or in ``tmp`` (False)."""
    cdef int shift = 0
    cdef bint in_a = True
    cdef int64_t mask = (<int64_t>1 << width) - 1
    while shift < bits:
        if in_a:
            if radix_pass(a, tmp, n, shift, mask, count):
                in_a = False
        elif radix_pass(tmp, a, n, shift, mask, count):
            in_a = True
        shift += width
    return in_a


cdef void sort_run_by_id(Ids ids, Entry* run, Entry* tmp, int64_t k, int64_t skip,
                         int64_t* count) noexcept nogil:
    """Sort one group's entries by claim id (their keys are set here, from ``ids.keys`` by
    row; or by the caller when ``ids.keys`` is NULL): by insertion when few, else a radix
    sort on the 8-byte keys, then each run of equal keys by the bytes."""
    cdef int64_t i, lo, hi
    if ids.keys != NULL:
        for i in range(k):
            run[i].key = ids.keys[run[i].row]
    if k <= SMALL:
        insertion_sort(ids, run, k)
        return
    if not radix_sort(run, tmp, k, 64, 8, count):
        for i in range(k):
            run[i] = tmp[i]
    lo = 0
    while lo < k:
        hi = lo + 1
        while hi < k and run[hi].key == run[lo].key:
            hi += 1
        if hi - lo > SMALL:
            merge_sort(ids, run + lo, tmp, hi - lo)
        elif hi - lo > 1:
            insertion_sort(ids, run + lo, hi - lo)
        lo = hi


cdef void sort_groups_by_id(Ids ids, Entry* a, Entry* tmp, int64_t n, int64_t skip,
                            int64_t* count) noexcept nogil:
    """``a`` in group order (the keys are the groups): sort each group's rows by claim id.
    A group of one row (most of them in a run's bucket order) reads no id."""
    cdef int64_t lo = 0, hi
    while lo < n:
        hi = lo + 1
        while hi < n and a[hi].key == a[lo].key:
            hi += 1
        if hi - lo > 1:
            sort_run_by_id(ids, a + lo, tmp, hi - lo, skip, count)
        lo = hi


def sort_rows(strings, int64_t skip, group, int bits):
    """Row indices (int64) sorted by (``group``, claim id), see the module docstring.
    ``strings`` are the claim ids: a string array or chunked array without nulls, read in
    place; ``skip`` the bytes every id starts with, ``group`` each row's packed (lead, day)
    (``packed_groups``: uint16 when ``bits`` ≤ COUNTED_BITS, uint32 when ≤ 32, else uint64)
    and ``bits`` how many low bits of it vary (≤ 64)."""
    cdef int64_t n = len(group)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    if len(strings) != n:
        raise ValueError(f"sort_rows: {len(strings)} claim ids for {n} rows")
    view = _StringChunks(strings)
    out = np.empty(n, dtype=np.int64)  # every row is written: no zeroed pages to write over
    cdef int64_t[::1] rows = out
    cdef const uint16_t[::1] g16
    cdef const uint32_t[::1] g32
    cdef const uint64_t[::1] g
    cdef Ids ids
    ids.s = strings_of(view)
    ids.keys = NULL
    if bits <= COUNTED_BITS:
        g16 = np.ascontiguousarray(group, dtype=np.uint16)
        by_counted_groups(ids, &g16[0], n, bits, 0, &rows[0], skip)
    elif bits <= 32 and (<int64_t>1 << bits) <= DENSE * n:
        g32 = np.ascontiguousarray(group, dtype=np.uint32)
        by_counted_groups(ids, &g32[0], n, bits, low_bits(bits), &rows[0], skip)
    elif bits <= 32:
        g32 = np.ascontiguousarray(group, dtype=np.uint32)
        by_radix_groups(ids, &g32[0], n, bits, &rows[0], skip)
    else:
        g = np.ascontiguousarray(group, dtype=np.uint64)
        by_radix_groups(ids, &g[0], n, bits, &rows[0], skip)
    return out


cdef enum:
    COUNTED_BITS = 16  # groups of up to this many bits (date order: 179 years of days) are
    # counted into place, moving the rows alone: 8 bytes a row, where the radix sort of
    # (group, row) entries takes 32 (two 16-byte entry arrays; 61 MiB for 2M claims)
    HIGH_BITS = 8  # wider groups of up to 32 bits, about as many as the rows or fewer (a
    # run's (bucket, day) groups: 4,096 buckets of a year of days, 21 bits, at 2M claims) are
    # counted into place by their high HIGH_BITS bits with their low bits beside, then each
    # high group by its low bits: 18 bytes a row where the entries took 40 (issue 14, m20:
    # 110 MB of fresh pages at 2M claims). 256 places written at once (three arrays): at
    # 2M claims 0.043-0.052 s of CPU where 4,096 places (12 bits) took 0.055-0.060 and
    # 1,024 0.051-0.055, the scattered writes missing the cache more
    DENSE = 4  # … when there are at most DENSE times as many groups as rows: each high
    # group counts over every value of its low bits, so the counting costs O(2**bits)


cdef int low_bits(int bits) noexcept nogil:
    """How many low bits of a group (COUNTED_BITS < ``bits`` ≤ 32) are counted within its high
    group: all but HIGH_BITS, or 16 with more than 16 + HIGH_BITS (they are held as uint16)."""
    cdef int high = bits - 16 if bits - 16 > HIGH_BITS else HIGH_BITS
    return bits - high


cdef int64_t place_by_group(Strings s, const narrow_t* g, int64_t n, int low,
                            int64_t groups, int64_t* end, int64_t* rows, uint64_t* keys,
                            uint16_t* lows, int64_t skip) noexcept nogil:
    """Stable counting sort of rows 0 … n − 1 by their group's high part (``g >> low``, one
    of ``groups``) into ``rows``, each row's ``id_key`` into ``keys`` and (``low`` > 0) its
    group's ``low`` low bits into ``lows`` at the same place; ``end`` (groups + 1, zeroed)
    ends with ``end[k]`` the end of high group k there. Returns the size of the largest. The
    ids are read in row order (memory order) and their keys written where the rows go, so
    that the groups' sorts read them front to back: read by row from a row-ordered array,
    they were a cache miss a row (issue 14, m17)."""
    cdef int64_t i, k, at, r, h, largest = 0
    cdef uint32_t mask = (<uint32_t>1 << low) - 1
    cdef const int32_t* offs
    for i in range(n):
        end[(g[i] >> low) + 1] += 1
    for k in range(groups):
        if end[k + 1] > largest:
            largest = end[k + 1]
        end[k + 1] += end[k]
    i = 0
    for k in range(s.chunks):  # end[h]: where high group h's next row goes (start, then end)
        offs = s.offsets[k]
        for r in range(s.starts[k + 1] - s.starts[k]):
            h = g[i] >> low
            at = end[h]
            end[h] = at + 1
            rows[at] = i
            keys[at] = id_key(s.data[k] + offs[r], offs[r + 1] - offs[r], skip)
            if low:
                lows[at] = <uint16_t>(g[i] & mask)
            i += 1
    return largest


cdef Entry* sort_by_low(Ids ids, Entry* run, Entry* tmp, const uint16_t* lows, int64_t k,
                        int low, int64_t* low_count, int64_t skip,
                        int64_t* count) noexcept nogil:
    """Sort one high group's entries (their low bits in ``lows``) by (low bits, claim id):
    counted by their low bits into ``tmp``, then each run of one low value by claim id.
    Returns where the sorted entries are (``tmp``)."""
    cdef int64_t i, d, c, total = 0, values = <int64_t>1 << low
    for d in range(values + 1):
        low_count[d] = 0
    for i in range(k):
        low_count[lows[i] + 1] += 1
    for d in range(values):
        c = low_count[d + 1]
        low_count[d + 1] = total + c
        low_count[d] = total  # where value d's next entry goes; d + 1's start is its end
        total += c
    for i in range(k):
        d = lows[i]
        tmp[low_count[d]] = run[i]
        low_count[d] += 1
    c = 0  # the start of value d's run: value d - 1's end
    for d in range(values):
        if low_count[d] - c > 1:
            sort_run_by_id(ids, tmp + c, run + c, low_count[d] - c, skip, count)
        c = low_count[d]
    return tmp


cdef void sort_placed_groups(Ids ids, int64_t* rows, const uint64_t* keys,
                             const uint16_t* lows, int low, const int64_t* end,
                             int64_t groups, Entry* run, Entry* tmp, int64_t skip,
                             int64_t* low_count, int64_t* count) noexcept nogil:
    """Sort each high group's rows (group k: ``rows[end[k - 1]:end[k]]``, their keys and
    low bits at the same places of ``keys`` and ``lows``) by (low bits, claim id)."""
    cdef int64_t k, j, lo = 0, hi
    cdef Entry* done
    ids.keys = NULL  # the entries' keys are set here
    for k in range(groups):
        hi = end[k]
        if hi - lo > 1:
            for j in range(hi - lo):
                run[j].row = rows[lo + j]
                run[j].key = keys[lo + j]
            if low:
                done = sort_by_low(ids, run, tmp, lows + lo, hi - lo, low, low_count, skip,
                                   count)
            else:
                sort_run_by_id(ids, run, tmp, hi - lo, skip, count)
                done = run
            for j in range(hi - lo):
                rows[lo + j] = done[j].row
        lo = hi


cdef void by_counted_groups(Ids ids, const narrow_t* g, int64_t n, int bits, int low,
                            int64_t* rows, int64_t skip):
    """``rows`` in (group, claim id) order for groups of ``bits`` ≤ 32, the ``low`` low bits
    of them counted within each high group (0: each group counted into place whole):
    counted into place by the high bits (with their keys and low bits), then each high group
    sorted in entry buffers as long as the largest one."""
    cdef int64_t groups = <int64_t>1 << (bits - low), largest
    ends = np.zeros(groups + 1, dtype=np.int64)
    keys_arr = np.empty(n, dtype=np.uint64)
    lows_arr = np.empty(n if low else 1, dtype=np.uint16)
    cdef int64_t[::1] end = ends
    cdef uint64_t[::1] keys = keys_arr
    cdef uint16_t[::1] lows = lows_arr
    with nogil:
        largest = place_by_group(ids.s, g, n, low, groups, &end[0], rows, &keys[0],
                                 &lows[0], skip)
    buffers = np.empty((2, max(largest, 1), 2), dtype=np.uint64)  # two Entry arrays
    counts = np.empty(256, dtype=np.int64)
    low_counts = np.empty((1 << low) + 1, dtype=np.int64)
    cdef uint64_t[:, :, ::1] entries = buffers
    cdef int64_t[::1] count = counts
    cdef int64_t[::1] low_count = low_counts
    with nogil:
        sort_placed_groups(ids, rows, &keys[0], &lows[0], low, &end[0], groups,
                           <Entry*>&entries[0, 0, 0], <Entry*>&entries[1, 0, 0], skip,
                           &low_count[0], &count[0])


ctypedef fused wide_t:  # a group past 16 bits (uint32: the caller's packing, not widened)
    uint32_t
    uint64_t


cdef void by_radix_groups(Ids ids, const wide_t* g, int64_t n, int bits, int64_t* rows,
                          int64_t skip):
    """``rows`` in (group, claim id) order for wide groups: (group, row) entries radix
    sorted, as few passes as 16-bit digits allow, each as narrow as it can be (counts that
    stay in cache), then each group's entries sorted by id (``ids.keys``: each row's
    ``id_key``, computed here)."""
    cdef int passes = max(1, (bits + 15) // 16)
    cdef int width = max(1, (bits + passes - 1) // passes)
    cdef int64_t i
    keys_arr = np.empty(n, dtype=np.uint64)
    buffers = np.empty((2, n, 2), dtype=np.uint64)  # two Entry arrays (key, row)
    counts = np.empty(max(1 << width, 256), dtype=np.int64)
    cdef uint64_t[::1] keys = keys_arr
    cdef uint64_t[:, :, ::1] entries = buffers
    cdef int64_t[::1] count = counts
    cdef Entry* a = <Entry*>&entries[0, 0, 0]
    cdef Entry* tmp = <Entry*>&entries[1, 0, 0]
    cdef Entry* swap
    ids.keys = &keys[0]
    with nogil:
        id_keys(ids.s, skip, &keys[0])
        for i in range(n):
            a[i].key = g[i]
            a[i].row = i
        if not radix_sort(a, tmp, n, bits, width, &count[0]):
            swap = a
            a = tmp
            tmp = swap
        sort_groups_by_id(ids, a, tmp, n, skip, &count[0])
        for i in range(n):
            rows[i] = a[i].row


# -- gathers into the order ---------------------------------------------------------------------

cdef int64_t gathered_offsets(Strings s, const int64_t* order, int64_t n, int32_t* out,
                              const uint8_t** source) noexcept nogil:
    """Offsets (from 0) of the strings of rows ``order`` laid end to end, and where each
    string's bytes are (``source``: the copy then reads them without finding their chunk
    and offsets again); their byte total (the offsets are of no use when it reaches 2**31)."""
    cdef int64_t t, length, total = 0
    out[0] = 0
    for t in range(n):
        source[t] = string_at(s, order[t], &length)
        total += length
        out[t + 1] = <int32_t>total
    return total


cdef void gathered_bytes(const uint8_t** source, int64_t n, const int32_t* at,
                         uint8_t* out) noexcept nogil:
    cdef int64_t t
    for t in range(n):
        memcpy(out + at[t], source[t], <size_t>(at[t + 1] - at[t]))


def gather(strings, order):
    """``strings.take(order)`` (``order``: int64 row indices, each in range); an array or a
    chunked array in, an array out. Strings without nulls are gathered in C without the GIL
    in two passes, about twice as fast as Arrow's take, reading a chunked array chunk by
    chunk where it is (no combined copy); Arrow's take serves every other array (nulls, other
    types) and a result of 2 GiB or more (int32 offsets)."""
    if not pa.types.is_string(strings.type) or strings.null_count:
        return _taken(strings, order)
    cdef const int64_t[::1] rows = np.ascontiguousarray(order, dtype=np.int64)
    cdef int64_t n = len(rows)
    if n == 0:
        return pa.array([], pa.string())
    view = _StringChunks(strings)
    cdef Strings s = strings_of(view)
    at_arr = np.empty(n + 1, dtype=np.int32)
    sources = np.empty(n, dtype=np.uintp)
    cdef int32_t[::1] at = at_arr
    cdef uintptr_t[::1] source = sources
    cdef int64_t total
    with nogil:
        total = gathered_offsets(s, &rows[0], n, &at[0], <const uint8_t**>&source[0])
    if total >= 1 << 31:
        return _taken(strings, order)
    out_arr = np.empty(max(total, 1), dtype=np.uint8)
    cdef uint8_t[::1] out = out_arr
    with nogil:
        gathered_bytes(<const uint8_t**>&source[0], n, &at[0], &out[0])
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(at_arr),
                                                  pa.py_buffer(out_arr[:total])])


def _taken(values, order):
    """Arrow's take of ``order``, as one array when it fits one."""
    taken = values.take(pa.array(order, pa.int64()))
    if isinstance(taken, pa.ChunkedArray):
        try:
            return taken.combine_chunks()
        except (pa.ArrowInvalid, pa.ArrowCapacityError):  # past int32 offsets: kept chunked
            return taken
    return taken


# -- a key-led walk of the settlement order -----------------------------------------------------

def key_walk(ids, order, int64_t count):
    """Positions of ``order`` (int64, prep rows in settlement order) sorted stably by the key
    id of their row (``ids``: int64 per prep row, each in 0 … count − 1): (key id, discharge
    date, claim id) order, since ``order`` is in (date, claim id) order. A counting sort,
    O(n + count), in C without the GIL."""
    cdef const int64_t[::1] key = np.ascontiguousarray(ids, dtype=np.int64)
    cdef const int64_t[::1] rows = np.ascontiguousarray(order, dtype=np.int64)
    cdef int64_t n = len(rows), t, k, at
    out = np.empty(n, dtype=np.int64)
    nexts = np.zeros(count + 1, dtype=np.int64)
    cdef int64_t[::1] walk = out
    cdef int64_t[::1] next_at = nexts
    if len(key) != n:
        raise ValueError(f"key_walk: {len(key)} key ids for {n} rows")
    if n == 0:
        return out
    with nogil:
        for t in range(n):  # how many rows each key has, shifted by one (row order: the
            next_at[key[t] + 1] += 1  # same counts, read front to back)
        for k in range(count):  # where each key's first row goes
            next_at[k + 1] += next_at[k]
        for t in range(n):
            k = key[rows[t]]
            at = next_at[k]
            next_at[k] = at + 1
            walk[at] = t
    return out

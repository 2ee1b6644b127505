# cython: language_level=3
"""The claims' row checks and conversions, one pass per column over the Arrow buffers, nogil.

core/arrow_io.py numbers the row checks of a batch 0, 1, … in the order of its ``REASONS``
(a check is a reason on one column). Each pass here reads one column chunk by chunk (validity
bitmap, values; no ``combine_chunks``), converts it to its narrow engine column and lowers
``first[row]`` to the number of every check the row fails, so that after all passes
``first[row]`` is the first check the row fails, whatever order the passes ran in
(``NO_CHECK``: none). A check a column does not have is passed as ``NO_CHECK``.

Arrow layouts read (https://arrow.apache.org/docs/format/Columnar.html): a validity bitmap
(LSB first; absent: no nulls) at bit ``offset``; fixed-width values at element ``offset``
(integers, date32, decimals as little-endian two's complement of 4, 8, 16 or 32 bytes, and
booleans as a bitmap); strings as int32 offsets (n + 1, from element ``offset``) into a data
buffer. Callers hand over columns in the normal layout (arrow_io.normal_table): no
dictionaries, text as string, dates as date32.
"""
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t)
from libc.string cimport memcmp, memcpy, memset

from yibao.core._idhash cimport id_hash

import numpy as np
import pyarrow as pa

cdef extern from "Python.h":
    void* PyMem_RawMalloc(size_t n) nogil
    void* PyMem_RawCalloc(size_t count, size_t size) nogil
    void* PyMem_RawRealloc(void* p, size_t n) nogil
    void PyMem_RawFree(void* p) nogil

NO_CHECK = 32767  # first[row] of a row that fails no check (int16)
cdef int16_t NONE = 32767

cdef int64_t INT64_MAX = 9223372036854775807


cdef struct Chunk:
    const uint8_t* valid    # validity bitmap, NULL: no nulls in this chunk
    const uint8_t* values   # fixed-width values, a boolean bitmap, or string data
    const int32_t* offsets  # string offsets (NULL for other types)
    int64_t offset          # the array's offset: of its bits and of its values
    int64_t length          # rows
    int64_t start           # row number of its first row in the whole column


cdef inline bint bit(const uint8_t* bitmap, int64_t i) noexcept nogil:
    return (bitmap[i >> 3] >> (i & 7)) & 1


cdef inline bint valid_at(const Chunk* c, int64_t i) noexcept nogil:
    """Whether row ``i`` of the chunk is not null."""
    return c.valid == NULL or bit(c.valid, c.offset + i)


cdef inline void fail(int16_t* first, int64_t row, int16_t check) noexcept nogil:
    if check < first[row]:
        first[row] = check


cdef inline const uint8_t* address(buf):
    return <const uint8_t*><size_t>buf.address if buf is not None else NULL


cdef class Column:
    """The chunks of one Arrow column as C structs; holds the chunks (their buffers) alive."""
    cdef Chunk* chunks
    cdef int64_t count
    cdef list arrays
    cdef list nothing_valid  # an all-zero bitmap per chunk of type null (no buffers)

    def __cinit__(self, col):
        arrays = list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]
        self.arrays = [a for a in arrays if len(a)]
        self.nothing_valid = []
        self.count = len(self.arrays)
        self.chunks = <Chunk*>PyMem_RawMalloc(max(self.count, 1) * sizeof(Chunk))
        if self.chunks == NULL:
            raise MemoryError("no memory for the column's chunk list")
        cdef int64_t k, start = 0
        for k, arr in enumerate(self.arrays):
            bufs = arr.buffers()
            self.chunks[k].valid = address(bufs[0]) if arr.null_count else NULL
            if pa.types.is_null(arr.type):
                zeros = pa.py_buffer(bytes((arr.offset + len(arr) + 7) // 8))
                self.nothing_valid.append(zeros)  # (no [-1]: built without wraparound)
                self.chunks[k].valid = address(zeros)
            if pa.types.is_string(arr.type):
                self.chunks[k].offsets = <const int32_t*>address(bufs[1])
                self.chunks[k].values = address(bufs[2])
            else:
                self.chunks[k].offsets = NULL
                self.chunks[k].values = address(bufs[1]) if len(bufs) > 1 else NULL
            self.chunks[k].offset = arr.offset
            self.chunks[k].length = len(arr)
            self.chunks[k].start = start
            start += len(arr)

    def __dealloc__(self):
        PyMem_RawFree(self.chunks)


cdef int16_t[::1] _first(first):
    return first


# -- nulls -------------------------------------------------------------------------------------

def null_rows(col, first, int16_t k_null):
    """Check ``k_null`` on every null row of ``col`` (any type with a validity bitmap)."""
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t j, i
    cdef const Chunk* ch
    if k_null == NONE or len(f) == 0:
        return
    with nogil:
        for j in range(c.count):
            ch = &c.chunks[j]
            if ch.valid == NULL:
                continue
            for i in range(ch.length):
                if not bit(ch.valid, ch.offset + i):
                    fail(&f[0], ch.start + i, k_null)


# -- claim ids and key ids: one pass over the id columns ---------------------------------------
# One pass reads each row's claim id and the value of every key hashed here (the person, a
# family id falling back to the person): null and duplicate claim ids fail their checks, and
# each key's values are numbered 0, 1, … in order of first appearance (the ids engine._keys
# hands the kernel, which then does not hash the key columns again). ``claim_ids`` and
# ``key_ids`` run its two halves alone, for two threads (arrow_io._ids_beside). Rows go in blocks of
# BLOCK: a block's values are hashed and their table slots prefetched first, then probed, so
# the blocks' cache misses overlap instead of following one another (for millions of claims
# the claim-id table is tens of MB, read at random).
# Values are hashed by core/_idhash.pxd (8 bytes at a time; not the bucket hash, which is FNV-1a
# and part of the output contract): a table compares bytes wherever the stored bits of two
# hashes agree, so its ids and duplicates never depend on the hash, only its speed does.
# ``_collide_for_tests(bits)`` keeps only ``bits`` low bits of every hash (0: every value
# collides), so the tests reach the byte comparisons that real hashes almost never need.

cdef extern from *:
    """
    /* ask the memory system for *p now, read a few rows later (as core/_kernel.pyx does) */
    static inline void yb_ingest_prefetch(const void* p) {
    #if defined(__x86_64__) && defined(__GNUC__)
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char*)p));
    #else
        __builtin_prefetch(p, 0, 3);
    #endif
    }
    """
    void yb_ingest_prefetch(const void* p) noexcept nogil


cdef enum:
    BLOCK = 16  # rows hashed (and their slots prefetched) before any of them is probed
    OWN = 0  # a key's value from its own column
    FALLBACK = 1  # from its fallback column (the person), its own being null
    NO_VALUE = -1  # both null: the row has no key value (id -1)


cdef inline const Chunk* chunk_of(const Chunk* chunks, int64_t count, int64_t row) noexcept nogil:
    """The chunk holding ``row`` (binary search over the chunks' starts)."""
    cdef int64_t lo = 0, hi = count - 1, mid
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if chunks[mid].start <= row:
            lo = mid
        else:
            hi = mid - 1
    return &chunks[lo]


cdef inline const uint8_t* text_at(const Chunk* c, int64_t i, int64_t* size) noexcept nogil:
    cdef int64_t a = c.offsets[c.offset + i]
    size[0] = c.offsets[c.offset + i + 1] - a
    return c.values + a


cdef struct Cursor:
    # walks a column's rows in order across its chunks (columns of one table may be chunked
    # differently, so each keeps its own place)
    const Chunk* chunks
    int64_t j  # the chunk of the current row
    int64_t i  # the current row within it


cdef inline bint cursor_text(Cursor* k, const uint8_t** text, int64_t* size) noexcept nogil:
    """The current row's bytes (whether it is not null), then move to the next row."""
    cdef const Chunk* c = &k.chunks[k.j]
    cdef bint valid = valid_at(c, k.i)
    if valid:
        text[0] = text_at(c, k.i, size)
    k.i += 1
    if k.i == c.length:  # chunks are never empty (Column drops them)
        k.j += 1
        k.i = 0
    return valid


cdef uint64_t HASH_KEPT = 0xffffffffffffffffULL  # bits of each hash used (tests: fewer)


def _collide_for_tests(int bits):
    """Keep only the low ``bits`` bits of every id hash (64: all of them, the default), so
    that distinct values collide in the tables (tests of the byte comparisons)."""
    global HASH_KEPT
    HASH_KEPT = 0xffffffffffffffffULL if bits >= 64 else (<uint64_t>1 << bits) - 1


cdef inline uint64_t table_hash(const uint8_t* p, int64_t n, uint64_t seed) noexcept nogil:
    return id_hash(p, n, seed) & HASH_KEPT


cdef uint64_t ROW_BITS = 40  # a table entry: 24 bits of the hash over (row + 1) in 40 bits


cdef enum:
    HEAD = 16  # bytes of a key value kept in its record: a person id is compared without
    # reading the Arrow buffer (measured: each buffer read was a cache miss per row)


cdef struct KeyValue:
    # one distinct value of a key: 32 bytes, one cache line read to compare a row with it
    uint8_t head[HEAD]  # its first HEAD bytes (all of a short value)
    const uint8_t* text  # its bytes, in the Arrow buffers (alive for the pass)
    int64_t size_kind  # its length * 2 + its kind (OWN or FALLBACK)


cdef struct KeyTable:
    # the distinct values of one key, numbered: open addressing over their ids
    uint64_t* slots  # (24 bits of the hash << ROW_BITS) | (id + 1); 0: empty
    int64_t cap  # slots: a power of two, at least twice ``count``
    int64_t count  # ids given so far
    int64_t room  # ids the per-id arrays hold
    KeyValue* values  # per id: its value
    uint64_t* hash  # per id: the value's hash (to place it again when the table grows)


cdef struct KeyPass:
    Cursor own
    Cursor fallback
    bint has_fallback
    int64_t* ids  # out: per row, its value's id (-1: no value)
    KeyTable t
    uint64_t h[BLOCK]  # the block's hashes, bytes, lengths and kinds
    const uint8_t* text[BLOCK]
    int64_t size[BLOCK]
    int kind[BLOCK]


cdef void* zeroed_bytes(size_t size) noexcept nogil:
    """``size`` zero bytes (empty table slots), written once here. Not calloc: a large
    calloc is fresh pages the kernel maps to its zero page, and a table read before it is
    written then faults twice per page (the read maps the zero page, the first write copies
    it; w17 saw the write-protect faults' TLB shootdowns in ``perf``): written front to
    back, each page faults once. NULL: no memory."""
    cdef void* slots = PyMem_RawMalloc(size)
    if slots != NULL:
        memset(slots, 0, size)
    return slots


cdef uint64_t* zeroed_slots(int64_t cap) noexcept nogil:
    """``cap`` empty (0) 64-bit table slots (``zeroed_bytes``). NULL: no memory."""
    return <uint64_t*>zeroed_bytes(cap * sizeof(uint64_t))


cdef bint key_table_init(KeyTable* t) noexcept nogil:
    t.cap, t.count, t.room = 1024, 0, 512
    t.slots = <uint64_t*>PyMem_RawCalloc(t.cap, sizeof(uint64_t))
    t.values = <KeyValue*>PyMem_RawMalloc(t.room * sizeof(KeyValue))
    t.hash = <uint64_t*>PyMem_RawMalloc(t.room * sizeof(uint64_t))
    return t.slots != NULL and t.values != NULL and t.hash != NULL


cdef void key_table_free(KeyTable* t) noexcept nogil:
    PyMem_RawFree(t.slots)
    PyMem_RawFree(t.values)
    PyMem_RawFree(t.hash)


cdef inline void key_table_place(KeyTable* t, int64_t id) noexcept nogil:
    """Put ``id`` in the first free slot from its hash's (the table has room)."""
    cdef uint64_t h = t.hash[id]
    cdef int64_t mask = t.cap - 1
    cdef int64_t slot = <int64_t>(h & <uint64_t>mask)
    while t.slots[slot] != 0:
        slot = (slot + 1) & mask
    t.slots[slot] = ((h >> ROW_BITS) << ROW_BITS) | <uint64_t>(id + 1)


cdef bint key_table_grow(KeyTable* t) noexcept nogil:
    """Twice the slots (every id placed again) and twice the room for ids; False: no memory
    (the table still holds what it held)."""
    cdef int64_t cap = t.cap * 2, room = t.room * 2, d
    cdef uint64_t* slots = zeroed_slots(cap)
    if slots == NULL:
        return False
    cdef KeyValue* values = <KeyValue*>PyMem_RawRealloc(t.values, room * sizeof(KeyValue))
    if values != NULL:
        t.values = values
    cdef uint64_t* hashes = <uint64_t*>PyMem_RawRealloc(t.hash, room * sizeof(uint64_t))
    if hashes != NULL:
        t.hash = hashes
    if values == NULL or hashes == NULL:
        PyMem_RawFree(slots)
        return False
    PyMem_RawFree(t.slots)
    t.slots, t.cap, t.room = slots, cap, room
    for d in range(t.count):
        key_table_place(t, d)
    return True


cdef inline bint same_value(const KeyValue* v, const uint8_t* text, int64_t size,
                            int64_t size_kind) noexcept nogil:
    if v.size_kind != size_kind:
        return False
    if size <= HEAD:
        return memcmp(&v.head[0], text, size) == 0
    return memcmp(v.text, text, size) == 0


cdef inline int64_t key_id(KeyTable* t, uint64_t h, const uint8_t* text, int64_t size,
                           int kind) noexcept nogil:
    """The id of the value (``kind``, bytes), a new one if it is the first of its kind; -2:
    no memory."""
    cdef int64_t mask = t.cap - 1, slot = <int64_t>(h & <uint64_t>mask), d
    cdef int64_t size_kind = size * 2 + kind
    cdef uint64_t tag = h >> ROW_BITS, entry
    cdef KeyValue* v
    while True:
        entry = t.slots[slot]
        if entry == 0:
            break
        if entry >> ROW_BITS == tag:
            d = <int64_t>(entry & ((<uint64_t>1 << ROW_BITS) - 1)) - 1
            if same_value(&t.values[d], text, size, size_kind):
                return d
        slot = (slot + 1) & mask
    if 2 * (t.count + 1) > t.cap and not key_table_grow(t):
        return -2
    d = t.count
    v = &t.values[d]
    memcpy(&v.head[0], text, size if size < HEAD else HEAD)
    v.text, v.size_kind = text, size_kind
    t.hash[d] = h
    t.count += 1
    key_table_place(t, d)
    return d


cdef inline void key_prefetch_value(const KeyTable* t, uint64_t h) noexcept nogil:
    """Prefetch the record of the id in the value's first slot (read by ``key_id`` next)."""
    cdef uint64_t entry = t.slots[h & <uint64_t>(t.cap - 1)]
    if entry != 0 and entry >> ROW_BITS == h >> ROW_BITS:
        yb_ingest_prefetch(&t.values[<int64_t>(entry & ((<uint64_t>1 << ROW_BITS) - 1)) - 1])


cdef inline void key_hash_row(KeyPass* k, int b) noexcept nogil:
    """The next row's value of key ``k`` into place ``b`` of the block (its own column's,
    else the fallback's), hashed (the kind in the hash), its table slot prefetched."""
    cdef uint64_t h
    cdef const uint8_t* text
    cdef int64_t size
    k.kind[b] = NO_VALUE
    if cursor_text(&k.own, &k.text[b], &k.size[b]):
        k.kind[b] = OWN
    if k.has_fallback and cursor_text(&k.fallback, &text, &size) and k.kind[b] == NO_VALUE:
        k.text[b], k.size[b], k.kind[b] = text, size, FALLBACK
    if k.kind[b] == NO_VALUE:
        return
    h = table_hash(k.text[b], k.size[b], <uint64_t>k.kind[b])
    k.h[b] = h
    yb_ingest_prefetch(&k.t.slots[h & <uint64_t>(k.t.cap - 1)])


cdef struct ClaimBlock:
    # the block's claim ids: bytes, lengths, hashes, validity
    const uint8_t* text[BLOCK]
    int64_t size[BLOCK]
    uint64_t h[BLOCK]
    bint valid[BLOCK]


ctypedef fused slot_t:  # a claim-id table entry: (hash tag << row bits) | (row + 1)
    uint32_t  # rows numbered in NARROW_ROW_BITS bits or fewer: a table half as large
    uint64_t  # ROW_BITS bits of row


cdef int NARROW_ROW_BITS = 24  # 32-bit entries keep 8 or more bits of tag (2M claims: 21
# bits of row, 11 of tag; the table 16 MB, not 32: issue 14, m20)


def _wide_claim_table_for_tests(bint wide):
    """Enter the claim ids in 64-bit entries whatever the row count (True), as beyond
    2**NARROW_ROW_BITS rows, or in 32-bit ones where they fit (False, the default)."""
    global NARROW_ROW_BITS
    NARROW_ROW_BITS = 0 if wide else 24


cdef inline void claim_probe(slot_t* table, int64_t mask, int row_bits, const Chunk* chunks,
                             int64_t count, int64_t row, const uint8_t* a, int64_t la,
                             uint64_t h, int16_t* first, int16_t k_dup) noexcept nogil:
    """Enter claim id ``a`` of ``row``, or fail ``k_dup`` on it and on the row that has it.
    The entry's tag is the hash's top bits (the slot is its low ones)."""
    cdef int tag_bits = <int>(8 * sizeof(slot_t)) - row_bits
    cdef slot_t tag = <slot_t>(h >> (64 - tag_bits)), entry
    cdef slot_t row_mask = (<slot_t>1 << row_bits) - 1
    cdef int64_t slot = <int64_t>(h & <uint64_t>mask), other, lb
    cdef const Chunk* oc
    cdef const uint8_t* b
    while True:
        entry = table[slot]
        if entry == 0:
            table[slot] = (tag << row_bits) | <slot_t>(row + 1)
            return
        if entry >> row_bits == tag:
            other = <int64_t>(entry & row_mask) - 1
            oc = chunk_of(chunks, count, other)
            b = text_at(oc, other - oc.start, &lb)
            if la == lb and memcmp(a, b, la) == 0:
                fail(first, row, k_dup)
                fail(first, other, k_dup)
                return
        slot = (slot + 1) & mask


cdef int id_pass(const Chunk* chunks, int64_t count, int64_t n, int16_t* first,
                 int16_t k_null, int16_t k_dup, KeyPass* keys, int n_keys) noexcept nogil:
    """Null and duplicate claim ids (``chunks`` NULL: not checked), and each key's ids, in
    one pass (section comment). The claim-id table's entries hold a row number and the top
    bits of its value's 64-bit hash (``claim_probe``: 32-bit entries when the rows are
    numbered in NARROW_ROW_BITS bits, else 64-bit ones with 24 bits of tag), so a probe
    reads one table word and compares bytes only on a tag match (exact whatever the hash
    does). Every copy of a duplicated id fails ``k_dup``; nulls are never duplicates. -1: no
    memory (or more rows than 40 bits number)."""
    cdef int64_t cap = 16
    cdef int row_bits = 0, status
    cdef bint claims = chunks != NULL
    cdef void* table
    if <uint64_t>n >= (<uint64_t>1 << ROW_BITS) - 1:
        return -1
    while claims and cap < 2 * n:
        cap <<= 1
    while (<int64_t>1 << row_bits) <= n:  # row + 1 (1 … n) fits row_bits bits
        row_bits += 1
    if claims and row_bits <= NARROW_ROW_BITS:
        table = zeroed_bytes(cap * sizeof(uint32_t))  # 0: empty
        if table == NULL:
            return -1
        status = id_blocks(<uint32_t*>table, cap - 1, row_bits, chunks, count, n, first,
                           k_null, k_dup, keys, n_keys)
    else:
        table = zeroed_bytes(cap * sizeof(uint64_t))
        if table == NULL:
            return -1
        status = id_blocks(<uint64_t*>table, cap - 1, <int>ROW_BITS, chunks, count, n, first,
                           k_null, k_dup, keys, n_keys)
    PyMem_RawFree(table)
    return status


cdef int id_blocks(slot_t* table, int64_t mask, int row_bits, const Chunk* chunks,
                   int64_t count, int64_t n, int16_t* first, int16_t k_null, int16_t k_dup,
                   KeyPass* keys, int n_keys) noexcept nogil:
    """``id_pass``'s rows, a BLOCK at a time, the claim ids entered in ``table`` (``mask``
    + 1 zeroed slots). -1: no memory."""
    cdef int64_t start, row, m, b
    cdef int k
    cdef ClaimBlock blk
    cdef Cursor claim
    cdef bint claims = chunks != NULL
    claim.chunks, claim.j, claim.i = chunks, 0, 0
    start = 0
    while start < n:
        m = min(<int64_t>BLOCK, n - start)
        for b in range(m):  # hash the block, prefetch its slots
            blk.valid[b] = claims and cursor_text(&claim, &blk.text[b], &blk.size[b])
            if blk.valid[b]:
                blk.h[b] = table_hash(blk.text[b], blk.size[b], 0)
                yb_ingest_prefetch(&table[blk.h[b] & <uint64_t>mask])
            for k in range(n_keys):
                key_hash_row(&keys[k], <int>b)
        for b in range(m):  # the records of the slots' ids (read by the probes below)
            for k in range(n_keys):
                if keys[k].kind[b] != NO_VALUE:
                    key_prefetch_value(&keys[k].t, keys[k].h[b])
        for b in range(m):  # then probe
            row = start + b
            if blk.valid[b]:
                claim_probe(table, mask, row_bits, chunks, count, row, blk.text[b],
                            blk.size[b], blk.h[b], first, k_dup)
            elif claims:
                fail(first, row, k_null)
            for k in range(n_keys):
                if keys[k].kind[b] == NO_VALUE:
                    keys[k].ids[row] = -1
                    continue
                keys[k].ids[row] = key_id(&keys[k].t, keys[k].h[b], keys[k].text[b],
                                          keys[k].size[b], keys[k].kind[b])
                if keys[k].ids[row] < 0:
                    return -1
        start += m
    return 0


def _text_column(col, what: str) -> Column:
    if not pa.types.is_string(col.type):
        raise TypeError(f"{what} must be string (arrow_io.normal_table), not {col.type}")
    return Column(col)


def claim_and_key_ids(col, first, int16_t k_null, int16_t k_dup, keys=()):
    """Check ``k_null`` on null claim ids and ``k_dup`` on every row whose id occurs more than
    once (``col``: string; None: no claim ids checked), and number each key's values:
    ``keys`` is a sequence of (own column, fallback column or None), string columns of
    ``first``'s length; a row's value is its own column's, else (null) its fallback's, a
    value from the fallback never equal to one from the own column. Returns [(int64 id per
    row in order of first appearance, -1 for a row with no value; number of ids)] per key."""
    cdef Column c = _text_column(col, "claim_id") if col is not None else None
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f)
    cdef int n_keys = len(keys), k
    cdef int status = 0
    cdef int64_t[::1] ids_view
    columns = [(_text_column(own, "a key column"),
                None if fallback is None else _text_column(fallback, "a key column"))
               for own, fallback in keys]
    if any(len(own) != len(f) or (fallback is not None and len(fallback) != len(f))
           for own, fallback in keys):
        raise ValueError("every key column must have as many rows as the claim ids")
    out = [np.empty(n, dtype=np.int64) for _ in range(n_keys)]
    if n == 0:
        return [(ids, 0) for ids in out]
    cdef KeyPass* passes = <KeyPass*>PyMem_RawCalloc(max(n_keys, 1), sizeof(KeyPass))
    if passes == NULL:
        raise MemoryError("no memory for the key tables")
    cdef Column own_col, fallback_col
    cdef const Chunk* chunks = NULL
    cdef int64_t count = 0
    try:
        for k in range(n_keys):
            own_col, fallback_col = columns[k]
            passes[k].own.chunks = own_col.chunks
            passes[k].has_fallback = fallback_col is not None
            if fallback_col is not None:
                passes[k].fallback.chunks = fallback_col.chunks
            ids_view = out[k]
            passes[k].ids = &ids_view[0]
            if not key_table_init(&passes[k].t):
                raise MemoryError("no memory for the key tables")
        if c is not None:
            chunks, count = c.chunks, c.count
        with nogil:
            status = id_pass(chunks, count, n, &f[0], k_null, k_dup, passes, n_keys)
        if status < 0:
            raise MemoryError("no memory for the claim id and key hash tables")
        return [(out[k], int(passes[k].t.count)) for k in range(n_keys)]
    finally:
        for k in range(n_keys):
            key_table_free(&passes[k].t)
        PyMem_RawFree(passes)


def claim_ids(col, first, int16_t k_null, int16_t k_dup):
    """Check ``k_null`` on null claim ids and ``k_dup`` on every row whose id occurs more than
    once (``col``: string): ``claim_and_key_ids`` without keys."""
    claim_and_key_ids(col, first, k_null, k_dup)


def key_ids(keys, int64_t n):
    """``claim_and_key_ids``' key ids alone (no claim ids checked), over ``n`` rows: a pass
    that can run beside ``claim_ids`` on another thread."""
    return claim_and_key_ids(None, np.zeros(n, dtype=np.int16), NONE, NONE, keys)


# -- money: integer fen or decimal yuan to int64 fen -------------------------------------------

cdef inline int64_t int_value(const uint8_t* v, int64_t i, int width, bint signed) noexcept nogil:
    if width == 8:
        return (<const int64_t*>v)[i]
    if width == 4:
        return (<const int32_t*>v)[i] if signed else <int64_t>(<const uint32_t*>v)[i]
    if width == 2:
        return (<const int16_t*>v)[i] if signed else <int64_t>(<const uint16_t*>v)[i]
    return (<const int8_t*>v)[i] if signed else <int64_t>v[i]


cdef inline bint decimal_low(const uint8_t* v, int64_t i, int width, int64_t* low) noexcept nogil:
    """The low 64 bits of decimal ``i`` (two's complement, ``width`` bytes) into ``low``;
    whether the value fits in them (every higher word is the sign extension of the low)."""
    cdef const int64_t* words
    cdef int64_t sign
    cdef int w
    if width == 4:
        low[0] = (<const int32_t*>v)[i]
        return True
    words = (<const int64_t*>v) + i * (width // 8)
    low[0] = words[0]
    sign = words[0] >> 63
    for w in range(1, width // 8):
        if words[w] != sign:
            return False
    return True


cdef void money_pass(const Chunk* chunks, int64_t count, int width, bint signed,
                     bint decimal, int64_t factor, int64_t limit, int64_t* fen, int16_t* first,
                     int16_t k_null, int16_t k_beyond, int16_t k_negative) noexcept nogil:
    cdef int64_t j, i, row, value
    cdef const Chunk* c
    cdef bint fits
    for j in range(count):
        c = &chunks[j]
        for i in range(c.length):
            row = c.start + i
            fen[row] = 0
            if not valid_at(c, i):
                fail(first, row, k_null)
                continue
            if decimal:
                fits = decimal_low(c.values, c.offset + i, width, &value)
                if not fits or value < -limit or value > limit:
                    fail(first, row, k_beyond)
                    continue
                value = value * factor
            else:
                value = int_value(c.values, c.offset + i, width, signed)
            fen[row] = value
            if value < 0:
                fail(first, row, k_negative)


def money(col, first, int16_t k_null, int16_t k_beyond, int16_t k_negative):
    """int64 fen of a money column: integer fen (int8-int64, uint8-uint32) or decimal yuan with
    at most 2 places, exact, no float; a null or a value beyond int64 fen is 0 (checks
    ``k_null``, ``k_beyond``); a negative amount fails ``k_negative``."""
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f)
    fen_arr = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] fen = fen_arr
    t = col.type
    if not (_is_fen_integer(t) or pa.types.is_decimal(t)):
        raise TypeError(f"money is integer fen or decimal yuan, not {t}")
    cdef bint decimal = pa.types.is_decimal(t)
    cdef int width = t.byte_width
    cdef bint signed = decimal or pa.types.is_signed_integer(t)
    py_factor = 10 ** (2 - t.scale) if decimal else 1  # scale <= 2 (checked): fen per unit
    cdef int64_t limit = INT64_MAX // py_factor if py_factor <= INT64_MAX else 0
    cdef int64_t factor = py_factor if limit else 0  # limit 0: only 0 fits, and is 0 fen
    if n == 0:
        return fen_arr
    with nogil:
        money_pass(c.chunks, c.count, width, signed, decimal, factor, limit, &fen[0], &f[0],
                   k_null, k_beyond, k_negative)
    return fen_arr


def _is_fen_integer(t) -> bool:
    return pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32())


def exceeds(a, b, first, int16_t k):
    """Check ``k`` on every row where ``a`` > ``b`` (int64 fen)."""
    cdef const int64_t[::1] x = a
    cdef const int64_t[::1] y = b
    cdef int16_t[::1] f = _first(first)
    cdef int64_t i
    with nogil:
        for i in range(f.shape[0]):
            if x[i] > y[i]:
                fail(&f[0], i, k)


# -- dates, booleans, integers -----------------------------------------------------------------

def dates(col, first, int16_t k_null, int16_t k_period, int32_t lo, int32_t hi):
    """int32 days of a date32 column (0 for null, check ``k_null``); ``k_period`` on every
    row whose day (null: 0) is outside [lo, hi]."""
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f), j, i, row
    days_arr = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] days = days_arr
    cdef const Chunk* ch
    cdef int32_t d
    if n == 0:
        return days_arr
    with nogil:
        for j in range(c.count):
            ch = &c.chunks[j]
            for i in range(ch.length):
                row = ch.start + i
                d = 0
                if valid_at(ch, i):
                    d = (<const int32_t*>ch.values)[ch.offset + i]
                else:
                    fail(&f[0], row, k_null)
                days[row] = d
                if d < lo or d > hi:
                    fail(&f[0], row, k_period)
    return days_arr


def booleans(col, first, int16_t k_null):
    """numpy bool of a boolean column (False for null, check ``k_null``)."""
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f), j, i, row
    out_arr = np.empty(n, dtype=np.uint8)
    cdef uint8_t[::1] out = out_arr
    cdef const Chunk* ch
    if n == 0:
        return out_arr.view(bool)
    with nogil:
        for j in range(c.count):
            ch = &c.chunks[j]
            for i in range(ch.length):
                row = ch.start + i
                if valid_at(ch, i):
                    out[row] = bit(ch.values, ch.offset + i)
                else:
                    out[row] = 0
                    fail(&f[0], row, k_null)
    return out_arr.view(bool)


ctypedef fused narrow_int:
    int8_t
    int16_t
    int32_t
    int64_t


cdef void int_pass(const Chunk* chunks, int64_t count, int width, bint signed,
                   narrow_int* out, const int64_t* dom, int64_t m, bint closed,
                   int16_t* first, int16_t k_null, int16_t k_unknown) noexcept nogil:
    cdef int64_t j, i, row, value, d
    cdef const Chunk* c
    cdef bint known
    for j in range(count):
        c = &chunks[j]
        for i in range(c.length):
            row = c.start + i
            out[row] = 0
            if not valid_at(c, i):
                fail(first, row, k_null)
                continue
            value = int_value(c.values, c.offset + i, width, signed)
            out[row] = <narrow_int>value
            if closed:
                known = False
                for d in range(m):
                    if dom[d] == value:
                        known = True
                        break
                if not known:
                    fail(first, row, k_unknown)


def narrow_dtype(t) -> np.dtype:
    """The numpy type an integer column keeps: its own, an unsigned one the signed type twice
    as wide (uint8 -> int16, …, uint32 -> int64)."""
    width = t.byte_width if pa.types.is_signed_integer(t) else 2 * t.byte_width
    return np.dtype(f"int{8 * width}")


def integers(col, first, int16_t k_null, int16_t k_unknown, domain):
    """An integer column (int8-int64, uint8-uint32) in a numpy type as narrow as its own
    (``narrow_dtype``; 0 for null, check ``k_null``), and ``k_unknown`` on every non-null
    value outside ``domain`` (None: an open column)."""
    t = col.type
    cdef int width = t.byte_width
    cdef bint signed = pa.types.is_signed_integer(t)
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f)
    out_arr = np.empty(n, dtype=narrow_dtype(t))
    dom_arr = np.asarray(domain if domain is not None else [0], np.int64)
    cdef const int64_t[::1] dom = dom_arr
    cdef int64_t m = len(domain) if domain is not None else 0
    cdef bint closed = domain is not None
    cdef int8_t[::1] o8
    cdef int16_t[::1] o16
    cdef int32_t[::1] o32
    cdef int64_t[::1] o64
    if n == 0:
        return out_arr
    if out_arr.dtype == np.int8:
        o8 = out_arr
        with nogil:
            int_pass(c.chunks, c.count, width, signed, &o8[0], &dom[0], m, closed, &f[0],
                     k_null, k_unknown)
    elif out_arr.dtype == np.int16:
        o16 = out_arr
        with nogil:
            int_pass(c.chunks, c.count, width, signed, &o16[0], &dom[0], m, closed, &f[0],
                     k_null, k_unknown)
    elif out_arr.dtype == np.int32:
        o32 = out_arr
        with nogil:
            int_pass(c.chunks, c.count, width, signed, &o32[0], &dom[0], m, closed, &f[0],
                     k_null, k_unknown)
    else:
        o64 = out_arr
        with nogil:
            int_pass(c.chunks, c.count, width, signed, &o64[0], &dom[0], m, closed, &f[0],
                     k_null, k_unknown)
    return out_arr


# -- text of a closed domain: its code ---------------------------------------------------------

ctypedef fused code_int:
    int8_t
    int16_t


cdef void code_pass(const Chunk* chunks, int64_t count, const uint8_t* words,
                    const int64_t* at, int64_t m, code_int* codes, int16_t* first,
                    int16_t k_null, int16_t k_unknown) noexcept nogil:
    cdef int64_t j, i, row, d, size
    cdef const Chunk* c
    cdef const uint8_t* text
    cdef int64_t code
    for j in range(count):
        c = &chunks[j]
        for i in range(c.length):
            row = c.start + i
            if not valid_at(c, i):
                codes[row] = -1
                fail(first, row, k_null)
                continue
            text = text_at(c, i, &size)
            code = -1
            for d in range(m):
                if at[d + 1] - at[d] == size and memcmp(words + at[d], text, size) == 0:
                    code = d
                    break
            codes[row] = <code_int>code
            if code < 0:
                fail(first, row, k_unknown)


def domain_codes(col, first, int16_t k_null, int16_t k_unknown, domain):
    """Index of each value of a string column in ``domain`` (a tuple), as int8 (int16 for more
    than 127 values); -1 for null (check ``k_null``) and for a value outside it (check
    ``k_unknown``). A domain is small: each row is compared with its values by length, then
    bytes."""
    values = [str(v).encode("utf-8") for v in domain]
    cdef int64_t m = len(values)
    if m > 32767:
        raise ValueError("a domain of more than 32,767 values")
    joined = b"".join(values) + b"\0"
    bounds = np.zeros(m + 1, dtype=np.int64)
    bounds[1:] = np.cumsum([len(v) for v in values])
    cdef const int64_t[::1] at = bounds
    cdef const uint8_t* words = joined
    cdef Column c = Column(col)
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f)
    codes_arr = np.empty(n, dtype=np.int8 if m < 128 else np.int16)
    cdef int8_t[::1] c8
    cdef int16_t[::1] c16
    if n == 0:
        return codes_arr
    if m < 128:
        c8 = codes_arr
        with nogil:
            code_pass(c.chunks, c.count, words, &at[0], m, &c8[0], &f[0], k_null, k_unknown)
    else:
        c16 = codes_arr
        with nogil:
            code_pass(c.chunks, c.count, words, &at[0], m, &c16[0], &f[0], k_null, k_unknown)
    return codes_arr


# -- a closed domain's text given as a dictionary: its code from the dictionary's -----------------
# Parquet files often hold such columns (a tier, a setting) dictionary-encoded. Decoding them
# (arrow_io.normal_table) made 2M strings per column only for ``domain_codes`` to compare each
# with the domain (issue 14, m18: 2M claims, two columns, ≈ 0.1 s of CPU and their string
# buffers in fresh memory). Here each chunk's dictionary (a few values) is coded once and every
# row takes its index's code: the same codes and checks as decoding then ``domain_codes``.

cdef void coded_pass(const Chunk* c, int64_t start, int width,
                     bint signed, const int16_t* entry_code, const int16_t* entry_fail,
                     int64_t entries, int16_t* out16, int8_t* out8, int16_t* first,
                     int16_t k_null) noexcept nogil:
    """Rows ``start`` … of one chunk of dictionary indices (``c``): each row's code is its
    entry's (``entry_code``; -1 for none), its check the entry's (``entry_fail``); a null
    index is -1 and fails ``k_null``. Writes ``out16`` or ``out8`` (one is NULL)."""
    cdef int64_t i, row, idx
    cdef int16_t code
    for i in range(c.length):
        row = start + i
        code = -1
        if not valid_at(c, i):
            fail(first, row, k_null)
        else:
            idx = int_value(c.values, c.offset + i, width, signed)
            if 0 <= idx < entries:
                code = entry_code[idx]
                fail(first, row, entry_fail[idx])
        if out16 != NULL:
            out16[row] = code
        else:
            out8[row] = <int8_t>code


def dictionary_codes(col, first, int16_t k_null, int16_t k_unknown, domain):
    """``domain_codes`` of a dictionary-encoded text column (every chunk a dictionary array
    of string-like values, any integer indices), without decoding it: a row's value is null
    when its index or its dictionary entry is (check ``k_null``), else outside ``domain``
    (check ``k_unknown``) or its index there (int8; int16 beyond 127 values)."""
    m = len(domain)
    if m > 32767:
        raise ValueError("a domain of more than 32,767 values")
    cdef int16_t[::1] f = _first(first)
    cdef int64_t n = len(f), start = 0, entries
    codes_arr = np.empty(n, dtype=np.int8 if m < 128 else np.int16)
    cdef int16_t* out16 = NULL
    cdef int8_t* out8 = NULL
    cdef int8_t[::1] c8
    cdef int16_t[::1] c16
    if n == 0:
        return codes_arr
    if m < 128:
        c8 = codes_arr
        out8 = &c8[0]
    else:
        c16 = codes_arr
        out16 = &c16[0]
    cdef Column idx
    cdef const int16_t[::1] code_v
    cdef const int16_t[::1] fail_v
    cdef int width
    cdef bint signed
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        code_of, fail_of = _entry_codes(chunk.dictionary, k_null, k_unknown, domain)
        code_v, fail_v = code_of, fail_of
        entries = len(code_of)
        idx = Column(chunk.indices)
        width = chunk.indices.type.byte_width
        signed = pa.types.is_signed_integer(chunk.indices.type)
        with nogil:
            coded_pass(&idx.chunks[0], start, width, signed, &code_v[0], &fail_v[0],
                       entries, out16, out8, &f[0], k_null)
        start += len(chunk)
    return codes_arr


def _entry_codes(dictionary, int16_t k_null, int16_t k_unknown, domain) -> tuple:
    """(int16 code of each dictionary entry, -1 for none; int16 check it fails, NO_CHECK for
    none): ``domain_codes`` of the entries, with checks 0 (null) and 1 (unknown) renumbered."""
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    entries = len(dictionary)
    found = np.full(max(entries, 1), NONE, dtype=np.int16)
    codes = np.full(max(entries, 1), -1, dtype=np.int16)
    if entries:
        codes[:entries] = domain_codes(dictionary, found[:entries], 0, 1, domain)
    fails = np.where(found == 0, k_null, np.where(found == 1, k_unknown, NONE))
    return codes, np.ascontiguousarray(fails, dtype=np.int16)

# cython: language_level=3
"""The CHS-DRG kernel: per-claim grouping over int code ids and bitsets, without the GIL.

Semantics are those of ``reference.py`` (the oracle); ``compile.py`` builds the tables and
``drg.py`` maps Arrow columns to ids. Nothing here touches a string or a Python object
inside the claim loop.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
import numpy as np
import pyarrow as pa


cdef inline bint has_bit(const uint64_t* bits, int32_t words, int32_t row, int32_t bit) noexcept nogil:
    return (bits[<int64_t>row * words + (bit >> 6)] >> (bit & 63)) & 1


cdef inline bint dx_in(const DrgTablesC* t, int32_t dx, int32_t bit) noexcept nogil:
    return dx >= 0 and bit >= 0 and has_bit(t.dx_bits, t.dx_words, dx, bit)


cdef inline bint proc_in(const DrgTablesC* t, int32_t p, int32_t bit) noexcept nogil:
    return p >= 0 and has_bit(t.proc_bits, t.proc_words, p, bit)


cdef inline int32_t principal_proc(const ClaimsC* c, int64_t i) noexcept nogil:
    """First non-null procedure of claim i, or CODE_NULL."""
    cdef int64_t k
    for k in range(c.proc_start[i], c.proc_end[i]):
        if c.proc[k] != CODE_NULL:
            return c.proc[k]
    return CODE_NULL


cdef inline int popcount32(uint32_t x) noexcept nogil:
    cdef int n = 0
    while x:
        x &= x - 1
        n += 1
    return n


cdef bint any_dx_in(const DrgTablesC* t, const ClaimsC* c, int64_t i, int32_t bit) noexcept nogil:
    cdef int64_t k
    if dx_in(t, c.pdx[i], bit):
        return True
    for k in range(c.sdx_start[i], c.sdx_end[i]):
        if dx_in(t, c.sdx[k], bit):
            return True
    return False


cdef bint any_proc_in(const DrgTablesC* t, const ClaimsC* c, int64_t i, int32_t bit) noexcept nogil:
    cdef int64_t k
    for k in range(c.proc_start[i], c.proc_end[i]):
        if proc_in(t, c.proc[k], bit):
            return True
    return False


cdef bint multiple_trauma(const DrgTablesC* t, const ClaimsC* c, int64_t i) noexcept nogil:
    """Two different trauma codes in two different body regions (a code listed under two
    regions counts once): two distinct codes with a region, and two regions among them."""
    cdef uint32_t mask = t.dx_regions[c.pdx[i]], m
    cdef int32_t first = c.pdx[i] if mask else -1, x
    cdef bint two_codes = False
    cdef int64_t k
    for k in range(c.sdx_start[i], c.sdx_end[i]):
        x = c.sdx[k]
        if x < 0:
            continue
        m = t.dx_regions[x]
        if m == 0:
            continue
        mask |= m
        if first < 0:
            first = x
        elif x != first:
            two_codes = True
    return two_codes and popcount32(mask) >= 2


cdef bint any_or_proc(const DrgTablesC* t, const ClaimsC* c, int64_t i) noexcept nogil:
    cdef int64_t k
    for k in range(c.proc_start[i], c.proc_end[i]):
        if proc_in(t, c.proc[k], t.or_bit):
            return True
    return False


cdef int check(const DrgTablesC* t, const ClaimsC* c, int64_t i, int32_t pproc,
               int32_t kind, int32_t arg) noexcept nogil:
    """One condition: R_TRUE / R_FALSE, or R_NEEDS_DAYS / R_NEEDS_WEIGHT when it reads an
    age_days / birth weight the claim does not have."""
    cdef int32_t v
    if kind == C_PPROC_IN:             # the common one (surgical ADRGs) first
        return proc_in(t, pproc, arg)
    if kind == C_PDX_IN:
        return dx_in(t, c.pdx[i], arg)
    if kind == C_ANYDX_IN:
        return any_dx_in(t, c, i, arg)
    if kind == C_ANYPROC_IN:
        return any_proc_in(t, c, i, arg)
    if kind == C_PPROC_OR:
        return proc_in(t, pproc, t.or_bit)
    if kind == C_NO_OR_PROC:
        return not any_or_proc(t, c, i)
    if kind == C_SEX_EQ:
        return c.sex[i] == arg
    if kind == C_AGE_EQ:
        return c.age[i] == arg
    if kind == C_AGE_DAYS_LT or kind == C_AGE_DAYS_GE:
        v = c.age_days[i]
        if v == NULL_INT:
            return R_NEEDS_DAYS
        return v < arg if kind == C_AGE_DAYS_LT else v >= arg
    if kind == C_WEIGHT_LT or kind == C_WEIGHT_GE:
        v = c.weight[i]
        if v == NULL_INT or v == 0:
            return R_NEEDS_WEIGHT
        return v < arg if kind == C_WEIGHT_LT else v >= arg
    if kind == C_TRAUMA_REGIONS_GE:
        return multiple_trauma(t, c, i)
    return R_FALSE


cdef inline int any_rule(const DrgTablesC* t, const ClaimsC* c, int64_t i, int32_t pproc,
                         const int32_t* rules, int32_t n) noexcept nogil:
    """OR over the given (stripped) rules of AND over their conditions: R_TRUE if one holds,
    else the R_NEEDS_* bits of the rules left undecided (R_FALSE when none is)."""
    cdef int32_t j, r, k
    cdef int got, pending, undecided = R_FALSE
    for j in range(n):
        r = rules[j]
        pending = 0                    # R_NEEDS_* bits so far; -1 once a condition is false
        for k in range(t.strip_start[r], t.strip_start[r + 1]):
            got = check(t, c, i, pproc, t.strip_kind[k], t.strip_arg[k])
            if got == R_FALSE:
                pending = -1
                break
            if got != R_TRUE:
                pending |= got
        if pending == 0:
            return R_TRUE
        if pending > 0:
            undecided |= pending
    return undecided


cdef int8_t validate(const ClaimsC* c, int64_t i) noexcept nogil:
    cdef int64_t k
    if c.pdx[i] < 0:
        return S_INVALID_PDX
    for k in range(c.sdx_start[i], c.sdx_end[i]):
        if c.sdx[k] == CODE_UNKNOWN:
            return S_INVALID_SDX
    for k in range(c.proc_start[i], c.proc_end[i]):
        if c.proc[k] == CODE_UNKNOWN:
            return S_INVALID_PROC
    if c.sex[i] != 1 and c.sex[i] != 2:
        return S_INVALID_SEX
    if c.age[i] < 0 or (c.age_days[i] != NULL_INT and c.age_days[i] < 0):
        return S_INVALID_AGE        # NULL_INT is negative, so a null age lands here too
    if c.weight[i] != NULL_INT and c.weight[i] < 0:
        return S_INVALID_WEIGHT
    return S_OK


cdef int severity(const DrgTablesC* t, const ClaimsC* c, int64_t i) noexcept nogil:
    """2 MCC / 1 CC / 0: a secondary counts unless its table equals the principal's CCE."""
    cdef int32_t own = t.dx_cce[c.pdx[i]], x, mcc, cc
    cdef int best = 0
    cdef int64_t k
    for k in range(c.sdx_start[i], c.sdx_end[i]):
        x = c.sdx[k]
        if x < 0:
            continue
        mcc = t.dx_sev[2 * x]
        cc = t.dx_sev[2 * x + 1]
        if mcc >= 0 and mcc != own:
            return 2
        if cc >= 0 and cc != own:
            best = 1
    return best


cdef void group_one(const DrgTablesC* t, const ClaimsC* c, int64_t i, ResultC* out) noexcept nogil:
    cdef int32_t pproc = principal_proc(c, i), adrg, first_mdc = -1, other
    out.mdc[i] = -1
    out.adrg[i] = -1
    out.drg[i] = -1
    out.status[i] = validate(c, i)
    if out.status[i] != S_OK:
        return
    # The dx's precompiled walk: only rules whose pdx_in conditions the dx meets, stripped
    # of them; an MDC that fails jumps to the next MDC item.
    cdef int32_t k = t.program_start[t.dx_program[c.pdx[i]]], end, hdr, nr, cur = -1
    end = t.program_start[t.dx_program[c.pdx[i]] + 1]
    cdef int ok
    while k < end:
        hdr = t.program[k]
        if hdr & 1:                    # one principal-procedure bit
            ok = proc_in(t, pproc, t.program[k + 1])
            k += 2
        else:
            nr = t.program[k + 1]
            ok = any_rule(t, c, i, pproc, t.program + k + 2, nr)
            k += nr + 2
        if ok > R_TRUE:                # undecided: the claim lacks the value that decides
            out.status[i] = S_MISSING_AGE_DAYS if ok & R_NEEDS_DAYS else S_MISSING_WEIGHT
            out.mdc[i] = hdr >> 2 if hdr & 2 else cur
            out.adrg[i] = -1 if hdr & 2 else hdr >> 2
            return
        if hdr & 2:
            if ok:
                cur = hdr >> 2
                if first_mdc < 0:
                    first_mdc = cur
                k += 1
            else:
                k = t.program[k]       # the next MDC item
        elif ok:
            adrg = hdr >> 2
            out.mdc[i] = cur
            out.adrg[i] = adrg
            out.drg[i] = t.adrg_drg[adrg * 3 + severity(t, c, i)]
            return
    out.mdc[i] = first_mdc
    other = t.female_bit if c.sex[i] == 1 else t.male_bit
    if dx_in(t, c.pdx[i], other):
        out.status[i] = S_SEX_CONFLICT
    elif first_mdc >= 0:
        out.status[i] = S_NO_ADRG
    else:
        out.status[i] = S_NO_MDC


cdef void group_claims(const DrgTablesC* t, const ClaimsC* c, ResultC* out) noexcept nogil:
    cdef int64_t i
    for i in range(c.n):
        group_one(t, c, i, out)


def run(dict tab, dict cols):
    """Group claims given compiled tables (``compile.compile_tables``) and claim columns
    (numpy arrays, see ``drg._claim_columns``); returns (status, mdc, adrg, drg) arrays."""
    cdef const uint64_t[::1] dx_bits = tab["dx_bits"].ravel()
    cdef const uint64_t[::1] proc_bits = tab["proc_bits"].ravel()
    cdef const int32_t[::1] dx_sev = tab["dx_sev"].ravel(), dx_cce = tab["dx_cce"]
    cdef const int32_t[::1] dx_prog = tab["dx_program"], prog_start = tab["program_start"]
    cdef const int32_t[::1] prog = tab["program"], sk = tab["strip_kind"], sa = tab["strip_arg"]
    cdef const int32_t[::1] sst = tab["strip_start"]
    cdef const uint32_t[::1] dx_regions = tab["dx_regions"]
    cdef const int32_t[::1] ad = tab["adrg_drg"].ravel()
    cdef const int32_t[::1] pdx = cols["pdx"], sdx = cols["sdx"], proc = cols["proc"]
    cdef const int64_t[::1] ss = cols["sdx_start"], se = cols["sdx_end"]
    cdef const int64_t[::1] ps = cols["proc_start"], pe = cols["proc_end"]
    cdef const int32_t[::1] sex = cols["sex"], age = cols["age"]
    cdef const int32_t[::1] age_days = cols["age_days"], weight = cols["weight"]
    cdef int64_t n = pdx.shape[0]
    status = np.empty(n, dtype=np.int8)
    mdc = np.empty(n, dtype=np.int32)
    adrg = np.empty(n, dtype=np.int32)
    drg = np.empty(n, dtype=np.int32)
    if n == 0:
        return status, mdc, adrg, drg
    cdef int8_t[::1] st_v = status
    cdef int32_t[::1] mdc_v = mdc, adrg_v = adrg, drg_v = drg
    cdef DrgTablesC t
    cdef ClaimsC c
    cdef ResultC out
    # Code lists may be empty for a whole batch; point at a dummy then (never read).
    cdef int32_t dummy = CODE_NULL
    t.dx_bits = &dx_bits[0]; t.dx_words = tab["dx_bits"].shape[1]
    t.proc_bits = &proc_bits[0]; t.proc_words = tab["proc_bits"].shape[1]
    t.or_bit = tab["or_bit"]; t.male_bit = tab["male_bit"]; t.female_bit = tab["female_bit"]
    t.dx_sev = &dx_sev[0]; t.dx_cce = &dx_cce[0]
    t.dx_program = &dx_prog[0]; t.program_start = &prog_start[0]
    t.program = &prog[0] if prog.shape[0] else &dummy
    t.strip_kind = &sk[0] if sk.shape[0] else &dummy
    t.strip_arg = &sa[0] if sa.shape[0] else &dummy
    t.strip_start = &sst[0]
    t.dx_regions = &dx_regions[0]
    t.adrg_drg = &ad[0]
    c.n = n
    c.pdx = &pdx[0]; c.sex = &sex[0]; c.age = &age[0]
    c.age_days = &age_days[0]; c.weight = &weight[0]
    c.sdx_start = &ss[0]; c.sdx_end = &se[0]; c.proc_start = &ps[0]; c.proc_end = &pe[0]
    c.sdx = &sdx[0] if sdx.shape[0] else &dummy
    c.proc = &proc[0] if proc.shape[0] else &dummy
    out.status = &st_v[0]; out.mdc = &mdc_v[0]; out.adrg = &adrg_v[0]; out.drg = &drg_v[0]
    with nogil:
        group_claims(&t, &c, &out)
    return status, mdc, adrg, drg


# ---- code -> id: one open-addressing hash of the valid code list, built once per tables ----

cimport cython
from libc.string cimport memcpy


cdef inline uint64_t tail_word(const unsigned char* p, int64_t n) noexcept nogil:
    """The last 1..7 bytes of a code as one little-endian word (no variable-size memcpy)."""
    cdef uint64_t w = 0
    cdef int64_t k
    for k in range(n - 1, -1, -1):
        w = (w << 8) | p[k]
    return w


cdef enum:
    KEY_WORDS = 3                # codes up to 24 bytes live inside their hash slot


cdef inline bint load_key(const unsigned char* p, int64_t n, uint64_t* w) noexcept nogil:
    """Zero-padded 8-byte words of a code; False when it is longer than KEY_WORDS words."""
    cdef int64_t k = 0, j = 0
    w[0] = 0
    w[1] = 0
    w[2] = 0
    if n > 8 * KEY_WORDS:
        return False
    while k + 8 <= n:
        memcpy(&w[j], p + k, 8)
        k += 8
        j += 1
    if k < n:
        w[j] = tail_word(p + k, n - k)
    return True


cdef inline uint64_t hash_key(const uint64_t* w, int64_t n) noexcept nogil:
    cdef uint64_t h = <uint64_t>n * 0x9E3779B97F4A7C15ULL
    h = (h ^ w[0]) * 0xFF51AFD7ED558CCDULL
    h = (h ^ w[1]) * 0xC4CEB9FE1A85EC53ULL
    h = (h ^ w[2]) * 0xFF51AFD7ED558CCDULL
    h ^= h >> 33                       # fmix64: spread the high bits into the low ones
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


def build_code_index(codes):
    """Hash index of ``codes`` (a list of str; id = position) for ``lookup_codes``, or None
    when a code is longer than 24 bytes: ``(slots, keys)``. A slot is one uint64, the upper
    32 hash bits and ``id + 1`` (0: empty), so the probed table is small (8 bytes a slot);
    ``keys[id]`` holds the code's zero-padded bytes and its length for the final compare."""
    raw = [c.encode("utf-8") for c in codes]
    if any(len(b) > 8 * KEY_WORDS for b in raw):
        return None
    size = 16
    while size < 2 * len(raw):         # load factor at most 1/2
        size <<= 1
    slots = np.zeros(size, dtype=np.uint64)
    keys = np.zeros((max(len(raw), 1), KEY_WORDS + 1), dtype=np.uint64)
    cdef uint64_t[::1] sv = slots
    cdef uint64_t[:, ::1] kv = keys
    cdef uint64_t mask = size - 1, h, hf
    cdef uint64_t w[KEY_WORDS]
    cdef bytes b
    cdef int32_t i
    for i, b in enumerate(raw):
        load_key(b, len(b), w)
        hf = hash_key(w, len(b))
        h = hf & mask
        while sv[h] != 0:
            h = (h + 1) & mask
        sv[h] = ((hf >> 32) << 32) | <uint64_t>(i + 1)
        kv[i, 0] = w[0]
        kv[i, 1] = w[1]
        kv[i, 2] = w[2]
        kv[i, KEY_WORDS] = len(b)
    return slots, keys


@cython.boundscheck(False)
@cython.wraparound(False)
def lookup_codes(index, values, int32_t null_id):
    """int32 ids of a pyarrow ``string`` Array (sliced or not) in ``index``
    (``build_code_index``): the code's id, CODE_UNKNOWN when absent, ``null_id`` for a
    null element. One hash probe per value, without the GIL."""
    cdef int64_t n = len(values), off = values.offset, i, s, e, j
    out = np.empty(n, dtype=np.int32)
    if n == 0:
        return out
    bufs = values.buffers()
    cdef const int32_t[::1] vo = np.frombuffer(bufs[1], dtype=np.int32)
    data_buf = bufs[2] if bufs[2] is not None and bufs[2].size else b"\0"
    cdef const unsigned char[::1] vd = np.frombuffer(data_buf, dtype=np.uint8)
    valid_buf = bufs[0] if values.null_count else None
    cdef const unsigned char[::1] vb = np.frombuffer(valid_buf or b"\0", dtype=np.uint8)
    cdef bint has_nulls = valid_buf is not None
    cdef const uint64_t[::1] sl = index[0]
    cdef const uint64_t[:, ::1] kv = index[1]
    cdef uint64_t mask = sl.shape[0] - 1, h, hf, slot, tag
    cdef uint64_t w[KEY_WORDS]
    cdef int32_t[::1] ov = out
    cdef int32_t kid
    with nogil:
        for i in range(n):
            j = off + i
            if has_nulls and not ((vb[j >> 3] >> (j & 7)) & 1):
                ov[i] = null_id
                continue
            s = vo[j]
            e = vo[j + 1]
            ov[i] = CODE_UNKNOWN
            if not load_key(&vd[0] + s, e - s, w):
                continue
            hf = hash_key(w, e - s)
            h = hf & mask
            tag = hf >> 32
            while True:
                slot = sl[h]
                if slot == 0:
                    break
                if (slot >> 32) == tag:
                    kid = <int32_t><uint32_t>slot - 1
                    if kv[kid, 0] == w[0] and kv[kid, 1] == w[1] and kv[kid, 2] == w[2] \
                            and kv[kid, KEY_WORDS] == <uint64_t>(e - s):
                        ov[i] = kid
                        break
                h = (h + 1) & mask
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
def names_from_ids(ids, names):
    """pyarrow string Array of ``names[ids[i]]`` (null where ``ids[i] < 0``): the offsets
    and bytes are written in one nogil pass each, no ``take`` over strings."""
    cdef const int32_t[::1] iv = np.ascontiguousarray(ids, dtype=np.int32)
    cdef int64_t n = iv.shape[0], i, pos = 0, nulls = 0
    raw = [s.encode("utf-8") for s in names]
    name_off = np.zeros(len(raw) + 1, dtype=np.int64)
    name_off[1:] = np.cumsum([len(b) for b in raw]) if raw else []
    cdef const int64_t[::1] no = name_off
    cdef const unsigned char[::1] nd = np.frombuffer(b"".join(raw) + b"\0", dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int32)
    valid = np.zeros((n + 7) // 8, dtype=np.uint8)
    cdef int32_t[::1] ov = offsets
    cdef uint8_t[::1] vv = valid
    cdef int32_t x
    with nogil:
        for i in range(n):
            ov[i] = <int32_t>pos
            x = iv[i]
            if x >= 0:
                pos += no[x + 1] - no[x]
                vv[i >> 3] |= <uint8_t>(1 << (i & 7))
            else:
                nulls += 1
        ov[n] = <int32_t>pos
    data = np.empty(max(pos, 1), dtype=np.uint8)
    cdef uint8_t[::1] dv = data
    with nogil:
        for i in range(n):
            x = iv[i]
            if x >= 0:
                memcpy(&dv[0] + ov[i], &nd[0] + no[x], no[x + 1] - no[x])
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(valid) if nulls else None,
        nulls)

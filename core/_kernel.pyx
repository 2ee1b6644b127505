# cython: language_level=3
"""The settlement kernel: one nogil pass over claims in settlement order.

lower.py evaluates everything that depends on a claim alone into arrays (vectorised), and
hands this module the stateful part: deductibles consumed, band positions, cap room and kept
burden, per accumulator key and policy year. See _kernel.pxd for the contract.
"""
from libc.stdint cimport int64_t, int32_t, uint8_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from yibao.core._checked cimport yb_add, yb_sub

import numpy as np

cdef extern from *:
    """
    typedef __int128 yb_i128;
    /* round_half_up(amount * ratio / 1e6), half away from zero, exact in 128 bits; sets
       *over when the result leaves int64 (money.round_half_up, money.fits_int64) */
    static int64_t yb_mul_ratio_wide(int64_t amount, int64_t ratio, int* over) {
        yb_i128 p = (yb_i128)amount * (yb_i128)ratio;
        int neg = p < 0;
        if (neg) p = -p;
        yb_i128 q = p / 1000000, r = p % 1000000;
        if (2 * r >= 1000000) q += 1;
        if (neg) q = -q;
        if (q > (yb_i128)INT64_MAX || q < (yb_i128)INT64_MIN) { *over = 1; return 0; }
        return (int64_t)q;
    }
    /* the same where amount × ratio fits int64 (every real claim): a division by the
       constant 10^6 the compiler turns into a multiplication, not a call to __divmodti4 */
    static inline int64_t yb_mul_ratio(int64_t amount, int64_t ratio, int* over) {
        int64_t p, q, r;
        if (__builtin_expect(__builtin_mul_overflow(amount, ratio, &p), 0))
            return yb_mul_ratio_wide(amount, ratio, over);
        q = p / 1000000;  /* truncated toward zero; r has the sign of p */
        r = p % 1000000;
        return q + (r >= 500000) - (r <= -500000);  /* no branch: r's sign is data */
    }
    /* ask the memory system for *p now, to be read a few claims later (GCC 12 at -O1 and
       above drops __builtin_prefetch here, measured: hence the asm on x86-64) */
    static inline void yb_prefetch(const void* p) {
    #if defined(__x86_64__) && defined(__GNUC__)
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char*)p));
    #else
        __builtin_prefetch(p, 1, 3);
    #endif
    }
    """
    int64_t yb_mul_ratio(int64_t amount, int64_t ratio, int* over) noexcept nogil
    void yb_prefetch(const void* p) noexcept nogil

cdef inline int64_t i64max(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b

cdef inline int64_t i64min(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline int64_t band_pay(LayerSpec* L, int64_t i, int64_t start, int64_t e,
                             int* over) noexcept nogil:
    """Σ over the bands of row i's set of round_half_up(|[start, start+e) ∩ [lo, hi)| × rate)."""
    cdef int64_t total = 0, lo, hi, a, b
    cdef int64_t end = yb_add(start, e, over)
    cdef int j
    cdef int s = <int>L.band_set[i & L.m_band_set] if L.band_set != NULL else 0
    for j in range(L.band_first[s], L.band_first[s + 1]):
        lo = L.band_lo[j]
        hi = L.band_hi[j]
        a = i64max(start, lo)
        b = end if hi < 0 else i64min(end, hi)
        if b > a:
            total = yb_add(total, yb_mul_ratio(b - a, L.band_rate[j], over), over)
    return total


cdef inline int64_t deduct(LayerSpec* L, int64_t i, int64_t base, int64_t* acc,
                           int* over) noexcept nogil:
    """The deductible this claim consumes (0 <= d <= base); updates the layer's state."""
    cdef int64_t D = L.ded_amount[i & L.m_ded], d
    if L.ded_continuing != NULL and L.ded_continuing[i & L.m_continuing]:
        D = i64max(0, yb_sub(D, acc[L.last_ded_state], over))
    if L.ded_kind == DED_PER_YEAR:
        d = i64min(base, i64max(0, yb_sub(D, acc[L.ded_state], over)))
        acc[L.ded_state] = yb_add(acc[L.ded_state], d, over)
    else:
        d = i64min(base, i64max(0, D))
    if L.last_ded_state >= 0:
        acc[L.last_ded_state] = d
    return d


cdef inline int64_t apply_caps(LayerSpec* L, int64_t i, int64_t pay, int64_t* acc,
                               int* over) noexcept nogil:
    """Caps in order, then every yearly cap's paid-so-far grows by the final payment."""
    cdef int c
    cdef int64_t room
    for c in range(L.n_caps):
        room = L.cap_amount[c][i & L.m_cap[c]]
        if L.cap_state[c] >= 0:  # yearly: what is left of it
            room = yb_sub(room, acc[L.cap_state[c]], over)
        if pay > room:
            pay = i64max(0, room)
    for c in range(L.n_caps):
        if L.cap_state[c] >= 0:
            acc[L.cap_state[c]] = yb_add(acc[L.cap_state[c]], pay, over)
    return pay


cdef inline int64_t settle_layer(LayerSpec* L, int64_t i, const int64_t* paid, int64_t* acc,
                                 int* over) noexcept nogil:
    """One layer's payment for row i; sets *over (and the caller rolls the claim back) when
    an amount would leave int64. The checks are those of reference.settle_layer, step for
    step: each paid() term added in order, D − earlier, accumulators after adding, A + e − L.
    ``acc`` is the claim's frame: its keys' accumulator rows side by side (see settle_rows)."""
    cdef int64_t base = L.base_claim[i & L.m_base], d = 0, e, pay
    cdef int p
    for p in range(L.n_paid):
        if L.paid_sign[p] > 0:
            base = yb_add(base, paid[L.paid_layer[p]], over)
        else:
            base = yb_sub(base, paid[L.paid_layer[p]], over)
    base = i64max(0, base)
    if L.ded_kind != DED_NONE:
        d = deduct(L, i, base, acc, over)
        L.out_ded[i] = d
    e = base - d
    if L.has_limit:
        pay = i64min(e, i64max(0, yb_sub(yb_add(acc[L.limit_state], e, over),
                                         L.limit_amount[i & L.m_limit], over)))
    elif L.ratio_kind == RATIO_PER_CLAIM:
        pay = yb_mul_ratio(e, L.ratio[i & L.m_ratio], over)
    elif L.ratio_kind == RATIO_BANDS:
        pay = band_pay(L, i, acc[L.band_state], e, over)
        acc[L.band_state] = yb_add(acc[L.band_state], e, over)
    else:
        pay = e
    pay = apply_caps(L, i, i64max(0, i64min(pay, e)), acc, over)
    if L.has_limit:
        acc[L.limit_state] = yb_add(acc[L.limit_state], e - pay, over)
    return pay


cdef inline int settle_layers(int64_t i, int n_layers, LayerSpec* layers, int64_t* acc,
                              int64_t* paid) noexcept nogil:
    """Claim i through every layer against its frame ``acc``; returns 0, or the index + 1
    of the layer where an amount left int64 (the caller then discards the frame)."""
    cdef int l, over = 0
    cdef int64_t pay, paid_sum = 0
    cdef LayerSpec* L
    for l in range(n_layers):
        L = &layers[l]
        if L.applies[i & L.m_applies]:
            pay = settle_layer(L, i, paid, acc, &over)
        else:
            pay = 0
            if L.out_ded != NULL:
                L.out_ded[i] = 0
        paid[l] = pay
        L.out_pay[i] = pay
        paid_sum = yb_add(paid_sum, pay, &over)  # self_pay = total - Σ paid
        if over:
            return l + 1
    return 0


cdef void clear_outputs(int64_t i, int n_layers, LayerSpec* layers) noexcept nogil:
    """A claim rolled back pays nothing and consumes no deductible."""
    cdef int l
    for l in range(n_layers):
        layers[l].out_pay[i] = 0
        if layers[l].out_ded != NULL:
            layers[l].out_ded[i] = 0


cdef enum:
    AHEAD = 16  # claims between asking for a claim's accumulator rows and settling it


cdef inline void prefetch_rows(int64_t i, int n_keys, const int64_t** key_ids,
                               int64_t** blocks, const int64_t* widths) noexcept nogil:
    """Start loading claim i's accumulator rows (first and last slot: a row may straddle two
    cache lines). In date order a claim's person is a random one of many, so without this
    the loop waits on memory for every claim."""
    cdef int k
    cdef int64_t* row
    for k in range(n_keys):
        row = blocks[k] + key_ids[k][i] * widths[k]
        yb_prefetch(row)
        yb_prefetch(row + widths[k] - 1)


cdef inline int64_t* year_row(int64_t* block, int64_t kid, int64_t w, int32_t y) noexcept nogil:
    """Key ``kid``'s accumulator row, restarted (stamp ``y``, slots 0) when it holds another
    policy year."""
    cdef int64_t* row = block + kid * w
    if row[0] != y:
        row[0] = y
        memset(row + 1, 0, (w - 1) * sizeof(int64_t))
    return row


cdef enum:
    STREAM_AHEAD = 128  # rows between asking for a row's per-row inputs and outputs and using them


cdef inline void prefetch_streams(int64_t i, int n_layers, LayerSpec* layers) noexcept nogil:
    """Start loading the line holding row i of every layer's per-row inputs and outputs.
    Sixteen to twenty arrays are read and written front to back at once, more streams than
    the hardware prefetcher follows: without this the loop waited on them (measured, 2M
    claims, loaded machine: date order 131 → 99 ms, a run's order 94 → 85 ms of CPU). A
    prefetch past an array's end is harmless (it never faults)."""
    cdef int l, c
    cdef LayerSpec* L
    for l in range(n_layers):
        L = &layers[l]
        yb_prefetch(&L.base_claim[i & L.m_base])
        yb_prefetch(&L.applies[i & L.m_applies])
        yb_prefetch(&L.out_pay[i])
        if L.out_ded != NULL:
            yb_prefetch(&L.out_ded[i])
            yb_prefetch(&L.ded_amount[i & L.m_ded])
        if L.ratio != NULL:
            yb_prefetch(&L.ratio[i & L.m_ratio])
        for c in range(L.n_caps):
            yb_prefetch(&L.cap_amount[c][i & L.m_cap[c]])


cdef inline void open_frame(int64_t* acc, int64_t i, int n_keys, const int64_t** key_ids,
                            const int32_t* year, int64_t** blocks, const int64_t* widths,
                            int64_t** rows) noexcept nogil:
    """Claim i's frame: its rows of every key kind (``rows[k]``, restarted for a new policy
    year) copied side by side into ``acc``."""
    cdef int k
    cdef int64_t at = 0
    for k in range(n_keys):
        rows[k] = year_row(blocks[k], key_ids[k][i], widths[k], year[i])
        memcpy(acc + at, rows[k], widths[k] * sizeof(int64_t))
        at += widths[k]


cdef inline void close_frame(const int64_t* acc, int n_keys, const int64_t* widths,
                             int64_t** rows) noexcept nogil:
    """The settled frame written back to the claim's rows."""
    cdef int k
    cdef int64_t at = 0
    for k in range(n_keys):
        memcpy(rows[k], acc + at, widths[k] * sizeof(int64_t))
        at += widths[k]


cdef void settle_rows(const int64_t* order, int64_t n_order, int n_layers, LayerSpec* layers,
                      int n_keys, const int64_t** key_ids, const int32_t* year,
                      int64_t** blocks, const int64_t* widths, int64_t* acc,
                      int32_t* overflow) noexcept nogil:
    cdef int64_t paid[MAX_LAYERS]
    cdef int64_t* rows[MAX_KEYS]
    cdef int64_t t, i
    cdef int bad
    # The common plan (the reference policy's): one key kind whose row is one line of 8
    # slots. Its frame is one copy of constant size in and out, not a loop over key kinds
    # with a memcpy call each (measured: 541 → 499 instructions a claim with the frame).
    cdef bint one_line = n_keys == 1 and widths[0] == 8
    for t in range(n_order):
        if t + AHEAD < n_order:
            if one_line:
                yb_prefetch(blocks[0] + key_ids[0][order[t + AHEAD]] * 8)
            else:
                prefetch_rows(order[t + AHEAD], n_keys, key_ids, blocks, widths)
        i = order[t]
        if (t & 7) == 0:  # one line of every per-row array holds 8 rows
            prefetch_streams(i + STREAM_AHEAD, n_layers, layers)
        if one_line:
            rows[0] = year_row(blocks[0], key_ids[0][i], 8, year[i])
            memcpy(acc, rows[0], 8 * sizeof(int64_t))
        else:
            open_frame(acc, i, n_keys, key_ids, year, blocks, widths, rows)
        bad = settle_layers(i, n_layers, layers, acc, paid)
        if bad:  # the rows stay as they were before the claim
            clear_outputs(i, n_layers, layers)
            overflow[i] = bad
        elif one_line:
            memcpy(rows[0], acc, 8 * sizeof(int64_t))
        else:
            close_frame(acc, n_keys, widths, rows)


# -- Python entry ------------------------------------------------------------------------------

cdef const int64_t* i64p(object a) except NULL:
    cdef const int64_t[::1] mv = a
    return &mv[0]

cdef int64_t* i64w(object a) except NULL:
    cdef int64_t[::1] mv = a
    return &mv[0]

cdef const uint8_t* u8p(object a) except NULL:
    cdef const uint8_t[::1] mv = a
    return &mv[0]


cdef int64_t row_mask(object a):
    """-1 for an array over the rows, 0 for a constant held in a one-element array. The
    caller (lower.py) marks constants with length 1; a batch of one row reads x[0] either way."""
    return 0 if len(a) == 1 else -1


cdef list frame_starts(object widths, list keys, list offsets):
    """Where each key kind's row begins in a claim's frame (its rows side by side); refuses
    an accumulator outside its kind's row, which the loop would read out of bounds."""
    starts, at = [], 0
    for w in widths:
        starts.append(at)
        at += int(w)
    for k, offset in zip(keys, offsets):
        if not 0 < offset < widths[k]:
            raise ValueError(f"accumulator slot {offset} outside a row of {widths[k]} slots")
    return starts


cdef int frame_slot(int s, list keys, list offsets, list starts):
    """Accumulator index ``s`` (-1: none) resolved to its slot in a claim's frame, the
    claim's rows of every key kind side by side (``starts[k]``: where kind k's row begins)."""
    return starts[keys[s]] + offsets[s] if s >= 0 else -1


cdef void fill_layer(LayerSpec* L, dict d, list keys, list offsets, list starts) except *:
    cdef int j
    L.applies, L.m_applies = u8p(d["applies"]), row_mask(d["applies"])
    L.base_claim, L.m_base = i64p(d["base_claim"]), row_mask(d["base_claim"])
    L.n_paid = len(d["paid_terms"])
    for j, (layer, sign) in enumerate(d["paid_terms"]):
        L.paid_layer[j] = layer
        L.paid_sign[j] = sign
    L.ded_kind = d["ded_kind"]
    L.ded_amount = i64p(d["ded_amount"]) if d["ded_kind"] else NULL
    L.m_ded = row_mask(d["ded_amount"]) if d["ded_kind"] else 0
    L.ded_continuing = u8p(d["ded_continuing"]) if d["ded_continuing"] is not None else NULL
    L.m_continuing = row_mask(d["ded_continuing"]) if d["ded_continuing"] is not None else 0
    L.ded_state = frame_slot(d["ded_state"], keys, offsets, starts)
    L.last_ded_state = frame_slot(d["last_ded_state"], keys, offsets, starts)
    L.ratio_kind = d["ratio_kind"]
    L.ratio = i64p(d["ratio"]) if d["ratio_kind"] == RATIO_PER_CLAIM else NULL
    L.m_ratio = row_mask(d["ratio"]) if d["ratio_kind"] == RATIO_PER_CLAIM else 0
    L.n_bands = len(d["bands"])
    for j, (lo, hi, rate) in enumerate(d["bands"]):
        L.band_lo[j], L.band_hi[j], L.band_rate[j] = lo, hi, rate
    L.band_state = frame_slot(d["band_state"], keys, offsets, starts)
    for j, first in enumerate(d["band_first"]):
        L.band_first[j] = first
    L.band_set = i64p(d["band_set"]) if d["band_set"] is not None else NULL
    L.m_band_set = row_mask(d["band_set"]) if d["band_set"] is not None else 0
    L.n_caps = len(d["caps"])
    for j, (per_year, amount, state, key) in enumerate(d["caps"]):
        L.cap_amount[j], L.m_cap[j] = i64p(amount), row_mask(amount)
        L.cap_state[j] = frame_slot(state, keys, offsets, starts)
        if (L.cap_state[j] >= 0) != bool(per_year):
            raise ValueError("a yearly cap needs an accumulator, a per-claim cap has none")
    L.has_limit = d["limit_amount"] is not None
    L.limit_amount = i64p(d["limit_amount"]) if L.has_limit else NULL
    L.m_limit = row_mask(d["limit_amount"]) if L.has_limit else 0
    L.limit_state = frame_slot(d["limit_state"], keys, offsets, starts)
    L.out_pay = i64w(d["out_pay"])
    L.out_ded = i64w(d["out_ded"]) if d["out_ded"] is not None else NULL
    if (L.out_ded == NULL) != (L.ded_kind == DED_NONE):
        raise ValueError("a layer has a deductible output exactly when it has a deductible")


def settle(object order, list layers, list key_ids, object year, list blocks, object widths,
           list state_keys, list state_offsets, object overflow):
    """Run the kernel. ``order`` (int64) lists row indices in settlement order; ``blocks[k]``
    is key kind k's accumulator rows (int64, ``widths[k]`` slots a key id, slot 0 the policy
    year stamp; fresh rows are all zeros, lower.Program.accumulator_rows); state s lives at slot
    ``state_offsets[s]`` of kind ``state_keys[s]``. Every array is C-contiguous and kept alive
    by the caller (lower.Program). Fills each layer's out arrays in place, and ``overflow``
    (int32, one per row) with layer index + 1 for a row whose amounts would leave int64:
    that row's accumulators are rolled back and its outputs are 0."""
    cdef int n_layers = len(layers), n_keys = len(key_ids), n_states = len(state_keys)
    cdef int64_t n_order = len(order)
    if n_order == 0:
        return
    if n_layers > MAX_LAYERS or n_states > MAX_STATES or n_keys > MAX_KEYS:
        raise ValueError(f"plan too large for the kernel: {n_layers} layers, {n_states} "
                         f"accumulators, {n_keys} keys")
    for d in layers:
        if (len(d["caps"]) > MAX_CAPS or len(d["bands"]) > MAX_BANDS
                or len(d["band_first"]) > MAX_BANDS + 1):
            raise ValueError("a layer has more caps or bands than the kernel supports")
    cdef const int64_t[::1] wv = widths
    cdef const int32_t[::1] yv = year
    cdef const int64_t* order_p = i64p(order)
    cdef int32_t[::1] ov = overflow
    cdef list starts = frame_starts(widths, state_keys, state_offsets)
    # allocated once every argument has been checked, freed below whatever happens
    cdef LayerSpec* specs = <LayerSpec*>malloc(n_layers * sizeof(LayerSpec))
    cdef const int64_t** kids = <const int64_t**>malloc(n_keys * sizeof(int64_t*))
    cdef int64_t** rows = <int64_t**>malloc(n_keys * sizeof(int64_t*))
    cdef int64_t* frame = <int64_t*>malloc(max(1, sum(wv)) * sizeof(int64_t))
    cdef int j
    try:
        for j in range(n_layers):
            fill_layer(&specs[j], layers[j], state_keys, state_offsets, starts)
        for j in range(n_keys):
            kids[j] = i64p(key_ids[j])
            rows[j] = i64w(blocks[j])
        with nogil:
            settle_rows(order_p, n_order, n_layers, specs, n_keys, kids, &yv[0], rows,
                        &wv[0], frame, &ov[0])
    finally:
        free(frame)
        free(specs)
        free(kids)
        free(rows)

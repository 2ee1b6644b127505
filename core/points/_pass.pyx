# cython: language_level=3
"""The points pass: case classes, points and per-hospital sums in nogil loops over the claims.

``compute.score`` hands ``score_claims`` what depends on a claim alone as arrays (the index of
its group among the batch's distinct groups, its coefficient, cost, flags, and which
adjustments' tests it passes) and the pool's per-group numbers (base points, average cost,
high-outlier threshold, bed-day points); one loop then classifies every claim, computes its
points and applies the readmission share, special review and adjustments, each step rounded
half-up away from zero once, as point-method.md §2 writes it. ``hospital_sums`` adds up one
pool's scored claims per hospital index in one loop.

Every product is exact in 128 bits; a value that leaves int64 (or a product that leaves 128
bits) stops the loop and the function returns the claim's position, so the caller names the
claim (never a wrapped number). No Python objects and no floating point in the loops.
"""
from libc.stdint cimport int64_t, int8_t, uint8_t

from yibao.core._checked cimport yb_add, yb_sub

import numpy as np

cdef extern from *:
    """
    typedef __int128 yp_i128;
    /* |cost| above this cannot be compared as cost × 10^6 in int64 (compute._check_cost_range) */
    #define YP_COST_LIMIT (INT64_MAX / (2 * 1000000))
    /* round_half_up(a*b*c / d) for d > 0, halves away from zero, exact in 128 bits; sets
       *over when a product leaves 128 bits or the result leaves int64 */
    static inline int64_t yp_mul3_div(yp_i128 a, yp_i128 b, yp_i128 c, yp_i128 d, int* over) {
        yp_i128 p, q, r;
        if (__builtin_mul_overflow(a, b, &p) || __builtin_mul_overflow(p, c, &p)) {
            *over = 1; return 0;
        }
        int neg = p < 0;
        if (neg) p = -p;
        q = p / d; r = p - q * d;
        if (2 * r >= d) q += 1;
        if (neg) q = -q;
        if (q > (yp_i128)INT64_MAX || q < (yp_i128)INT64_MIN) { *over = 1; return 0; }
        return (int64_t)q;
    }
    """
    ctypedef long long yp_i128
    const int64_t YP_COST_LIMIT
    int64_t yp_mul3_div(yp_i128 a, yp_i128 b, yp_i128 c, yp_i128 d, int* over) noexcept nogil

cdef enum:  # case-class codes, in compute.CASE_CLASSES's order
    NORMAL, HIGH, LOW, INCOMPLETE, BEDDAY, READMIT, REVIEW, UNGROUPED

cdef enum:
    RATIO = 1000000  # plan.RATIO_SCALE: coefficients, factors and thresholds ×10^6

cdef enum:  # what stopped the loop (the claim is returned with it)
    PASS_OK, PASS_BAD_COST, PASS_BAD_POINTS

OK, BAD_COST, BAD_POINTS = PASS_OK, PASS_BAD_COST, PASS_BAD_POINTS


cdef struct Group:            # one distinct group of the batch (the last slot: no group)
    const int64_t* base       # base points B ×10^4
    const uint8_t* has_base   # 1 when the group has base points
    const int64_t* avg        # average cost (fen), > 0
    const int64_t* t_high     # high-outlier threshold ×10^6 of B's band
    const uint8_t* has_t      # 1 when B falls in a high-outlier band
    const int64_t* per_day    # bed-day points per day ×10^4
    const uint8_t* is_bed     # 1 for a bed-day group


cdef struct Tiers:            # bed-day tiers (阶梯床日)
    int n                     # how many
    const int64_t* first      # first day of the tier (1-based)
    const int64_t* last       # last day of the tier, -1 when open-ended
    const int64_t* factor     # factor ×10^6


cdef int64_t bed_day(int64_t per_day, int64_t los, Tiers* tiers, int* over) noexcept nogil:
    """round(per-day points × Σ days in each tier × factor): one value over all tiers,
    rounded once (point-method.md §2); the weighted days are exact millionths of a day."""
    cdef int64_t weighted = 0, end, days
    cdef int t
    for t in range(tiers.n):
        end = los if tiers.last[t] < 0 or los < tiers.last[t] else tiers.last[t]
        days = yb_sub(end, tiers.first[t] - 1, over)
        if days > 0:
            weighted = yb_add(weighted, yp_mul3_div(days, tiers.factor[t], 1, 1, over), over)
    return yp_mul3_div(per_day, weighted, 1, RATIO, over)


cdef int64_t incomplete_points(int64_t b, int64_t k, int64_t cost, int64_t avg,
                              int* over) noexcept nogil:
    """min(B, round(B·k·r)), r = cost / avg: the oracle writes only the minimum, so a share
    B·k·r beyond int64 (or 128 bits) on the positive side is B, not an overflow; only a
    negative one (a negative cost) leaves the range."""
    cdef int beyond = 0
    cdef int64_t share = yp_mul3_div(b, k, cost, <yp_i128>avg * RATIO, &beyond)
    if not beyond:
        return min(b, share)
    if (b < 0) ^ (k < 0) ^ (cost < 0):
        over[0] = 1
        return 0
    return b


cdef int64_t case_points(Group* G, int64_t g, int64_t k, int64_t cost, bint incomplete,
                         int64_t t_low, int8_t* code, int* over) noexcept nogil:
    """The claim's class (into ``code``) and points before readmission, review and
    adjustments; classes in the oracle's order (reference.classify): bed-day, ungrouped,
    incomplete, high, low, normal. The ratio r = cost / avg is compared as cost × 10^6
    against T × avg, exactly."""
    cdef int64_t b = G.base[g], avg = G.avg[g]
    cdef yp_i128 scaled = <yp_i128>cost * RATIO, t_avg
    if G.is_bed[g]:
        code[0] = BEDDAY
        return 0  # the caller adds the tiered formula (it needs the length of stay)
    if not G.has_base[g]:
        code[0] = UNGROUPED
        return 0
    if incomplete:
        code[0] = INCOMPLETE
        return incomplete_points(b, k, cost, avg, over)
    if G.has_t[g]:
        t_avg = <yp_i128>G.t_high[g] * avg
        if scaled >= t_avg:  # B·k + B·(r − T) = B·(k·avg + cost·10^6 − T·avg) / (avg·10^6)
            code[0] = HIGH
            return yp_mul3_div(b, <yp_i128>k * avg + scaled - t_avg, 1,
                               <yp_i128>avg * RATIO, over)
    if t_low > 0 and scaled <= <yp_i128>t_low * avg:
        code[0] = LOW
        return yp_mul3_div(b, cost, 1, avg, over)
    code[0] = NORMAL
    return yp_mul3_div(b, k, 1, RATIO, over)


def score_claims(const int64_t[::1] group, const int64_t[::1] k, const int64_t[::1] cost,
                 const uint8_t[::1] incomplete, const int64_t[::1] los,
                 const uint8_t[::1] readmit, int64_t readmit_share,
                 const uint8_t[::1] is_review, const int64_t[::1] review_points,
                 const uint8_t[:, ::1] adjusted, const int64_t[::1] factors,
                 const int64_t[::1] base, const uint8_t[::1] has_base, const int64_t[::1] avg,
                 const int64_t[::1] t_high, const uint8_t[::1] has_t,
                 const int64_t[::1] per_day, const uint8_t[::1] is_bed, int64_t t_low,
                 const int64_t[::1] tier_first, const int64_t[::1] tier_last,
                 const int64_t[::1] tier_factor):
    """(class codes int8, points int64, what stopped, at which claim) of every claim.

    Per claim (length n): ``group`` (index into the per-group arrays, whose last slot is
    "no group"), ``k`` (×10^6), ``cost`` (fen). Per claim or empty when the pool has no such
    rule: ``incomplete``, ``los``, ``readmit`` (the stay is an earlier stay of a readmission),
    ``is_review`` / ``review_points`` (特病单议, final), ``adjusted[j, i]`` (claim i passes
    adjustment j's tests; ``factors[j]`` ×10^6, applied in order to grouped claims that are
    not under review). ``what`` is OK, BAD_COST (|cost| over 4.6 × 10^12 fen) or BAD_POINTS
    (a value leaves int64); then ``at`` is the claim, and the arrays are not complete."""
    cdef Py_ssize_t n = group.shape[0], i
    cdef int j, over = 0, what = PASS_OK, n_adj = factors.shape[0]
    cdef bint has_incomplete = incomplete.shape[0] > 0, has_readmit = readmit.shape[0] > 0
    cdef bint has_review = is_review.shape[0] > 0, has_los = los.shape[0] > 0
    cdef Group G
    cdef Tiers T
    code_out = np.empty(n, np.int8)
    points_out = np.empty(n, np.int64)
    cdef int8_t[::1] code = code_out
    cdef int64_t[::1] points = points_out
    cdef int64_t p, g
    G.base, G.has_base, G.avg = &base[0], &has_base[0], &avg[0]
    G.t_high, G.has_t, G.per_day, G.is_bed = &t_high[0], &has_t[0], &per_day[0], &is_bed[0]
    T.n = tier_first.shape[0]
    T.first = &tier_first[0] if T.n else NULL
    T.last = &tier_last[0] if T.n else NULL
    T.factor = &tier_factor[0] if T.n else NULL
    with nogil:
        for i in range(n):
            if cost[i] > YP_COST_LIMIT or cost[i] < -YP_COST_LIMIT:
                what = PASS_BAD_COST
                break
            g = group[i]
            p = case_points(&G, g, k[i], cost[i], has_incomplete and incomplete[i], t_low,
                            &code[i], &over)
            if code[i] == BEDDAY:
                p = bed_day(G.per_day[g], los[i] if has_los else 0, &T, &over)
            if has_readmit and readmit[i] and code[i] != UNGROUPED:
                code[i] = READMIT
                p = yp_mul3_div(p, readmit_share, 1, RATIO, &over)
            if has_review and is_review[i]:
                code[i] = REVIEW  # the reviewers' figure is final: no adjustments
                p = review_points[i]
            elif code[i] != UNGROUPED:
                for j in range(n_adj):
                    if adjusted[j, i]:
                        p = yp_mul3_div(p, factors[j], 1, RATIO, &over)
            points[i] = p
            if over:
                what = PASS_BAD_POINTS
                break
    return code_out, points_out, what, (i if what != PASS_OK else -1)


SUMS = ("points", "points_pv", "paid", "paid_pv", "total", "cost_pv", "n", "pending_n",
        "pending_total")  # provider.SUM_FIELDS: the columns of hospital_sums' result


def hospital_sums(const int64_t[::1] hospital, Py_ssize_t n_hospitals,
                  const uint8_t[::1] valued, const uint8_t[::1] signed,
                  const int64_t[::1] points, const int64_t[::1] paid,
                  const int64_t[::1] total, const int64_t[::1] fund_cost):
    """(sums int64 [n_hospitals, len(SUMS)], claim where a sum left int64 or -1) of one
    pool's scored claims by hospital index. A claim not ``valued`` (ungrouped) counts in n,
    pending_n and pending_total only; a claim of a signed person (``signed``, empty: none) stays out of
    the ``_pv`` sums. ``fund_cost`` empty: the fund's cost is total − paid."""
    cdef Py_ssize_t n = hospital.shape[0], i
    cdef int over = 0
    cdef bint has_signed = signed.shape[0] > 0, has_cost = fund_cost.shape[0] > 0
    out = np.zeros((n_hospitals, len(SUMS)), np.int64)
    cdef int64_t[:, ::1] s = out
    cdef int64_t h, cost
    cdef Py_ssize_t bad = -1
    with nogil:
        for i in range(n):
            h = hospital[i]
            s[h, 6] += 1
            if not valued[i]:
                s[h, 7] += 1
                s[h, 8] = yb_add(s[h, 8], total[i], &over)
            else:
                s[h, 0] = yb_add(s[h, 0], points[i], &over)
                s[h, 2] = yb_add(s[h, 2], paid[i], &over)
                s[h, 4] = yb_add(s[h, 4], total[i], &over)
                if not (has_signed and signed[i]):
                    cost = fund_cost[i] if has_cost else yb_sub(total[i], paid[i], &over)
                    s[h, 1] = yb_add(s[h, 1], points[i], &over)
                    s[h, 3] = yb_add(s[h, 3], paid[i], &over)
                    s[h, 5] = yb_add(s[h, 5], cost, &over)
            if over:
                bad = i
                break
    return out, bad

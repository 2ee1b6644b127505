"""Vectorised evaluation of a ``PointsPlan``: claim points and provider settlement.

``claim_points(plan, pool, claims)`` scores one pool's claims: the pool's numbers are looked
up once per distinct group (and coefficient pair), the tests of the pool's rules run as Arrow
array operations, and one nogil loop (``_pass.score_claims``) gives every claim its case
class and points, exact in 128 bits, rounded half-up once per written step (no Python per
claim, no full-length temporary per case class). ``settle_providers`` sums the scored claims
per hospital in one nogil loop (``_pass.hospital_sums``) and then works per pool in exact
``Fraction`` arithmetic (per pool and per hospital, never per claim).

Input claim columns (benefits.md "claim record"): ``claim_id``, ``hospital_id``, ``total``
(fen, int64), the pool's ``group_column`` and whatever its tests, coefficients, bed-day,
readmission and capitation name; settlement reads the patient-paid column (default
``psn_part_amt``, 个人负担).

``claim_points`` output, one row per claim in the pool:

=============  ========================================================================
claim_id       the claim
pool           the pool's name
hospital_id    the treating hospital
group          the grouper's code (``group_column``)
case_class     normal | high | low | incomplete | bedday | readmit | review | ungrouped
points         int64, points ×10^4 after the case class and the adjustments
adjustments    list<string>: names of the adjustments applied, in order
=============  ========================================================================

``settle_providers`` outputs (national settlement-list names where one exists, §4):

hospitals (one row per pool × hospital, sorted by pool order then ``fixmedins_code``):
  pool; ``fixmedins_code`` (定点医药机构编号, the hospital_id); ``claims``; ``points`` (×10^4);
  ``medfee_sumamt`` (医疗费总额, Σ total of valued claims); ``value`` (V[h], 点数价值, fen);
  ``psn_part_amt`` (patients' payments on valued claims); ``hifp_pay`` (fund due D = V −
  psn_part_amt when the points carry patients' money, (budget + patient_paid) / points; D = V
  when they carry fund money only, budget / points and a baseline);
  ``prepaid`` (预付); ``shared_amt`` (surplus kept > 0 / overrun borne < 0, already inside V);
  ``capitation_budget``, ``capitation_used``, ``capitation_balance`` (人头包干, as the signed
  institution); ``setl_amt`` (year-end settlement = hifp_pay − prepaid + capitation_balance);
  ``budget`` (the hospital's own budget under per-hospital budgets, else null);
  ``prepay_below`` (list of ``YYYY-MM``: months whose prepayment is below the pool's
  ``prepay_floor`` of the month's fee-for-service fund amount; empty: no finding).
  ``pending_review_claims`` / ``pending_review_amt`` (ungrouped claims awaiting special
  review: count, Σ total; not charged). ``prepaid`` is the yearly ``prepaid`` plus Σ monthly
  ``prepayments``.
pools (one row per pool): pool, ``budget``, ``control_total`` (budget, or per-head × insured),
  ``reserve`` (调剂金), ``fund_cost`` (A, fee-for-service fund cost of unsigned claims),
  ``shared_amt``, ``fund_amt`` (G), ``psn_part_amt`` (P of unsigned claims), ``points``,
  ``points_pv`` (Σ points the PV is formed over), ``point_value`` (exact "num/den" fen per
  point), ``point_value_e6`` (micro-fen per point, half-up), ``distributed`` (Σ value),
  ``capitation_budget``, ``capitation_used``, ``budget_deviation`` (baseline: Σ value −
  capitation_used − what the floating form distributes), ``hifp_pay`` (Σ fund due),
  ``pending_review_claims``, ``pending_review_amt``. Every column: docs/outputs.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.errors import YibaoError
from yibao.core.plan import RATIO_SCALE

from . import settle
from ._pass import BAD_COST, OK, SUMS, score_claims
from ._pass import hospital_sums as sum_by_hospital
from .plan import Pool, PointsPlan

CASE_CLASSES = ("normal", "high", "low", "incomplete", "bedday", "readmit", "review",
                "ungrouped")
NORMAL, HIGH, LOW, INCOMPLETE, BEDDAY, READMIT, REVIEW, UNGROUPED = range(len(CASE_CLASSES))

_CMP = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
        ">": pc.greater, ">=": pc.greater_equal}


# -- small array helpers ---------------------------------------------------------------------

def column(claims: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in claims.column_names:
        raise KeyError(f"claims have no column {name!r}, which the points plan reads")
    return claims.column(name)


def ints(claims: pa.Table, name: str) -> np.ndarray:
    """An int64 numpy array of an integer or date column; nulls become 0. An int64 column
    of one chunk without nulls is read in place (read-only, no copy: at 1M claims each copy
    of ``total`` was 8 MB of fresh memory, issue 14, p18)."""
    col = column(claims, name)
    if pa.types.is_date(col.type):
        col = col.cast(pa.int32())
    if col.null_count:
        col = pc.fill_null(col, 0)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def texts(claims: pa.Table, name: str) -> pa.Array:
    """A column as strings, for table lookups (levels 3 and "3" are the same key)."""
    col = column(claims, name)
    return col.cast(pa.string()).combine_chunks() if col.type != pa.string() \
        else col.combine_chunks()


def lookup(keys: pa.Array, pairs: tuple, default: int = 0):
    """(values, found) of a (key, int) table at every key; missing or null keys -> default."""
    if not pairs:
        n = len(keys)
        return np.full(n, default, np.int64), np.zeros(n, bool)
    table_keys = pa.array([str(k) for k, _ in pairs], pa.string())
    values = np.array([v for _, v in pairs], np.int64)
    idx = pc.fill_null(pc.index_in(keys, value_set=table_keys), -1).to_numpy()
    found = idx >= 0
    return np.where(found, values[np.where(found, idx, 0)], default), found


def test_mask(claims: pa.Table, tests: tuple) -> np.ndarray:
    """Conjunction of ``Test``s; a null value fails its test. A dictionary column (a
    ``setting`` read as categories, a decision table's group codes) is tested once per
    distinct value and the answers gathered by the claims' codes."""
    mask = np.ones(claims.num_rows, bool)
    for t in tests:
        col = column(claims, t.column)
        if pa.types.is_dictionary(col.type):
            mask &= _dictionary_hits(col, t)
        else:
            mask &= _hits(col, t)
    return mask


def _hits(values, t) -> np.ndarray:
    """bool per value: does it pass ``t``? (null: no)"""
    if t.op in ("in", "not in"):
        hit = pc.is_in(values, value_set=pa.array(list(t.value), values.type))
        if t.op == "not in":
            hit = pc.if_else(pc.is_null(values), False, pc.invert(hit))
    else:
        hit = _CMP[t.op](values, pa.scalar(t.value, values.type))
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), bool)


def _dictionary_hits(col: pa.ChunkedArray, t) -> np.ndarray:
    """``_hits`` of a dictionary column: per chunk the test on its dictionary, then one
    gather by the codes (a null code: the extra slot, which fails)."""
    out = [np.zeros(0, bool)]
    for chunk in col.chunks:
        on_values = np.append(_hits(chunk.dictionary, t), False)
        codes = chunk.indices.fill_null(len(chunk.dictionary))
        out.append(on_values[codes.to_numpy(zero_copy_only=False)])
    return np.concatenate(out)


def pool_of(plan: PointsPlan, pool) -> Pool:
    return pool if isinstance(pool, Pool) else plan.pool(pool)


# -- case classes ----------------------------------------------------------------------------

def high_thresholds(pool: Pool, base: np.ndarray):
    """(T_high per claim, has a band) from the bands ordered by b_max."""
    bands = pool.outliers.high
    if not bands:
        return np.zeros(len(base), np.int64), np.zeros(len(base), bool)
    limits = np.array([np.iinfo(np.int64).max if b.b_max is None else b.b_max for b in bands])
    t = np.array([b.t_high for b in bands], np.int64)
    pos = np.searchsorted(limits, base, side="left")  # first band with B <= b_max
    ok = pos < len(bands)
    return np.where(ok, t[np.minimum(pos, len(bands) - 1)], 0), ok


def _encoded(keys: pa.Array) -> tuple:
    """(index per claim into the distinct keys, the distinct keys): a null key indexes the
    slot after the last. One hash pass, so the lookups below run over the distinct keys."""
    enc = pc.dictionary_encode(keys)
    indices = enc.indices.fill_null(len(enc.dictionary)) if enc.indices.null_count \
        else enc.indices  # no null key: the codes as they are, not a copy filled with none
    return (indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
            enc.dictionary)


def lookup_encoded(encoded: tuple, pairs: tuple, default: int = 0):
    """``lookup`` over ``_encoded`` keys: the table is looked up once per distinct key."""
    idx, dictionary = encoded
    values, found = lookup(dictionary, pairs, default)
    return (np.append(values, default)[idx], np.append(found, False)[idx])


def _coefficients(pool: Pool, claims: pa.Table, groups: tuple) -> np.ndarray:
    """k per claim by (``coefficient_by``, group), RATIO_SCALE where the pair is missing:
    looked up once per distinct pair present (ids of both keys combined), not per claim."""
    if not pool.coefficients:
        return np.full(claims.num_rows, RATIO_SCALE, np.int64)
    by_idx, by_dict = _encoded_as_text(claims, pool.coefficient_by)
    g_idx, g_dict = groups
    width = len(g_dict) + 1
    size = (len(by_dict) + 1) * width
    # one array per claim, not three: each is fresh memory on the provider thread, the chain
    # that gates the results writer (issue 14, p20: 23 MB of faults here at 1M claims)
    pair = np.multiply(by_idx, width, dtype=np.int32 if size <= DENSE_PAIRS else np.int64)
    pair += g_idx
    del by_idx
    present = np.arange(size) if size <= EVERY_PAIR else np.unique(pair)  # no sort of pairs
    by_key = pc.take(by_dict, pa.array(present // width, mask=present // width == len(by_dict)))
    g_key = pc.take(g_dict, pa.array(present % width, mask=present % width == len(g_dict)))
    k, _ = lookup(pc.binary_join_element_wise(by_key, g_key, "\x1f"), _coef_pairs(pool),
                  default=RATIO_SCALE)
    if (len(by_dict) + 1) * width <= DENSE_PAIRS:  # a dense table: one gather per claim
        dense = np.full((len(by_dict) + 1) * width, RATIO_SCALE, np.int64)
        dense[present] = k
        return dense[pair]
    return k[np.searchsorted(present, pair)]


DENSE_PAIRS = 1 << 22  # (coefficient key, group) pairs a dense lookup table may hold
EVERY_PAIR = 1 << 16   # up to this many possible pairs, every one is looked up (no np.unique)


def _encoded_as_text(claims: pa.Table, name: str) -> tuple:
    """``_encoded(texts(claims, name))``, with a non-text column numbered as it is and only
    its distinct values turned into text (hospital levels: no million int-to-string casts;
    a dictionary column: its own codes, no million texts decoded and hashed again)."""
    col = column(claims, name)
    if pa.types.is_string(col.type):
        return _encoded(texts(claims, name))
    if pa.types.is_integer(col.type):
        small = _small_int_codes(col)
        if small is not None:
            return small
    if pa.types.is_dictionary(col.type):
        col = col.unify_dictionaries()
    idx, dictionary = _encoded(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    return idx, dictionary.cast(pa.string())


SMALL_INT_SPAN = 1 << 12  # an integer key (a hospital level) numbered by value - min up to this
INT64_MAX = (1 << 63) - 1


def _small_int_codes(col: pa.ChunkedArray):
    """``_encoded_as_text`` of an integer column whose values lie within ``SMALL_INT_SPAN``
    of each other: each value's index is value - min, the keys every integer from min to
    max as text (some perhaps absent: looked up for nothing), a null the slot after them.
    No hash of a million values (hospital levels at 1M claims: 4 ms of the provider thread
    that runs beside ``prepare``, issue 14, p19). None for a wider or an all-null column."""
    low, high = pc.min_max(col).values()
    if not low.is_valid:
        return None
    low, high = low.as_py(), high.as_py()
    if high - low >= SMALL_INT_SPAN or high > INT64_MAX:  # uint64 past int64: hashed instead
        return None
    flat = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    idx = np.array(pc.fill_null(flat, low).to_numpy(zero_copy_only=False), np.int64)
    idx -= low  # in place: the copy above is the one array per claim made here
    if flat.null_count:
        idx[np.asarray(flat.is_null().to_numpy(zero_copy_only=False), bool)] = high - low + 1
    return idx, pa.array([str(v) for v in range(low, high + 1)], pa.string())


def group_numbers(pool: Pool, dictionary: pa.Array) -> tuple:
    """The pool's numbers for each distinct group of a batch, plus a last slot for "no
    group": (base, has_base, avg, t_high, has_t, per_day, is_bed), flags as uint8. Looked up
    once per distinct group; a group with base points but no average cost is an error."""
    base, has_base = lookup(dictionary, pool.base_points)
    avg, has_avg = lookup(dictionary, pool.avg_cost, default=1)
    missing = has_base & ~has_avg
    if missing.any():
        raise ValueError(f"pool {pool.name}: no average cost for groups "
                         f"{sorted(set(pc.filter(dictionary, missing).to_pylist()))}")
    avg = np.where(avg > 0, avg, 1)  # a 0 average only ever pairs with B = 0
    t_high, has_t = high_thresholds(pool, base)
    per_day, is_bed = (lookup(dictionary, pool.bed_day.per_day) if pool.bed_day
                       else (np.zeros(len(base), np.int64), np.zeros(len(base), bool)))
    numbers = (base, has_base, avg, t_high, has_t, per_day, is_bed)
    return tuple(np.append(a, 1 if a is avg else 0).astype(np.uint8 if a.dtype == bool
                                                          else np.int64)
                 for a in numbers)


_NONE_FLAGS, _NONE_INTS = np.zeros(0, np.uint8), np.zeros(0, np.int64)


def _flags(claims: pa.Table, name: str) -> np.ndarray:
    """A bool column as uint8 per claim, null as 0."""
    col = pc.fill_null(column(claims, name), False)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool).astype(np.uint8)


def _tiers(pool: Pool) -> tuple:
    """(first, last (-1: open), factor) arrays of the pool's bed-day tiers (none: empty)."""
    tiers = pool.bed_day.tiers if pool.bed_day else ()
    return (np.array([t.first for t in tiers], np.int64),
            np.array([-1 if t.last is None else t.last for t in tiers], np.int64),
            np.array([t.factor for t in tiers], np.int64))


def adjustment_tests(pool: Pool, claims: pa.Table) -> np.ndarray:
    """uint8 [adjustment, claim]: does the claim pass the adjustment's tests?"""
    out = np.zeros((len(pool.adjustments), claims.num_rows), np.uint8)
    for j, adj in enumerate(pool.adjustments):
        out[j] = test_mask(claims, adj.when)
    return out


def score_pass(pool: Pool, claims: pa.Table, groups: pa.Array) -> tuple:
    """(class codes, points, adjustment tests) of the pool's claims: what depends on a claim
    alone is gathered into arrays here (per distinct group, not per claim, where it can be),
    then one nogil loop (``_pass.score_claims``) classifies every claim and computes its
    points, readmission share, special review and adjustments, each rounded half-up once
    (point-method.md §2). A value beyond int64 is an ``OverflowError`` naming the claim."""
    idx, dictionary = _encoded(groups)
    base, has_base, avg, t_high, has_t, per_day, is_bed = group_numbers(pool, dictionary)
    readmit = (readmitted(pool, claims, (has_base | is_bed).astype(bool)[idx])  # grouped
               .astype(np.uint8) if pool.readmission else _NONE_FLAGS)
    review, is_review = (lookup(texts(claims, "claim_id"), pool.review) if pool.review
                         else (_NONE_INTS, _NONE_FLAGS))
    adjusted = adjustment_tests(pool, claims)
    code, points, what, at = score_claims(
        np.ascontiguousarray(idx, np.int64), _coefficients(pool, claims, (idx, dictionary)),
        ints(claims, "total"),
        _flags(claims, pool.incomplete_column) if pool.incomplete_column else _NONE_FLAGS,
        ints(claims, pool.bed_day.los_column) if pool.bed_day else _NONE_INTS,
        readmit, pool.readmission.share if pool.readmission else RATIO_SCALE,
        np.asarray(is_review, bool).astype(np.uint8), np.asarray(review, np.int64),
        adjusted, np.array([a.factor for a in pool.adjustments], np.int64),
        base, has_base, avg, t_high, has_t, per_day, is_bed, pool.outliers.t_low,
        *_tiers(pool))
    if what != OK:
        _raise_overflow(pool, claims, at, what)
    return code, points, adjusted


class PointsRangeError(YibaoError, OverflowError):
    """A claim whose points (or a hospital's sums) would leave int64: the run cannot settle
    the pool, and the message names the pool and the claim (exit 2, bad input)."""


def _raise_overflow(pool: Pool, claims: pa.Table, at: int, what: int):
    """The error for the claim ``at`` that stopped the points pass."""
    cid = texts(claims, "claim_id")[at].as_py()
    if what == BAD_COST:  # r is compared as cost × 10^6 in int64
        raise PointsRangeError(f"pool {pool.name}: claim {cid}: total "
                               f"{int(ints(claims, 'total')[at])} fen is too large to score "
                               "(over 4.6 × 10^12 fen)")
    raise PointsRangeError(f"pool {pool.name}: claim {cid}: its points leave the int64 range "
                           "(a case-class, readmission or adjustment product too large)")


def _coef_pairs(pool: Pool) -> tuple:
    return tuple((f"{key}\x1f{group}", k) for key, group, k in pool.coefficients)


def _day_key(seg: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One sortable int64 per (stay segment, day): segments apart by more than any date gap."""
    return seg * (1 << 33) + (days + (1 << 32))


def readmitted(pool: Pool, claims: pa.Table, grouped: np.ndarray) -> np.ndarray:
    """True for a grouped stay when ANY other stay of the same person in the same group is
    admitted 0..N days (inclusive) after its discharge, at any hospital (point-method.md §2):
    an overlapping transfer stay does not hide a later readmission, and in a chain every
    earlier link is halved. A stay without a person, group or dates takes no part. Counts
    admissions in a window over stays sorted by (person, group, admission), so the answer
    does not depend on row order."""
    r = pool.readmission
    n = claims.num_rows
    if r is None or n < 2:
        return np.zeros(n, bool)
    person_group = pc.binary_join_element_wise(
        texts(claims, r.person_column), texts(claims, pool.group_column), "\x1f")
    valid = (pc.is_valid(person_group).to_numpy(zero_copy_only=False)
             & pc.is_valid(column(claims, r.admit_column)).to_numpy(zero_copy_only=False)
             & pc.is_valid(column(claims, r.discharge_column)).to_numpy(zero_copy_only=False))
    seg = pc.fill_null(pc.dictionary_encode(person_group).indices, 0).to_numpy(
        zero_copy_only=False).astype(np.int64)
    admit, discharge = ints(claims, r.admit_column), ints(claims, r.discharge_column)
    admitted = np.sort(_day_key(seg, admit)[valid])
    lo = np.searchsorted(admitted, _day_key(seg, discharge), side="left")
    hi = np.searchsorted(admitted, _day_key(seg, discharge + r.days), side="right")
    own = (admit >= discharge) & (admit <= discharge + r.days)  # the stay's own admission
    return valid & grouped & (hi - lo - own.astype(np.int64) > 0)


def adjustment_names(pool: Pool, adjusted: np.ndarray, code: np.ndarray) -> pa.Array:
    """list<string> per claim: the adjustments applied to it, in declared order (a claim
    that is ungrouped or under special review gets none)."""
    names = [a.name for a in pool.adjustments]
    eligible = (code != UNGROUPED) & (code != REVIEW)
    applied = (adjusted.astype(bool) & eligible).T if len(names) else np.zeros(
        (len(code), 0), bool)
    offsets = np.concatenate([[0], np.cumsum(applied.sum(axis=1))]).astype(np.int32)
    _, cols = np.nonzero(applied)  # row-major: each row's names in declared order
    values = pc.take(pa.array(names, pa.string()), pa.array(cols, pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def pool_groups(pool: Pool, claims: pa.Table, suffix: str = "") -> pa.Array:
    """The group of every claim as text: ``group_column``, or with ``group_sources`` the
    column of the first source whose tests pass (null when none does, or when that source
    has no such column). ``suffix`` "_status" picks the chosen source's status instead."""
    if not pool.group_sources:
        return texts(claims, pool.group_column + suffix)
    out = pa.nulls(claims.num_rows, pa.string())
    todo = np.ones(claims.num_rows, bool)
    for source in pool.group_sources:
        hit = todo & test_mask(claims, source.when)
        todo &= ~hit
        if source.column + suffix in claims.column_names:
            out = pc.if_else(pa.array(hit), texts(claims, source.column + suffix), out)
    return out


def with_pool_group(pool: Pool, claims: pa.Table) -> pa.Table:
    """The claims with the pool's group under ``group_column`` (and the chosen source's
    ``_status`` and ``_stopped_at``); unchanged for a pool with one grouper."""
    if not pool.group_sources:
        return claims
    for suffix in ("", "_status", "_stopped_at"):
        name = pool.group_column + suffix
        values = pool_groups(pool, claims, suffix)
        if name in claims.column_names:
            claims = claims.drop_columns([name])
        claims = claims.append_column(name, values)
    return claims


def score(plan: PointsPlan, pool, claims: pa.Table, members: bool = False) -> tuple:
    """(the pool's claims, their groups, class codes, points, adjustment tests) of the claims
    that belong to ``pool``: ``claim_points`` without building its table
    (``adjustment_names`` turns the tests into its names). Claims that all belong (the
    provider's members) are not copied by a filter; ``members``: the caller has already
    picked the claims the pool applies to (core/provider.py), so they are not tested again."""
    pool = pool_of(plan, pool)
    mask = None if members else test_mask(claims, pool.applies)
    if mask is not None and not mask.all():
        claims = claims.filter(pa.array(mask))
    claims = with_pool_group(pool, claims)
    groups = group_keys(claims, pool.group_column)
    code, points, adjusted = score_pass(pool, claims, groups)
    return claims, groups, code, points, adjusted


def group_keys(claims: pa.Table, name: str) -> pa.Array:
    """The group column as the keys of the pool's tables: a dictionary of text (a decision
    table's codes, core/provider.py) as it is, so the groups are numbered by its codes and
    no claim's text is hashed; any other column as text (``texts``)."""
    col = column(claims, name)
    if not (pa.types.is_dictionary(col.type) and pa.types.is_string(col.type.value_type)):
        return texts(claims, name)
    return col.chunk(0) if col.num_chunks == 1 else col.unify_dictionaries().combine_chunks()


def case_classes(code: np.ndarray) -> pa.Array:
    """Class codes as their names (``CASE_CLASSES``)."""
    return pc.take(pa.array(CASE_CLASSES), pa.array(code.astype(np.int64)))


def claim_points(plan: PointsPlan, pool, claims: pa.Table) -> pa.Table:
    """Score the claims that belong to ``pool`` (a Pool or its name); see the module doc."""
    pool = pool_of(plan, pool)
    claims, groups, code, points, adjusted = score(plan, pool, claims)
    names = adjustment_names(pool, adjusted, code)
    return pa.table({
        "claim_id": texts(claims, "claim_id"),
        "pool": pa.repeat(pa.scalar(pool.name, pa.string()), claims.num_rows),
        "hospital_id": texts(claims, "hospital_id"),
        "group": groups.cast(pa.string()),
        "case_class": case_classes(code),
        "points": pa.array(points, pa.int64()),
        "adjustments": names,
    })


def all_claim_points(plan: PointsPlan, claims: pa.Table) -> pa.Table:
    """``claim_points`` of every pool, concatenated in pool order."""
    return pa.concat_tables([claim_points(plan, p, claims) for p in plan.pools])


# -- settlement ------------------------------------------------------------------------------

def hospital_sums(pool: Pool, claims: pa.Table, scored: pa.Table, patient_paid: str,
                  fund_cost):
    """(per_h, signed_pts): per hospital a dict of points, points_pv (unsigned), paid, paid_pv,
    total, cost_pv, n (claims), pending_n and pending_total; and points per signed
    institution (capitation). An ungrouped claim (``case_class`` ungrouped: no points, no
    special review) counts in ``n`` and in ``pending_n``/``pending_total`` (awaiting special
    review) only: it stays out of paid, total and cost (point-method.md §2)."""
    scored = scored.filter(pc.equal(scored["pool"], pool.name))
    at = pc.index_in(scored["claim_id"], value_set=texts(claims, "claim_id"))
    if pc.any(pc.is_null(at)).as_py():
        raise KeyError(f"pool {pool.name}: claim_points rows without a claim")
    return _hospital_sums(pool, claims.take(at), scored, patient_paid, fund_cost)


def hospital_sums_aligned(pool: Pool, claims: pa.Table, scored: pa.Table, patient_paid: str,
                          fund_cost):
    """``hospital_sums`` when row k of ``claims`` is the claim of row k of ``scored`` (every
    pool's rows): no join by claim_id, the pool's rows picked by one mask."""
    if claims.num_rows != scored.num_rows:
        raise ValueError("hospital_sums_aligned: claims and scored rows differ in number")
    mask = pc.equal(scored["pool"], pool.name)
    if pc.all(mask, skip_nulls=False).as_py() is True:  # every row the pool's: no copy
        return _hospital_sums(pool, claims, scored, patient_paid, fund_cost)
    return _hospital_sums(pool, claims.filter(mask), scored.filter(mask), patient_paid,
                          fund_cost)


def _hospital_sums(pool: Pool, rows: pa.Table, scored: pa.Table, patient_paid: str,
                   fund_cost):
    """``hospital_sums`` over the pool's scored rows and their claims, row by row."""
    valued = ~pc.fill_null(pc.equal(scored["case_class"], "ungrouped"), False).to_numpy(
        zero_copy_only=False)
    paid = ints(rows, patient_paid)
    total = ints(rows, "total")
    pts = np.ascontiguousarray(scored["points"].to_numpy(), np.int64)
    signed = (pc.is_valid(column(rows, pool.capitation.signed_column))
              .to_numpy(zero_copy_only=False) if pool.capitation else np.zeros(len(pts), bool))
    per_h = _sums_by_hospital(pool, scored, valued, signed, pts, paid, total,
                              ints(rows, fund_cost) if fund_cost else _NONE_INTS)
    if pool.capitation:
        inst = texts(rows, pool.capitation.signed_column).filter(pa.array(signed))
        cap = pa.table({"i": inst, "points": pts[signed]}).group_by("i").aggregate(
            [("points", "sum")])
        signed_pts = dict(zip(cap["i"].to_pylist(), cap["points_sum"].to_pylist()))
    else:
        signed_pts = {}
    if pool.prepayments:
        cost = ints(rows, fund_cost) if fund_cost else total - paid
        for h, month, due, n in month_sums(pool, rows, scored["hospital_id"], cost):
            per_h[h]["due:" + month] = due
            per_h[h]["n_m"] = per_h[h].get("n_m", 0) + n
    return per_h, signed_pts


def _sums_by_hospital(pool: Pool, scored: pa.Table, valued, signed, pts, paid, total,
                      fund_cost) -> dict:
    """{hospital id: {"h": id, <SUMS>: int}} of the pool's scored claims: the hospitals
    numbered once (a null id is a hospital too), then one nogil loop (``_pass.hospital_sums``);
    a sum beyond int64 is an ``OverflowError`` naming the claim that took it there."""
    hospital = scored["hospital_id"]
    if isinstance(hospital, pa.ChunkedArray):
        hospital = hospital.combine_chunks() if hospital.num_chunks else pa.array([], pa.string())
    idx, keys = _encoded(hospital)
    sums, bad = sum_by_hospital(np.ascontiguousarray(idx), len(keys) + 1,
                                np.asarray(valued, bool).astype(np.uint8),
                                np.asarray(signed, bool).astype(np.uint8) if pool.capitation
                                else _NONE_FLAGS, pts, paid, total, fund_cost)
    if bad >= 0:
        cid = scored["claim_id"][bad].as_py()
        raise PointsRangeError(f"pool {pool.name}: claim {cid}: a hospital's sums leave the "
                               "int64 range")
    names = keys.to_pylist() + [None]
    return {names[h]: {"h": names[h], **dict(zip(SUMS, row))}
            for h, row in enumerate(sums.tolist()) if row[6]}  # row[6]: its claims


def month_sums(pool: Pool, rows: pa.Table, hospital: pa.ChunkedArray, cost: np.ndarray):
    """(hospital, "YYYY-MM", Σ cost, claims) of every hospital-month, by ``month_column``
    (a date; no date is the month "unknown")."""
    dates = column(rows, pool.month_column)
    if not pa.types.is_timestamp(dates.type):
        dates = dates.cast(pa.date32()).cast(pa.timestamp("s"))
    month = pc.fill_null(pc.strftime(dates, format="%Y-%m"), "unknown")
    frame = pa.table({"h": hospital, "m": month, "cost": cost, "n": np.ones(len(cost), np.int64)})
    sums = frame.group_by(["h", "m"]).aggregate([("cost", "sum"), ("n", "sum")])
    return zip(sums["h"].to_pylist(), sums["m"].to_pylist(), sums["cost_sum"].to_pylist(),
               sums["n_sum"].to_pylist())


def alliance_sums(alliance, claims: pa.Table, scored: pa.Table, patient_paid: str) -> dict:
    """医共体: {"<alliance>\x1f<pool>": {points, paid, total, n}} over the valued claims of the
    alliance's pools whose ``alliance.column`` is not null (wherever they were treated)."""
    scored = scored.filter(_alliance_rows(alliance, scored))
    rows = claims.take(pc.index_in(scored["claim_id"], value_set=texts(claims, "claim_id")))
    return _alliance_sums(alliance, rows, scored, patient_paid)


def alliance_sums_aligned(alliance, claims: pa.Table, scored: pa.Table,
                          patient_paid: str) -> dict:
    """``alliance_sums`` when row k of ``claims`` is the claim of row k of ``scored`` (the
    year's rows, core/provider.py): the alliance's rows picked by one mask from both, no
    claim looked up by its id."""
    if claims.num_rows != scored.num_rows:
        raise ValueError("alliance_sums_aligned: claims and scored rows differ in number")
    keep = _alliance_rows(alliance, scored)
    return _alliance_sums(alliance, claims.filter(keep), scored.filter(keep), patient_paid)


def _alliance_rows(alliance, scored: pa.Table) -> pa.Array:
    """bool per scored row: a valued claim of one of the alliance's pools."""
    in_pools = pc.is_in(scored["pool"], value_set=pa.array(list(alliance.pools), pa.string()))
    valued = pc.not_equal(scored["case_class"], "ungrouped")
    return pc.fill_null(pc.and_(in_pools, valued), False)


def _alliance_sums(alliance, rows: pa.Table, scored: pa.Table, patient_paid: str) -> dict:
    """``alliance_sums`` over the alliance's valued rows, row k of ``rows`` the claim of row
    k of ``scored``."""
    member = texts(rows, alliance.column)
    keep = pc.is_valid(member)
    frame = pa.table({
        "k": pc.binary_join_element_wise(member, scored["pool"], "\x1f"),
        "points": scored["points"], "paid": ints(rows, patient_paid),
        "total": ints(rows, "total"), "n": np.ones(rows.num_rows, np.int64)}).filter(keep)
    sums = frame.group_by("k").aggregate([(c, "sum") for c in ("points", "paid", "total", "n")])
    return {r["k"]: {f: r[f + "_sum"] for f in ("points", "paid", "total", "n")}
            for r in sums.to_pylist()}


def settle_pool(pool: Pool, per_h: dict, signed_pts: dict):
    """(hospital rows, pool row) of one pool from its per-hospital sums (dicts)."""
    return settle.settle_pool(pool, per_h, signed_pts)


def settle_providers(plan: PointsPlan, claims: pa.Table, scored: pa.Table, *,
                     patient_paid: str = "psn_part_amt", fund_cost: str | None = None):
    """(hospitals, pools) tables for every pool of ``plan``; see the module doc.
    ``fund_cost`` names a column of the fee-for-service fund cost of each claim (risk sharing's
    actual spending A); by default it is total − patient-paid."""
    hospitals, pools = [], []
    for pool in plan.pools:
        per_h, signed_pts = hospital_sums(pool, claims, scored, patient_paid, fund_cost)
        h_rows, p_row = settle_pool(pool, per_h, signed_pts)
        hospitals.extend(h_rows)
        pools.append(p_row)
    values = settle.pool_values(plan.pools, pools)
    for alliance in plan.alliances:
        h_rows, p_row = settle.settle_alliance(
            alliance, alliance_sums(alliance, claims, scored, patient_paid), values)
        hospitals.extend(h_rows)
        pools.append(p_row)
    return (pa.Table.from_pylist(hospitals, schema=settle.HOSPITAL_SCHEMA),
            pa.Table.from_pylist(pools, schema=settle.POOL_SCHEMA))

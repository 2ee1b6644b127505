"""The vectorised supervision evaluator: Arrow compute and numpy over the whole batch.

``evaluate(supervision, stays) -> (flags, indicators)``, both sorted (stays.py). Per-stay work
is vectorised (masks, joins, group-by aggregates); the Python loops run over aggregates —
one per group, or per (hospital, group) — where exact fractions decide a comparison, never
over stays. The meaning of each rule is in core/supervision/plan.py and docs/supervision.md;
core/supervision/reference.py is the plain-Python oracle of the same contract.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.money import round_half_up
from yibao.core.plan import RATIO_SCALE
from yibao.core.points.compute import test_mask

from .plan import (AboveGroupMean, CcShare, ListedGroups, Readmit, SevereShare, ShortStay,
                   Supervision)
from .stays import FLAG_SCHEMA, INDICATOR_SCHEMA, effect_of, sorted_flags, sorted_indicators

CC_DIGITS = ("1", "3")  # CHS-DRG fourth character: 1 with MCC, 3 with CC


def evaluate(supervision: Supervision, stays: pa.Table):
    """(flags, hospital indicators) of one batch of stays."""
    weights = GroupWeights(stays)
    members = {}  # applies -> the stays passing it: flags often share one (inpatient)
    for flag in supervision.flags:
        if flag.applies not in members:
            members[flag.applies] = stays.filter(pa.array(test_mask(stays, flag.applies)))
    pairs = {}  # applies -> stay_pairs of its members, shared by the readmission rules

    def pairs_of(applies):
        if applies not in pairs:
            pairs[applies] = stay_pairs(members[applies])
        return pairs[applies]
    pieces = [_flag_rows(flag, members[flag.applies], weights, pairs_of)
              for flag in supervision.flags]
    flags = pa.concat_tables(pieces) if pieces else FLAG_SCHEMA.empty_table()
    return sorted_flags(flags), indicators(stays, weights)


def _mask(stays: pa.Table, *names) -> np.ndarray:
    out = np.ones(stays.num_rows, bool)
    for name in names:
        out &= pc.is_valid(stays.column(name)).to_numpy(zero_copy_only=False)
    return out


def _np(col) -> np.ndarray:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col.to_numpy(zero_copy_only=False)


# -- group weights ---------------------------------------------------------------------------

class GroupWeights:
    """RW of each group: its mean cost over the city's mean cost, over every stay of the batch
    with a group (exact fractions, one per group)."""

    def __init__(self, stays: pa.Table):
        grouped = stays.filter(pc.is_valid(stays.column("group")))
        agg = grouped.group_by("group").aggregate([("total", "sum"), ("total", "count")])
        self.groups = agg.column("group").combine_chunks()
        self.sums = [int(v) for v in agg.column("total_sum").to_pylist()]
        self.counts = [int(v) for v in agg.column("total_count").to_pylist()]
        self.n, self.cost = sum(self.counts), sum(self.sums)

    def rw(self, i: int) -> Fraction:
        if self.cost == 0:
            return Fraction(0)
        return Fraction(self.sums[i] * self.n, self.counts[i] * self.cost)

    def groups_where(self, test) -> pa.Array:
        """The groups whose RW passes ``test`` (a function of a Fraction)."""
        keep = [i for i in range(len(self.counts)) if test(self.rw(i))]
        return self.groups.take(pa.array(keep, pa.int64()))

    def rw_of(self, group: pa.Array) -> pa.Array:
        """RW in millionths (half-up) of each stay's group."""
        table = pa.array([round_half_up(self.rw(i).numerator * RATIO_SCALE,
                                        self.rw(i).denominator)
                          for i in range(len(self.counts))], pa.int64())
        return table.take(pc.index_in(group, value_set=self.groups))


# -- flags -----------------------------------------------------------------------------------

def _flag_rows(flag, members: pa.Table, weights: GroupWeights, pairs_of=None) -> pa.Table:
    """The flag's rows over its members (the stays passing its applies)."""
    rule = flag.rule
    if isinstance(rule, Readmit):
        pairs = pairs_of(flag.applies) if pairs_of else stay_pairs(members)
        cols = _readmit(rule, pairs)
    elif isinstance(rule, AboveGroupMean):
        cols = _above_mean(rule, members)
    elif isinstance(rule, ShortStay):
        cols = _short_stay(rule, members, weights)
    elif isinstance(rule, ListedGroups):
        cols = _listed(rule, members)
    elif isinstance(rule, CcShare):
        cols = _cc_share(rule, members)
    elif isinstance(rule, SevereShare):
        cols = _severe_share(rule, members, weights)
    else:
        raise TypeError(f"no evaluator for {type(rule).__name__}")
    return _table(flag, cols)


def _table(flag, cols: dict) -> pa.Table:
    n = len(cols["claim_id"]) if cols.get("claim_id") is not None else len(cols["hospital_id"])
    const = {"rule": flag.name, "label": flag.label, "kind": flag.rule.name,
             "severity": flag.severity, "level": flag.level, "effect": effect_of(flag)}
    out = {}
    for f in FLAG_SCHEMA:
        if f.name in const:
            out[f.name] = pa.array([const[f.name]] * n, f.type)
        elif cols.get(f.name) is None:
            out[f.name] = pa.nulls(n, f.type)
        else:
            col = cols[f.name]
            out[f.name] = (col if isinstance(col, (pa.Array, pa.ChunkedArray))
                           else pa.array(col, f.type)).cast(f.type)
    return pa.table(out, schema=FLAG_SCHEMA)


def stay_pairs(members: pa.Table) -> pa.Table:
    """Every (earlier stay a, later stay b) of one person among ``members``, b admitted on or
    after a's discharge: a_claim_id, b_claim_id, b_hospital_id, same (hospital), gap (days).
    Both readmission rules filter this one self-join (by gap and hospital)."""
    t = members.filter(pa.array(_mask(members, "person_id", "hospital_id", "admit",
                                      "discharge")))
    t = t.select(["claim_id", "person_id", "hospital_id", "admit", "discharge"])
    t = _repeated(t, "person_id")  # a person with one stay has no readmission
    a = t.rename_columns([f"a_{c}" for c in t.column_names])
    b = t.rename_columns([f"b_{c}" for c in t.column_names])
    pairs = a.join(b, keys="a_person_id", right_keys="b_person_id", join_type="inner")
    gap = pc.subtract(pairs["b_admit"], pairs["a_discharge"])
    pairs = pairs.filter(pc.and_(pc.greater_equal(gap, 0), _earlier(pairs)))
    return pa.table({"a_claim_id": pairs["a_claim_id"], "b_claim_id": pairs["b_claim_id"],
                     "b_hospital_id": pairs["b_hospital_id"],
                     "same": pc.equal(pairs["a_hospital_id"], pairs["b_hospital_id"]),
                     "gap": pc.subtract(pairs["b_admit"], pairs["a_discharge"])})


def _readmit(rule: Readmit, pairs: pa.Table) -> dict:
    where = pairs["same"] if rule.same_hospital else pc.invert(pairs["same"])
    pairs = pairs.filter(pc.and_(where, pc.less_equal(pairs["gap"], rule.days)))
    pairs = pairs.take(pc.sort_indices(pairs, [("b_claim_id", "ascending"),
                                               ("a_claim_id", "ascending")]))
    agg = pairs.group_by(["b_claim_id", "b_hospital_id"], use_threads=False).aggregate(
        [("gap", "min"), ("a_claim_id", "list")])
    n = agg.num_rows
    return {"claim_id": agg.column("b_claim_id"), "hospital_id": agg.column("b_hospital_id"),
            "value": agg.column("gap_min"), "threshold": pa.array([rule.days] * n, pa.int64()),
            "unit": pa.array(["days"] * n, pa.string()),
            "related": agg.column("a_claim_id_list")}


def _repeated(t: pa.Table, key: str) -> pa.Table:
    """The rows whose ``key`` occurs at least twice (shrinks the self-join to what can pair)."""
    counts = pc.value_counts(t.column(key).combine_chunks())
    many = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return t.filter(pc.is_in(t.column(key), value_set=many))


def _earlier(pairs: pa.Table):
    """a's (admit, discharge, claim_id) is smaller than b's."""
    a1, b1 = pairs["a_admit"], pairs["b_admit"]
    a2, b2 = pairs["a_discharge"], pairs["b_discharge"]
    ids = pc.less(pairs["a_claim_id"], pairs["b_claim_id"])
    second = pc.or_(pc.less(a2, b2), pc.and_(pc.equal(a2, b2), ids))
    return pc.or_(pc.less(a1, b1), pc.and_(pc.equal(a1, b1), second))


def _above_mean(rule: AboveGroupMean, members: pa.Table) -> dict:
    measure = "los" if rule.measure == "los" else "total"
    t = members.filter(pa.array(_mask(members, "group", measure)))
    agg = t.group_by("group").aggregate([(measure, "sum"), (measure, "count")])
    sums = agg.column(f"{measure}_sum").to_pylist()
    counts = agg.column(f"{measure}_count").to_pylist()
    # value > factor × Σ / (n × 10^6)  ⇔  value > floor(factor × Σ / (n × 10^6)) for ints
    limit = pa.array([(rule.factor * s) // (c * RATIO_SCALE) for s, c in zip(sums, counts)],
                     pa.int64())
    mean = pa.array([round_half_up(s, c) for s, c in zip(sums, counts)], pa.int64())
    at = pc.index_in(t.column("group"), value_set=agg.column("group"))
    threshold = limit.take(at)
    hit = t.filter(pc.greater(t.column(measure), threshold))
    at = pc.index_in(hit.column("group"), value_set=agg.column("group"))
    n = hit.num_rows
    return {"claim_id": hit.column("claim_id"), "hospital_id": hit.column("hospital_id"),
            "group": hit.column("group"), "value": hit.column(measure),
            "threshold": limit.take(at), "basis": mean.take(at),
            "unit": pa.array(["days" if measure == "los" else "fen"] * n, pa.string()),
            "related": pa.array([[]] * n, pa.list_(pa.string()))}


def _short_stay(rule: ShortStay, members: pa.Table, weights: GroupWeights) -> dict:
    light = weights.groups_where(lambda rw: rw * RATIO_SCALE < rule.weight)
    t = members.filter(pa.array(_mask(members, "group", "los")))
    hit = t.filter(pc.and_(pc.less_equal(t.column("los"), rule.days),
                           pc.is_in(t.column("group"), value_set=light)))
    n = hit.num_rows
    return {"claim_id": hit.column("claim_id"), "hospital_id": hit.column("hospital_id"),
            "group": hit.column("group"), "value": hit.column("los"),
            "threshold": pa.array([rule.days] * n, pa.int64()),
            "basis": weights.rw_of(hit.column("group")),
            "unit": pa.array(["days"] * n, pa.string()),
            "related": pa.array([[]] * n, pa.list_(pa.string()))}


def _listed(rule: ListedGroups, members: pa.Table) -> dict:
    hit = members.filter(pc.fill_null(pc.is_in(members.column("group"),
                                               value_set=pa.array(rule.groups, pa.string())),
                                      False))
    n = hit.num_rows
    return {"claim_id": hit.column("claim_id"), "hospital_id": hit.column("hospital_id"),
            "group": hit.column("group"), "unit": pa.array([""] * n, pa.string()),
            "related": pa.array([[]] * n, pa.list_(pa.string()))}


def _share(num: int, den: int) -> int:
    return round_half_up(num * RATIO_SCALE, den) if den else 0


def _cc_share(rule: CcShare, members: pa.Table) -> dict:
    t = members.filter(pa.array(_mask(members, "group", "hospital_id")))
    group = t.column("group")
    adrg = pc.utf8_slice_codeunits(group, 0, 3)
    cc = pc.is_in(pc.utf8_slice_codeunits(group, 3, 4), value_set=pa.array(CC_DIGITS))
    t = t.append_column("adrg", adrg).append_column("cc", pc.cast(cc, pa.int64()))
    city = t.group_by("adrg").aggregate([("cc", "sum"), ("cc", "count")])
    city_of = {g: (int(s), int(c)) for g, s, c in zip(city["adrg"].to_pylist(),
                                                       city["cc_sum"].to_pylist(),
                                                       city["cc_count"].to_pylist())}
    per = t.group_by(["hospital_id", "adrg"]).aggregate([("cc", "sum"), ("cc", "count")])
    out = {k: [] for k in ("hospital_id", "group", "value", "threshold", "basis")}
    for h, g, s, c in zip(per["hospital_id"].to_pylist(), per["adrg"].to_pylist(),
                          per["cc_sum"].to_pylist(), per["cc_count"].to_pylist()):
        cs, cn = city_of[g]
        if c < rule.min_cases or s * cn * RATIO_SCALE <= rule.factor * cs * c:
            continue
        out["hospital_id"].append(h)
        out["group"].append(g)
        out["value"].append(_share(s, c))
        out["basis"].append(_share(cs, cn))
        out["threshold"].append(round_half_up(rule.factor * cs, cn))
    out["unit"] = ["millionths"] * len(out["group"])
    out["related"] = _cc_claims(t, out["hospital_id"], out["group"])
    return out


def _cc_claims(t: pa.Table, hospitals: list, groups: list) -> list:
    """Per flagged (hospital, ADRG): the sorted ids of that hospital's MCC/CC stays in it."""
    if not hospitals:
        return []
    cc = t.filter(pc.equal(t.column("cc"), 1))
    key = pc.binary_join_element_wise(cc.column("hospital_id"), cc.column("adrg"), "\x1f")
    wanted = pa.array([f"{h}\x1f{g}" for h, g in zip(hospitals, groups)], pa.string())
    cc = cc.append_column("key", key).filter(pc.is_in(key, value_set=wanted))
    cc = cc.take(pc.sort_indices(cc, [("key", "ascending"), ("claim_id", "ascending")]))
    agg = cc.group_by("key", use_threads=False).aggregate([("claim_id", "list")])
    lists = agg.column("claim_id_list")
    return lists.take(pc.index_in(wanted, value_set=agg.column("key"))).to_pylist()


def _severe_share(rule: SevereShare, members: pa.Table, weights: GroupWeights) -> dict:
    severe = weights.groups_where(lambda rw: rw * RATIO_SCALE >= rule.weight)
    t = members.filter(pa.array(_mask(members, "group", "hospital_id", "hospital_level")))
    sev = pc.cast(pc.is_in(t.column("group"), value_set=severe), pa.int64())
    t = t.append_column("severe", sev)
    lev = t.group_by("hospital_level").aggregate([("severe", "sum"), ("severe", "count")])
    level_of = {l: (int(s), int(c)) for l, s, c in zip(lev["hospital_level"].to_pylist(),
                                                       lev["severe_sum"].to_pylist(),
                                                       lev["severe_count"].to_pylist())}
    per = t.group_by(["hospital_id", "hospital_level"]).aggregate(
        [("severe", "sum"), ("severe", "count")])
    out = {k: [] for k in ("hospital_id", "value", "threshold", "basis")}
    for h, lv, s, c in zip(per["hospital_id"].to_pylist(), per["hospital_level"].to_pylist(),
                           per["severe_sum"].to_pylist(), per["severe_count"].to_pylist()):
        ls, ln = level_of[lv]
        if c < rule.min_cases or s * ln * RATIO_SCALE >= rule.factor * ls * c:
            continue
        out["hospital_id"].append(h)
        out["value"].append(_share(s, c))
        out["basis"].append(_share(ls, ln))
        out["threshold"].append(round_half_up(rule.factor * ls, ln))
    n = len(out["hospital_id"])
    out["unit"], out["related"] = ["millionths"] * n, [[] for _ in range(n)]
    return out


# -- hospital indicators ---------------------------------------------------------------------

SCALE = 10 ** 30  # sums of fractions are bracketed at this scale before their one rounding



def _ratio(f: Fraction):
    return round_half_up(f.numerator * RATIO_SCALE, f.denominator)


def indicators(stays: pa.Table, weights: GroupWeights) -> pa.Table:
    """One row per hospital (docs/supervision.md "Hospital indicators"). The per hospital ×
    group terms are products of small ints and per-group factors floored at ``SCALE``
    (Python ints in numpy object arrays), summed per hospital and bracketed (``_Bracket``)."""
    base = stays.group_by("hospital_id").aggregate(
        [("claim_id", "count"), ("total", "sum"), ("fund", "sum")])
    grouped = stays.filter(pc.is_valid(stays.column("group")))
    per = grouped.group_by(["hospital_id", "group"]).aggregate(
        [("total", "sum"), ("total", "count"), ("los", "sum"), ("los", "count")])
    city = grouped.group_by("group").aggregate([("los", "sum"), ("los", "count")])
    g = _np(pc.index_in(per["group"], value_set=weights.groups)).astype(np.int64)
    h = _np(pc.index_in(per["hospital_id"], value_set=base["hospital_id"])).astype(np.int64)
    at = _np(pc.index_in(weights.groups, value_set=city["group"])).astype(np.int64)
    days_g = [int(v) for v in np.asarray(city["los_sum"].fill_null(0).to_pylist(), object)[at]]
    m_g = [int(v) for v in np.asarray(city["los_count"].to_pylist(), object)[at]]
    ints = lambda c: _np(per[c].fill_null(0)).astype(np.int64)  # noqa: E731
    n_hg, c_hg, d_hg, m_hg = (ints(c) for c in ("total_count", "total_sum", "los_sum",
                                                "los_count"))
    order = np.argsort(h, kind="stable")
    h = h[order]
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]]) if len(h) else np.zeros(0, int)
    def sums_of(v) -> dict:  # hospital index -> Σ of ``v`` over its groups
        return dict(zip(h[starts].tolist(), np.add.reduceat(v[order], starts)))
    n, cost = weights.n, weights.cost
    rw = _Bracket(sums_of, n_hg, _factor([s * n for s in weights.sums],
                                          [c * cost for c in weights.counts]), g, n_hg * 0)
    costs = _Bracket(sums_of, c_hg, _factor(weights.counts, weights.sums), g, n_hg)
    time = _Bracket(sums_of, d_hg, _factor(m_g, days_g), g, m_hg)
    expected = _Bracket(sums_of, n_hg, _factor(weights.sums, weights.counts), g, n_hg)
    n_h, c_h, mm_h = sums_of(n_hg), sums_of(c_hg), sums_of(m_hg)
    rows = []
    for i, (hid, claims, total, fund) in enumerate(zip(*(base[c].to_pylist() for c in (
            "hospital_id", "claim_id_count", "total_sum", "fund_sum")))):
        row = {"hospital_id": hid, "claims": claims, "total": total, "self_pay": total - fund,
               "self_pay_rate": _ratio(Fraction(total - fund, total)) if total else None}
        n = int(n_h.get(i, 0))
        if n:
            m = int(mm_h.get(i, 0))
            try:
                row.update(cases=int(n), rw_total=rw.millionths(i), cmi=rw.millionths(i, n),
                           cost_index=costs.millionths(i, n),
                           time_index=time.millionths(i, m) if m else None,
                           price_index=expected.over(i, int(c_h[i])))
            except _Undecided:
                mine = order[h == i]
                row.update(_exact_indicators(weights, g[mine], *(int_list(v[mine]) for v in (
                    n_hg, c_hg, d_hg, m_hg)), days_g, m_g))
        rows.append({**dict.fromkeys(INDICATOR_SCHEMA.names), **row})
    return sorted_indicators(pa.Table.from_pylist(rows, schema=INDICATOR_SCHEMA))


def _exact_indicators(weights, g, n_hg, c_hg, d_hg, m_hg, days_g, m_g) -> dict:
    """One hospital's indicators as exact fractions (the rare bracket at a boundary)."""
    rw = cost = time = expected = Fraction(0)
    for i, n, c, d, m in zip(g.tolist(), n_hg, c_hg, d_hg, m_hg):
        gs, gn = weights.sums[i], weights.counts[i]
        rw += n * weights.rw(i)
        cost += Fraction(c * gn, gs) if gs else Fraction(n)
        time += Fraction(d * m_g[i], days_g[i]) if days_g[i] else Fraction(m)
        expected += Fraction(n * gs, gn)
    n, m, c = int(sum(n_hg)), int(sum(m_hg)), int(sum(c_hg))
    return {"cases": n, "rw_total": _ratio(rw), "cmi": _ratio(rw / n),
            "cost_index": _ratio(cost / n), "time_index": _ratio(time / m) if m else None,
            "price_index": _ratio(c / expected) if expected else None}


def int_list(values) -> list:
    return [int(v) for v in values]


def _factor(num, den) -> tuple:
    """Per group: (⌊num × SCALE / den⌋ as Python ints in an object array, 0 where den is 0;
    whether den is not 0)."""
    known = np.array([d != 0 for d in den], bool)
    return (np.array([(x * SCALE) // d if d else 0 for x, d in zip(num, den)] or [0],
                     object)[:len(known)], known)


class _Bracket:
    """Per hospital, Σ over its groups g of mult × x_g, x_g known as ⌊x_g × SCALE⌋
    (``_factor``); where x_g's denominator is 0 the term counts ``ones`` instead. Each floor
    loses less than one unit, so the exact sum × SCALE lies in [lo, lo + Σ|mult|]; a rounding
    that agrees at both ends is exact, otherwise (within 10^-24 of a rounding boundary)
    ``_Undecided`` sends the hospital to the exact fractions."""

    def __init__(self, sums_of, mult, factor, g, ones):
        values, known = factor
        known = known[g] if len(g) else np.zeros(0, bool)
        product = mult.astype(object) * values[g] if len(g) else np.zeros(0, object)
        self.product = sums_of(product) if len(g) else {}
        self.low = sums_of(np.where(known, np.minimum(mult, 0), 0)) if len(g) else {}
        self.unknown = sums_of(np.where(known, 0, ones)) if len(g) else {}
        self.width = sums_of(np.where(known, np.abs(mult), 0)) if len(g) else {}

    def _lo(self, i) -> int:
        return (int(self.product.get(i, 0)) + int(self.low.get(i, 0))
                + SCALE * int(self.unknown.get(i, 0)))

    def _ends(self, i, den, value=None):
        lo = self._lo(i)
        hi = lo + int(self.width.get(i, 0))
        if value is None:
            return {round_half_up(x * RATIO_SCALE, SCALE * den) for x in (lo, hi)}
        if lo <= 0:
            return {None, 0}  # not bracketed away from 0: undecided
        return {round_half_up(value * RATIO_SCALE * SCALE, x) for x in (lo, hi)}

    def millionths(self, i, den=1):
        ends = self._ends(i, den)
        if len(ends) == 1:
            return ends.pop()
        raise _Undecided(i)

    def over(self, i, value):
        ends = self._ends(i, 1, value)
        if len(ends) == 1:
            return ends.pop()
        raise _Undecided(i)


class _Undecided(Exception):
    """A bracketed sum too close to a rounding boundary: recompute the hospital exactly."""

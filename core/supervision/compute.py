"""The vectorised supervision evaluator: Arrow compute and numpy over the whole batch.

``evaluate(supervision, stays) -> (flags, indicators)``, both sorted (stays.py). Per-stay work
is vectorised: hospital and group are encoded once as integer codes (``StayCodes``) and every
group-by is an exact int64 bin over them; readmission pairs come from one sort by (person,
admit, discharge) and neighbour comparisons. The Python loops run over aggregates — one per
group or per hospital, and the flagged cells — where exact fractions decide a comparison,
never over stays. The meaning of each rule is in core/supervision/plan.py and docs/supervision.md;
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
    codes = StayCodes(stays)
    weights = GroupWeights(stays, codes)
    members, member_codes = {}, {}  # applies -> the stays passing it: flags often share one
    for flag in supervision.flags:
        if flag.applies not in members:
            mask = np.asarray(test_mask(stays, flag.applies), bool)
            members[flag.applies] = stays.filter(pa.array(mask))
            member_codes[flag.applies] = codes.subset(mask)
    pairs = {}  # applies -> stay_pairs of its members, shared by the readmission rules
    within = {}  # applies -> the longest gap its readmission rules look at
    for flag in supervision.flags:
        if isinstance(flag.rule, Readmit):
            within[flag.applies] = max(within.get(flag.applies, 0), flag.rule.days)

    def pairs_of(applies):
        if applies not in pairs:
            pairs[applies] = stay_pairs(members[applies], within.get(applies))
        return pairs[applies]
    pieces = [_flag_rows(flag, members[flag.applies], weights, pairs_of,
                         member_codes[flag.applies]) for flag in supervision.flags]
    flags = pa.concat_tables(pieces) if pieces else FLAG_SCHEMA.empty_table()
    return sorted_flags(flags), indicators(stays, weights, codes)


def _mask(stays: pa.Table, *names) -> np.ndarray:
    out = np.ones(stays.num_rows, bool)
    for name in names:
        out &= pc.is_valid(stays.column(name)).to_numpy(zero_copy_only=False)
    return out


def _ints(col) -> np.ndarray:
    """int64 values of an integer column, a null as 0 (callers mask nulls where they count;
    never the float array ``to_numpy`` makes of a column with nulls)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    col = col.fill_null(0) if col.null_count else col  # no copy of a column without nulls
    return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _np(col) -> np.ndarray:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col.to_numpy(zero_copy_only=False)


# -- group weights ---------------------------------------------------------------------------

class StayCodes:
    """Hospital and group of every stay as int64 dictionary codes, encoded once per batch
    and shared by every per-hospital and per-group sum (integer bins instead of string
    group-bys). ``hospital``: a null hospital is a hospital of its own (the indicators have
    a row for it); ``group``: −1 for a stay without a group."""

    def __init__(self, stays: pa.Table = None):
        if stays is not None:
            self.hospital, self.hospitals = _encode(stays.column("hospital_id"), "encode")
            self.group, self.groups = _encode(stays.column("group"), "mask")

    def subset(self, mask: np.ndarray) -> "StayCodes":
        """The codes of the stays ``mask`` keeps (same dictionaries)."""
        out = StayCodes()
        out.hospital, out.hospitals = self.hospital[mask], self.hospitals
        out.group, out.groups = self.group[mask], self.groups
        return out

    def hospital_known(self) -> np.ndarray:
        """Mask of the stays with a hospital."""
        null = np.flatnonzero(_np(self.hospitals.is_null()).astype(bool))
        return self.hospital != null[0] if len(null) else np.ones(len(self.hospital), bool)


def _encode(col, nulls: str) -> tuple:
    """(int64 code of each row, −1 for a masked null; the distinct values, code order)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    encoded = pc.dictionary_encode(col, null_encoding=nulls)
    codes = _np(pc.fill_null(encoded.indices, -1)).astype(np.int64)
    return codes, encoded.dictionary


def bin_sums(codes: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """int64 Σ of ``values`` per code in [0, size). Exact: the callers' sums are bounded
    below 2^62 (stays._check_sums), so no bin can wrap."""
    out = np.zeros(size, np.int64)
    np.add.at(out, codes, values.astype(np.int64, copy=False))
    return out


class GroupWeights:
    """RW of each group: its mean cost over the city's mean cost, over every stay of the batch
    with a group (exact fractions, one per group; group i is ``codes.groups[i]``)."""

    def __init__(self, stays: pa.Table, codes: StayCodes):
        grouped = (codes.group >= 0) & _mask(stays, "total")
        g, size = codes.group[grouped], len(codes.groups)
        self.groups = codes.groups
        self.sums = bin_sums(g, _ints(stays.column("total"))[grouped], size).tolist()
        self.counts = np.bincount(g, minlength=size).tolist()
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

def _flag_rows(flag, members: pa.Table, weights: GroupWeights, pairs_of=None,
               codes: "StayCodes" = None) -> pa.Table:
    """The flag's rows over its members (the stays passing its applies; ``codes`` theirs)."""
    codes = codes if codes is not None else StayCodes(members)
    rule = flag.rule
    if isinstance(rule, Readmit):
        pairs = pairs_of(flag.applies) if pairs_of else stay_pairs(members)
        cols = _readmit(rule, pairs)
    elif isinstance(rule, AboveGroupMean):
        cols = _above_mean(rule, members, codes)
    elif isinstance(rule, ShortStay):
        cols = _short_stay(rule, members, weights)
    elif isinstance(rule, ListedGroups):
        cols = _listed(rule, members)
    elif isinstance(rule, CcShare):
        cols = _cc_share(rule, members, codes)
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


def stay_pairs(members: pa.Table, within: int = None) -> pa.Table:
    """Every (earlier stay a, later stay b) of one person among ``members``, b admitted on or
    after a's discharge (and at most ``within`` days after, when given: no rule looks
    further): a_claim_id, b_claim_id, b_hospital_id, same (hospital), gap (days).
    Both readmission rules filter this one table (by gap and hospital). The stays are sorted
    by (person, admit, discharge) once and each is paired with the stays k places before it
    for k = 1, 2, … while any person has more than k stays (no join, no hash of pairs)."""
    t = members.filter(pa.array(_mask(members, "person_id", "hospital_id", "admit",
                                      "discharge")))
    person = _codes(t.column("person_id"))
    many = np.bincount(person)[person] > 1 if len(person) else np.zeros(0, bool)
    t, person = t.filter(pa.array(many)), person[many]  # one stay: no readmission
    admit, discharge = _np(t.column("admit")), _np(t.column("discharge"))
    order = np.lexsort((discharge, admit, person))
    a, b = _same_person_pairs(person[order])
    a, b = order[a], order[b]
    ids = t.column("claim_id").combine_chunks()
    a, b = _earlier_first(a, b, admit, discharge, ids)
    gap = admit[b] - discharge[a]
    keep = (gap >= 0) & (gap <= within) if within is not None else gap >= 0
    a, b, gap = a[keep], b[keep], gap[keep]
    hospital = t.column("hospital_id").combine_chunks()
    b_hospital = hospital.take(pa.array(b))
    return pa.table({"a_claim_id": ids.take(pa.array(a)), "b_claim_id": ids.take(pa.array(b)),
                     "b_hospital_id": b_hospital,
                     "same": pc.equal(hospital.take(pa.array(a)), b_hospital),
                     "gap": pa.array(gap, pa.int64())})


def _codes(col) -> np.ndarray:
    """int64 dictionary codes of a column without nulls (equal values, equal codes)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return _np(pc.dictionary_encode(col).indices).astype(np.int64)


def _same_person_pairs(person: np.ndarray) -> tuple:
    """(i, j) positions, i < j, of every two rows of one person in ``person`` (sorted so a
    person's rows are together): j paired with j − k for k = 1, 2, … The rows still paired
    at step k are those with at least k rows of their person before them, so the work is
    the number of pairs, not (rows × the most stays of one person)."""
    n = len(person)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
    # rank: how many rows of its person come before each row
    rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    live = np.flatnonzero(rank >= 1)
    firsts, seconds, k = [], [], 1
    while len(live):
        firsts.append(live - k)
        seconds.append(live)
        k += 1
        live = live[rank[live] >= k]
    return np.concatenate(firsts), np.concatenate(seconds)


def _earlier_first(a, b, admit, discharge, ids) -> tuple:
    """The pairs with a the earlier stay by (admit, discharge, claim_id): the sort put a
    first by (admit, discharge); on a tie the smaller claim id is the earlier."""
    tie = (admit[a] == admit[b]) & (discharge[a] == discharge[b])
    if tie.any():
        at = np.flatnonzero(tie)
        swap = _np(pc.greater(ids.take(pa.array(a[at])), ids.take(pa.array(b[at])))).astype(bool)
        at = at[swap]
        a, b = a.copy(), b.copy()
        a[at], b[at] = b[at], a[at]
    return a, b


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


def _above_mean(rule: AboveGroupMean, members: pa.Table, codes: StayCodes) -> dict:
    measure = "los" if rule.measure == "los" else "total"
    ok = (codes.group >= 0) & _mask(members, measure)
    g, values, size = codes.group[ok], _ints(members.column(measure))[ok], len(codes.groups)
    sums, counts = bin_sums(g, values, size).tolist(), np.bincount(g, minlength=size).tolist()
    # value > factor × Σ / (n × 10^6)  ⇔  value > floor(factor × Σ / (n × 10^6)) for ints
    limit = np.array([(rule.factor * s) // (c * RATIO_SCALE) if c else 0
                      for s, c in zip(sums, counts)], np.int64)
    mean = np.array([round_half_up(s, c) if c else 0 for s, c in zip(sums, counts)], np.int64)
    over = values > limit[g]
    rows, g = np.flatnonzero(ok)[over], g[over]
    hit = members.take(pa.array(rows, pa.int64()))
    n = hit.num_rows
    return {"claim_id": hit.column("claim_id"), "hospital_id": hit.column("hospital_id"),
            "group": hit.column("group"), "value": hit.column(measure),
            "threshold": pa.array(limit[g]), "basis": pa.array(mean[g]),
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


def _cc_share(rule: CcShare, members: pa.Table, codes: StayCodes) -> dict:
    """Per (hospital, ADRG) cell of the members with both: its MCC/CC share against the
    city's share of that ADRG. Sums over integer codes; exact comparisons on Python ints."""
    adrg_of, cc_of, adrgs = _adrgs(codes.groups.to_pylist())
    ok = (codes.group >= 0) & codes.hospital_known()
    a, cc, h = adrg_of[codes.group[ok]], cc_of[codes.group[ok]], codes.hospital[ok]
    A = max(len(adrgs), 1)
    city_n, city_cc = np.bincount(a, minlength=A), np.bincount(a[cc], minlength=A)
    cell, keys = _cells(h * A + a, len(codes.hospitals) * A)
    n, s = np.bincount(cell, minlength=len(keys)), np.bincount(cell[cc], minlength=len(keys))
    ka = keys % A
    cn, cs = city_n[ka].astype(object), city_cc[ka].astype(object)
    # share > factor × city share  ⇔  s × cn × 10^6 > factor × cs × n (exact Python ints)
    hit = (n >= rule.min_cases) & (s.astype(object) * cn * RATIO_SCALE
                                    > rule.factor * cs * n.astype(object)).astype(bool)
    at = np.flatnonzero(hit)
    hospitals = codes.hospitals.take(pa.array(keys[at] // A)).to_pylist()
    out = {"hospital_id": hospitals, "group": [adrgs[i] for i in ka[at].tolist()],
           "value": [_share(int(s[i]), int(n[i])) for i in at],
           "basis": [_share(int(cs[i]), int(cn[i])) for i in at],
           "threshold": [round_half_up(rule.factor * int(cs[i]), int(cn[i])) for i in at]}
    out["unit"] = ["millionths"] * len(at)
    out["related"] = _cc_claims(members.column("claim_id"), np.flatnonzero(ok), cc, cell, at)
    return out


def _adrgs(groups: list) -> tuple:
    """Per group code: its ADRG's code (the first three characters) and whether it is an
    MCC/CC group (fourth character 1 or 3); and the ADRG names."""
    names, adrg_of = {}, []
    for g in groups:
        adrg_of.append(names.setdefault(g[:3], len(names)))
    cc_of = [len(g) >= 4 and g[3] in CC_DIGITS for g in groups]
    return (np.array(adrg_of, np.int64), np.array(cc_of, bool), list(names))


def _cc_claims(claim_id, rows: np.ndarray, cc: np.ndarray, cell: np.ndarray,
               flagged: np.ndarray) -> list:
    """Per flagged cell (in ``flagged`` order): the sorted ids of its MCC/CC stays."""
    if not len(flagged):
        return []
    wanted = np.zeros(int(cell.max()) + 1, bool)
    wanted[flagged] = True
    mine = cc & wanted[cell]
    t = pa.table({"cell": cell[mine], "claim_id": claim_id.take(pa.array(rows[mine]))})
    t = t.take(pc.sort_indices(t, [("cell", "ascending"), ("claim_id", "ascending")]))
    ids = t.column("claim_id").to_pylist()
    bounds = np.searchsorted(t.column("cell").to_numpy(), np.r_[flagged, flagged[-1] + 1])
    return [ids[bounds[i]:bounds[i + 1]] for i in range(len(flagged))]


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


def indicators(stays: pa.Table, weights: GroupWeights, codes: StayCodes) -> pa.Table:
    """One row per hospital (docs/supervision.md "Hospital indicators"). The per hospital ×
    group terms are products of small ints and per-group factors floored at ``SCALE``
    (Python ints in numpy object arrays), summed per hospital and bracketed (``_Bracket``).
    Every sum is over integer codes (``StayCodes``): per hospital, per group, and per
    (hospital, group) cell."""
    hospitals, G = len(codes.hospitals), len(codes.groups)
    total, fund = _ints(stays.column("total")), _ints(stays.column("fund"))
    timed = _mask(stays, "los")
    los = _ints(stays.column("los"))
    base = {"claims": np.bincount(codes.hospital, minlength=hospitals).tolist(),
            "total": bin_sums(codes.hospital, total, hospitals).tolist(),
            "fund": bin_sums(codes.hospital, fund, hospitals).tolist()}
    grouped = codes.group >= 0
    cell, keys = _cells(codes.hospital[grouped] * G + codes.group[grouped], hospitals * G)
    cells, timed_g = len(keys), timed[grouped]
    h, g = keys // max(G, 1), keys % max(G, 1)  # ascending h: keys are sorted
    n_hg = np.bincount(cell, minlength=cells)
    c_hg = bin_sums(cell, total[grouped], cells)
    d_hg = bin_sums(cell[timed_g], los[grouped][timed_g], cells)
    m_hg = np.bincount(cell[timed_g], minlength=cells)
    city_g = codes.group[grouped][timed_g]
    days_g = bin_sums(city_g, los[grouped][timed_g], G).tolist()
    m_g = np.bincount(city_g, minlength=G).tolist()
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]]) if len(h) else np.zeros(0, int)
    def sums_of(v) -> dict:  # hospital index -> Σ of ``v`` over its groups
        return dict(zip(h[starts].tolist(), np.add.reduceat(v, starts)))
    n, cost = weights.n, weights.cost
    rw = _Bracket(sums_of, n_hg, _factor([s * n for s in weights.sums],
                                          [c * cost for c in weights.counts]), g, n_hg * 0)
    costs = _Bracket(sums_of, c_hg, _factor(weights.counts, weights.sums), g, n_hg)
    time = _Bracket(sums_of, d_hg, _factor(m_g, days_g), g, m_hg)
    expected = _Bracket(sums_of, n_hg, _factor(weights.sums, weights.counts), g, n_hg)
    n_h, c_h, mm_h = sums_of(n_hg), sums_of(c_hg), sums_of(m_hg)
    rows = []
    for i, (hid, claims, total, fund) in enumerate(zip(
            codes.hospitals.to_pylist(), base["claims"], base["total"], base["fund"])):
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
                mine = h == i
                row.update(_exact_indicators(weights, g[mine], *(int_list(v[mine]) for v in (
                    n_hg, c_hg, d_hg, m_hg)), days_g, m_g))
        rows.append({**dict.fromkeys(INDICATOR_SCHEMA.names), **row})
    return sorted_indicators(pa.Table.from_pylist(rows, schema=INDICATOR_SCHEMA))


def _cells(key: np.ndarray, size: int) -> tuple:
    """(the cell of each row, the key of each cell ascending) of int64 ``key`` in [0, size):
    dense bins while the key space is small against the rows, else a sort."""
    if size <= 4 * len(key) + (1 << 20):
        present = np.flatnonzero(np.bincount(key, minlength=size))
        cell_of = np.zeros(size, np.int64)
        cell_of[present] = np.arange(len(present))
        return cell_of[key], present
    present, cell = np.unique(key, return_inverse=True)
    return cell.astype(np.int64), present


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

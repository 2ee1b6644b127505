"""The oracle: a slow, obvious per-claim evaluator of the same semantics as ``compute``.

Plain Python over ``list[dict]`` claims (``table.to_pylist()``) and ``Fraction``s. It shares
no code with ``compute``/``settle`` beyond the plan nodes, so a test comparing the two checks
each against an independent reading of point-method.md §2–§3. Dates may be ``datetime.date``
or day numbers.
"""
from __future__ import annotations

import datetime as _dt
import operator
from fractions import Fraction

from yibao.core.plan import RATIO_SCALE
from yibao.core.trace import CaseClass, ClaimPoints, PointsAdjusted, ignore

from .plan import BASELINE, BUDGET_PLUS_PAID, POINT_SCALE, PV_SCALE, Pool, PointsPlan

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}


def half_up(x) -> int:
    """Round a Fraction to the nearest int, halves away from zero."""
    x = Fraction(x)
    sign = -1 if x < 0 else 1
    x = abs(x)
    whole = x.numerator // x.denominator
    return sign * (whole + 1 if x - whole >= Fraction(1, 2) else whole)


def month_of(v) -> str:
    """"YYYY-MM" of a date (an int is days since 1970-01-01, Arrow's date32); no date is
    "unknown"."""
    if v is None:
        return "unknown"
    if not isinstance(v, _dt.date):
        v = _dt.date(1970, 1, 1) + _dt.timedelta(days=int(v))
    return f"{v.year:04d}-{v.month:02d}"


def passes(claim: dict, tests) -> bool:
    for t in tests:
        v = claim.get(t.column)
        if v is None:
            return False
        if t.op == "in":
            ok = v in t.value
        elif t.op == "not in":
            ok = v not in t.value
        else:
            ok = _OPS[t.op](v, t.value)
        if not ok:
            return False
    return True


def day(v) -> int:
    return v.toordinal() if isinstance(v, _dt.date) else int(v)


def base_class(pool: Pool, c: dict):
    """(class, points) before readmission, review and adjustments."""
    cls, pts, _ = classify(pool, c)
    return cls, pts


def classify(pool: Pool, c: dict):
    """(class, points, numbers): ``base_class`` with the numbers that decided it (what a
    recorder is told: ``trace.CaseClass``)."""
    g = None if c.get(pool.group_column) is None else str(c[pool.group_column])
    per_day = {str(k): v for k, v in (pool.bed_day.per_day if pool.bed_day else ())}
    if g in per_day:
        exact = Fraction(0)  # the tiered formula is one value, rounded once
        los = c[pool.bed_day.los_column] or 0
        for tier in pool.bed_day.tiers:
            end = los if tier.last is None else min(los, tier.last)
            days = max(0, end - tier.first + 1)
            exact += Fraction(per_day[g] * days * tier.factor, RATIO_SCALE)
        return "bedday", half_up(exact), {
            "kind": "bed_day", "per_day": per_day[g], "los": c[pool.bed_day.los_column],
            "tiers": [(t.first, t.last, t.factor) for t in pool.bed_day.tiers]}
    base = {str(k): v for k, v in pool.base_points}
    if g not in base:
        return "ungrouped", 0, {"kind": "none"}
    b = base[g]
    avg = dict((str(k), v) for k, v in pool.avg_cost)[g]
    k = Fraction(RATIO_SCALE, RATIO_SCALE)
    for key, group, kk in pool.coefficients:
        if str(key) == str(c.get(pool.coefficient_by)) and str(group) == g:
            k = Fraction(kk, RATIO_SCALE)
    r = Fraction(c["total"] or 0, avg if avg > 0 else 1)
    t_high = pool.outliers.t_high_for(b)
    numbers = {"kind": "points", "B": b, "k": int(k * RATIO_SCALE), "avg_cost": avg,
               "cost": c["total"] or 0, "r": r, "t_high": t_high, "t_low": pool.outliers.t_low,
               "normal": half_up(b * k)}
    if pool.incomplete_column and c.get(pool.incomplete_column):
        return "incomplete", min(b, half_up(b * k * r)), {**numbers, "incomplete": True}
    if t_high is not None and r >= Fraction(t_high, RATIO_SCALE):
        return "high", half_up(b * k + b * (r - Fraction(t_high, RATIO_SCALE))), numbers
    if pool.outliers.t_low > 0 and r <= Fraction(pool.outliers.t_low, RATIO_SCALE):
        return "low", half_up(b * r), numbers
    return "normal", numbers["normal"], numbers


def is_readmitted(pool: Pool, c: dict, members: list) -> bool:
    """Is any other stay of the same person in the same group admitted 0..N days after c's
    discharge (at any hospital)? Stays without person, group or dates take no part."""
    r = pool.readmission

    def placed(x):
        return None not in (x.get(r.person_column), x.get(pool.group_column),
                            x.get(r.admit_column), x.get(r.discharge_column))

    if not placed(c):
        return False
    for x in members:
        if x is c or not placed(x):
            continue
        if (str(x[r.person_column]), str(x[pool.group_column])) != (
                str(c[r.person_column]), str(c[pool.group_column])):
            continue
        if 0 <= day(x[r.admit_column]) - day(c[r.discharge_column]) <= r.days:
            return True
    return False


def group_of(pool: Pool, c: dict, suffix: str = ""):
    """The claim's group under the pool: its ``group_column``, or the column of the first
    ``group_sources`` entry whose tests pass (None when none does)."""
    if not pool.group_sources:
        return c.get(pool.group_column + suffix)
    for source in pool.group_sources:
        if passes(c, source.when):
            value = c.get(source.column + suffix)
            return None if value is None else str(value)
    return None


def with_group(pool: Pool, c: dict) -> dict:
    """The claim with its pool group (and that source's status) written under
    ``group_column``; the claim itself for a pool with one grouper."""
    if not pool.group_sources:
        return c
    return {**c, **{pool.group_column + sfx: group_of(pool, c, sfx)
                    for sfx in ("", "_status", "_stopped_at")}}


def claim_points(plan: PointsPlan, pool, claims: list, record=ignore) -> list:
    """One dict per claim in the pool, the same fields as ``compute.claim_points``.
    ``record`` is told each claim's ``CaseClass``, ``PointsAdjusted`` and ``ClaimPoints``
    (``core/trace.py``); the default ignores them."""
    pool = pool if isinstance(pool, Pool) else plan.pool(pool)
    members = [with_group(pool, c) for c in claims if passes(c, pool.applies)]
    review = {str(k): v for k, v in pool.review}
    out = []
    for c in members:
        cid = str(c["claim_id"])
        group = None if c.get(pool.group_column) is None else str(c[pool.group_column])
        cls, pts, numbers = classify(pool, c)
        record(CaseClass(cid, pool.name, group, numbers, cls, pts))
        if cls != "ungrouped" and pool.readmission and is_readmitted(pool, c, members):
            cls, pts = "readmit", half_up(Fraction(pts * pool.readmission.share, RATIO_SCALE))
        applied = []
        if cid in review:
            cls, pts = "review", review[cid]
        elif cls != "ungrouped":
            for adj in pool.adjustments:
                if passes(c, adj.when):
                    pts = half_up(Fraction(pts * adj.factor, RATIO_SCALE))
                    applied.append(adj.name)
                    record(PointsAdjusted(cid, adj.name, adj.factor, pts))
        record(ClaimPoints(cid, pool.name, group, cls, pts, tuple(applied)))
        out.append({"claim_id": cid, "pool": pool.name, "hospital_id": str(c["hospital_id"]),
                    "group": group, "case_class": cls, "points": pts, "adjustments": applied})
    return out


# -- settlement ------------------------------------------------------------------------------

def apportion(shares: dict) -> dict:
    """Largest remainder: floor every |share|, hand the missing fen of round(|Σ|) to the
    largest fractional parts, ties by key; then put the sign back."""
    total = sum(shares.values(), Fraction(0))
    sign = -1 if total < 0 else 1
    result, fractions = {}, []
    for k, v in shares.items():
        v = abs(Fraction(v))
        result[k] = v.numerator // v.denominator
        fractions.append((-(v - result[k]), k))
    missing = abs(half_up(total)) - sum(result.values())
    for _, k in sorted(fractions)[:missing]:
        result[k] += 1
    return {k: sign * v for k, v in result.items()}


def settle(plan: PointsPlan, claims: list, scored: list, patient_paid="psn_part_amt",
           fund_cost=None):
    """(hospital rows, pool rows) as lists of dicts, the same fields as
    ``compute.settle_providers``."""
    by_id = {str(c["claim_id"]): c for c in claims}
    hospitals, pools = [], []
    for pool in plan.pools:
        rows = [(s, by_id[s["claim_id"]]) for s in scored if s["pool"] == pool.name]
        h_rows, p_row = settle_one(pool, rows, patient_paid, fund_cost)
        hospitals += h_rows
        pools.append(p_row)
    for alliance in plan.alliances:
        h_rows, p_row = settle_alliance(plan, alliance, by_id, scored, pools, patient_paid)
        hospitals += h_rows
        pools.append(p_row)
    return hospitals, pools


def settle_alliance(plan, alliance, by_id: dict, scored: list, pool_rows: list, patient_paid):
    """医共体: per alliance, budget = per head × persons; used = Σ over its residents' valued
    claims in its pools of points × that pool's PV (− patient-paid where the points carry
    it), rounded once; keep × surplus or −bear × overrun paid to it at the year end."""
    pv = {r["pool"]: Fraction(r["point_value"]) for r in pool_rows}
    carries = {p.name: p.point_value.kind == BUDGET_PLUS_PAID or (
        p.point_value.kind == BASELINE and p.point_value.include_paid) for p in plan.pools}
    persons = {str(a): n for a, n in alliance.members}
    acc = {}
    for s in scored:
        c = by_id[s["claim_id"]]
        a = c.get(alliance.column)
        if s["pool"] not in alliance.pools or s["case_class"] == "ungrouped" or a is None:
            continue
        r = acc.setdefault(str(a), {"n": 0, "pts": 0, "paid": 0, "total": 0, "used": Fraction(0)})
        paid = c.get(patient_paid) or 0
        r["n"] += 1
        r["pts"] += s["points"]
        r["paid"] += paid
        r["total"] += c["total"] or 0
        r["used"] += s["points"] * pv[s["pool"]] / POINT_SCALE - (paid if carries[s["pool"]]
                                                                 else 0)
    out = []
    for a in sorted(set(acc) | set(persons)):
        r = acc.get(a, {"n": 0, "pts": 0, "paid": 0, "total": 0, "used": Fraction(0)})
        budget = alliance.per_head * persons.get(a, 0)
        used = half_up(r["used"])
        diff = budget - used
        rate = alliance.keep if diff >= 0 else alliance.bear
        shared = half_up(Fraction(diff * rate, RATIO_SCALE))
        out.append({"pool": alliance.name, "fixmedins_code": a, "claims": r["n"],
                    "points": r["pts"], "medfee_sumamt": r["total"], "value": used,
                    "psn_part_amt": r["paid"], "hifp_pay": shared, "prepaid": 0,
                    "shared_amt": shared, "capitation_budget": 0, "capitation_used": 0,
                    "capitation_balance": 0, "setl_amt": shared, "budget": budget,
                    "prepay_below": [], "pending_review_claims": 0, "pending_review_amt": 0,
                    "fixed_rate_e6": None, "compensation_amt": 0})
    budget, used = sum(r["budget"] for r in out), sum(r["value"] for r in out)
    shared = sum(r["shared_amt"] for r in out)
    return out, {"pool": alliance.name, "budget": budget, "control_total": budget,
                 "reserve": 0, "fund_cost": used, "shared_amt": shared,
                 "fund_amt": used + shared, "psn_part_amt": sum(r["psn_part_amt"] for r in out),
                 "points": sum(r["points"] for r in out),
                 "points_pv": sum(r["points"] for r in out), "point_value": "0/1",
                 "point_value_e6": 0, "distributed": shared, "capitation_budget": 0,
                 "capitation_used": 0, "budget_deviation": 0, "hifp_pay": shared,
                 "pending_review_claims": 0, "pending_review_amt": 0, "fixed_amt": 0,
                 "compensation_amt": 0, "kind": "alliance"}


def settle_one(pool: Pool, rows: list, patient_paid, fund_cost):
    cap = pool.capitation
    signed = lambda c: cap is not None and c.get(cap.signed_column) is not None
    valued = [(s, c) for s, c in rows if s["case_class"] != "ungrouped"]
    free = [(s, c) for s, c in valued if not signed(c)]
    paid_of = lambda c: c.get(patient_paid) or 0
    cost_of = lambda c: (c.get(fund_cost) or 0) if fund_cost else (c["total"] or 0) - paid_of(c)
    pvk = pool.point_value
    # points carry patients' money too under (G + P) / Σ (and a baseline floating on it)
    with_paid = pvk.kind == BUDGET_PLUS_PAID or (pvk.kind == BASELINE and pvk.include_paid)
    A = sum(cost_of(c) for _, c in free)
    P = sum(paid_of(c) for _, c in free)
    # 固定费率: a fixed-rate hospital is paid points × rate (+ compensation of its shortfall)
    # and is out of the point value; the floating hospitals share what the target has left
    present = {s["hospital_id"] for s, _ in rows}
    fixed = {}
    for fx in pool.fixed_rates:
        h = str(fx.hospital_id)
        if h not in present:
            continue
        mine = [c for s, c in valued if s["hospital_id"] == h]
        pts = sum(s["points"] for s, _ in valued if s["hospital_id"] == h)
        at_rate = half_up(Fraction(pts * fx.rate, POINT_SCALE * PV_SCALE))
        carried = sum(cost_of(c) + (paid_of(c) if with_paid else 0) for c in mine)
        comp = half_up(Fraction(max(0, carried - at_rate) * fx.compensation, RATIO_SCALE))
        paid_h = sum(paid_of(c) for c in mine)
        fixed[h] = {"rate": fx.rate, "value": at_rate + comp, "comp": comp,
                    "due": at_rate + comp - (paid_h if with_paid else 0), "P": paid_h}
    committed = sum(f["due"] for f in fixed.values())
    floating = [(s, c) for s, c in free if s["hospital_id"] not in fixed]
    A_float = sum(cost_of(c) for _, c in floating)
    P_float = sum(paid_of(c) for _, c in floating)
    S = sum(s["points"] for s, _ in floating)
    sh = pool.sharing
    control = sh.per_head * sh.insured if sh and sh.per_head is not None else pool.budget
    reserve = half_up(Fraction(control * pool.reserve_share, RATIO_SCALE))
    G, shared = control - reserve - committed, 0
    if sh:
        surplus = G - A_float
        rate = sh.keep if surplus >= 0 else sh.bear
        shared = half_up(Fraction(surplus * rate, RATIO_SCALE))
        G = A_float + shared
    pv = Fraction(0)
    if S:
        pv = Fraction((G + P_float if with_paid else G) * POINT_SCALE, S)
        if pvk.kind == BASELINE:
            s = Fraction(pvk.baseline_share, RATIO_SCALE)
            pv = s * Fraction(pvk.baseline_value, PV_SCALE) + (1 - s) * pv
    blank = lambda: {"n": 0, "pts": 0, "free_pts": 0, "paid": 0, "total": 0, "pending": 0,
                     "pending_total": 0}
    hs = {}
    if pool.hospital_budgets:  # every hospital with a budget row has a row, claims or not
        for h, _ in pool.hospital_budgets:
            if str(h) not in {str(f.hospital_id) for f in pool.fixed_rates}:
                hs.setdefault(str(h), blank())  # a fixed-rate hospital is on no budget
    for s, c in rows:
        h = hs.setdefault(s["hospital_id"], blank())
        h["n"] += 1
        if s["case_class"] == "ungrouped":  # awaiting special review: not charged
            h["pending"] += 1
            h["pending_total"] += c["total"] or 0
            continue
        h["pts"] += s["points"]
        h["free_pts"] += 0 if signed(c) else s["points"]
        h["paid"] += paid_of(c)
        h["total"] += c["total"] or 0
    own = {}
    if pool.hospital_budgets:
        # each hospital against its own budget: G[h] = A[h] + its share of (budget − A[h])
        budgets = dict((str(h), b) for h, b in pool.hospital_budgets)
        for h in hs:
            if h in fixed:  # paid at its rate, on no budget
                continue
            b = budgets.get(h, 0)
            r = half_up(Fraction(b * pool.reserve_share, RATIO_SCALE))
            a = sum(cost_of(c) for s, c in valued if s["hospital_id"] == h)
            p = sum(paid_of(c) for s, c in valued if s["hospital_id"] == h)
            surplus = b - r - a
            if sh:
                sh_h = half_up(Fraction(surplus * (sh.keep if surplus >= 0 else sh.bear),
                                        RATIO_SCALE))
            else:
                sh_h = surplus
            own[h] = {"budget": b, "reserve": r, "shared": sh_h, "G": a + sh_h, "P": p}
        control = sum(o["budget"] for o in own.values())
        reserve = sum(o["reserve"] for o in own.values())
        shared = sum(o["shared"] for o in own.values())
        G = sum(o["G"] for o in own.values())
        plus_paid = pool.point_value.kind == BUDGET_PLUS_PAID
        pv = Fraction((G + P_float if plus_paid else G) * POINT_SCALE, S) if S else Fraction(0)
        value = {h: o["G"] + (o["P"] if plus_paid else 0) for h, o in own.items()}
        shares = {h: o["shared"] for h, o in own.items()}
    else:
        float_hs = {h: v for h, v in hs.items() if h not in fixed}
        value = apportion({h: Fraction(v["pts"]) * pv / POINT_SCALE
                           for h, v in float_hs.items()})
        shares = apportion({h: Fraction(shared * v["free_pts"], S) if S else 0
                            for h, v in float_hs.items()})
    value.update({h: f["value"] for h, f in fixed.items()})
    G += committed  # the whole pool's fund amount: floating and fixed hospitals
    if pool.hospital_budgets or fixed:
        distributed = sum(value.values())
    else:
        distributed = half_up(pv * sum(v["pts"] for v in hs.values()) / POINT_SCALE)
    cap_budget, cap_pts = {}, {}
    if cap:
        cap_budget = {str(i): cap.per_head * n for i, n in cap.signed}
        for s, c in valued:
            if signed(c):
                i = str(c[cap.signed_column])
                cap_pts[i] = cap_pts.get(i, 0) + s["points"]
    cap_used = apportion({i: Fraction(p) * pv / POINT_SCALE for i, p in cap_pts.items()})
    deviation = 0
    if pvk.kind == BASELINE and S:
        deviation = distributed - sum(cap_used.values()) - (G + P if with_paid else G)
    prepaid = {str(h): v for h, v in pool.prepaid}
    by_month = {}  # (hospital, month) -> prepaid
    for h, m, fen in pool.prepayments:
        prepaid[str(h)] = prepaid.get(str(h), 0) + fen
        by_month[str(h), str(m)] = by_month.get((str(h), str(m)), 0) + fen
    month_due = {}  # (hospital, month) -> Σ fee-for-service fund amount of its claims
    for s, c in rows:
        key = (s["hospital_id"], month_of(c.get(pool.month_column)))
        month_due[key] = month_due.get(key, 0) + cost_of(c)
    out = []
    for h in sorted(set(hs) | set(prepaid) | set(cap_budget)):
        v = hs.get(h, blank())
        due = value.get(h, 0) - (v["paid"] if with_paid else 0)
        bal = cap_budget.get(h, 0) - cap_used.get(h, 0)
        below = []
        if pool.prepayments:
            months = {m for hh, m in list(month_due) + list(by_month) if hh == h}
            below = sorted(m for m in months
                           if Fraction(by_month.get((h, m), 0))
                           < Fraction(pool.prepay_floor, RATIO_SCALE) * month_due.get((h, m), 0))
        out.append({"pool": pool.name, "fixmedins_code": h, "claims": v["n"],
                    "points": v["pts"], "medfee_sumamt": v["total"],
                    "value": value.get(h, 0), "psn_part_amt": v["paid"], "hifp_pay": due,
                    "prepaid": prepaid.get(h, 0), "shared_amt": shares.get(h, 0),
                    "capitation_budget": cap_budget.get(h, 0),
                    "capitation_used": cap_used.get(h, 0), "capitation_balance": bal,
                    "setl_amt": due - prepaid.get(h, 0) + bal,
                    "budget": (own[h]["budget"] if h in own else 0)
                    if pool.hospital_budgets and h not in fixed else None,
                    "prepay_below": below,
                    "pending_review_claims": v["pending"],
                    "pending_review_amt": v["pending_total"],
                    "fixed_rate_e6": fixed[h]["rate"] if h in fixed else None,
                    "compensation_amt": fixed[h]["comp"] if h in fixed else 0})
    pool_row = {"pool": pool.name, "budget": pool.budget, "control_total": control,
                "reserve": reserve, "fund_cost": A, "shared_amt": shared, "fund_amt": G,
                "psn_part_amt": P, "points": sum(v["pts"] for v in hs.values()),
                "points_pv": S, "point_value": f"{pv.numerator}/{pv.denominator}",
                "point_value_e6": half_up(pv * PV_SCALE), "distributed": distributed,
                "capitation_budget": sum(cap_budget.values()),
                "capitation_used": sum(cap_used.values()), "budget_deviation": deviation,
                "hifp_pay": sum(r["hifp_pay"] for r in out),
                "pending_review_claims": sum(v["pending"] for v in hs.values()),
                "pending_review_amt": sum(v["pending_total"] for v in hs.values()),
                "fixed_amt": sum(f["value"] for f in fixed.values()),
                "compensation_amt": sum(f["comp"] for f in fixed.values()), "kind": "pool"}
    return out, pool_row

"""Per-pool settlement in exact rational arithmetic (point-method.md §3).

Works on per-hospital sums (a few thousand rows at most), never on claims, so plain Python
``Fraction``s are cheap and exact. Every amount of money leaves here as an ``int`` of fen:
rationals are rounded half-up away from zero once, and splits over hospitals use the largest
remainder method (ties by hospital_id) so their sum is exactly the amount split.
"""
from __future__ import annotations

import math
from fractions import Fraction

import pyarrow as pa

from yibao.core import money
from yibao.core.plan import RATIO_SCALE

from .plan import BASELINE, BUDGET_PLUS_PAID, POINT_SCALE, PV_SCALE, Pool

HOSPITAL_SCHEMA = pa.schema([
    ("pool", pa.string()), ("fixmedins_code", pa.string()), ("claims", pa.int64()),
    ("points", pa.int64()), ("medfee_sumamt", pa.int64()), ("value", pa.int64()),
    ("psn_part_amt", pa.int64()), ("hifp_pay", pa.int64()), ("prepaid", pa.int64()),
    ("shared_amt", pa.int64()), ("capitation_budget", pa.int64()),
    ("capitation_used", pa.int64()), ("capitation_balance", pa.int64()),
    ("setl_amt", pa.int64()), ("budget", pa.int64()), ("prepay_below", pa.list_(pa.string())),
    ("pending_review_claims", pa.int64()), ("pending_review_amt", pa.int64()),
    ("fixed_rate_e6", pa.int64()), ("compensation_amt", pa.int64())])

POOL_SCHEMA = pa.schema([
    ("pool", pa.string()), ("budget", pa.int64()), ("control_total", pa.int64()),
    ("reserve", pa.int64()), ("fund_cost", pa.int64()), ("shared_amt", pa.int64()),
    ("fund_amt", pa.int64()), ("psn_part_amt", pa.int64()), ("points", pa.int64()),
    ("points_pv", pa.int64()), ("point_value", pa.string()), ("point_value_e6", pa.int64()),
    ("distributed", pa.int64()), ("capitation_budget", pa.int64()),
    ("capitation_used", pa.int64()), ("budget_deviation", pa.int64()), ("hifp_pay", pa.int64()),
    ("pending_review_claims", pa.int64()), ("pending_review_amt", pa.int64()),
    ("fixed_amt", pa.int64()), ("compensation_amt", pa.int64()), ("kind", pa.string())])


def round_half_up(x: Fraction) -> int:
    """Nearest integer, halves away from zero: core/money.py's one rounding rule on a
    Fraction (its denominator is always positive)."""
    return money.round_half_up(x.numerator, x.denominator)


def largest_remainder(shares: dict) -> dict:
    """Split round_half_up(Σ shares) over the keys: each key gets the floor of its share
    (towards zero for negative totals), the leftover fen go one each to the largest
    fractional parts, ties by key ascending. Σ result == round_half_up(Σ shares) exactly and
    every result is within 1 of its share. Shares must all have the sign of their sum.
    Exact in integers: every share over one common denominator, so the sum, the floors and
    the ranking of the remainders are int operations (Fraction sums and comparisons of
    thousands of hospitals' shares took about a second)."""
    fractions = {k: Fraction(v) for k, v in shares.items()}
    d = math.lcm(*(f.denominator for f in fractions.values())) if fractions else 1
    return split_over({k: f.numerator * (d // f.denominator) for k, f in fractions.items()}, d)


def split_over(num: dict, d: int) -> dict:
    """``largest_remainder`` of the shares ``num[k] / d`` (ints over one positive common
    denominator, not necessarily in lowest terms): scaling every share's numerator and the
    denominator by one factor changes neither the floors nor the order of the remainders,
    so the split is the same. Callers that know the denominator (a pool's point value)
    need no Fraction per hospital."""
    total = sum(num.values())
    sign = -1 if total < 0 else 1
    target = abs(money.round_half_up(total, d))
    out = {k: abs(n) // d for k, n in num.items()}  # the floor of |share|
    order = sorted(num, key=lambda k: (-(abs(num[k]) % d), k))
    for k in order[:target - sum(out.values())]:
        out[k] += 1
    return {k: sign * v for k, v in out.items()}


def ratio(amount: int, r: int) -> int:
    """round_half_up(amount × r), r in millionths."""
    return round_half_up(Fraction(amount * r, RATIO_SCALE))


def fund_amount(pool: Pool, cost: int, committed: int = 0):
    """(control total, reserve, shared, G): the fund amount the point value is formed from.
    ``committed`` (the fixed-rate hospitals' fund due) comes off the target first."""
    sharing = pool.sharing
    control = pool.budget
    if sharing and sharing.per_head is not None:
        control = sharing.per_head * sharing.insured
    reserve = ratio(control, pool.reserve_share)
    target = control - reserve - committed
    if not sharing:
        return control, reserve, 0, target
    diff = target - cost
    shared = ratio(diff, sharing.keep) if diff >= 0 else -ratio(-diff, sharing.bear)
    return control, reserve, shared, cost + shared


def carries_paid(pool: Pool) -> bool:
    """Do the pool's points carry patients' money as well as the fund's? Under
    ``(budget + patient_paid) / points`` (and a baseline floating on that form) they do, and
    fund due is value − patient-paid; under ``budget / points`` they carry fund money only
    and fund due is the value (point-method.md §3: patients' payments never taken off
    twice)."""
    pv = pool.point_value
    return pv.kind == BUDGET_PLUS_PAID or (pv.kind == BASELINE and pv.include_paid)


def point_value(pool: Pool, g: int, paid: int, points: int) -> Fraction:
    """PV in fen per point (points given ×10^4); 0 when there are no points."""
    if points == 0:
        return Fraction(0)
    pv_kind = pool.point_value
    if pv_kind.kind == BUDGET_PLUS_PAID:
        return Fraction((g + paid) * POINT_SCALE, points)
    floating = Fraction(((g + paid) if pv_kind.include_paid else g) * POINT_SCALE, points)
    if pv_kind.kind != BASELINE:
        return floating
    s = Fraction(pv_kind.baseline_share, RATIO_SCALE)
    return s * Fraction(pv_kind.baseline_value, PV_SCALE) + (1 - s) * floating


def fixed_values(pool: Pool, per_h: dict, with_paid: bool) -> dict:
    """固定费率: h -> (rate, value, compensation) of every fixed-rate hospital with claims:
    value = round(points × rate) + compensation, the compensation being round(ratio ×
    shortfall) of the shortfall (its claims' cost the points carry, less points × rate)."""
    out = {}
    for fx in pool.fixed_rates:
        r = per_h.get(str(fx.hospital_id))
        if r is None:
            continue
        at_rate = round_half_up(Fraction(r["points"] * fx.rate, POINT_SCALE * PV_SCALE))
        carried = r["cost_pv"] + (r["paid_pv"] if with_paid else 0)
        comp = ratio(max(0, carried - at_rate), fx.compensation)
        out[str(fx.hospital_id)] = (fx.rate, at_rate + comp, comp)
    return out


def own_budgets(pool: Pool, per_h: dict) -> dict:
    """Per-hospital budgets: h -> (budget, reserve, shared, G[h]) with G[h] = A[h] + shared[h],
    the hospital's surplus (kept × keep) or overrun (borne × bear) against its own budget
    after the reserve. No ``sharing``: G[h] is the budget after the reserve."""
    budgets = {str(h): b for h, b in pool.hospital_budgets}
    fixed = {str(fx.hospital_id) for fx in pool.fixed_rates}  # paid at their rate instead
    out = {}
    for h in sorted((set(per_h) | set(budgets)) - fixed):
        budget = budgets.get(h, 0)
        reserve = ratio(budget, pool.reserve_share)
        cost = per_h[h]["cost_pv"] if h in per_h else 0
        diff = budget - reserve - cost
        if pool.sharing:
            shared = ratio(diff, pool.sharing.keep) if diff >= 0 else -ratio(-diff, pool.sharing.bear)
        else:
            shared = diff
        out[h] = (budget, reserve, shared, cost + shared)
    return out


def month_dues(pool: Pool, r: dict) -> dict:
    """month -> the hospital's fee-for-service fund amount of that month (``due:`` fields)."""
    if r.get("n_m", r["n"]) != r["n"]:
        raise ValueError(
            f"pool {pool.name}: the monthly dues of a hospital cover {r.get('n_m')} of its "
            f"{r['n']} claims; per-month sums must be merged like the other sums")
    return {k[4:]: v for k, v in r.items() if k.startswith("due:")}


def prepay_below(pool: Pool, dues: dict, paid: dict) -> list:
    """Months (sorted) whose prepayment is below ``prepay_floor`` × the month's due."""
    return [m for m in sorted(set(dues) | set(paid))
            if paid.get(m, 0) * RATIO_SCALE < pool.prepay_floor * dues.get(m, 0)]


def _split_by_points(pool: Pool, per_h: dict, g: int, paid_pv: int, points_pv: int,
                     shared: int):
    """(PV, value per hospital, shared per hospital) of a pool with one budget: V[h] =
    points[h] × PV and the surplus/overrun by unsigned points, each split by largest
    remainder (a negative amount as its magnitude, then negated)."""
    pv = point_value(pool, g, paid_pv, points_pv)
    value = split_over({h: r["points"] * pv.numerator for h, r in per_h.items()},
                       pv.denominator * POINT_SCALE)
    sign = -1 if points_pv < 0 else 1  # split_over wants a positive denominator
    shares = split_over({h: sign * shared * r["points_pv"] if points_pv else 0
                         for h, r in per_h.items()}, abs(points_pv) or 1)
    return pv, value, shares


def _monthly(pool: Pool):
    """(prepaid per hospital: yearly + Σ monthly, {hospital: {month: fen}})."""
    prepaid = {str(h): v for h, v in pool.prepaid}
    monthly = {}
    for h, month, fen in pool.prepayments:
        monthly.setdefault(str(h), {})
        monthly[str(h)][str(month)] = monthly[str(h)].get(str(month), 0) + fen
    for h, months in monthly.items():
        prepaid[h] = prepaid.get(h, 0) + sum(months.values())
    return prepaid, monthly


EMPTY = {"points": 0, "paid": 0, "total": 0, "n": 0, "pending_n": 0, "pending_total": 0}


def settle_pool(pool: Pool, per_h: dict, signed_pts: dict):
    """(hospital rows, pool row) from per-hospital sums: ``per_h[h]`` has points, points_pv,
    paid, paid_pv, total, cost_pv, n, pending_n, pending_total (and, when the pool has
    monthly prepayments, n_m and a ``due:YYYY-MM`` sum per month); ``signed_pts[i]`` =
    points of persons signed with i. Fixed-rate hospitals are valued at their rate and the
    rest of the pool floats on what the budget has left (``Pool.fixed_rates``)."""
    with_paid = carries_paid(pool)
    fixed = fixed_values(pool, per_h, with_paid)
    fixed_due = sum(v - (per_h[h]["paid"] if with_paid else 0) for h, (_, v, _) in fixed.items())
    floating = {h: r for h, r in per_h.items() if h not in fixed}
    cost = sum(r["cost_pv"] for r in per_h.values())
    paid_pv = sum(r["paid_pv"] for r in per_h.values())
    points_pv = sum(r["points_pv"] for r in floating.values())
    paid_all = sum(r["paid"] for r in per_h.values())
    own = own_budgets(pool, floating) if pool.hospital_budgets else None
    if own is not None:
        control, reserve, shared, g = (sum(o[i] for o in own.values()) for i in range(4))
        pv = point_value(pool, g, paid_pv - sum(per_h[h]["paid_pv"] for h in fixed), points_pv)
        # each hospital is paid its own fund amount (+ its patients' money under (G + P) / Σ)
        value = {h: o[3] + (per_h[h]["paid_pv"] if with_paid and h in per_h else 0)
                 for h, o in own.items()}
        shares = {h: o[2] for h, o in own.items()}
    else:
        float_cost = sum(r["cost_pv"] for r in floating.values())
        control, reserve, shared, g = fund_amount(pool, float_cost, fixed_due)
        float_paid = sum(r["paid_pv"] for r in floating.values())
        pv, value, shares = _split_by_points(pool, floating, g, float_paid, points_pv, shared)
    value.update({h: v for h, (_, v, _) in fixed.items()})
    g += fixed_due  # the fund amount of the whole pool: floating and fixed hospitals
    distributed = (sum(value.values()) if own is not None or fixed else
                   round_half_up(pv * sum(r["points"] for r in per_h.values()) / POINT_SCALE))
    cap_budget, cap_used = capitation(pool, signed_pts, pv)
    deviation = 0
    if pool.point_value.kind == BASELINE and points_pv:
        # what the baseline pays beyond what the floating form alone would distribute
        deviation = distributed - sum(cap_used.values()) - (g + (paid_pv if with_paid else 0))
    prepaid, monthly = _monthly(pool)
    rows = []
    for h in sorted(set(per_h) | set(prepaid) | set(cap_budget) | set(own or ())):
        r = per_h.get(h, EMPTY)
        due = value.get(h, 0) - (r["paid"] if with_paid else 0)  # patients' money off once
        balance = cap_budget.get(h, 0) - cap_used.get(h, 0)
        below = (prepay_below(pool, month_dues(pool, r), monthly.get(h, {}))
                 if pool.prepayments else [])
        rows.append({
            "pool": pool.name, "fixmedins_code": h, "claims": r["n"], "points": r["points"],
            "medfee_sumamt": r["total"], "value": value.get(h, 0), "psn_part_amt": r["paid"],
            "hifp_pay": due, "prepaid": prepaid.get(h, 0), "shared_amt": shares.get(h, 0),
            "capitation_budget": cap_budget.get(h, 0), "capitation_used": cap_used.get(h, 0),
            "capitation_balance": balance,
            "setl_amt": due - prepaid.get(h, 0) + balance,
            "budget": None if own is None or h in fixed else own[h][0] if h in own else 0,
            "prepay_below": below, "pending_review_claims": r.get("pending_n", 0),
            "pending_review_amt": r.get("pending_total", 0),
            "fixed_rate_e6": fixed[h][0] if h in fixed else None,
            "compensation_amt": fixed[h][2] if h in fixed else 0})
    pool_row = {
        "pool": pool.name, "budget": pool.budget, "control_total": control, "reserve": reserve,
        "fund_cost": cost, "shared_amt": shared, "fund_amt": g, "psn_part_amt": paid_pv,
        "points": sum(r["points"] for r in per_h.values()), "points_pv": points_pv,
        "point_value": f"{pv.numerator}/{pv.denominator}",
        "point_value_e6": round_half_up(pv * PV_SCALE), "distributed": distributed,
        "capitation_budget": sum(cap_budget.values()),
        "capitation_used": sum(cap_used.values()), "budget_deviation": deviation,
        "hifp_pay": distributed - (paid_all if with_paid else 0),
        **_pending(per_h),
        "fixed_amt": sum(v for _, v, _ in fixed.values()),
        "compensation_amt": sum(c for _, _, c in fixed.values()), "kind": "pool"}
    return rows, pool_row


def _pending(per_h: dict) -> dict:
    """The pool's claims awaiting special review (ungrouped): count and Σ total."""
    return {"pending_review_claims": sum(r.get("pending_n", 0) for r in per_h.values()),
            "pending_review_amt": sum(r.get("pending_total", 0) for r in per_h.values())}


def capitation(pool: Pool, signed_pts: dict, pv: Fraction):
    """(budget, used) per signed institution: per-head × persons, and its signed persons'
    points valued at the pool PV, split by largest remainder."""
    if not pool.capitation:
        return {}, {}
    cap = pool.capitation
    budget = {str(i): cap.per_head * persons for i, persons in cap.signed}
    used = split_over({i: p * pv.numerator for i, p in signed_pts.items()},
                      pv.denominator * POINT_SCALE)
    return budget, used


# -- 医共体 alliances ---------------------------------------------------------------------------

def alliance_used(per_pool: dict, pool_values: dict) -> Fraction:
    """The exact fund value of one alliance's residents' care: Σ over pools of points × the
    pool's PV, less patients' payments where the pool's points carry them.
    ``per_pool[pool]`` has points and paid; ``pool_values[pool]`` is (PV, carries_paid)."""
    used = Fraction(0)
    for name, r in per_pool.items():
        pv, with_paid = pool_values[name]
        used += r["points"] * pv / POINT_SCALE - (r["paid"] if with_paid else 0)
    return used


def settle_alliance(alliance, sums: dict, pool_values: dict):
    """(hospital rows, pool row) of a 医共体 declaration: one row per alliance with its budget
    (per head × persons), what its residents used (``value``), the surplus kept or overrun
    borne (``shared_amt`` = ``hifp_pay`` = ``setl_amt``: paid to the alliance, or taken from
    it, at the year end). ``sums["<alliance>\\x1f<pool>"]`` has points, paid, total, n."""
    persons = {str(a): p for a, p in alliance.members}
    per_a = {}
    for key, r in sums.items():
        a, pool = key.split("\x1f", 1)
        per_a.setdefault(a, {})[pool] = r
    rows = []
    for a in sorted(set(per_a) | set(persons)):
        mine = per_a.get(a, {})
        budget = alliance.per_head * persons.get(a, 0)
        used = round_half_up(alliance_used(mine, pool_values))
        diff = budget - used
        shared = ratio(diff, alliance.keep) if diff >= 0 else -ratio(-diff, alliance.bear)
        total = lambda f: sum(r[f] for r in mine.values())
        rows.append({
            "pool": alliance.name, "fixmedins_code": a, "claims": total("n"),
            "points": total("points"), "medfee_sumamt": total("total"), "value": used,
            "psn_part_amt": total("paid"), "hifp_pay": shared, "prepaid": 0,
            "shared_amt": shared, "capitation_budget": 0, "capitation_used": 0,
            "capitation_balance": 0, "setl_amt": shared, "budget": budget, "prepay_below": [],
            "pending_review_claims": 0, "pending_review_amt": 0, "fixed_rate_e6": None,
            "compensation_amt": 0})
    col = lambda f: sum(r[f] for r in rows)
    pool_row = {
        "pool": alliance.name, "budget": col("budget"), "control_total": col("budget"),
        "reserve": 0, "fund_cost": col("value"), "shared_amt": col("shared_amt"),
        "fund_amt": col("value") + col("shared_amt"), "psn_part_amt": col("psn_part_amt"),
        "points": col("points"), "points_pv": col("points"), "point_value": "0/1",
        "point_value_e6": 0, "distributed": col("shared_amt"), "capitation_budget": 0,
        "capitation_used": 0, "budget_deviation": 0, "hifp_pay": col("shared_amt"),
        "pending_review_claims": 0, "pending_review_amt": 0, "fixed_amt": 0,
        "compensation_amt": 0, "kind": "alliance"}
    return rows, pool_row


def pool_values(pools: tuple, pool_rows: list) -> dict:
    """pool name -> (PV as a Fraction, carries patients' money) from settled pool rows."""
    by_name = {p.name: p for p in pools}
    return {r["pool"]: (Fraction(r["point_value"]), carries_paid(by_name[r["pool"]]))
            for r in pool_rows if r["pool"] in by_name}

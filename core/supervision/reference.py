"""The plain-Python supervision oracle: the rules of core/supervision/plan.py, stay by stay.

``evaluate(supervision, stays) -> (flags, indicators)`` as ``compute.evaluate`` returns them,
from Python dicts and exact fractions, written from docs/supervision.md; it imports nothing
from the vectorised evaluator (stays.py, which both share, builds the input and orders the
output). Slow on purpose: the obvious loops, including an all-pairs readmission search.
"""
from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import pyarrow as pa

from yibao.core.money import round_half_up
from yibao.core.plan import RATIO_SCALE
from yibao.core.points.reference import passes

from .plan import (AboveGroupMean, CcShare, ListedGroups, Readmit, SevereShare, ShortStay,
                   Supervision)
from .stays import FLAG_SCHEMA, INDICATOR_SCHEMA, effect_of, sorted_flags, sorted_indicators


def evaluate(supervision: Supervision, stays: pa.Table):
    rows = stays.to_pylist()
    rw = weights(rows)
    out = []
    for flag in supervision.flags:
        members = [s for s in rows if passes(s, flag.applies)]
        for found in RULES[type(flag.rule)](flag.rule, members, rw):
            out.append({**dict.fromkeys(FLAG_SCHEMA.names), "related": [], **found,
                        "rule": flag.name, "label": flag.label, "kind": flag.rule.name,
                        "severity": flag.severity, "level": flag.level,
                        "effect": effect_of(flag)})
    flags = pa.Table.from_pylist(out, schema=FLAG_SCHEMA)
    return sorted_flags(flags), sorted_indicators(
        pa.Table.from_pylist(hospital_rows(rows, rw), schema=INDICATOR_SCHEMA))


def millionths(f: Fraction) -> int:
    return round_half_up(f.numerator * RATIO_SCALE, f.denominator)


def weights(rows: list) -> dict:
    """group -> RW: the group's mean cost over the mean cost of every stay with a group."""
    cost, count = defaultdict(int), defaultdict(int)
    for s in rows:
        if s["group"] is not None:
            cost[s["group"]] += s["total"]
            count[s["group"]] += 1
    n, c = sum(count.values()), sum(cost.values())
    return {g: (Fraction(cost[g], count[g]) / Fraction(c, n) if c else Fraction(0))
            for g in cost}


def readmissions(rule: Readmit, members: list, rw: dict) -> list:
    ok = [s for s in members if None not in (s["person_id"], s["hospital_id"], s["admit"],
                                             s["discharge"])]
    out = []
    for b in ok:
        earlier = []
        for a in ok:
            same = a["hospital_id"] == b["hospital_id"]
            if a is b or a["person_id"] != b["person_id"] or same != rule.same_hospital:
                continue
            gap = b["admit"] - a["discharge"]
            before = (a["admit"], a["discharge"], a["claim_id"]) < \
                (b["admit"], b["discharge"], b["claim_id"])
            if 0 <= gap <= rule.days and before:
                earlier.append((gap, a["claim_id"]))
        if earlier:
            out.append({"claim_id": b["claim_id"], "hospital_id": b["hospital_id"],
                        "value": min(g for g, _ in earlier), "threshold": rule.days,
                        "unit": "days", "related": sorted(c for _, c in earlier)})
    return out


def above_mean(rule: AboveGroupMean, members: list, rw: dict) -> list:
    field = "los" if rule.measure == "los" else "total"
    ok = [s for s in members if s["group"] is not None and s[field] is not None]
    by_group = defaultdict(list)
    for s in ok:
        by_group[s["group"]].append(s[field])
    out = []
    for s in ok:
        values = by_group[s["group"]]
        mean = Fraction(sum(values), len(values))
        if s[field] > mean * rule.factor / RATIO_SCALE:
            out.append({"claim_id": s["claim_id"], "hospital_id": s["hospital_id"],
                        "group": s["group"], "value": s[field],
                        "threshold": math.floor(mean * rule.factor / RATIO_SCALE),
                        "basis": round_half_up(sum(values), len(values)),
                        "unit": "days" if field == "los" else "fen"})
    return out


def short_stays(rule: ShortStay, members: list, rw: dict) -> list:
    return [{"claim_id": s["claim_id"], "hospital_id": s["hospital_id"], "group": s["group"],
             "value": s["los"], "threshold": rule.days, "basis": millionths(rw[s["group"]]),
             "unit": "days"}
            for s in members if s["group"] is not None and s["los"] is not None
            and s["los"] <= rule.days and rw[s["group"]] * RATIO_SCALE < rule.weight]


def listed(rule: ListedGroups, members: list, rw: dict) -> list:
    return [{"claim_id": s["claim_id"], "hospital_id": s["hospital_id"], "group": s["group"],
             "unit": ""} for s in members if s["group"] in rule.groups]


def _has_cc(group: str) -> bool:
    return len(group) >= 4 and group[3] in ("1", "3")


def cc_shares(rule: CcShare, members: list, rw: dict) -> list:
    ok = [s for s in members if s["group"] is not None and s["hospital_id"] is not None]
    city, per = defaultdict(list), defaultdict(list)
    for s in ok:
        city[s["group"][:3]].append(s)
        per[(s["hospital_id"], s["group"][:3])].append(s)
    out = []
    for (h, adrg), stays in per.items():
        cc = [s["claim_id"] for s in stays if _has_cc(s["group"])]
        city_cc = sum(_has_cc(s["group"]) for s in city[adrg])
        share, city_share = Fraction(len(cc), len(stays)), Fraction(city_cc, len(city[adrg]))
        if len(stays) >= rule.min_cases and share > city_share * rule.factor / RATIO_SCALE:
            out.append({"hospital_id": h, "group": adrg, "value": millionths(share),
                        "basis": millionths(city_share),
                        "threshold": millionths(city_share * rule.factor / RATIO_SCALE),
                        "unit": "millionths", "related": sorted(cc)})
    return out


def severe_shares(rule: SevereShare, members: list, rw: dict) -> list:
    ok = [s for s in members if None not in (s["group"], s["hospital_id"],
                                             s["hospital_level"])]
    level, per = defaultdict(list), defaultdict(list)
    for s in ok:
        severe = rw[s["group"]] * RATIO_SCALE >= rule.weight
        level[s["hospital_level"]].append(severe)
        per[(s["hospital_id"], s["hospital_level"])].append(severe)
    out = []
    for (h, lv), flags in per.items():
        share = Fraction(sum(flags), len(flags))
        level_share = Fraction(sum(level[lv]), len(level[lv]))
        if len(flags) >= rule.min_cases and share < level_share * rule.factor / RATIO_SCALE:
            out.append({"hospital_id": h, "value": millionths(share),
                        "basis": millionths(level_share),
                        "threshold": millionths(level_share * rule.factor / RATIO_SCALE),
                        "unit": "millionths"})
    return out


RULES = {Readmit: readmissions, AboveGroupMean: above_mean, ShortStay: short_stays,
         ListedGroups: listed, CcShare: cc_shares, SevereShare: severe_shares}


def hospital_rows(rows: list, rw: dict) -> list:
    """The hospital indicators (docs/supervision.md), per hospital, from the stays."""
    city_cost, city_n = defaultdict(int), defaultdict(int)
    city_days, city_m = defaultdict(int), defaultdict(int)
    for s in rows:
        if s["group"] is not None:
            city_cost[s["group"]] += s["total"]
            city_n[s["group"]] += 1
            if s["los"] is not None:
                city_days[s["group"]] += s["los"]
                city_m[s["group"]] += 1
    out = []
    for h in {s["hospital_id"] for s in rows}:
        mine = [s for s in rows if s["hospital_id"] == h]
        total = sum(s["total"] for s in mine)
        self_pay = total - sum(s["fund"] for s in mine)
        row = {"hospital_id": h, "claims": len(mine), "total": total, "self_pay": self_pay,
               "self_pay_rate": millionths(Fraction(self_pay, total)) if total else None}
        grouped = [s for s in mine if s["group"] is not None]
        timed = [s for s in grouped if s["los"] is not None]
        if grouped:
            g_mean = {g: Fraction(city_cost[g], city_n[g]) for g in city_n}
            rw_total = sum(rw[s["group"]] for s in grouped)
            expected = sum(g_mean[s["group"]] for s in grouped)
            cost_ratio = sum(Fraction(s["total"]) / g_mean[s["group"]] if g_mean[s["group"]]
                             else Fraction(1) for s in grouped)
            row.update(cases=len(grouped), rw_total=millionths(rw_total),
                       cmi=millionths(rw_total / len(grouped)),
                       cost_index=millionths(cost_ratio / len(grouped)),
                       price_index=millionths(sum(Fraction(s["total"]) for s in grouped)
                                              / expected) if expected else None)
            if timed:
                d_mean = {g: Fraction(city_days[g], city_m[g]) for g in city_m}
                row["time_index"] = millionths(sum(Fraction(s["los"]) / d_mean[s["group"]]
                                                   for s in timed) / len(timed))
        out.append({**dict.fromkeys(INDICATOR_SCHEMA.names), **row})
    return out

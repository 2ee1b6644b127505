"""Plans built directly from plan nodes (no policy language), so the evaluators are tested on
their own. ``reference_plan()`` is the reference policy of spec/benefits.md."""
from __future__ import annotations

import datetime

from yibao.core.plan import (BOOL, DATE, INT, MONEY, PER_CLAIM, PER_YEAR, RATIO, RATIO_SCALE,
                             TEXT, Band, Bands, Binary, Cap, Column, ColumnDecl, Cond, Const,
                             Deductible, InSet, Layer, Lookup, Paid, Plan, SelfPayLimit, Table,
                             Type)

TIER = Type(TEXT, ("tier1", "tier2", "tier3"))
SETTING = Type(TEXT, ("inpatient", "outpatient", "rehab"))
LEVEL = Type(INT, (1, 2, 3))
M, R, B = Type(MONEY), Type(RATIO), Type(BOOL)


def days(iso: str) -> int:
    return (datetime.date.fromisoformat(iso) - datetime.date(1970, 1, 1)).days


def yuan(v) -> Const:
    return Const(M, int(round(v * 100)))


def pct(p) -> int:
    return int(p * RATIO_SCALE // 100)


def col(name, typ) -> Column:
    return Column(typ, name)


def minus(a, b):
    return Binary(M, "-", a, b)


def reference_plan() -> Plan:
    low = col("low_income", B)
    level, tier = col("hospital_level", LEVEL), col("tier", TIER)
    in_scope, self_first, total = col("in_scope", M), col("self_first", M), col("total", M)
    ded_table = Table("deductible_by_level", (LEVEL,), M,
                      (((1,), 30000), ((2,), 60000), ((3,), 80000)))
    rates = {0: (95, 90, 85), 1: (95, 90, 85), 2: (90, 85, 75)}
    ratio_table = Table("inpatient_ratio", (TIER, LEVEL), R, tuple(
        ((t, lv), pct(rates[t][lv - 1])) for t in range(3) for lv in (1, 2, 3)))
    out_ratio = Table("basic_outpatient.ratio", (LEVEL,), R,
                      (((1,), pct(70)), ((2,), pct(60)), ((3,), pct(50))))
    basic_annual = Cap(yuan(300_000), PER_YEAR, name="basic_annual")
    inpatient = Layer(
        "basic_inpatient", "基本医保住院", InSet(B, col("setting", SETTING), (0, 2)),
        minus(in_scope, self_first),
        deductible=Deductible(Cond(M, low, yuan(0), Lookup(M, "deductible_by_level", (level,))),
                              PER_CLAIM),
        ratio=Lookup(R, "inpatient_ratio", (tier, level)), caps=(basic_annual,))
    outpatient = Layer(
        "basic_outpatient", "门诊统筹", Binary(B, "==", col("setting", SETTING), Const(SETTING, 1)),
        minus(in_scope, self_first),
        deductible=Deductible(yuan(1_000), PER_YEAR),
        ratio=Lookup(R, "basic_outpatient.ratio", (level,)),
        caps=(Cap(yuan(5_000), PER_YEAR), basic_annual))
    critical = Layer(
        "critical", "大病保险", Const(B, True),
        minus(minus(in_scope, Paid(M, ("basic_inpatient",))), Paid(M, ("basic_outpatient",))),
        deductible=Deductible(Cond(M, low, yuan(10_000), yuan(20_000)), PER_YEAR),
        ratio=Bands((Band(0, 100_000_00, pct(60)), Band(100_000_00, None, pct(70)))),
        caps=(Cap(Cond(M, low, yuan(500_000), yuan(300_000)), PER_YEAR),))
    assistance = Layer("assistance", "医疗救助", low, minus(total, Paid(M, ())),
                       limit=SelfPayLimit(yuan(50_000)))
    columns = tuple(ColumnDecl(n, t) for n, t in (
        ("claim_id", Type(TEXT)), ("person_id", Type(TEXT)), ("discharge_date", Type(DATE)),
        ("total", M), ("in_scope", M), ("self_first", M), ("setting", SETTING), ("tier", TIER),
        ("hospital_level", LEVEL), ("low_income", B)))
    return Plan("参考政策", "reference", days("2024-01-01"), days("2025-12-31"), columns,
                (ded_table, ratio_table, out_ratio), (inpatient, outpatient, critical, assistance))


def referral_plan() -> Plan:
    """Exercises what the reference policy does not: a continuing deductible (连续计算起付线)
    on referrals, a per-claim cap, a yearly cap and self-pay limit that change with the claim,
    arithmetic with min/max and a comparison."""
    ref = reference_plan()
    referral = col("referral", B)
    low = col("low_income", B)
    level = col("hospital_level", LEVEL)
    inpatient = ref.layers[0]
    continuing = Deductible(Lookup(M, "deductible_by_level", (level,)), PER_CLAIM,
                            continuing=referral)
    per_claim_cap = Cap(Binary(M, "max", yuan(10_000),
                               Binary(M, "*", col("total", M), Const(R, pct(40)))), PER_CLAIM)
    inpatient = Layer(inpatient.name, inpatient.label, inpatient.applies, inpatient.base,
                      deductible=continuing, ratio=inpatient.ratio,
                      caps=(per_claim_cap,) + inpatient.caps)
    big = Binary(B, ">", col("total", M), yuan(50_000))
    assistance = Layer("assistance", "医疗救助", Binary(B, "or", low, big),
                       minus(col("total", M), Paid(M, ())),
                       limit=SelfPayLimit(Cond(M, low, yuan(20_000), yuan(80_000))))
    columns = ref.columns + (ColumnDecl("referral", B),)
    return Plan("转诊测试", "test", ref.effective_from, days("2025-12-31"), columns, ref.tables,
                (inpatient, ref.layers[1], ref.layers[2], assistance))

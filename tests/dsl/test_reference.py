"""The reference policy of benefits.md compiles to exactly the numbers of benefits.md."""
from pathlib import Path

from yibao.core import plan as P
from yibao.core.plan import Plan, Type
from yibao.dsl.compiler import compile_policy

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "city_configs" / "reference"
GOLDEN = Path(__file__).parent / "golden"

MONEY, RATIO, BOOL = Type("money"), Type("ratio"), Type("bool")
LOW = P.Column(BOOL, "low_income")
LEVEL = P.Column(Type("int", (1, 2, 3)), "hospital_level")
TIER = P.Column(Type("text", ("tier1", "tier2", "tier3")), "tier")
SETTING = P.Column(Type("text", ("inpatient", "outpatient", "rehab")), "setting")
BASE = P.Binary(MONEY, "-", P.Column(MONEY, "in_scope"), P.Column(MONEY, "self_first"))


def yuan(amount):
    return P.Const(MONEY, amount * 100)


def plan():
    return compile_policy(REFERENCE)


def test_layers_in_order_with_labels():
    p = plan()
    assert [(l.name, l.label) for l in p.layers] == [
        ("basic_inpatient", "基本医保住院"), ("basic_outpatient", "门诊统筹"),
        ("critical", "大病保险"), ("assistance", "医疗救助")]
    assert p.layers[0].source.endswith("policy.yb:21")


def test_basic_inpatient():
    layer = plan().layer("basic_inpatient")
    assert layer.applies == P.InSet(BOOL, SETTING, (0, 2))
    assert layer.base == BASE
    assert layer.deductible == P.Deductible(
        P.Cond(MONEY, LOW, yuan(0), P.Lookup(MONEY, "deductible_by_level", (LEVEL,))),
        P.PER_CLAIM)
    assert layer.ratio == P.Lookup(RATIO, "inpatient_ratio", (TIER, LEVEL))
    assert layer.caps == (P.Cap(yuan(300_000), P.PER_YEAR, P.PERSON, "basic_annual"),)
    assert layer.limit is None


def test_tables():
    p = plan()
    assert dict(p.table("deductible_by_level").rows) == {(1,): 30_000, (2,): 60_000, (3,): 80_000}
    rates = dict(p.table("inpatient_ratio").rows)
    expected = {"tier1": (95, 90, 85), "tier2": (95, 90, 85), "tier3": (90, 85, 75)}
    for tier_index, (tier, by_level) in enumerate(expected.items()):
        for level, pct in zip((1, 2, 3), by_level):
            assert rates[(tier_index, level)] == pct * 10_000, (tier, level)
    assert len(rates) == 9
    assert dict(p.table("basic_outpatient.ratio").rows) == {(1,): 700_000, (2,): 600_000,
                                                           (3,): 500_000}


def test_basic_outpatient_shares_the_annual_cap():
    p = plan()
    layer = p.layer("basic_outpatient")
    assert layer.applies == P.Binary(BOOL, "==", SETTING, P.Const(SETTING.type, 1))
    assert layer.deductible == P.Deductible(yuan(1_000), P.PER_YEAR, P.PERSON)
    assert layer.ratio == P.Lookup(RATIO, "basic_outpatient.ratio", (LEVEL,))
    assert layer.caps == (P.Cap(yuan(5_000), P.PER_YEAR),
                          P.Cap(yuan(300_000), P.PER_YEAR, P.PERSON, "basic_annual"))
    assert list(p.shared_caps()["basic_annual"][1]) == ["basic_inpatient", "basic_outpatient"]


def test_critical_and_assistance():
    p = plan()
    critical = p.layer("critical")
    assert critical.applies == P.Const(BOOL, True)
    assert critical.base == P.Binary(MONEY, "-", P.Binary(
        MONEY, "-", P.Column(MONEY, "in_scope"), P.Paid(MONEY, ("basic_inpatient",))),
        P.Paid(MONEY, ("basic_outpatient",)))
    assert critical.deductible == P.Deductible(P.Cond(MONEY, LOW, yuan(10_000), yuan(20_000)),
                                               P.PER_YEAR)
    assert critical.ratio == P.Bands((P.Band(0, 10_000_000, 600_000),
                                      P.Band(10_000_000, None, 700_000)))
    assert critical.caps == (P.Cap(P.Cond(MONEY, LOW, yuan(500_000), yuan(300_000)), P.PER_YEAR),)
    assistance = p.layer("assistance")
    assert assistance.applies == LOW
    assert assistance.base == P.Binary(MONEY, "-", P.Column(MONEY, "total"), P.Paid(MONEY, ()))
    assert assistance.limit == P.SelfPayLimit(yuan(50_000))
    assert assistance.ratio is None and assistance.deductible is None


def test_header_columns_and_meta():
    p = plan()
    assert (p.name, p.region, p.year_start) == ("参考政策", "reference", (1, 1))
    assert p.effective_from == 19723 and p.effective_to == 20453  # 2024-01-01, 2025-12-31
    assert [c.name for c in p.columns] == [
        "claim_id", "person_id", "tier", "low_income", "setting", "hospital_level",
        "discharge_date", "total", "in_scope", "self_first"]
    meta = dict(p.meta)
    assert meta["policy_file"].endswith("policy.yb") and len(meta["sha256"]) == 64


def test_json_round_trip():
    p = plan()
    assert Plan.from_json(p.to_json()) == p


def test_golden_plan(golden_text):
    p = plan()
    try:
        text, name = p.describe(), "reference.describe.txt"
    except ImportError:  # core/describe.py not written yet
        text, name = p.to_json() + "\n", "reference.plan.json"
    # the path differs between checkouts: keep the golden independent of it
    text = text.replace(str(REFERENCE / "policy.yb"), "city_configs/reference/policy.yb")
    golden_text(GOLDEN / name, text)

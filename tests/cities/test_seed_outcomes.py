"""The seed cities' policies (city_configs/{jinhua,rizhao,shanghai}) against their seeds.

Three kinds of check:

- seed outcomes: each seed's worked claims, settled by the engine, come out as the seed says
  (a low-income Jinhua patient's self-pay held to 50,000 yuan; Rizhao's caps and its
  613,449.15-yuan case; Shanghai's grassroots gap and continuing deductible);
- README figures: every row of each README's "Figures" table equals the compiled plan, read
  off the plan itself, so a README cannot drift from its policy.yb;
- tests.yaml: the hand-checked cases beside each policy, settled by the engine.
"""
from __future__ import annotations

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from yibao.core import plan as P
from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager

# yibao's own plugins: rizhao applies the tcm plugin's tcm_tilt (`adjust by tcm_tilt`)
SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"
CITIES = ("jinhua", "rizhao", "shanghai")
# declared attribute columns per city: name -> (Arrow type, value when a claim omits it)
MTB = {"mtb_disease": (pa.string(), "none")}  # no 门慢/门特 disease
EXTRA = {"jinhua": {"jinhuibao": (pa.bool_(), None), "family_doctor": (pa.bool_(), False), **MTB},
         "rizhao": dict(MTB), "shanghai": {"referral": (pa.bool_(), None), **MTB}}
SCALE = P.RATIO_SCALE


# -- helpers ---------------------------------------------------------------------------------


def fen(yuan) -> int:
    """Yuan (int, float as written in YAML, str or Decimal) to int fen; exact or an error."""
    value = Decimal(str(yuan)) * 100
    assert value == value.to_integral_value(), f"{yuan} has more than 2 decimals"
    return int(value)


def apply_ratio(amount_fen: int, ratio: int) -> int:
    """round_half_up(amount × ratio) to the fen (benefits.md)."""
    return int((Decimal(amount_fen) * ratio / SCALE).quantize(Decimal(1), ROUND_HALF_UP))


def as_date(value) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))


def claims_table(rows: list, extra: dict) -> pa.Table:
    """Claims in the claim-record schema of shared/golden/reference_claims.parquet (money int64
    fen), plus the policy's declared attribute columns ``extra`` (name -> (Arrow type, default)).
    """
    def col(name, default=None):
        return [r.get(name, default) for r in rows]

    admit = [as_date(r.get("admit_date", r["discharge_date"])) for r in rows]
    discharge = [as_date(r["discharge_date"]) for r in rows]
    arrays = {
        "claim_id": pa.array(col("claim_id"), pa.string()),
        "person_id": pa.array(col("person_id"), pa.string()),
        "family_id": pa.array(col("family_id"), pa.string()),
        "tier": pa.array(col("tier", "tier2"), pa.string()).dictionary_encode(),
        "low_income": pa.array(col("low_income", False), pa.bool_()),
        "setting": pa.array(col("setting", "inpatient"), pa.string()).dictionary_encode(),
        "hospital_id": pa.array(col("hospital_id", "H1"), pa.string()),
        "hospital_level": pa.array(col("hospital_level"), pa.int8()),
        "hospital_tcm": pa.array(col("hospital_tcm", False), pa.bool_()),
        "admit_date": pa.array(admit, pa.date32()),
        "discharge_date": pa.array(discharge, pa.date32()),
        "los": pa.array([max(1, (d - a).days) for a, d in zip(admit, discharge)], pa.int32()),
        "principal_dx": pa.array(col("principal_dx", "K85.9"), pa.string()),
        "secondary_dx": pa.array([r.get("secondary_dx", []) for r in rows], pa.list_(pa.string())),
        "procedures": pa.array([r.get("procedures", []) for r in rows], pa.list_(pa.string())),
        "total": pa.array([fen(r["total"]) for r in rows], pa.int64()),
        "in_scope": pa.array([fen(r["in_scope"]) for r in rows], pa.int64()),
        "self_first": pa.array([fen(r["self_first"]) for r in rows], pa.int64()),
    }
    for name, (typ, default) in extra.items():
        arrays[name] = pa.array(col(name, default), typ)
    return pa.table(arrays)


@pytest.fixture(scope="module")
def plans():
    return {city: compile_policy(CONFIGS / city / "policy.yb", SHIPPED) for city in CITIES}


@pytest.fixture(params=["kernel", "reference"])
def settler(request):
    """Every settlement check runs on the engine (Cython kernel) and on the oracle."""
    if request.param == "kernel":
        return lambda plan, table: settle(plan, table).results
    return lambda plan, table: settle_reference(plan, table).results


def run(settler, plan, city: str, rows: list) -> dict:
    """Settle ``rows``; claim_id -> {column: int fen}. Checks the invariants of benefits.md."""
    table = claims_table(rows, EXTRA[city])
    out = settler(plan, table).to_pylist()
    layers = [layer.name for layer in plan.layers]
    totals = {r["claim_id"]: fen(r["total"]) for r in rows}
    result = {}
    for row in out:
        paid = sum(row[name] for name in layers)
        assert all(row[name] >= 0 for name in layers), row
        assert row["self_pay"] >= 0, row
        assert paid + row["self_pay"] == totals[row["claim_id"]], row
        result[row["claim_id"]] = row
    assert set(result) == set(totals)
    return result


def paid_ratio(row: dict, claim: dict, layer: str) -> Decimal:
    """What ``layer`` paid over what it could pay after its deductible (basic base)."""
    base = fen(claim["in_scope"]) - fen(claim["self_first"])
    return Decimal(row[layer]) / (base - row[f"{layer}_deductible"])


# -- seed outcomes: Jinhua (000_2dfbf07080cd2402.txt) ----------------------------------------

LIU = {"claim_id": "L1", "person_id": "liu", "tier": "tier2", "low_income": True,
       "jinhuibao": True, "setting": "inpatient", "hospital_level": 3,
       "admit_date": "2021-05-01", "discharge_date": "2021-06-30",
       "total": 1_339_000, "in_scope": 1_200_000, "self_first": 40_000}


def test_jinhua_low_income_patient_self_pay_held_to_50000(settler, plans):
    """“133万余元的医疗费用 … 自负费用已降至5万元以下,综合保障率达96.27%。”"""
    row = run(settler, plans["jinhua"], "jinhua", [LIU])["L1"]
    assert row["self_pay"] <= fen(50_000)
    covered = Decimal(fen(LIU["total"]) - row["self_pay"]) / fen(LIU["total"])
    assert (covered * 100).quantize(Decimal("0.01"), ROUND_HALF_UP) >= Decimal("96.27")


def test_jinhua_self_pay_floor_holds_over_several_admissions(settler, plans):
    """“仅2021年,她就经历了多次住院治疗,医疗费用达到133万余元。”: the 50,000 floor is yearly,
    so the same 1,339,000 yuan over four admissions (in any row order) still ends at 50,000."""
    parts = [(300_000, 270_000, 9_000), (500_000, 450_000, 15_000),
             (339_000, 300_000, 10_000), (200_000, 180_000, 6_000)]
    claims = [dict(LIU, claim_id=f"L{i}", discharge_date=f"2021-{2 + 3 * i:02d}-15",
                   admit_date=f"2021-{2 + 3 * i:02d}-01", total=t, in_scope=s, self_first=f)
              for i, (t, s, f) in enumerate(parts)]
    rows = run(settler, plans["jinhua"], "jinhua", claims[::-1])
    assert sum(r["self_pay"] for r in rows.values()) == fen(50_000)
    assert sum(r["basic_inpatient"] for r in rows.values()) == fen(300_000)
    assert sum(r["critical"] for r in rows.values()) == fen(500_000)


def test_jinhua_three_layers_close_to_seed(settler, plans):
    """“经三重保障制度化解107.42万元”: basic + critical + assistance within 1% (README explains
    the 5,800-yuan gap: in_scope and the assistance rate are assumed)."""
    row = run(settler, plans["jinhua"], "jinhua", [LIU])["L1"]
    three = row["basic_inpatient"] + row["critical"] + row["assistance"]
    assert abs(three - fen(1_074_200)) <= fen(10_742)
    assert three == fen(1_080_000)


def test_jinhua_without_low_income_no_self_pay_floor(settler, plans):
    """The 50,000 floor is for 困难群众 only: the same costs for a non-low-income patient keep
    far more than 50,000 yuan."""
    rich = dict(LIU, claim_id="R1", person_id="r", low_income=False)
    row = run(settler, plans["jinhua"], "jinhua", [rich])["R1"]
    assert row["assistance"] == 0
    assert row["temporary_relief"] == row["farmer_supplement"] == row["warm_fund"] == 0
    assert row["self_pay"] > fen(50_000)


@pytest.mark.parametrize("tier, ratio", [("tier1", "0.85"), ("tier2", "0.85"), ("tier3", "0.75")])
def test_jinhua_tiers_at_tertiary_hospitals(settler, plans, tier, ratio):
    """“一档、二档参保人到市内三级医院住院报销比例为85%,三档报销比例75%。”"""
    claim = {"claim_id": "T", "person_id": "t", "tier": tier, "low_income": False,
             "jinhuibao": False, "setting": "inpatient", "hospital_level": 3,
             "discharge_date": "2022-03-10", "total": 50_000, "in_scope": 45_000,
             "self_first": 2_000}
    row = run(settler, plans["jinhua"], "jinhua", [claim])["T"]
    assert paid_ratio(row, claim, "basic_inpatient") == Decimal(ratio)


# -- seed outcomes: Rizhao (001_9c85347c08490691.txt) ----------------------------------------

SUN = {"claim_id": "S1", "person_id": "sun", "tier": "resident", "low_income": False,
       "setting": "inpatient", "hospital_level": 3, "admit_date": "2016-11-01",
       "discharge_date": "2016-12-20", "total": "613449.15", "in_scope": "566221.86",
       "self_first": "364008.92"}


def test_rizhao_worked_case(settler, plans):
    """“居民基本医保报销 136824.8元, 居民大病保险二次补偿264577.94元,这两项一共报销了401402.74元,
    我的医疗费最后实际报销比例能达到65.4%。” (in_scope and self_first solved, see README)."""
    row = run(settler, plans["rizhao"], "rizhao", [SUN])["S1"]
    assert row["basic_inpatient"] == fen("136824.8")
    assert row["critical"] == fen("264577.94")
    both = row["basic_inpatient"] + row["critical"]
    assert both == fen("401402.74")
    rate = (Decimal(both) / fen(SUN["total"]) * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
    assert rate == Decimal("65.4")


@pytest.mark.parametrize("low_income, critical_cap", [(False, 300_000), (True, 500_000)])
def test_rizhao_caps_bind(settler, plans, low_income, critical_cap):
    """“基本医保年度最高补偿额度提高到30万元;大病保险年度最高补偿额度由20万元提高到30万元,
    贫困人口提高到50万元。”"""
    claims = [{"claim_id": f"C{i}", "person_id": "c", "tier": "resident",
               "low_income": low_income, "setting": "inpatient", "hospital_level": 3,
               "discharge_date": f"2016-0{i}-15", "total": 900_000, "in_scope": 800_000,
               "self_first": 0} for i in (3, 6)]
    rows = run(settler, plans["rizhao"], "rizhao", claims)
    assert rows["C3"]["basic_inpatient"] + rows["C6"]["basic_inpatient"] == fen(300_000)
    assert rows["C3"]["critical"] + rows["C6"]["critical"] == fen(critical_cap)


def test_rizhao_in_scope_ratio_68(settler, plans):
    """“政策范围内报销比例达到68%。” (used as the flat basic rate, see README)."""
    claim = {"claim_id": "K", "person_id": "k", "tier": "resident", "low_income": False,
             "setting": "inpatient", "hospital_level": 2, "discharge_date": "2016-05-05",
             "total": 30_000, "in_scope": 25_000, "self_first": 1_000}
    row = run(settler, plans["rizhao"], "rizhao", [claim])["K"]
    assert paid_ratio(row, claim, "basic_inpatient") == Decimal("0.68")


# -- seed outcomes: Shanghai (003_5bc214d6a39fb209.txt) --------------------------------------


def sh_claim(cid, person, level, referral, date, total, in_scope, self_first=0):
    return {"claim_id": cid, "person_id": person, "tier": "resident", "low_income": False,
            "referral": referral, "setting": "inpatient", "hospital_level": level,
            "discharge_date": date, "total": total, "in_scope": in_scope,
            "self_first": self_first}


def test_shanghai_grassroots_ten_points_above_tertiary(settler, plans):
    """“目前基层医疗机构与三级医院医保报销比例已拉开10多个百分点”"""
    c1 = sh_claim("G1", "g1", 1, False, "2024-05-08", 20_000, 18_000)
    c3 = sh_claim("G3", "g3", 3, False, "2024-05-08", 20_000, 18_000)
    rows = run(settler, plans["shanghai"], "shanghai", [c1, c3])
    gap = paid_ratio(rows["G1"], c1, "basic_inpatient") - paid_ratio(rows["G3"], c3,
                                                                     "basic_inpatient")
    assert gap >= Decimal("0.10")


def test_shanghai_referral_continues_the_deductible(settler, plans):
    """“对符合规定的转诊住院患者连续计算起付线。”"""
    first = sh_claim("P1", "p", 1, False, "2024-03-01", 6_000, 5_000)
    referred = sh_claim("P2", "p", 3, True, "2024-03-10", 40_000, 35_000, 1_000)
    walk_in = sh_claim("Q2", "q", 3, False, "2024-03-10", 40_000, 35_000, 1_000)
    rows = run(settler, plans["shanghai"], "shanghai", [first, referred, walk_in])
    d_first = rows["P1"]["basic_inpatient_deductible"]
    d_referred = rows["P2"]["basic_inpatient_deductible"]
    d_full = rows["Q2"]["basic_inpatient_deductible"]
    assert d_first > 0
    assert d_referred == d_full - d_first
    assert rows["P2"]["basic_inpatient"] > rows["Q2"]["basic_inpatient"]


# -- README figures == compiled plan ---------------------------------------------------------

FIGURE_ROW = re.compile(r"^\|\s*`(?P<layer>\w+)\.(?P<part>[a-z]+)(?P<n>\d*)(\{(?P<env>[^}]*)\})?`"
                        r"\s*\|\s*(?P<value>[^|]+?)\s*\|")


def readme_figures(city: str) -> list:
    text = (CONFIGS / city / "README.md").read_text(encoding="utf-8")
    section = text.split("## Figures", 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        m = FIGURE_ROW.match(line)
        if m:
            env = dict(kv.split("=") for kv in (m["env"] or "").split(",") if kv)
            found.append((m["layer"], m["part"], m["n"], env, m["value"]))
    return found


def engine_value(plan, name: str, text: str):
    """A README attribute value in engine units (text of a closed domain -> index)."""
    try:
        typ = plan.column(name).type
    except KeyError:
        typ = None
    if text in ("true", "false"):
        return text == "true"
    if typ is not None and typ.kind == P.TEXT and typ.domain:
        return typ.domain.index(text)
    return int(text) if text.isdigit() else text


def evaluate(plan, expr, env: dict):
    """A small evaluator of plan expressions over one claim's attributes (no money columns)."""
    if isinstance(expr, P.Const):
        return expr.value
    if isinstance(expr, P.Column):
        return env[expr.name]
    if isinstance(expr, P.Cond):
        return evaluate(plan, expr.then if evaluate(plan, expr.test, env) else expr.orelse, env)
    if isinstance(expr, P.Not):
        return not evaluate(plan, expr.operand, env)
    if isinstance(expr, P.InSet):
        return evaluate(plan, expr.operand, env) in expr.values
    if isinstance(expr, P.Lookup):
        args = tuple(evaluate(plan, a, env) for a in expr.args)
        return dict(plan.table(expr.table).rows)[args]
    if isinstance(expr, P.Binary):
        a, b = evaluate(plan, expr.left, env), evaluate(plan, expr.right, env)
        ops = {"==": a == b, "!=": a != b, "and": a and b, "or": a or b}
        return ops[expr.op]
    raise TypeError(f"cannot evaluate {type(expr).__name__} in a figure")


def render(expr) -> str:
    if isinstance(expr, P.Column):
        return expr.name
    if isinstance(expr, P.Paid):
        return f"paid({', '.join(expr.layers)})" if expr.layers else "paid"
    if isinstance(expr, P.Binary) and expr.op in "+-":
        return f"{render(expr.left)} {'−' if expr.op == '-' else '+'} {render(expr.right)}"
    raise TypeError(type(expr).__name__)


def parse_amount(text: str):
    """'300,000 yuan' -> fen; '85%' -> millionths; 'none'/'yes'/'no'."""
    text = text.strip()
    if text in ("none", "yes", "no"):
        return {"none": None, "yes": True, "no": False}[text]
    if text.endswith("%"):
        return int(Decimal(text[:-1].replace(",", "")) * SCALE / 100)
    if text.endswith("yuan"):
        return fen(text[:-4].strip().replace(",", ""))
    raise ValueError(f"cannot read figure value {text!r}")


BAND = re.compile(r"([\d,]+)(?: to ([\d,]+))? yuan(?: and above)?: ([\d.]+%)")


def plan_figure(plan, layer_name: str, part: str, n: str, env: dict, expected: str):
    """(actual, expected) for one README figure."""
    layer = plan.layer(layer_name)
    env = {k: engine_value(plan, k, v) for k, v in env.items()}
    if part == "band":  # {low_income=true}: the `when` band set that holds for env, if any
        bands = layer.ratio.bands
        for alt in layer.ratio.alts if env else ():
            bands = alt.bands if evaluate(plan, alt.cond, env) else bands
        band = bands[int(n) - 1]
        lo, hi, rate = BAND.fullmatch(expected).groups()
        want = (fen(lo.replace(",", "")), hi and fen(hi.replace(",", "")), parse_amount(rate))
        return (band.lo, band.hi, band.rate), want
    if part == "base":
        return render(layer.base), expected
    if part == "continuing":
        cont = layer.deductible.continuing
        return bool(cont is not None and evaluate(plan, cont, env)), parse_amount(expected)
    if part == "cap" and expected == "none":
        return layer.caps, ()
    expr = {"ratio": lambda: layer.ratio, "deductible": lambda: layer.deductible.amount,
            "cap": lambda: layer.caps[int(n or 1) - 1].amount,
            "limit": lambda: layer.limit.amount}[part]()
    return evaluate(plan, expr, env), parse_amount(expected)


@pytest.mark.parametrize("city", CITIES)
def test_readme_figures_equal_plan(plans, city):
    plan = plans[city]
    figures = readme_figures(city)
    assert len(figures) >= 8, "README Figures table not found or too short"
    for layer, part, n, env, value in figures:
        actual, expected = plan_figure(plan, layer, part, n, env, value)
        assert actual == expected, f"{city}: {layer}.{part}{n}{env}: plan {actual!r}, " \
                                   f"README {value!r}"


@pytest.mark.parametrize("city", CITIES)
def test_readme_names_every_layer(plans, city):
    """Every layer that pays is named in the README, and has at least one figure."""
    text = (CONFIGS / city / "README.md").read_text(encoding="utf-8")
    with_figures = {f[0] for f in readme_figures(city)}
    for layer in plans[city].layers:
        assert f"`{layer.name}`" in text
        assert layer.name in with_figures


# -- tests.yaml beside each policy ---------------------------------------------------------


PROVIDER_COLUMNS = {"pool", "group", "grouping_status", "case_class", "points"}
SUPERVISION_COLUMNS = {"pending_review"}  # tests/supervision/test_cities.py, both evaluators


def yaml_cases():
    for city in CITIES:
        for case in yaml.safe_load((CONFIGS / city / "tests.yaml").read_text(encoding="utf-8")):
            yield pytest.param(city, case, id=f"{city}:{case['name'][:30]}")


@pytest.mark.parametrize("city, case", list(yaml_cases()))
def test_tests_yaml(settler, plans, city, case):
    rows = run(settler, plans[city], city, case["claims"])
    for claim_id, expect in (case.get("expect") or {}).items():
        for column, yuan in expect.items():
            if column in PROVIDER_COLUMNS | SUPERVISION_COLUMNS:  # checked elsewhere (above)
                continue
            assert rows[claim_id][column] == fen(yuan), f"{claim_id}.{column}"

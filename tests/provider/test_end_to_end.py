"""Provider payment end to end: city policies compiled, generated claims settled, per-claim
group/points columns, hospitals and pools, kernel path == reference path."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core import provider
from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.core.grouping import STATUSES as DRG_STATUSES
from yibao.core.points.plan import BASELINE, BUDGET_PLUS_PAID, POINT_SCALE, PV_SCALE
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager

# yibao's own plugins: rizhao applies the tcm plugin's tcm_tilt (`adjust by tcm_tilt`)
SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

CITIES = ("jinhua", "rizhao", "shanghai")
STATUSES = {"default", "unmatched", *DRG_STATUSES}   # DRG ones: ok, invalid_*, no_adrg …


YEAR_SHIFT = {"rizhao": -2922}  # Rizhao's policy is for 2016: generated 2024 claims move back


def for_city(city: str, claims: pa.Table) -> pa.Table:
    shift = YEAR_SHIFT.get(city, 0)
    for name in ("admit_date", "discharge_date"):
        days = pc.add(claims[name].cast(pa.int32()), pa.scalar(shift, pa.int32())).cast(pa.date32())
        claims = claims.set_column(claims.schema.get_field_index(name), name, days)
    return claims


@pytest.fixture(scope="module")
def generated():
    return generate_claims(20_000, 5)


@pytest.fixture(scope="module")
def settled(generated):
    out = {}
    for city in CITIES:
        plan = compile_policy(f"city_configs/{city}", SHIPPED)
        claims = for_city(city, generated)
        out[city] = (plan, claims, settle(plan, claims))
    return out


@pytest.mark.parametrize("city", CITIES)
def test_claim_columns(city, settled):
    plan, claims, batch = settled[city]
    res = batch.results
    assert res.num_rows == claims.num_rows and batch.rejects.num_rows == 0
    for name in ("pool", "group", "grouping_status", "case_class", "points"):
        assert name in res.column_names
    setting = claims.take(pc.index_in(res["claim_id"], value_set=claims["claim_id"]))["setting"]
    setting = setting.cast(pa.string()).to_pylist()
    pools = res["pool"].to_pylist()
    names = {p.name: p for p in plan.provider.pools}
    for s, pool in zip(setting, pools):
        if pool is not None:  # every pool of the three cities tests the setting first
            assert names[pool].applies[0].value in (s, (s,)) or s in str(names[pool].applies)
    scored = res.filter(pc.is_valid(res["pool"]))
    assert scored.num_rows > 0
    assert set(scored["grouping_status"].to_pylist()) <= STATUSES
    points = scored["points"].to_numpy()
    assert (points >= 0).all() and points.sum() > 0
    ungrouped = pc.equal(scored["case_class"], "ungrouped").to_numpy(zero_copy_only=False)
    assert (points[ungrouped] == 0).all()


def with_signed_persons(claims: pa.Table) -> pa.Table:
    """Every third outpatient claim's person signed with H01 or H05 (Jinhua's signed.csv), so
    capitation is exercised."""
    n = claims.num_rows
    inst = np.where(np.arange(n) % 3 == 0, np.where(np.arange(n) % 2 == 0, "H01", "H05"), None)
    col = pa.array(inst.tolist(), pa.string())
    if "signed_inst" in claims.column_names:
        return claims.set_column(claims.schema.get_field_index("signed_inst"), "signed_inst", col)
    return claims.append_column("signed_inst", col)


@pytest.mark.parametrize("city", CITIES + ("jinhua+signed",))
def test_no_fen_lost(city, settled):
    """In every pool of every city: Σ hospital values = what the pool distributes, to the
    fen, and Σ fund due = what the fund pays (point-method.md §3), both recomputed here from
    the pool's own figures rather than read back."""
    if city == "jinhua+signed":
        plan, claims, _ = settled["jinhua"]
        claims = with_signed_persons(claims)
        batch = settle(plan, claims)
    else:
        plan, claims, batch = settled[city]
    hospitals, pools = provider.settle_provider_year(plan, claims, batch.results)
    if city == "jinhua+signed":
        assert pools.to_pylist()[1]["capitation_used"] > 0
    for row in pools.to_pylist():
        mine = hospitals.filter(pc.equal(hospitals["pool"], row["pool"])).to_pylist()
        if row["kind"] == "alliance":  # 医共体: what the fund pays is the alliances' shares
            assert sum(h["shared_amt"] for h in mine) == row["hifp_pay"] == row["distributed"]
            assert sum(h["value"] for h in mine) == row["fund_cost"]
            continue
        pool = plan.provider.pool(row["pool"])
        assert sum(h["value"] for h in mine) == row["distributed"]
        assert sum(h["points"] for h in mine) == row["points"]
        pv = Fraction(row["point_value"])
        carries_paid = pool.point_value.kind == BUDGET_PLUS_PAID
        paid = sum(h["psn_part_amt"] for h in mine)
        signed_paid = paid - row["psn_part_amt"]
        if not pool.hospital_budgets and not pool.fixed_rates:
            # distributed is the exact pool amount rounded once: apportioning loses no fen
            exact = pv * row["points"] / POINT_SCALE
            assert abs(row["distributed"] - exact) <= Fraction(1, 2)
        floating = row["fund_amt"] + (row["psn_part_amt"] if carries_paid else 0)
        if row["points_pv"] or pool.hospital_budgets:
            assert row["distributed"] == (floating + row["budget_deviation"]
                                          + row["capitation_used"])
            fund_pays = (row["fund_amt"] + row["budget_deviation"] + row["capitation_used"]
                         - (signed_paid if carries_paid else 0))
            assert sum(h["hifp_pay"] for h in mine) == row["hifp_pay"] == fund_pays
        if pool.point_value.kind == BASELINE and row["points_pv"]:
            s = Fraction(pool.point_value.baseline_share, 10**6)
            want = (s * Fraction(pool.point_value.baseline_value, PV_SCALE)
                    * row["points"] / POINT_SCALE + (1 - s) * row["fund_amt"])
            assert abs(row["distributed"] - want) <= Fraction(1, 2)
            assert row["budget_deviation"] == row["distributed"] - row["fund_amt"]
        else:
            assert row["budget_deviation"] == 0
        for h in mine:
            assert h["hifp_pay"] == h["value"] - (h["psn_part_amt"] if carries_paid else 0)
        assert row["pending_review_claims"] == sum(h["pending_review_claims"] for h in mine)


@pytest.mark.parametrize("city", CITIES)
def test_year_settlement_matches_points_oracle(city, settled):
    plan, claims, batch = settled[city]
    hospitals, pools = provider.settle_provider_year(plan, claims, batch.results)
    ref_h, ref_p = provider.settle_provider_year_reference(plan, claims, batch.results)
    assert hospitals.to_pylist() == ref_h
    assert pools.to_pylist() == ref_p


@pytest.mark.parametrize("city", CITIES)
def test_partitions_reduce_to_the_same_year(city, settled):
    """Points per claim per partition, sums reduced per pool, then one settlement."""
    plan, claims, batch = settled[city]
    whole = provider.settle_provider_year(plan, claims, batch.results)
    # partition by person, as the runner does (readmissions stay within a partition)
    ids = np.array([int(p[1:]) % 3 for p in claims["person_id"].to_pylist()])
    partials = {}
    for part in range(3):
        piece = claims.filter(pa.array(ids == part))
        res = settle(plan, piece).results
        partials = provider.merge_partials(partials, provider.provider_partials(plan, piece, res))
    merged = provider.settle_partials(plan, partials)
    assert merged[0].to_pylist() == whole[0].to_pylist()
    assert merged[1].to_pylist() == whole[1].to_pylist()


@pytest.mark.parametrize("city", CITIES)
def test_kernel_path_equals_reference_path(city):
    """Grouping (DRG kernel vs group_claim, tables vectorised vs per claim) and claim points
    (compute vs the points oracle) agree claim by claim."""
    plan = compile_policy(f"city_configs/{city}", SHIPPED)
    small = for_city(city, generate_claims(1_500, 9))
    kernel = settle(plan, small).results
    oracle = settle_reference(plan, small).results
    assert kernel.to_pylist() == oracle.to_pylist()
    assert pc.sum(kernel["points"]).as_py() > 0


def test_jinhua_rehab_and_capitation(generated):
    """Rehab stays with a rehab diagnosis earn tiered bed-day points; signed persons'
    outpatient points are charged to their institution's capitation budget."""
    plan = compile_policy("city_configs/jinhua")
    claims = generated
    rehab = pc.equal(claims["setting"].cast(pa.string()), "rehab").to_numpy(zero_copy_only=False)
    dx = np.array(claims["principal_dx"].to_pylist(), dtype=object)
    dx[rehab] = "Z50.000x001"  # 康复治疗 → R-CARD when in Z50.000–Z50.099, else R-OTHER
    signed = np.full(claims.num_rows, None, dtype=object)
    signed[np.arange(claims.num_rows) % 5 == 0] = "H01"
    c = claims.set_column(claims.schema.get_field_index("principal_dx"), "principal_dx",
                          pa.array(dx.tolist(), pa.string()))
    c = c.append_column("signed_inst", pa.array(signed.tolist(), pa.string()))
    res = settle(plan, c).results
    r = res.filter(pc.equal(res["pool"], "rehab_pdpm"))
    assert set(r["case_class"].to_pylist()) == {"bedday"}
    assert set(r["group"].to_pylist()) <= {"R-CARD", "R-OTHER"}
    los = c.take(pc.index_in(r["claim_id"], value_set=c["claim_id"]))["los"].to_numpy()
    per_day = {"R-CARD": 60_000, "R-OTHER": 50_000}
    for g, p, n in zip(r["group"].to_pylist(), r["points"].to_pylist(), los):
        days = [min(n, 30), max(0, min(n, 60) - 30), max(0, n - 60)]
        want = per_day[g] * days[0] + per_day[g] * days[1] * 9 // 10 + per_day[g] * days[2] * 8 // 10
        assert p == want  # whole points per day: no rounding in the tiers
    hospitals, pools = provider.settle_provider_year(plan, c, res)
    apg = hospitals.filter(pc.equal(hospitals["pool"], "outpatient_apg"))
    h01 = [h for h in apg.to_pylist() if h["fixmedins_code"] == "H01"][0]
    assert h01["capitation_budget"] == 300_00 * 484  # signed.csv
    assert h01["capitation_balance"] == h01["capitation_budget"] - h01["capitation_used"]


def test_rizhao_budget_and_township_sharing(settled):
    plan, claims, batch = settled["rizhao"]
    import csv
    from pathlib import Path
    lines = [line for line in (Path(__file__).resolve().parents[2] / "city_configs" / "rizhao"
                               / "hospital_spending.csv").read_text().splitlines()
             if not line.startswith("#")]
    want = {r["hospital_id"]: round(Fraction((int(r["y2015"]) + int(r["y2016"])) * 100, 2)
                                    * Fraction(107, 100)) for r in csv.DictReader(lines)}
    pool = plan.provider.pool("inpatient_drg")
    assert dict(pool.hospital_budgets) == want and len(want) == 33
    assert pool.budget == sum(want.values())
    _, pools = provider.settle_provider_year(plan, claims, batch.results)
    town = [p for p in pools.to_pylist() if p["pool"] == "township_outpatient"][0]
    assert town["control_total"] == 50_00 * 5_000  # the demo city: 5,000 insured
    diff = town["control_total"] - town["fund_cost"]
    assert town["shared_amt"] == (round(Fraction(diff * 20, 100)) if diff >= 0
                                  else -round(Fraction(-diff * 20, 100)))
    assert town["fund_amt"] == town["fund_cost"] + town["shared_amt"]


def test_yibao_settle_writes_hospitals_and_pools(tmp_path):
    import argparse
    import pyarrow.parquet as pq
    from yibao.dsl.commands import settle as cmd
    claims = generate_claims(3_000, 13)
    (tmp_path / "in").mkdir()
    pq.write_table(claims.slice(0, 1_500), tmp_path / "in" / "a.parquet")
    pq.write_table(claims.slice(1_500), tmp_path / "in" / "b.parquet")
    args = argparse.Namespace(claims=[str(tmp_path / "in")], policy="city_configs/jinhua",
                              out=str(tmp_path / "results"), memory_limit=None, engine="local",
                              partitions=2, overwrite=False, no_progress=True)
    assert cmd.run(args) == 0
    hospitals = pq.read_table(tmp_path / "results" / "hospitals.parquet")
    pools = pq.read_table(tmp_path / "results" / "pools.parquet")
    plan = compile_policy("city_configs/jinhua")
    want = provider.settle_provider_year(plan, claims, settle(plan, claims).results)
    assert hospitals.to_pylist() == want[0].to_pylist()
    assert pools.to_pylist() == want[1].to_pylist()


@pytest.mark.parametrize("city", CITIES)
def test_plan_json_round_trip_keeps_the_provider_part(city):
    from yibao.core.plan import Plan
    plan = compile_policy(f"city_configs/{city}", SHIPPED)
    back = Plan.from_json(plan.to_json())
    assert back == plan and back.provider == plan.provider and back.groupers == plan.groupers

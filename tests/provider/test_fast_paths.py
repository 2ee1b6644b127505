"""The provider year's fast paths against the paths they replace and the oracles: scoring in
input order then gathering (engine), hospital sums without a join by claim_id, the
coefficient lookup by distinct (key, group) pairs (dense table or sorted search)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute below)
import pytest

from yibao.core import provider
from yibao.core.generate import generate_claims
from yibao.core.points import compute
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))


@pytest.fixture(scope="module", params=["jinhua", "rizhao", "shanghai"])
def city(request):
    plan = compile_policy(f"city_configs/{request.param}", SHIPPED)
    claims = generate_claims(3_000, 17)
    if request.param == "rizhao":  # its policy is for 2016 (test_end_to_end's shift)
        for name in ("admit_date", "discharge_date"):
            days = pa.compute.add(claims[name].cast(pa.int32()), pa.scalar(-2922, pa.int32()))
            days = days.cast(pa.date32())
            claims = claims.set_column(claims.schema.get_field_index(name), name, days)
    return plan, claims


def test_scoring_in_input_order_equals_scoring_in_settlement_order(city):
    plan, claims = city
    order = np.random.default_rng(3).permutation(claims.num_rows)
    results = pa.table({"claim_id": claims.column("claim_id").take(pa.array(order))})
    fast = provider.append_claim_columns_in_order(plan, results, claims, order)
    slow = provider.append_claim_columns(plan, results, claims.take(pa.array(order)))
    oracle = provider.append_claim_columns(plan, results, claims.take(pa.array(order)),
                                           reference=True)
    assert fast.equals(slow)
    assert fast.equals(oracle)


def test_hospital_sums_without_the_join_equal_the_joined_ones(city):
    plan, claims = city
    results = provider.append_claim_columns(plan, pa.table({
        "claim_id": claims.column("claim_id"),
        "self_pay": pa.array(np.arange(claims.num_rows) % 977, pa.int64())}), claims)
    rows, scored = provider._settlement_input(plan, claims, results)
    for pool in plan.provider.pools:
        shuffled = np.random.default_rng(5).permutation(rows.num_rows)
        joined = compute.hospital_sums(pool, rows.take(pa.array(shuffled)), scored,
                                       provider.PATIENT_PAID, None)
        assert compute.hospital_sums_aligned(pool, rows, scored, provider.PATIENT_PAID,
                                             None) == joined


@pytest.mark.parametrize("name", ["jinhua", "rizhao"])  # the cities with coefficient tables
def test_coefficients_dense_and_searched_agree(name, monkeypatch):
    plan = compile_policy(f"city_configs/{name}", SHIPPED)
    grouped = provider.group_claims(plan, generate_claims(3_000, 17))
    pools = [p for p in plan.provider.pools if p.coefficients]
    assert pools
    for pool in pools:
        members = grouped.filter(pa.array(compute.test_mask(grouped, pool.applies)))
        groups = compute.pool_groups(pool, compute.with_pool_group(pool, members))
        dense = compute._coefficients(pool, members, compute._encoded(groups))
        monkeypatch.setattr(compute, "DENSE_PAIRS", 0)
        searched = compute._coefficients(pool, members, compute._encoded(groups))
        monkeypatch.undo()
        assert (dense == searched).all()
        assert (dense != compute.RATIO_SCALE).any()

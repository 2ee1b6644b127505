"""The provider year takes each result's claim by its input row (``BatchResult.rows``, handed
on by ``piece.settle_piece``) instead of looking claims up by claim id: the sums, and the
hospitals and pools they settle to, are the same either way, whatever order the claims
come in."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import provider
from yibao.core.generate import generate_claims
from yibao.core.piece import bucket_plan, settle_piece
from yibao.core.partition import buckets
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))


def shifted(claims: pa.Table, days: int) -> pa.Table:
    for name in ("admit_date", "discharge_date"):
        moved = pa.compute.add(claims[name].cast(pa.int32()), pa.scalar(days, pa.int32()))
        claims = claims.set_column(claims.schema.get_field_index(name), name,
                                   moved.cast(pa.date32()))
    return claims


@pytest.fixture(scope="module", params=["jinhua", "rizhao", "shanghai"])
def city(request):
    plan = compile_policy(f"city_configs/{request.param}", SHIPPED)
    claims = generate_claims(3_000, 23)
    if request.param == "rizhao":  # its policy is for 2016 (test_end_to_end's shift)
        claims = shifted(claims, -2922)
    shuffled = claims.take(pa.array(np.random.default_rng(9).permutation(claims.num_rows)))
    return plan, shuffled


def settled(plan, claims):
    rows = np.arange(claims.num_rows, dtype=np.int64)
    return settle_piece(plan, claims, rows, buckets(bucket_plan(plan), claims), SHIPPED, None)


def test_settle_piece_hands_over_the_row_of_each_result(city):
    plan, claims = city
    results, _, _, at = settled(plan, claims)
    assert at is not None and len(at) == results.num_rows
    assert claims.column("claim_id").take(pa.array(at)).to_pylist() == \
        results.column("claim_id").to_pylist()


def test_year_by_rows_equals_year_by_claim_id(city):
    plan, claims = city
    results, _, _, at = settled(plan, claims)
    by_rows, by_id = provider.ProviderYear(plan), provider.ProviderYear(plan)
    by_rows.add(claims, results, at)
    by_id.add(claims, results)
    assert by_rows.partials == by_id.partials
    hospitals, pools = by_rows.settle()
    assert hospitals.num_rows and (hospitals, pools) == by_id.settle()


def test_year_by_rows_equals_the_oracle(city):
    plan, claims = city
    results, _, _, at = settled(plan, claims)
    year = provider.ProviderYear(plan)
    year.add(claims, results, at)
    hospitals, pools = year.settle()
    o_hospitals, o_pools = provider.settle_provider_year_reference(plan, claims, results)
    key = lambda r: (r["pool"], str(r["fixmedins_code"]))  # noqa: E731
    assert sorted(hospitals.to_pylist(), key=key) == sorted(o_hospitals, key=key)
    assert pools.to_pylist() == o_pools

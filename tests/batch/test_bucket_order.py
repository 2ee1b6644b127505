"""Results in a run's file order without reordering (issue 14): ``engine.settle_by_bucket``
settles a person-keyed plan directly in (bucket, date, claim_id) order. Its results equal the
oracle's (core/reference.py), reordered by bucket, on shuffled batches with lookups, rejects
and duplicates; plans and runs where the order would matter take the reordering path."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import engine, reference
from yibao.core.generate import generate_claims
from yibao.core.partition import bucket_order, buckets

from .test_runner import solo_families, with_bad_rows

CLAIMS = generate_claims(6_000, seed=23)


def expected(plan, claims, registry, context=None):
    """The oracle's batch with its results put into (bucket, date, claim_id) order."""
    batch = reference.settle(plan, claims, registry, context)
    order = bucket_order(batch.results.column("claim_id"), claims.column("claim_id"),
                         buckets(plan, claims))
    return batch.results.take(pa.array(order)), batch.rejects


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), size=st.integers(0, 600), bad=st.booleans())
def test_kernel_in_bucket_order_equals_reference(plan, registry, seed, size, bad):
    rng = np.random.default_rng(seed)
    claims = with_bad_rows(CLAIMS) if bad else CLAIMS
    claims = claims.take(pa.array(rng.permutation(claims.num_rows)[:size]))
    got = engine.settle_by_bucket(plan, claims, buckets(plan, claims), registry)
    results, rejects = expected(plan, claims, registry)
    assert got.results.equals(results)
    assert got.rejects.equals(rejects)


def test_person_plan_takes_the_direct_order(plan, registry, monkeypatch):
    """No reordering by claim id for a person-keyed plan without an acting stage."""
    monkeypatch.setattr(engine, "bucket_order", _refuse)
    got = engine.settle_by_bucket(plan, CLAIMS, buckets(plan, CLAIMS), registry)
    assert got.results.equals(expected(plan, CLAIMS, registry)[0])


def test_family_plan_and_acting_stage_reorder(family_plan, registry, monkeypatch):
    """A family key (a person may sit in two buckets) or a stage that reads the settlement
    order (mutual aid with balances) keeps date order and reorders the results."""
    claims = solo_families(CLAIMS)
    got = engine.settle_by_bucket(family_plan, claims, buckets(family_plan, claims), registry)
    assert got.results.equals(expected(family_plan, claims, registry)[0])
    monkeypatch.setattr(engine, "bucket_order", _refuse)
    with pytest.raises(AssertionError, match="reordered"):
        engine.settle_by_bucket(family_plan, claims, buckets(family_plan, claims), registry)
    acting = next(s for s in registry.stages if s.name == "family_mutual_aid")
    assert acting.acts({"balances": pa.table({"person_id": ["p"], "balance": [1]})})
    assert not acting.acts(None)


def _refuse(*args):
    raise AssertionError("reordered")

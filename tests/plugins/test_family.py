"""The family plugin: `per family` deductibles and caps end to end, the blank-id validator,
and 家庭共济 mutual aid (kernel == reference, order independence, hand-checked balances)."""
import datetime as dt
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core.engine import settle
from yibao.core.plan import Key
from yibao.core.reference import settle as settle_reference
from yibao.plugins.family import mutual_aid

from plugin_helpers import (both, by_claim, claim_rows, claims, compile_policy_text,
                            shipped_registry)

FAMILY_POLICY = """
layer basic "家庭统筹" {
  base in_scope - self_first
  deductible 2_000 yuan per family per year
  ratio 80%
  cap 10_000 yuan per family per year
}
"""
YUAN = 100


def family_plan():
    return compile_policy_text(FAMILY_POLICY)


def test_per_family_compiles_to_the_family_key():
    layer = family_plan().layers[0]
    assert layer.deductible.key == Key("family", "family_id")
    assert layer.caps[0].key == Key("family", "family_id")


def test_family_deductible_and_cap_are_shared_by_the_household():
    t = claims(
        {"claim_id": "a1", "person_id": "p1", "family_id": "f1", "day": dt.date(2024, 3, 1),
         "total": 1_500 * YUAN},
        {"claim_id": "a2", "person_id": "p2", "family_id": "f1", "day": dt.date(2024, 4, 1),
         "total": 3_000 * YUAN},
        {"claim_id": "a3", "person_id": "p1", "family_id": "f1", "day": dt.date(2024, 5, 1),
         "total": 20_000 * YUAN},
        {"claim_id": "n1", "person_id": "p1", "family_id": "f1", "day": dt.date(2025, 1, 2),
         "total": 3_000 * YUAN})
    for res in both(family_plan(), t):
        pay, ded = by_claim(res, "basic"), by_claim(res, "basic_deductible")
        assert ded["a1"] == 1_500 * YUAN and pay["a1"] == 0
        # p2 only has the household's 500 yuan left of 2,000: (3,000 − 500) × 80%
        assert ded["a2"] == 500 * YUAN and pay["a2"] == 2_000 * YUAN
        # the household's cap room is 10,000 − 2,000: 16,000 is cut to 8,000
        assert ded["a3"] == 0 and pay["a3"] == 8_000 * YUAN
        # a new policy year resets the household
        assert ded["n1"] == 2_000 * YUAN and pay["n1"] == 800 * YUAN


def test_null_family_id_falls_back_to_the_person():
    t = claims({"claim_id": "a", "person_id": "p1", "family_id": "f1", "total": 1_500 * YUAN},
               {"claim_id": "b", "person_id": "p3", "family_id": None, "total": 3_000 * YUAN})
    for res in both(family_plan(), t):
        assert res.num_rows == 2  # b is settled, not rejected
        # p3 is not in f1: a deductible of its own, 2,000, then (3,000 − 2,000) × 80%
        assert by_claim(res, "basic_deductible")["b"] == 2_000 * YUAN
        assert by_claim(res, "basic")["b"] == 800 * YUAN


@settings(max_examples=60, deadline=None)
@given(claim_rows())
def test_family_key_kernel_equals_reference(rows):
    table = claims(*rows)
    kernel, reference = both(family_plan(), table)
    assert kernel.equals(reference)
    shuffled = table.take(pa.array(random.Random(len(rows)).sample(range(len(rows)), len(rows)),
                                   pa.int64()))
    assert settle(family_plan(), shuffled, shipped_registry()).results.select(
        ["claim_id", "basic", "basic_deductible", "self_pay"]).equals(
        kernel.select(["claim_id", "basic", "basic_deductible", "self_pay"]))


def test_blank_family_id_is_rejected_only_when_the_plan_groups_by_family():
    t = claims({"claim_id": "x", "person_id": "p1", "family_id": " ", "total": 100},
               {"claim_id": "y", "person_id": "p1", "family_id": "f1", "total": 100})
    out = settle(family_plan(), t, shipped_registry())
    assert out.rejects.column("reason").to_pylist() == ["family_id_blank"]
    assert out.results.column("claim_id").to_pylist() == ["y"]
    person_plan = compile_policy_text(FAMILY_POLICY.replace("per family", "per person"))
    assert settle(person_plan, t, shipped_registry()).rejects.num_rows == 0


# -- 家庭共济 mutual aid -------------------------------------------------------------------

def accounts(owners, members=()):
    ctx = {"balances": pa.table({"person_id": pa.array([o for o, _ in owners], pa.string()),
                                 "balance": pa.array([b for _, b in owners], pa.int64())})}
    if members:
        ctx["bindings"] = pa.table({"person_id": [m for m, _ in members],
                                    "bound_to": [o for _, o in members]})
    return ctx


def test_mutual_aid_pays_bound_members_in_settlement_order():
    ctx = accounts([("p1", 1_000 * YUAN)], [("p2", "p1")])
    t = claims(  # given out of order on purpose
        {"claim_id": "c2", "person_id": "p1", "family_id": "f1", "day": dt.date(2024, 4, 1), "total": 500 * YUAN},
        {"claim_id": "c1", "person_id": "p2", "family_id": "f1", "day": dt.date(2024, 3, 1), "total": 800 * YUAN},
        {"claim_id": "c3", "person_id": "p3", "family_id": "f2", "day": dt.date(2024, 5, 1), "total": 100 * YUAN},
        {"claim_id": "c4", "person_id": "p2", "family_id": "f1", "day": dt.date(2024, 6, 1), "total": 100 * YUAN})
    for res in both(family_plan(), t, context=ctx):
        pay, left = by_claim(res, "acct_mulaid_pay"), by_claim(res, "balc")
        self_pay = by_claim(res, "self_pay")
        assert self_pay == {"c1": 800 * YUAN, "c2": 500 * YUAN, "c3": 100 * YUAN,
                            "c4": 100 * YUAN}  # unchanged by the stage (all under deductible)
        assert pay == {"c1": 800 * YUAN, "c2": 200 * YUAN, "c3": 0, "c4": 0}
        assert left == {"c1": 200 * YUAN, "c2": 0, "c3": None, "c4": 0}


def test_mutual_aid_without_balances_adds_no_columns():
    t = claims({"claim_id": "c", "person_id": "p1", "family_id": "f1", "total": 100})
    for res in both(family_plan(), t):
        assert "acct_mulaid_pay" not in res.column_names and "balc" not in res.column_names


@pytest.mark.parametrize("ctx, message", [
    (accounts([("p1", 5), ("p1", 6)]), "more than once"),
    (accounts([("p1", -5)]), "negative"),
    (accounts([("p1", 5)], [("p2", "p1"), ("p2", "p3")]), "more than once"),
])
def test_mutual_aid_rejects_bad_account_tables_naming_the_plugin(ctx, message):
    t = claims({"claim_id": "c", "person_id": "p1", "family_id": "f1", "total": 100})
    with pytest.raises(RuntimeError, match=f"plugin 'family'.*{message}"):
        settle(family_plan(), t, shipped_registry(), ctx)


@st.composite
def stage_inputs(draw):
    n = draw(st.integers(0, 40))
    persons = [f"p{i}" for i in range(6)]
    self_pay = draw(st.lists(st.integers(-5, 10_000), min_size=n, max_size=n))
    person = draw(st.lists(st.sampled_from(persons), min_size=n, max_size=n))
    owners = draw(st.lists(st.sampled_from(persons), unique=True, max_size=3))
    balances = [(o, draw(st.integers(0, 20_000))) for o in owners]
    others = [p for p in persons if p not in owners]
    members = [(m, draw(st.sampled_from(persons))) for m in
               draw(st.lists(st.sampled_from(others), unique=True))] if others else []
    results = pa.table({"self_pay": pa.array(self_pay, pa.int64())})
    claims_t = pa.table({"person_id": pa.array(person, pa.string())})
    return results, claims_t, accounts(balances, members)


@settings(max_examples=150, deadline=None)
@given(stage_inputs())
def test_mutual_aid_kernel_equals_reference(inputs):
    results, claims_t, ctx = inputs
    fast = mutual_aid.run(None, results, claims_t, ctx)
    slow = mutual_aid.reference(None, results, claims_t, ctx)
    assert fast["acct_mulaid_pay"].tolist() == slow["acct_mulaid_pay"]
    assert pa.array(fast["balc"], pa.int64()).to_pylist() == slow["balc"]
    pay = np.asarray(fast["acct_mulaid_pay"])
    assert (pay >= 0).all() and (pay <= np.maximum(results["self_pay"].to_numpy(), 0)).all()
    spent = {}
    for p, x in zip(claims_t["person_id"].to_pylist(), pay.tolist()):
        spent[p] = spent.get(p, 0) + x
    opening = dict(zip(ctx["balances"]["person_id"].to_pylist(),
                       ctx["balances"]["balance"].to_pylist()))
    assert sum(pay.tolist()) <= sum(opening.values())  # never below zero overall


@settings(max_examples=40, deadline=None)
@given(claim_rows(max_size=25), st.integers(0, 2**32 - 1))
def test_mutual_aid_is_order_independent_on_both_paths(rows, seed):
    table = claims(*rows)
    ctx = accounts([("p0", 30_000), ("p1", 500_000)], [("p2", "p0"), ("p3", "p0"), ("p4", "p1")])
    kernel, reference = both(family_plan(), table, context=ctx)
    assert kernel.equals(reference)
    order = random.Random(seed).sample(range(table.num_rows), table.num_rows)
    again = settle(family_plan(), table.take(pa.array(order, pa.int64())),
                         shipped_registry(), ctx).results
    assert again.equals(kernel)

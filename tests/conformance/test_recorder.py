"""The oracle's recorder hook (core/trace.py): ``reference.settle`` reports every step of every
claim to an optional ``record`` callable — explain is built on it — and settles exactly the
same with or without one."""
import dataclasses
import tempfile
from pathlib import Path

import pytest

from yibao.core import trace
from yibao.core.reference import settle as settle_reference

from .corpus import claims_table, compile_doc, load_corpus

CASES = list(load_corpus())
# the points oracle's events (claim_points), not reference.settle's: their own test is
# tests/tools/test_explain_provider_recorder.py
POINTS_EVENTS = {trace.CaseClass, trace.PointsAdjusted, trace.ClaimPoints}
EVENTS = {obj for obj in vars(trace).values()
          if isinstance(obj, type) and dataclasses.is_dataclass(obj)} - POINTS_EVENTS


@pytest.mark.parametrize("stem,doc,case", CASES, ids=[f"{s}:{c['name']}" for s, _, c in CASES])
def test_a_recorder_changes_nothing(stem, doc, case, tmp_path):
    policy = compile_doc(stem, doc, tmp_path)
    claims = claims_table(case["claims"])
    heard = []
    quiet = settle_reference(policy, claims)
    loud = settle_reference(policy, claims, record=heard.append)
    assert loud.results.equals(quiet.results) and loud.rejects.equals(quiet.rejects)
    started = [e.row["claim_id"] for e in heard if isinstance(e, trace.ClaimStarted)]
    ended = [e.claim_id for e in heard
             if isinstance(e, (trace.ClaimSettled, trace.ClaimRefused))]
    assert started == ended  # each claim's steps end before the next claim's start
    settled = [e.claim_id for e in heard if isinstance(e, trace.ClaimSettled)]
    assert sorted(settled) == sorted(quiet.results.column("claim_id").to_pylist())


def test_every_event_kind_is_reported(golden):
    """Over the corpus and the golden batch the oracle reports every kind of step (an event
    nobody sends would be a step explain silently misses)."""
    heard = set()
    record = lambda e: heard.add(type(e))  # noqa: E731
    from yibao.dsl.compiler import compile_policy
    reference_city = Path(__file__).parents[2] / "city_configs" / "reference"
    settle_reference(compile_policy(reference_city), golden[0], record=record)
    for stem, doc, case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            policy = compile_doc(stem, doc, Path(folder))
            settle_reference(policy, claims_table(case["claims"]), record=record)
    plan, claims = _refusing_batch()
    settle_reference(plan, claims, record=record)
    settle_reference(_with_layer("  base in_scope - 0\n"), claims, record=record)  # no ratio
    assert EVENTS - heard == set()


def _with_layer(body: str):
    from yibao.dsl.compiler import compile_text

    from .test_money import HEAD
    return compile_text(HEAD + "layer a {\n" + body + "}\n")


def _refusing_batch():
    """tests/conformance/test_money.py's yearly sum beyond int64: c2 is refused."""
    from .test_money import batch
    plan = _with_layer("  base in_scope\n  bands per person per year { 0 to 1000 yuan: 50%, "
                       "1000 yuan and above: 10% }\n  cap 10_000 yuan per person per year\n")
    return plan, batch(("c1", 5 * 10**18, 5 * 10**18), ("c2", 5 * 10**18, 5 * 10**18),
                       ("c3", 100_000, 100_000))

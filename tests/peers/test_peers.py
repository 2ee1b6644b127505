"""The benchmark peers (plain Python, DuckDB windows, Polars windows) against the golden batch.

settle_python must reproduce every golden claim to the fen. The window forms are exact only
for person-years whose ``low_income`` and ``tier`` hold all year (see benchmarks/peers.py), so
they are compared on those claims, and a constructed mid-year flip shows where they part.
"""
import datetime
import importlib.util
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(os.environ.get("YIBAO_GOLDEN", REPO.parent / "shared" / "golden"))
MONEY = ["basic_inpatient", "basic_outpatient", "critical", "assistance", "self_pay"]


def _load_peers():
    spec = importlib.util.spec_from_file_location("yibao_bench_peers", REPO / "benchmarks" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peers = _load_peers()
WINDOW_PEERS = [peers.settle_duckdb, peers.settle_polars]
ALL_PEERS = [peers.settle_python, *WINDOW_PEERS]


@pytest.fixture(scope="module")
def golden():
    claims, expected = GOLDEN / "reference_claims.parquet", GOLDEN / "reference_expected.parquet"
    if not (claims.exists() and expected.exists()):  # a failure, never a skip (tests/conftest.py)
        pytest.fail(f"golden batch not found in {GOLDEN} (set YIBAO_GOLDEN to its folder)",
                    pytrace=False)
    return pq.read_table(claims), pq.read_table(expected)


def _by_claim(table: pa.Table) -> dict:
    rows = table.select(["claim_id", *MONEY]).to_pylist()
    return {r["claim_id"]: tuple(r[m] for m in MONEY) for r in rows}


def _stable_claim_ids(claims: pa.Table) -> set:
    """Claims of person-years in which low_income and tier never change."""
    seen: dict = {}
    rows = claims.select(["claim_id", "person_id", "discharge_date", "low_income", "tier"]).to_pylist()
    for r in rows:
        seen.setdefault((r["person_id"], r["discharge_date"].year), set()).add((r["low_income"], r["tier"]))
    return {r["claim_id"] for r in rows if len(seen[(r["person_id"], r["discharge_date"].year)]) == 1}


def _mismatches(got: dict, want: dict, ids) -> list:
    return [(i, got.get(i), want[i]) for i in sorted(ids) if got.get(i) != want[i]]


def test_python_matches_every_golden_claim(golden):
    claims, expected = golden
    got = peers.settle_python(claims)
    assert got["claim_id"].equals(claims["claim_id"])
    want = _by_claim(expected)
    assert _mismatches(_by_claim(got), want, want) == []


@pytest.mark.parametrize("settle", WINDOW_PEERS, ids=lambda f: f.__name__)
def test_window_peers_match_golden_on_stable_persons(golden, settle):
    claims, expected = golden
    got = settle(claims)
    assert got.schema.names == list(peers.OUTPUT_COLUMNS)
    assert all(got.schema.field(m).type == pa.int64() for m in MONEY)
    assert got["claim_id"].equals(claims["claim_id"])
    stable = _stable_claim_ids(claims)
    assert len(stable) > 0.95 * claims.num_rows
    assert _mismatches(_by_claim(got), _by_claim(expected), stable) == []


@pytest.mark.parametrize("settle", ALL_PEERS, ids=lambda f: f.__name__)
def test_peers_write_the_identity_columns_yibao_writes(golden, settle):
    """The peers carry person, hospital and discharge date as yibao's results do (docs/outputs.md
    "Benefit results"), so a benchmark compares outputs of the same width."""
    claims, _ = golden
    got = settle(claims)
    assert got.schema.names == list(peers.OUTPUT_COLUMNS)
    names = ["claim_id", *peers.IDENTITY_COLUMNS]
    assert got.select(names).equals(claims.select(names).cast(got.select(names).schema))


@pytest.mark.parametrize("settle", ALL_PEERS, ids=lambda f: f.__name__)
def test_result_does_not_depend_on_row_order(golden, settle):
    claims, _ = golden
    shuffled = claims.take(pa.array(np.random.default_rng(1).permutation(claims.num_rows)))
    assert _by_claim(settle(shuffled)) == _by_claim(settle(claims))


@pytest.mark.parametrize("settle", ALL_PEERS, ids=lambda f: f.__name__)
def test_invariants_on_generated_claims(settle):
    claims = generate_claims(4_000, seed=9, years=2, low_income_share=0.3)
    got = settle(claims)
    paid = sum(got[m].to_numpy() for m in MONEY[:-1])
    assert (paid + got["self_pay"].to_numpy() == claims["total"].to_numpy()).all()
    for m in MONEY:
        assert pc.min(got[m]).as_py() >= 0
    assert pc.sum(got["assistance"]).as_py() > 0 and pc.sum(got["critical"]).as_py() > 0


@pytest.mark.parametrize("settle", WINDOW_PEERS, ids=lambda f: f.__name__)
def test_window_peers_agree_with_python_on_generated_stable_persons(settle):
    claims = generate_claims(6_000, seed=4, years=2, low_income_share=0.3)
    stable = _stable_claim_ids(claims)
    assert _mismatches(_by_claim(settle(claims)), _by_claim(peers.settle_python(claims)), stable) == []


def _flip_case() -> pa.Table:
    """A person low-income in January (critical deductible 10,000 consumed), ordinary in June.

    self_first = in_scope, so basic insurance pays nothing and critical sees all of in_scope.
    Spec: June's deductible is 20,000 − 10,000 = 10,000, e = 10,000 over [5,000, 15,000) → 6,000.
    """
    yuan = 100
    return pa.table({
        "claim_id": ["F1", "F2"], "person_id": ["p"] * 2, "family_id": pa.nulls(2, pa.string()),
        "tier": ["tier2"] * 2, "low_income": [True, False], "setting": ["outpatient"] * 2,
        "hospital_id": ["H"] * 2, "hospital_level": pa.array([3, 3], pa.int8()), "hospital_tcm": [False] * 2,
        "admit_date": [datetime.date(2024, 1, 5), datetime.date(2024, 6, 5)],
        "discharge_date": [datetime.date(2024, 1, 5), datetime.date(2024, 6, 5)],
        "los": pa.array([0, 0], pa.int32()), "principal_dx": ["I10.x00"] * 2,
        "secondary_dx": pa.array([[], []], pa.list_(pa.string())), "procedures": pa.array([[], []], pa.list_(pa.string())),
        "total": pa.array([15_000 * yuan, 20_000 * yuan]), "in_scope": pa.array([15_000 * yuan, 20_000 * yuan]),
        "self_first": pa.array([15_000 * yuan, 20_000 * yuan]),
    })


def test_python_follows_a_mid_year_flip_and_windows_cannot():
    case = _flip_case()
    python = _by_claim(peers.settle_python(case))
    assert python["F1"] == (0, 0, 3_000_00, 0, 12_000_00)
    assert python["F2"] == (0, 0, 6_000_00, 0, 14_000_00)
    for settle in WINDOW_PEERS:   # documented limit: min(D, C) − min(D, C⁻) with D changing
        assert _by_claim(settle(case))["F2"] == (0, 0, 9_000_00, 0, 11_000_00)

"""The provider part of a settle runs beside the benefit settlement (issue 14, the provider
row): ``provider.claim_pieces`` groups, pools and scores the claims in their input order,
``ClaimPieces.columns(order)`` lays the columns out later in any order of any of them, and
the engine starts it on a thread, before ``prepare`` when the claims can stand for the
accepted ones (core/engine.py ``_provider_pieces_early``). Whatever was rejected on the
way (by ``prepare``, a plugin check, a lookup miss), the results' provider columns are
those of the accepted claims scored alone (``provider.claim_columns``), and the oracle's."""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import engine, provider
from yibao.core.arrow_io import normal_table
from yibao.core.generate import generate_claims
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager
from policy_texts import (  # tests/ is on the path (tests/conftest.py)
    DECISION_TABLE_CSV as TABLE, DECISION_TABLE_POINTS as POINTS, DECISION_TABLE_POLICY as POLICY)
from claim_edits import hospital_ratio_policy, with_values as _set  # tests/ is on the path

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))


@pytest.fixture(scope="module")
def table_city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dt_city")
    for name, text in (("policy.yb", POLICY), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (folder / name).write_text(text, encoding="utf-8")
    return compile_policy(str(folder), SHIPPED)


@pytest.fixture(scope="module")
def many_claims():
    """More claims than one chunk (``engine.CHUNK_ROWS``), so the provider part runs on
    threads, in the one layout a run's reader hands over (so it may start before
    ``prepare``)."""
    claims = normal_table(generate_claims(engine.CHUNK_ROWS + 4_000, 41))
    assert claims.schema.field("total").type == pa.int64()
    return claims


def _inpatient_rows(claims: pa.Table, k: int) -> list:
    setting = claims.column("setting").to_pylist()
    return [i for i, s in enumerate(setting) if s == "inpatient"][:k]


def _expected(plan, claims: pa.Table, results: pa.Table) -> pa.Table:
    """The provider columns of the settled claims scored alone, in the results' order."""
    ids = claims.column("claim_id").to_pylist()
    settled = set(results.column("claim_id").to_pylist())
    accepted = [i for i, c in enumerate(ids) if c in settled]
    alone = provider.claim_columns(plan, claims.take(pa.array(accepted)))
    at = {ids[i]: k for k, i in enumerate(accepted)}
    return alone.take(pa.array([at[c] for c in results.column("claim_id").to_pylist()]))


def _spy_early(monkeypatch) -> list:
    started = []
    early = engine._provider_pieces_early

    def spy(*args):
        started.append(early(*args))
        return started[-1]
    monkeypatch.setattr(engine, "_provider_pieces_early", spy)
    return started


@pytest.mark.parametrize("city", ["table", "jinhua"])
def test_pieces_laid_out_later_equal_the_columns_in_any_order(city, table_city):
    plan = table_city if city == "table" else compile_policy("city_configs/jinhua", SHIPPED)
    claims = generate_claims(3_000, 17)
    whole = provider.claim_columns(plan, claims)
    pieces = provider.claim_pieces(plan, claims)
    rng = np.random.default_rng(7)
    shuffled = rng.permutation(claims.num_rows)
    some = rng.permutation(np.arange(0, claims.num_rows, 3))
    assert pieces.columns().equals(whole)
    assert pieces.columns(shuffled).equals(whole.take(pa.array(shuffled)))
    assert pieces.columns(some).equals(whole.take(pa.array(some)))
    assert set(whole.column("case_class").to_pylist()) >= {"normal", "ungrouped"}


def test_without_a_provider_part_the_columns_are_null_for_the_rows_asked(table_city):
    plan = dataclasses.replace(table_city, provider=None)
    claims = generate_claims(100, 3)
    got = provider.claim_pieces(plan, claims).columns(np.arange(0, 100, 4))
    assert got.schema == provider.CLAIM_SCHEMA and got.num_rows == 25
    assert all(col.null_count == 25 for col in got.columns)


def test_only_claims_scored_each_alone_may_be_scored_before_prepare(table_city):
    assert provider.scored_alone(table_city)
    for city in ("jinhua", "rizhao", "shanghai"):  # CHS-DRG groupers (and readmissions)
        assert not provider.scored_alone(compile_policy(f"city_configs/{city}", SHIPPED))
    pool = table_city.provider.pools[0]
    readmitting = dataclasses.replace(pool, readmission=compile_policy(
        "city_configs/jinhua", SHIPPED).provider.pools[0].readmission)
    assert readmitting.readmission is not None
    assert not provider.scored_alone(dataclasses.replace(
        table_city, provider=dataclasses.replace(table_city.provider, pools=(readmitting,))))


def test_every_claim_accepted_scores_from_the_early_start(table_city, many_claims,
                                                          monkeypatch):
    started = _spy_early(monkeypatch)
    batch = engine.settle(table_city, many_claims, SHIPPED)
    assert started and started[0] is not None
    assert batch.rejects.num_rows == 0
    expected = _expected(table_city, many_claims, batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_claims_rejected_by_prepare_leave_the_others_scores_unchanged(table_city, many_claims,
                                                                     monkeypatch):
    rows = _inpatient_rows(many_claims, 3)
    claims = _set(many_claims, "total", {rows[0]: None, rows[1]: -3})
    claims = _set(claims, "discharge_date", {rows[2]: None})
    started = _spy_early(monkeypatch)
    batch = engine.settle_by_bucket(table_city, claims, np.arange(claims.num_rows) % 97,
                                    SHIPPED)
    assert started and started[0] is not None
    assert sorted(batch.rejects.column("row").to_pylist()) == sorted(rows)
    expected = _expected(table_city, claims, batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_a_rejected_claim_the_points_pass_refuses_does_not_stop_the_run(table_city,
                                                                       many_claims,
                                                                       monkeypatch):
    """The early start scores every input row, the rejected too: a rejected claim whose
    total is beyond what the points pass scores makes it fail, and the accepted claims are
    scored again alone (as before the early start; only an accepted claim stops a run)."""
    row = _inpatient_rows(many_claims, 1)[0]
    claims = _set(many_claims, "total", {row: 5 * 10**12})  # 50 billion yuan
    claims = _set(claims, "discharge_date", {row: None})    # rejected by prepare
    started = _spy_early(monkeypatch)
    batch = engine.settle(table_city, claims, SHIPPED)
    assert started and started[0] is not None
    with pytest.raises(OverflowError):
        started[0]()
    assert batch.rejects.column("row").to_pylist() == [row]
    expected = _expected(table_city, claims, batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_with_one_thread_the_provider_part_starts_after_prepare(table_city, many_claims,
                                                                monkeypatch):
    """``YIBAO_THREADS=1`` runs the provider part where it is started: after ``prepare``,
    over the accepted claims, so a rejected claim the points pass refuses stops nothing."""
    monkeypatch.setenv("YIBAO_THREADS", "1")
    row = _inpatient_rows(many_claims, 1)[0]
    claims = _set(many_claims, "total", {row: 5 * 10**12})
    claims = _set(claims, "discharge_date", {row: None})
    started = _spy_early(monkeypatch)
    batch = engine.settle(table_city, claims, SHIPPED)
    assert started == [None]
    assert batch.rejects.column("row").to_pylist() == [row]
    expected = _expected(table_city, claims, batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_claims_not_in_the_one_layout_start_after_prepare(table_city, monkeypatch):
    """Dictionary columns (as ``generate_claims`` makes them) are decoded by ``prepare``:
    the provider part then starts on the accepted claims it returns."""
    claims = generate_claims(engine.CHUNK_ROWS + 100, 43)
    started = _spy_early(monkeypatch)
    batch = engine.settle(table_city, claims, SHIPPED)
    assert started == [None]
    expected = _expected(table_city, normal_table(claims), batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_claims_a_lookup_misses_in_the_run_leave_the_others_scores_unchanged(
        table_city, many_claims, tmp_path):
    """A layer's ratio by hospital with no row for one hospital in ten: their inpatient
    claims are rejected while the kernel runs (``missing_table_key``), after the columns
    were laid out in the whole order; the results' columns are those of the claims left."""
    policy, ratios = hospital_ratio_policy(POLICY, many_claims)
    (tmp_path / "ratios.csv").write_text(ratios, encoding="utf-8")
    for name, text in (("policy.yb", policy), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    plan = compile_policy(str(tmp_path), SHIPPED)
    batch = engine.settle(plan, many_claims, SHIPPED)
    assert set(batch.rejects.column("reason").to_pylist()) == {"missing_table_key"}
    assert 0 < batch.rejects.num_rows < many_claims.num_rows // 5
    expected = _expected(plan, many_claims, batch.results)
    for name, _ in provider.CLAIM_FIELDS:
        assert batch.results.column(name).equals(expected.column(name)), name


def test_a_run_makes_the_buckets_after_the_provider_part_started(table_city, many_claims,
                                                                 tmp_path, monkeypatch):
    """In memory the provider part (which never reads the buckets) starts first and the
    run's bucket hashes run beside it, not before it (issue 14, p20: the provider thread is
    the chain that gates the writer's first row group); the outputs are those of the
    buckets made first."""
    import pyarrow.parquet as pq
    from yibao.core import runner
    pq.write_table(many_claims, tmp_path / "claims.parquet")
    before = runner.run_settle(table_city, tmp_path / "claims.parquet", tmp_path / "before",
                               registry=SHIPPED, progress=False)
    events = []
    early, real = engine._provider_pieces_early, runner.buckets
    monkeypatch.setattr(engine, "_provider_pieces_early",
                        lambda *a: events.append("provider") or early(*a))
    monkeypatch.setattr(runner, "buckets", lambda *a: events.append("buckets") or real(*a))
    after = runner.run_settle(table_city, tmp_path / "claims.parquet", tmp_path / "after",
                              registry=SHIPPED, progress=False)
    assert events == ["provider", "buckets"]
    assert after.totals.as_dict() == before.totals.as_dict()
    for name in ("claims.parquet", "hospitals.parquet", "pools.parquet"):
        assert (tmp_path / "after" / name).read_bytes() == \
            (tmp_path / "before" / name).read_bytes(), name


def test_the_provider_thread_joins_the_pieces_for_the_layout(table_city, many_claims):
    """What every stretch of the layout shares (the pools' pieces joined, the text columns'
    tables) is made on the provider thread, not by the first stretch the writer waits for
    (issue 14, p20); the columns are the same."""
    waiting = engine._pieces_beside(table_city, many_claims, SHIPPED)
    pieces = waiting()
    assert {name for name, _ in provider.CLAIM_FIELDS} <= set(pieces._joined)
    order = np.random.default_rng(3).permutation(many_claims.num_rows)[:5_000]
    assert pieces.columns(order).equals(
        provider.claim_pieces(table_city, many_claims).columns(order))

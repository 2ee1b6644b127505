"""A provider run's results stream to the writer as they settle (issue 14, p17): with the
provider columns laid out in the settlement order beside the kernel
(``engine._ProviderLayout``), ``settle_by_bucket_streamed`` hands each piece out with its
provider columns as soon as it is settled, instead of the whole results once at the end.
The pieces laid end to end are ``settle_by_bucket``'s results, row for row, whatever was
rejected on the way and however late the provider columns come."""
from __future__ import annotations

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
PIECE = 8_192  # rows per piece handed out in these tests (engine.STREAM_ROWS)


def _city(folder, policy=POLICY):
    for name, text in (("policy.yb", policy), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (folder / name).write_text(text, encoding="utf-8")
    return compile_policy(str(folder), SHIPPED)


@pytest.fixture(scope="module")
def table_city(tmp_path_factory):
    return _city(tmp_path_factory.mktemp("dt_city"))


@pytest.fixture(scope="module")
def many_claims():
    """More claims than one chunk (threads run), in the one layout a run's reader hands."""
    return normal_table(generate_claims(engine.CHUNK_ROWS + 4_000, 53))


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setattr(engine, "STREAM_ROWS", PIECE)


def _streamed(plan, claims, bucket) -> tuple:
    pieces = []
    batch = engine.settle_by_bucket_streamed(plan, claims, bucket, pieces.append, SHIPPED)
    return pieces, batch


def _assert_same_as_whole(plan, claims, bucket) -> list:
    """The streamed pieces, checked against ``settle_by_bucket``: the same results row for
    row (provider columns included), rejects and input rows."""
    pieces, batch = _streamed(plan, claims, bucket)
    whole = engine.settle_by_bucket(plan, claims, bucket, SHIPPED)
    got = pa.concat_tables(pieces)
    assert got.schema.equals(whole.results.schema)
    assert got.equals(whole.results)
    assert batch.rejects.equals(whole.rejects)
    assert np.array_equal(batch.rows, whole.rows)
    assert batch.results.num_rows == 0 and batch.results.schema.equals(whole.results.schema)
    for name, _ in provider.CLAIM_FIELDS:
        assert all(name in p.column_names for p in pieces), name
    return pieces


def test_a_provider_run_hands_out_its_results_a_piece_at_a_time(table_city, many_claims,
                                                                small_pieces):
    bucket = np.arange(many_claims.num_rows) % 97
    pieces = _assert_same_as_whole(table_city, many_claims, bucket)
    assert len(pieces) == -(-many_claims.num_rows // PIECE)  # one whole piece per PIECE rows
    assert {p.num_rows for p in pieces[:-1]} == {PIECE}
    points = pa.concat_tables(pieces).column("points")
    assert points.null_count < len(points)  # inpatient claims scored in the pieces


def test_late_provider_columns_hold_the_pieces_back_not_the_kernel(table_city, many_claims,
                                                                   small_pieces, monkeypatch):
    """Until the layout is done the settled rows wait (the kernel goes on); then they go
    out a piece at a time, the same pieces."""
    monkeypatch.setattr(engine._ProviderLayout, "ready", lambda self, end: False)
    bucket = np.arange(many_claims.num_rows) % 31
    pieces = _assert_same_as_whole(table_city, many_claims, bucket)
    assert {p.num_rows for p in pieces[:-1]} == {PIECE}


def test_rows_rejected_before_and_during_the_kernel_leave_the_pieces_equal(
        many_claims, small_pieces, tmp_path, monkeypatch):
    """Rows ``prepare`` rejects and rows a lookup misses while the kernel runs (one hospital
    in ten has no ratio): the pieces with a row left out take their provider columns for the
    rows kept from the stretch laid out; laid end to end they are the whole results."""
    policy, ratios = hospital_ratio_policy(POLICY, many_claims)
    (tmp_path / "ratios.csv").write_text(ratios, encoding="utf-8")
    plan = _city(tmp_path, policy)
    claims = _set(many_claims, "total", {5: None, 700: -3})
    claims = _set(claims, "discharge_date", {9_000: None})
    laid_out = []
    columns = provider.ClaimPieces.columns
    monkeypatch.setattr(provider.ClaimPieces, "columns",
                        lambda self, order: laid_out.append(len(order)) or columns(self, order))
    pieces, batch = _streamed(plan, claims, np.arange(claims.num_rows) % 13)
    # the kept rows are taken from the stretches laid out, not laid out again
    assert len(laid_out) == -(-sum(laid_out) // PIECE) and sum(laid_out) < claims.num_rows
    reasons = set(batch.rejects.column("reason").to_pylist())
    assert "missing_table_key" in reasons and len(reasons) > 1
    assert any(p.num_rows < PIECE for p in pieces[:-1])  # a piece lost rows
    _assert_same_as_whole(plan, claims, np.arange(claims.num_rows) % 13)


def test_with_one_thread_the_pieces_are_the_same(table_city, many_claims, small_pieces,
                                                  monkeypatch):
    monkeypatch.setenv("YIBAO_THREADS", "1")
    pieces = _assert_same_as_whole(table_city, many_claims, np.arange(many_claims.num_rows) % 7)
    assert len(pieces) > 1


def test_claims_the_provider_part_reads_after_prepare_stream_too(table_city, small_pieces):
    """Claims not in the one layout (dictionary columns, as ``generate_claims`` makes them):
    the provider part starts after ``prepare`` over the accepted claims; the pieces are the
    whole results all the same."""
    claims = generate_claims(engine.CHUNK_ROWS + 2_000, 59)
    assert engine._provider_pieces_early(table_city, claims, SHIPPED) is None
    pieces = _assert_same_as_whole(table_city, claims, np.arange(claims.num_rows) % 11)
    assert len(pieces) > 1


def test_plans_with_wider_keys_still_settle_whole():
    """Keys wider than the person (the cities' per-disease accumulators): the results exist
    only at the end, and are handed out once, provider part or not."""
    plan = compile_policy("city_configs/jinhua", SHIPPED)
    assert plan.provider is not None and plan.keys() != (engine.PERSON,)
    assert not engine._streamable(engine.Policy.of(plan), SHIPPED, None)


def test_an_accepted_claim_the_points_pass_refuses_stops_the_streamed_run(
        table_city, many_claims, small_pieces):
    """The provider work fails on its thread (a total beyond what the points pass scores):
    the run stops with that error, naming the claim, at the first piece it would join."""
    row = next(i for i, s in enumerate(many_claims.column("setting").to_pylist())
               if s == "inpatient")
    claims = _set(many_claims, "total", {row: 5 * 10**12})  # 50 billion yuan
    claim_id = claims.column("claim_id")[row].as_py()
    with pytest.raises(OverflowError, match=claim_id):
        _streamed(table_city, claims, np.arange(claims.num_rows) % 5)


def test_a_run_whose_every_claim_is_rejected_hands_out_one_empty_piece(table_city,
                                                                       many_claims):
    """No claim accepted (every total null): one empty piece with the provider columns,
    as ``settle_by_bucket``'s empty results."""
    claims = many_claims.set_column(many_claims.schema.get_field_index("total"), "total",
                                    pa.nulls(many_claims.num_rows, pa.int64()))
    pieces = _assert_same_as_whole(table_city, claims, np.zeros(claims.num_rows, np.int64))
    assert [p.num_rows for p in pieces] == [0]


def test_a_stretch_is_let_go_once_its_piece_is_handed_out(table_city, many_claims,
                                                         small_pieces, monkeypatch):
    """The layout holds only the stretches not yet handed out (the review found every
    stretch held to the run's end: ≈ 47 bytes a claim)."""
    held = []
    send = engine._ResultStream._send

    def sending(self, end):
        send(self, end)
        laid = self.provider.laid
        held.append(sum(s is not None for s in laid[:self.sent // PIECE]))
    monkeypatch.setattr(engine._ResultStream, "_send", sending)
    _streamed(table_city, many_claims, np.arange(many_claims.num_rows) % 7)
    assert len(held) > 2 and held == [0] * len(held)

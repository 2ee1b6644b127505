"""A streamed provider run hands its first piece to the writer as soon as the first stretch
of provider columns is laid out, not once every stretch is (issue 14, p18): when the kernel
ends before the provider part (under load, the usual case), ``_ProviderLayout.columns``
waited for the whole layout, so the writer started only after it (0.45 s later in a run at
load 4). The pieces are those of the whole settlement either way."""
from __future__ import annotations

import threading

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

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))
PIECE = 8_192
PATIENCE = 5.0  # seconds a held-back stretch waits for the first piece before giving up


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout_city")
    for name, text in (("policy.yb", POLICY), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (folder / name).write_text(text, encoding="utf-8")
    return compile_policy(str(folder), SHIPPED)


def test_the_first_piece_goes_out_before_the_layout_ends(city, monkeypatch):
    monkeypatch.setattr(engine, "STREAM_ROWS", PIECE)
    claims = normal_table(generate_claims(engine.CHUNK_ROWS + 4_000, 53))
    bucket = np.arange(claims.num_rows) % 97
    finishing, first_out, gave_up = threading.Event(), threading.Event(), []
    finish, columns = engine._ResultStream.finish, provider.ClaimPieces.columns
    calls = []

    def finish_late(self):  # the kernel has ended: the layout may begin
        finishing.set()
        return finish(self)

    def columns_held(self, order=None):
        calls.append(len(calls))
        if len(calls) == 1:  # the first stretch: laid out only once the kernel has ended
            finishing.wait(PATIENCE)
        elif len(calls) == 2 and not first_out.wait(PATIENCE):  # the rest: after a piece
            gave_up.append(True)
        return columns(self, order)

    def emit(piece):
        pieces.append(piece)
        first_out.set()
    pieces = []
    monkeypatch.setattr(engine._ResultStream, "finish", finish_late)
    monkeypatch.setattr(provider.ClaimPieces, "columns", columns_held)
    engine.settle_by_bucket_streamed(city, claims, bucket, emit, SHIPPED)
    assert not gave_up, "the first piece waited for every stretch to be laid out"
    monkeypatch.setattr(provider.ClaimPieces, "columns", columns)
    whole = engine.settle_by_bucket(city, claims, bucket, SHIPPED)
    assert pa.concat_tables(pieces).equals(whole.results)
    assert len(pieces) == -(-claims.num_rows // PIECE)


def test_a_failed_layout_is_raised_by_the_piece_waiting_for_it(city, monkeypatch):
    monkeypatch.setattr(engine, "STREAM_ROWS", PIECE)
    claims = normal_table(generate_claims(engine.CHUNK_ROWS + 4_000, 54))
    columns = provider.ClaimPieces.columns
    calls = []

    def columns_failing(self, order=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("layout broke")
        return columns(self, order)
    monkeypatch.setattr(provider.ClaimPieces, "columns", columns_failing)
    with pytest.raises(RuntimeError, match="layout broke"):
        engine.settle_by_bucket_streamed(city, claims, np.arange(claims.num_rows) % 97,
                                         lambda piece: None, SHIPPED)

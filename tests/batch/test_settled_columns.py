"""In-memory settle reads only the claim columns it needs (issue 14, m17): the others are
dropped before ``prepare`` (``engine._settled_columns``, ``arrow_io.only_columns``), so their
dictionaries are never decoded and, when rows are rejected, never taken. Results, rejects and
rows must be those of a settle that keeps every column; a validator that does not declare
its columns, or a provider part, keeps them all."""
from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from yibao.core import arrow_io, engine
from yibao.core.generate import generate_claims
from yibao.core.registry import Validator

UNREAD = {"scheme", "mtb_disease", "alliance", "secondary_dx", "procedures", "principal_dx"}


def _claims_with_rejects() -> pa.Table:
    claims = generate_claims(3_000, seed=21)
    ids = claims.column("claim_id").to_pylist()
    ids[7], ids[11], ids[2_000] = None, ids[12], ids[5]  # a null id, two duplicated
    total = claims.column("total").to_pylist()
    total[100] = -1
    return claims.set_column(0, "claim_id", pa.array(ids, pa.string())).set_column(
        claims.schema.get_field_index("total"), "total", pa.array(total, pa.int64()))


def _normalised(monkeypatch) -> list:
    """The column names ``prepare``'s normal_table sees, call by call."""
    seen = []
    normal = arrow_io.normal_table
    monkeypatch.setattr(arrow_io, "normal_table",
                        lambda table, *coded: seen.append(set(table.column_names))
                        or normal(table, *coded))  # coded: prepare's (m18)
    return seen


def _same(a, b) -> None:
    assert a.results.equals(b.results, check_metadata=True)
    assert a.rejects.equals(b.rejects)
    assert a.input_rows == b.input_rows
    assert np.asarray(a.rows).tolist() == np.asarray(b.rows).tolist()


def test_unread_columns_are_dropped_and_the_results_are_the_same(plan, registry, monkeypatch):
    claims = _claims_with_rejects()
    assert UNREAD <= set(claims.column_names)
    seen = _normalised(monkeypatch)
    got = engine.settle(plan, claims, registry)
    assert seen and not (UNREAD & seen[0])
    assert {"claim_id", "person_id", "hospital_id", "tier", "total"} <= seen[0]
    monkeypatch.setattr(engine, "_settled_columns", lambda *a: None)
    whole = engine.settle(plan, claims, registry)
    _same(got, whole)
    assert got.rejects.num_rows == 6


def test_an_undeclared_validator_keeps_every_column(plan, registry, monkeypatch):
    blind = Validator("reads_anything", "odd", lambda plan, columns, raw, n:
                      (np.zeros(n, dtype=bool), []))  # claim_columns None: may read any
    wide = dataclasses.replace(registry, validators=[*registry.validators, blind])
    seen = _normalised(monkeypatch)
    engine.settle(plan, generate_claims(200, seed=2), wide)
    assert UNREAD <= seen[0]


def test_only_columns_leaves_what_it_cannot_select():
    claims = generate_claims(10, seed=1)
    assert arrow_io.only_columns(claims, None) is claims
    twice = claims.append_column("total", claims.column("total"))
    assert arrow_io.only_columns(twice, {"claim_id"}).num_columns == twice.num_columns
    picked = arrow_io.only_columns(claims.to_batches()[0], {"total", "claim_id", "absent"})
    assert picked.column_names == ["claim_id", "total"]  # the claims' own order


@pytest.mark.parametrize("kind", ["string", "large_string"])
def test_accepted_open_text_kept_by_filter_is_the_taken_text(kind):
    """``prepare`` keeps the accepted rows by Arrow's filter (chunk by chunk): the same values
    as the take of their row numbers, chunked or not."""
    values = pa.chunked_array([pa.array(["a", None, "b"]), pa.array(["c", "d"])])
    values = values.cast(pa.large_string()) if kind == "large_string" else values
    rows = np.array([0, 2, 4], dtype=np.int64)
    kept = values.filter(arrow_io._kept_mask(len(values), rows))
    assert kept.combine_chunks().equals(values.take(pa.array(rows)).combine_chunks())

"""A run's reading and writing (issue 14, r14): the files are read at once but numbered in
path order, only the columns the settlement reads are decoded (and leaving the others out
changes no output byte, for every city), the results file is read back by the peers, and
the reordering path of ``settle_by_bucket`` keeps each result's input row."""
from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import engine, runner, sources
from yibao.core.generate import generate_claims, write_claims
from yibao.core.partition import buckets
from yibao.core.runner import run_settle
from yibao.dsl.commands._common import registry as full_registry
from yibao.dsl.compiler import compile_policy

from .conftest import ROOT
from .test_runner import solo_families, with_bad_rows

OUTPUTS = ("claims.parquet", "rejects.parquet", "hospitals.parquet", "pools.parquet",
           "flags.parquet", "hospital_indicators.parquet")


def _split(claims: pa.Table, folder, parts: int = 3) -> None:
    """``claims`` in ``parts`` files whose path order is the row order."""
    folder.mkdir()
    step = -(-claims.num_rows // parts)
    for k in range(parts):
        write_claims(claims.slice(k * step, step), folder / f"part-{k}.parquet",
                     row_group_size=500)


def test_files_are_read_at_once_and_numbered_in_path_order(plan, claims, tmp_path, registry,
                                                           monkeypatch):
    """Two reads must be under way together (a barrier both wait at), the first file the
    slower one, and the rows are still numbered file by file: the rejects' row numbers and
    the results are those of reading the files one after another."""
    _split(with_bad_rows(claims), tmp_path / "in", parts=2)
    together = threading.Barrier(2, timeout=20)
    real = sources.Source.read

    def read(self, columns=None):
        together.wait()  # a read one file after the other never gets past this
        if self.path.name == "part-0.parquet":
            threading.Event().wait(0.3)  # the first file finishes last
        return real(self, columns)
    monkeypatch.setattr(sources.Source, "read", read)
    run_settle(plan, tmp_path / "in", tmp_path / "at_once", registry=registry, progress=False)
    monkeypatch.setattr(sources.Source, "read", real)
    run_settle(plan, tmp_path / "in" / "part-0.parquet", tmp_path / "first", registry=registry,
               progress=False)
    monkeypatch.setattr(sources, "READ_THREADS", 1)
    run_settle(plan, tmp_path / "in", tmp_path / "one_by_one", registry=registry,
               progress=False)
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "at_once" / name).read_bytes() == \
            (tmp_path / "one_by_one" / name).read_bytes()
    rejected = pq.read_table(tmp_path / "at_once" / "rejects.parquet").column("row").to_pylist()
    assert rejected == [7, 50, 100, 2500, 4000]  # with_bad_rows: rows of the whole input
    # the first file alone (row 100's copy is in the second): the same numbers, so the
    # first file's rows were numbered first
    assert pq.read_table(tmp_path / "first" / "rejects.parquet").column("row").to_pylist() == \
        [7, 50, 2500]


def test_reference_run_leaves_the_code_lists_unread(plan, claims_file, tmp_path, registry,
                                                    monkeypatch):
    """In memory and partitioned, no column outside ``read_columns`` is decoded: the reference
    policy has no DRG grouper, so the diagnosis and procedure lists stay on disk."""
    decoded = []
    real_read, real_batches = sources.Source.read, sources.Source.batches

    def read(self, columns=None):
        decoded.append(self.present(columns))
        return real_read(self, columns)

    def batches(self, rows, columns=None, **kw):
        decoded.append(self.present(columns))
        return real_batches(self, rows, columns, **kw)
    monkeypatch.setattr(sources.Source, "read", read)
    monkeypatch.setattr(sources.Source, "batches", batches)
    run_settle(plan, claims_file, tmp_path / "m", registry=registry, progress=False)
    run_settle(plan, claims_file, tmp_path / "p", registry=registry, progress=False,
               partitions=2)
    read = sources.read_columns(plan, registry)
    assert len(decoded) == 2
    for columns in decoded:
        assert columns == [c for c in pq.read_schema(claims_file).names if c in read]
        assert not {"principal_dx", "secondary_dx", "procedures"} & set(columns)
        assert {"claim_id", "person_id", "hospital_id", "in_scope", "self_first"} <= set(columns)


CITIES = {"reference": 2024, "jinhua": 2024, "shanghai": 2024, "rizhao": 2016}


@pytest.mark.parametrize("name", sorted(CITIES))
def test_every_output_is_the_same_reading_every_column(name, tmp_path, monkeypatch):
    """Each city's outputs (results, rejects, provider, supervision), in memory and in three
    partitions, are the bytes of a run that reads every column of the files — which here
    include a column no policy knows."""
    registry = full_registry()
    plan = compile_policy(ROOT / "city_configs" / name, registry=registry)
    claims = with_bad_rows(generate_claims(5_000, seed=3, start_year=CITIES[name]))
    claims = claims.append_column("note", pa.array(["x"] * claims.num_rows))
    write_claims(claims, tmp_path / "in.parquet", row_group_size=900)
    assert "note" not in sources.read_columns(plan, registry)

    def outputs(folder):
        return {n: (folder / n).read_bytes() for n in OUTPUTS if (folder / n).exists()}
    got = {}
    for every in (False, True):
        if every:
            monkeypatch.setattr(runner, "read_columns", lambda plan, registry: None)
        for parts in (None, 3):
            out = tmp_path / f"{every}-{parts}"
            run_settle(plan, tmp_path / "in.parquet", out, registry=registry, progress=False,
                       partitions=parts)
            got[every, parts] = outputs(out)
    assert got[False, None]["claims.parquet"] and len(got[False, None]) >= 2
    assert got[False, None] == got[True, None] == got[False, 3] == got[True, 3]


def test_results_file_is_read_by_duckdb_and_polars(plan, claims_file, tmp_path, registry):
    """The results codec (manifest.WRITE_OPTIONS) is one the peers read: the same values."""
    import duckdb
    import polars as pl
    run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False)
    path = tmp_path / "o" / "claims.parquet"
    ours = pq.read_table(path)
    assert pl.read_parquet(path).to_arrow().cast(ours.schema).equals(ours)
    duck = duckdb.connect().sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_table()
    assert duck.cast(ours.schema).equals(ours)


def test_reordered_results_keep_their_input_rows(family_plan, registry):
    """A family key takes ``settle_by_bucket``'s reordering path: each result still names its
    input row (``BatchResult.rows``), reordered with it, so supervision needs no lookup."""
    claims = solo_families(with_bad_rows(generate_claims(5_000, seed=5)))
    claims = claims.take(pa.array(np.random.default_rng(1).permutation(claims.num_rows)))
    batch = engine.settle_by_bucket(family_plan, claims, buckets(family_plan, claims), registry)
    assert batch.rows is not None and len(batch.rows) == batch.results.num_rows > 0
    assert claims.column("claim_id").take(pa.array(batch.rows)).to_pylist() == \
        batch.results.column("claim_id").to_pylist()
    bucket = buckets(family_plan, claims)[batch.rows]
    assert (np.diff(bucket) >= 0).all()  # in bucket order


def test_read_ahead_overlaps_one_item_keeps_order_and_raises():
    """Pass 1's reading ahead: the next item is produced while the caller holds this one
    (the producer waits for a signal the caller gives only while holding an item), never
    more than one ahead, in order; an error producing an item reaches the caller."""
    held = threading.Event()
    produced = []

    def items():
        for k in range(6):
            if k:
                assert held.wait(10), "item produced only after the caller let go"
                held.clear()
            produced.append(k)
            yield k
        raise ValueError("bad file")
    got = []
    with pytest.raises(ValueError, match="bad file"):
        for k in runner.read_ahead(items()):
            assert len(produced) <= k + 2  # at most one ahead
            got.append(k)
            held.set()
            deadline = time.monotonic() + 10
            while len(produced) < min(k + 2, 6):  # the next one comes while we hold this
                assert time.monotonic() < deadline, "the next item was not read ahead"
                time.sleep(0.01)
    assert got == list(range(6))

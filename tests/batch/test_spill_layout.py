"""What pass 1 of the partitioned mode spills (issue 14, s19): the read columns plus the input
row and the bucket (no claim-id hash: the duplicate check keeps the hashes in memory, grouped
by their top byte), text read as dictionary codes kept as codes in an IPC stream (each batch
may bring a dictionary of its own) and decoded when pass 2 reads the partition back. The
outputs stay the in-memory run's bytes."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core import spill
from yibao.core.generate import write_claims
from yibao.core.runner import run_settle
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path

FILES = ("claims.parquet", "rejects.parquet")


def _files(folder) -> dict:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture
def coded_folder(tmp_path):
    """Two files whose tier and setting are Parquet dictionaries with their values in
    different orders (row groups of 700 rows), and a duplicate claim id across the files."""
    folder = tmp_path / "in"
    folder.mkdir()
    claims = _claims(3_000, seed=23)
    ids = claims.column("claim_id").to_pylist()
    ids[2_000] = ids[10]
    claims = claims.set_column(claims.schema.get_field_index("claim_id"), "claim_id",
                               pa.array(ids, pa.string()))
    first, second = claims.slice(0, 1_500), claims.slice(1_500)
    reversed_second = second.take(pa.array(np.arange(second.num_rows)[::-1]))
    for name, part in (("a.parquet", first), ("b.parquet", reversed_second)):
        write_claims(part, folder / name, row_group_size=700)
    return folder


def _spilled(monkeypatch) -> list:
    """The schema of every spill file as pass 1 closes it."""
    schemas = []
    real = spill.Spill.close

    def close(self):
        real(self)
        for p in range(self.count):
            if self.path(p).exists():
                with pa.OSFile(str(self.path(p)), "rb") as source:
                    schemas.append(ipc.open_stream(source).schema)
    monkeypatch.setattr(spill.Spill, "close", close)
    return schemas


def test_the_spill_holds_codes_and_no_claim_hash(plan, registry, coded_folder, tmp_path,
                                                 monkeypatch):
    schemas = _spilled(monkeypatch)
    run_settle(plan, coded_folder, tmp_path / "p", registry=registry, progress=False,
               partitions=3)
    assert len(schemas) == 3
    read = pq.read_schema(next(coded_folder.iterdir()))
    for schema in schemas:
        assert "_chash" not in schema.names
        assert schema.names[-2:] == ["_row", "_bucket"]
        for name in ("tier", "setting"):
            assert read.field(name).type == spill.SPILL_CODES  # as the files hold them
            assert schema.field(name).type == spill.SPILL_CODES
        assert schema.field("claim_id").type == pa.string()


def test_coded_spill_settles_as_in_memory(plan, registry, coded_folder, tmp_path,
                                          monkeypatch):
    """Dictionaries that differ between batches and files, a duplicate claim id across
    files, rejects: every partition count gives the in-memory bytes."""
    monkeypatch.setattr(spill, "SPILL_FLUSH", 100)  # several batches in every stream
    run_settle(plan, coded_folder, tmp_path / "m", registry=registry, progress=False)
    for parts in (1, 3, 7):
        run_settle(plan, coded_folder, tmp_path / f"p{parts}", registry=registry,
                   progress=False, partitions=parts)
        assert _files(tmp_path / f"p{parts}") == _files(tmp_path / "m")
    rejects = pq.read_table(tmp_path / "m" / "rejects.parquet")
    assert "duplicate_claim_id" in rejects.column("reason").to_pylist()


def test_spill_read_decodes_the_codes(tmp_path):
    """A partition read back has string columns, whatever dictionaries its batches had."""
    s = spill.Spill(tmp_path, 1)
    for values in (["b", "a", "b"], ["c", None]):
        t = pa.table({"tier": pa.array(values).dictionary_encode(),
                      "_row": pa.array(range(len(values)), pa.int64())})
        s.add(t, np.zeros(t.num_rows, np.int32))
        s._flush(0)
    s.close()
    back = s.read(0)
    assert back.schema.field("tier").type == pa.string()
    assert back.column("tier").to_pylist() == ["b", "a", "b", "c", None]
    assert s.read(0, ["_row"]).column("_row").to_pylist() == [0, 1, 2, 0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**64 - 1) | st.sampled_from(
    [0, 1, 2**63, 2**64 - 1, 2**56 - 1, 2**56]), max_size=60), max_size=6))
def test_candidate_hashes_are_the_repeated_ones(batches):
    """Grouped by top byte batch by batch, the repeated hashes found between the passes are
    exactly those occurring more than once over all batches, sorted, once each."""
    check = spill.KeyCheck.__new__(spill.KeyCheck)
    check.claims = [spill._by_top_byte(np.array(b, dtype=np.uint64)) for b in batches]
    values, counts = np.unique(np.array([v for b in batches for v in b], dtype=np.uint64),
                               return_counts=True)
    got = check.candidate_hashes()
    assert got.dtype == np.uint64
    assert got.tolist() == values[counts > 1].tolist()

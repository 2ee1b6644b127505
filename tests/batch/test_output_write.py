"""How the outputs are written (issue 14): the settings chosen by measurement and the writer
thread, which must change neither the bytes nor what an error looks like."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import manifest
from yibao.core.manifest import ParquetOut
from yibao.core.runner import run_settle


def _results_like(n: int) -> pa.Table:
    """A results-shaped table: unique claim ids and money columns."""
    return pa.table({"claim_id": pa.array([f"C{k:09d}" for k in range(n)]),
                     "basic": pa.array([(k * 7919) % 100_003 for k in range(n)], pa.int64()),
                     "self_pay": pa.array([k % 13 for k in range(n)], pa.int64())})


def test_claims_file_layout_per_column(plan, claims_file, tmp_path, registry):
    """The results' columns are written as manifest.write_options says: integers delta
    packed without a codec, hospital_id with a dictionary, other text plain and snappy
    without statistics, the date plain and snappy with statistics; no other dictionary."""
    run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False)
    meta = pq.ParquetFile(tmp_path / "o" / "claims.parquet").metadata
    schema = meta.schema.to_arrow_schema()
    assert meta.num_rows > 0
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            column, typ = meta.row_group(g).column(c), schema.field(c).type
            name = column.path_in_schema
            assert column.has_dictionary_page == (name == "hospital_id"), name
            if pa.types.is_integer(typ):
                assert "DELTA_BINARY_PACKED" in column.encodings, name
                assert column.compression == "UNCOMPRESSED", name
            else:
                assert column.compression == "SNAPPY", name
            assert column.is_stats_set == (not pa.types.is_string(typ)), name


def test_write_options_keep_the_base_for_nested_columns():
    """A schema with a nested column keeps WRITE_OPTIONS whole (per-column settings name
    leaf paths, which a list column's name is not)."""
    schema = pa.schema([("claim_id", pa.string()), ("dx", pa.list_(pa.string())),
                        ("fen", pa.int64())])
    assert manifest.write_options(schema) == manifest.WRITE_OPTIONS


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_writer_thread_bytes_follow_the_rows_only(tmp_path, monkeypatch, ahead):
    """Whatever the pieces and however far the writer thread runs ahead, the same rows give
    the same file."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 1_000)
    table = _results_like(5_555)
    whole = ParquetOut(tmp_path / "whole.parquet", table.schema)
    whole.write(table)
    whole.close()
    pieces = ParquetOut(tmp_path / "pieces.parquet", table.schema, ahead=ahead)
    for start in range(0, table.num_rows, 377):
        pieces.write(table.slice(start, 377))
    pieces.close()
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.read_table(tmp_path / "pieces.parquet").equals(table)
    assert pq.ParquetFile(tmp_path / "pieces.parquet").metadata.num_row_groups == 6


def test_writer_thread_error_is_raised_by_close(tmp_path, monkeypatch):
    """A write that fails on the writer thread is not lost: the next write() raises it once
    the thread has failed, else close()."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 100)
    table = _results_like(250)
    out = ParquetOut(tmp_path / "x.parquet", table.schema)

    class Failing:
        def __init__(self, writer):
            self.writer = writer

        def write_table(self, *args, **kwargs):
            raise OSError("disk full")

        def close(self):
            self.writer.close()
    out.writer = Failing(out.writer)
    with pytest.raises(OSError, match="disk full"):
        out.write(table)
        out.write(table)
        out.close()
    out.abort()


def test_spill_files_are_plain_arrow_without_dictionaries(plan, claims_file, tmp_path,
                                                           registry, monkeypatch):
    """Pass 1's spill is an Arrow IPC stream without compression (spill.SPILL_OPTIONS; issue
    14, s17: lz4 was a quarter of pass 1's CPU at 50M) whose only dictionary columns are the
    text the sources hold as codes (spill.SPILL_CODES, s19), and the partitioned run still
    gives the in-memory run's bytes."""
    import pyarrow.ipc as ipc
    from yibao.core import spill
    seen = []
    real = spill.Spill.read

    def read(self, p, columns=None, **kw):
        if self.path(p).exists():
            seen.append(self.path(p).read_bytes())
        return real(self, p, columns, **kw)
    monkeypatch.setattr(spill.Spill, "read", read)
    run_settle(plan, claims_file, tmp_path / "p", registry=registry, progress=False,
               partitions=3)
    assert len(seen) == 3
    for data in seen:
        table = ipc.open_stream(pa.BufferReader(data)).read_all()
        assert all(f.type == spill.SPILL_CODES for f in table.schema
                   if pa.types.is_dictionary(f.type))
        assert bytes.fromhex("04224d18") not in data  # no lz4 frame
        assert len(data) >= table.nbytes  # the buffers as they are
    run_settle(plan, claims_file, tmp_path / "m", registry=registry, progress=False)
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "p" / name).read_bytes() == (tmp_path / "m" / name).read_bytes()

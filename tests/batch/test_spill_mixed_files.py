"""Partitioned runs over files that hold the same text column differently (review of issue
14, s19): pass 1 spills a column read as dictionary codes as its codes, and each partition is
one Arrow IPC stream with one schema. A folder of extracts where one file stores tier and
setting as Parquet dictionaries and another as plain strings (written by different tools)
must settle as in memory, in either file order, not stop with Arrow's "different schema"."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import spill
from yibao.core.generate import write_claims
from yibao.core.runner import run_settle
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path

FILES = ("claims.parquet", "rejects.parquet")


def _files(folder) -> dict:
    return {name: (folder / name).read_bytes() for name in FILES}


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with every dictionary column decoded to strings."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


@pytest.mark.parametrize("coded_first", [True, False])
def test_coded_and_plain_files_settle_as_in_memory(plan, registry, tmp_path, monkeypatch,
                                                   coded_first):
    monkeypatch.setattr(spill, "SPILL_FLUSH", 100)  # several batches in every stream
    folder = tmp_path / "in"
    folder.mkdir()
    claims = _claims(3_000, seed=29)
    coded, plain = claims.slice(0, 1_500), _plain(claims.slice(1_500))
    first, second = (coded, plain) if coded_first else (plain, coded)
    write_claims(first, folder / "a.parquet", row_group_size=700)
    write_claims(second, folder / "b.parquet", row_group_size=700)
    schemas = [pq.read_schema(folder / n).field("tier").type for n in ("a.parquet", "b.parquet")]
    assert spill.SPILL_CODES in schemas and pa.string() in schemas  # the case under test
    run_settle(plan, folder, tmp_path / "m", registry=registry, progress=False)
    for parts in (1, 3):
        run_settle(plan, folder, tmp_path / f"p{parts}", registry=registry, progress=False,
                   partitions=parts)
        assert _files(tmp_path / f"p{parts}") == _files(tmp_path / "m")

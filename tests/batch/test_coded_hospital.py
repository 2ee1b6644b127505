"""A run reads ``hospital_id`` as Parquet dictionary codes (arrow_io.CODED_COLUMNS, issue 14,
h21): ~1.7k hospitals in 2M claims were decoded to 2M strings when read and those strings
gathered at random into settlement order; the codes are gathered instead and the text built
from the small dictionary (engine._text_in_order). The results carry the same text: every
byte of claims.parquet is that of the decoded read, in memory and in partitions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core import arrow_io, engine, read_ahead, sources
from yibao.core.arrow_io import CODED_TYPE
from yibao.core.generate import generate_claims, write_claims
from yibao.core.runner import run_settle

CLAIMS = generate_claims(engine.CHUNK_ROWS + 5_000, 83)


def _files(folder: Path, claims: pa.Table, parts: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cut = np.linspace(0, claims.num_rows, parts + 1).astype(int)
    for k in range(parts):
        write_claims(claims.slice(cut[k], cut[k + 1] - cut[k]), folder / f"part-{k}.parquet")
    return folder


def test_a_runs_read_keeps_the_hospitals_as_codes(tmp_path):
    path = _files(tmp_path, CLAIMS.slice(0, 500), 1) / "part-0.parquet"
    table = sources.Source(path).read(["claim_id", "hospital_id"])
    assert table.schema.field("hospital_id").type == CODED_TYPE
    assert table.column("hospital_id").cast(pa.string()).to_pylist() == \
        CLAIMS.column("hospital_id").slice(0, 500).to_pylist()
    assert "hospital_id" in read_ahead.CODED_COLUMNS


@pytest.mark.parametrize("nulls", [False, True])
def test_the_identity_gather_decodes_codes_of_chunks_with_their_own_dictionaries(nulls):
    first = pa.array(["H7", "H2", "H7", "H9"]).dictionary_encode()
    second = pa.array(["H3", None if nulls else "H2", "H3"]).dictionary_encode()
    column = pa.chunked_array([first, second])
    assert not first.dictionary.equals(second.dictionary)
    order = np.array([6, 0, 4, 1, 5, 3, 2], dtype=np.int64)
    got = engine._text_in_order(column, order)
    assert got.type == pa.string()
    assert got.to_pylist() == [column.to_pylist()[i] for i in order]


def _with_some_hospitals_missing(claims: pa.Table) -> pa.Table:
    """A few null hospital ids: the coded gather's fallback (decoded, then gathered)."""
    at = claims.schema.get_field_index("hospital_id")
    missing = pa.array(np.arange(claims.num_rows) % 997 == 5)
    return claims.set_column(at, "hospital_id",
                             pc.if_else(missing, pa.scalar(None, pa.string()),
                                        claims.column("hospital_id")))


@pytest.mark.parametrize("claims,parts,partitions", [
    (CLAIMS, 2, None), (CLAIMS, 2, 3), (_with_some_hospitals_missing(CLAIMS), 1, None)],
    ids=["memory", "partitions", "nulls"])
def test_claims_parquet_is_the_bytes_of_the_decoded_read(plan, registry, tmp_path, monkeypatch,
                                                         claims, parts, partitions):
    folder = _files(tmp_path / "in", claims, parts)
    run_settle(plan, folder, tmp_path / "coded", registry, progress=False,
               partitions=partitions)
    monkeypatch.setattr(read_ahead, "CODED_COLUMNS", ("principal_dx",))
    monkeypatch.setattr(arrow_io, "CODED_COLUMNS", ("principal_dx",))
    run_settle(plan, folder, tmp_path / "plain", registry, progress=False,
               partitions=partitions)
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "coded" / name).read_bytes() == \
            (tmp_path / "plain" / name).read_bytes(), name

"""An in-memory run reads ``principal_dx`` as Parquet dictionary codes (p18,
read_ahead.coded_file). pyarrow refuses a ``read_dictionary`` name that a file lacks or holds
as a list (KeyError, a traceback), so a claims file without diagnoses (a policy without
grouping settles it) or with them as lists must be read as it is: the same results as the
partitioned path, which never asks for codes (Hypothesis found the missing column in
tests/outputs/test_explain_index_generated.py)."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.core.read_ahead import coded_file
from yibao.core.runner import run_settle
from yibao.dsl.compiler import compile_policy

REFERENCE = Path(__file__).resolve().parents[2] / "city_configs" / "reference"


def _claims(kind: str) -> pa.Table:
    claims = generate_claims(3_000, seed=31)
    at = claims.schema.get_field_index("principal_dx")
    if kind == "none":
        return claims.remove_column(at)
    if kind == "list":
        return claims.set_column(at, "principal_dx", pa.array(
            [[d] for d in claims.column(at).to_pylist()], pa.list_(pa.string())))
    return claims.set_column(at, "principal_dx", pa.array(range(claims.num_rows), pa.int64()))


@pytest.mark.parametrize("kind", ["none", "list", "numbers"])
def test_a_file_without_text_diagnoses_settles_in_memory_as_partitioned(tmp_path, kind):
    path = tmp_path / "claims.parquet"
    pq.write_table(_claims(kind), path, row_group_size=500)
    policy = compile_policy(str(REFERENCE))
    run_settle(policy, path, tmp_path / "memory", progress=False)
    run_settle(policy, path, tmp_path / "parts", progress=False, partitions=2)
    for name in ("claims.parquet", "rejects.parquet"):
        memory = pq.read_table(tmp_path / "memory" / name)
        parts = pq.read_table(tmp_path / "parts" / name)
        assert memory.sort_by("claim_id").equals(parts.sort_by("claim_id")), name
    assert pq.read_table(tmp_path / "memory" / "claims.parquet").num_rows > 2_000


def test_text_diagnoses_are_read_as_codes(tmp_path):
    path = tmp_path / "claims.parquet"
    pq.write_table(generate_claims(100, seed=32), path)
    with coded_file(path) as f:
        assert pa.types.is_dictionary(f.read(columns=["principal_dx"]).schema[0].type)

"""The Spark engine writes the per-claim identity columns (person_id, hospital_id,
discharge_date) and the national names exactly as the local engine does (issue 15)."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import write_claims
from yibao.core.runner import run_settle

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark


@pytest.mark.parametrize("names", ["yibao", "national"])
def test_spark_identity_and_national_names_match_local(plan, claims, tmp_path, registry,
                                                       names):
    folder = tmp_path / "in"
    folder.mkdir()
    write_claims(claims.slice(0, 2500), folder / "a.parquet")
    write_claims(claims.slice(2500), folder / "b.parquet", row_group_size=1000)
    run_settle(plan, folder, tmp_path / "local", registry=registry, progress=False,
               names=names)
    run_settle(plan, folder, tmp_path / "spark", registry=registry, progress=False,
               engine="spark", partitions=3, names=names)
    got = tmp_path / "spark" / "claims.parquet"
    assert got.read_bytes() == (tmp_path / "local" / "claims.parquet").read_bytes()
    first = {"yibao": ["claim_id", "person_id", "hospital_id", "discharge_date"],
             "national": ["setl_id", "psn_no", "fixmedins_code", "enddate"]}[names]
    assert pq.read_schema(got).names[:4] == first

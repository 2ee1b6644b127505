"""The Spark engine (PySpark 4, local mode) gives the local engine's results byte for byte:
same rows, same order, same rejects, same control totals."""
from __future__ import annotations

import pyarrow as pa
import pytest

from yibao.core.generate import generate_claims, write_claims
from yibao.core.runner import run_settle

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark


def test_spark_matches_local_row_for_row(family_plan, claims, tmp_path, registry):
    from .test_runner import solo_families, with_bad_rows
    folder = tmp_path / "in"
    folder.mkdir()
    t = with_bad_rows(solo_families(claims))
    write_claims(t.slice(0, 2500), folder / "a.parquet")
    write_claims(t.slice(2500), folder / "b.parquet", row_group_size=1000)
    local = run_settle(family_plan, folder, tmp_path / "local", registry=registry,
                       progress=False, partitions=5)
    spark = run_settle(family_plan, folder, tmp_path / "spark", registry=registry,
                       progress=False, engine="spark", partitions=3)
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert spark.totals.as_dict() == local.totals.as_dict()
    assert spark.totals.rejected_rows == 5 and spark.exit_code == 1


def test_spark_writes_the_local_provider_files(tmp_path, registry):
    """A plan with a provider part: hospitals.parquet and pools.parquet from the partitions'
    sums merged on the driver, byte for byte the local engine's; per-pool totals alike."""
    import json
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy("city_configs/jinhua", registry=registry)
    folder = tmp_path / "in"
    folder.mkdir()
    claims = generate_claims(4_000, 17)
    write_claims(claims.slice(0, 1_500), folder / "a.parquet")
    write_claims(claims.slice(1_500), folder / "b.parquet")
    local = run_settle(plan, folder, tmp_path / "local", registry=registry, progress=False)
    spark = run_settle(plan, folder, tmp_path / "spark", registry=registry, progress=False,
                       engine="spark", partitions=3)
    for name in ("claims.parquet", "rejects.parquet", "hospitals.parquet", "pools.parquet"):
        assert (tmp_path / "spark" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert spark.pools == local.pools and sum(p["points"] for p in spark.pools.values()) > 0
    manifest = json.loads((tmp_path / "spark" / "manifest.json").read_text())
    assert manifest["outputs"]["pools.parquet"]["rows"] == len(plan.provider.pools)

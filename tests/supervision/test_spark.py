"""Supervision after a Spark run (issue 16: "rules run on the same batch and partitions as
settlement"): the runner supervises the staged results whatever engine settled them, so
`--engine spark` writes the local engine's flags, indicators and claims, byte for byte."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.runner import run_settle
from supervision_helpers import FLAGS, HEADER, _random_claims, city

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

OUT = ("flags.parquet", "hospital_indicators.parquet", "claims.parquet")


def test_spark_run_gives_the_local_flags(tmp_path):
    plan = city(tmp_path, FLAGS)
    (tmp_path / "policy.yb").write_text(HEADER + FLAGS, encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(_random_claims(11, 400)), tmp_path / "in.parquet",
                   row_group_size=70)
    local = run_settle(plan, tmp_path / "in.parquet", tmp_path / "local", progress=False)
    spark = run_settle(plan, tmp_path / "in.parquet", tmp_path / "spark", progress=False,
                       engine="spark", partitions=3)
    assert spark.engine == "spark" and local.supervision and \
        spark.supervision == local.supervision
    for name in OUT:
        assert (tmp_path / "spark" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name

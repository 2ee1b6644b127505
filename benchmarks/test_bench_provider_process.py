"""Issue 14's provider scenario, whole process: `yibao settle` of one DRG pool on a 600-row
decision-table grouper vs a DuckDB script doing the same Parquet → Parquet (see
provider_process.py for the city, the table and the SQL). Fresh processes, alternating runs.
Run:
  cd /work/main && .venv/bin/python -m pytest benchmarks/test_bench_provider_process.py -q -s
(``YIBAO_BENCH_SIZES`` sets the claim count, 1M by default.)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provider_process as proc  # noqa: E402


def test_duckdb_agrees_with_yibao_20k(tmp_path):
    """Same case classes, points and patient-paid per claim, same per-hospital points and
    patient-paid: the two sides settle the same pool."""
    info = proc.build(tmp_path, 20_000)
    assert info["rows"] == 600
    proc.run(proc.yibao_cmd(tmp_path, tmp_path / "y"))
    proc.run(proc.duckdb_cmd(tmp_path, tmp_path / "d", info["budget"]))
    proc.agree(tmp_path / "y", tmp_path / "d")


def test_bench_provider_process(tmp_path, size):
    r = proc.row(tmp_path, size, rounds=3)
    print(f"\nprovider whole process, {size:,} claims, {r['rows']}-row table: yibao "
          f"{r['yibao_s']:.2f} s, DuckDB {r['duckdb_s']:.2f} s, ratio {r['ratio']:.2f}x")

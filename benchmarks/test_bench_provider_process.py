"""Issue 14's provider scenario, whole process: `yibao settle` of one DRG pool on a 600-row
decision-table grouper vs a DuckDB script doing the same Parquet → Parquet (see
provider_process.py for the city, the table and the SQL). Fresh processes, alternating runs.
Run:
  cd /work/main && .venv/bin/python -m pytest benchmarks/test_bench_provider_process.py -q -s
(``YIBAO_BENCH_SIZES`` sets the claim count, 1M by default.)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def provider_folder(tmp_path_factory, size):
    folder = tmp_path_factory.mktemp(f"provider_process_{size}")
    return folder, proc.build(folder, size)


def test_bench_provider_process(provider_folder, size):
    folder, info = provider_folder
    y_cmd = proc.yibao_cmd(folder, folder / "y")
    d_cmd = proc.duckdb_cmd(folder, folder / "d", info["budget"])
    ys, ds = [], []
    for _ in range(3):
        for cmd, times in ((y_cmd, ys), (d_cmd, ds)):
            start = time.perf_counter()
            proc.run(cmd)
            times.append(time.perf_counter() - start)
    proc.agree(folder / "y", folder / "d")
    print(f"\nprovider whole process, {size:,} claims, {info['rows']}-row table: yibao "
          f"{min(ys):.2f} s, DuckDB {min(ds):.2f} s, ratio {min(ds) / min(ys):.2f}x")

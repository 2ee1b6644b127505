"""Shared fixtures for the settlement benchmarks.

Sizes come from ``--bench-sizes`` or ``YIBAO_BENCH_SIZES`` (comma-separated claim counts,
default ``1000000`` so a quick run stays short; the full run is ``1000000,5000000``). Each
size's claims are ``generate_claims(n, seed=7)``, generated once per session and cached as
Parquet under the session's temp dir (the Parquet→Parquet benchmarks read that file).

``timings`` is a session dict ``(size, name) -> mean seconds`` so a later benchmark can put
its ratio to yibao into ``benchmark.extra_info``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import installed  # noqa: F401  (commands timed with bytecode, as installed)

from yibao.core.generate import generate_claims
from yibao.dsl.compiler import compile_policy

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_SIZES = "1000000"


def load_peers():
    """benchmarks/peers.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("yibao_bench_peers", BENCH_DIR / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_addoption(parser):
    parser.addoption("--bench-sizes", default=None,
                     help="comma-separated claim counts (default $YIBAO_BENCH_SIZES or 1000000)")


def bench_sizes(config) -> list[int]:
    raw = config.getoption("--bench-sizes") or os.environ.get("YIBAO_BENCH_SIZES", DEFAULT_SIZES)
    return [int(s.replace("_", "")) for s in raw.split(",") if s.strip()]


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        sizes = bench_sizes(metafunc.config)
        metafunc.parametrize("size", sizes, ids=[f"{s // 1000}k" for s in sizes], scope="session")


@pytest.fixture(scope="session")
def plan():
    return compile_policy(str(REPO / "city_configs" / "reference"))


@pytest.fixture(scope="session")
def peers():
    return load_peers()


@pytest.fixture(scope="session")
def timings() -> dict:
    return {}


@pytest.fixture(scope="session")
def _claims_cache(tmp_path_factory):
    return {"dir": tmp_path_factory.mktemp("claims"), "tables": {}}


@pytest.fixture(scope="session")
def claims_parquet(_claims_cache, size) -> Path:
    """Path of the size's claims as Parquet (written once per session)."""
    path = _claims_cache["dir"] / f"claims_{size}.parquet"
    if not path.exists():
        table = generate_claims(size, seed=7)
        pq.write_table(table, path)
        _claims_cache["tables"] = {size: table}  # keep one size in memory at a time
    return path


@pytest.fixture(scope="session")
def claims(_claims_cache, claims_parquet, size):
    """The size's claims as an in-memory Arrow table."""
    tables = _claims_cache["tables"]
    if size not in tables:
        tables.clear()
        tables[size] = pq.read_table(claims_parquet)
    return tables[size]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    """Print each benchmark's extra_info (ratios to yibao, claims/s, memory) after the table."""
    session = getattr(config, "_benchmarksession", None)
    rows = [b for b in getattr(session, "benchmarks", []) if b.extra_info]
    if not rows:
        return
    terminalreporter.section("benchmark extra_info")
    for bench in sorted(rows, key=lambda b: b.name):
        info = ", ".join(f"{k}={v}" for k, v in bench.extra_info.items())
        terminalreporter.write_line(f"{bench.name}: {info}")

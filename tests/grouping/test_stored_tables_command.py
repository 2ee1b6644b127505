"""The compiled CHS-DRG tables on disk, through `yibao settle` in fresh processes (issue 14,
c18): a fresh install with an empty cache folder settles, the first run stores the compiled
tables and the next loads them, and a damaged entry is compiled again — the results' bytes
are the same every time."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims

REPO = Path(__file__).resolve().parents[2]
RESULTS = ("claims.parquet", "rejects.parquet", "hospitals.parquet", "pools.parquet",
           "flags.parquet")


@pytest.fixture(scope="module")
def claims(tmp_path_factory):
    path = tmp_path_factory.mktemp("stored") / "claims.parquet"
    pq.write_table(generate_claims(600, seed=11), path)
    return path


def settle(claims, out: Path, cache: Path, **env) -> dict:
    """The result files' bytes of `yibao settle jinhua CLAIMS` with cache folder ``cache``;
    its stderr under the key ``"stderr"``."""
    environ = {k: v for k, v in os.environ.items() if k != "YIBAO_NO_CACHE"}
    environ.update(YIBAO_CACHE_DIR=str(cache), **env)
    done = subprocess.run([sys.executable, "-m", "yibao.dsl.cli", "settle",
                           str(REPO / "city_configs" / "jinhua"), str(claims), "--out",
                           str(out), "--overwrite", "--no-progress"], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    return {"stderr": done.stderr, **{name: (out / name).read_bytes() for name in RESULTS}}


def same_results(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k != "stderr"} == \
        {k: v for k, v in b.items() if k != "stderr"}


def stored(cache: Path) -> list:
    return sorted((cache / "drg").glob("*.pickle"))


def test_first_run_stores_the_tables_the_next_loads_them_same_results(claims, tmp_path):
    cache = tmp_path / "cache"
    cold = settle(claims, tmp_path / "cold", cache)
    [entry] = stored(cache)
    written = entry.stat().st_mtime_ns
    warm = settle(claims, tmp_path / "warm", cache)
    assert same_results(warm, cold) and warm["stderr"] == cold["stderr"]
    assert stored(cache) == [entry] and entry.stat().st_mtime_ns == written  # loaded, kept
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated: compiled again, replaced
    assert same_results(settle(claims, tmp_path / "damaged", cache), cold)
    assert stored(cache) == [entry] and entry.stat().st_size > 1_000_000
    off = settle(claims, tmp_path / "off", tmp_path / "unused", YIBAO_NO_CACHE="1")
    assert same_results(off, cold) and stored(tmp_path / "unused") == []


def test_a_cache_folder_that_cannot_be_made_leaves_the_results_alone(claims, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    fresh = settle(claims, tmp_path / "fresh", tmp_path / "cache")
    blocked = settle(claims, tmp_path / "blocked", tmp_path / "a_file" / "cache")
    assert same_results(blocked, fresh)
    # the compiled-policy cache's one line (docs/cli.md); nothing from the tables' cache
    said = [line for line in blocked["stderr"].splitlines() if line not in
            fresh["stderr"].splitlines()]
    assert len(said) == 1 and said[0].startswith("yibao: compiled policy not cached ("), said

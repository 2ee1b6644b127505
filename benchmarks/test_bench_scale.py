"""Scale: `yibao settle` end to end (Parquet in, results folder out) in memory and partitioned.

Each run is a fresh `yibao settle` subprocess, timed from outside, its peak RSS read from
inside (``VmHWM``). Claims are ``generate_claims`` chunks of 1M (seed = chunk number) with
claim ids prefixed by the chunk, so ids stay unique; persons recur across chunks.

* ``test_partitioned_vs_in_memory`` (default, 1M claims): per-claim time of the partitioned
  path (``--partitions 8``) against the in-memory path on the same input;
* ``test_memory_limit_bounds_peak_rss`` (default, 2M claims; ``YIBAO_BENCH_LIMIT_CLAIMS``,
  ``YIBAO_BENCH_LIMITS`` change them): the peak RSS of the whole ``yibao settle`` process at
  ``--memory-limit`` 200M (and the other limits given) is at most the fixed overhead —
  measured here as the peak of the same command on a one-claim input: interpreter, imports,
  compiled policy — plus ``LIMIT_MARGIN`` × the limit, or × ``LIMIT_FLOOR`` for a smaller
  limit (docs/scale.md, "What --memory-limit bounds");
* ``test_50m_claims_in_4gb`` (``YIBAO_BENCH_50M=1``; ~5 min on 2 quiet cores once the
  input exists): 50M claims with ``--memory-limit 4G``, run ``YIBAO_BENCH_50M_RUNS`` times
  (2), alternating with ``YIBAO_BENCH_5M_RUNS`` (3) in-memory runs of the first 5M —
  asserts peak RSS ≤ 4 GiB and a per-claim time of the best partitioned run at most 1× the
  best in-memory run's (issue 14's target); the ratio of the medians is reported beside it.

  cd benchmarks && YIBAO_BENCH_50M=1 YIBAO_BENCH_DIR=/work/bench50m \
      ../.venv/bin/python -m pytest test_bench_scale.py -q -s -k 50m
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core.generate import generate_claims, write_claims

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "city_configs" / "reference"
CHUNK = 1_000_000
GiB = 1 << 30

# Peak RSS in KiB: VmHWM, the high-water mark of this process's own memory since its exec.
# Not ru_maxrss: Linux carries that over fork and exec, so a child of a big pytest process
# would report the parent's peak.
RUNNER = ("import resource, sys\n"
          "from yibao.dsl.cli import main\n"
          "rc = main(sys.argv[1:])\n"
          "try:\n"
          "    hwm = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
          "               if line.startswith('VmHWM:'))\n"
          "except OSError:\n"
          "    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "print('MAXRSS', hwm, file=sys.stderr)\n"
          "sys.exit(rc)\n")


def write_input(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range((n + CHUNK - 1) // CHUNK):
        path = folder / f"claims-{k:03d}.parquet"
        if path.exists():
            continue
        t = generate_claims(min(CHUNK, n - k * CHUNK), seed=k)
        ids = pc.binary_join_element_wise(f"K{k:03d}", t.column("claim_id"), "")
        write_claims(t.set_column(0, "claim_id", ids), path)
    return folder


def settle(claims: Path, out: Path, *extra) -> dict:
    """Run `yibao settle` in a fresh process: wall seconds, peak RSS bytes, rows settled."""
    cmd = [sys.executable, "-c", RUNNER, "settle", str(POLICY), str(claims),
           "--out", str(out), "--overwrite", "--no-progress", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert done.returncode in (0, 1), done.stderr[-3000:]
    rss = int(done.stderr.rsplit("MAXRSS", 1)[1].split()[0]) * 1024
    summary = json.loads((out / "summary.json").read_text())
    assert summary["balanced"]
    return {"seconds": round(seconds, 2), "peak_rss_gib": round(rss / GiB, 2),
            "peak_rss_mib": round(rss / (1 << 20)),
            "rows": summary["input"]["rows"], "mode": summary["mode"],
            "partitions": summary["partitions"],
            "claims_per_s": round(summary["input"]["rows"] / seconds)}


def report(name: str, numbers: dict) -> None:
    print(f"\n{name}: {json.dumps(numbers)}")
    with open(os.environ.get("YIBAO_BENCH_SCALE_LOG", "/tmp/bench_scale.jsonl"), "a") as f:
        f.write(json.dumps({"name": name, **numbers}) + "\n")


def test_partitioned_vs_in_memory(tmp_path):
    claims = write_input(tmp_path / "in", 1_000_000)
    memory = settle(claims, tmp_path / "mem")
    parts = settle(claims, tmp_path / "part", "--partitions", "8")
    assert memory["mode"] == "memory" and parts["mode"] == "partitioned"
    assert (tmp_path / "mem" / "claims.parquet").read_bytes() == \
        (tmp_path / "part" / "claims.parquet").read_bytes()
    ratio = round(parts["seconds"] / memory["seconds"], 2)
    report("1M", {"memory": memory, "partitioned": parts, "ratio": ratio})


MEMORY_RUNS = int(os.environ.get("YIBAO_BENCH_5M_RUNS", 3))  # in-memory 5M runs
PARTITIONED_RUNS = int(os.environ.get("YIBAO_BENCH_50M_RUNS", 2))  # partitioned 50M runs
TARGET_50M = 1.0  # issue 14: per claim, partitioned at 50M vs in memory at 5M (best/best)


def per_claim(runs: list, pick) -> float:
    """Seconds per claim of the run ``pick`` (min: the best, median) chooses."""
    return pick([r["seconds"] / r["rows"] for r in runs])


def alternating(memory, partitioned, memory_runs: int, partitioned_runs: int) -> tuple:
    """The two commands run alternately (M P M P M for 3 and 2), so that a load that comes
    and goes on the shared machine falls on both; (memory runs, partitioned runs)."""
    mem, big = [], []
    for i in range(max(memory_runs, partitioned_runs)):
        if i < memory_runs:
            mem.append(memory())
        if i < partitioned_runs:
            big.append(partitioned())
    return mem, big


@pytest.mark.skipif(os.environ.get("YIBAO_BENCH_50M") != "1", reason="set YIBAO_BENCH_50M=1")
def test_50m_claims_in_4gb(benchmark, tmp_path_factory):
    """One 5M in-memory run moved 7.2-9.1 s between two quiet runs minutes apart (issue 14),
    so one run of each cannot decide a ratio near 1: ``MEMORY_RUNS`` in-memory runs and
    ``PARTITIONED_RUNS`` partitioned ones, alternating; the ratio asserted (and quoted by the
    target table) is of the best runs, the ratio of the medians is reported beside it."""
    root = Path(os.environ.get("YIBAO_BENCH_DIR") or tmp_path_factory.mktemp("scale"))
    claims = write_input(root / "in50m", 50_000_000)
    small = root / "in5m"
    small.mkdir(exist_ok=True)
    for k in range(5):
        target = small / f"claims-{k:03d}.parquet"
        if not target.exists():
            target.symlink_to(claims / f"claims-{k:03d}.parquet")
    runs = {}

    def both():
        runs["memory"], runs["partitioned"] = alternating(
            lambda: settle(small, root / "out5m"),
            lambda: settle(claims, root / "out50m", "--memory-limit", "4G"),
            MEMORY_RUNS, PARTITIONED_RUNS)
    benchmark.pedantic(both, rounds=1, iterations=1)
    mem, big = runs["memory"], runs["partitioned"]
    best = per_claim(big, min) / per_claim(mem, min)
    median = per_claim(big, statistics.median) / per_claim(mem, statistics.median)
    numbers = {"memory_5m_s": [r["seconds"] for r in mem],
               "partitioned_50m_s": [r["seconds"] for r in big],
               "per_claim_ratio": round(best, 3), "per_claim_ratio_median": round(median, 3),
               "partitions": big[0]["partitions"],
               "peak_rss_gib_50m": max(r["peak_rss_gib"] for r in big),
               "peak_rss_gib_5m": max(r["peak_rss_gib"] for r in mem)}
    benchmark.extra_info.update(numbers)
    report("50M", {**numbers, "memory_5m": mem, "partitioned_50m": big})
    assert all(r["mode"] == "partitioned" for r in big)
    assert all(r["peak_rss_gib"] <= 4.0 for r in big)
    assert best <= TARGET_50M, numbers


LIMIT_MARGIN = 1.5  # peak RSS above the fixed overhead, per byte of --memory-limit
LIMIT_FLOOR = 200 * (1 << 20)  # below this, the minimum batch and partition sizes dominate
MiB = 1 << 20


@pytest.mark.parametrize("limit", os.environ.get("YIBAO_BENCH_LIMITS", "200M").split(","))
def test_memory_limit_bounds_peak_rss(tmp_path_factory, limit):
    from yibao.dsl.commands.settle import memory_size
    root = tmp_path_factory.mktemp("limit")
    n = int(os.environ.get("YIBAO_BENCH_LIMIT_CLAIMS", 2_000_000))
    claims = write_input(root / "in", n)
    tiny = root / "tiny.parquet"
    write_claims(generate_claims(1, seed=1), tiny)
    fixed = settle(tiny, root / "out-tiny")
    run = settle(claims, root / "out", "--memory-limit", limit)
    budget = fixed["peak_rss_mib"] * MiB + LIMIT_MARGIN * max(memory_size(limit), LIMIT_FLOOR)
    report(f"memory-limit {limit}", {"claims": n, "fixed_mib": fixed["peak_rss_mib"],
                                      "budget_mib": round(budget / MiB), **run})
    assert run["mode"] == "partitioned"
    assert run["peak_rss_mib"] * MiB <= budget

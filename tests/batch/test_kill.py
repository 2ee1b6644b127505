"""A run killed (SIGKILL) at any point and started again gives the same results as a run that
was never interrupted; a killed run never leaves a half-written results file in place."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from yibao.core.generate import generate_claims, write_claims

from .conftest import REFERENCE

RESULTS = ("claims.parquet", "rejects.parquet")


def command(claims, out, *extra):
    return [sys.executable, "-m", "yibao.dsl.cli", "settle", str(REFERENCE),
            str(claims), "--out", str(out), "--partitions", "8", "--no-progress", *extra]


def wait_for(path, proc, timeout=60.0):
    """Wait until ``path`` exists (the run reached that step) or the process ends."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None and not path.exists():
        time.sleep(0.005)


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    (folder / "in").mkdir()
    claims = generate_claims(200_000, seed=3)
    for k in range(4):
        write_claims(claims.slice(k * 50_000, 50_000), folder / "in" / f"part-{k}.parquet",
                     row_group_size=20_000)
    return folder


def test_killed_runs_then_rerun_match_an_uninterrupted_run(big_input):
    src = big_input / "in"
    clean = big_input / "clean"
    subprocess.run(command(src, clean), check=True, capture_output=True)
    expected = {n: (clean / n).read_bytes() for n in RESULTS}
    # kill points: during partitioning, as settling starts, while results are written
    points = [big_input / "killed" / ".yibao-run" / "spill",
              big_input / "killed" / ".yibao-run" / "spill" / "part-00003.arrow",
              big_input / "killed" / ".yibao-run" / "claims.parquet"]
    killed_mid_run = 0
    for k, point in enumerate(points):
        out = big_input / "killed"
        args = command(src, out, "--overwrite") if k else command(src, out)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(point, proc)
        os.kill(proc.pid, signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            killed_mid_run += 1
            # nothing half-written is ever in place: results are either absent or complete
            for name in RESULTS:
                assert not (out / name).exists() or (out / name).read_bytes() == expected[name]
    assert killed_mid_run >= 2
    subprocess.run(command(src, big_input / "killed", "--overwrite"), check=True,
                   capture_output=True)
    assert {n: (big_input / "killed" / n).read_bytes() for n in RESULTS} == expected
    assert not (big_input / "killed" / ".yibao-run").exists()

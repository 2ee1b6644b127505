"""`yibao settle` ends its process without the interpreter's teardown (dsl/cli.py ``entry``,
issue 14, w16): the exit code, everything printed and the published outputs are those of an
ordinary exit; other commands keep the ordinary exit (their atexit hooks run)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from yibao.core.generate import generate_claims, write_claims

ROOT = Path(__file__).resolve().parents[2]
HOOK = ("import atexit, sys; atexit.register(lambda: print('atexit ran', flush=True)); "
        "from yibao.dsl.cli import entry; sys.argv = ['yibao'] + sys.argv[1:]; entry()")


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HOOK, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.parametrize("claims_rows", [1_000])
def test_settle_exits_at_once_with_its_code_output_and_results(tmp_path, claims_rows):
    """Exit code 1 (a reject), the summary printed, the results published, the lock gone."""
    claims = generate_claims(claims_rows, seed=4)
    ids = claims.column("claim_id").to_pylist()
    ids[5] = None  # one reject: exit code 1
    write_claims(claims.set_column(0, "claim_id", pa.array(ids, pa.string())),
                 tmp_path / "c.parquet")
    done = _run("settle", ROOT / "city_configs" / "reference", tmp_path / "c.parquet",
                "--out", tmp_path / "out", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "atexit ran" not in done.stdout  # no teardown
    assert "results in" in done.stdout and "rejected" in done.stdout  # flushed
    assert (tmp_path / "out" / "manifest.json").is_file()
    again = _run("settle", ROOT / "city_configs" / "reference", tmp_path / "c.parquet",
                 "--out", tmp_path / "out", "--no-progress", "--overwrite")
    assert again.returncode == 1, again.stderr  # the folder's lock went with the process


def test_other_commands_exit_as_usual():
    done = _run("check", ROOT / "city_configs" / "reference")
    assert done.returncode == 0, done.stderr
    assert "atexit ran" in done.stdout



def test_settle_whose_output_cannot_be_written_does_not_exit_0(tmp_path):
    """stdout on a full disk (/dev/full): not success, and one line saying why."""
    write_claims(generate_claims(200, seed=4), tmp_path / "c.parquet")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", HOOK, "settle",
                               str(ROOT / "city_configs" / "reference"),
                               str(tmp_path / "c.parquet"), "--out", str(tmp_path / "out"),
                               "--no-progress"], stdout=full, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    assert done.returncode != 0 and "No space left on device" in done.stderr


def test_a_failed_flush_at_the_fast_exit_is_not_success(monkeypatch):
    """Output still buffered when ``main`` returns and lost at the flush (a closed pipe): the
    fast exit gave the run's 0; the interpreter's own exit gives 120 there (review)."""
    import io
    from yibao.dsl import cli

    class ClosedPipe(io.StringIO):
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")
    codes = []
    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(sys, "argv", ["yibao", "settle"])
    monkeypatch.delitem(sys.modules, "pyspark", raising=False)  # a Spark test ran before
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    monkeypatch.setattr(cli.os, "_exit", codes.append)  # returns here, so entry goes on
    with pytest.raises((SystemExit, OSError)):
        cli.entry()
    assert codes == [120]

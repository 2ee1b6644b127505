"""One run per output folder, and results that appear all at once (docs/scale.md,
"Reliability"), checked with real processes:

- a second run on a folder another run holds is refused (exit 2) naming the holder's pid, host
  and start time; the lock of a killed run blocks nothing;
- a run killed (SIGKILL) at every step of publishing leaves the folder holding the old complete
  result set or the new one — never a mix, never a half — and ``--overwrite`` deletes the old
  set only after the new one is in place.

The steps are reached through the test hook ``YIBAO_TEST_PUBLISH_HOOK`` (core/manifest.py
``publish_checkpoint``): ``kill:<step>`` kills the run there, ``pause:<step>`` holds it there."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from yibao.core.generate import generate_claims, write_claims
from yibao.core.manifest import OUTPUTS, PUBLISH_HOOK, PUBLISH_STEPS

from .conftest import REFERENCE


def command(claims, out, *extra):
    return [sys.executable, "-m", "yibao.dsl.cli", "settle", str(REFERENCE),
            str(claims), "--out", str(out), "--no-progress", *extra]


def run(claims, out, *extra, hook=None):
    env = dict(os.environ)
    env.pop(PUBLISH_HOOK, None)
    if hook:
        env[PUBLISH_HOOK] = hook
    return subprocess.run(command(claims, out, *extra), capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("publish")
    claims = generate_claims(3_000, seed=8)
    write_claims(claims.slice(0, 1_000), folder / "old.parquet")
    write_claims(claims, folder / "new.parquet")
    return folder


def visible_set(out) -> dict:
    """What a reader of ``out`` sees: {output name: bytes} of the names that resolve."""
    return {n: (out / n).read_bytes() for n in OUTPUTS if (out / n).exists()}


def assert_consistent(view: dict) -> None:
    """The manifest describes exactly the Parquet files beside it, and the summary agrees."""
    manifest = json.loads(view["manifest.json"])
    summary = json.loads(view["summary.json"])
    for name, meta in manifest["outputs"].items():
        assert hashlib.sha256(view[name]).hexdigest() == meta["sha256"], name
    assert summary["settled"]["rows"] == manifest["outputs"]["claims.parquet"]["rows"]
    assert sorted(n for n in view if n.endswith(".parquet")) == sorted(manifest["outputs"])


def test_a_second_run_on_a_held_folder_is_refused_naming_the_holder(inputs, tmp_path):
    out = tmp_path / "o"
    env = dict(os.environ, **{PUBLISH_HOOK: "pause:locked"})
    holder = subprocess.Popen(command(inputs / "old.parquet", out), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = out / ".yibao.lock"
        end = time.monotonic() + 60
        while time.monotonic() < end and not (lock.exists() and str(holder.pid) in
                                              lock.read_text()):
            assert holder.poll() is None
            time.sleep(0.02)
        second = run(inputs / "new.parquet", out, "--overwrite")
        assert second.returncode == 2
        message = second.stderr.strip()
        assert len(message.splitlines()) == 1 and "Traceback" not in message
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "started 20" in message and str(out) in message
        assert not (out / "current").exists()  # the refused run published nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    third = run(inputs / "new.parquet", out)  # the killed holder's lock is gone with it
    assert third.returncode == 0, third.stderr
    assert_consistent(visible_set(out))


def test_killed_at_every_publish_step_the_folder_holds_one_complete_set(inputs, tmp_path):
    reference = tmp_path / "reference"
    assert run(inputs / "new.parquet", reference).returncode == 0
    new_claims = (reference / "claims.parquet").read_bytes()
    out = tmp_path / "o"
    assert run(inputs / "old.parquet", out).returncode == 0
    old_claims = (out / "claims.parquet").read_bytes()
    assert old_claims != new_claims
    seen = set()
    for step in PUBLISH_STEPS:
        killed = run(inputs / "new.parquet", out, "--overwrite", hook=f"kill:{step}")
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        view = visible_set(out)
        assert_consistent(view)
        assert view["claims.parquet"] in (old_claims, new_claims), step
        seen.add("new" if view["claims.parquet"] == new_claims else "old")
        if view["claims.parquet"] == new_claims:  # back to the old set for the next step
            assert run(inputs / "old.parquet", out, "--overwrite").returncode == 0
    assert seen == {"old", "new"}  # kills before the switch keep the old, after it the new
    assert run(inputs / "new.parquet", out, "--overwrite").returncode == 0
    assert visible_set(out)["claims.parquet"] == new_claims
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers == sorted([".yibao.lock", "current", "runs", *(
        n for n in OUTPUTS if (out / n).exists())])
    assert len(list((out / "runs").iterdir())) == 1


def test_a_killed_first_run_shows_nothing_or_everything(inputs, tmp_path):
    """No earlier results: a run killed before its switch leaves no result name resolving."""
    for step in PUBLISH_STEPS:
        out = tmp_path / step
        killed = run(inputs / "old.parquet", out, hook=f"kill:{step}")
        assert killed.returncode == -signal.SIGKILL
        view = visible_set(out)
        if view:
            assert_consistent(view)
        assert bool(view) == (PUBLISH_STEPS.index(step) >= PUBLISH_STEPS.index("switched"))


def test_results_of_an_earlier_yibao_are_replaced_only_when_the_new_set_is_ready(
        inputs, tmp_path):
    """Plain result files (written before run folders existed) stay readable until the switch."""
    out = tmp_path / "o"
    assert run(inputs / "old.parquet", out).returncode == 0
    plain = visible_set(out)
    for name in list(out.iterdir()):
        if name.name != ".yibao.lock":
            subprocess.run(["rm", "-rf", str(name)], check=True)
    for name, data in plain.items():
        (out / name).write_bytes(data)
    for step in ("staged", "moved", "linked"):
        killed = run(inputs / "new.parquet", out, "--overwrite", hook=f"kill:{step}")
        assert killed.returncode == -signal.SIGKILL
        assert visible_set(out) == plain, step
    assert run(inputs / "new.parquet", out, "--overwrite").returncode == 0
    assert_consistent(visible_set(out))
    assert visible_set(out)["claims.parquet"] != plain["claims.parquet"]

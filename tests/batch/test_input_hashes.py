"""The input files' sha256 for manifest.json are computed on a thread from the run's start
(manifest.InputHashes, issue 14, w15): the manifest still names each input's exact hash, and
a failed run stops the hashing instead of waiting for it."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest

from yibao.core import manifest
from yibao.core.generate import generate_claims, write_claims
from yibao.core.runner import run_settle


def test_manifest_names_each_input_hash(plan, registry, tmp_path):
    (tmp_path / "in").mkdir()
    for k in range(3):
        write_claims(generate_claims(500, seed=k), tmp_path / "in" / f"c{k}.parquet")
    run_settle(plan, tmp_path / "in", tmp_path / "out", registry=registry, progress=False)
    inputs = json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"]
    assert len(inputs) == 3
    for entry in inputs:
        with open(entry["path"], "rb") as f:
            assert entry["sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_stopped_hashing_ends_early(tmp_path, monkeypatch):
    """``stop()`` ends the thread at its next chunk (None for the files not finished)."""
    path, other = tmp_path / "big.bin", tmp_path / "other.bin"
    path.write_bytes(b"x" * (1 << 24))  # two 8 MiB chunks
    other.write_bytes(b"y")
    started, release = threading.Event(), threading.Event()
    real = hashlib.sha256

    class Slow:  # holds the thread inside its first chunk until the test stops it
        def __init__(self):
            self.h = real()

        def update(self, data):
            started.set()
            release.wait(5)
            self.h.update(data)

        def hexdigest(self):
            return self.h.hexdigest()
    monkeypatch.setattr(manifest.hashlib, "sha256", Slow)
    hashes = manifest.InputHashes([path, other])
    assert started.wait(5)
    hashes.stop()
    release.set()
    assert hashes.get() == {path: None, other: None}


def test_failed_run_stops_hashing(plan, registry, tmp_path, monkeypatch):
    """A run that fails stops its input hashing (the files are not read to the end)."""
    write_claims(generate_claims(300, seed=1), tmp_path / "in.parquet")
    stops = []
    real = manifest.InputHashes.stop
    monkeypatch.setattr(manifest.InputHashes, "stop", lambda self: (stops.append(1), real(self)))
    from yibao.core import runner

    def broken(*args, **kwargs):
        raise RuntimeError("engine bug")
    monkeypatch.setattr(runner, "settle_piece_streamed", broken)
    with pytest.raises(RuntimeError, match="engine bug"):
        run_settle(plan, tmp_path / "in.parquet", tmp_path / "out", registry=registry,
                   progress=False)
    assert stops == [1]

"""claims.parquet hashed while it is written (manifest.FileDigest, issue 14, w16): the digest
must be the file's sha256 whatever the row groups, and manifest.json must name the sha256 of
every output as published, also when the file is rewritten after it was written (national
names after supervision)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from yibao.core import manifest
from yibao.core.manifest import ParquetOut, sha256_file
from yibao.core.runner import run_settle

from .conftest import REFERENCE


@pytest.mark.parametrize("rows", [0, 1, 5_000, 300_000])
def test_digest_is_the_files_sha256(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(manifest, "ROW_GROUP", 1_000)  # many row groups, many updates
    table = pa.table({"a": pa.array(range(rows), pa.int64()),
                      "b": pa.array([f"x{i}" for i in range(rows)], pa.string())})
    out = ParquetOut(tmp_path / "t.parquet", table.schema, digest=True)
    for k in range(0, rows, 777):
        out.write(table.slice(k, 777))
    out.close()
    digest, (_, size, _) = out.sha256
    assert digest == sha256_file(tmp_path / "t.parquet")
    assert size == (tmp_path / "t.parquet").stat().st_size


def _manifest_hashes_match(folder) -> None:
    outputs = json.loads((folder / "manifest.json").read_text())["outputs"]
    assert "claims.parquet" in outputs
    for name, entry in outputs.items():
        assert entry["sha256"] == sha256_file(folder / name), name


def test_manifest_names_the_published_files(plan, claims_file, tmp_path, registry,
                                            monkeypatch):
    """... and an in-memory run does not read claims.parquet again to hash it."""
    read_again = []
    real = manifest.sha256_file
    monkeypatch.setattr(manifest, "sha256_file",
                        lambda path, stop=None: read_again.append(Path(path)) or real(path, stop))
    run_settle(plan, claims_file, tmp_path / "m", registry=registry, progress=False)
    staged = {p.name for p in read_again if p.parent.name == manifest.STAGING}
    assert staged == {"rejects.parquet"}
    monkeypatch.undo()
    _manifest_hashes_match(tmp_path / "m")


def test_a_file_rewritten_after_it_was_hashed_is_hashed_again(plan, claims_file, tmp_path,
                                                               registry, monkeypatch):
    """The digest of the file as written is not used once the file was replaced (here: the
    staged claims.parquet replaced by a copy before the manifest, as national names after
    supervision do, and its digest spoiled so that using it would show)."""
    real = manifest.run_manifest

    def replaced(plan_, summary, sources, out, *args):
        path = out.stage("claims.parquet")
        copy = path.with_name("copy.parquet")
        copy.write_bytes(path.read_bytes())
        copy.replace(path)
        out.digests["claims.parquet"] = ("0" * 64, out.digests["claims.parquet"][1])
        return real(plan_, summary, sources, out, *args)
    monkeypatch.setattr("yibao.core.runner.run_manifest", replaced)
    run_settle(plan, claims_file, tmp_path / "m", registry=registry, progress=False)
    _manifest_hashes_match(tmp_path / "m")


def test_national_names_run_hashes_the_rewritten_file(tmp_path, registry, claims_file):
    from yibao.dsl.compiler import compile_policy
    plan = compile_policy(REFERENCE, registry=registry)
    run_settle(plan, claims_file, tmp_path / "n", registry=registry, progress=False,
               names="national")
    _manifest_hashes_match(tmp_path / "n")


def test_each_part_hashed_is_sent_to_disk_as_written(tmp_path, monkeypatch):
    """The digest starts the writeback of every byte it hashes, each range once and in
    order (issue 14, w19: the publishing fsync then has little left), and the real call
    takes a file's descriptor and range (no error on this system or without the call)."""
    from yibao.core import manifest
    sent = []
    monkeypatch.setattr(manifest, "start_writeback",
                        lambda fd, offset, length: sent.append((offset, length)))
    path = tmp_path / "grow.bin"
    digest = manifest.FileDigest(path)
    path.write_bytes(b"")
    for part in (b"abc", b"", b"defgh"):
        with open(path, "ab") as f:
            f.write(part)
        digest.update()
    assert sent == [(0, 3), (3, 0), (3, 5)]
    monkeypatch.undo()
    with open(path, "rb") as f:
        manifest.start_writeback(f.fileno(), 0, 8)  # the real call: no error


def test_a_python_without_ctypes_still_writes(tmp_path, monkeypatch):
    """Where ``ctypes`` cannot be imported (a Python built without it) the writeback is left
    to the publishing fsync: no ImportError ends the run (review of w19, session 9)."""
    import sys
    monkeypatch.setitem(sys.modules, "ctypes", None)  # `import ctypes` raises ImportError
    monkeypatch.setattr(manifest, "_SYNC_FILE_RANGE", False)  # not looked up yet
    path = tmp_path / "f.bin"
    path.write_bytes(b"12345678")
    with open(path, "rb") as f:
        manifest.start_writeback(f.fileno(), 0, 8)
    assert manifest._SYNC_FILE_RANGE is None


def test_row_groups_are_written_while_the_digest_is_behind(tmp_path, monkeypatch):
    """The writer thread hands each row group's bytes to the digest's own thread and goes on
    to the next row group (issue 14, p20: the hash was on the writer's tail, the other core
    idle); the digest, however late, is still the file's."""
    monkeypatch.setattr(manifest, "ROW_GROUP", 1_000)
    behind = threading.Event()
    real = manifest.FileDigest.update

    def late(self):
        behind.wait(20)
        real(self)
    monkeypatch.setattr(manifest.FileDigest, "update", late)
    table = pa.table({"a": pa.array(range(5_000), pa.int64())})
    out = ParquetOut(tmp_path / "t.parquet", table.schema, ahead=0, digest=True)
    out.write(table)
    try:
        for written in list(out.queued):
            written.result(timeout=10)  # every row group written, none hashed yet
    finally:
        behind.set()
    out.close()
    assert out.sha256[0] == sha256_file(tmp_path / "t.parquet")

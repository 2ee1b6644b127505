"""The key index of format 2 (core/key_index.py, issue 13): `yibao explain --run OUT` of a
policy without a provider part reads the claim's rows from plain integer and byte files and
settles them in plain Python, so the whole command imports neither numpy nor pyarrow (nor
Lark, the policy coming from the compiled-policy cache); an index of the older format is not
used (one note, then the scan); every file of the index, and its folder, is fsynced before
the run is published."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.core.key_index import FORMAT, index_folder
from yibao.dsl.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"
HEAVY = ("numpy", "pyarrow", "pandas", "lark")

RUN_AS_PROGRAM = """
import json, sys
from yibao.dsl.cli import main
code = main(sys.argv[1:])
print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""


def run(capsys, *argv) -> tuple:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def settled_run(tmp_path_factory):
    """A reference-policy run with a key index: (claims file, results folder, claim ids);
    row 5 is rejected for its amounts, row 7's id is carried by two persons."""
    folder = tmp_path_factory.mktemp("plain")
    rows = generate_claims(800, seed=31).to_pylist()
    rows[5]["in_scope"] = rows[5]["total"] + 100
    rows.append(dict(rows[7], person_id="somebody else"))
    claims = pa.Table.from_pylist(rows, schema=generate_claims(1, seed=31).schema)
    path = folder / "claims.parquet"
    pq.write_table(claims, path, row_group_size=200)
    assert main(["settle", str(CONFIGS / "reference"), str(path), "--out",
                 str(folder / "out"), "--no-progress", "--key-index"]) == 1  # (rejects)
    return path, folder / "out", claims.column("claim_id").to_pylist()


def modules_of_explain(path, out, claim_id, *form) -> tuple:
    """(exit code, stdout, the modules loaded) of `yibao explain … --run OUT` in a fresh
    process (the compiled-policy cache warmed first, in this one)."""
    argv = ["explain", str(CONFIGS / "reference"), str(path), "--claim-id", claim_id,
            *form, "--run", str(out)]
    assert main(argv) == 0  # compiles (Lark) and caches the policy, as a first run would
    done = subprocess.run([sys.executable, "-c", RUN_AS_PROGRAM, *argv], capture_output=True,
                          text=True, timeout=300)
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return done.returncode, done.stdout, set(json.loads(line[len("MODULES "):]))


@pytest.mark.parametrize("form", [[], ["--json"]])
def test_explain_run_imports_neither_numpy_nor_pyarrow_nor_lark(settled_run, capsys, form):
    path, out, ids = settled_run
    claim_id = ids[17]
    code, text, loaded = modules_of_explain(path, out, claim_id, *form)
    capsys.readouterr()
    assert code == 0
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    scan = run(capsys, "explain", CONFIGS / "reference", path, "--claim-id", claim_id, *form)
    assert (0, text) == scan[:2]  # and it says what the scan says


def test_a_rejected_or_unknown_claim_through_plain_rows_is_refused_as_the_scan_refuses(
        settled_run, capsys, tmp_path):
    """The same one-line refusal (the reject's reason and message; not in the batch)."""
    path, out, ids = settled_run
    refusals = []
    for claim_id in ["no-such-claim", ids[5], ids[7]]:
        scan = run(capsys, "explain", CONFIGS / "reference", path, "--claim-id", claim_id)
        indexed = run(capsys, "explain", CONFIGS / "reference", path, "--claim-id", claim_id,
                      "--run", out)
        assert indexed == scan and scan[0] == 2
        refusals.append(scan[2])
    assert "not in the batch" in refusals[0] and "in_scope_exceeds_total" in refusals[1]
    assert "duplicate_claim_id" in refusals[2]


def test_an_index_of_the_older_format_is_not_used(settled_run, capsys, tmp_path):
    path, out, ids = settled_run
    meta_path = index_folder(out) / "index.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    older = dict(meta, format="yibao-key-index/1")
    meta_path.write_text(json.dumps(older), encoding="utf-8")
    try:
        scan = run(capsys, "explain", CONFIGS / "reference", path, "--claim-id", ids[6])
        indexed = run(capsys, "explain", CONFIGS / "reference", path, "--claim-id", ids[6],
                      "--run", out)
    finally:
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
    assert indexed[:2] == scan[:2] and scan[0] == 0
    note = indexed[2].strip().splitlines()
    assert len(note) == 1 and f"it is not a {FORMAT} index" in note[0]


def test_every_file_of_the_index_and_its_folder_are_fsynced(tmp_path, monkeypatch, capsys):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    path = tmp_path / "claims.parquet"
    pq.write_table(generate_claims(300, seed=3), path)
    code, _, err = run(capsys, "settle", CONFIGS / "reference", path, "--out",
                       tmp_path / "out", "--no-progress", "--key-index")
    assert code == 0, err
    files = {p.name for p in index_folder(tmp_path / "out").iterdir()}
    in_index = [Path(p) for p in synced if "explain-index" in p]
    assert files and files <= {p.name for p in in_index if p.parent.name == "explain-index"}
    assert any(p.name == "explain-index" for p in in_index)  # the folder's entries
    assert {"index.json", "ids.u64", "col0.values", "col0.text", "schema.arrow"} <= files


def test_a_blank_family_is_refused_through_the_index_as_by_the_scan(tmp_path, capsys):
    """Under a family key the family check acts (``Validator.acts``), so explain reads the
    index's rows through Arrow and the check rejects a blank family id as settle does."""
    from policy_texts import family_policy  # tests/ is on the path (tests/conftest.py)
    policy = tmp_path / "family.yb"
    policy.write_text(family_policy(), encoding="utf-8")
    rows = generate_claims(300, seed=8).to_pylist()
    rows[4]["family_id"] = "  "
    path = tmp_path / "claims.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=generate_claims(1, seed=8).schema), path)
    code, _, err = run(capsys, "settle", policy, path, "--out", tmp_path / "out",
                       "--no-progress", "--key-index")
    assert code == 1, err
    for claim_id in (rows[4]["claim_id"], rows[9]["claim_id"]):
        scan = run(capsys, "explain", policy, path, "--claim-id", claim_id)
        indexed = run(capsys, "explain", policy, path, "--claim-id", claim_id, "--run",
                      tmp_path / "out")
        assert indexed == scan
    assert scan[0] == 0 and indexed[2] == ""
    blank = run(capsys, "explain", policy, path, "--claim-id", rows[4]["claim_id"], "--run",
                tmp_path / "out")
    assert blank[0] == 2 and "family_id_blank" in blank[2]

"""`yibao explain --run OUT` reads the claim's key-mates from the key index `yibao settle`
wrote into OUT (core/key_index.py, issue 13) and prints, byte for byte, what explaining by
scanning the claims file prints: text, --json and --drg, every city, a person with many
claims, a family key, a second policy version, a rejected claim, an unknown id. An index that
no longer describes the inputs (a claims file rewritten, another policy, a run without one)
is not used: one note on stderr, and the scan's output."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import yibao.core.explain as core_explain
from yibao.core.generate import generate_claims
from yibao.core.generate_ltc import ltc_claims
from yibao.core.key_index import KeyIndex, index_folder
from yibao.dsl.cli import main
from policy_texts import family_policy  # tests/ is on the path (tests/conftest.py)

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"

FAMILY_POLICY = family_policy()
FORMS = ([], ["--json"], ["--drg"])


def run(capsys, *argv) -> tuple:
    """(exit code, stdout, stderr) of ``yibao ARGV``."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def with_rejects(claims: pa.Table) -> pa.Table:
    """``claims`` with a row rejected for its amounts (in_scope > total) and a claim id
    carried by two persons (both copies rejected)."""
    rows = claims.to_pylist()
    rows[5]["in_scope"] = rows[5]["total"] + 100
    twin = dict(rows[7], person_id="somebody else")
    return pa.Table.from_pylist(rows + [twin], schema=claims.schema)


def busiest(claims: pa.Table, key: str = "person_id") -> list:
    """The claims of the ``key`` value with the most claims."""
    counts = claims.group_by(key).aggregate([("claim_id", "count")])
    value = counts.sort_by([("claim_id_count", "descending")]).column(key)[0].as_py()
    return [r["claim_id"] for r in claims.select(["claim_id", key]).to_pylist()
            if r[key] == value]


def settled(capsys, policy, claims_path, out) -> None:
    code, _, err = run(capsys, "settle", policy, claims_path, "--out", out, "--no-progress",
                       "--key-index")
    assert code in (0, 1), err
    assert (index_folder(out) / "index.json").is_file()


def assert_same(capsys, policy, claims_path, out, claim_id, monkeypatch) -> tuple:
    """Explain ``claim_id`` by scanning and through the index, in every form: the same exit
    code and the same bytes, and no note (the index served: the scan is refused)."""
    outputs = []
    for form in FORMS:
        scan = run(capsys, "explain", policy, claims_path, "--claim-id", claim_id, *form)
        with monkeypatch.context() as m:
            m.setattr(core_explain, "read_key_mates", _no_scan)
            indexed = run(capsys, "explain", policy, claims_path, "--claim-id", claim_id,
                          *form, "--run", out)
        assert indexed == scan, (claim_id, form)
        outputs.append(scan)
    return outputs


def _no_scan(*args, **kwargs):
    raise AssertionError("the claims file was scanned although the index serves")


@pytest.mark.parametrize("city,seed,year", [("reference", 3, 2024), ("jinhua", 5, 2024),
                                            ("rizhao", 6, 2016), ("shanghai", 8, 2024)])
def test_every_city_explains_the_same_through_the_index(city, seed, year, tmp_path, capsys,
                                                        monkeypatch):
    claims = with_rejects(generate_claims(600, seed=seed, start_year=year))
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path, row_group_size=128)
    policy = CONFIGS / city
    settled(capsys, policy, path, tmp_path / "out")
    ids = claims.column("claim_id").to_pylist()
    many = busiest(claims)
    assert len(many) >= 3
    wanted = [many[-1], many[0], ids[0], ids[300], ids[5], ids[7], "no-such-claim"]
    codes = {}
    for claim_id in wanted:
        codes[claim_id] = assert_same(capsys, policy, path, tmp_path / "out", claim_id,
                                      monkeypatch)[0]
    explained = [c for c in wanted if codes[c][0] == 0]
    assert len(explained) >= 3
    assert all(codes[c][1].startswith("claim " + c) for c in explained)
    assert codes[ids[5]][0] == 2 and "in_scope_exceeds_total" in codes[ids[5]][2]
    assert codes[ids[7]][0] == 2 and "duplicate_claim_id" in codes[ids[7]][2]
    assert codes["no-such-claim"][0] == 2 and "not in the batch" in codes["no-such-claim"][2]


def test_feicheng_long_term_care_explains_the_same_through_the_index(tmp_path, capsys,
                                                                     monkeypatch):
    claims = ltc_claims(400, seed=4)
    path = tmp_path / "ltc.parquet"
    pq.write_table(claims, path, row_group_size=100)
    policy = CONFIGS / "feicheng"
    settled(capsys, policy, path, tmp_path / "out")
    ids = claims.column("claim_id").to_pylist()
    for claim_id in [busiest(claims)[-1], ids[1], ids[-1]]:
        code = assert_same(capsys, policy, path, tmp_path / "out", claim_id, monkeypatch)
        assert code[0][0] == 0


def test_a_family_key_plan_explains_the_same_through_the_index(tmp_path, capsys,
                                                               monkeypatch):
    policy = tmp_path / "family.yb"
    policy.write_text(FAMILY_POLICY, encoding="utf-8")
    claims = generate_claims(800, seed=12)
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path, row_group_size=200)
    settled(capsys, policy, path, tmp_path / "out")
    assert KeyIndex.open(tmp_path / "out").keys() == ["person_id", "family_id"]
    families = [r for r in claims.select(["claim_id", "person_id", "family_id"]).to_pylist()
                if r["family_id"] is not None]
    persons = {}
    for r in families:
        persons.setdefault(r["family_id"], {}).setdefault(r["person_id"], r["claim_id"])
    largest = max(persons.values(), key=len)
    assert len(largest) >= 2
    for claim_id in list(largest.values())[:3]:
        assert assert_same(capsys, policy, path, tmp_path / "out", claim_id,
                           monkeypatch)[0][0] == 0


def test_a_claim_under_the_second_version_explains_the_same(tmp_path, capsys, monkeypatch):
    source = (CONFIGS / "reference" / "policy.yb").read_text(encoding="utf-8")
    years = "effective 2024-01-01 to 2025-12-31"
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "policy_2024.yb").write_text(
        source.replace(years, "effective 2024-01-01 to 2024-12-31"), encoding="utf-8")
    (folder / "policy_2025.yb").write_text(
        source.replace(years, "effective 2025-01-01 to 2025-12-31")
        .replace("tier2, 3: 85%", "tier2, 3: 90%"), encoding="utf-8")
    claims = generate_claims(600, seed=13, years=2)
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path)
    settled(capsys, folder, path, tmp_path / "out")
    rows = claims.select(["claim_id", "discharge_date"]).to_pylist()
    later = [r["claim_id"] for r in rows if r["discharge_date"].year == 2025][:2]
    assert later
    for claim_id in later:
        text = assert_same(capsys, folder, path, tmp_path / "out", claim_id, monkeypatch)[0]
        assert text[0] == 0 and "policy year 2025" in text[1]


@pytest.fixture
def reference_run(tmp_path, capsys):
    claims = generate_claims(500, seed=21)
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path)
    settled(capsys, CONFIGS / "reference", path, tmp_path / "out")
    return claims, path, tmp_path / "out"


def explain_both(capsys, policy, path, out, claim_id) -> tuple:
    scan = run(capsys, "explain", policy, path, "--claim-id", claim_id)
    indexed = run(capsys, "explain", policy, path, "--claim-id", claim_id, "--run", out)
    return scan, indexed


def test_a_claims_file_rewritten_after_settle_is_read_again(reference_run, capsys):
    claims, path, out = reference_run
    rows = claims.to_pylist()
    rows[0]["total"] += 10_000  # the file changes under the index
    rows[0]["in_scope"] += 10_000
    pq.write_table(pa.Table.from_pylist(rows, schema=claims.schema), path)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    scan, indexed = explain_both(capsys, CONFIGS / "reference", path, out, rows[0]["claim_id"])
    assert indexed[:2] == scan[:2] and scan[0] == 0
    note = indexed[2].strip().splitlines()
    assert len(note) == 1 and "is not used" in note[0] and "changed since the run" in note[0]


def test_another_policy_or_other_claims_or_no_index_fall_back_with_a_note(
        reference_run, tmp_path, capsys):
    claims, path, out = reference_run
    claim_id = claims.column("claim_id")[3].as_py()
    scan, indexed = explain_both(capsys, CONFIGS / "jinhua", path, out, claim_id)
    assert indexed[:2] == scan[:2] and "policy's files differ" in indexed[2]
    copy = tmp_path / "copy.parquet"
    pq.write_table(claims, copy)
    scan, indexed = explain_both(capsys, CONFIGS / "reference", copy, out, claim_id)
    assert indexed[:2] == scan[:2] and "other claim files" in indexed[2]
    scan, indexed = explain_both(capsys, CONFIGS / "reference", path, tmp_path / "nothing",
                                 claim_id)
    assert indexed[:2] == scan[:2] and "there is none" in indexed[2]


def test_a_partitioned_run_writes_no_index_and_explain_scans(reference_run, tmp_path,
                                                             capsys):
    claims, path, _ = reference_run
    out = tmp_path / "parted"
    code, _, err = run(capsys, "settle", CONFIGS / "reference", path, "--out", out,
                       "--partitions", "2", "--no-progress", "--key-index")
    assert code == 0, err
    assert not index_folder(out).exists()
    claim_id = claims.column("claim_id")[9].as_py()
    scan, indexed = explain_both(capsys, CONFIGS / "reference", path, out, claim_id)
    assert indexed[:2] == scan[:2] and "there is none" in indexed[2]


def test_settle_without_key_index_writes_none_and_explain_scans(reference_run, tmp_path,
                                                                capsys):
    """Without `--key-index` (the default: a nightly run does not pay for it) the run's
    results are the same, the folder has no index, and explain --run says so and scans."""
    claims, path, indexed_out = reference_run
    out = tmp_path / "plain"
    code, _, err = run(capsys, "settle", CONFIGS / "reference", path, "--out", out,
                       "--no-progress")
    assert code == 0, err
    assert not index_folder(out).exists()
    assert pq.read_table(out / "claims.parquet").equals(
        pq.read_table(indexed_out / "claims.parquet"))
    claim_id = claims.column("claim_id")[13].as_py()
    scan, indexed = explain_both(capsys, CONFIGS / "reference", path, out, claim_id)
    assert indexed[:2] == scan[:2] and "there is none" in indexed[2]


def test_a_truncated_index_file_is_not_used(reference_run, capsys):
    claims, path, out = reference_run
    ids = index_folder(out) / "ids.u64"
    ids.write_bytes(ids.read_bytes()[:-8])
    claim_id = claims.column("claim_id")[11].as_py()
    scan, indexed = explain_both(capsys, CONFIGS / "reference", path, out, claim_id)
    assert indexed[:2] == scan[:2] and "ids.u64 is missing or incomplete" in indexed[2]


def test_an_index_that_fails_to_write_does_not_fail_the_run(tmp_path, capsys, monkeypatch):
    import yibao.core.key_index as key_index

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(key_index, "write_key_index", broken)
    claims = generate_claims(200, seed=2)
    path = tmp_path / "claims.parquet"
    pq.write_table(claims, path)
    code, _, err = run(capsys, "settle", CONFIGS / "reference", path, "--out",
                       tmp_path / "out", "--no-progress", "--key-index")
    assert code == 0 and "no key index for explain written (disk full)" in err
    assert (tmp_path / "out" / "claims.parquet").is_file()
    assert not index_folder(tmp_path / "out").exists()


def test_a_folder_of_files_explains_the_same_through_the_index(tmp_path, capsys,
                                                               monkeypatch):
    """A person's claims spread over three files: the index numbers the rows over the
    files as settle does, and --drg decodes the diagnosis lists at those rows of each file."""
    claims = with_rejects(generate_claims(900, seed=17))
    folder = tmp_path / "claims"
    folder.mkdir()
    for k in range(3):
        pq.write_table(claims.slice(k * 301, 301), folder / f"part{k}.parquet",
                       row_group_size=64)
    settled(capsys, CONFIGS / "jinhua", folder, tmp_path / "out")
    ids = claims.column("claim_id").to_pylist()
    for claim_id in [busiest(claims)[-1], ids[5], ids[7], ids[-1]]:
        assert_same(capsys, CONFIGS / "jinhua", folder, tmp_path / "out", claim_id,
                    monkeypatch)


def test_the_lookup_imports_neither_numpy_nor_pyarrow(reference_run):
    """Checking the index and finding the claim's rows is pure Python (mmap + bisect), so
    explain does it while the policy compiles, before pyarrow is imported."""
    import subprocess
    import sys
    claims, path, out = reference_run
    claim_id = claims.column("claim_id")[4].as_py()
    script = (
        "import sys\n"
        "from yibao.core.key_index import KeyIndex\n"
        f"index = KeyIndex.open({str(out)!r})\n"
        f"assert index.unusable([{str(path)!r}], {str(CONFIGS / 'reference')!r}) == ''\n"
        f"assert index.locate({claim_id!r})\n"
        "print(sorted(m for m in ('numpy', 'pyarrow') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("failing", ["settle_piece_streamed", "_write_rejects"])
def test_a_failed_run_leaves_no_index_thread_behind(tmp_path, monkeypatch, failing):
    """When the run fails (in the settlement, or writing the rejects after it), the index
    thread is waited for and its files removed before the failure reaches the caller: the
    caller discards the staging folder and releases the lock, and a thread still writing
    would write into the next run's folder (review)."""
    import threading
    from yibao.core import runner
    from yibao.dsl.compiler import compile_policy

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(runner, failing, broken)
    path = tmp_path / "claims.parquet"
    pq.write_table(generate_claims(3_000, seed=4), path)
    with pytest.raises(OSError, match="disk full"):
        runner.run_settle(compile_policy(str(CONFIGS / "reference")), path, tmp_path / "out",
                          progress=False, key_index=True)
    assert not [t for t in threading.enumerate() if t.name == "yibao-key-index"]
    assert not index_folder(tmp_path / "out").exists()
    assert not list((tmp_path / "out").glob(".yibao-run*"))


def test_explain_run_waits_for_its_lookup_when_the_policy_fails(reference_run, tmp_path,
                                                                 capsys, monkeypatch):
    """A policy that does not compile ends explain before it reads the index: the lookup
    thread is still waited for (never left running into the interpreter's exit; review)."""
    import threading
    import time
    from yibao.core import key_index
    claims, path, out = reference_run
    opened = key_index.KeyIndex.open

    def slow_open(run_dir):
        time.sleep(0.5)
        return opened(run_dir)
    monkeypatch.setattr(key_index.KeyIndex, "open", staticmethod(slow_open))
    broken = tmp_path / "broken.yb"
    broken.write_text("policy {", encoding="utf-8")
    code, _, err = run(capsys, "explain", broken, path, "--claim-id",
                       claims.column("claim_id")[0].as_py(), "--run", out)
    assert code == 2 and err
    assert not [t for t in threading.enumerate() if t.name == "yibao-key-index"]


def test_a_folder_of_files_with_different_column_types_explains_as_one_file(tmp_path, capsys):
    """One writer's string diagnoses, another's large_string, a third's dictionary: settle
    reads such a folder, so explaining a claim of it (by scanning) prints what explaining it
    from one file prints, instead of Arrow's "Unable to merge" (review)."""
    claims = generate_claims(900, seed=18)
    one = tmp_path / "one.parquet"
    pq.write_table(claims, one)
    folder = tmp_path / "claims"
    folder.mkdir()
    kinds = [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())]
    for k, kind in enumerate(kinds):
        part = claims.slice(k * 300, 300)
        at = part.schema.get_field_index("principal_dx")
        part = part.set_column(at, "principal_dx", part.column(at).cast(kind))
        pq.write_table(part, folder / f"part{k}.parquet")
    for claim_id in [busiest(claims)[-1], claims.column("claim_id")[450].as_py()]:
        for form in FORMS:
            code, out, err = run(capsys, "explain", CONFIGS / "jinhua", folder,
                                 "--claim-id", claim_id, *form)
            assert code == 0, err
            assert (code, out) == run(capsys, "explain", CONFIGS / "jinhua", one,
                                      "--claim-id", claim_id, *form)[:2]

"""`yibao explain --run OUT` of a city with supervision (issue 13, x18): the flags that concern
the claim are the run's own flags.parquet (and its pending_review), not a second settle and
supervision of the whole claims file, and the explanation's grouping oracle neither compiles
the CHS-DRG tables (the kernel's) nor builds the code normalisers' skeleton maps for claims
whose codes are all valid. The output is the scan's, byte for byte; a run that cannot say
(no flags.parquet) falls back to settling the file, with the same output."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import yibao.core.grouping.compile as drg_compile
import yibao.core.grouping.inputs as drg_inputs
import yibao.core.grouping.reference as drg_reference
import yibao.core.supervision.explain as sup_explain
from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "city_configs"


def run(capsys, *argv) -> tuple:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def jinhua_run(tmp_path_factory):
    """(claims path, run folder, the own-flagged claim with an effect, a claim its flag names)
    of 1,500 generated claims settled under jinhua with --key-index."""
    folder = tmp_path_factory.mktemp("flags")
    path = folder / "claims.parquet"
    pq.write_table(generate_claims(1500, seed=5), path, row_group_size=400)
    assert main(["settle", str(CONFIGS / "jinhua"), str(path), "--out", str(folder / "out"),
                 "--no-progress", "--key-index"]) in (0, 1)
    flags = pq.read_table(folder / "out" / "flags.parquet").to_pylist()
    held = next(r for r in flags if r["effect"] and r["related"])
    return path, folder / "out", held["claim_id"], held["related"][0]


def _no_whole_file(*args, **kwargs):
    raise AssertionError("the whole claims file was settled again for the flags")


@pytest.mark.parametrize("form", [[], ["--json"]])
def test_flags_come_from_the_run_and_match_the_scan(jinhua_run, capsys, monkeypatch, form):
    path, out, held, related = jinhua_run
    for claim_id in (held, related):
        scan = run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", claim_id, *form)
        with monkeypatch.context() as m:
            m.setattr(sup_explain, "explain_flags", _no_whole_file)
            indexed = run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", claim_id,
                          *form, "--run", out)
        assert indexed == scan
        assert scan[0] == 0 and ("supervision" in scan[1])
    assert "effect: the fund's payment of this claim" in run(
        capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", held, "--run", out)[1]


def test_explain_run_compiles_no_drg_tables_and_builds_no_skeleton_maps(jinhua_run, capsys,
                                                                       monkeypatch):
    path, out, held, _ = jinhua_run
    calls = {"compile": 0, "skeletons": 0}
    compile_tables, skeleton_maps = drg_compile._compile, drg_inputs._skeleton_maps

    def counted_compile(*args):
        calls["compile"] += 1
        return compile_tables(*args)

    def counted_maps(*args):
        calls["skeletons"] += 1
        return skeleton_maps(*args)
    monkeypatch.setattr(drg_compile, "_compile", counted_compile)
    monkeypatch.setattr(drg_inputs, "_skeleton_maps", counted_maps)
    for cached in (drg_compile._compiled, drg_inputs.normaliser, drg_reference._normalisers):
        cached.cache_clear()  # as in a fresh process
    code, text, _ = run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", held,
                        "--run", out)
    assert code == 0 and "group " in text
    assert calls == {"compile": 0, "skeletons": 0}
    for cached in (drg_compile._compiled, drg_inputs.normaliser, drg_reference._normalisers):
        cached.cache_clear()  # later tests compile with the real functions


def test_a_run_without_flags_parquet_falls_back_to_the_scan(jinhua_run, capsys, tmp_path):
    path, out, held, _ = jinhua_run
    scan = run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", held)
    flags = out / "current" / "flags.parquet"
    kept = flags.read_bytes()
    flags.unlink()
    try:
        assert run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", held,
                   "--run", out) == scan
    finally:
        flags.write_bytes(kept)


def test_normaliser_builds_its_maps_only_for_a_code_outside_the_universe():
    norm = drg_inputs.CodeNormaliser({"E14.000x001", "K22.301", "I10.x05"})
    assert norm("K22.301") == "K22.301" and norm(None) is None and norm._maps is None
    assert norm(" k22.301 ") == "K22.301" and norm._maps is not None
    assert norm("E14.000") == "E14.000x001" and norm("I10.05") == "I10.x05"
    assert norm("Z99") is None and norm(17) is None


def test_a_national_names_run_gives_the_scans_bytes(jinhua_run, capsys, tmp_path):
    """claims.parquet under national names has no ``claim_id`` column: the held amount is
    not looked up there, the file is settled again, and the output is the same."""
    path, _, held, related = jinhua_run
    out = tmp_path / "national"
    assert main(["settle", str(CONFIGS / "jinhua"), str(path), "--out", str(out),
                 "--no-progress", "--key-index", "--names", "national"]) in (0, 1)
    capsys.readouterr()
    for claim_id in (held, related):
        scan = run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", claim_id)
        assert run(capsys, "explain", CONFIGS / "jinhua", path, "--claim-id", claim_id,
                   "--run", out) == scan

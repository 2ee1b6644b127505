"""A run reads ``principal_dx`` as Parquet dictionary codes and keeps them to the decision
table (arrow_io.CODED_COLUMNS, issue 14, p18): the reader decoded 1M diagnoses only for the
table to hash them back into codes. The outputs must be those of the decoded column: in
memory (one file and several, read ahead or not), in partitions (whose batches decode the
column), and for a plan whose benefit layer reads the diagnosis as text."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core import arrow_io, engine, read_ahead, sources
from yibao.core.arrow_io import CODED_TYPE, normal_table, prepare
from yibao.core.generate import generate_claims, write_claims
from yibao.core.grouping import table as dtable
from yibao.core.manifest import TABLE_OUTPUTS
from yibao.core.plan import TEXT, ColumnDecl, Type
from yibao.core.runner import run_settle
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager
from policy_texts import (  # tests/ is on the path (tests/conftest.py)
    DECISION_TABLE_CSV as TABLE, DECISION_TABLE_POINTS as POINTS, DECISION_TABLE_POLICY as POLICY)

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))
CLAIMS = generate_claims(engine.CHUNK_ROWS + 3_000, 61)


def _city(folder: Path, policy: str = POLICY):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("policy.yb", policy), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (folder / name).write_text(text, encoding="utf-8")
    return compile_policy(str(folder), SHIPPED)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return _city(tmp_path_factory.mktemp("coded") / "city")


def _files(folder: Path, claims: pa.Table, parts: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cut = np.linspace(0, claims.num_rows, parts + 1).astype(int)
    for k in range(parts):
        write_claims(claims.slice(cut[k], cut[k + 1] - cut[k]), folder / f"part-{k}.parquet")
    return folder


def _outputs(folder: Path) -> dict:
    return {name: pq.read_table(folder / name) for name in TABLE_OUTPUTS
            if (folder / name).exists()}


def test_a_runs_read_keeps_the_diagnoses_as_codes(tmp_path):
    path = _files(tmp_path, CLAIMS.slice(0, 500), 1) / "part-0.parquet"
    table = sources.Source(path).read(["claim_id", "principal_dx", "procedures"])
    assert table.schema.field("principal_dx").type == CODED_TYPE
    assert table.column("principal_dx").cast(pa.string()).equals(
        pa.chunked_array([CLAIMS.column("principal_dx").slice(0, 500)]).cast(pa.string()))
    assert table.schema.field("procedures").type == pa.list_(pa.string())  # decoded as before


def test_partitioned_batches_decode_them(tmp_path):
    path = _files(tmp_path, CLAIMS.slice(0, 500), 1) / "part-0.parquet"
    for batch in sources.Source(path).batches(200, ["claim_id", "principal_dx"]):
        assert batch.schema.field("principal_dx").type == pa.string()


def test_normal_table_keeps_only_int32_codes_of_text_in_a_coded_column():
    dx = pa.array(["I21", None, "J18", "I21"]).dictionary_encode()
    other = pa.array(["a", "b", "a", None]).dictionary_encode()
    wide = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0, 0], pa.int64()),
                                          pa.array(["I21", "K35"]))
    got = normal_table(pa.table({"principal_dx": dx, "tier": other}))
    assert got.schema.field("principal_dx").type == CODED_TYPE
    assert got.schema.field("tier").type == pa.string()
    assert normal_table(pa.table({"principal_dx": wide})).schema.field(
        "principal_dx").type == pa.string()
    assert normal_table(pa.table({"principal_dx": dx}), codes=False).schema.field(
        "principal_dx").type == pa.string()
    assert arrow_io.coded_schema(got.schema).equals(got.schema)
    assert arrow_io.normal_schema(got.schema).field("principal_dx").type == pa.string()


def test_the_read_ahead_reads_the_same_columns_as_codes():
    assert tuple(read_ahead.CODED_COLUMNS) == tuple(arrow_io.CODED_COLUMNS)


@pytest.mark.parametrize("parts,partitions", [(1, None), (3, None), (2, 3)])
def test_a_provider_run_gives_the_outputs_of_the_decoded_diagnoses(city, tmp_path, parts,
                                                                   partitions):
    """The run (coded read, the provider part started before ``prepare`` on the codes)
    against the in-memory settle of the same claims with the diagnoses as text."""
    folder = _files(tmp_path / "in", CLAIMS, parts)
    run_settle(city, folder, tmp_path / "out", SHIPPED, progress=False, partitions=partitions)
    got = _outputs(tmp_path / "out")
    plain = normal_table(CLAIMS)
    assert plain.schema.field("principal_dx").type == pa.string()
    whole = engine.settle(city, plain, SHIPPED)
    claims = got["claims.parquet"].sort_by("claim_id")
    expected = whole.results.sort_by("claim_id")
    for name in ("group", "grouping_status", "case_class", "points", "self_pay"):
        assert claims.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert claims.column("points").null_count < claims.num_rows  # scored claims


def test_the_run_matches_a_run_of_a_file_without_a_dictionary_read(city, tmp_path,
                                                                    monkeypatch):
    """The same files, the coded read switched off (the decoded column, as before p18): the
    same bytes of every output table."""
    folder = _files(tmp_path / "in", CLAIMS, 2)
    run_settle(city, folder, tmp_path / "coded", SHIPPED, progress=False)
    monkeypatch.setattr(read_ahead, "CODED_COLUMNS", ())
    monkeypatch.setattr(arrow_io, "CODED_COLUMNS", ())
    run_settle(city, folder, tmp_path / "plain", SHIPPED, progress=False)
    coded, plain = _outputs(tmp_path / "coded"), _outputs(tmp_path / "plain")
    assert coded.keys() == plain.keys()
    for name in coded:
        assert coded[name].schema.equals(plain[name].schema), name
        assert coded[name].equals(plain[name]), name


def test_a_plan_reading_the_diagnosis_as_text_gets_it_decoded(city):
    """A plan that reads ``principal_dx`` as text (open, or a closed domain) is handed text by
    ``prepare``, not codes, and the same rows are accepted."""
    plain = normal_table(CLAIMS.slice(0, 400))
    coded = plain.set_column(plain.schema.get_field_index("principal_dx"), "principal_dx",
                             plain.column("principal_dx").dictionary_encode())
    assert normal_table(coded).schema.field("principal_dx").type == CODED_TYPE
    values = tuple(sorted(set(plain.column("principal_dx").drop_null().to_pylist())))
    for typ in (Type(TEXT), Type(TEXT, values[:200])):
        plan = replace(city, columns=city.columns + (ColumnDecl("principal_dx", typ),))
        got, want = prepare(plan, coded), prepare(plan, plain)
        assert got.rejects == want.rejects and got.n == want.n
        dx = got.columns["principal_dx"]
        if typ.domain is None:
            assert dx.type == pa.string() and dx.equals(want.columns["principal_dx"])
        else:
            assert np.array_equal(dx, want.columns["principal_dx"])


def test_the_table_groups_codes_as_it_groups_text(city):
    table = next(g for g in city.groupers if isinstance(g, dtable.DecisionTable))
    plain = normal_table(CLAIMS)
    coded = plain.set_column(plain.schema.get_field_index("principal_dx"), "principal_dx",
                             plain.column("principal_dx").dictionary_encode())
    assert dtable.group_table(table, coded).equals(dtable.group_table(table, plain))


def test_explain_of_a_decision_table_run_reads_its_index_as_it_scans(city, tmp_path, capsys):
    """A run with a key index over two files (the diagnoses read as codes, one dictionary
    per file): the index holds them as text, and `explain --run` of a claim prints what the
    scan of the files prints."""
    from yibao.dsl.cli import main
    folder = _files(tmp_path / "in", CLAIMS.slice(0, 3_000), 2)
    policy = tmp_path / "city"
    _city(policy)
    assert main(["settle", str(policy), str(folder), "--out", str(tmp_path / "out"),
                 "--no-progress", "--key-index"]) == 0
    capsys.readouterr()
    inpatient = [r["claim_id"] for r in CLAIMS.slice(0, 3_000).to_pylist()
                 if r["setting"] == "inpatient"]
    for claim_id in (inpatient[0], inpatient[-1]):
        scan = main(["explain", str(policy), str(folder), "--claim-id", claim_id])
        scanned = capsys.readouterr().out
        indexed = main(["explain", str(policy), str(folder), "--claim-id", claim_id,
                        "--run", str(tmp_path / "out")])
        out = capsys.readouterr()
        assert (indexed, out.out) == (scan, scanned) and out.err == ""
        assert scan == 0 and "points" in scanned

"""The settlement runner: one result whatever the mode, partition count or batch size; the
row order it promises; control totals; outputs published whole; the CLI's exit codes."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core import runner, spill
from yibao.core.engine import settle
from yibao.core.generate import write_claims
from yibao.core.partition import PartitionError, buckets
from yibao.core.runner import run_settle
from yibao.dsl.commands import settle as settle_cmd

from .conftest import REFERENCE


def outputs(folder):
    return {n: (folder / n).read_bytes() for n in ("claims.parquet", "rejects.parquet")}


def with_bad_rows(claims: pa.Table) -> pa.Table:
    """Copies of two claim ids (one copy far from the other) and a negative total."""
    ids = claims.column("claim_id").to_pylist()
    ids[100] = ids[4000]
    ids[2500] = ids[7]
    total = claims.column("total").to_pylist()
    total[50] = -1
    t = claims.set_column(0, "claim_id", pa.array(ids, pa.string()))
    return t.set_column(t.schema.get_field_index("total"), "total", pa.array(total, pa.int64()))


def solo_families(claims: pa.Table) -> pa.Table:
    """family_id filled with the person for persons without a household (the compiled plan
    rejects a null family_id as a null column; see the report)."""
    fam = pc.coalesce(claims.column("family_id"),
                      pc.binary_join_element_wise("solo-", claims.column("person_id"), ""))
    return claims.set_column(claims.schema.get_field_index("family_id"), "family_id", fam)


@pytest.mark.parametrize("policy", ["plan", "family_plan"])
def test_same_bytes_in_memory_and_any_partitioning(policy, request, claims, tmp_path,
                                                   monkeypatch, registry):
    plan = request.getfixturevalue(policy)
    path = tmp_path / "in.parquet"
    if policy == "family_plan":
        claims = solo_families(claims)
    write_claims(with_bad_rows(claims), path, row_group_size=700)
    base = run_settle(plan, path, tmp_path / "mem", registry=registry, progress=False)
    assert base.mode == "memory" and base.totals.rejected_rows == 5
    expected = outputs(tmp_path / "mem")
    monkeypatch.setattr(runner, "BATCH_ROWS", 333)
    monkeypatch.setattr(spill, "SPILL_FLUSH", 100)
    for parts in (2, 7, 64):
        s = run_settle(plan, path, tmp_path / f"p{parts}", registry=registry, progress=False,
                       partitions=parts)
        assert s.mode == "partitioned"
        assert outputs(tmp_path / f"p{parts}") == expected
        assert s.totals.as_dict() == base.totals.as_dict()


def test_memory_limit_chooses_partitioned_mode(plan, claims_file, tmp_path, registry):
    s = run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False,
                   memory_limit=200_000)
    assert s.mode == "partitioned" and s.partitions >= 2
    assert not (tmp_path / "o" / ".yibao-run").exists()  # temporary files removed


def test_results_are_engine_results_in_bucket_order(plan, claims, claims_file, tmp_path,
                                                    registry):
    run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False,
               partitions=3)
    got = pq.read_table(tmp_path / "o" / "claims.parquet")
    engine = settle(plan, claims, registry).results
    # same rows and values as the in-memory engine, keyed by claim id
    key = [("claim_id", "ascending")]
    assert got.sort_by(key).equals(engine.cast(got.schema).sort_by(key))
    # ordered by (bucket, discharge_date, claim_id)
    by_id = dict(zip(claims.column("claim_id").to_pylist(), range(claims.num_rows)))
    idx = np.array([by_id[c] for c in got.column("claim_id").to_pylist()])
    b = buckets(plan, claims)[idx]
    d = claims.column("discharge_date").cast(pa.int32()).to_numpy()[idx]
    ids = got.column("claim_id").to_pylist()
    keys = list(zip(b.tolist(), d.tolist(), ids))
    assert keys == sorted(keys)
    assert len(set(b.tolist())) > 100


def test_rows_numbered_across_files_and_duplicates_across_files(plan, claims, tmp_path,
                                                                registry):
    folder = tmp_path / "in"
    (folder / "b").mkdir(parents=True)
    first, second = claims.slice(0, 3000), claims.slice(3000)
    dup_id = first.column("claim_id")[10].as_py()
    ids = second.column("claim_id").to_pylist()
    ids[5] = dup_id
    second = second.set_column(0, "claim_id", pa.array(ids, pa.string()))
    write_claims(second, folder / "b" / "part-1.parquet")  # sorts after a/…, before c…
    write_claims(first, folder / "a.parquet")
    for parts in (None, 4):
        out = tmp_path / f"o{parts}"
        s = run_settle(plan, folder, out, registry=registry, progress=False, partitions=parts)
        rejects = pq.read_table(out / "rejects.parquet").to_pylist()
        assert [(r["row"], r["claim_id"], r["reason"]) for r in rejects] == [
            (10, dup_id, "duplicate_claim_id"), (3005, dup_id, "duplicate_claim_id")]
        assert s.exit_code == 1


def test_summary_balances_and_manifest_names_everything(plan, claims_file, tmp_path,
                                                        registry):
    s = run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False,
                   policy_path=REFERENCE)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    results = pq.read_table(tmp_path / "o" / "claims.parquet")
    total = int(pc.sum(pq.read_table(claims_file, columns=["total"]).column("total")).as_py())
    assert summary["input"] == {"rows": 6000, "total_fen": total}
    paid = sum(summary["layers"].values()) + summary["self_pay"]
    assert summary["settled"]["total_fen"] == paid == total and summary["balanced"]
    for layer, fen in summary["layers"].items():
        assert fen == pc.sum(results.column(layer)).as_py()
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["inputs"][0]["rows"] == 6000 and len(manifest["inputs"][0]["sha256"]) == 64
    assert "policy.yb" in manifest["policy"]["files"]
    assert manifest["outputs"]["claims.parquet"]["rows"] == s.totals.settled_rows
    assert {p["name"] for p in manifest["plugins"]} >= {"builtin"}
    # no provider part: no provider files, no per-pool totals
    assert sorted(manifest["outputs"]) == ["claims.parquet", "rejects.parquet"]
    assert "pools" not in summary and s.pools == {}


def test_unbalanced_totals_fail_and_publish_nothing(plan, claims_file, tmp_path, registry,
                                                    monkeypatch):
    real = runner.settle_piece_streamed

    def losing(*args):  # an engine bug that drops a row of the results it hands out
        *head, emit, progress = args
        dropped = []

        def lossy(piece):
            emit(piece if dropped else piece.slice(1))
            dropped.append(True)
        return real(*head, lossy, progress)
    monkeypatch.setattr(runner, "settle_piece_streamed", losing)
    with pytest.raises(runner.BalanceError):
        run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False)
    assert [p.name for p in (tmp_path / "o").iterdir()] == [".yibao.lock"]


def test_existing_results_refused_unless_overwrite(plan, claims_file, tmp_path, registry):
    run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False)
    with pytest.raises(FileExistsError):
        run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False)
    (tmp_path / "o" / ".yibao-run" / "spill").mkdir(parents=True)  # a killed run's leftovers
    # provider files of an earlier run under another policy are results too: replaced, not kept
    (tmp_path / "o" / "hospitals.parquet").write_bytes(b"an earlier run's")
    (tmp_path / "o" / "pools.parquet").write_bytes(b"an earlier run's")
    run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False,
               overwrite=True)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        ".yibao.lock", "claims.parquet", "current", "manifest.json", "rejects.parquet", "runs",
        "summary.json"]
    assert len(list((tmp_path / "o" / "runs").iterdir())) == 1  # the old set is gone


def test_person_under_two_family_keys_cannot_be_partitioned(family_plan, claims, tmp_path,
                                                            registry):
    claims = solo_families(claims)
    fam = claims.column("family_id").to_pylist()
    persons = claims.column("person_id").to_pylist()
    i = next(k for k, f in enumerate(fam) if f is not None)
    j = next(k for k, p in enumerate(persons) if p == persons[i] and k != i)
    fam[j] = "F-other-household"
    t = claims.set_column(claims.schema.get_field_index("family_id"), "family_id",
                          pa.array(fam, pa.string()))
    write_claims(t, tmp_path / "in.parquet")
    with pytest.raises(PartitionError, match="different family keys"):
        run_settle(family_plan, tmp_path / "in.parquet", tmp_path / "o", registry=registry,
                   progress=False, partitions=4)
    s = run_settle(family_plan, tmp_path / "in.parquet", tmp_path / "m", registry=registry,
                   progress=False)
    assert s.mode == "memory" and s.totals.balanced


def args(**kw):
    base = dict(policy=str(REFERENCE), out=None, memory_limit=None, engine="local",
                partitions=None, overwrite=False, no_progress=True)
    base.update(kw)
    return SimpleNamespace(**base)


def test_cli_exit_codes(claims, claims_file, tmp_path, capsys):
    assert settle_cmd.run(args(claims=[str(claims_file)], out=str(tmp_path / "a"))) == 0
    bad = tmp_path / "bad.parquet"
    write_claims(with_bad_rows(claims), bad)
    assert settle_cmd.run(args(claims=[str(bad)], out=str(tmp_path / "b"))) == 1
    assert settle_cmd.run(args(claims=[str(tmp_path / "none.parquet")],
                               out=str(tmp_path / "c"))) == 2
    assert settle_cmd.run(args(claims=[str(claims_file)], out=str(tmp_path / "a"))) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert settle_cmd.memory_size("4G") == 4 << 30 and settle_cmd.memory_size("512m") == 512 << 20


def test_iter_settle_streams_record_batches(plan, claims, tmp_path, registry):
    """The core API: record batches in, (results, rejects) per partition out, in file order."""
    batches = with_bad_rows(claims).to_batches(max_chunksize=777)
    totals = runner.Totals()
    pieces = list(runner.iter_settle(plan, iter(batches), tmp_path / "w", partitions=4,
                                     registry=registry, totals=totals))
    assert len(pieces) == 4 and totals.balanced and totals.rejected_rows == 5
    write_claims(with_bad_rows(claims), tmp_path / "in.parquet")
    run_settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry=registry, progress=False)
    expected = pq.read_table(tmp_path / "o" / "claims.parquet")
    # the file's schema has the contract's REQUIRED columns (settlement.settled_file_schema)
    assert pa.concat_tables([r for r, _ in pieces]).cast(expected.schema).equals(expected)
    rejects = pa.concat_tables([j for _, j in pieces]).sort_by("row")
    assert rejects.equals(pq.read_table(tmp_path / "o" / "rejects.parquet"))


def test_file_bytes_do_not_follow_the_batches(plan, claims, tmp_path, monkeypatch, registry):
    """Page boundaries follow the rows, not the pieces the rows arrived in: with pages small
    enough that every column has many of them, the in-memory run, a few partitions and many
    tiny partitions (down to a handful of rows each) write the same claims.parquet bytes."""
    from yibao.core import manifest
    monkeypatch.setitem(manifest.WRITE_OPTIONS, "data_page_size", 512)
    monkeypatch.setattr(manifest, "ROW_GROUP", 2_500)
    path = tmp_path / "in.parquet"
    write_claims(claims, path, row_group_size=900)
    run_settle(plan, path, tmp_path / "mem", registry=registry, progress=False)
    expected = outputs(tmp_path / "mem")
    meta = pq.ParquetFile(tmp_path / "mem" / "claims.parquet").metadata
    assert meta.num_row_groups == 3 and meta.row_group(0).num_rows == 2_500
    assert meta.row_group(0).column(0).total_compressed_size > 4 * 512  # many pages
    monkeypatch.setattr(runner, "BATCH_ROWS", 333)
    monkeypatch.setattr(spill, "SPILL_FLUSH", 100)
    for parts in (3, 7, 26, 1000):
        run_settle(plan, path, tmp_path / f"p{parts}", registry=registry, progress=False,
                   partitions=parts)
        assert outputs(tmp_path / f"p{parts}") == expected, parts


@pytest.mark.parametrize("parts", [0, -3])
def test_partitions_below_one_refused(plan, claims_file, tmp_path, registry, parts):
    with pytest.raises(runner.InputError, match="at least 1"):
        run_settle(plan, claims_file, tmp_path / "o", registry=registry, progress=False,
                   partitions=parts)
    assert not (tmp_path / "o").exists()


def coded_text(table: pa.Table) -> pa.Table:
    """``table`` with its text columns other than the ids as dictionary codes (int32 indices,
    what Parquet's dictionary pages decode to)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) and f.name not in ("claim_id", "person_id"):
            table = table.set_column(i, f.name, pc.dictionary_encode(table.column(i)))
    return table


@pytest.mark.parametrize("layouts", [("coded", "plain", "coded"), ("plain", "coded", "plain"),
                                     ("coded", "reordered", "plain"), ("plain", "wider", "coded")])
def test_iter_settle_batches_in_different_layouts(plan, claims, tmp_path, registry, layouts):
    """A stream whose batches hold the same columns as text in one batch, as dictionary codes
    in the next, or in another column order (extracts from different tools) settles as the
    whole table does in memory (pass 1 spilled each batch in its own layout, and a
    partition's pieces of two layouts failed to concatenate); so does an integer column
    wider than the first batch's whose values fit the first batch's type."""
    thirds = [claims.slice(0, 3000), claims.slice(3000, 3000), claims.slice(6000)]
    shaped = {"plain": lambda t: t, "coded": coded_text,
              "reordered": lambda t: coded_text(t).select(t.column_names[::-1]),
              "wider": lambda t: t.set_column(t.schema.get_field_index("hospital_level"),
                                              "hospital_level",
                                              t.column("hospital_level").cast(pa.int64()))}
    batches = [shaped[layout](t) for layout, t in zip(layouts, thirds)]
    pieces = list(runner.iter_settle(plan, iter(batches), tmp_path / "w", partitions=3,
                                     registry=registry))
    got = pa.concat_tables([r for r, _ in pieces]).sort_by("claim_id")
    expected = settle(plan, claims, registry=registry).results.sort_by("claim_id")
    assert got.select(expected.column_names).equals(expected)


@pytest.mark.parametrize("dropped, message", [
    ("total", "batch 2 of the claims: the claims have no column 'total'"),
    ("hospital_id", r"batch 2 .*missing: hospital_id")])  # optional, but in the first batch
def test_iter_settle_batch_with_other_columns_is_named(plan, claims, tmp_path, registry,
                                                       dropped, message):
    from yibao.core.arrow_io import ClaimsError
    batches = [claims.slice(0, 100), claims.slice(100, 100).drop_columns([dropped])]
    with pytest.raises(ClaimsError, match=message):
        list(runner.iter_settle(plan, iter(batches), tmp_path / "w", partitions=2,
                                registry=registry))


def test_iter_settle_value_the_first_batchs_type_cannot_hold(plan, claims, tmp_path, registry):
    from yibao.core.arrow_io import ClaimsError
    second = claims.slice(100, 100)
    assert claims.schema.field("hospital_level").type == pa.int8()
    second = second.set_column(second.schema.get_field_index("hospital_level"),
                               "hospital_level", pa.array([300] * 100, pa.int64()))
    with pytest.raises(ClaimsError, match=r"batch 2 .*'hospital_level' is int64 where the "
                                          r"first batch's is int8"):
        list(runner.iter_settle(plan, iter([claims.slice(0, 100), second]), tmp_path / "w",
                                partitions=2, registry=registry))


def whole_yuan(claims: pa.Table) -> pa.Table:
    """``claims`` with every money amount a whole number of yuan (in fen)."""
    for name in ("total", "in_scope", "self_first", "tcm_amount"):
        fen = claims.column(name).cast(pa.int64()).to_numpy()
        claims = claims.set_column(claims.schema.get_field_index(name), name,
                                   pa.array((fen // 100) * 100))
    return claims


def as_decimal_yuan(claims: pa.Table, name: str) -> pa.Table:
    yuan = [None if v is None else __import__("decimal").Decimal(v) / 100
            for v in claims.column(name).to_pylist()]
    return claims.set_column(claims.schema.get_field_index(name), name,
                             pa.array(yuan, pa.decimal128(22, 2)))


@pytest.mark.parametrize("yuan_first", [False, True])
def test_iter_settle_refuses_money_in_another_unit_in_a_later_batch(plan, claims, tmp_path,
                                                                   registry, yuan_first):
    """Integer fen in one batch and whole decimal yuan in the next (each valid alone) is
    refused with the batch and column named: casting one to the other's type took yuan as
    fen (100× too small) or fen as yuan (100× too large), and the totals balanced."""
    from yibao.core.arrow_io import ClaimsError
    fen = whole_yuan(claims.slice(0, 400))
    first, second = fen.slice(0, 200), as_decimal_yuan(fen.slice(200), "total")
    if yuan_first:
        first, second = as_decimal_yuan(fen.slice(0, 200), "total"), fen.slice(200)
    with pytest.raises(ClaimsError, match=r"batch 2 .*'total' is .* where the first batch's"):
        list(runner.iter_settle(plan, iter([first, second]), tmp_path / "w", partitions=2,
                                registry=registry))


@pytest.mark.parametrize("column, values, message", [
    ("total", lambda n: pa.array([1.5] * n), "total"),
    ("discharge_date", lambda n: pa.array(["2024-03-01"] * n), "discharge_date")])
def test_iter_settle_checks_a_later_batch_as_it_would_alone(plan, claims, tmp_path, registry,
                                                           column, values, message):
    """Float money or text dates in a later batch are refused as in a first batch."""
    from yibao.core.arrow_io import ClaimsError
    second = claims.slice(100, 100)
    second = second.set_column(second.schema.get_field_index(column), column, values(100))
    with pytest.raises(ClaimsError, match=message):
        list(runner.iter_settle(plan, iter([claims.slice(0, 100), second]), tmp_path / "w",
                                partitions=2, registry=registry))


def test_iter_settle_ignores_columns_it_does_not_read(plan, claims, tmp_path, registry):
    """An extra column all null (type null) in the first batch and text in the next, as
    pandas or Polars hand over an all-null batch, is not read, so not refused."""
    first = claims.slice(0, 3000).append_column("memo", pa.nulls(3000))
    second = claims.slice(3000).append_column("memo", pa.array(["x"] * (claims.num_rows - 3000)))
    pieces = list(runner.iter_settle(plan, iter([first, second]), tmp_path / "w", partitions=2,
                                     registry=registry))
    got = pa.concat_tables([r for r, _ in pieces]).sort_by("claim_id")
    expected = settle(plan, claims, registry=registry).results.sort_by("claim_id")
    assert got.select(expected.column_names).equals(expected)


def test_iter_settle_later_batch_with_a_column_twice_is_named(plan, claims, tmp_path,
                                                              registry):
    from yibao.core.arrow_io import ClaimsError
    second = claims.slice(100, 100)
    second = second.append_column("total", second.column("total"))
    with pytest.raises(ClaimsError, match=r"batch 2 .*total"):
        list(runner.iter_settle(plan, iter([claims.slice(0, 100), second]), tmp_path / "w",
                                partitions=2, registry=registry))

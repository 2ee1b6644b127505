"""Hostile claim files: each gives a clear error (exit 2, nothing published) or rejected rows
with balanced control totals — never a crash, never a wrong sum."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.arrow_io import ClaimsError
from yibao.core.generate import write_claims
from yibao.core.runner import InputError, run_settle

MODES = [None, 3]  # in memory, partitioned


def settle(plan, path, out, registry, parts):
    return run_settle(plan, path, out, registry=registry, progress=False, partitions=parts)


def replace(t: pa.Table, name: str, values) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, values)


def nothing_published(folder):
    """No results, no leftovers: at most the lock file a run leaves (docs/scale.md)."""
    return not folder.exists() or {p.name for p in folder.iterdir()} <= {".yibao.lock"}


@pytest.mark.parametrize("parts", MODES)
def test_truncated_parquet(plan, claims_file, tmp_path, registry, parts):
    data = claims_file.read_bytes()
    bad = tmp_path / "cut.parquet"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        settle(plan, bad, tmp_path / "o", registry, parts)
    assert nothing_published(tmp_path / "o")


@pytest.mark.parametrize("parts", MODES)
def test_corrupt_parquet_pages(plan, claims_file, tmp_path, registry, parts):
    data = bytearray(claims_file.read_bytes())
    for at in range(len(data) // 4, len(data) // 2, 997):  # scribble over data pages
        data[at:at + 8] = b"\xff\x00\xff\x00garb"
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(bytes(data))
    try:
        s = settle(plan, bad, tmp_path / "o", registry, parts)
    except InputError as exc:
        assert "corrupt" in str(exc)
        assert nothing_published(tmp_path / "o")
    else:  # pages that still decode: then the books must balance
        assert s.totals.balanced


@pytest.mark.parametrize("money", [pa.float64(), pa.string(), pa.decimal128(25, 3)])
def test_money_of_the_wrong_type(plan, claims, tmp_path, registry, money):
    total = claims.column("total")
    values = pc.divide(total.cast(pa.float64()), 100.0) if money == pa.float64() else (
        total.cast(pa.string()) if money == pa.string() else total.cast(money))
    write_claims(replace(claims, "total", values), tmp_path / "in.parquet")
    with pytest.raises(ClaimsError, match="total"):
        settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry, None)


def test_dates_as_strings(plan, claims, tmp_path, registry):
    t = replace(claims, "discharge_date", claims.column("discharge_date").cast(pa.string()))
    write_claims(t, tmp_path / "in.parquet")
    with pytest.raises(ClaimsError, match="discharge_date"):
        settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry, 2)


def test_files_with_different_columns(plan, claims, tmp_path, registry):
    (tmp_path / "in").mkdir()
    write_claims(claims.slice(0, 100), tmp_path / "in" / "a.parquet")
    write_claims(claims.slice(100).drop_columns(["sex"]), tmp_path / "in" / "b.parquet")
    with pytest.raises(ClaimsError, match="b.parquet differs from .*a.parquet: no column sex;"
                                          " every claims file of a run needs the same columns"):
        settle(plan, tmp_path / "in", tmp_path / "o", registry, None)


def test_files_with_a_column_of_another_type_name_it(plan, claims, tmp_path, registry):
    """The error names the column and both types (it listed every column of both files)."""
    (tmp_path / "in").mkdir()
    write_claims(claims.slice(0, 100), tmp_path / "in" / "a.parquet")
    b = claims.slice(100)
    b = b.set_column(b.schema.get_field_index("age"), "age", b.column("age").cast(pa.int64()))
    write_claims(b, tmp_path / "in" / "b.parquet")
    with pytest.raises(ClaimsError) as err:
        settle(plan, tmp_path / "in", tmp_path / "o", registry, None)
    assert "column age is int64 there but int16 in the first file;" in str(err.value)
    assert "sex" not in str(err.value)


@pytest.mark.parametrize("parts", MODES)
def test_enormous_strings(plan, claims, tmp_path, registry, parts):
    ids = claims.column("claim_id").to_pylist()
    persons = claims.column("person_id").to_pylist()
    ids[3] = "C" * 3_000_000
    persons[9] = "P" * 2_000_000
    t = replace(replace(claims, "claim_id", pa.array(ids)), "person_id", pa.array(persons))
    write_claims(t, tmp_path / "in.parquet")
    s = settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry, parts)
    assert s.totals.balanced and s.totals.input_rows == claims.num_rows
    got = pq.read_table(tmp_path / "o" / "claims.parquet", columns=["claim_id"])
    assert pc.any(pc.equal(got.column("claim_id"), ids[3])).as_py()


@pytest.mark.parametrize("parts", MODES)
def test_duplicate_ids_in_three_files(plan, claims, tmp_path, registry, parts):
    (tmp_path / "in").mkdir()
    ids = claims.column("claim_id").to_pylist()
    ids[2100] = ids[4100] = ids[17]
    t = replace(claims, "claim_id", pa.array(ids))
    for k, start in enumerate((0, 2000, 4000)):
        write_claims(t.slice(start, 2000), tmp_path / "in" / f"f{k}.parquet")
    s = settle(plan, tmp_path / "in", tmp_path / "o", registry, parts)
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet")
    assert rejects.column("row").to_pylist() == [17, 2100, 4100]
    assert set(rejects.column("reason").to_pylist()) == {"duplicate_claim_id"}
    assert s.totals.balanced and s.exit_code == 1


@pytest.mark.parametrize("parts", MODES)
def test_negative_and_enormous_money(plan, claims, tmp_path, registry, parts):
    total = claims.column("total").to_pylist()
    in_scope = claims.column("in_scope").to_pylist()
    total[5], in_scope[6] = -100, -1
    total[8] = total[9] = 2**62  # the sum of the two overflows int64
    t = replace(replace(claims, "total", pa.array(total, pa.int64())),
                "in_scope", pa.array(in_scope, pa.int64()))
    write_claims(t, tmp_path / "in.parquet")
    s = settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry, parts)
    assert s.totals.input_fen == sum(total)  # exact, beyond int64
    assert s.totals.balanced
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()
    assert {r["row"]: r["reason"] for r in rejects if r["row"] in (5, 6)} == {
        5: "negative_amount", 6: "negative_amount"}


def test_empty_input(plan, claims, tmp_path, registry):
    write_claims(claims.slice(0, 0), tmp_path / "in.parquet")
    for parts in MODES:
        s = settle(plan, tmp_path / "in.parquet", tmp_path / f"o{parts}", registry, parts)
        assert s.totals.input_rows == 0 and s.exit_code == 0
        assert pq.read_table(tmp_path / f"o{parts}" / "claims.parquet").num_rows == 0


@pytest.mark.parametrize("parts", MODES)
def test_two_columns_of_one_name_are_refused_naming_it(plan, claims, tmp_path, registry, parts):
    t = claims.append_column("total", claims.column("in_scope"))
    pq.write_table(t, tmp_path / "in.parquet")
    with pytest.raises(ClaimsError, match="more than one column named 'total'"):
        settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry, parts)
    assert nothing_published(tmp_path / "o")
    from yibao.core import engine
    with pytest.raises(ClaimsError, match="'total'"):
        engine.settle(plan, t, registry)


def test_two_columns_of_one_name_exit_2_with_one_line(claims, tmp_path):
    import subprocess
    import sys
    from .conftest import REFERENCE
    t = claims.append_column("total", claims.column("in_scope"))
    pq.write_table(t, tmp_path / "in.parquet")
    done = subprocess.run([sys.executable, "-m", "yibao.dsl.cli", "settle",
                           str(REFERENCE), str(tmp_path / "in.parquet"), "--out",
                           str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'total'" in lines[0] and "Traceback" not in done.stderr

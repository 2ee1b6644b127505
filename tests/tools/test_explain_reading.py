"""How `yibao explain` reads a claims file (issue 13: one claim of a 2M-claim file under a
tenth of settling it): the ids and keys of every row, then the other columns of only the
row groups that hold a key-mate; a folder as `settle` reads it; an Arrow IPC file; a file
that is not Parquet and a claim that is not there refused in one line (exit 2)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from yibao.core.explain import explain_claim, explain_columns, key_mates, read_key_mates
from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

from .conftest import CONFIGS

GROUP = 100  # rows per row group of the test files


@pytest.fixture(scope="module")
def policy():
    from yibao.dsl.commands._common import registry
    from yibao.dsl.commands._policies import load_policy
    return load_policy(str(CONFIGS / "reference"), registry(str(CONFIGS / "reference")))


@pytest.fixture(scope="module")
def claims():
    return generate_claims(3_000, seed=11)


def busiest(claims: pa.Table) -> str:
    """The last claim of the person with the most claims (the most key-mates)."""
    counts = claims.group_by("person_id").aggregate([("claim_id", "count")])
    person = counts.sort_by([("claim_id_count", "descending")]).column("person_id")[0]
    rows = [r for r in claims.select(["claim_id", "person_id"]).to_pylist()
            if r["person_id"] == person.as_py()]
    return rows[-1]["claim_id"]


def positions_of(table: pa.Table, claim_ids) -> list:
    wanted = set(claim_ids)
    return [i for i, c in enumerate(table.column("claim_id").to_pylist()) if c in wanted]


class Decoded:
    """What a read decoded: every ``ParquetFile`` read (whole file, row group, batches)
    recorded as (columns, rows decoded at once, row group or None)."""

    def __init__(self, monkeypatch):
        self.reads = []
        read, group, batches = (pq.ParquetFile.read, pq.ParquetFile.read_row_group,
                                pq.ParquetFile.iter_batches)

        def whole(file, *args, columns=None, **kwargs):
            out = read(file, *args, columns=columns, **kwargs)
            self.reads.append((tuple(out.column_names), out.num_rows, None))
            return out

        def one_group(file, i, *args, columns=None, **kwargs):
            out = group(file, i, *args, columns=columns, **kwargs)
            self.reads.append((tuple(out.column_names), out.num_rows, i))
            return out

        def in_batches(file, batch_size=65_536, row_groups=None, columns=None, **kwargs):
            for b in batches(file, batch_size, row_groups=row_groups, columns=columns,
                             **kwargs):
                self.reads.append((tuple(b.schema.names), b.num_rows, tuple(row_groups)))
                yield b
        monkeypatch.setattr(pq.ParquetFile, "read", whole)
        monkeypatch.setattr(pq.ParquetFile, "read_row_group", one_group)
        monkeypatch.setattr(pq.ParquetFile, "iter_batches", in_batches)

    def full_reads(self) -> set:
        return {cols for cols, _, where in self.reads if where is None}

    def groups(self) -> set:
        return {g for _, _, where in self.reads if where is not None
                for g in (where if isinstance(where, tuple) else (where,))}


def test_only_the_key_mates_row_groups_are_decoded_for_the_other_columns(
        policy, claims, tmp_path, monkeypatch):
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path, row_group_size=GROUP)
    claim_id = busiest(claims)
    mates = key_mates(policy.versions, claims, [claim_id])
    want_groups = {i // GROUP for i in positions_of(claims, mates.column("claim_id").to_pylist())}
    decoded = Decoded(monkeypatch)
    columns = explain_columns(policy.versions)
    got = read_key_mates(policy.versions, path, claim_id, columns)
    assert decoded.groups() == want_groups
    assert len(want_groups) < claims.num_rows // GROUP
    assert decoded.full_reads() == {("claim_id", "person_id")}  # only the ids in full
    assert got.column("claim_id").to_pylist() == mates.column("claim_id").to_pylist()
    assert got.to_pylist() == mates.select(got.column_names).to_pylist()


def test_one_big_row_group_is_decoded_a_batch_at_a_time_up_to_the_last_key_mate(
        policy, claims, tmp_path, monkeypatch):
    """A file of one row group (as large exports are written: a million rows and more)
    is not decoded whole for the other columns: a batch at a time, and not past the last
    key-mate's row."""
    import yibao.core.key_mates as explain
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path)  # one row group
    claim_id = busiest(claims)
    last = max(positions_of(claims, key_mates(policy.versions, claims, [claim_id])
                            .column("claim_id").to_pylist()))
    monkeypatch.setattr(explain, "BATCH_ROWS", 64, raising=False)
    decoded = Decoded(monkeypatch)
    got = read_key_mates(policy.versions, path, claim_id, explain_columns(policy.versions))
    other = [(cols, n) for cols, n, where in decoded.reads if where is not None]
    assert other and max(n for _, n in other) <= 64
    assert sum(n for _, n in other) < last + 64
    assert (explain_claim(policy, got, claim_id).to_dict()
            == explain_claim(policy, claims, claim_id).to_dict())


def test_a_folder_of_files_explains_like_the_whole_table(policy, claims, tmp_path):
    folder = tmp_path / "claims"
    folder.mkdir()
    half = claims.num_rows // 2
    pq.write_table(claims.slice(0, half), folder / "a.parquet", row_group_size=GROUP)
    pq.write_table(claims.slice(half), folder / "b.parquet", row_group_size=GROUP)
    for claim_id in (busiest(claims), claims.column("claim_id")[half + 7].as_py()):
        mates = read_key_mates(policy.versions, folder, claim_id,
                               explain_columns(policy.versions))
        assert mates.num_rows < claims.num_rows // 10
        assert (explain_claim(policy, mates, claim_id).to_dict()
                == explain_claim(policy, claims, claim_id).to_dict())


def test_every_column_when_none_are_named(policy, claims, tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path, row_group_size=GROUP)
    claim_id = busiest(claims)
    got = read_key_mates(policy.versions, path, claim_id)
    from yibao.core.arrow_io import normal_schema
    assert got.schema == normal_schema(claims.schema)  # in the one layout settle reads
    assert got.to_pylist() == key_mates(policy.versions, claims, [claim_id]).to_pylist()


def test_an_arrow_ipc_file_is_read_as_before(policy, claims, tmp_path):
    path = tmp_path / "c.arrow"
    feather.write_feather(claims, path)
    claim_id = busiest(claims)
    mates = read_key_mates(policy.versions, path, claim_id, explain_columns(policy.versions))
    assert (explain_claim(policy, mates, claim_id).to_dict()
            == explain_claim(policy, claims, claim_id).to_dict())


def test_the_ids_read_ahead_are_used_and_not_read_again(policy, claims, tmp_path,
                                                      monkeypatch):
    """``ClaimIds`` reads claim_id and person_id while the policy compiles; read_key_mates
    then decodes none of the file's rows in full."""
    from yibao.core.key_mates import ClaimIds
    folder = tmp_path / "claims"
    folder.mkdir()
    pq.write_table(claims.slice(0, 1_000), folder / "a.parquet", row_group_size=GROUP)
    pq.write_table(claims.slice(1_000), folder / "b.parquet", row_group_size=GROUP)
    claim_id, columns = busiest(claims), explain_columns(policy.versions)
    want = read_key_mates(policy.versions, folder, claim_id, columns)
    ids = ClaimIds(folder)
    assert set(ids.tables()) == {folder / "a.parquet", folder / "b.parquet"}
    decoded = Decoded(monkeypatch)
    got = read_key_mates(policy.versions, folder, claim_id, columns, ids=ids)
    assert decoded.full_reads() == set() and decoded.groups()
    assert got.equals(want)


def test_ids_that_cannot_be_read_ahead_leave_the_refusal_to_the_reader(tmp_path):
    from yibao.core.key_mates import ClaimIds
    csv = tmp_path / "c.csv"
    csv.write_text("claim_id,person_id\nA1,p1\n", encoding="utf-8")
    assert ClaimIds(csv).tables() is None
    assert ClaimIds(tmp_path / "nothing here").tables() is None


def test_no_such_claim_reads_no_other_column(policy, claims, tmp_path, monkeypatch):
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path, row_group_size=GROUP)
    decoded = Decoded(monkeypatch)
    got = read_key_mates(policy.versions, path, "no such claim", explain_columns(policy.versions))
    assert got.num_rows == 0
    assert "total" in got.column_names
    assert decoded.groups() == set() and decoded.full_reads() == {("claim_id", "person_id")}


def test_cli_refuses_a_missing_claim_and_a_csv_file_in_one_line(claims, tmp_path, capsys):
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path)
    reference = str(CONFIGS / "reference")
    assert main(["explain", reference, str(path), "--claim-id", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert "'NOPE' is not in the batch" in err and "Traceback" not in err
    csv = tmp_path / "c.csv"
    csv.write_text("claim_id,person_id\nA1,p1\n", encoding="utf-8")
    assert main(["explain", reference, str(csv), "--claim-id", "A1"]) == 2
    err = capsys.readouterr().err
    assert str(csv) in err and "Parquet" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_empty_file_has_no_such_claim(policy, claims, tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(claims.slice(0, 0), path)
    got = read_key_mates(policy.versions, path, "A1", explain_columns(policy.versions))
    assert got.num_rows == 0 and "total" in got.column_names

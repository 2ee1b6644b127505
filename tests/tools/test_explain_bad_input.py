"""`yibao explain` refuses bad input in one line naming the file or the claim, never with a
traceback: a file without a column the policy reads (or without claim_id), a claim id that
is not there, a claim id given twice (in one file or across the files of a folder)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

from .conftest import CONFIGS

REFERENCE = str(CONFIGS / "reference")


@pytest.fixture(scope="module")
def claims():
    return generate_claims(300, seed=5)


def refused(capsys, *args) -> str:
    """The one line ``yibao explain`` prints on stderr when it refuses (exit 2)."""
    assert main(["explain", REFERENCE, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("column", ["claim_id", "total", "person_id", "hospital_level"])
def test_a_file_without_a_needed_column_is_named(claims, tmp_path, capsys, column):
    path = tmp_path / f"no_{column}.parquet"
    pq.write_table(claims.drop_columns([column]), path)
    err = refused(capsys, str(path), "--claim-id", claims.column("claim_id")[0].as_py())
    assert str(path) in err and repr(column) in err


def test_the_file_of_a_folder_that_lacks_a_column_is_named(claims, tmp_path, capsys):
    folder = tmp_path / "claims"
    folder.mkdir()
    pq.write_table(claims.slice(0, 100), folder / "a.parquet")
    pq.write_table(claims.slice(100).drop_columns(["total"]), folder / "b.parquet")
    err = refused(capsys, str(folder), "--claim-id", claims.column("claim_id")[0].as_py())
    assert str(folder / "b.parquet") in err and "'total'" in err


def test_an_unknown_claim_is_named(claims, tmp_path, capsys):
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path)
    assert "claim 'NO-SUCH' is not in the batch" in refused(capsys, str(path), "--claim-id",
                                                              "NO-SUCH")


@pytest.mark.parametrize("split", [False, True], ids=["one file", "two files"])
def test_a_claim_id_given_twice_is_rejected_with_the_reason(claims, tmp_path, capsys, split):
    claim_id = claims.column("claim_id")[7].as_py()
    twice = pa.concat_tables([claims, claims.slice(7, 1)])
    if split:
        where = tmp_path / "claims"
        where.mkdir()
        pq.write_table(claims, where / "a.parquet")
        pq.write_table(claims.slice(7, 1), where / "b.parquet")
    else:
        where = tmp_path / "c.parquet"
        pq.write_table(twice, where)
    err = refused(capsys, str(where), "--claim-id", claim_id)
    assert f"claim {claim_id!r} was rejected (duplicate_claim_id" in err


def test_files_of_different_columns_are_refused_as_settle_refuses_them(claims, tmp_path,
                                                                       capsys):
    folder = tmp_path / "claims"
    folder.mkdir()
    pq.write_table(claims.slice(0, 100), folder / "a.parquet")
    pq.write_table(claims.slice(100).drop_columns(["scheme"]), folder / "b.parquet")
    err = refused(capsys, str(folder), "--claim-id", claims.column("claim_id")[0].as_py())
    assert str(folder / "b.parquet") in err and "same columns" in err

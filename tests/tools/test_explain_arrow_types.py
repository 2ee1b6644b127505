"""`yibao explain` explains a claim the same whatever Arrow types the file uses for a column,
as `yibao settle` settles it the same: timestamp or date64 discharge dates, dictionary-encoded
or large-string ids (the claims are read into the one layout, ``arrow_io.normal_table``).
Before, the scan path failed on them (`Unsupported cast from timestamp[ms] to int32`; a
dictionary person id against a string value set) while settle took them (review)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.dsl.cli import main

from .conftest import CONFIGS

CLAIMS = generate_claims(400, seed=3)


def _retyped(name: str, how) -> pa.Table:
    i = CLAIMS.schema.get_field_index(name)
    return CLAIMS.set_column(i, name, how(CLAIMS.column(i)))


VARIANTS = {
    "timestamp dates": lambda: _retyped("discharge_date", lambda c: c.cast(pa.timestamp("ms"))),
    "date64 dates": lambda: _retyped("discharge_date", lambda c: c.cast(pa.date64())),
    "dictionary persons": lambda: _retyped("person_id", pc.dictionary_encode),
    "large-string claim ids": lambda: _retyped("claim_id", lambda c: c.cast(pa.large_string())),
}


def explained(capsys, path, claim_id) -> str:
    assert main(["explain", str(CONFIGS / "reference"), str(path), "--claim-id", claim_id]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_explain_is_the_same_whatever_the_arrow_types(variant, tmp_path, capsys):
    plain, other = tmp_path / "plain.parquet", tmp_path / "other.parquet"
    pq.write_table(CLAIMS, plain)
    pq.write_table(VARIANTS[variant](), other)
    persons = CLAIMS.column("person_id").to_pylist()
    busiest = max(set(persons), key=persons.count)  # a claim with earlier claims of its person
    claim_id = CLAIMS.column("claim_id")[persons.index(busiest)].as_py()
    assert explained(capsys, other, claim_id) == explained(capsys, plain, claim_id)

"""`yibao explain` of a claim whose person's claims are spread over several files and row
groups gives the numbers `settle` gives that claim in the whole batch (issue 13)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.dsl.cli import main
from yibao.dsl.compiler import compile_policy

from .conftest import CONFIGS

FILES, GROUP = 3, 150  # the batch in three files of row groups of 150 rows


def test_a_person_over_several_files_and_row_groups_is_explained_as_settled(tmp_path,
                                                                             capsys):
    policy = CONFIGS / "jinhua"
    claims = generate_claims(1_800, seed=3)
    folder = tmp_path / "claims"
    folder.mkdir()
    size = claims.num_rows // FILES
    for k in range(FILES):
        pq.write_table(claims.slice(k * size, size), folder / f"part{k}.parquet",
                       row_group_size=GROUP)
    where = {}  # person -> {(file, row group)} of its claims
    for i, person in enumerate(claims.column("person_id").to_pylist()):
        where.setdefault(person, set()).add((i // size, i % size // GROUP))
    person = max(where, key=lambda p: len(where[p]))
    assert len({f for f, _ in where[person]}) >= 2 and len(where[person]) >= 3
    settled = {r["claim_id"]: r for r in settle(compile_policy(policy), claims).results
               .to_pylist()}
    mine = [c for c, p in zip(claims.column("claim_id").to_pylist(),
                              claims.column("person_id").to_pylist()) if p == person]
    for claim_id in mine:
        assert main(["explain", str(policy), str(folder), "--claim-id", claim_id,
                     "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        want = settled[claim_id]
        assert {t["name"]: t["pay"] for t in got["layers"]} == {
            t["name"]: want[t["name"]] for t in got["layers"]}
        assert got["self_pay"] == want["self_pay"]
        provider = got["provider"] or {}
        assert (provider.get("pool"), provider.get("case_class"), provider.get("points")) == (
            want["pool"], want["case_class"], want["points"])


def test_a_claim_id_shared_across_files_ties_its_rows_as_one_batch_does(tmp_path, capsys):
    """The reference's other person carries a claim id of the explained person's file:
    both copies are rejected, in one file or spread over two, as settle rejects them."""
    claims = generate_claims(400, seed=9)
    twin = claims.slice(3, 1).set_column(claims.schema.get_field_index("person_id"),
                                         "person_id", pa.array(["somebody else"]))
    folder = tmp_path / "claims"
    folder.mkdir()
    pq.write_table(claims, folder / "a.parquet", row_group_size=100)
    pq.write_table(twin, folder / "b.parquet")
    claim_id = claims.column("claim_id")[3].as_py()
    assert main(["explain", str(CONFIGS / "reference"), str(folder), "--claim-id",
                 claim_id]) == 2
    assert "duplicate_claim_id" in capsys.readouterr().err

"""The key index against the scan, over generated batches (Hypothesis): for every claim id of
a settled batch (and one that is not there), the rows the index gives are the rows
``read_key_mates`` reads from the claims file, in the same order with the same values, and
explaining the claim from either gives the same explanation or the same refusal. Batches
with nulls, invalid values and duplicate ids, a few persons and families (long chains of
key-mates), under a person-key and a family-key policy."""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from yibao.core.arrow_io import as_table
from yibao.core.explain import ExplainError, explain_claim, explain_columns, read_key_mates
from yibao.core.key_index import KeyIndex, index_folder, key_groups
from yibao.core.runner import run_settle
from yibao.dsl.commands._common import registry
from yibao.dsl.commands._policies import load_policy
from policy_texts import family_policy  # tests/ is on the path (tests/conftest.py)

TESTS = Path(__file__).resolve().parents[1]
CONFIGS = TESTS.parent / "city_configs"
FAMILY_POLICY = family_policy("500", "3_000")


def _strategies():
    """The conformance corpus's batch strategy (tests/conformance/strategies.py)."""
    spec = importlib.util.spec_from_file_location(
        "conformance_strategies", TESTS / "conformance" / "strategies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


batches = _strategies().batches


@pytest.fixture(scope="module", params=["reference", "family"])
def policy(request, tmp_path_factory):
    if request.param == "reference":
        where = CONFIGS / "reference"
    else:
        where = tmp_path_factory.mktemp("family") / "family.yb"
        where.write_text(FAMILY_POLICY, encoding="utf-8")
    reg = registry(str(where))
    return where, load_policy(str(where), reg), reg


def explained(policy, reg, claims, claim_id):
    try:
        return explain_claim(policy, claims, claim_id, reg).to_dict()
    except ExplainError as exc:
        return str(exc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(max_size=30, invalid=True))
def test_the_index_gives_the_rows_and_explanations_the_scan_gives(policy, batch):
    where, compiled, reg = policy
    plans = compiled.versions
    columns = explain_columns(plans, reg)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claims.parquet"
        pq.write_table(batch, path, row_group_size=7)
        run_settle(compiled, path, Path(folder) / "out", registry=reg, progress=False,
                   policy_path=where, key_index=True)
        assert (index_folder(Path(folder) / "out") / "index.json").is_file()
        index = KeyIndex.open(Path(folder) / "out")
        assert index.unusable([path], where) == ""
        ids = {c for c in batch.column("claim_id").to_pylist() if c is not None}
        for claim_id in sorted(ids) + ["zz-not-there"]:
            got, rows = index.key_mates(claim_id)
            want = read_key_mates(plans, path, claim_id, columns)
            assert got.column_names == want.column_names
            assert as_table(got).to_pylist() == as_table(want).to_pylist(), claim_id
            assert len(rows) == got.num_rows and rows == sorted(rows)
            assert explained(compiled, reg, got, claim_id) == \
                explained(compiled, reg, want, claim_id)


def test_key_groups_close_over_every_key_transitively():
    """p1-f1, p2-f1, p2-f2, p3-f2 are one group (through families and persons); p4 and the
    row whose keys are null are groups of their own; every group is numbered apart."""
    import pyarrow as pa
    table = pa.table({"person_id": ["p1", "p2", "p2", "p3", "p4", None, "p1"],
                      "family_id": ["f1", "f1", "f2", "f2", None, None, None]})
    group = key_groups(table, ["person_id", "family_id"]).tolist()
    assert len({group[i] for i in (0, 1, 2, 3, 6)}) == 1
    assert len({group[0], group[4], group[5]}) == 3

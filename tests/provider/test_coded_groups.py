"""Provider payment carries a decision table's groups as integer codes (issue 14): grouped,
pooled, scored and summed without hashing a claim's group, status or case class as text, the
texts built once per claim only when the result columns are assembled. Checked against the
oracle (the per-claim decision table and points), with the claims' text columns as plain
text and as dictionaries; the year's sums read no claim by its id; points beyond int64 still
stop ``yibao settle`` naming the pool and the claim (exit 2)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core import provider
from yibao.core.generate import generate_claims
from yibao.core.grouping.table import STATUSES
from yibao.core.points import compute
from yibao.dsl.cli import main
from yibao.dsl.compiler import compile_policy
from yibao.plugins.manager import build_registry, make_plugin_manager
from policy_texts import (  # tests/ is on the path (tests/conftest.py)
    DECISION_TABLE_CSV as TABLE, DECISION_TABLE_POINTS as POINTS, DECISION_TABLE_POLICY as POLICY)

SHIPPED = build_registry(make_plugin_manager(allowlist="family,tcm"))

GROUPS = {"GRP_I_SURG", "GRP_I_OLD", "GRP_I", "GRP_J", "GRP_K", "GRP_OTHER"}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dt_city")
    for name, text in (("policy.yb", POLICY), ("dt.csv", TABLE), ("points.csv", POINTS)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _as_dictionaries(claims: pa.Table) -> pa.Table:
    """Every text column, and the coefficient's key (hospital_level), as a dictionary."""
    return pa.table({name: pc.dictionary_encode(col)
                     if pa.types.is_string(col.type) or name == "hospital_level" else col
                     for name, col in zip(claims.column_names, claims.columns)})


def test_kernel_path_equals_the_oracle_on_text_and_dictionary_columns(city):
    plan = compile_policy(str(city), SHIPPED)
    claims = generate_claims(3_000, 23)
    oracle = provider.claim_columns(plan, claims, reference=True)
    assert set(oracle.column("case_class").to_pylist()) >= {"normal", "ungrouped", "high"}
    order = np.random.default_rng(5).permutation(claims.num_rows)
    for given in (claims, _as_dictionaries(claims)):
        assert provider.claim_columns(plan, given).equals(oracle)
        assert provider.claim_columns(plan, given, order=order).equals(
            oracle.take(pa.array(order)))


def test_no_group_status_or_case_class_text_is_hashed(city, monkeypatch):
    """The grouper's codes go through to the results: every text Arrow hashes on the way
    is a claim's input (its diagnosis), never a group, a status or a case class."""
    plan = compile_policy(str(city), SHIPPED)
    claims = generate_claims(2_000, 29)
    hashed = set()
    encode = pc.dictionary_encode

    def spy(values, *args, **kwargs):
        if not pa.types.is_dictionary(values.type):
            hashed.update(v for v in values.to_pylist() if isinstance(v, str))
        return encode(values, *args, **kwargs)
    monkeypatch.setattr(pc, "dictionary_encode", spy)
    got = provider.claim_columns(plan, claims, order=np.arange(claims.num_rows)[::-1])
    monkeypatch.undo()
    assert set(got.column("group").drop_null().to_pylist()) <= GROUPS
    assert hashed and not hashed & (GROUPS | set(STATUSES) | set(compute.CASE_CLASSES))


def test_the_years_sums_read_no_claim_by_its_id(monkeypatch):
    """Rizhao's pools and its 医共体 alliance: the year's rows line up with the results, so
    neither the hospital sums nor the alliance sums look a claim up by claim_id (and they
    equal the sums found by claim_id)."""
    plan = compile_policy("city_configs/rizhao", SHIPPED)
    claims = generate_claims(3_000, 17)
    order = np.random.default_rng(2).permutation(claims.num_rows)
    results = provider.append_claim_columns_in_order(plan, pa.table({
        "claim_id": claims.column("claim_id").take(pa.array(order)),
        "hospital_id": claims.column("hospital_id").take(pa.array(order)),
        "self_pay": pa.array(np.arange(claims.num_rows) % 977, pa.int64())}), claims, order)
    by_id = provider.provider_partials(plan, claims, results)
    texts = compute.texts

    def no_claim_ids(table, name):
        assert name != "claim_id", "a claim looked up by its id"
        return texts(table, name)
    monkeypatch.setattr(compute, "texts", no_claim_ids)
    aligned = provider.provider_partials(plan, claims, results, rows=order)
    monkeypatch.undo()
    assert aligned == by_id
    alliance = plan.provider.alliances[0]
    rows, scored = provider._settlement_input(plan, claims, results, rows=order)
    assert aligned[provider.ALLIANCE_KEY + alliance.name][0] == compute.alliance_sums(
        alliance, rows, scored, provider.PATIENT_PAID)
    assert aligned[provider.ALLIANCE_KEY + alliance.name][0]


def test_points_beyond_int64_stop_the_run_naming_pool_and_claim(city, tmp_path, capsys):
    claims = generate_claims(300, 31)
    setting = claims.column("setting").cast(pa.string()).to_pylist()
    at = setting.index("inpatient")
    total = claims.column("total").to_pylist()
    total[at] = 5 * 10**12  # 50 billion yuan: beyond what the points pass can score
    claims = claims.set_column(claims.schema.get_field_index("total"), "total",
                               pa.array(total, pa.int64()))
    pq.write_table(claims, tmp_path / "claims.parquet")
    code = main(["settle", str(city), str(tmp_path / "claims.parquet"), "--out",
                 str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    claim = claims.column("claim_id")[at].as_py()
    assert f"pool drg: claim {claim}" in err and "Traceback" not in err

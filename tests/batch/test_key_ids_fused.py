"""Key ids from ingestion (issue 14, w15): arrow_io.prepare numbers the person and a family
key (falling back to the person) in the pass that checks the claim ids
(_ingest.claim_and_key_ids), and engine._keys hands those ids to the kernel instead of hashing
the key columns again. They must be exactly the ids the hashing gave
(lower.dense_ids(lower.key_values(prep.raw, key)): first appearance over the accepted rows),
whatever the producer's Arrow types, chunks and slices, after rejects by ingestion and by a
plugin validator (arrow_io.reject_more), with values longer than the 16 bytes a key record
keeps and a family id equal to some person id (a different value: it is the family's)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_reference import text_array as _text  # tests/ is on the path (tests/conftest.py)
from yibao.core import _ingest
from yibao.core.arrow_io import fused_keys, prepare, reject_more
from yibao.core.engine import _keys
from yibao.core.generate import generate_claims
from yibao.core.lower import dense_ids, key_values

REFERENCE = Path(__file__).resolve().parents[2] / "city_configs" / "reference"

TEXT_TYPES = ["string", "large_string", "dictionary", "string_view"]
# short ids, ids longer than a key record's 16-byte head that share it, and a family id
# spelt as a person id
IDS = ["P1", "P2", "P3", "a-very-long-identifier-0001", "a-very-long-identifier-0002",
       "a-very-long-identifier-00021", "", "中文标识"]


def _hashed(plan, prep) -> dict:
    """The ids as engine._keys made them before ingestion numbered them."""
    return {key.name: dense_ids(key_values(prep.raw, key)) if prep.n else
            (np.zeros(0, np.int64), 0) for key in plan.keys()}


def _assert_same_ids(plan, prep) -> None:
    expected = _hashed(plan, prep)
    for key in plan.keys():
        got_ids, got_count = _keys(plan, prep)[key.name]
        ids, count = expected[key.name]
        assert got_count == count, key.name
        assert np.array_equal(got_ids, ids), key.name


@st.composite
def batches(draw):
    """A generated batch with drawn claim, person and family ids (nulls, duplicates), in a
    drawn text type, cut into drawn chunks and taken from a drawn offset."""
    n = draw(st.integers(0, 40))
    lead = draw(st.integers(0, 3))  # rows before the slice
    claims = generate_claims(n + lead, seed=draw(st.integers(0, 3)))
    ids = st.one_of(st.none(), st.sampled_from(IDS))
    claim_ids = [draw(st.one_of(st.sampled_from([None, "C1", "C2"]),
                                st.just(f"K{k}"))) for k in range(n + lead)]
    persons = [draw(st.one_of(st.sampled_from(IDS), st.just(None)))
               if draw(st.integers(0, 9)) == 0 else draw(st.sampled_from(IDS[:5]))
               for _ in range(n + lead)]
    families = [draw(ids) for _ in range(n + lead)]
    kind = draw(st.sampled_from(TEXT_TYPES))
    table = claims.set_column(0, "claim_id", _text(kind, claim_ids))
    for name, values in (("person_id", persons), ("family_id", families)):
        table = table.set_column(table.schema.get_field_index(name), name, _text(kind, values))
    cuts = sorted(draw(st.lists(st.integers(0, n + lead), max_size=3)))
    bounds = [0, *cuts, n + lead]
    table = pa.concat_tables([table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])])
    return table.slice(lead)


@pytest.mark.parametrize("policy", ["plan", "family_plan"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(table=batches(), data=st.data())
def test_ingestion_key_ids_are_the_hashed_ids(policy, request, table, data):
    """prepare's key ids equal the hashed ids, and so do those left after reject_more."""
    plan = request.getfixturevalue(policy)
    prep = prepare(plan, table)
    assert set(prep.key_ids) == {k.name for k in plan.keys()}  # every key here is fused
    _assert_same_ids(plan, prep)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=prep.n, max_size=prep.n)),
                    dtype=bool)
    fewer = reject_more(prep, mask, "plugin_check", ["checked"] * int(mask.sum()))
    _assert_same_ids(plan, fewer)


def test_many_rows_on_a_thread_and_a_growing_table(family_plan, monkeypatch):
    """Above ID_ROWS the id pass runs on a thread of its own; its key tables grow many times
    (thousands of values): the same ids, the same rejects as on one thread."""
    claims = generate_claims(70_000, seed=3)
    ids = claims.column("claim_id").to_pylist()
    ids[10], ids[69_000] = ids[5], None  # a duplicate and a null claim id
    claims = claims.set_column(0, "claim_id", pa.array(ids, pa.string()))
    threaded = prepare(family_plan, claims)
    _assert_same_ids(family_plan, threaded)
    monkeypatch.setenv("YIBAO_THREADS", "1")
    alone = prepare(family_plan, claims)
    assert [r[:3] for r in alone.rejects] == [r[:3] for r in threaded.rejects]
    assert len(threaded.rejects) == 3
    for name, (ids, count) in alone.key_ids.items():
        assert count == threaded.key_ids[name][1] > 5_000
        assert np.array_equal(ids, threaded.key_ids[name][0])


def test_a_refined_key_is_left_to_the_engine(plan, registry, tmp_path):
    """A key refined per month is not numbered by ingestion: engine._keys hashes it from
    its values, beside the person's ids from ingestion."""
    from yibao.dsl.compiler import compile_policy
    text = (REFERENCE / "policy.yb").read_text(encoding="utf-8").replace(
        "cap 5_000 yuan per person per year", "cap 5_000 yuan per person per month")
    (tmp_path / "policy.yb").write_text(text, encoding="utf-8")
    monthly = compile_policy(tmp_path, registry=registry)
    assert len(monthly.keys()) == 2
    claims = generate_claims(300, seed=1)
    assert [name for name, _, _ in fused_keys(monthly, claims.schema)] == ["person"]
    prep = prepare(monthly, claims)
    assert set(prep.key_ids) == {"person"}
    _assert_same_ids(monthly, prep)


def test_fallback_values_never_equal_own_values():
    """A family id spelt as a person id is another value than that person's fallback."""
    claim = pa.array(["a", "b", "c", "d"])
    family = pa.array(["P1", None, "P1", None])
    person = pa.array(["P9", "P1", "P1", "P9"])
    first = np.full(4, _ingest.NO_CHECK, dtype=np.int16)
    [(ids, count)] = _ingest.claim_and_key_ids(claim, first, 0, 1, [(family, person)])
    assert ids.tolist() == [0, 1, 0, 2] and count == 3
    assert (first == _ingest.NO_CHECK).all()


def test_key_columns_must_be_text_of_the_claims_length():
    first = np.full(2, _ingest.NO_CHECK, dtype=np.int16)
    with pytest.raises(TypeError, match="string"):
        _ingest.claim_and_key_ids(pa.array(["a", "b"]), first, 0, 1,
                                  [(pa.array([1, 2]), None)])
    with pytest.raises(ValueError, match="as many rows"):
        _ingest.claim_and_key_ids(pa.array(["a", "b"]), first, 0, 1,
                                  [(pa.array(["x"]), None)])

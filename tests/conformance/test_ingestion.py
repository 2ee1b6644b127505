"""Batches that cannot be settled are refused, naming the column; bad rows go to rejects."""
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core.arrow_io import ClaimsError
from yibao.core.engine import settle

from .corpus import claims_table
from .plans import reference_plan

CLAIMS = [{"claim_id": "A", "total": 100}, {"claim_id": "B", "total": 250.5}]


def _with(table, name, array):
    return table.set_column(table.schema.get_field_index(name), name, array)


@pytest.mark.parametrize("typ,fragment", [
    (pa.float64(), "floats are never money"),
    (pa.string(), "money must be"),
    (pa.decimal128(12, 3), "3 decimal places"),
])
def test_wrong_money_types_are_refused_naming_the_column(typ, fragment):
    table = claims_table(CLAIMS)
    bad = pc.cast(table.column("in_scope"), pa.int64())
    bad = pa.array([Decimal(v).scaleb(-2) for v in bad.to_pylist()], pa.decimal128(12, 3)) \
        if pa.types.is_decimal(typ) else bad.cast(typ)
    with pytest.raises(ClaimsError, match=fragment) as err:
        settle(reference_plan(), _with(table, "in_scope", bad))
    assert "'in_scope'" in str(err.value)


def test_a_missing_column_is_refused_naming_it():
    table = claims_table(CLAIMS).drop_columns(["tier"])
    with pytest.raises(ClaimsError, match="no column 'tier'"):
        settle(reference_plan(), table)


def test_every_row_is_settled_or_rejected_with_a_reason():
    rows = [{"claim_id": "A", "total": 100}, {"claim_id": "A", "total": 100},
            {"claim_id": None, "total": 1}, {"claim_id": "C", "total": 10, "in_scope": 20},
            {"claim_id": "D", "total": 10, "self_first": 11}, {"claim_id": "E", "tier": "gold"},
            {"claim_id": "F", "person_id": None, "total": 5}, {"claim_id": "G", "total": 10}]
    out = settle(reference_plan(), claims_table(rows))
    reasons = dict(zip(out.rejects.column("row").to_pylist(),
                       out.rejects.column("reason").to_pylist()))
    assert reasons == {0: "duplicate_claim_id", 1: "duplicate_claim_id", 2: "null_claim_id",
                       3: "in_scope_exceeds_total", 4: "self_first_exceeds_in_scope",
                       5: "unknown_value", 6: "null_value"}
    assert out.results.column("claim_id").to_pylist() == ["G"]
    assert out.results.num_rows + out.rejects.num_rows == len(rows)


def test_messages_never_show_a_raw_insured_id():
    rows = [{"claim_id": "A", "person_id": "330102199001011234", "tier": "gold"}]
    out = settle(reference_plan(), claims_table(rows))
    assert out.rejects.num_rows == 1
    assert "330102199001011234" not in out.rejects.column("message")[0].as_py()


def test_a_policy_paying_more_than_the_total_stops_the_run():
    from yibao.core.engine import SettlementError
    from yibao.core.reference import settle as settle_reference
    from yibao.dsl.compiler import compile_text
    plan = compile_text('policy "p" {\n  effective 2024-01-01 to 2024-12-31\n}\n'
                        'layer a "a" {\n  base in_scope + total\n}\n', "p.yb")
    claims = claims_table([{"claim_id": "A1", "total": 100}])
    for evaluator in (settle, settle_reference):
        with pytest.raises(SettlementError, match="claim 'A1'"):
            evaluator(plan, claims)


def test_polars_string_view_columns_are_read():
    pl = pytest.importorskip("polars")
    table = claims_table(CLAIMS)
    frame = pl.from_arrow(table)
    assert settle(reference_plan(), frame).results.equals(
        settle(reference_plan(), table).results)

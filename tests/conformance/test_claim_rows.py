"""The plain-Python row source (core/claim_rows.py) and the oracle's row entry
(``reference.settle_rows``) against ``arrow_io.prepare`` and ``reference.settle`` (issue 13,
``yibao explain --run`` without numpy or pyarrow): on generated policies and batches, with
invalid values, nulls in any column, money as integers of other widths or decimal yuan
(beyond int64 fen too), far dates and duplicate ids, the rows held as a key index holds them
(its column files written and read back) give

- the same accepted rows in engine units (``reference._rows``), input rows and rejects
  (reason and message, in the order the checks ran) as ``prepare``;
- the same settlement: accepted claims in settlement order, rejects, and every claim's
  explanation (the recorder hearing the same steps), or the same refusal."""
from __future__ import annotations

import datetime
import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.core import key_index, reference
from yibao.core.arrow_io import normal_table, prepare
from yibao.core.claim_rows import prepare_rows, supported
from yibao.core.explain import Recorder
from yibao.core.registry import default_registry
from yibao.core.settlement import SettlementError

from .plans import reference_plan
from .policies import plans
from .strategies import batches

PLAN = reference_plan()
FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
NULLABLE = ["claim_id", "person_id", "family_id", "tier", "low_income", "setting",
            "hospital_level", "discharge_date", "total", "in_scope", "self_first"]
MONEY = ["total", "in_scope", "self_first"]
MONEY_TYPES = [pa.int64(), pa.int32(), pa.decimal128(18, 2), pa.decimal128(38, 2),
               pa.decimal256(40, 1)]


@st.composite
def typed_batches(draw):
    """``strategies.batches`` with nulls anywhere, money in another type (decimal yuan, a
    value beyond int64 fen), a day far outside the calendar ``datetime`` knows."""
    batch = draw(batches(max_size=25, invalid=True))
    rows = batch.to_pylist()
    for _ in range(draw(st.integers(0, 3)) if rows else 0):
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.sampled_from(NULLABLE))] = None
    table = pa.Table.from_pylist(rows, schema=batch.schema)
    money_type = draw(st.sampled_from(MONEY_TYPES))
    huge = draw(st.booleans()) and rows and money_type == pa.decimal128(38, 2)
    for name in MONEY:
        table = _money_as(table, name, money_type, huge)
    if rows and draw(st.booleans()):
        table = _far_day(table, draw(st.integers(0, len(rows) - 1)),
                         draw(st.sampled_from([3_000_000, -800_000, 2**31 - 1])))
    return table


def _money_as(table, name, t, huge):
    """Column ``name`` (int64 fen) as type ``t``: decimal yuan (scale 1: whole fen tens
    rounded away is not exact, so only multiples of 10 fen), or a narrower integer where
    the values fit; ``huge``: the first row's amount 10**18 yuan (beyond int64 fen)."""
    fen = table.column(name).to_pylist()
    if pa.types.is_decimal(t):
        values = [None if v is None else Decimal(v - v % 10 if t.scale < 2 else v)
                  .scaleb(-2).quantize(Decimal(1).scaleb(-t.scale)) for v in fen]
        if huge:
            values[0] = Decimal(10**18)
    elif all(v is None or -2**31 <= v < 2**31 for v in fen):
        values = fen
    else:
        return table
    i = table.schema.get_field_index(name)
    return table.set_column(i, pa.field(name, t), pa.array(values, t))


def _far_day(table, row, day):
    days = table.column("discharge_date").cast(pa.int32()).to_pylist()
    days[row] = day
    i = table.schema.get_field_index("discharge_date")
    return table.set_column(i, pa.field("discharge_date", pa.date32()),
                            pa.array(days, pa.int32()).cast(pa.date32()))


def held(batch):
    """The batch's rows as a key index holds them: its column files written and read back."""
    with tempfile.TemporaryDirectory() as folder:
        columns, _ = key_index._write_columns(normal_table(batch), Path(folder))
        index = key_index.KeyIndex(Path(folder), {"columns": columns})
        return index.rows_at(list(range(batch.num_rows)))


def settled_by_batch(plan, batch, registry) -> tuple:
    recorder = Recorder(None, registry)
    try:
        out = reference.settle(plan, batch, registry, record=recorder)
    except SettlementError as exc:
        return str(exc)
    return (out.results.column("claim_id").to_pylist(), out.rejects.to_pylist(),
            {c: ex.to_dict() for c, ex in recorder.explained.items()})


def settled_by_rows(plan, rows, registry) -> tuple:
    recorder = Recorder(None, registry)
    try:
        out = reference.settle_rows(plan, prepare_rows(plan, rows), registry, record=recorder)
    except SettlementError as exc:
        return str(exc)
    rejects = [{"claim_id": c, "row": r, "reason": why, "message": m}
               for r, c, why, m in out.rejects]
    return (out.claim_ids, rejects, {c: ex.to_dict() for c, ex in recorder.explained.items()})


def assert_prepared_alike(plan, batch):
    rows = held(batch)
    assert supported(plan, rows)
    want = prepare(plan, batch)
    got = prepare_rows(plan, rows)
    assert got.rejects == want.rejects
    assert got.input_rows == want.input_rows().tolist()
    assert got.rows == reference._rows(plan, want)


@FAST
@given(plan=plans(), batch=typed_batches())
def test_the_row_source_prepares_as_prepare(plan, batch):
    assert_prepared_alike(plan, batch)


@FAST
@given(plan=plans(), batch=typed_batches())
def test_the_row_entry_settles_and_explains_as_the_batch_entry(plan, batch):
    registry = default_registry()
    assert reference.rows_apply(plan, registry)
    assert settled_by_rows(plan, held(batch), registry) == \
        settled_by_batch(plan, batch, registry)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=typed_batches())
def test_the_reference_plan_alike(batch):
    """The conformance corpus's hand-written plan (lookups, bands, shared caps)."""
    registry = default_registry()
    assert_prepared_alike(PLAN, batch)
    assert settled_by_rows(PLAN, held(batch), registry) == \
        settled_by_batch(PLAN, batch, registry)


def test_a_far_day_is_shown_as_numpy_shows_it():
    """A discharge in year 10000 (or -221) is rejected with its day shown, as ``prepare``
    shows it, not a crash in ``datetime``."""
    batch = pa.table({"claim_id": ["a", "b"], "person_id": ["p", "p"],
                      "discharge_date": pa.array([3_000_000, -800_000], pa.int32())
                      .cast(pa.date32()), "total": [100, 200], "in_scope": [100, 200],
                      "self_first": [0, 0], "tier": ["tier1", "tier2"],
                      "low_income": [False, True], "setting": ["inpatient", "rehab"],
                      "hospital_level": pa.array([1, 2], pa.int8()),
                      "family_id": [None, None]})
    got = prepare_rows(PLAN, held(batch))
    assert [r[3] for r in got.rejects] == [r[3] for r in prepare(PLAN, batch).rejects]
    assert "10183-09-21" in got.rejects[0][3] and "-221-09-04" in got.rejects[1][3]
    assert datetime.date.max.year < 10183

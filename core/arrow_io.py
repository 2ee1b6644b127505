"""Claims in: read, check and convert a claim batch into engine units.

``prepare(plan, claims)`` is the one boundary between Arrow data and the evaluators. It
- refuses a batch that cannot be settled at all (a missing column, a float or string money
  column, decimals with more than 2 places) with ``ClaimsError`` naming the column;
- sends every row that breaks the claim contract to the rejects, with a reason code and a
  message (null or duplicate claim_id, negative amounts, in_scope > total, self_first >
  in_scope, a value outside a closed domain, a date outside the policy period, a null where a
  value is needed);
- converts the accepted rows' columns to numpy arrays in engine units (plan.py).

Accepted + rejected = input rows, always.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .plan import BOOL, DATE, INT, MONEY, RATIO, TEXT, Plan, Type
from . import _ids
from .privacy import mask_id

MONEY_COLUMNS = ("total", "in_scope", "self_first")
REQUIRED = ("claim_id", "person_id", "discharge_date", "total")

# Reject reason codes, in the order the checks run (a row gets the first that applies).
REASONS = {
    "null_claim_id": "claim_id is null",
    "duplicate_claim_id": "claim_id appears more than once in the batch",
    "null_value": "a column the policy reads is null",
    "negative_amount": "a money amount is negative",
    "in_scope_exceeds_total": "in_scope is greater than total",
    "self_first_exceeds_in_scope": "self_first is greater than in_scope",
    "unknown_value": "a value outside the column's declared domain",
    "outside_policy_period": "discharge_date is outside every policy year of the policy",
    "missing_table_key": "no row of a lookup table matches the claim",
}


class ClaimsError(ValueError):
    """The batch as a whole cannot be settled (exit code 2)."""


@dataclass
class Prepared:
    """Accepted rows in engine units. ``rows`` are their input row numbers (ascending)."""
    n: int
    rows: np.ndarray  # int64 input row numbers of accepted rows
    claim_id: pa.Array  # accepted claim ids (string)
    columns: dict  # name -> numpy array (engine units) or pa.Array for open text
    raw: pa.Table  # accepted rows of the input, original columns (keys, extra outputs)
    rejects: list = field(default_factory=list)  # (row, claim_id, reason, message)


def as_table(claims) -> pa.Table:
    """Any Arrow producer to a Table: Table, RecordBatch, RecordBatchReader, or an object with
    ``__arrow_c_stream__`` (Polars DataFrame, DuckDB relation). Polars hands text over as
    ``string_view``; it is cast to plain strings here so the rest sees one text layout."""
    return _plain_text(_any_table(claims))


def _plain_text(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_string_view(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
    return table


def _any_table(claims) -> pa.Table:
    if isinstance(claims, pa.Table):
        return claims
    if isinstance(claims, pa.RecordBatch):
        return pa.Table.from_batches([claims])
    if isinstance(claims, pa.RecordBatchReader):
        return claims.read_all()
    if hasattr(claims, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(claims).read_all()
    if hasattr(claims, "arrow"):  # DuckDB relations before the C stream protocol
        return _any_table(claims.arrow())
    raise ClaimsError(f"cannot read claims from a {type(claims).__name__}: give a pyarrow Table, "
                      "a RecordBatchReader or an object with __arrow_c_stream__")


# -- column checks (whole batch) -------------------------------------------------------------

def _check_columns(plan: Plan, table: pa.Table) -> None:
    names = set(table.column_names)
    needed = {c.name for c in plan.columns} | set(REQUIRED)
    missing = sorted(needed - names)
    if missing:
        raise ClaimsError(f"the claims have no column {', '.join(map(repr, missing))}, which the "
                          f"policy {plan.name!r} reads; add it to the batch")
    for col in plan.columns:
        _check_type(col.name, col.type, table.schema.field(col.name).type)


def _check_type(name: str, typ: Type, arrow_type: pa.DataType) -> None:
    base = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    ok = {
        MONEY: lambda t: pa.types.is_int64(t) or (pa.types.is_decimal(t) and t.scale <= 2),
        RATIO: lambda t: pa.types.is_integer(t),
        INT: pa.types.is_integer,
        BOOL: pa.types.is_boolean,
        TEXT: lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        DATE: lambda t: pa.types.is_date32(t),
    }[typ.kind](base)
    if ok:
        return
    if typ.kind == MONEY and pa.types.is_decimal(base):
        raise ClaimsError(f"column {name!r} is {arrow_type} with {base.scale} decimal places; "
                          "money must be decimal128(p, 2) yuan or int64 fen")
    hint = {MONEY: "money must be decimal128(p, 2) yuan or int64 fen (floats are never money)",
            DATE: "dates must be date32"}.get(typ.kind, f"expected {typ.kind}")
    raise ClaimsError(f"column {name!r} has type {arrow_type}: {hint}")


# -- conversions -----------------------------------------------------------------------------

def money_to_fen(arr: pa.ChunkedArray) -> np.ndarray:
    """int64 fen from int64 fen or decimal yuan with at most 2 places (exact, no float)."""
    t = arr.type
    if pa.types.is_decimal(t):
        scaled = pc.multiply(arr, pa.scalar(100, pa.decimal128(3, 0)))  # yuan -> fen
        arr = pc.cast(scaled, pa.int64())  # exact: at most 2 places, so no fraction is left
    return _int_numpy(arr, np.int64)


def _int_numpy(arr, dtype) -> np.ndarray:
    arr = pc.fill_null(arr, 0) if arr.null_count else arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def domain_codes(arr, domain: tuple) -> pa.Array:
    """Index of each value in ``domain`` (null where outside it). Dictionary columns map their
    dictionary once and take through the indices, so the cost is per distinct value."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    values = pa.array([str(v) for v in domain]) if _is_text(arr.type) else pa.array(domain)
    if pa.types.is_dictionary(arr.type):
        dict_codes = pc.index_in(arr.dictionary, value_set=values.cast(arr.dictionary.type))
        return pc.take(dict_codes, arr.indices)
    return pc.index_in(arr, value_set=values.cast(arr.type))


def _is_text(t) -> bool:
    t = t.value_type if pa.types.is_dictionary(t) else t
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _engine_column(arr, typ: Type):
    if typ.kind == MONEY:
        return money_to_fen(arr)
    if typ.kind == BOOL:
        return _int_numpy(pc.cast(arr, pa.int8()), np.int64).astype(bool)
    if typ.kind == DATE:
        return _int_numpy(pc.cast(arr, pa.int32()), np.int64)
    if typ.kind == TEXT and typ.domain is not None:
        return _int_numpy(pc.fill_null(domain_codes(arr, typ.domain), -1), np.int64)
    if typ.kind == TEXT:
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
    return _int_numpy(arr, np.int64)


# -- row checks ------------------------------------------------------------------------------

def _np_bool(arr) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _duplicate_mask(claim_id) -> np.ndarray:
    """Rows whose claim_id occurs more than once (all copies); nulls are not duplicates."""
    return _ids.duplicate_mask(claim_id)


def policy_period_mask(plan: Plan, days: np.ndarray) -> np.ndarray:
    return (days >= plan.effective_from) & (days <= plan.effective_to)


def _row_checks(plan: Plan, table: pa.Table, converted: dict):
    """Yield (reason, mask, column) for each check, in REASONS order."""
    claim_id = table.column("claim_id")
    yield "null_claim_id", _np_bool(pc.is_null(claim_id)), "claim_id"
    yield "duplicate_claim_id", _duplicate_mask(claim_id), "claim_id"
    key_columns = {k.column for k in plan.keys()} - {"person_id"}  # null falls back to person
    for name in [c.name for c in plan.columns if c.name not in key_columns] + ["person_id"]:
        yield "null_value", _np_bool(pc.is_null(table.column(name))), name
    for name in MONEY_COLUMNS:
        if name in converted:
            yield "negative_amount", converted[name] < 0, name
    if "in_scope" in converted:
        yield "in_scope_exceeds_total", converted["in_scope"] > converted["total"], "in_scope"
    if "self_first" in converted and "in_scope" in converted:
        yield ("self_first_exceeds_in_scope", converted["self_first"] > converted["in_scope"],
               "self_first")
    for col in plan.columns:
        if col.type.domain is not None:
            nulls = _np_bool(pc.is_null(table.column(col.name)))
            values = converted[col.name]
            outside = (values < 0) if col.type.kind == TEXT else ~np.isin(values, col.type.domain)
            yield "unknown_value", outside & ~nulls, col.name
    yield ("outside_policy_period", ~policy_period_mask(plan, converted["discharge_date"]),
           "discharge_date")


def _message(reason: str, column: str, value) -> str:
    base = REASONS[reason]
    if reason in ("null_claim_id", "duplicate_claim_id", "outside_policy_period",
                  "in_scope_exceeds_total", "self_first_exceeds_in_scope"):
        return base if value is None else f"{base} ({column} = {value})"
    if column == "person_id":
        value = mask_id(value)
    return f"{base}: {column} = {value!r}" if reason != "null_value" else f"{base}: {column}"


def _converted_columns(plan: Plan, table: pa.Table) -> dict:
    out = {}
    types = {c.name: c.type for c in plan.columns}
    types.setdefault("discharge_date", Type(DATE))
    for name in MONEY_COLUMNS:
        if name in table.column_names:
            types.setdefault(name, Type(MONEY))
    for name, typ in types.items():
        out[name] = _engine_column(table.column(name), typ)
    return out


def prepare(plan: Plan, claims) -> Prepared:
    """Check a batch against ``plan`` and convert its accepted rows (see module docstring)."""
    table = as_table(claims)
    _check_columns(plan, table)
    if "total" in table.column_names:
        _check_type("total", Type(MONEY), table.schema.field("total").type)
    converted = _converted_columns(plan, table)
    n = table.num_rows
    rejected = np.zeros(n, dtype=bool)
    rejects = []
    for reason, mask, column in _row_checks(plan, table, converted):
        new = mask & ~rejected
        if new.any():
            rejects.extend(_reject_rows(table, np.flatnonzero(new), reason, column))
            rejected |= new
    rows = np.flatnonzero(~rejected).astype(np.int64)
    return _accepted(plan, table, converted, rows, rejects)


def _reject_rows(table, rows, reason, column):
    ids = table.column("claim_id").take(pa.array(rows)).to_pylist()
    values = table.column(column).take(pa.array(rows)).to_pylist()
    for row, cid, value in zip(rows.tolist(), ids, values):
        if isinstance(value, datetime.date):
            value = value.isoformat()
        yield (row, cid, reason, _message(reason, column, value))


def _accepted(plan, table, converted, rows, rejects) -> Prepared:
    full = len(rows) == table.num_rows
    take = (lambda a: a) if full else (lambda a: a[rows])
    raw = table if full else table.take(pa.array(rows))
    columns = {}
    for name, values in converted.items():
        columns[name] = take(values) if isinstance(values, np.ndarray) else (
            values if full else values.take(pa.array(rows)))
    claim_id = raw.column("claim_id").combine_chunks()
    return Prepared(len(rows), rows, claim_id, columns, raw, rejects)


def reject_more(prep: Prepared, bad: np.ndarray, reason: str, messages) -> Prepared:
    """Move the accepted rows flagged in ``bad`` (a mask over accepted rows) to the rejects."""
    idx = np.flatnonzero(bad)
    ids = prep.claim_id.take(pa.array(idx)).to_pylist()
    extra = [(int(prep.rows[i]), cid, reason, messages[k]) for k, (i, cid) in
             enumerate(zip(idx.tolist(), ids))]
    keep = np.flatnonzero(~bad)
    return Prepared(
        len(keep), prep.rows[keep], prep.claim_id.take(pa.array(keep)),
        {k: (v[keep] if isinstance(v, np.ndarray) else v.take(pa.array(keep)))
         for k, v in prep.columns.items()},
        prep.raw.take(pa.array(keep)), prep.rejects + extra)


REJECT_SCHEMA = pa.schema([("claim_id", pa.string()), ("row", pa.int64()),
                           ("reason", pa.string()), ("message", pa.string())])


def rejects_table(rejects) -> pa.Table:
    rejects = sorted(rejects, key=lambda r: r[0])
    return pa.table({
        "claim_id": pa.array([r[1] for r in rejects], pa.string()),
        "row": pa.array([r[0] for r in rejects], pa.int64()),
        "reason": pa.array([r[2] for r in rejects], pa.string()),
        "message": pa.array([r[3] for r in rejects], pa.string()),
    }, schema=REJECT_SCHEMA)

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

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .plan import BOOL, DATE, INT, MONEY, RATIO, TEXT, Plan, Type
from . import _ids
from .privacy import mask_id
from .errors import YibaoError

MONEY_COLUMNS = ("total", "in_scope", "self_first")
REQUIRED = ("claim_id", "person_id", "discharge_date", "total")

# Reject reason codes, in the order the checks run (a row gets the first that applies).
REASONS = {
    "null_claim_id": "claim_id is null",
    "duplicate_claim_id": "claim_id appears more than once in the batch",
    "null_value": "a column the policy reads is null",
    "amount_out_of_range": "a money amount does not fit in int64 fen (±92 233 720 368 547 758.07 "
                           "yuan)",
    "negative_amount": "a money amount is negative",
    "in_scope_exceeds_total": "in_scope is greater than total",
    "self_first_exceeds_in_scope": "self_first is greater than in_scope",
    "unknown_value": "a value outside the column's declared domain",
    "outside_policy_period": "discharge_date is outside every policy year of the policy",
    "missing_table_key": "no row of a lookup table matches the claim",
}


class ClaimsError(YibaoError, ValueError):
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
    ``__arrow_c_stream__`` (Polars DataFrame, DuckDB relation), in the one layout the rest of
    yibao reads (``normal_table``). Two columns of one name are refused (``ClaimsError``)."""
    table = _any_table(claims)
    check_unique_names(table.schema)
    return normal_table(table)


def check_unique_names(schema: pa.Schema, where: str = "the claims") -> None:
    """Refuse a schema with two columns of one name: which one would be settled is a guess."""
    seen, twice = set(), []
    for name in schema.names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        raise ClaimsError(f"{where} have more than one column named "
                          f"{', '.join(map(repr, twice))}; keep one and rename or drop the others")


# -- one layout for every producer ------------------------------------------------------------
# Parquet, Polars, DuckDB and Spark hand the same data over in different Arrow types. They are
# brought to one layout here, at the boundary, so that nothing downstream (the checks, the hash
# of ids, spilling, the results' raw columns) depends on which producer wrote the batch:
# - text (string_view, large_string, a dictionary of either) -> string; any dictionary is
#   decoded; a list of text -> list<string>;
# - date64 and timestamps (any unit) -> date32: the calendar day. A timestamp with a time zone
#   is an instant: its day is the date on the wall clock of that zone (Spark's and DuckDB's
#   TIMESTAMP WITH TIME ZONE written as Asia/Shanghai gives the Chinese calendar date); a
#   timestamp without a zone is a wall-clock time: its day is the date as written. A day
#   beyond what date32 holds (about year ±5.8 million) is clamped to date32's extreme, which
#   lies outside every policy period, so such a row is rejected (outside_policy_period).
# Money and integers keep their type: int8-int64 and decimals of any precision are converted
# (exactly, row by row) where they are read, ``money_to_fen``.

def normal_type(t: pa.DataType) -> pa.DataType:
    """The type a column of type ``t`` has after ``normal_table`` (lists of codes, e.g.
    ``secondary_dx``, included: Polars hands them over as list<string_view>)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if _is_text_type(t):
        return pa.string()
    if pa.types.is_date64(t) or pa.types.is_timestamp(t):
        return pa.date32()
    if _is_list_type(t) and normal_type(t.value_type) != t.value_type:
        return pa.list_(normal_type(t.value_type))
    return t


def _is_list_type(t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) \
        or pa.types.is_large_list_view(t)


def normal_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as ``normal_table`` leaves it (claim files of a run are compared so)."""
    return pa.schema([pa.field(f.name, normal_type(f.type)) for f in schema])


def normal_table(table: pa.Table) -> pa.Table:
    """``table`` in the one layout (above); columns already in it are not copied."""
    for i, f in enumerate(table.schema):
        if normal_type(f.type) != f.type:
            table = table.set_column(i, f.name, _normal_column(table.column(i)))
    return table


def _normal_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    chunks = [_normal_chunk(c) for c in col.chunks]
    return pa.chunked_array(chunks, normal_type(col.type))


def _normal_chunk(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):  # decode after normalising the (small) dictionary:
        # pyarrow has no take kernel for string_view
        arr = _normal_chunk(arr.dictionary).take(arr.indices)
    if _is_text_type(arr.type):
        return arr.cast(pa.string())
    if pa.types.is_date64(arr.type) or pa.types.is_timestamp(arr.type):
        return _calendar_days(arr)
    if _is_list_type(arr.type) and normal_type(arr.type) != arr.type:
        return arr.cast(normal_type(arr.type))  # lists of text: their values as string
    return arr


def _is_text_type(t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
_DATE32 = (-(2**31), 2**31 - 1)
_LOCAL_DAYS = 3_000_000  # |days| a zone shift is computed for (year ±8000); beyond: UTC day


def _calendar_days(arr: pa.Array) -> pa.Array:
    """date32 day of a date64 or timestamp array (module comment above), by integer floor
    division so that no extreme value overflows."""
    unit = "ms" if pa.types.is_date64(arr.type) else arr.type.unit
    per_day = _PER_DAY[unit]
    values = np.asarray(arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
                        dtype=np.int64)
    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        values = _wall_clock(values, arr.type, per_day)
    days = np.clip(values // per_day, *_DATE32).astype(np.int32)
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return pa.array(days, pa.int32(), mask=mask if mask.any() else None).cast(pa.date32())


def _wall_clock(values: np.ndarray, t: pa.DataType, per_day: int) -> np.ndarray:
    """Instants (int64 in unit ``t.unit``) to the wall-clock time of zone ``t.tz``. Instants
    further than ``_LOCAL_DAYS`` from 1970 keep their UTC time: the zone database cannot shift
    them, a shift moves the day by at most one, and they are outside every policy period."""
    bound = min(_LOCAL_DAYS * per_day, 2**62)
    near = (values >= -bound) & (values <= bound)
    local = pc.local_timestamp(pa.array(np.where(near, values, 0), pa.timestamp(t.unit, t.tz)))
    shifted = np.asarray(local.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(near, shifted, values)


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
        MONEY: lambda t: _is_fen_integer(t) or (pa.types.is_decimal(t) and t.scale <= 2),
        RATIO: lambda t: pa.types.is_integer(t),
        INT: pa.types.is_integer,
        BOOL: pa.types.is_boolean,
        TEXT: lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        DATE: lambda t: pa.types.is_date32(t) or pa.types.is_date64(t)
        or pa.types.is_timestamp(t),
    }[typ.kind](base)
    if ok:
        return
    if typ.kind == MONEY and pa.types.is_decimal(base):
        raise ClaimsError(f"column {name!r} is {arrow_type} with {base.scale} decimal places; "
                          "money must be decimal yuan with at most 2 places or integer fen")
    hint = {MONEY: "money must be decimal yuan with at most 2 places or integer fen (floats "
                   "are never money)",
            DATE: "dates must be date32, date64 or a timestamp"}.get(typ.kind, f"expected {typ.kind}")
    raise ClaimsError(f"column {name!r} has type {arrow_type}: {hint}")


def _is_fen_integer(t) -> bool:
    """Integer fen: any signed integer, or an unsigned one that always fits int64."""
    return pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32())


# -- conversions -----------------------------------------------------------------------------

INT64_MAX = 2**63 - 1


def money_to_fen(arr) -> np.ndarray:
    """int64 fen from integer fen (int8-int64) or decimal yuan with at most 2 places, exact,
    no float; a value that does not fit int64 fen (and a null) is 0 here: ``money_fen`` says
    which."""
    return money_fen(arr)[0]


def money_fen(arr) -> tuple:
    """(int64 fen, bool mask of the non-null values that do not fit int64 fen). Decimals of any
    width and precision are read from their unscaled integers, never through a decimal of
    more places (decimal128(38, 2) x 100 would need precision 41)."""
    arr = _one_chunk(arr)
    if not pa.types.is_decimal(arr.type):
        return _int_numpy(arr, np.int64), np.zeros(len(arr), dtype=bool)
    unscaled, fits = _decimal_unscaled(arr)
    factor = 10 ** (2 - arr.type.scale)  # scale <= 2 (checked): fen per unscaled unit
    limit = INT64_MAX // factor
    fits &= (unscaled >= -limit) & (unscaled <= limit)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    keep = fits & valid
    fen = np.where(keep, unscaled, 0) * (np.int64(factor) if limit else np.int64(0))
    return fen.astype(np.int64), valid & ~fits


def _decimal_unscaled(arr: pa.Array) -> tuple:
    """(low 64 bits of each unscaled value as int64, whether the value fits in them): Arrow
    decimals are little-endian two's complement integers of 4, 8, 16 or 32 bytes."""
    n, width, buf = len(arr), arr.type.byte_width, arr.buffers()[1]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    if width == 4:
        values = np.frombuffer(buf, np.int32)[arr.offset:arr.offset + n].astype(np.int64)
        return values, np.ones(n, dtype=bool)
    words = np.frombuffer(buf, np.int64)[arr.offset * (width // 8):]
    words = words[:n * (width // 8)].reshape(n, width // 8)
    low = words[:, 0].copy()
    fits = (words[:, 1:] == (low >> 63)[:, None]).all(axis=1)
    return low, fits


def fen_sum(arr) -> int:
    """Σ of a money column in fen as an exact Python int, values beyond int64 fen included
    (the control totals must count every input row's money)."""
    from .manifest import exact_sum
    arr = _one_chunk(arr)
    fen, beyond = money_fen(arr)
    total = exact_sum(fen)
    if beyond.any():
        total += sum(decimal_fen(v) for v in arr.filter(pa.array(beyond)).to_pylist())
    return total


def decimal_fen(value) -> int:
    """Exact fen of a ``decimal.Decimal`` yuan amount with at most 2 places (no context
    rounding: built from the digits)."""
    sign, digits, exponent = value.as_tuple()
    fen = int("".join(map(str, digits)) or "0") * 10 ** (exponent + 2)
    return -fen if sign else fen


def _one_chunk(arr):
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return pa.array([], arr.type)
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


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


def _row_checks(plan: Plan, table: pa.Table, converted: dict, beyond: dict):
    """Yield (reason, mask, column) for each check, in REASONS order. ``beyond``: money column
    -> rows whose amount does not fit int64 fen (``money_fen``)."""
    claim_id = table.column("claim_id")
    yield "null_claim_id", _np_bool(pc.is_null(claim_id)), "claim_id"
    yield "duplicate_claim_id", _duplicate_mask(claim_id), "claim_id"
    key_columns = {k.column for k in plan.keys()} - {"person_id"}  # null falls back to person
    for name in [c.name for c in plan.columns if c.name not in key_columns] + ["person_id"]:
        yield "null_value", _np_bool(pc.is_null(table.column(name))), name
    for name, mask in beyond.items():
        yield "amount_out_of_range", mask, name
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
                  "in_scope_exceeds_total", "self_first_exceeds_in_scope",
                  "amount_out_of_range"):
        return base if value is None else f"{base} ({column} = {value})"
    if column == "person_id":
        value = mask_id(value)
    return f"{base}: {column} = {value!r}" if reason != "null_value" else f"{base}: {column}"


def _converted_columns(plan: Plan, table: pa.Table) -> tuple:
    """({name: engine column}, {money column: rows beyond int64 fen})."""
    out, beyond = {}, {}
    types = {c.name: c.type for c in plan.columns}
    types.setdefault("discharge_date", Type(DATE))
    for name in MONEY_COLUMNS:
        if name in table.column_names:
            types.setdefault(name, Type(MONEY))
    for name, typ in types.items():
        if typ.kind == MONEY:
            out[name], beyond[name] = money_fen(table.column(name))
        else:
            out[name] = _engine_column(table.column(name), typ)
    return out, {name: mask for name, mask in beyond.items() if mask.any()}


def prepare(plan: Plan, claims) -> Prepared:
    """Check a batch against ``plan`` and convert its accepted rows (see module docstring)."""
    table = as_table(claims)
    _check_columns(plan, table)
    if "total" in table.column_names:
        _check_type("total", Type(MONEY), table.schema.field("total").type)
    converted, beyond = _converted_columns(plan, table)
    n = table.num_rows
    rejected = np.zeros(n, dtype=bool)
    rejects = []
    for reason, mask, column in _row_checks(plan, table, converted, beyond):
        new = mask & ~rejected
        if new.any():
            rejects.extend(_reject_rows(table, np.flatnonzero(new), reason, column))
            rejected |= new
    rows = np.flatnonzero(~rejected).astype(np.int64)
    return _accepted(plan, table, converted, rows, rejects)


def _reject_rows(table, rows, reason, column):
    ids = table.column("claim_id").take(pa.array(rows)).to_pylist()
    values = _shown_values(table.column(column).take(pa.array(rows)))
    for row, cid, value in zip(rows.tolist(), ids, values):
        yield (row, cid, reason, _message(reason, column, value))


def _shown_values(col) -> list:
    """Values for reject messages. Dates as ISO text through numpy, which (unlike Python's
    ``datetime.date``) has no year limit: a discharge in year 10000 is shown, not a crash."""
    if pa.types.is_date32(col.type):
        days = col.cast(pa.int32()).to_pylist()
        return [None if d is None else str(np.datetime64(d, "D")) for d in days]
    if pa.types.is_decimal(col.type):
        return [None if v is None else str(v) for v in col.to_pylist()]
    return col.to_pylist()


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

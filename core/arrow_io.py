"""Claims in: read, check and convert a claim batch into engine units.

``prepare(plan, claims)`` is the one boundary between Arrow data and the evaluators. It
- refuses a batch that cannot be settled at all (a missing column, a float or string money
  column, decimals with more than 2 places) with ``ClaimsError`` naming the column;
- sends every row that breaks the claim contract to the rejects, with a reason code and a
  message (null or duplicate claim_id, negative amounts, in_scope > total, self_first >
  in_scope, a value outside a closed domain, a date outside the policy period, a null where a
  value is needed);
- converts the accepted rows' columns to numpy arrays in engine units (plan.py), each as
  narrow as its values (int32 dates, int8 codes: see "conversions" below).

Accepted + rejected = input rows, always.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .plan import BOOL, DATE, INT, MONEY, RATIO, TEXT, Plan, Type
from . import claim_rules
from . import _ids, _ingest
from .errors import YibaoError
from . import timeline

# the rules (check order, reasons, messages) are core/claim_rules.py's, shared with the
# plain-Python row source of ``yibao explain --run`` (core/claim_rows.py)
MONEY_COLUMNS, REQUIRED, REASONS = claim_rules.MONEY_COLUMNS, claim_rules.REQUIRED, \
    claim_rules.REASONS


class ClaimsError(YibaoError, ValueError):
    """The batch as a whole cannot be settled (exit code 2)."""


@dataclass
class Prepared:
    """Accepted rows in engine units, in input row order. ``rows`` are their input row numbers
    (ascending), or None when every input row was accepted: prep row k is then input row k,
    and no ``arange`` of n int64 is held (``input_rows`` gives them either way). ``claim_id``
    is ``raw``'s own column, chunked as the input came: no contiguous copy of the ids is made
    (at 5M claims it was 0.17x of the input columns, at the peak; issue 14, m16), so every
    reader of it is chunk-aware (lower.settlement_order, _order.gather, ``reject_more``)."""
    n: int
    rows: np.ndarray | None  # int64 input row numbers of accepted rows; None: all of them
    claim_id: pa.ChunkedArray  # accepted claim ids (string), ``raw.column("claim_id")``
    columns: dict  # name -> numpy array (engine units, narrow: see "conversions") or, for
    # open text, the batch's own pa.ChunkedArray (or pa.Array)
    raw: pa.Table  # accepted rows of the input, original columns (keys, extra outputs)
    rejects: list = field(default_factory=list)  # (row, claim_id, reason, message)
    key_ids: dict = field(default_factory=dict)  # key name -> (int64 id per accepted row,
    # number of ids): the keys hashed by ingestion (``fused_keys``), numbered as
    # lower.dense_ids numbers lower.key_values of ``raw``; engine._keys hashes the others

    def input_rows(self, at=None) -> np.ndarray:
        """The input row numbers (int64) of prep rows ``at`` (int64 indices), or of every
        prep row when ``at`` is None (an ``arange`` made on the spot if all were accepted)."""
        if self.rows is not None:
            return self.rows if at is None else self.rows[at]
        return np.arange(self.n, dtype=np.int64) if at is None else np.asarray(at, np.int64)


def as_table(claims) -> pa.Table:
    """Any Arrow producer to a Table: Table, RecordBatch, RecordBatchReader, or an object with
    ``__arrow_c_stream__`` (Polars DataFrame, DuckDB relation), in the one layout the rest of
    yibao reads (``normal_table``). Two columns of one name are refused (``ClaimsError``)."""
    table = _any_table(claims)
    check_unique_names(table.schema)
    return normal_table(table)


def only_columns(claims, names):
    """``claims`` (any producer ``as_table`` reads) as a Table of only the columns in ``names``
    that it has, in its own column order, before ``normal_table`` decodes anything (the
    columns a settlement never reads are neither decoded nor taken when rows are rejected).
    ``claims`` as they are when ``names`` is None or two columns share a name (``as_table``
    then refuses them with its own message)."""
    if names is None:
        return claims
    table = _any_table(claims)
    if len(set(table.schema.names)) != len(table.schema.names):
        return table
    return table.select([name for name in table.schema.names if name in names])


def column_difference(names, first_names) -> tuple:
    """(the names in ``first_names`` that ``names`` lacks, the names ``names`` adds), each in
    its own order: what a batch or file has other than the first of a run."""
    return ([n for n in first_names if n not in names],
            [n for n in names if n not in first_names])


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
#   decoded (but a closed domain's that ``prepare`` is told only its checks read: ``coded``);
#   a list of text -> list<string>;
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


# One more exception to "any dictionary is decoded": a column of ``CODED_COLUMNS`` that
# arrives as a dictionary of int32 codes into string values keeps its codes (a run's reader
# reads it so from Parquet, sources.Source.read). Only the provider part's decision tables
# read these columns, and they rank the distinct values: decoded, the 1M principal diagnoses
# of issue 14's provider row were decoded by the reader and hashed back into codes by the
# table (≈ 0.08 s of CPU, p18). A plan that reads one as text gets it decoded by ``prepare``
# (``_convert``), a CHS-DRG grouper by its inputs (provider._drg_inputs); ``normal_schema``
# still says string. ``hospital_id`` (~1.7k hospitals in 2M claims) is kept as codes for the
# results' identity gather, which takes the codes and builds the text from the dictionary
# (engine._text_in_order; issue 14, h21); its other readers cast it to text.
CODED_COLUMNS = ("principal_dx", "hospital_id")
CODED_TYPE = pa.dictionary(pa.int32(), pa.string())


def normal_table(table: pa.Table, coded=(), codes: bool = True) -> pa.Table:
    """``table`` in the one layout (above); columns already in it are not copied. Columns
    named in ``coded`` that are dictionary-encoded text stay so (``prepare``'s
    ``coded``). ``codes``: keep the codes of ``CODED_COLUMNS`` (False: decode them too, for
    batches that are spilled or handed on one by one, each with a dictionary of its own)."""
    for i, f in enumerate(table.schema):
        if normal_type(f.type) != f.type and not (f.name in coded and _is_coded_text(f.type)) \
                and not (codes and _kept_coded(f)):
            table = table.set_column(i, f.name, _normal_column(table.column(i)))
    return table


def _is_coded_text(t) -> bool:
    """A dictionary of string or large_string values (string_view ones are decoded: Arrow
    has fewer kernels for them)."""
    return pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type)
                                          or pa.types.is_large_string(t.value_type))


def _kept_coded(field: pa.Field) -> bool:
    """Whether ``normal_table`` keeps this column's codes (``CODED_COLUMNS``)."""
    return field.name in CODED_COLUMNS and field.type == CODED_TYPE


def coded_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as ``normal_table`` leaves it, ``CODED_COLUMNS`` codes kept."""
    return pa.schema([f if _kept_coded(f) else pa.field(f.name, normal_type(f.type))
                      for f in schema])


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
# Every row check and conversion runs in core/_ingest.pyx, one pass per column over its Arrow
# buffers (chunk by chunk, no copy of the input). The checks are numbered in REASONS order
# (``_check_list``); each pass lowers ``first[row]`` to the number of every check the row
# fails, so a row's reject is its first failing check, as if the checks ran one by one.
# The engine columns stay narrow (docs/architecture.md, "Ingestion"): money int64 fen,
# dates int32 days, booleans numpy bool, a closed domain's codes int8 (int16 beyond 127
# values), integers in their own width (an unsigned one in the signed type twice as wide).
# vector.Evaluator widens what it reads to int64, one 64K-row chunk at a time.

_NO = _ingest.NO_CHECK  # a check the column does not have


def money_to_fen(arr) -> np.ndarray:
    """int64 fen from integer fen (int8-int64) or decimal yuan with at most 2 places, exact,
    no float; a value that does not fit int64 fen (and a null) is 0 here: ``money_fen`` says
    which."""
    return money_fen(arr)[0]


def money_fen(arr) -> tuple:
    """(int64 fen, bool mask of the non-null values that do not fit int64 fen). Decimals of any
    width and precision are read from their unscaled integers, never through a decimal of
    more places (decimal128(38, 2) x 100 would need precision 41)."""
    first = np.full(len(arr), _ingest.NO_CHECK, dtype=np.int16)
    fen = _ingest.money(arr, first, _NO, 0, _NO)
    return fen, first == 0


def fen_sum(arr) -> int:
    """Σ of a money column in fen as an exact Python int, values beyond int64 fen included
    (the control totals must count every input row's money)."""
    from .manifest import exact_sum
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    if all(pa.types.is_signed_integer(c.type) and c.null_count == 0 for c in chunks):
        # integer fen without nulls, summed where it lies: no fen copy, no range mask (2M
        # claims: ≈ 50 MB of fresh pages less on the run's input-fen thread, w18)
        return sum(exact_sum(c.to_numpy(zero_copy_only=False)) for c in chunks)
    fen, beyond = money_fen(arr)
    total = exact_sum(fen)
    if beyond.any():
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        total += sum(decimal_fen(v) for v in arr.filter(pa.array(beyond)).to_pylist())
    return total


def decimal_fen(value) -> int:
    """Exact fen of a ``decimal.Decimal`` yuan amount with at most 2 places (no context
    rounding: built from the digits)."""
    sign, digits, exponent = value.as_tuple()
    fen = int("".join(map(str, digits)) or "0") * 10 ** (exponent + 2)
    return -fen if sign else fen


def _column_types(plan: Plan, table: pa.Table) -> dict:
    """name -> Type of every column converted: the plan's, discharge_date, the money columns."""
    return claim_rules.column_types(plan, table.column_names)


_check_list = claim_rules.check_list


class _Checks:
    """The check numbers of one batch, and ``first``: per row, the first check it fails."""

    def __init__(self, plan: Plan, types: dict, n: int):
        self.list = _check_list(plan, types)
        self.number = claim_rules.check_numbers(self.list)  # a check listed twice: its first
        self.first = np.full(n, _NO, dtype=np.int16)

    def __call__(self, reason: str, column: str) -> int:
        """The number of check (reason, column), or NO_CHECK when the batch does not run it."""
        return self.number.get((reason, column), _NO)

    def fail(self, mask: np.ndarray, k: int) -> None:
        """Check ``k`` on the rows of ``mask`` (for the few columns converted in numpy)."""
        if k != _NO and mask.any():
            np.minimum(self.first, np.where(mask, np.int16(k), np.int16(_NO)), out=self.first)


def _convert(name: str, typ: Type, col, plan: Plan, checks: _Checks):
    """The engine column of ``col``, its checks folded into ``checks.first``."""
    first, null = checks.first, checks("null_value", name)
    if typ.kind == MONEY:
        return _ingest.money(col, first, null, checks("amount_out_of_range", name),
                             checks("negative_amount", name))
    unknown = checks("unknown_value", name) if typ.domain is not None else _NO
    if typ.kind == TEXT and typ.domain is not None and _is_coded_text(col.type):
        return _ingest.dictionary_codes(col, first, null, unknown, typ.domain)
    if pa.types.is_dictionary(col.type):  # a CODED_COLUMNS column the plan reads as open text
        col = col.cast(col.type.value_type)
    if typ.kind == TEXT and typ.domain is not None:
        return _ingest.domain_codes(col, first, null, unknown, typ.domain)
    if typ.kind == DATE and typ.domain is None:
        return _ingest.dates(col, first, null, checks("outside_policy_period", name),
                             *_period(plan))
    if typ.kind == BOOL and typ.domain is None:
        return _ingest.booleans(col, first, null)
    if typ.kind != TEXT and _is_narrow_integer(col.type):
        return _ingest.integers(col, first, null, unknown, typ.domain)
    return _convert_in_numpy(name, typ, col, plan, checks)


_period = claim_rules.policy_period


def _is_narrow_integer(t) -> bool:
    """An integer type whose values all have a signed numpy type (uint64 has none)."""
    return pa.types.is_integer(t) and t != pa.uint64()


def _convert_in_numpy(name: str, typ: Type, col, plan: Plan, checks: _Checks):
    """The rare columns the passes do not cover: open text (kept as it is), uint64 integers
    (read as int64), a domain on a date or a boolean."""
    checks.fail(_nulls(col), checks("null_value", name))
    if typ.kind == TEXT:  # as the batch holds it: combining the chunks would copy it
        return col
    if typ.kind in (DATE, BOOL):
        col = pc.cast(col, pa.int32() if typ.kind == DATE else pa.int8())
    values = np.asarray(pc.fill_null(col, 0).to_numpy(), dtype=np.int64)
    if typ.kind == DATE:
        period = _period(plan)
        checks.fail((values < period[0]) | (values > period[1]),
                    checks("outside_policy_period", name))
    if typ.domain is not None:
        checks.fail(~np.isin(values, typ.domain) & ~_nulls(col), checks("unknown_value", name))
    return values.astype(bool) if typ.kind == BOOL else values


def _nulls(col) -> np.ndarray:
    nulls = pc.is_null(col)
    nulls = nulls.combine_chunks() if isinstance(nulls, pa.ChunkedArray) else nulls
    return np.asarray(nulls.to_numpy(zero_copy_only=False), dtype=bool)


def _claim_id_text(col):
    """claim_id as text for the duplicate check (an integer id column is compared as its
    decimal text, as its reject message shows it)."""
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _run_checks(plan: Plan, table: pa.Table) -> tuple:
    """({name: engine column over all rows}, per row the first check it fails, the checks,
    {key name: (id per row, count)} of ``fused_keys``)."""
    types = _column_types(plan, table)
    checks = _Checks(plan, types, table.num_rows)
    ids = _ids_beside(plan, table, checks)
    with timeline.stage("prepare: columns"):
        converted = {name: _convert(name, typ, table.column(name), plan, checks)
                     for name, typ in types.items()}
    for reason, column in checks.list:  # null checks of columns not converted (person_id)
        if reason == "null_value" and column not in converted:
            _ingest.null_rows(table.column(column), checks.first, checks(reason, column))
    for big, small, reason in (("total", "in_scope", "in_scope_exceeds_total"),
                               ("in_scope", "self_first", "self_first_exceeds_in_scope")):
        k = checks(reason, small)
        if k != _NO:
            _ingest.exceeds(converted[small], converted[big], checks.first, k)
    with timeline.stage("prepare: wait for the ids"):
        id_first, key_ids = ids()
    np.minimum(checks.first, id_first, out=checks.first)
    return converted, checks.first, checks.list, key_ids


ID_ROWS = 1 << 16  # fewest rows whose id pass runs on a thread of its own


def _ids_beside(plan: Plan, table: pa.Table, checks: _Checks):
    """Start the id passes (null and duplicate claim ids; the dense ids of ``fused_keys``)
    and return a function waiting for (their ``first``, {key name: (ids, count)}). They fold
    their checks into a ``first`` of their own, merged by the caller (np.minimum), so they
    can run beside the column passes: all release the GIL. With two threads (the default)
    and ``ID_ROWS`` rows or more, the claim-id check and the key ids run on two threads of
    their own (issue 14, w15, 2M claims: 0.12 s and 0.16 s of CPU, their one fused pass
    0.27 s: fusing them saved no CPU, so they run side by side); otherwise as one pass
    here (``_ingest.claim_and_key_ids``)."""
    first = np.full(table.num_rows, _NO, dtype=np.int16)
    keys = fused_keys(plan, table.schema)
    claim_id = _claim_id_text(table.column("claim_id"))
    k_null, k_dup = checks("null_claim_id", "claim_id"), checks("duplicate_claim_id", "claim_id")
    columns = [(table.column(own), None if fallback is None else table.column(fallback))
               for _, own, fallback in keys]
    names = [name for name, _, _ in keys]
    if os.environ.get("YIBAO_THREADS", "2") == "1" or table.num_rows < ID_ROWS:
        ids = _ingest.claim_and_key_ids(claim_id, first, k_null, k_dup, columns)
        return lambda: (first, dict(zip(names, ids)))
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="yibao-ids")
    checked = pool.submit(timeline.timed("claim-id check", _ingest.claim_ids), claim_id, first,
                          k_null, k_dup)
    numbered = pool.submit(timeline.timed("key ids", _ingest.key_ids), columns,
                           table.num_rows) if columns else None
    pool.shutdown(wait=False)  # its tasks still run; the threads end after them

    def wait() -> tuple:
        checked.result()
        return first, dict(zip(names, numbered.result() if columns else []))
    return wait


def fused_keys(plan: Plan, schema: pa.Schema) -> list:
    """[(key name, own column, fallback column or None)] of the plan's keys that ingestion
    numbers (lower.key_values of them, hashed in the id pass): a key on the person, or on a
    column that falls back to the person where it is null, whose columns are text. A refined
    key (``by`` columns, per month) or a key on a non-text column is left to engine._keys."""
    fused = []
    for key in plan.keys():
        columns = {key.column, "person_id"}
        if key.refined or not all(c in schema.names and pa.types.is_string(
                schema.field(c).type) for c in columns):
            continue
        fused.append((key.name, key.column, None if key.column == "person_id" else "person_id"))
    return fused


_message = claim_rules.reject_message


def prepare(plan: Plan, claims, coded=()) -> Prepared:
    """Check a batch against ``plan`` and convert its accepted rows (see module docstring).
    ``coded`` names the plan's closed-domain text columns that no one reads from ``raw``
    but the checks (the caller knows: engine._coded_columns): given dictionary-encoded,
    they are coded from their dictionaries and stay encoded in ``raw`` instead of being
    decoded into strings first (issue 14, m18)."""
    table = _any_table(claims)
    check_unique_names(table.schema)
    table = normal_table(table, _domain_text(plan, coded))
    _check_columns(plan, table)
    if "total" in table.column_names:
        _check_type("total", Type(MONEY), table.schema.field("total").type)
    converted, first, checks, key_ids = _run_checks(plan, table)
    accepted = first == _NO
    rows = None if accepted.all() else np.flatnonzero(accepted).astype(np.int64, copy=False)
    rejects = []
    if rows is not None:  # grouped by check, then by row, as the checks ran
        bad = np.flatnonzero(~accepted)
        for k in np.unique(first[bad]).tolist():
            reason, column = checks[k]
            rejects.extend(_reject_rows(table, bad[first[bad] == k], reason, column))
    return _accepted(plan, table, converted, rows, rejects, key_ids)


def _domain_text(plan: Plan, names) -> frozenset:
    """The columns of ``names`` that the plan reads as closed-domain text."""
    return frozenset(c.name for c in plan.columns if c.name in names and c.type.kind == TEXT
                     and c.type.domain is not None)


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


def _accepted(plan, table, converted, rows, rejects, key_ids) -> Prepared:
    """The Prepared of the accepted ``rows`` (None: every row, nothing taken or copied)."""
    if rows is None:
        return Prepared(table.num_rows, None, table.column("claim_id"), dict(converted), table,
                        rejects, key_ids)
    kept = _kept_mask(table.num_rows, rows)
    raw = table.filter(kept)
    columns = {name: values[rows] if isinstance(values, np.ndarray) else values.filter(kept)
               for name, values in converted.items()}
    return Prepared(len(rows), rows, raw.column("claim_id"), columns, raw, rejects,
                    _key_ids_of(key_ids, rows))


def _kept_mask(n: int, rows: np.ndarray) -> pa.Array:
    """A boolean Arrow mask of ``rows`` among ``n``: the accepted rows are nearly all rows, and
    Arrow's filter copies a chunked column's runs chunk by chunk, where its take of the same
    rows combined each column's chunks first (issue 14, m17: 2M claims with 1,800 rejects,
    the accepted rows' raw columns in 0.09-0.16 s of CPU instead of 0.2-0.6 s, under load)."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return pa.array(mask)


def _key_ids_of(key_ids: dict, rows: np.ndarray) -> dict:
    """The key ids of ``rows`` only, numbered again by first appearance among them."""
    return {name: _ids.take_dense(ids, rows, count) for name, (ids, count) in key_ids.items()}


def reject_more(prep: Prepared, bad: np.ndarray, reason: str, messages) -> Prepared:
    """Move the accepted rows flagged in ``bad`` (a mask over accepted rows) to the rejects."""
    idx = np.flatnonzero(bad)
    ids = prep.claim_id.take(pa.array(idx)).to_pylist()  # chunk-aware: no combined copy
    extra = [(row, cid, reason, messages[k]) for k, (row, cid) in
             enumerate(zip(prep.input_rows(idx).tolist(), ids))]
    keep = np.flatnonzero(~bad)
    kept = _kept_mask(prep.n, keep)
    raw = prep.raw.filter(kept)
    return Prepared(
        len(keep), prep.input_rows(keep), raw.column("claim_id"),
        {k: (v[keep] if isinstance(v, np.ndarray) else v.filter(kept))
         for k, v in prep.columns.items()},
        raw, prep.rejects + extra, _key_ids_of(prep.key_ids, keep))


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

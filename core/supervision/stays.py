"""What both supervision evaluators share: the stays they read, the output schemas, the
output order and the payment effect (as core/settlement.py is for settlement).

``build_stays(supervision, claims, results)`` is the evaluators' one input: one row per settled
claim (a claim in ``results``), in the claims' order, with the columns the rules read in
engine units. Rejected claims take no part (they are in rejects.parquet with a reason).
Columns a claim file lacks are all null, and a stay missing what a rule needs takes no part
in that rule (docs/supervision.md says which).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.errors import YibaoError

from .plan import REVIEW, Supervision

STAY_FIELDS = (("claim_id", pa.string()), ("person_id", pa.string()),
               ("hospital_id", pa.string()), ("hospital_level", pa.int64()),
               ("admit", pa.int64()), ("discharge", pa.int64()), ("los", pa.int64()),
               ("total", pa.int64()), ("fund", pa.int64()), ("group", pa.string()))
# Σ |total| of a batch must stay below this, so no int64 sum of the evaluators can wrap
SUM_LIMIT = 1 << 62

FLAG_SCHEMA = pa.schema([
    ("rule", pa.string()),        # the flag's name in the policy
    ("label", pa.string()),       # its label (分解住院 …)
    ("kind", pa.string()),        # the rule kind (split_stay, cc_share …)
    ("severity", pa.string()),
    ("level", pa.string()),       # claim | hospital
    ("claim_id", pa.string()),    # null for a hospital flag
    ("hospital_id", pa.string()),
    ("group", pa.string()),       # the DRG (claim rules) or ADRG (cc_share); else null
    ("value", pa.int64()),        # the measured figure, in ``unit``
    ("threshold", pa.int64()),    # the limit a value beyond trips (docs/supervision.md)
    ("basis", pa.int64()),        # compared with: group mean, city or level share, weight
    ("unit", pa.string()),        # days | fen | millionths | "" (listed groups)
    ("related", pa.list_(pa.string())),  # related claims, sorted
    ("effect", pa.string()),      # pending_review or null
])

INDICATOR_SCHEMA = pa.schema([
    ("hospital_id", pa.string()),
    ("claims", pa.int64()),          # settled claims
    ("total", pa.int64()),           # fen
    ("self_pay", pa.int64()),        # fen, the patients' share
    ("self_pay_rate", pa.int64()),   # 自费率, millionths
    ("cases", pa.int64()),           # stays with a group
    ("rw_total", pa.int64()),        # Σ RW, millionths
    ("cmi", pa.int64()),             # millionths
    ("cost_index", pa.int64()),      # 费用消耗指数, millionths
    ("time_index", pa.int64()),      # 时间消耗指数, millionths
    ("price_index", pa.int64()),     # 价格指数, millionths
])

PENDING = "pending_review"  # the result column of the review effect (fen)


class SupervisionError(YibaoError, ValueError):
    """The batch cannot be supervised (its amounts are too large to sum exactly)."""


def stay_columns(supervision: Supervision) -> dict:
    """name -> Arrow type of every claim column supervision reads (the tests' too)."""
    out = {"claim_id": pa.string(), "person_id": pa.string(), "hospital_id": pa.string(),
           "hospital_level": pa.int64(), "admit_date": pa.date32(),
           "discharge_date": pa.date32(), "total": pa.int64()}
    for flag in supervision.flags:
        for t in flag.applies:
            out.setdefault(t.column, None)
    return out


def _plain(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col


def _days(col) -> pa.Array:
    """Dates (or day numbers) as int64 days since 1970-01-01."""
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.date32())
    if pa.types.is_date(col.type):
        col = col.cast(pa.date32()).cast(pa.int32())
    return col.cast(pa.int64())


def _column(claims: pa.Table, name: str, n: int, typ) -> pa.Array:
    if name not in claims.column_names:
        return pa.nulls(n, typ or pa.string())
    col = _plain(claims.column(name))
    if typ == pa.string() and not pa.types.is_string(col.type):
        col = col.cast(pa.string())
    return col


def build_stays(supervision: Supervision, claims: pa.Table, results: pa.Table,
                rows=None) -> pa.Table:
    """The stays of the settled claims (module docstring), in the claims' order (the outputs
    are sorted, so no order matters). ``claims`` are the claims the results came from, in any
    order (a superset is fine); ``results`` need ``claim_id`` and ``self_pay``, and ``group``
    (the provider payment's) if any. ``rows``, when known (``BatchResult.rows``), is the claims
    row of each result: it spares the lookup of every claim id, and is checked against the
    ids (rows that do not match are looked up as if not given)."""
    ids = _plain(results.column("claim_id")).cast(pa.string())
    claim_ids = _plain(claims.column("claim_id")).cast(pa.string())
    result_of = _result_of_claim(ids, claim_ids, rows)
    settled = result_of >= 0
    read = [c for c in stay_columns(supervision) if c in claims.column_names]
    rows_read = claims.select(read)  # only the columns read: not the diagnosis lists
    if not settled.all():  # rejected claims take no part
        rows_read, claim_ids = (rows_read.filter(pa.array(settled)),
                                claim_ids.filter(pa.array(settled)))
    at = pa.array(result_of[settled])  # the result row of each stay
    n = rows_read.num_rows
    admit = _days(_column(rows_read, "admit_date", n, pa.date32()))
    discharge = _days(_column(rows_read, "discharge_date", n, pa.date32()))
    total = _column(rows_read, "total", n, pa.int64()).cast(pa.int64())
    _check_sums(total)
    self_pay = _plain(results.column("self_pay")).cast(pa.int64()).take(at)
    _check_sums(self_pay)  # so total − self_pay (the fund) and its sums stay in int64
    group = (_gathered(results.column("group"), at) if "group" in results.column_names
             else pa.nulls(n, pa.string()))
    cols = {"claim_id": claim_ids,
            "person_id": _column(rows_read, "person_id", n, pa.string()),
            "hospital_id": _column(rows_read, "hospital_id", n, pa.string()),
            "hospital_level": _column(rows_read, "hospital_level", n, pa.int64())
            .cast(pa.int64()),
            "admit": admit, "discharge": discharge, "los": length_of_stay(admit, discharge),
            "total": total, "fund": pc.subtract(total, self_pay), "group": group}
    for name, typ in stay_columns(supervision).items():
        if name not in cols and name not in ("admit_date", "discharge_date"):
            cols[name] = _column(rows_read, name, n, typ)
    return pa.table(cols)


def _gathered(col, at: pa.Array) -> pa.Array:
    """A string column (few distinct values: the DRG) taken at ``at``, through its dictionary:
    gathering from a few hundred strings stays in the cache, from millions it does not."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col.cast(pa.string()))
    return col.dictionary.cast(pa.string()).take(col.indices.take(at))


def _result_of_claim(ids: pa.Array, claim_ids: pa.Array, rows) -> np.ndarray:
    """int64 per claims row: the results row settling it, −1 for a claim not settled.
    Scattering the results into the claims' order takes 2 columns (self_pay, group) instead
    of every column a rule reads into the results' order."""
    at = _checked_rows(ids, claim_ids, rows)
    if at is None:
        at = claim_rows(ids, claim_ids).to_numpy(zero_copy_only=False)
    result_of = np.full(len(claim_ids), -1, np.int64)
    result_of[at] = np.arange(len(ids), dtype=np.int64)
    twice = np.flatnonzero(result_of[at] != np.arange(len(ids)))
    if len(twice):
        raise SupervisionError(f"claim {ids[int(twice[0])].as_py()!r} occurs twice in the "
                               "results")
    return result_of


def _checked_rows(ids: pa.Array, claim_ids: pa.Array, rows):
    """``rows`` as int64 when it names, for each result, a claims row holding its id; else
    None (the caller looks the ids up)."""
    if rows is None:
        return None
    rows = np.asarray(rows, np.int64)
    if len(rows) != len(ids) or (len(rows) and (rows.min() < 0
                                                or rows.max() >= len(claim_ids))):
        return None
    same = pc.fill_null(pc.equal(claim_ids.take(pa.array(rows)), ids), False)
    return rows if pc.all(same).as_py() else None


def claim_rows(ids: pa.Array, claim_ids: pa.Array) -> pa.Array:
    """The row of ``claim_ids`` holding each of ``ids`` (a settled id occurs once among the
    claims: duplicates are rejected); SupervisionError naming an id that is not there."""
    at = pc.index_in(ids, value_set=claim_ids)
    if at.null_count:
        missing = ids.filter(pc.is_null(at))[0].as_py()
        raise SupervisionError(f"claim {missing!r} is in the results but not in the claims")
    return at


def length_of_stay(admit: pa.Array, discharge: pa.Array) -> pa.Array:
    """discharge − admit days, a same-day stay counting 1 (住院天数); null without an admit
    date or when discharge is before admit."""
    days = pc.subtract(discharge, admit)
    days = pc.if_else(pc.less(days, 0), pa.scalar(None, pa.int64()), days)
    return pc.max_element_wise(days, pa.scalar(1, pa.int64()))


def _check_sums(amounts: pa.Array) -> None:
    """Σ |amounts| below 2^62, so every sum of them (or of a difference of two such
    columns, Σ |total − self_pay| < 2^63) is exact in int64."""
    # a float sum only to decide the guard (2^62 leaves room for its error), never an amount
    magnitude = pc.sum(pc.abs(amounts.cast(pa.float64(), safe=False))).as_py() or 0
    if len(amounts) and magnitude >= SUM_LIMIT:
        raise SupervisionError("the batch's claim amounts (totals, self-pay) add up beyond "
                               "2^62 fen: supervision sums them exactly in int64 and cannot; "
                               "split the batch")


def sorted_flags(flags: pa.Table) -> pa.Table:
    """Flags in the one output order: rule, hospital, group, claim (nulls last), so the table
    is the same whatever the input order, batching or evaluator."""
    if flags.num_rows == 0:
        return flags
    keys = [("rule", "ascending"), ("hospital_id", "ascending"), ("group", "ascending"),
            ("claim_id", "ascending")]
    return flags.take(pc.sort_indices(flags, sort_keys=keys))  # nulls sort last


def sorted_indicators(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.take(pc.sort_indices(table, sort_keys=[("hospital_id", "ascending")]))


def held_for_review(stays_table: pa.Table, flags: pa.Table) -> pa.Table:
    """(claim_id, pending_review) of every claim a flag with ``effect review`` names: the
    fund's payment of that claim (total − self_pay) is held until reviewed."""
    hit = flags.filter(pc.fill_null(pc.equal(flags.column("effect"), PENDING), False))
    ids = pc.unique(hit.column("claim_id").drop_null().combine_chunks())
    held = stays_table.filter(pc.is_in(stays_table.column("claim_id"), value_set=ids))
    held = held.sort_by("claim_id")  # probing the few held ids, not hashing every stay's
    return pa.table({"claim_id": held.column("claim_id"), PENDING: held.column("fund")})


def with_pending_review(results: pa.Table, held: pa.Table) -> pa.Table:
    """``results`` plus ``pending_review`` (fen held for review; 0 for a claim not held)."""
    at = pc.index_in(_plain(results.column("claim_id")).cast(pa.string()),
                     value_set=held.column("claim_id"))
    amounts = held.column(PENDING).combine_chunks() if held.num_rows else pa.array([], pa.int64())
    values = pc.fill_null(amounts.take(at) if len(amounts) else
                          pa.nulls(results.num_rows, pa.int64()), 0)
    if PENDING in results.column_names:
        results = results.drop_columns([PENDING])
    return results.append_column(pa.field(PENDING, pa.int64()), values.cast(pa.int64()))


def effect_of(flag) -> object:
    return PENDING if flag.effect == REVIEW else None


def empty_flags() -> pa.Table:
    return FLAG_SCHEMA.empty_table()


__all__ = ["build_stays", "FLAG_SCHEMA", "INDICATOR_SCHEMA", "sorted_flags", "sorted_indicators",
           "held_for_review", "with_pending_review", "SupervisionError", "PENDING"]

"""A few claim rows in plain Python, checked and converted as ``arrow_io.prepare`` checks and
converts a batch: the input of the reference evaluator's row entry (``reference.settle_rows``)
when ``yibao explain --run`` reads a claim's key-mates from a key index (core/key_index.py),
so that explaining one claim imports neither numpy nor pyarrow (issue 13).

``HeldRows`` holds the columns as the key index stores them (``HeldColumn``: text, integers,
booleans, dates as int days, decimals as their unscaled integers). ``prepare_rows(plan,
held)`` gives what ``reference._rows`` gives from ``prepare`` for the same rows: the accepted
rows as dicts in engine units (in input order, with their input row numbers) and the rejects
``(row, claim_id, reason, message)`` in the order the checks ran. The checks, their order,
the reasons and the messages are core/claim_rules.py's, the same ``prepare`` uses; a value's
conversion follows the rule the column passes of core/_ingest.pyx apply (stated once more
there, per value: tests/tools/test_claim_rows.py compares the two over generated batches and
policies). ``supported(plan, held)`` says when this applies: every column the plan converts
held in a kind the rule covers (``prepare`` converts the rest in numpy: a domain on a date or
a boolean column, uint64 integers); the caller reads through Arrow otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .claim_rules import (check_list, check_numbers, column_types, date_value,
                          decimal_value, money_fen, policy_period, reject_message, shown_day)
from .plan import BOOL, DATE, MONEY, TEXT, Plan

NO_CHECK = 32767  # a row that fails no check (core/_ingest.pyx's NO_CHECK)
TEXT_KIND, INT_KIND, BOOL_KIND, DATE_KIND, DECIMAL_KIND = "text", "int", "bool", "date", \
    "decimal"


@dataclass
class HeldColumn:
    """One column of held rows: ``kind`` (text, int, bool, date, decimal), ``values`` (None
    for a null; a date as int days since 1970-01-01, a decimal as its unscaled integer) and,
    for a decimal, its ``scale``."""
    kind: str
    values: list
    scale: int | None = None

    def raw(self, i: int):
        """Row ``i``'s value as Arrow's ``to_pylist`` gives it (a date as ``datetime.date``,
        a decimal as ``decimal.Decimal``)."""
        v = self.values[i]
        if v is None or self.kind in (TEXT_KIND, INT_KIND, BOOL_KIND):
            return v
        return date_value(v) if self.kind == DATE_KIND else decimal_value(v, self.scale)

    def shown(self, i: int):
        """Row ``i``'s value as a reject message shows it (arrow_io._shown_values)."""
        v = self.values[i]
        if v is None:
            return None
        if self.kind == DATE_KIND:
            return shown_day(v)
        return str(decimal_value(v, self.scale)) if self.kind == DECIMAL_KIND else v


@dataclass
class HeldRows:
    """Rows of a claims batch, in input order: ``columns`` name -> ``HeldColumn`` (the
    batch's column order), ``n`` rows."""
    columns: dict
    n: int


@dataclass
class PreparedRows:
    """The accepted rows (dicts in engine units, as ``reference._rows`` makes them), their
    input row numbers, and the rejects (row, claim_id, reason, message)."""
    rows: list
    input_rows: list
    rejects: list = field(default_factory=list)


_KINDS = {MONEY: (INT_KIND, DECIMAL_KIND), TEXT: (TEXT_KIND,), DATE: (DATE_KIND,),
          BOOL: (BOOL_KIND,)}  # every other kind (int, ratio): integers


def supported(plan: Plan, held: HeldRows) -> bool:
    """Whether ``prepare_rows`` prepares ``held`` for ``plan`` as ``prepare`` would: the ids,
    the keys and every converted column held, each in a kind the per-value rules cover."""
    cols = held.columns
    keys = {c for k in plan.keys() for c in (k.column, *k.by)}
    if not {"claim_id", "person_id", *keys} <= set(cols):
        return False
    if cols["claim_id"].kind not in (TEXT_KIND, INT_KIND):
        return False
    for name, typ in column_types(plan, cols).items():
        if name not in cols or cols[name].kind not in _KINDS.get(typ.kind, (INT_KIND,)):
            return False
        if typ.kind in (DATE, BOOL) and typ.domain is not None:
            return False  # prepare converts these in numpy
    return True


def prepare_rows(plan: Plan, held: HeldRows) -> PreparedRows:
    """Check ``held`` against ``plan`` and convert its accepted rows (``supported`` first)."""
    types = column_types(plan, held.columns)
    checks = check_list(plan, types)
    number = check_numbers(checks)

    def k(reason: str, column: str) -> int:
        return number.get((reason, column), NO_CHECK)
    first = [NO_CHECK] * held.n
    _claim_id_checks(held.columns["claim_id"], first, k("null_claim_id", "claim_id"),
                     k("duplicate_claim_id", "claim_id"))
    converted = {name: _convert(plan, name, typ, held.columns[name], first, k)
                 for name, typ in types.items()}
    for reason, column in checks:  # null checks of columns not converted (person_id)
        if reason == "null_value" and column not in converted:
            _nulls(held.columns[column], first, k(reason, column))
    for big, small, reason in (("total", "in_scope", "in_scope_exceeds_total"),
                               ("in_scope", "self_first", "self_first_exceeds_in_scope")):
        if k(reason, small) != NO_CHECK:
            for i, (a, b) in enumerate(zip(converted[small], converted[big])):
                if a > b:
                    _fail(first, i, k(reason, small))
    accepted = [i for i in range(held.n) if first[i] == NO_CHECK]
    return PreparedRows(_rows(plan, held, converted, accepted), accepted,
                        _rejects(held, first, checks))


def _fail(first: list, row: int, k: int) -> None:
    """Check ``k`` fails at ``row``: the row's first failing check is the lower number."""
    if k < first[row]:
        first[row] = k


def _claim_id_checks(col: HeldColumn, first: list, k_null: int, k_dup: int) -> None:
    """Null claim ids, and every copy of an id held more than once (compared as text: an
    integer id as its decimal text)."""
    texts = [None if v is None else str(v) for v in col.values]
    count = {}
    for t in texts:
        if t is not None:
            count[t] = count.get(t, 0) + 1
    for i, t in enumerate(texts):
        if t is None:
            _fail(first, i, k_null)
        elif count[t] > 1:
            _fail(first, i, k_dup)


def _nulls(col: HeldColumn, first: list, k: int) -> None:
    for i, v in enumerate(col.values):
        if v is None:
            _fail(first, i, k)


def _convert(plan: Plan, name: str, typ, col: HeldColumn, first: list, k) -> list:
    """The engine values of ``col`` (core/_ingest.pyx's pass for its kind), its checks
    folded into ``first``."""
    null = k("null_value", name)
    if typ.kind == MONEY:
        return _money(col, first, null, k("amount_out_of_range", name),
                      k("negative_amount", name))
    unknown = k("unknown_value", name) if typ.domain is not None else NO_CHECK
    if typ.kind == TEXT and typ.domain is not None:
        return _codes(col, first, null, unknown, [str(v) for v in typ.domain])
    if typ.kind == DATE:
        return _days(col, first, null, k("outside_policy_period", name), policy_period(plan))
    if typ.kind == BOOL:
        return _each(col, first, null, False)
    if typ.kind == TEXT:  # open text: the values as they are
        _nulls(col, first, null)
        return list(col.values)
    values = _each(col, first, null, 0)
    if typ.domain is not None:
        for i, v in enumerate(col.values):
            if v is not None and v not in typ.domain:
                _fail(first, i, unknown)
    return values


def _each(col: HeldColumn, first: list, null: int, zero) -> list:
    """The values, ``zero`` for a null (check ``null``)."""
    out = []
    for i, v in enumerate(col.values):
        if v is None:
            _fail(first, i, null)
            v = zero
        out.append(v)
    return out


def _money(col: HeldColumn, first: list, null: int, beyond: int, negative: int) -> list:
    """Exact fen (0 for a null or a value beyond int64 fen)."""
    scale = col.scale if col.kind == DECIMAL_KIND else None
    out = []
    for i, v in enumerate(col.values):
        fen = 0
        if v is None:
            _fail(first, i, null)
        elif (fen := money_fen(v, scale)) is None:
            fen = 0
            _fail(first, i, beyond)
        elif fen < 0:
            _fail(first, i, negative)
        out.append(fen)
    return out


def _codes(col: HeldColumn, first: list, null: int, unknown: int, domain: list) -> list:
    """Each value's index in ``domain`` (-1 for a null and a value outside it)."""
    where = {}
    for d, word in enumerate(domain):
        where.setdefault(word, d)
    out = []
    for i, v in enumerate(col.values):
        code = -1 if v is None else where.get(v, -1)
        if v is None:
            _fail(first, i, null)
        elif code < 0:
            _fail(first, i, unknown)
        out.append(code)
    return out


def _days(col: HeldColumn, first: list, null: int, period: int, bounds: tuple) -> list:
    """int days (0 for a null); ``period`` where the day (a null's 0) is outside ``bounds``."""
    out = _each(col, first, null, 0)
    for i, d in enumerate(out):
        if d < bounds[0] or d > bounds[1]:
            _fail(first, i, period)
    return out


def _rows(plan: Plan, held: HeldRows, converted: dict, accepted: list) -> list:
    """The accepted rows as ``reference._rows`` makes them: the engine values, the raw
    claim id and person, and ``__key_<column>`` the raw value of every key column."""
    key_cols = [c for c in dict.fromkeys(c for k in plan.keys() for c in (k.column, *k.by))
                if c != "person_id"]
    ids, persons = held.columns["claim_id"], held.columns["person_id"]
    rows = []
    for i in accepted:
        row = {name: values[i] for name, values in converted.items()}
        row.update(claim_id=ids.raw(i), __person=persons.raw(i))
        for c in key_cols:
            row["__key_" + c] = held.columns[c].raw(i)
        rows.append(row)
    return rows


def _rejects(held: HeldRows, first: list, checks: list) -> list:
    """(row, claim_id, reason, message) of every rejected row, grouped by check, then by
    row, as ``prepare`` lists them."""
    ids = held.columns["claim_id"]
    out = []
    for k in sorted({f for f in first if f != NO_CHECK}):
        reason, column = checks[k]
        col = held.columns[column]
        out += [(i, ids.raw(i), reason, reject_message(reason, column, col.shown(i)))
                for i in range(held.n) if first[i] == k]
    return out

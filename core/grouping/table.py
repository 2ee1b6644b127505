"""Table groupers (表格分组): APG, DIP and rehab classes as ordered first-match decision tables.

A ``DecisionTable`` assigns each claim the ``group`` of the first ``Row`` whose conditions all
hold (hit policy first-match), else its ``default`` group, else no group with status
``unmatched``. Conditions read claim columns:

- ``DxPrefix`` / ``DxRange``: a code column (``principal_dx``) starts with a prefix, or lies in
  a code range. Ranges compare as codes: ``lo <= code`` and ``code[:len(hi)] <= hi``, so a
  range includes the extensions of both ends (``I20.000``–``I25.999`` holds ``I25.999x001``;
  ``I20``–``I25`` holds every I20 … I25 code) and a prefix ``P`` is the range ``P``–``P``.
- ``ProcAny`` / ``ProcAll`` / ``NoProcedure``: over a ``list<string>`` column (``procedures``).
  An item ``36.06*`` matches codes starting with ``36.06``; an item without ``*`` matches that
  code exactly. A null list is empty; null codes are ignored (a list of only nulls has no
  procedure — the DIP conservative-treatment row, 保守治疗).
- ``SettingIn`` (a text column in a set), ``IntBand`` (an int column in ``[lo, hi)``, ``None``
  unbounded: age bands, functional scores), ``Flag`` (a bool column equals a value).

A null column value never satisfies a condition (except the empty-procedure reading above).
Codes compare exactly as given (no case folding or trimming).

``group_table`` evaluates a table over an Arrow table, vectorised (string work once per distinct
code); ``group_table_reference`` is the obvious per-claim oracle; ``analyse`` reports rows that
never match, rows hidden by an earlier row, and overlapping rows (see ``Finding``);
``load_decision_table_csv`` reads a table from CSV with line numbers as row sources.
"""
from __future__ import annotations

import bisect
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.plan import register_node
from ..errors import YibaoError

__all__ = ["DxPrefix", "DxRange", "ProcAny", "ProcAll", "NoProcedure", "SettingIn", "IntBand",
           "Flag", "Row", "DecisionRow", "DecisionTable", "STATUSES", "CSV_LAYOUT",
           "group_table", "group_table_reference", "analyse", "load_decision_table_csv",
           "DecisionTableError", "age_band", "code_in_range", "range_empty", "item_matches"]

OK, DEFAULT, UNMATCHED = "ok", "default", "unmatched"
STATUSES = (OK, DEFAULT, UNMATCHED)


# -- code semantics (shared by the evaluators and the analysis) -------------------------------

def code_in_range(code: str, lo: str, hi: str) -> bool:
    """``lo <= code`` and ``code[:len(hi)] <= hi`` (the extensions of ``hi`` are inside)."""
    return lo <= code and code[:len(hi)] <= hi


def range_empty(lo: str, hi: str) -> bool:
    """Does the code range ``lo``–``hi`` hold no code? (``lo`` itself is outside it)"""
    return lo[:len(hi)] > hi


def item_matches(item: str, code: str) -> bool:
    """A procedure item: ``X*`` matches codes starting with ``X``, ``X`` matches ``X`` only."""
    return code.startswith(item[:-1]) if item.endswith("*") else code == item


def _check_items(items, what: str) -> tuple:
    items = tuple(items)
    if not items or any(not isinstance(i, str) or i in ("", "*") for i in items):
        raise ValueError(f"{what} needs one or more non-empty codes, got {items!r}")
    return items


def _fmt_items(items) -> str:
    return "{" + ", ".join(items) + "}"


# -- plan nodes -------------------------------------------------------------------------------

@register_node
@dataclass(frozen=True)
class DxPrefix:
    """The code column starts with one of ``prefixes``."""
    prefixes: tuple
    column: str = "principal_dx"

    def __post_init__(self):
        _check_items(self.prefixes, "DxPrefix")

    def describe(self) -> str:
        return f"{self.column} prefix {' | '.join(self.prefixes)}"


@register_node
@dataclass(frozen=True)
class DxRange:
    """The code column is in ``lo``–``hi`` compared as codes (see the module docstring)."""
    lo: str
    hi: str
    column: str = "principal_dx"

    def __post_init__(self):
        _check_items((self.lo, self.hi), "DxRange")

    def describe(self) -> str:
        return f"{self.column} in {self.lo}–{self.hi}"


@register_node
@dataclass(frozen=True)
class ProcAny:
    """Some code of the list column matches one of ``items``."""
    items: tuple
    column: str = "procedures"

    def __post_init__(self):
        _check_items(self.items, "ProcAny")

    def describe(self) -> str:
        return f"{self.column} any of {_fmt_items(self.items)}"


@register_node
@dataclass(frozen=True)
class ProcAll:
    """Every one of ``items`` matches some code of the list column (同时包含)."""
    items: tuple
    column: str = "procedures"

    def __post_init__(self):
        _check_items(self.items, "ProcAll")

    def describe(self) -> str:
        return f"{self.column} all of {_fmt_items(self.items)}"


@register_node
@dataclass(frozen=True)
class NoProcedure:
    """The list column holds no non-null code (保守治疗, conservative treatment)."""
    column: str = "procedures"

    def describe(self) -> str:
        return f"no {self.column}"


@register_node
@dataclass(frozen=True)
class SettingIn:
    """The text column (``setting`` by default) is one of ``values``."""
    values: tuple
    column: str = "setting"

    def __post_init__(self):
        _check_items(self.values, "SettingIn")

    def describe(self) -> str:
        return f"{self.column} in {_fmt_items(self.values)}"


@register_node
@dataclass(frozen=True)
class IntBand:
    """``lo <= column < hi``; a ``None`` end is unbounded (age bands, functional scores)."""
    column: str
    lo: Optional[int] = None
    hi: Optional[int] = None

    def describe(self) -> str:
        lo = "" if self.lo is None else str(self.lo)
        hi = "" if self.hi is None else str(self.hi)
        return f"{self.column} in [{lo}, {hi})"


def age_band(lo: Optional[int], hi: Optional[int]) -> IntBand:
    """Age in years in ``[lo, hi)``."""
    return IntBand("age", lo, hi)


@register_node
@dataclass(frozen=True)
class Flag:
    """The bool column equals ``value``."""
    column: str
    value: bool = True

    def describe(self) -> str:
        return self.column if self.value else f"not {self.column}"


CONDITION_TYPES = (DxPrefix, DxRange, ProcAny, ProcAll, NoProcedure, SettingIn, IntBand, Flag)


@register_node
@dataclass(frozen=True)
class DecisionRow:
    """One row: when every condition holds (no condition: always), the claim gets ``group``.
    ``source`` is ``file:line``; ``label`` free text (a group's Chinese name)."""
    conditions: tuple
    group: str
    source: str = ""
    label: str = ""

    def __post_init__(self):
        for cond in self.conditions:
            if not isinstance(cond, CONDITION_TYPES):
                raise TypeError(f"not a decision-table condition: {cond!r}")
        if not self.group:
            raise ValueError("a decision-table row needs a group")

    def describe(self) -> str:
        when = " and ".join(c.describe() for c in self.conditions) or "always"
        label = f"  # {self.label}" if self.label else ""
        at = f"  [{self.source}]" if self.source else ""
        return f"{when} -> {self.group}{label}{at}"


Row = DecisionRow  # the plan registry keys nodes by class name; "Row" alone is too generic


@register_node
@dataclass(frozen=True)
class DecisionTable:
    """A first-match decision table writing the group to column ``output``, with
    ``{output}_status`` (one of ``STATUSES``) and ``{output}_row`` (1-based matching row)."""
    name: str
    output: str
    rows: tuple
    default: Optional[str] = None
    source: str = ""

    def columns(self) -> tuple:
        """The result columns this grouper adds, with their Arrow types."""
        return ((self.output, pa.string()), (f"{self.output}_status", pa.string()),
                (f"{self.output}_row", pa.int32()))

    def input_columns(self) -> tuple:
        """Claim columns the rows read, in first-use order."""
        seen: dict = {}
        for row in self.rows:
            for cond in row.conditions:
                seen.setdefault(cond.column, None)
        return tuple(seen)

    def describe(self) -> str:
        default = self.default if self.default is not None else "unmatched"
        at = f" [{self.source}]" if self.source else ""
        out = [f"decision table {self.name} -> {self.output} (first match, default {default}){at}"]
        width = len(str(len(self.rows)))
        out.extend(f"  {i:>{width}}. {row.describe()}" for i, row in enumerate(self.rows, 1))
        return "\n".join(out) + "\n"


# -- vectorised evaluation --------------------------------------------------------------------

def _array(claims: pa.Table, table: DecisionTable, name: str):
    if name not in claims.column_names:
        raise KeyError(f"decision table {table.name!r} reads column {name!r}, which the claims "
                       f"do not have")
    col = claims.column(name)
    if col.num_chunks == 1:
        return col.chunk(0)
    return col.combine_chunks() if col.num_chunks else pa.array([], col.type)


def _encode(values: pa.Array):
    """(distinct string values, int64 index per value; nulls index the slot after the end)."""
    enc = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    dictionary = enc.dictionary.cast(pa.string())
    idx = enc.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
    return dictionary, idx.astype(np.int64, copy=False)


def _lut(dictionary: pa.Array, mask: pa.Array) -> np.ndarray:
    """A bool lookup over distinct values plus a False slot for null."""
    out = np.zeros(len(dictionary) + 1, dtype=bool)
    if len(dictionary):
        out[:-1] = mask.fill_null(False).to_numpy(zero_copy_only=False)
    return out


def _prefix_mask(dictionary: pa.Array, prefixes) -> pa.Array:
    mask = pa.array(np.zeros(len(dictionary), dtype=bool))
    for p in prefixes:
        mask = pc.or_(mask, pc.starts_with(dictionary, pattern=p))
    return mask


def _range_mask(dictionary: pa.Array, lo: str, hi: str) -> pa.Array:
    head = pc.utf8_slice_codeunits(dictionary, 0, len(hi))
    return pc.and_(pc.greater_equal(dictionary, lo), pc.less_equal(head, hi))


def _items_mask(dictionary: pa.Array, items) -> pa.Array:
    exact = [i for i in items if not i.endswith("*")]
    mask = pc.is_in(dictionary, value_set=pa.array(exact, pa.string()))
    return pc.or_(mask, _prefix_mask(dictionary, [i[:-1] for i in items if i.endswith("*")]))


class _Claims:
    """Per-batch encodings of the columns a table reads, built once and reused by every row."""

    def __init__(self, claims: pa.Table, table: DecisionTable):
        self.claims, self.table, self.n = claims, table, claims.num_rows
        self._codes, self._lists, self._ints, self._flags = {}, {}, {}, {}
        self._sorted: dict = {}

    def sorted_codes(self, name) -> "_SortedCodes":
        """The distinct values of a code column, sorted (``_SortedCodes``)."""
        if ("code", name) not in self._sorted:
            self._sorted[("code", name)] = _SortedCodes(self.codes(name)[0])
        return self._sorted[("code", name)]

    def sorted_list_codes(self, name) -> "_SortedCodes":
        """The distinct codes of a list column, sorted (``_SortedCodes``)."""
        if ("list", name) not in self._sorted:
            self._sorted[("list", name)] = _SortedCodes(self.lists(name)[2])
        return self._sorted[("list", name)]

    def codes(self, name):
        if name not in self._codes:
            self._codes[name] = _encode(_array(self.claims, self.table, name))
        return self._codes[name]

    def lists(self, name):
        """(start, end, dictionary, value index) of a list<string> column."""
        if name not in self._lists:
            arr = _array(self.claims, self.table, name)
            offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
            start, end = offsets[:-1].copy(), offsets[1:].copy()
            if arr.null_count:
                valid = arr.is_valid().to_numpy(zero_copy_only=False)
                end[~valid] = start[~valid]
            dictionary, idx = _encode(arr.values.cast(pa.string()))
            self._lists[name] = (start, end, dictionary, idx)
        return self._lists[name]

    def ints(self, name):
        if name not in self._ints:
            arr = pc.cast(_array(self.claims, self.table, name), pa.int64())
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            self._ints[name] = (arr.fill_null(0).to_numpy(zero_copy_only=False), valid)
        return self._ints[name]

    def flags(self, name):
        if name not in self._flags:
            arr = pc.cast(_array(self.claims, self.table, name), pa.bool_())
            values = arr.fill_null(False).to_numpy(zero_copy_only=False)
            self._flags[name] = (values, arr.is_valid().to_numpy(zero_copy_only=False))
        return self._flags[name]


def _list_any(claims: _Claims, column: str, items, cand: np.ndarray) -> np.ndarray:
    """For claims ``cand``: does some code of the list match one of ``items``?"""
    start, end, dictionary, idx = claims.lists(column)
    hits = _lut(dictionary, _items_mask(dictionary, items))[idx]
    counts = np.concatenate(([0], np.cumsum(hits, dtype=np.int64)))
    return counts[end[cand]] > counts[start[cand]]


def _no_codes(claims: _Claims, column: str, cand: np.ndarray) -> np.ndarray:
    start, end, dictionary, idx = claims.lists(column)
    counts = np.concatenate(([0], np.cumsum(idx < len(dictionary), dtype=np.int64)))
    return counts[end[cand]] == counts[start[cand]]


def _code_lut(claims: _Claims, cond, cache: dict):
    """Condition -> (lookup over the column's distinct codes, code index per claim)."""
    dictionary, idx = claims.codes(cond.column)
    if cond not in cache:
        if isinstance(cond, DxPrefix):
            mask = _prefix_mask(dictionary, cond.prefixes)
        elif isinstance(cond, DxRange):
            mask = _range_mask(dictionary, cond.lo, cond.hi)
        else:
            mask = pc.is_in(dictionary, value_set=pa.array(cond.values, pa.string()))
        cache[cond] = _lut(dictionary, mask)
    return cache[cond], idx


def _condition_mask(claims: _Claims, cond, cand: np.ndarray, cache: dict) -> np.ndarray:
    """The condition over claims ``cand`` (positions), as a bool array of len(cand). A few
    candidates (an indexed row's slice) are decided on their own distinct codes
    (``_few_mask``): a whole-column pass per row would cost rows × claims again."""
    if len(cand) * FEW < claims.n and isinstance(cond, (DxPrefix, DxRange, SettingIn, ProcAny,
                                                         ProcAll, NoProcedure)):
        return _few_mask(claims, cond, cand)
    if isinstance(cond, (DxPrefix, DxRange, SettingIn)):
        lut, idx = _code_lut(claims, cond, cache)
        return lut[idx[cand]]
    if isinstance(cond, ProcAny):
        return _list_any(claims, cond.column, cond.items, cand)
    if isinstance(cond, ProcAll):
        mask = np.ones(len(cand), dtype=bool)
        for item in cond.items:
            mask &= _list_any(claims, cond.column, (item,), cand)
        return mask
    if isinstance(cond, NoProcedure):
        return _no_codes(claims, cond.column, cand)
    if isinstance(cond, IntBand):
        values, valid = claims.ints(cond.column)
        v, mask = values[cand], valid[cand].copy()
        if cond.lo is not None:
            mask &= v >= cond.lo
        if cond.hi is not None:
            mask &= v < cond.hi
        return mask
    if isinstance(cond, Flag):
        values, valid = claims.flags(cond.column)
        return valid[cand] & (values[cand] == bool(cond.value))
    raise TypeError(f"unsupported decision-table condition {cond!r}")


FEW = 8  # candidates below 1/FEW of the claims are decided through the sorted codes


class _SortedCodes:
    """The distinct values of a column sorted, with each value index's rank: a prefix, a
    code range or one exact value holds a contiguous run of ranks (``span``), so a condition
    on a few claims is two comparisons per value, not a pass over every distinct value."""

    def __init__(self, dictionary: pa.Array):
        by_code = pc.sort_indices(dictionary).to_numpy().astype(np.int64)
        self.rank = np.empty(len(dictionary) + 1, dtype=np.int64)
        self.rank[by_code] = np.arange(len(dictionary))
        self.rank[len(dictionary)] = len(dictionary)  # the null slot: after every value
        codes = dictionary.take(pa.array(by_code)).to_pylist()
        self.codes = codes[:len(codes) - dictionary.null_count]  # nulls sort last

    def span(self, lo: str, hi: str) -> tuple:
        """Ranks [a, b) of the values with ``lo <= value`` and ``value[:len(hi)] <= hi``."""
        a = bisect.bisect_left(self.codes, lo)
        b = bisect.bisect_right(self.codes, hi, lo=a, key=lambda c: c[:len(hi)])
        return a, max(a, b)

    def exact(self, value: str) -> tuple:
        a = bisect.bisect_left(self.codes, value)
        return a, bisect.bisect_right(self.codes, value, lo=a)

    def item(self, item: str) -> tuple:
        """A procedure item: ``X*`` the values starting with X, else X alone."""
        return self.span(item[:-1], item[:-1]) if item.endswith("*") else self.exact(item)

    def spans(self, cond) -> list:
        if isinstance(cond, DxPrefix):
            return [self.span(p, p) for p in cond.prefixes]
        if isinstance(cond, DxRange):
            return [self.span(cond.lo, cond.hi)]
        return [self.exact(v) for v in cond.values]

    def within(self, value_idx: np.ndarray, spans) -> np.ndarray:
        """Does the value of each index lie in one of ``spans``?"""
        r = self.rank[value_idx]
        out = np.zeros(len(r), dtype=bool)
        for a, b in spans:
            if b > a:
                out |= (r >= a) & (r < b)
        return out


def _few_mask(claims: _Claims, cond, cand: np.ndarray) -> np.ndarray:
    if isinstance(cond, (DxPrefix, DxRange, SettingIn)):
        sorted_codes, idx = claims.sorted_codes(cond.column), claims.codes(cond.column)[1]
        return sorted_codes.within(idx[cand], sorted_codes.spans(cond))
    start, end, _, idx = claims.lists(cond.column)
    sorted_codes = claims.sorted_list_codes(cond.column)
    lengths = end[cand] - start[cand]
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    values = idx[np.repeat(start[cand] - bounds[:-1], lengths) + np.arange(bounds[-1])]

    def count(hits: np.ndarray) -> np.ndarray:  # per candidate: how many of its codes hit
        total = np.concatenate(([0], np.cumsum(hits)))
        return total[bounds[1:]] - total[bounds[:-1]]
    if isinstance(cond, NoProcedure):
        return count(values < len(sorted_codes.rank) - 1) == 0  # no non-null code
    wanted = [count(sorted_codes.within(values, [sorted_codes.item(i)])) > 0
              for i in cond.items]
    return np.logical_or.reduce(wanted) if isinstance(cond, ProcAny) \
        else np.logical_and.reduce(wanted)


def _result(table: DecisionTable, row_idx: np.ndarray) -> pa.Table:
    """Result columns from the matching row index per claim (-1: none)."""
    groups = [r.group for r in table.rows] + [table.default]
    matched = row_idx >= 0
    pick = np.where(matched, row_idx, len(table.rows))
    no_row = STATUSES.index(DEFAULT if table.default is not None else UNMATCHED)
    status = np.where(matched, STATUSES.index(OK), no_row)
    return pa.table([pc.take(pa.array(groups, pa.string()), pa.array(pick)),
                     pc.take(pa.array(STATUSES, pa.string()), pa.array(status)),
                     pa.array(row_idx + 1, pa.int32(), mask=~matched)],
                    schema=pa.schema(list(table.columns())))


def group_table(table: DecisionTable, claims: pa.Table) -> pa.Table:
    """Group every claim of ``claims`` with ``table``, vectorised.

    Rows are tried in order; within a row the conditions narrow the candidates one after
    another. A row's first candidates come from an index (``_CodeIndex``) on the code column
    most rows read: the claims sorted by that code, so a prefix or a code range is one
    contiguous slice, found by binary search. The cost then grows with the claims each row's
    codes select, not rows × claims; rows that do not read the indexed column (and tables
    that read no code column) take every claim still unassigned. String conditions are
    decided once per distinct code and taken through the codes' indices; list conditions
    use a cumulative count of matching codes over the flattened list.

    Returns one result row per claim with columns ``table.columns()``: the group (null when
    unmatched), the status (``ok``, ``default`` or ``unmatched``) and the 1-based matching row
    (null when no row matched). An empty batch gives an empty result; a column a condition
    reads but the claims lack raises ``KeyError``; bad codes or values never raise.
    """
    view = _Claims(claims, table)
    row_idx = np.full(view.n, -1, dtype=np.int64)
    index = _CodeIndex.build(view, table)
    unassigned = view.n
    cache: dict = {}
    for r, row in enumerate(table.rows):
        if not unassigned:
            break
        cand, indexed = index.candidates(row) if index is not None else (None, None)
        cand = np.flatnonzero(row_idx < 0) if cand is None else cand[row_idx[cand] < 0]
        for cond in row.conditions:
            if not len(cand):
                break
            if cond is not indexed:  # the index slice holds exactly the claims it matches
                cand = cand[_condition_mask(view, cond, cand, cache)]
        if len(cand):
            row_idx[cand] = r
            unassigned -= len(cand)
    return _result(table, row_idx)


def _index_column(table: DecisionTable):
    """The code column (prefix or range conditions) most rows read; None if none does."""
    counts: dict = {}
    for row in table.rows:
        for col in {c.column for c in row.conditions if isinstance(c, (DxPrefix, DxRange))}:
            counts[col] = counts.get(col, 0) + 1
    return max(sorted(counts), key=counts.get) if counts else None


class _CodeIndex:
    """The claims sorted by one code column: a prefix or a code range holds a contiguous run
    of the sorted distinct codes (``_SortedCodes``), hence a contiguous slice of the sorted
    claims (null codes last, in no slice)."""

    def __init__(self, column: str, codes: "_SortedCodes", starts: np.ndarray,
                 order: np.ndarray):
        self.column, self.codes = column, codes
        self.starts = starts    # sorted-claims offset of each code rank, plus the end
        self.order = order      # claim positions sorted by code rank

    @classmethod
    def build(cls, view: "_Claims", table: DecisionTable):
        column = _index_column(table)
        if column is None or view.n == 0:
            return None
        codes = view.sorted_codes(column)
        claim_rank = codes.rank[view.codes(column)[1]]
        small = claim_rank.astype(np.uint16) if len(codes.rank) <= 1 << 16 else claim_rank
        order = np.argsort(small, kind="stable")  # 16-bit keys: numpy's radix sort
        counts = np.bincount(claim_rank, minlength=len(codes.rank))
        return cls(column, codes, np.concatenate(([0], np.cumsum(counts[:-1]))), order)

    def candidates(self, row: DecisionRow) -> tuple:
        """(the positions of the claims that satisfy the row's first condition on the
        indexed column, that condition); (None, None) when the row does not read it."""
        cond = next((c for c in row.conditions if c.column == self.column
                     and isinstance(c, (DxPrefix, DxRange))), None)
        if cond is None:
            return None, None
        pieces = [self.order[self.starts[a]:self.starts[b]] for a, b in self.codes.spans(cond)]
        return (np.unique(np.concatenate(pieces)) if len(pieces) > 1 else pieces[0]), cond


# -- the reference evaluator (oracle) ---------------------------------------------------------

def _holds(cond, claim: dict) -> bool:
    """One condition on one claim (a dict of Python values), written the obvious way."""
    value = claim.get(cond.column)
    if isinstance(cond, (ProcAny, ProcAll, NoProcedure)):
        codes = [c for c in (value or []) if c is not None]
        if isinstance(cond, NoProcedure):
            return not codes
        matches = [any(item_matches(i, c) for c in codes) for i in cond.items]
        return any(matches) if isinstance(cond, ProcAny) else all(matches)
    if value is None:
        return False
    if isinstance(cond, DxPrefix):
        return any(value.startswith(p) for p in cond.prefixes)
    if isinstance(cond, DxRange):
        return code_in_range(value, cond.lo, cond.hi)
    if isinstance(cond, SettingIn):
        return value in cond.values
    if isinstance(cond, IntBand):
        return (cond.lo is None or value >= cond.lo) and (cond.hi is None or value < cond.hi)
    if isinstance(cond, Flag):
        return bool(value) == bool(cond.value)
    raise TypeError(f"unsupported decision-table condition {cond!r}")


def group_claim_table(table: DecisionTable, claim: dict):
    """(group, status, 1-based row or None) for one claim dict."""
    for r, row in enumerate(table.rows, 1):
        if all(_holds(c, claim) for c in row.conditions):
            return row.group, OK, r
    if table.default is not None:
        return table.default, DEFAULT, None
    return None, UNMATCHED, None


def group_table_reference(table: DecisionTable, claims: pa.Table) -> pa.Table:
    """``group_table`` one claim at a time in plain Python (the oracle); same result."""
    for name in table.input_columns():
        if name not in claims.column_names:
            raise KeyError(f"decision table {table.name!r} reads column {name!r}, which the "
                           f"claims do not have")
    cols = list(table.input_columns())
    results = [group_claim_table(table, c) for c in claims.select(cols).to_pylist()] \
        if cols else [group_claim_table(table, {})] * claims.num_rows
    names = [name for name, _ in table.columns()]
    return pa.table({names[i]: pa.array([r[i] for r in results], typ)
                     for i, (_, typ) in enumerate(table.columns())})


# -- static analysis (in table_analysis.py) ---------------------------------------------------

def analyse(table: DecisionTable) -> list:
    """Findings for ``table`` (``table_analysis.Finding``); see ``table_analysis.analyse``."""
    from yibao.core.grouping.table_analysis import analyse as run
    return run(table)


# -- CSV --------------------------------------------------------------------------------------

class DecisionTableError(YibaoError, ValueError):
    """A decision-table CSV that cannot be read; the message starts ``file:line:``."""


CSV_LAYOUT = """\
One header line, then one row per line, in first-match order. Lines starting with '#' and blank
lines are skipped (line numbers still count them). Several values in a cell are separated by
'|'; an empty cell is no condition. Columns (any order, all optional but ``group``):
  group                    the group code (required)
  label                    free text, e.g. the group's Chinese name
  dx_prefix                principal_dx starts with one of the prefixes
  dx_from, dx_to           principal_dx in the code range (both or neither)
  proc_any, proc_all       procedures: any of / all of the items (``36.06*`` prefix, else exact)
  no_procedure             1/true/yes: no procedure (保守治疗); 0/false/no or empty: no condition
  setting                  setting in the values (also ``<column>_in`` for any text column)
  age_lo, age_hi           age in [lo, hi) (also ``<column>_lo`` / ``_hi`` for any int column)
  <column>_flag            1/true/yes or 0/false/no: the bool column equals it
"""

_TRUE, _FALSE = ("1", "true", "yes", "y"), ("0", "false", "no", "n", "")
_FIXED = ("group", "label", "dx_prefix", "dx_from", "dx_to", "proc_any", "proc_all",
          "no_procedure", "setting")
_SUFFIXED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*?)_(lo|hi|in|flag)$")


def _split(cell: str) -> tuple:
    return tuple(v.strip() for v in cell.split("|") if v.strip())


def _bool(cell: str, where: str, name: str) -> Optional[bool]:
    value = cell.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False if value else None
    raise DecisionTableError(f"{where}: {name} must be 1/0, true/false or yes/no, got {cell!r}")


def _int(cell: str, where: str, name: str) -> Optional[int]:
    if not cell.strip():
        return None
    try:
        return int(cell)
    except ValueError:
        raise DecisionTableError(f"{where}: {name} must be a whole number, got {cell!r}") from None


def _check_header(header: list, where: str) -> None:
    if "group" not in header:
        raise DecisionTableError(f"{where}: the header has no 'group' column")
    for name in header:
        if header.count(name) > 1:
            raise DecisionTableError(f"{where}: column {name!r} appears twice in the header")
        if name not in _FIXED and not _SUFFIXED.match(name):
            raise DecisionTableError(f"{where}: unknown column {name!r}; known: "
                                     f"{', '.join(_FIXED)}, <column>_lo/_hi/_in/_flag")


def _dx_conditions(cells: dict, where: str) -> list:
    out = []
    if _split(cells.get("dx_prefix", "")):
        out.append(DxPrefix(_split(cells["dx_prefix"])))
    lo, hi = cells.get("dx_from", "").strip(), cells.get("dx_to", "").strip()
    if bool(lo) != bool(hi):
        raise DecisionTableError(f"{where}: dx_from and dx_to go together (got only one)")
    if lo:
        if range_empty(lo, hi):
            raise DecisionTableError(f"{where}: dx_from {lo} is after dx_to {hi}")
        out.append(DxRange(lo, hi))
    return out


def _proc_conditions(cells: dict, where: str) -> list:
    out = []
    if _split(cells.get("proc_any", "")):
        out.append(ProcAny(_split(cells["proc_any"])))
    if _split(cells.get("proc_all", "")):
        out.append(ProcAll(_split(cells["proc_all"])))
    if _bool(cells.get("no_procedure", ""), where, "no_procedure"):
        if out:
            raise DecisionTableError(f"{where}: no_procedure contradicts proc_any / proc_all")
        out.append(NoProcedure())
    return out


def _suffixed_conditions(cells: dict, where: str) -> list:
    out, bands = [], {}
    for name, cell in cells.items():
        m = _SUFFIXED.match(name) if name not in _FIXED else None
        if m is None or not cell.strip():
            continue
        column, kind = m.groups()
        if kind in ("lo", "hi"):
            if column not in bands:
                out.append(column)          # a placeholder: the band keeps its header place
            bands.setdefault(column, {})[kind] = _int(cell, where, name)
        elif kind == "in":
            out.append(SettingIn(_split(cell), column))
        elif (value := _bool(cell, where, name)) is not None:
            out.append(Flag(column, value))
    for column, ends in bands.items():
        lo, hi = ends.get("lo"), ends.get("hi")
        if lo is not None and hi is not None and lo >= hi:
            raise DecisionTableError(f"{where}: {column}_lo {lo} is not below {column}_hi {hi}")
        out[out.index(column)] = IntBand(column, lo, hi)
    return out


def _parse_row(cells: dict, where: str, source: str) -> DecisionRow:
    group = cells.get("group", "").strip()
    if not group:
        raise DecisionTableError(f"{where}: the row has no group")
    conditions = _dx_conditions(cells, where) + _proc_conditions(cells, where)
    if _split(cells.get("setting", "")):
        conditions.append(SettingIn(_split(cells["setting"])))
    conditions += _suffixed_conditions(cells, where)
    return DecisionRow(tuple(conditions), group, source, cells.get("label", "").strip())


def _records(path: Path, text: Optional[str] = None):
    """(line number, cells) of every non-comment, non-blank line of ``text`` (the file read
    as UTF-8 when None)."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DecisionTableError(f"{path}: not UTF-8 text (byte {exc.start}); save it as "
                                     "UTF-8 or GBK") from None
    # lines as the file's own iteration splits them (universal newlines, endings kept)
    for number, line in enumerate(io.StringIO(text.removeprefix("\ufeff"), newline=""), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, next(csv.reader([line]))


def load_decision_table_csv(path, name: str, output: Optional[str] = None,
                            default: Optional[str] = None,
                            source_name: Optional[str] = None,
                            text: Optional[str] = None) -> DecisionTable:
    """Read a decision table from CSV (layout: ``CSV_LAYOUT``). ``output`` defaults to
    ``name``; row sources are ``{source_name}:{line}`` (default: ``path`` as given);
    ``text``: the file's text when the caller has read it (the compiler reads GBK too).
    Raises ``DecisionTableError`` naming the file and line for any cell it cannot read."""
    path = Path(path)
    label = source_name if source_name is not None else str(path)
    records = _records(path, text)
    first = next(records, None)
    if first is None:
        raise DecisionTableError(f"{path}:1: the file has no header line")
    header_line, header = first
    header = [h.strip() for h in header]
    _check_header(header, f"{path}:{header_line}")
    rows = []
    for number, cells in records:
        where = f"{path}:{number}"
        if len(cells) != len(header):
            raise DecisionTableError(f"{where}: {len(cells)} cells, the header has "
                                     f"{len(header)}")
        rows.append(_parse_row(dict(zip(header, cells)), where, f"{label}:{number}"))
    return DecisionTable(name, output or name, tuple(rows), default, label)

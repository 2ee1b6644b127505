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

``group_table`` evaluates a table over an Arrow table in one compiled pass over the claims
(``_table.pyx``; string work once per distinct code, the table compiled once); ``group_table_reference`` is the obvious per-claim oracle; ``analyse`` reports rows that
never match, rows hidden by an earlier row, and overlapping rows (see ``Finding``);
``load_decision_table_csv`` reads a table from CSV with line numbers as row sources.
"""
from __future__ import annotations

import bisect
import csv
import io
import re
import weakref
from pathlib import Path
from typing import Optional

from yibao.core.lazy import lazy_module
from yibao.core.plan import register_node
from yibao.core.records import Record, record
from ..errors import YibaoError

# imported by the first grouping, not by the compiler loading a table (core/lazy.py)
np, pa, pc = lazy_module("numpy"), lazy_module("pyarrow"), lazy_module("pyarrow.compute")

__all__ = ["DxPrefix", "DxRange", "ProcAny", "ProcAll", "NoProcedure", "SettingIn", "IntBand",
           "Flag", "Row", "DecisionRow", "DecisionTable", "STATUSES", "CSV_LAYOUT",
           "group_table", "group_table_coded", "table_groups", "group_table_reference",
           "analyse", "load_decision_table_csv",
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
@record
class DxPrefix(Record):
    """The code column starts with one of ``prefixes``."""
    prefixes: tuple
    column: str = "principal_dx"

    def __post_init__(self):
        _check_items(self.prefixes, "DxPrefix")

    def describe(self) -> str:
        return f"{self.column} prefix {' | '.join(self.prefixes)}"


@register_node
@record
class DxRange(Record):
    """The code column is in ``lo``–``hi`` compared as codes (see the module docstring)."""
    lo: str
    hi: str
    column: str = "principal_dx"

    def __post_init__(self):
        _check_items((self.lo, self.hi), "DxRange")

    def describe(self) -> str:
        return f"{self.column} in {self.lo}–{self.hi}"


@register_node
@record
class ProcAny(Record):
    """Some code of the list column matches one of ``items``."""
    items: tuple
    column: str = "procedures"

    def __post_init__(self):
        _check_items(self.items, "ProcAny")

    def describe(self) -> str:
        return f"{self.column} any of {_fmt_items(self.items)}"


@register_node
@record
class ProcAll(Record):
    """Every one of ``items`` matches some code of the list column (同时包含)."""
    items: tuple
    column: str = "procedures"

    def __post_init__(self):
        _check_items(self.items, "ProcAll")

    def describe(self) -> str:
        return f"{self.column} all of {_fmt_items(self.items)}"


@register_node
@record
class NoProcedure(Record):
    """The list column holds no non-null code (保守治疗, conservative treatment)."""
    column: str = "procedures"

    def describe(self) -> str:
        return f"no {self.column}"


@register_node
@record
class SettingIn(Record):
    """The text column (``setting`` by default) is one of ``values``."""
    values: tuple
    column: str = "setting"

    def __post_init__(self):
        _check_items(self.values, "SettingIn")

    def describe(self) -> str:
        return f"{self.column} in {_fmt_items(self.values)}"


@register_node
@record
class IntBand(Record):
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
@record
class Flag(Record):
    """The bool column equals ``value``."""
    column: str
    value: bool = True

    def describe(self) -> str:
        return self.column if self.value else f"not {self.column}"


CONDITION_TYPES = (DxPrefix, DxRange, ProcAny, ProcAll, NoProcedure, SettingIn, IntBand, Flag)


@register_node
@record
class DecisionRow(Record):
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
@record
class DecisionTable(Record):
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
    """(distinct string values, integer index per value; nulls index the slot after the
    end). The index is the codes' own buffer when no value is null (a numpy view, int32 for
    a Parquet dictionary): it only indexes small tables of ranks, so it is not widened (at
    1M claims an int64 copy was 8 MB of fresh memory per column, issue 14, p18)."""
    enc = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    dictionary = enc.dictionary.cast(pa.string())
    indices = enc.indices if not enc.indices.null_count else \
        enc.indices.fill_null(len(dictionary))
    return dictionary, indices.to_numpy(zero_copy_only=False)


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
            start, end = offsets[:-1], offsets[1:]  # views: contiguous, nothing copied
            if arr.null_count:  # a null list holds no code, whatever its offsets say
                valid = arr.is_valid().to_numpy(zero_copy_only=False)
                end = end.copy()
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
        self.has_nul = "\x00" in "".join(self.codes)  # numpy strings cannot hold these
        self.rank_null_last = self.rank.astype(np.int32)  # _null_last: per value index
        self.rank_null_last[len(dictionary)] = -1
        self._array = None

    @property
    def array(self) -> np.ndarray:
        """The sorted values as a numpy string array (built once per batch and column)."""
        if self._array is None:
            self._array = np.array(self.codes, dtype=str) if self.codes else np.zeros(0, "<U1")
        return self._array

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


def table_groups(table: DecisionTable) -> tuple:
    """(the table's distinct groups, rows' first then the default's, in first-use order;
    int32 per row and one more slot for "no row": its group's position, -1 for none). A
    claim's group is then one integer: ``group_table_coded`` writes it so."""
    groups: dict = {}
    for row in table.rows:
        groups.setdefault(row.group, len(groups))
    if table.default is not None:
        groups.setdefault(table.default, len(groups))
    of_row = [groups[r.group] for r in table.rows]
    of_row.append(-1 if table.default is None else groups[table.default])
    return tuple(groups), np.array(of_row, np.int32)


def _coded_result(table: DecisionTable, matched_row: np.ndarray) -> pa.Table:
    """Result columns from the matching row per claim (int32, 1-based, 0: none:
    ``_table.first_rows``), the group and the status as dictionary arrays (int32 codes into
    the table's distinct groups and into ``STATUSES``): no string is built per claim."""
    groups, group_of_row = _table_plan(table).groups
    group_of_match = np.roll(group_of_row, 1)  # slot 0: no row (the default's group)
    group = group_of_match[matched_row]
    no_row = STATUSES.index(DEFAULT if table.default is not None else UNMATCHED)
    status_of_match = np.full(len(group_of_row), STATUSES.index(OK), np.int32)
    status_of_match[0] = no_row
    names = [name for name, _ in table.columns()]
    group_codes = pa.array(group, pa.int32()) if table.default is not None else \
        _int32_valid(group, group >= 0)  # with a default every claim has a group
    return pa.table({
        names[0]: pa.DictionaryArray.from_arrays(group_codes, pa.array(groups, pa.string())),
        names[1]: pa.DictionaryArray.from_arrays(
            pa.array(status_of_match[matched_row], pa.int32()), pa.array(STATUSES, pa.string())),
        names[2]: _int32_valid(matched_row, matched_row > 0)})


def _int32_valid(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """int32 ``values`` as an Arrow array, null where not ``valid``: the validity bitmap
    packed by numpy (``pa.array(..., mask=)`` took ten times as long on a million claims
    of which half matched no row, issue 14, p17)."""
    values = np.ascontiguousarray(values, np.int32)
    if valid.all():
        return pa.array(values, pa.int32())
    bitmap = np.packbits(np.asarray(valid, bool), bitorder="little")
    return pa.Array.from_buffers(pa.int32(), len(values),
                                 [pa.py_buffer(bitmap), pa.py_buffer(values)])


def decoded(coded: pa.Table) -> pa.Table:
    """A table with every dictionary column as its plain value type (each value's text
    taken from the small dictionary once per claim)."""
    return pa.table({name: col.cast(col.type.value_type) if pa.types.is_dictionary(col.type)
                     else col for name, col in zip(coded.column_names, coded.columns)})


# -- compiled evaluation (the loop is _table.pyx) ---------------------------------------------

CODE_SPANS, LIST_ANY, NO_CODES, INT_BAND, FLAG = range(5)   # _table.pyx's condition kinds


def group_table(table: DecisionTable, claims: pa.Table) -> pa.Table:
    """Group every claim of ``claims`` with ``table``: one compiled pass over the claims.

    Every string value becomes its rank among the batch's sorted distinct values, so each
    condition is a few rank spans found by binary search (``_TablePlan``, built once per
    table; per batch only the searches, vectorised, run); the rows that read
    the index column (the code column most rows read) are listed per segment of its ranks.
    The nogil loop (``_table.first_rows``) then walks, for each claim, its segment's rows and
    the rows that do not read the index column, in row order, and stops at the first row
    whose conditions hold. The cost grows with the claims and the candidate rows each tries,
    not rows × claims; the Python work per table row is a few binary searches.

    Returns one result row per claim with columns ``table.columns()``: the group (null when
    unmatched), the status (``ok``, ``default`` or ``unmatched``) and the 1-based matching row
    (null when no row matched). An empty batch gives an empty result; a column a condition
    reads but the claims lack raises ``KeyError``; bad codes or values never raise.
    """
    return decoded(group_table_coded(table, claims))


def group_table_coded(table: DecisionTable, claims: pa.Table) -> pa.Table:
    """``group_table`` with the group and the status as dictionary arrays: int32 codes into
    the table's distinct groups (``table_groups``) and into ``STATUSES``. Provider payment
    carries the codes through points and case classes (core/provider.py) and builds each
    text once per claim only when the results are assembled."""
    from ._table import first_rows
    view = _Claims(claims, table)
    if view.n == 0:
        return _coded_result(table, np.zeros(0, np.int32))
    conditions, columns = _table_plan(table).compile(view)
    return _coded_result(table, first_rows(conditions, columns, view.n))


def _index_column(table: DecisionTable):
    """The code column (prefix or range conditions) most rows read; None if none does."""
    counts: dict = {}
    for row in table.rows:
        for col in {c.column for c in row.conditions if isinstance(c, (DxPrefix, DxRange))}:
            counts[col] = counts.get(col, 0) + 1
    return max(sorted(counts), key=counts.get) if counts else None


def _indexed_condition(row: DecisionRow, column):
    """The row's first prefix or range condition on the index column (None: it reads none)."""
    return next((c for c in row.conditions if c.column == column
                 and isinstance(c, (DxPrefix, DxRange))), None)


class _Spans:
    """The rank spans of many conditions on one column, as the strings that bound them:
    span k is ``[#values < lo[k], #values v with v[:len(hi[k])] <= hi[k])`` (a code range or
    prefix) or, when ``exact[k]``, ``[#values < lo[k], #values <= lo[k])`` (one value)."""

    def __init__(self):
        self.owner, self.lo, self.hi, self.exact = [], [], [], []

    def add(self, owner: int, lo: str, hi: str, exact: bool = False) -> None:
        self.owner.append(owner)
        self.lo.append(lo)
        self.hi.append(hi)
        self.exact.append(exact)

    def add_item(self, owner: int, item: str) -> None:
        """A procedure item: ``X*`` the values starting with X, else X alone."""
        if item.endswith("*"):
            self.add(owner, item[:-1], item[:-1])
        else:
            self.add(owner, item, item, True)

    def ranks(self, codes: "_SortedCodes") -> tuple:
        """(first rank, rank after the last) of every span over the batch's sorted values:
        binary searches over all spans at once (numpy) — per length of ``hi`` once, on the
        values cut to that length (cutting keeps them sorted)."""
        if codes.has_nul or any("\x00" in v for v in (*self.lo, *self.hi)):
            return _python_ranks(self, codes)  # numpy strings drop trailing NULs
        values = codes.array
        lo = np.searchsorted(values, np.array(self.lo, dtype=str), side="left")
        hi = np.zeros(len(self.hi), np.int64)
        exact = np.array(self.exact, bool)
        hi[exact] = np.searchsorted(values, np.array(self.lo, dtype=str)[exact], side="right")
        lengths = np.array([len(h) for h in self.hi], np.int64)
        his = np.array(self.hi, dtype=str)
        for length in np.unique(lengths[~exact]):
            at = ~exact & (lengths == length)
            cut = values.astype(f"<U{length}") if len(values) else values
            hi[at] = np.searchsorted(cut, his[at], side="right")
        return lo.astype(np.int64), np.maximum(lo, hi).astype(np.int64)


def _python_ranks(spans: _Spans, codes: "_SortedCodes") -> tuple:
    found = [codes.exact(lo) if ex else codes.span(lo, hi)
             for lo, hi, ex in zip(spans.lo, spans.hi, spans.exact)]
    return (np.array([a for a, _ in found], np.int64).reshape(-1),
            np.array([b for _, b in found], np.int64).reshape(-1))


class _TablePlan:
    """The batch-independent part of a table's compiled form, built once per table
    (``_table_plan``): condition records with their columns and bounds, each row's
    conditions, and the spans (as strings) of every condition and of each row's indexed
    condition. A batch then only ranks its values and searches the spans (``compile``)."""

    def __init__(self, table: DecisionTable):
        self.groups = table_groups(table)
        self.index = _index_column(table)
        self.slots = {"code": {}, "list": {}, "int": {}, "flag": {}}
        self.kind, self.column, self.int_lo, self.int_hi, self.bound = [], [], [], [], []
        self.spans = {}                     # (kind, column name) -> _Spans of conditions
        self.row_spans = _Spans()           # the indexed conditions' spans, owner = row
        self.row_ptr, self.row_conds, self.global_rows = [0], [], []
        for r, row in enumerate(table.rows):
            indexed = _indexed_condition(row, self.index)
            for cond in row.conditions:
                if cond is not indexed:   # the segment holds exactly the claims it matches
                    self.row_conds.extend(self.records(cond))
            self.row_ptr.append(len(self.row_conds))
            if indexed is None:
                self.global_rows.append(r)
            else:
                _add_code_spans(self.row_spans, r, indexed)

    def slot(self, kind: str, name: str) -> int:
        return self.slots[kind].setdefault(name, len(self.slots[kind]))

    def add(self, kind: int, slot_kind: str, name: str, lo=0, hi=0, bound=0) -> int:
        """Append one condition record; returns its number."""
        self.kind.append(kind)
        self.column.append(self.slot(slot_kind, name))
        self.int_lo.append(lo)
        self.int_hi.append(hi)
        self.bound.append(bound)
        return len(self.kind) - 1

    def spans_of(self, slot_kind: str, name: str) -> _Spans:
        return self.spans.setdefault((slot_kind, name), _Spans())

    def records(self, cond) -> list:
        """The condition records of one condition (ProcAll: one per item, a conjunction)."""
        name = cond.column
        if isinstance(cond, (DxPrefix, DxRange, SettingIn)):
            c = self.add(CODE_SPANS, "code", name)
            _add_code_spans(self.spans_of("code", name), c, cond)
            return [c]
        if isinstance(cond, (ProcAny, ProcAll)):
            groups = [cond.items] if isinstance(cond, ProcAny) else [(i,) for i in cond.items]
            out = []
            for items in groups:
                out.append(self.add(LIST_ANY, "list", name))
                for item in items:
                    self.spans_of("list", name).add_item(out[-1], item)
            return out
        if isinstance(cond, NoProcedure):
            return [self.add(NO_CODES, "list", name)]
        if isinstance(cond, IntBand):
            bound = (cond.lo is not None) | (cond.hi is not None) << 1
            return [self.add(INT_BAND, "int", name, cond.lo or 0, cond.hi or 0, bound)]
        if isinstance(cond, Flag):
            return [self.add(FLAG, "flag", name, bound=int(bool(cond.value)))]
        raise TypeError(f"unsupported decision-table condition {cond!r}")

    def compile(self, view: "_Claims") -> tuple:
        """(``_table.Conditions``, ``_table.Columns``) of the table over one batch."""
        from ._table import Conditions
        owner, lo, hi = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for (slot_kind, name), spans in self.spans.items():
            codes = view.sorted_codes(name) if slot_kind == "code" \
                else view.sorted_list_codes(name)
            a, b = spans.ranks(codes)
            owner.append(np.array(spans.owner, np.int64))
            lo.append(a)
            hi.append(b)
        owner, lo, hi = np.concatenate(owner), np.concatenate(lo), np.concatenate(hi)
        keep = hi > lo
        order = np.argsort(owner[keep], kind="stable")
        owner, lo, hi = owner[keep][order], lo[keep][order], hi[keep][order]
        span_ptr = np.searchsorted(owner, np.arange(len(self.kind) + 1)).astype(np.int64)
        i32, i64 = np.int32, np.int64
        conditions = Conditions(
            np.array(self.kind, np.int8), np.array(self.column, i32), span_ptr,
            lo.astype(i32), hi.astype(i32), np.array(self.int_lo, i64),
            np.array(self.int_hi, i64), np.array(self.bound, np.uint8),
            np.array(self.row_ptr, i64), np.array(self.row_conds, i32), *self.segments(view))
        return conditions, self.columns(view)

    def segments(self, view: "_Claims") -> tuple:
        if self.index is None:
            return (np.zeros(1, np.int64), np.zeros(0, np.int32),
                    np.arange(len(self.row_ptr) - 1, dtype=np.int32), np.zeros(0, np.int32))
        codes = view.sorted_codes(self.index)
        a, b = self.row_spans.ranks(codes)
        return _segments(np.array(self.row_spans.owner, np.int64), a, b,
                         np.array(self.global_rows, np.int32), len(self.row_ptr) - 1,
                         len(codes.rank) - 1)

    def columns(self, view: "_Claims") -> "object":
        """``_table.Columns``: the batch's columns in their slots (2-D, one row a column)."""
        from ._table import Columns
        n = view.n

        def stack(arrays, dtype):
            """One row per column; one column (the common case) is a view of its array,
            not a copy (``np.array`` of a list of arrays took 0.06 s at 1M claims)."""
            if len(arrays) == 1:
                return np.ascontiguousarray(arrays[0], dtype).reshape(1, n)
            if not arrays:
                return np.zeros((0, n), dtype)
            return np.stack([np.asarray(a, dtype) for a in arrays])
        list_rank, starts, ends, offset = [np.zeros(0, np.int32)], [], [], 0
        for name in self.slots["list"]:
            start, end, _, idx = view.lists(name)
            list_rank.append(_null_last(view.sorted_list_codes(name), idx))
            starts.append(start + offset if offset else start)
            ends.append(end + offset if offset else end)
            offset += len(idx)
        ints = [view.ints(name) for name in self.slots["int"]]
        flags = [view.flags(name) for name in self.slots["flag"]]
        index_rank = _code_rank(view, self.index) if self.index is not None \
            else np.full(n, -1, np.int32)
        return Columns(stack([_code_rank(view, c) for c in self.slots["code"]], np.int32),
                       stack(starts, np.int64), stack(ends, np.int64),
                       np.concatenate(list_rank).astype(np.int32),
                       stack([v for v, _ in ints], np.int64),
                       stack([m for _, m in ints], np.uint8),
                       stack([v for v, _ in flags], np.uint8),
                       stack([m for _, m in flags], np.uint8), index_rank)


def _add_code_spans(spans: _Spans, owner: int, cond) -> None:
    if isinstance(cond, DxPrefix):
        for p in cond.prefixes:
            spans.add(owner, p, p)
    elif isinstance(cond, DxRange):
        spans.add(owner, cond.lo, cond.hi)
    else:
        for v in cond.values:
            spans.add(owner, v, v, True)


_PLANS: dict = {}  # id(table) -> (weak reference, _TablePlan); dropped with the table


def _table_plan(table: DecisionTable) -> _TablePlan:
    """The table's ``_TablePlan``, built on first use and kept while the table lives (a
    frozen plan node: hashing its rows on every batch would cost what the cache saves)."""
    entry = _PLANS.get(id(table))
    if entry is None or entry[0]() is not table:
        entry = (weakref.ref(table), _TablePlan(table))
        _PLANS[id(table)] = entry
        weakref.finalize(table, _PLANS.pop, id(table), None)
    return entry[1]


def _code_rank(view: "_Claims", name: str) -> np.ndarray:
    """int32 rank of each claim's value among the sorted distinct values, -1 for null."""
    return _null_last(view.sorted_codes(name), view.codes(name)[1])


def _null_last(codes: "_SortedCodes", value_idx: np.ndarray) -> np.ndarray:
    """The ranks of values (indices into the dictionary) as int32, the null slot (the rank
    after every value, ``_SortedCodes``) as -1: one gather from the small table of ranks."""
    return codes.rank_null_last[value_idx]


def _segments(owner: np.ndarray, lo: np.ndarray, hi: np.ndarray, global_rows: np.ndarray,
              n_rows: int, distinct: int) -> tuple:
    """(seg_ptr, seg_rows, global_rows, seg_of_rank): the index column's ranks cut at every
    end of every row's spans (row ``owner[k]`` holds ranks ``[lo[k], hi[k])``), so each
    segment lies wholly inside or outside each row's spans; per segment the rows whose
    spans hold it, ascending, and the rows without an indexed condition."""
    keep = hi > lo
    owner, lo, hi = owner[keep], lo[keep], hi[keep]
    bounds = np.unique(np.concatenate(([0, distinct], lo, hi)))
    first, after = np.searchsorted(bounds, lo), np.searchsorted(bounds, hi)
    counts = after - first
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    seg = starts + np.arange(counts.sum(), dtype=np.int64)
    width = max(n_rows, 1)
    keys = np.unique(seg * width + np.repeat(owner, counts))  # a row's spans may overlap
    seg, seg_rows = keys // width, keys % width
    seg_ptr = np.searchsorted(seg, np.arange(max(len(bounds) - 1, 0) + 1)).astype(np.int64)
    seg_of_rank = np.searchsorted(bounds, np.arange(distinct), side="right") - 1
    return (seg_ptr, seg_rows.astype(np.int32), global_rows.astype(np.int32),
            seg_of_rank.astype(np.int32))


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

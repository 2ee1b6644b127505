"""Static analysis of decision tables (``table.DecisionTable``), run when a policy compiles.

Each row is normalised to a region: one constraint per (kind, column), every dimension an
independent claim attribute, so a region is a set of claims. The checks decide inclusion and
intersection of regions soundly: an "unreachable" finding is never false (a row hidden only by
several earlier rows together is missed), and two rows are said to meet only when some claim
can match both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from yibao.core.grouping.table import (DecisionRow, DecisionTable, DxPrefix, DxRange, IntBand,
                                       NoProcedure, ProcAll, ProcAny, SettingIn, range_empty)

__all__ = ["Finding", "analyse", "analyse_pairwise", "NEVER", "UNREACHABLE", "OVERLAP",
           "EXCEPTION", "CROSS"]


NEVER, UNREACHABLE, OVERLAP, EXCEPTION, CROSS = "T004", "T001", "T002", "T003", "T005"


@dataclass(frozen=True)
class Finding:
    """A table-analysis result. Codes, for rows of different groups unless said:

    - T001 warning, unreachable: an earlier row matches every claim this row matches (any
      groups: the row is dead);
    - T002 warning, overlap: some claims match both rows, neither row contains the other, and
      on some column both read their conditions partly overlap (code ranges ``I20–I22`` and
      ``I21–I25``, age bands ``[0, 14)`` and ``[10, 20)``, procedure sets sharing a code) —
      likely a mistake;
    - T003 note, exception: the earlier row is a special case of the later one (the usual
      specific-before-general order);
    - T004 warning, never: the row's own conditions contradict each other;
    - T005 note, ranking: the rows overlap only through different columns or through claims
      with several procedures (``proc_any 13.41*`` before ``proc_any 88.38*``): first match
      ranks them, as APG and DIP tables intend.

    ``rows`` are 1-based, the reported row first; ``sources`` their ``file:line``."""
    code: str
    severity: str  # "warning" or "note"
    message: str
    rows: tuple
    sources: tuple

    def __str__(self) -> str:
        where = self.sources[0] if self.sources and self.sources[0] else f"row {self.rows[0]}"
        return f"{where}: {self.severity}[{self.code}]: {self.message}"


def _upper_within(hb: str, ha: str) -> bool:
    """Is {c : c[:len(hb)] <= hb} inside {c : c[:len(ha)] <= ha}?"""
    m = min(len(ha), len(hb))
    if hb[:m] != ha[:m]:
        return hb[:m] < ha[:m]
    return len(ha) <= len(hb)


def _range_within(b, a) -> bool:
    return a[0] <= b[0] and _upper_within(b[1], a[1])


def _range_meet(a, b):
    """The intersection of two code ranges (ranges are totally ordered by their upper sets),
    or None when empty."""
    lo = max(a[0], b[0])
    hi = a[1] if _upper_within(a[1], b[1]) else b[1]
    return None if range_empty(lo, hi) else (lo, hi)


def _item_covers(a: str, b: str) -> bool:
    """Does every code matched by item ``b`` match item ``a``?"""
    if a.endswith("*"):
        return b.rstrip("*").startswith(a[:-1]) if b.endswith("*") else b.startswith(a[:-1])
    return not b.endswith("*") and a == b


def _dx_ranges(cond) -> tuple:
    if isinstance(cond, DxPrefix):
        return tuple((p, p) for p in cond.prefixes)
    return ((cond.lo, cond.hi),)


@dataclass
class _Region:
    codes: dict    # column -> tuple of (lo, hi) ranges, a union
    procs: dict    # column -> (no procedure?, needs: tuple of item tuples, each any-of)
    values: dict   # column -> frozenset
    bands: dict    # column -> (lo, hi), None unbounded
    flags: dict    # column -> bool
    empty: bool = False


def _add_codes(reg: _Region, cond) -> None:
    ranges = _dx_ranges(cond)
    if cond.column in reg.codes:
        ranges = tuple(m for a in reg.codes[cond.column] for b in ranges
                       if (m := _range_meet(a, b)) is not None)
    ranges = tuple(r for r in ranges if not range_empty(*r))
    reg.codes[cond.column] = ranges
    reg.empty |= not ranges


def _add_procs(reg: _Region, cond) -> None:
    none, needs = reg.procs.get(cond.column, (False, ()))
    if isinstance(cond, NoProcedure):
        none = True
    elif isinstance(cond, ProcAny):
        needs += (cond.items,)
    else:
        needs += tuple((item,) for item in cond.items)
    reg.procs[cond.column] = (none, needs)
    reg.empty |= none and bool(needs)


def _add_band(reg: _Region, cond) -> None:
    lo, hi = reg.bands.get(cond.column, (None, None))
    if cond.lo is not None:
        lo = cond.lo if lo is None else max(lo, cond.lo)
    if cond.hi is not None:
        hi = cond.hi if hi is None else min(hi, cond.hi)
    reg.bands[cond.column] = (lo, hi)
    reg.empty |= lo is not None and hi is not None and lo >= hi


def _region(row: DecisionRow) -> _Region:
    reg = _Region({}, {}, {}, {}, {})
    for cond in row.conditions:
        if isinstance(cond, (DxPrefix, DxRange)):
            _add_codes(reg, cond)
        elif isinstance(cond, (ProcAny, ProcAll, NoProcedure)):
            _add_procs(reg, cond)
        elif isinstance(cond, SettingIn):
            values = reg.values.get(cond.column, frozenset(cond.values)) & set(cond.values)
            reg.values[cond.column] = values
            reg.empty |= not values
        elif isinstance(cond, IntBand):
            _add_band(reg, cond)
        else:
            if reg.flags.setdefault(cond.column, bool(cond.value)) != bool(cond.value):
                reg.empty = True
    return reg


def _procs_within(b, a) -> bool:
    """Does every list satisfying ``b`` satisfy ``a``? (each a-need is implied by a b-need)"""
    (b_none, b_needs), (a_none, a_needs) = b, a
    if a_none:
        return b_none
    if b_none:
        return not a_needs
    return all(any(all(any(_item_covers(x, y) for x in need_a) for y in need_b)
                   for need_b in b_needs) for need_a in a_needs)


def _band_within(b, a) -> bool:
    lo_ok = a[0] is None or (b[0] is not None and b[0] >= a[0])
    return lo_ok and (a[1] is None or (b[1] is not None and b[1] <= a[1]))


def _within(b: _Region, a: _Region) -> bool:
    """Is every claim of region ``b`` in region ``a``? Sound: True only when it is so."""
    def each(dim_a, dim_b, test):
        return all(col in dim_b and test(dim_b[col], dim_a[col]) for col in dim_a)
    return (each(a.codes, b.codes, lambda rb, ra: all(any(_range_within(x, y) for y in ra)
                                                      for x in rb))
            and each(a.procs, b.procs, _procs_within)
            and each(a.values, b.values, lambda vb, va: vb <= va)
            and each(a.bands, b.bands, _band_within)
            and each(a.flags, b.flags, lambda fb, fa: fb == fa))


def _meet(a: _Region, b: _Region) -> bool:
    """Can one claim be in both (non-empty) regions? Exact for independent columns."""
    def each(dim_a, dim_b, test):
        return all(test(dim_a[col], dim_b[col]) for col in dim_a if col in dim_b)

    def procs(pa_, pb):
        return not ((pa_[0] and pb[1]) or (pb[0] and pa_[1]))

    return (each(a.codes, b.codes, lambda x, y: any(_range_meet(p, q) for p in x for q in y))
            and each(a.procs, b.procs, procs)
            and each(a.values, b.values, lambda x, y: bool(x & y))
            and each(a.bands, b.bands, _bands_cross)
            and each(a.flags, b.flags, lambda x, y: x == y))


def _items_meet(a: str, b: str) -> bool:
    """Can one code match both items?"""
    if a.endswith("*") and b.endswith("*"):
        return a[:-1].startswith(b[:-1]) or b[:-1].startswith(a[:-1])
    if a.endswith("*") or b.endswith("*"):
        prefix, code = (a[:-1], b) if a.endswith("*") else (b[:-1], a)
        return code.startswith(prefix)
    return a == b


def _partial(x, y, within, meet) -> bool:
    return meet(x, y) and not within(x, y) and not within(y, x)


def _procs_partial(x, y) -> bool:
    """Do some needs of the two rows share a code, neither proc constraint containing the
    other? (disjoint needs meet only through lists of several codes: a ranking)"""
    shared = any(_items_meet(i, j) for need_x in x[1] for need_y in y[1]
                 for i in need_x for j in need_y)
    return shared and not _procs_within(x, y) and not _procs_within(y, x)


def _axis_partial(a: _Region, b: _Region) -> bool:
    """Is there a column both regions read on which their conditions partly overlap?"""
    def codes_meet(x, y):
        return any(_range_meet(p, q) for p in x for q in y)

    def codes_within(x, y):
        return all(any(_range_within(r, s) for s in y) for r in x)

    def bands_meet(x, y):
        return _band_within(x, y) or _band_within(y, x) or _bands_cross(x, y)
    tests = ((a.codes, b.codes, codes_within, codes_meet),
             (a.values, b.values, lambda x, y: x <= y, lambda x, y: bool(x & y)),
             (a.bands, b.bands, _band_within, bands_meet))
    return (any(_partial(dim_a[c], dim_b[c], within, meet)
                for dim_a, dim_b, within, meet in tests for c in dim_a if c in dim_b)
            or any(_procs_partial(a.procs[c], b.procs[c]) for c in a.procs if c in b.procs))


def _bands_cross(x, y) -> bool:
    lo = max((v for v in (x[0], y[0]) if v is not None), default=None)
    hi = min((v for v in (x[1], y[1]) if v is not None), default=None)
    return lo is None or hi is None or lo < hi


def _finding(code, severity, message, rows, table) -> Finding:
    return Finding(code, severity, message, tuple(rows),
                   tuple(table.rows[r - 1].source for r in rows))


def _pair_finding(table: DecisionTable, regions, i: int, j: int) -> Optional[Finding]:
    """The finding for earlier row ``i`` and later row ``j`` (0-based), if any."""
    a, b = regions[i], regions[j]
    ri, rj = table.rows[i], table.rows[j]
    if _within(b, a):
        return _finding(UNREACHABLE, "warning",
                        f"row {j + 1} ({rj.group}) is unreachable: row {i + 1} ({ri.group}) "
                        f"matches every claim it matches", (j + 1, i + 1), table)
    if ri.group == rj.group or not _meet(a, b):
        return None
    if _within(a, b):
        return _finding(EXCEPTION, "note",
                        f"row {i + 1} ({ri.group}) is a special case of row {j + 1} "
                        f"({rj.group}) and takes precedence over it", (i + 1, j + 1), table)
    if not _axis_partial(a, b):
        return _finding(CROSS, "note",
                        f"rows {i + 1} ({ri.group}) and {j + 1} ({rj.group}) can match one "
                        f"claim through different columns or several procedures; first match "
                        f"gives {ri.group}", (j + 1, i + 1), table)
    return _finding(OVERLAP, "warning",
                    f"rows {i + 1} ({ri.group}) and {j + 1} ({rj.group}) overlap: some claims "
                    f"match both and get {ri.group} by first match", (j + 1, i + 1), table)


def _merge_cross(table: DecisionTable, j: int, pairs: list) -> list:
    """One T005 note per row, naming every earlier row that ranks above it."""
    cross = [f for f in pairs if f.code == CROSS]
    if len(cross) < 2:
        return pairs
    earlier = [f.rows[1] for f in cross]
    names = ", ".join(f"{r} ({table.rows[r - 1].group})" for r in earlier)
    merged = _finding(CROSS, "note",
                      f"row {j + 1} ({table.rows[j].group}) can match claims that rows {names} "
                      f"match through different columns or several procedures; first match "
                      f"gives those rows", (j + 1, *earlier), table)
    return [f for f in pairs if f.code != CROSS] + [merged]


def analyse(table: DecisionTable) -> list:
    """Findings (``Finding``) for ``table`` in row order. A row that never matches (T004) or
    is hidden (T001, reported against the first row hiding it) takes part in no other
    finding. Every finding needs two rows some claim can match together, so only such
    candidate pairs are checked (``_candidate_pairs``: an interval sweep over the code ranges
    of the most-used code column): O(rows · log rows + pairs that share codes), the same
    findings as checking every pair (``analyse_pairwise``)."""
    regions = [_region(row) for row in table.rows]
    return _findings(table, regions, _candidate_pairs(regions))


def analyse_pairwise(table: DecisionTable) -> list:
    """``analyse`` checking every pair of rows: O(rows²), the oracle of the indexed form."""
    regions = [_region(row) for row in table.rows]
    return _findings(table, regions, lambda j: range(j))


def _findings(table: DecisionTable, regions: list, earlier) -> list:
    """The findings, where ``earlier(j)`` lists (ascending) every earlier row that may share
    a claim with row ``j`` (a superset is fine: the pair checks are exact)."""
    findings, live = [], set()
    for j, row in enumerate(table.rows):
        if regions[j].empty:
            findings.append(_finding(NEVER, "warning", f"row {j + 1} ({row.group}) can never "
                                     f"match: its conditions contradict each other", (j + 1,),
                                     table))
            continue
        pairs = [f for i in earlier(j) if i in live
                 and (f := _pair_finding(table, regions, i, j)) is not None]
        hidden = next((f for f in pairs if f.code == UNREACHABLE), None)
        findings.extend([hidden] if hidden else _merge_cross(table, j, pairs))
        if hidden is None:
            live.add(j)
    return findings


# -- candidate pairs by an interval sweep ------------------------------------------------------
# A code range lo–hi is the interval [lo, U(hi)] of codes in string order, where U(hi) =
# {c : c[:len(hi)] <= hi} is closed downwards. Sorted by lo, a range meets an earlier-starting
# range exactly when its lo lies in the earlier one's U(hi); once a lo falls outside U(hi),
# every later lo does too, so the earlier range leaves the sweep for good.

def _index_column(regions: list):
    """The code column most non-empty rows constrain (None: no row reads a code column)."""
    counts: dict = {}
    for reg in regions:
        if not reg.empty:
            for col in reg.codes:
                counts[col] = counts.get(col, 0) + 1
    return max(sorted(counts), key=counts.get) if counts else None


def _candidate_pairs(regions: list):
    """``earlier(j)``: the rows before ``j`` whose ranges on the index column meet row
    ``j``'s, plus every row that does not read the index column (those meet every row)."""
    column = _index_column(regions)
    if column is None:
        return lambda j: range(j)
    free = [i for i, reg in enumerate(regions) if not reg.empty and column not in reg.codes]
    ranges = sorted((lo, hi, i) for i, reg in enumerate(regions)
                    if not reg.empty and column in reg.codes for lo, hi in reg.codes[column])
    meets: dict = {}
    active: list = []
    for lo, hi, i in ranges:
        active = [(h, k) for h, k in active if lo[:len(h)] <= h]
        for _, k in active:
            if k != i:
                meets.setdefault(max(i, k), set()).add(min(i, k))
        active.append((hi, i))
    free_set = set(free)

    def earlier(j: int):
        found = meets.get(j, set())
        if j in free_set:
            return range(j)
        return sorted(found.union(i for i in free if i < j))
    return earlier

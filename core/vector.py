"""Vectorised evaluation of plan expressions over whole columns (numpy, engine units).

Everything a layer needs that does not depend on earlier claims (applies-when, the claim part of
the base, deductible, ratio, cap and limit amounts) is an expression over the claim's own
columns, evaluated here once per batch. The stateful part (accumulators across a person's year)
is the Cython kernel's. Dispatch is a table keyed by node type; an unknown node raises
``UnsupportedNodeError`` naming it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _arith, _dense
from .errors import EXIT_UNEXPECTED, YibaoError
from .plan import (MONEY, RATIO, RATIO_SCALE, TEXT, Binary, Call, Column, Cond, Const, Expr,
                   InSet, Lookup, Not, Paid, Plan, Table)


class UnsupportedNodeError(YibaoError, TypeError):
    """A plan node the vector evaluator has no rule for: a bug in yibao, not in the input."""
    exit_code = EXIT_UNEXPECTED

    def __init__(self, node):
        super().__init__(f"the vector evaluator cannot evaluate a {type(node).__name__} node "
                         f"here: {node!r}")


class MissingImplementationError(YibaoError, LookupError):
    """A plan calls a function no installed plugin implements (raised at lowering)."""


_U63 = np.uint64(1 << 63)  # |INT64_MIN|: the largest magnitude a negative int64 can have
_S = np.uint64(RATIO_SCALE)


def round_half_up_div(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half-up away from zero, exact for int64 ``num`` (den > 0); the
    vectorised twin of money.round_half_up."""
    num = np.asarray(num, dtype=np.int64)
    q, r = np.divmod(_magnitude(num), np.uint64(den))
    q = q + (2 * r >= den)
    return _signed(q, num < 0)


def _magnitude(a: np.ndarray) -> np.ndarray:
    """|a| as uint64, exact for every int64 (|INT64_MIN| = 2**63 included)."""
    a = np.asarray(a, dtype=np.int64)
    return np.where(a < 0, (-(a + 1)).astype(np.uint64) + np.uint64(1), a.astype(np.uint64))


def _signed(magnitude: np.ndarray, negative) -> np.ndarray:
    """magnitude (uint64, at most 2**63 where negative, 2**63 - 1 elsewhere) with a sign, as
    int64: two's complement negation in uint64, then a view."""
    m = np.asarray(magnitude, dtype=np.uint64)
    return np.where(negative, (~m + np.uint64(1)), m).astype(np.uint64).view(np.int64)


def _mul_u64(a: np.ndarray, b: np.ndarray, limit: np.uint64) -> tuple:
    """(a × b, a × b > limit) for uint64 magnitudes; the product is exact where not over."""
    over = (a != 0) & (b > limit // np.where(a == 0, np.uint64(1), a))
    return a * np.where(over, np.uint64(0), b), over


def checked_add(a, b) -> tuple:
    """(a + b, rows where the sum leaves int64); the sum is only meaningful elsewhere."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    r = a + b  # wraps silently on overflow: detected from the signs below
    return r, ((a ^ r) & (b ^ r)) < 0


def checked_sub(a, b) -> tuple:
    """(a - b, rows where the difference leaves int64); the difference is only meaningful
    elsewhere. Columns of one length go through one C pass (_arith); anything else (other
    shapes, a scalar) is numpy's, with the same sign test."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.ndim == 1 and a.shape == b.shape:
        return _arith.checked_sub(a, b)
    r = a - b  # wraps silently on overflow: detected from the signs below
    return r, ((a ^ b) & (a ^ r)) < 0


def checked_mul(a, b) -> tuple:
    """(a × b, rows where the product leaves int64), exact, no float."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    negative = (a < 0) != (b < 0)
    limit = np.where(negative, _U63, _U63 - np.uint64(1))
    m, over = _mul_u64(_magnitude(a), _magnitude(b), np.uint64(1 << 63))
    over |= m > limit
    return _signed(np.where(over, np.uint64(0), m), negative & ~over), over


def apply_ratio_checked(money, ratio) -> tuple:
    """(round_half_up(money × ratio / RATIO_SCALE), rows where it leaves int64): half-up away
    from zero for negative amounts too, exact for every int64 pair (no 128-bit type in numpy:
    with |money| = q·S + r and |ratio| = Q·S + R, the exact quotient is
    q·|ratio| + r·Q + r·R/S, and only the last term has a fraction)."""
    money, ratio = np.asarray(money, dtype=np.int64), np.asarray(ratio, dtype=np.int64)
    q, r = np.divmod(_magnitude(money), _S)
    big_q, small_r = np.divmod(_magnitude(ratio), _S)
    t1, over1 = _mul_u64(q, _magnitude(ratio), _U63)
    t2, over2 = _mul_u64(r, big_q, _U63)
    t3 = (2 * r * small_r + _S) // (2 * _S)  # r, small_r < 10**6: no overflow
    over = over1 | over2 | (t2 > _U63 - np.minimum(t1, _U63))
    total = np.where(over, np.uint64(0), t1 + t2)
    over |= t3 > _U63 - np.minimum(total, _U63)
    total = np.where(over, np.uint64(0), total + t3)
    negative = (money < 0) != (ratio < 0)
    over |= total > np.where(negative, _U63, _U63 - np.uint64(1))
    return _signed(np.where(over, np.uint64(0), total), negative & ~over), over


def apply_ratio(money: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """money × ratio to the fen, half-up away from zero. Raises ArithmeticError if a row's
    result leaves int64 (the Evaluator uses apply_ratio_checked and rejects such rows)."""
    out, over = apply_ratio_checked(money, ratio)
    if over.any():
        raise ArithmeticError("money × ratio leaves the int64 range of fen")
    return out


def _or(a, b):
    """Union of two 'left int64' masks, either of which may be None (nothing can overflow)."""
    if a is None:
        return b
    if b is None:
        return a
    return a | b


class Evaluator:
    """Evaluates expressions of one plan over ``n`` prepared rows. Lookup misses are collected
    in ``missing`` (a bool mask) with the table's name, for the rejects.

    Arithmetic is checked: ``checked(e)`` returns the values and a mask of the rows where some
    node of ``e`` would leave int64 (None: no row can), following the branch a ``Cond`` takes,
    as the reference evaluator does claim by claim; a flagged row's value is meaningless and
    lower.py rejects the claim (``money.OUT_OF_RANGE``)."""

    def __init__(self, plan: Plan, columns: dict, n: int, registry=None, tables=None):
        """``tables``: a dict shared by evaluators of the same plan (chunks of one batch), so
        each lookup table is laid out once."""
        self.plan, self.columns, self.n, self.registry = plan, columns, n, registry
        self.missing = np.zeros(n, dtype=bool)
        self.missing_tables: dict = {}  # table name -> mask of rows it missed
        self._tables: dict = tables if tables is not None else {}
        self._lookups: dict = {}  # id(Lookup node) -> (values, miss, over): evaluated once
        self._wide: dict = {}  # column name -> the column widened to int64 (``column``)

    def __call__(self, e: Expr) -> np.ndarray:
        return self.checked(e)[0]

    def checked(self, e: Expr) -> tuple:
        """(values, rows where the arithmetic leaves int64, or None)."""
        fn = _DISPATCH.get(type(e))
        if fn is None:
            raise UnsupportedNodeError(e)
        return fn(self, e)

    # -- nodes ------------------------------------------------------------------------------
    def const(self, e: Const):
        """A read-only broadcast view (stride 0): no n-element array for a constant; the
        lowering hands it to the kernel as a single element."""
        dtype = bool if isinstance(e.value, bool) else np.int64
        return np.broadcast_to(np.asarray(e.value, dtype=dtype), (self.n,)), None

    def column(self, e: Column):
        """The column in int64 (booleans as bool, open text as Arrow): prepared columns are
        narrow (arrow_io), widened here once per evaluator, i.e. per 64K-row chunk."""
        if e.name not in self._wide:
            self._wide[e.name] = engine_width(self.columns[e.name])
        return self._wide[e.name], None

    def binary(self, e: Binary):
        text = _text_comparison(e)
        if text is not None:
            return self._text_equal(e.op, *text)
        (left, lbad), (right, rbad) = self.checked(e.left), self.checked(e.right)
        bad = _or(lbad, rbad)
        if e.op in _CHECKED_OPS:
            out, over = self._arithmetic(e, left, right)
            return out, _or(bad, over if over.any() else None)
        return _BINARY_OPS[e.op](left, right), bad

    def _arithmetic(self, e: Binary, left, right) -> tuple:
        if e.op == "*":
            lk, rk = e.left.type.kind, e.right.type.kind
            if lk == MONEY and rk == RATIO:
                return apply_ratio_checked(left, right)
            if lk == RATIO and rk == MONEY:
                return apply_ratio_checked(right, left)
        return _CHECKED_OPS[e.op](left, right)

    def not_(self, e: Not):
        value, bad = self.checked(e.operand)
        return ~np.asarray(value, dtype=bool), bad

    def _text_equal(self, op: str, operand: Expr, literal: str) -> tuple:
        """An open text column ``==`` / ``!=`` a text literal, compared as text (as ``in_set``
        does): the literal is no integer, and the column is Arrow text, not codes."""
        value, bad = self.checked(operand)
        same = _open_text_in(value, [literal])
        return (same if op == "==" else ~same), bad

    def in_set(self, e: InSet):
        value, bad = self.checked(e.operand)
        if isinstance(value, (pa.Array, pa.ChunkedArray)):  # open text column
            return _open_text_in(value, e.values), bad
        member = _member_table(e.values)
        if (member is not None and isinstance(value, np.ndarray) and value.dtype == np.int64
                and value.ndim == 1):
            return _dense.in_small_set(value, member[1], member[0]), bad
        return np.isin(value, np.asarray(e.values, dtype=np.int64)), bad

    def cond(self, e: Cond):
        """Both branches are computed; a row's overflow counts only in the branch it takes."""
        test, tbad = self.checked(e.test)
        (then, thbad), (orelse, obad) = self.checked(e.then), self.checked(e.orelse)
        test = np.asarray(test, dtype=bool)
        branch_bad = None
        if thbad is not None or obad is not None:
            zeros = np.zeros(self.n, dtype=bool)
            branch_bad = np.where(test, zeros if thbad is None else thbad,
                                  zeros if obad is None else obad)
        return np.where(test, then, orelse), _or(tbad, branch_bad)

    def lookup(self, e: Lookup):
        """The table's value per row (0 where no row matches, which ``missing`` records).
        The rejects check and the lowering both ask for every lookup: it is computed once.
        A row whose key arithmetic left int64 is not a miss: it is rejected as out of range."""
        if id(e) not in self._lookups:
            self._lookups[id(e)] = self._lookup(e)
        values, miss, over = self._lookups[id(e)]
        if miss.any():
            self.missing |= miss
            self.missing_tables[e.table] = self.missing_tables.get(e.table, 0) | miss
        return values, over

    def _lookup(self, e: Lookup):
        dense = self._dense_table(self.plan.table(e.table))
        args, over = [], None
        for arg in e.args:
            value, bad = self.checked(arg)
            over = _or(over, bad)
            args.append(value)
        index = np.zeros(self.n, dtype=np.int64)
        hit = np.ones(self.n, dtype=bool)
        if dense.code_tables is not None and all(
                isinstance(v, np.ndarray) and v.dtype == np.int64 and v.shape == (self.n,)
                for v in args):
            flags = hit.view(np.uint8)  # the C passes clear a row's hit in place
            for value, (lo, codes), (_, stride) in zip(args, dense.code_tables, dense.axes):
                _dense.add_key_codes(value, codes, lo, stride, index, flags)
            values = _dense.read_cells(index, flags, dense.values, dense.present.view(np.uint8))
        else:
            for value, (keys, stride) in zip(args, dense.axes):
                code, found = _key_codes(value, keys)
                index += code * stride
                hit &= found
            values = dense.values[index]
            hit &= dense.present[index]
            values = np.where(hit, values, 0)
        miss = ~hit if over is None else ~hit & ~over
        return values, miss, over

    def call(self, e: Call):
        decl = self.registry.functions.get(e.function) if self.registry else None
        if decl is None or decl.impl is None:
            raise MissingImplementationError(
                f"no installed plugin implements function {e.function!r}")
        args, bad = [], None
        for a in e.args:
            value, abad = self.checked(a)
            args.append(value)
            bad = _or(bad, abad)
        try:
            out = decl.impl(*args, n=self.n)
        except Exception as exc:  # name the plugin: its author needs to know it was theirs
            raise RuntimeError(f"plugin {decl.plugin!r}: function {e.function!r} failed: "
                               f"{exc}") from exc
        out = np.asarray(out)
        if out.shape != (self.n,):
            raise RuntimeError(f"plugin {decl.plugin!r}: function {e.function!r} returned "
                               f"shape {out.shape}, expected ({self.n},)")
        return out, bad

    def paid(self, e: Paid):
        raise UnsupportedNodeError(e)  # paid() is split off by lower.split_base

    def _dense_table(self, table: Table):
        if table.name not in self._tables:
            self._tables[table.name] = DenseTable(table)
        return self._tables[table.name]


def engine_width(values):
    """A prepared column as the evaluators compute on it: integers of any width as int64;
    bool and int64 numpy arrays and Arrow arrays (open text) as they are, not copied."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.dtype != np.int64:
        return values.astype(np.int64)
    return values


_CHECKED_OPS = {"+": checked_add, "-": checked_sub, "*": checked_mul}

def _open_text_in(value, values) -> np.ndarray:
    """Whether each row of an open text column (Arrow text) is one of ``values`` (a null
    row is not): ``in_set`` and ``==`` / ``!=`` a text literal."""
    mask = pc.is_in(value, value_set=pa.array([str(v) for v in values], pa.string()))
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def _text_comparison(e: Binary):
    """(the other operand, the literal) when ``e`` is ``==`` / ``!=`` with a text literal on
    one side (an open text column's test: ``applies when hospital_id = "H03"``), else None."""
    if e.op not in ("==", "!="):
        return None
    for operand, other in ((e.left, e.right), (e.right, e.left)):
        if isinstance(other, Const) and isinstance(other.value, str):
            return operand, other.value
    return None


_BINARY_OPS = {
    "min": np.minimum,
    "max": np.maximum,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "and": lambda a, b: np.asarray(a, bool) & np.asarray(b, bool),
    "or": lambda a, b: np.asarray(a, bool) | np.asarray(b, bool),
}

_DISPATCH = {
    Const: Evaluator.const, Column: Evaluator.column, Binary: Evaluator.binary,
    Not: Evaluator.not_, InSet: Evaluator.in_set, Cond: Evaluator.cond,
    Lookup: Evaluator.lookup, Call: Evaluator.call, Paid: Evaluator.paid,
}


class DenseTable:
    """A lookup table laid out as a dense array over the product of each key's distinct values
    (mixed radix), so a lookup is one gather per key and one for the value."""

    def __init__(self, table: Table):
        ncols = len(table.key_types)
        self.axes = []
        sizes = []
        for i in range(ncols):
            keys = sorted({row[0][i] for row in table.rows}, key=_sort_key)
            sizes.append(len(keys))
            self.axes.append(keys)
        strides = np.cumprod([1] + sizes[::-1][:-1])[::-1] if ncols else []
        self.axes = [(keys, int(s)) for keys, s in zip(self.axes, strides)]
        total = int(np.prod(sizes)) if ncols else 1
        self.values = np.zeros(total, dtype=np.int64)
        self.present = np.zeros(total, dtype=bool)
        for key, value in table.rows:
            flat = sum(axis[0].index(k) * axis[1] for k, axis in zip(key, self.axes))
            self.values[flat] = int(value)
            self.present[flat] = True
        self.code_tables = _code_tables([keys for keys, _ in self.axes]) if ncols else None


def _code_tables(axes) -> list:
    """Per key column, (lo, codes): codes[k - lo] is key k's position among the column's
    keys, -1 where k is not one; None (numpy's lookup, _key_codes) unless every column's keys
    are integers spanning a small range."""
    tables = []
    for keys in axes:
        if not keys or not all(isinstance(k, int) and not isinstance(k, bool) for k in keys):
            return None
        lo, hi = keys[0], keys[-1]  # sorted
        if lo < -(1 << 63) or hi >= 1 << 63 or hi - lo >= _SMALL_KEY_SPAN:
            return None
        codes = np.full(hi - lo + 1, -1, dtype=np.int64)
        codes[np.asarray(keys, dtype=np.int64) - lo] = np.arange(len(keys))
        tables.append((lo, codes))
    return tables


def _member_table(values):
    """(lo, member) with member[v - lo] = 1 for each of ``values`` over the range they span,
    for a one-pass ``in`` test (_dense.in_small_set); None unless they are integers spanning
    a small range."""
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    lo, hi = min(values), max(values)
    if lo < -(1 << 63) or hi >= 1 << 63 or hi - lo >= _SMALL_KEY_SPAN:
        return None
    member = np.zeros(hi - lo + 1, dtype=np.uint8)
    member[[v - lo for v in values]] = 1
    return lo, member


_SMALL_KEY_SPAN = 65536  # keys spanning fewer values are coded through a table over the range


def _sort_key(v):
    return (isinstance(v, str), v)


def _key_codes(values, keys):
    """Position of each value among ``keys`` (a table's distinct keys for one column)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):  # open text
        codes = pc.index_in(values, value_set=pa.array([str(k) for k in keys]))
        found = np.asarray(pc.is_valid(codes).to_numpy(zero_copy_only=False))
        return np.asarray(pc.fill_null(codes, 0).to_numpy(zero_copy_only=False),
                          dtype=np.int64), found
    sorted_keys = np.asarray(keys, dtype=np.int64)
    values = np.asarray(values)
    if len(values) and len(sorted_keys) and sorted_keys[-1] - sorted_keys[0] < _SMALL_KEY_SPAN:
        return _small_key_codes(values, sorted_keys)
    values = values.astype(np.int64, copy=False)
    pos = np.searchsorted(sorted_keys, values)
    pos = np.minimum(pos, len(sorted_keys) - 1)
    found = sorted_keys[pos] == values
    return pos.astype(np.int64), found


def _small_key_codes(values: np.ndarray, sorted_keys: np.ndarray):
    """_key_codes for keys spanning a small range: one gather through a table over the range
    (codes, levels, flags) instead of a binary search per row."""
    lo, hi = int(sorted_keys[0]), int(sorted_keys[-1])
    table = np.full(hi - lo + 1, -1, dtype=np.int64)
    table[sorted_keys - lo] = np.arange(len(sorted_keys))
    vmin, vmax = int(values.min()), int(values.max())
    shifted = values.astype(np.int64) - lo
    if not (lo <= vmin and vmax <= hi):
        shifted = np.clip(shifted, -1, hi - lo + 1)
        table = np.concatenate([[-1], table, [-1]])
        shifted += 1
    code = table[shifted]
    found = code >= 0
    return np.where(found, code, 0), found

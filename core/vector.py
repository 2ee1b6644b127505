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

from .plan import (MONEY, RATIO, RATIO_SCALE, TEXT, Binary, Call, Column, Cond, Const, Expr,
                   InSet, Lookup, Not, Paid, Plan, Table)


class UnsupportedNodeError(TypeError):
    def __init__(self, node):
        super().__init__(f"the vector evaluator cannot evaluate a {type(node).__name__} node "
                         f"here: {node!r}")


class MissingImplementationError(LookupError):
    """A plan calls a function no installed plugin implements (raised at lowering)."""


def round_half_up_div(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half-up away from zero, exact for int64 ``num`` (den > 0)."""
    q, r = np.divmod(np.abs(num), den)
    q = q + (2 * r >= den)
    return np.where(num < 0, -q, q)


def apply_ratio(money: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """money × ratio to the fen, half-up away from zero, without int64 overflow for amounts up
    to 9.2e12 fen: split money into whole multiples of RATIO_SCALE and a remainder."""
    money = np.asarray(money, dtype=np.int64)
    ratio = np.asarray(ratio, dtype=np.int64)
    hi, lo = np.divmod(money, RATIO_SCALE)  # money = hi*S + lo, 0 <= lo < S
    return hi * ratio + round_half_up_div(lo * ratio, RATIO_SCALE)


class Evaluator:
    """Evaluates expressions of one plan over ``n`` prepared rows. Lookup misses are collected
    in ``missing`` (a bool mask) with the table's name, for the rejects."""

    def __init__(self, plan: Plan, columns: dict, n: int, registry=None, tables=None):
        """``tables``: a dict shared by evaluators of the same plan (chunks of one batch), so
        each lookup table is laid out once."""
        self.plan, self.columns, self.n, self.registry = plan, columns, n, registry
        self.missing = np.zeros(n, dtype=bool)
        self.missing_tables: dict = {}  # table name -> mask of rows it missed
        self._tables: dict = tables if tables is not None else {}
        self._lookups: dict = {}  # id(Lookup node) -> (values, miss): each is evaluated once

    def __call__(self, e: Expr) -> np.ndarray:
        fn = _DISPATCH.get(type(e))
        if fn is None:
            raise UnsupportedNodeError(e)
        return fn(self, e)

    # -- nodes ------------------------------------------------------------------------------
    def const(self, e: Const):
        """A read-only broadcast view (stride 0): no n-element array for a constant; the
        lowering hands it to the kernel as a single element."""
        dtype = bool if isinstance(e.value, bool) else np.int64
        return np.broadcast_to(np.asarray(e.value, dtype=dtype), (self.n,))

    def column(self, e: Column):
        return self.columns[e.name]

    def binary(self, e: Binary):
        left, right = self(e.left), self(e.right)
        if e.op == "*":
            return self._multiply(e, left, right)
        return _BINARY_OPS[e.op](left, right)

    def _multiply(self, e: Binary, left, right):
        lk, rk = e.left.type.kind, e.right.type.kind
        if lk == MONEY and rk == RATIO:
            return apply_ratio(left, right)
        if lk == RATIO and rk == MONEY:
            return apply_ratio(right, left)
        return np.asarray(left, dtype=np.int64) * np.asarray(right, dtype=np.int64)

    def not_(self, e: Not):
        return ~np.asarray(self(e.operand), dtype=bool)

    def in_set(self, e: InSet):
        value = self(e.operand)
        if isinstance(value, (pa.Array, pa.ChunkedArray)):  # open text column
            mask = pc.is_in(value, value_set=pa.array([str(v) for v in e.values]))
            return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))
        return np.isin(value, np.asarray(e.values, dtype=np.int64))

    def cond(self, e: Cond):
        return np.where(np.asarray(self(e.test), dtype=bool), self(e.then), self(e.orelse))

    def lookup(self, e: Lookup):
        """The table's value per row (0 where no row matches, which ``missing`` records).
        The rejects check and the lowering both ask for every lookup: it is computed once."""
        if id(e) not in self._lookups:
            self._lookups[id(e)] = self._lookup(e)
        values, miss = self._lookups[id(e)]
        if miss.any():
            self.missing |= miss
            self.missing_tables[e.table] = self.missing_tables.get(e.table, 0) | miss
        return values

    def _lookup(self, e: Lookup):
        dense = self._dense_table(self.plan.table(e.table))
        index = np.zeros(self.n, dtype=np.int64)
        hit = np.ones(self.n, dtype=bool)
        for arg, (keys, stride) in zip(e.args, dense.axes):
            code, found = _key_codes(self(arg), keys)
            index += code * stride
            hit &= found
        values = dense.values[index]
        hit &= dense.present[index]
        return np.where(hit, values, 0), ~hit

    def call(self, e: Call):
        decl = self.registry.functions.get(e.function) if self.registry else None
        if decl is None or decl.impl is None:
            raise MissingImplementationError(
                f"no installed plugin implements function {e.function!r}")
        args = [self(a) for a in e.args]
        try:
            out = decl.impl(*args, n=self.n)
        except Exception as exc:  # name the plugin: its author needs to know it was theirs
            raise RuntimeError(f"plugin {decl.plugin!r}: function {e.function!r} failed: "
                               f"{exc}") from exc
        out = np.asarray(out)
        if out.shape != (self.n,):
            raise RuntimeError(f"plugin {decl.plugin!r}: function {e.function!r} returned "
                               f"shape {out.shape}, expected ({self.n},)")
        return out

    def paid(self, e: Paid):
        raise UnsupportedNodeError(e)  # paid() is split off by lower.split_base

    def _dense_table(self, table: Table):
        if table.name not in self._tables:
            self._tables[table.name] = DenseTable(table)
        return self._tables[table.name]


_BINARY_OPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
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
    if len(values) and len(sorted_keys) and sorted_keys[-1] - sorted_keys[0] < 65536:
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

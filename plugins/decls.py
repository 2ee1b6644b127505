"""Declarations the core registry leaves untyped (groupers, point adjustments) and the
``PluginRegistry`` view a hook fills.

``Registry.groupers`` maps a name to a ``GrouperDecl``; ``Registry.adjustments`` a name to an
``AdjustmentDecl``. Both live here, not in core, because only plugins and their callers use
them: core/points reads the ``PointsPlan`` an adjustment returns, never the adjustment.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from yibao.core.lazy import lazy_module
from yibao.core.plan import BOOL, DATE, INT, MONEY, RATIO
from yibao.core.records import Record, record
from yibao.core.registry import FunctionDecl, KeyDecl, Registry, Stage, Validator

np = lazy_module("numpy")  # read by a checked function's first call, not at registration


@record
class GrouperDecl(Record):
    """A case-mix grouper. ``run(claims: pa.Table, grouper=None) -> pa.Table`` returns one row
    per claim with the ``columns`` it names, vectorised over the whole table. A policy names
    it in a grouper block, ``grouper drg "…" { by NAME }`` (default ``chs_drg``, yibao's own
    CHS-DRG 1.1): the run then calls it with the grouping inputs (codes, sex, age, age_days,
    birth_weight) and the policy's ``core.provider.DrgGrouper`` (tables, MDC order), and it
    returns the CHS-DRG columns (``grouping.drg.OUTPUT_SCHEMA``: drg, drg_status, mdc, adrg,
    stopped_at_mdc, stopped_at_adrg); the policy's city splits are applied after it."""
    name: str
    run: Callable
    columns: tuple  # output column names
    doc: str
    plugin: str = "yibao"


@record
class AdjustmentDecl(Record):
    """A provider-side points adjustment. ``apply(points_plan, params) -> PointsPlan`` rewrites
    a ``yibao.core.points.plan.PointsPlan`` (extra groups, ``Adjustment`` factors, split pools)
    from ``params``, a plan node holding the policy's figures (never figures in code).

    A policy applies it with ``adjust by <name> { <figure> <value> … }``
    (dsl/passes/apply_adjustments.py): ``figures`` are ((figure name, kind), …), the kind one
    of ``FIGURE_KINDS``; the compiler converts each value to engine units and builds the
    params with ``params.from_figures(dict)`` when the class has it, else ``params(**dict)``.
    The rewrite runs once, at compile time: the run evaluates the rewritten plan, vectorised,
    and never calls back into the plugin per claim."""
    name: str
    apply: Callable
    params: type  # the params node class apply() expects
    doc: str
    plugin: str = "yibao"
    figures: tuple = ()  # ((figure name, kind), …) a policy may give


# What a figure of ``adjust by`` can be, and what the compiler hands the params for it:
# ratio / money / points: an int in engine units (millionths, fen, points ×10^4);
# column: a bool claim column's name; pool: a pool's name (a 1-tuple);
# points_csv: ``from "file.csv"`` with columns group,points,avg_cost[,label] → ((group,
# points ×10^4, avg_cost fen), …) in file order.
FIGURE_KINDS = ("ratio", "money", "points", "column", "pool", "points_csv")


EXACT_KINDS = (MONEY, RATIO, INT, BOOL, DATE)  # results that must be integers (engine units)


def exact_results(decl: FunctionDecl):
    """``decl.impl``, refusing a result of floating-point (or non-numeric) values for an
    exact type: ``np.where(age >= 80, 0.05, 0.0)`` as a ratio would otherwise be truncated to
    0 millionths, a silent 0. The error names the plugin and the function."""
    impl, kind = decl.impl, decl.result.kind

    def checked(*args, n):
        out = impl(*args, n=n)
        dtype = np.asarray(out).dtype
        if kind in EXACT_KINDS and dtype.kind not in "iub":
            unit = {MONEY: "int64 fen", RATIO: "int64 millionths (70% = 700_000)"}.get(
                kind, "integers")
            raise TypeError(f"plugin {decl.plugin!r}: function {decl.name!r} returned {dtype} "
                            f"values for a {kind}; return {unit} — never floats")
        return out
    checked.__wrapped__ = impl
    checked.__doc__ = impl.__doc__
    return checked


class PluginRegistry:
    """What a hook sees: ``registry`` restricted to adding, stamped with the plugin's name."""

    def __init__(self, registry: Registry, plugin: str):
        self.registry, self.plugin = registry, plugin

    def _stamp(self, decl):
        return dataclasses.replace(decl, plugin=self.plugin)

    def _clash(self, kind: str, table: dict, decl) -> None:
        old = table.get(decl.name)
        if old is not None and old.plugin != decl.plugin:
            raise ValueError(f"{kind} {decl.name!r} from plugin {decl.plugin!r} clashes with the "
                             f"one from plugin {old.plugin!r}")

    def add_function(self, decl: FunctionDecl) -> None:
        decl = self._stamp(decl)
        if decl.impl is not None:
            decl = dataclasses.replace(decl, impl=exact_results(decl))
        self.registry.add_function(decl)

    def add_key(self, decl: KeyDecl) -> None:
        decl = self._stamp(decl)
        self._clash("key", self.registry.keys, decl)
        self.registry.add_key(decl)

    def add_validator(self, decl: Validator) -> None:
        self.registry.validators.append(self._stamp(decl))

    def add_stage(self, decl: Stage) -> None:
        self.registry.stages.append(self._stamp(decl))

    def add_grouper(self, decl: GrouperDecl) -> None:
        decl = self._stamp(decl)
        self._clash("grouper", self.registry.groupers, decl)
        self.registry.groupers[decl.name] = decl

    def add_adjustment(self, decl: AdjustmentDecl) -> None:
        decl = self._stamp(decl)
        self._clash("adjustment", self.registry.adjustments, decl)
        self.registry.adjustments[decl.name] = decl

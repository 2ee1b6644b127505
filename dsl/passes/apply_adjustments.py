"""apply_adjustments: ``adjust by <name> { … }``, a plugin's point adjustment, on the pools.

Runs after ``check_pools`` (which leaves the checked pools in ``ctx.provider["pools"]``).
Each declaration names an adjustment a plugin registered (``Registry.adjustments``, the
``yibao_register_adjustments`` hook); an unknown name, a figure the adjustment does not take,
a bad value, or the adjustment refusing its figures is E513. The figures are converted to
engine units by their declared kind (plugins/decls.py ``FIGURE_KINDS``), the params node is
built, and ``apply(PointsPlan, params)`` rewrites the pools — once, here: the run evaluates
the rewritten plan (vectorised, kernel and reference alike) and never calls the plugin.
Declarations apply in file order, each to the pools the previous one left.
"""
from __future__ import annotations

from yibao.core.plan import BOOL, MONEY, RATIO
from yibao.core.points import plan as PP

from .. import ast
from ..errors import error, suggest
from ..units import UnitError, number_value
from . import Context
from .read_provider_tables import decimal_cell, read_csv

CODE = "E513"


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    for decl in policy.adjustments():
        _apply(decl, ctx)
    return policy


def _apply(decl: ast.AdjustmentDecl, ctx: Context) -> None:
    name = decl.adjustment.name
    adjustment = ctx.registry.adjustments.get(name)
    if adjustment is None:
        ctx.report(error(CODE, f"unknown point adjustment '{name}'", decl.adjustment.span,
                         suggest(name, ctx.registry.adjustments)
                         or "a plugin registers it (yibao plugins lists them); declare the "
                            "plugin with `plugin \"distribution\" \"versions\"`"))
        return
    figures = _figures(decl, dict(adjustment.figures), ctx)
    pools = ctx.provider.get("pools")
    if figures is None or not pools or ctx.failed:
        if not pools and not ctx.failed:
            ctx.report(error(CODE, f"adjustment '{name}' has no pool to apply to",
                             decl.span, "declare the pools before applying it"))
        return
    params = adjustment.params
    try:
        node = (params.from_figures(figures) if hasattr(params, "from_figures")
                else params(**figures))
        rewritten = adjustment.apply(PP.PointsPlan(tuple(pools)), node)
    except (TypeError, ValueError) as exc:
        ctx.report(error(CODE, f"adjustment '{name}' (plugin {adjustment.plugin}): {exc}",
                         decl.span))
        return
    ctx.provider["pools"] = list(rewritten.pools)


def _figures(decl: ast.AdjustmentDecl, kinds: dict, ctx: Context):
    """{figure: engine value} of the declaration, or None after reporting E513."""
    out, ok = {}, True
    for param in decl.params:
        figure = param.name.name
        if figure not in kinds:
            ctx.report(error(CODE, f"adjustment '{decl.adjustment.name}' takes no figure "
                                   f"'{figure}'", param.name.span,
                             suggest(figure, kinds) or f"its figures: {', '.join(kinds)}"))
            ok = False
        elif figure in out:
            ctx.report(error(CODE, f"figure '{figure}' is given twice", param.name.span))
            ok = False
        else:
            value = _convert(param, kinds[figure], ctx)
            ok &= value is not None
            out[figure] = value
    return out if ok else None


def _convert(param: ast.AdjustParam, kind: str, ctx: Context):
    """The figure's engine value for its kind, or None (reported)."""
    figure, value = param.name.name, param.value
    if kind == "points_csv":
        return _points_rows(value, ctx) if param.csv else _wrong(param, 'from "file.csv"', ctx)
    if param.csv:
        return _wrong(param, f"a {kind}, not a file", ctx)
    if kind in ("ratio", "money", "points"):
        if not isinstance(value, ast.Number):
            return _wrong(param, f"a {kind}", ctx)
        if kind == "points":
            return decimal_cell(value.text, PP.POINT_SCALE, ast.Str(value.span, "policy"),
                                value.span.line, figure, ctx)
        try:
            return number_value(value.text, value.unit, RATIO if kind == "ratio" else MONEY)
        except UnitError as exc:
            ctx.report(error(exc.code, f"{figure}: {exc.message}", value.span, exc.hint))
            return None
    if not isinstance(value, ast.Name):
        return _wrong(param, f"a {kind} name", ctx)
    if kind == "pool":
        return (value.name,)
    return _bool_column(value, ctx)


def _bool_column(name: ast.Name, ctx: Context):
    t = ctx.columns.get(name.name)
    if t is None or t.kind != BOOL:
        hint = suggest(name.name, ctx.columns) if t is None else "declare a bool attribute"
        what = "unknown column" if t is None else "not a bool column"
        ctx.report(error(CODE, f"{what} '{name.name}'", name.span, hint))
        return None
    return name.name


def _points_rows(ref: ast.Str, ctx: Context):
    """((group, points ×10^4, avg_cost fen), …) of a group,points,avg_cost CSV."""
    rows = read_csv(ref, ctx, ("group", "points", "avg_cost"), ("label",))
    if rows is None:
        return None
    out = []
    for n, cells in rows:
        points = decimal_cell(cells["points"], PP.POINT_SCALE, ref, n, "points", ctx)
        cost = decimal_cell(cells["avg_cost"], 100, ref, n, "avg_cost", ctx)
        if points is None or cost is None:
            return None
        out.append((cells["group"], points, cost))
    return tuple(out)


def _wrong(param: ast.AdjustParam, want: str, ctx: Context):
    ctx.report(error(CODE, f"figure '{param.name.name}' must be {want}", param.value.span))
    return None

"""Check the groupers and build their plan nodes (the fourth provider pass).

- a decision table (``grouper X from "t.csv"`` or ``"t.xlsx"``) is read by the one table
  reader (E304/E305), parsed (E504 for a row the grouper cannot read) and analysed
  (``core.grouping.table.analyse``): a row hidden by an earlier one or never matching is
  E505, partly overlapping rows W506; a column it reads that the policy does not declare
  is E201;
- a CHS-DRG grouper: unknown tables or an MDC not in the scheme (E508, read from the
  converted scheme as data: ``core.grouping.plan.scheme_mdcs``), an MDC listed twice (E202),
  a split suffix that is not a short code (E510), ``by NAME`` no loaded plugin registers
  (E703); its split conditions were typed by ``check_provider_conditions``.

``ctx.provider["groupers"]`` lists the nodes (``DecisionTable``, ``DrgGrouper``) in declared
order; ``ctx.grouper_nodes`` maps every declared grouper's name to its node, or None when
it was reported (``check_pools`` then resolves ``group by`` against it).
"""
from __future__ import annotations

from yibao.core.grouping.plan import (DEFAULT_TABLES, DRG_INPUTS, DrgGrouper, DrgSplit,
                                      known_tables, scheme_mdcs)

from .. import ast
from ..errors import error, suggest, warning
from ..table_files import read_table_file
from . import Context


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    ctx.provider = {"groupers": [], "pools": []}
    ctx.grouper_nodes = {}
    for name, decl in ctx.provider_decls["groupers"].items():
        node = _table_grouper(decl, ctx) if decl.csv is not None else _drg_grouper(decl, ctx)
        ctx.grouper_nodes[name] = node
        if node is not None:
            ctx.provider["groupers"].append(node)
    return policy


def _table_grouper(decl: ast.GrouperDecl, ctx: Context):
    from yibao.core.grouping.table import DecisionTableError, load_decision_table_csv
    file = read_table_file(decl.csv, ctx, "decision table", detail=False)
    if file is None:
        return None
    name = decl.name.name
    default = decl.default.value if decl.default else None
    try:
        table = load_decision_table_csv(file.path, name, name, default, decl.csv.value,
                                        file.csv_text())
    except DecisionTableError as exc:
        ctx.report(error("E504", f"decision table: {exc}", decl.csv.span,
                         "see the CSV layout in docs/language.md"))
        return None
    _check_table(table, decl.csv, ctx)
    return table


def _check_table(table, ref: ast.Str, ctx: Context) -> None:
    """The columns a decision table reads are declared; its rows are reachable (E505) and
    disjoint (W506)."""
    from yibao.core.grouping.table_analysis import analyse
    for c in table.input_columns():
        if c not in ctx.columns and c not in ("principal_dx", "procedures"):
            ctx.report(error("E201", f"decision table '{ref.value}' reads column '{c}', "
                             "which the policy does not declare", ref.span,
                             f"declare it: attribute {c}: int"))
    for f in analyse(table):
        if f.code in ("T001", "T004"):
            ctx.report(error("E505", f"{f}", ref.span, "delete or reorder the row"))
        elif f.code == "T002":
            ctx.report(warning("W506", f"{f}", ref.span,
                               "make the rows disjoint, or put the special case first"))


def _drg_grouper(decl: ast.GrouperDecl, ctx: Context):
    parts = {"tables": DEFAULT_TABLES, "mdc_order": None, "splits": [], "by": "chs_drg"}
    for stmt in decl.statements:
        if isinstance(stmt, ast.GrouperBy):
            parts["by"] = _grouper_plugin(stmt, ctx)
        elif isinstance(stmt, ast.DrgTables):
            if not known_tables(stmt.name.name):
                ctx.report(error("E508", f"unknown DRG tables '{stmt.name.name}'", stmt.name.span,
                                 f"known: {DEFAULT_TABLES}"))
                return None
            parts["tables"] = stmt.name.name
        elif isinstance(stmt, ast.MdcOrder):
            parts["mdc_order"] = _mdc_order(stmt, ctx)
        elif isinstance(stmt, ast.DrgSplit):
            _split(stmt, parts["splits"], ctx)
    if parts["mdc_order"] is not None and not _mdcs_known(decl, parts, ctx):
        return None
    columns = tuple(c for c in DRG_INPUTS if c in ctx.columns)
    return DrgGrouper(decl.name.name, decl.label or "", parts["tables"], parts["mdc_order"],
                      tuple(parts["splits"]), columns, f"{decl.span}", parts["by"])


def _split(stmt: ast.DrgSplit, splits: list, ctx: Context) -> None:
    when = ctx.provider_tests[id(stmt.cond)]
    suffix = stmt.suffix.value
    if not (suffix.isalnum() and 1 <= len(suffix) <= 3):
        ctx.report(error("E510", f"split suffix {suffix!r} is not a short code",
                         stmt.suffix.span, 'use 1-3 letters or digits, e.g. "A"'))
    elif when is not None:
        splits.append(DrgSplit(suffix, when, f"{stmt.span}"))


def _mdcs_known(decl: ast.GrouperDecl, parts: dict, ctx: Context) -> bool:
    """Every MDC of the ``mdc order`` is one of the scheme's (else E508 on the statement)."""
    known = scheme_mdcs(parts["tables"])
    bad = [m for m in parts["mdc_order"] if m not in known]
    for stmt in decl.statements:
        if isinstance(stmt, ast.MdcOrder) and bad:
            ctx.report(error("E508", f"unknown MDC {', '.join(bad)}", stmt.span,
                             "MDCs are A, P, Y, Z, M, N, B … X (or MDCA …)"))
    return not bad


def _grouper_plugin(stmt: ast.GrouperBy, ctx: Context) -> str:
    """``by NAME``: a grouper some loaded plugin registers (``Registry.groupers``), else
    E703 with the closest registered name."""
    name, known = stmt.name.name, sorted(ctx.registry.groupers)
    if name not in known:
        hint = suggest(name, known) or (f"registered groupers: {', '.join(known)}" if known
                                        else "no grouper plugin is loaded: declare the "
                                             'distribution that provides it, plugin "…" "…"')
        ctx.report(error("E703", f"no loaded plugin registers a grouper '{name}'",
                         stmt.name.span, hint))
    return name


def _mdc_order(stmt: ast.MdcOrder, ctx: Context) -> tuple:
    out = tuple(n.name if n.name.startswith("MDC") else "MDC" + n.name for n in stmt.names)
    if len(set(out)) != len(out):
        ctx.report(error("E202", "an MDC is listed twice in the order", stmt.span))
    return out

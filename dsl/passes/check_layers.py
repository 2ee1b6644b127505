"""Layer structure: what each layer may say and how layers refer to each other.

- one each of applies/base/deductible/ratio/bands/self_pay_limit (E111); a base (E409);
  not both ratio and bands (E410); not both a ratio (or bands) and a self-pay limit (E408);
- bands start at 0 and each starts where the previous ends (E411); a continuing deductible is
  per claim (E412);
- ``paid``: only in base (E402), only added or subtracted at the top of base (E403), so the
  engine can split base into a claim-only part and ±paid terms; ``paid(x)`` only of a layer
  before this one (E401);
- shared caps: a name declared twice with different terms (E404), or referenced and never
  declared (E405);
- a layer pays between 0% and 100% of its base: its ratio constant, a band rate, or any value
  of a table used as its ratio (`ratio by` rows, `ratio t[…]`) outside that range is E413,
  with "did you mean 85%?" for a bare 85 (which is 8500%); other ratios (an uplift factor in a
  pool) may exceed 100%;
- ``national FIELD`` names a fund field of the national settlement list (E420, with
  did-you-mean; core/national.py ``FUND_FIELDS``), once per layer (E111);
- an unreachable layer: applies when a constant false (E406) or a contradiction such as
  ``setting = outpatient and setting = inpatient`` (W407).
"""
from __future__ import annotations

from .. import ast
from ..errors import error, suggest, warning
from . import Context
from .resolve_names import layer_expressions

SINGLE = {ast.Applies: "applies", ast.Base: "base", ast.Deductible: "deductible",
          ast.Ratio: "ratio", ast.RatioBy: "ratio", ast.Bands: "bands",
          ast.SelfPayLimit: "self_pay_limit", ast.National: "national"}


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    from ..printer import format_expr, format_tail  # the printed form compares caps

    declared = {}  # shared cap name -> (terms, span)
    ratio_tables = set()  # tables already checked as a layer's ratio
    for index, layer in enumerate(policy.layers()):
        earlier = [layer_.name.name for layer_ in policy.layers()[:index]]
        _check_statements(layer, ctx)
        _check_paid(layer, earlier, ctx)
        _check_reachable(layer, ctx)
        _check_ratio_range(layer, ratio_tables, ctx)
        for stmt in layer.statements:
            if isinstance(stmt, ast.Cap) and stmt.name is not None:
                terms = format_expr(stmt.amount) + format_tail(stmt)
                first = declared.setdefault(stmt.name.name, (terms, stmt.span))
                if first[0] != terms:
                    ctx.report(error("E404", f"shared cap '{stmt.name.name}' is declared again "
                                     "with different terms", stmt.span,
                                     f"declare it once (line {first[1].line}) and write "
                                     f"`cap {stmt.name.name}` elsewhere"))
    for layer in policy.layers():
        for stmt in layer.statements:
            if isinstance(stmt, ast.CapRef) and stmt.name.name not in declared:
                ctx.report(error("E405", f"shared cap '{stmt.name.name}' is never declared",
                                 stmt.name.span, suggest(stmt.name.name, declared)
                                 or f"declare it once: cap {stmt.name.name}: AMOUNT per "
                                 "person per year"))
    return policy


def _check_statements(layer: ast.LayerDecl, ctx: Context) -> None:
    seen = {}
    for stmt in layer.statements:
        what = SINGLE.get(type(stmt))
        if what is None:
            continue
        if what in seen:
            ctx.report(error("E111", f"layer '{layer.name.name}' says '{what}' twice", stmt.span,
                             f"the first is on line {seen[what].span.line}"))
        else:
            seen[what] = stmt
    name = layer.name.name
    if "base" not in seen:
        ctx.report(error("E409", f"layer '{name}' has no base", layer.name.span,
                         "add e.g.: base in_scope - self_first"))
    ratio = seen.get("ratio")
    if ratio is not None and "bands" in seen:
        ctx.report(error("E410", f"layer '{name}' has both a ratio and bands", seen["bands"].span))
    pays_by = ratio or seen.get("bands")
    if pays_by is not None and "self_pay_limit" in seen:
        ctx.report(error("E408", f"layer '{name}' has both a ratio and a self-pay limit",
                         seen["self_pay_limit"].span,
                         "a self-pay limit decides the payment itself; use two layers"))
    if "bands" in seen:
        _check_bands(seen["bands"].bands, ctx)
        for band_set in seen["bands"].sets:  # each `when` set is a whole set of bands
            _check_bands(band_set.bands, ctx)
    if "national" in seen:
        _check_national(seen["national"], ctx)
    ded = seen.get("deductible")
    if ded is not None:
        _check_deductible(ded, ctx)


def _check_national(stmt: ast.National, ctx: Context) -> None:
    """E420: the field must be one of the national settlement list's fund fields."""
    from yibao.core.national import FUND_FIELDS
    field = stmt.field.name
    if field not in FUND_FIELDS:
        ctx.report(error("E420", f"'{field}' is not a fund field of the national settlement "
                         "list", stmt.field.span, suggest(field, FUND_FIELDS)
                         or "one of: " + ", ".join(FUND_FIELDS)))


def _check_deductible(ded: ast.Deductible, ctx: Context) -> None:
    per_year = ded.scope is not None and ded.scope.key is not None
    if ded.prefix and ded.scope is not None:
        ctx.report(error("E111", "the deductible's scope is given twice", ded.scope.span))
    if ded.continuing is not None and per_year:
        ctx.report(error("E412", "a continuing deductible must be per claim", ded.span,
                         "write: deductible per claim AMOUNT continuing when COND"))


def _check_bands(bands: tuple, ctx: Context) -> None:
    from ..units import UnitError, number_value
    try:
        values = [(number_value(b.lo.text, b.lo.unit, "money"),
                   None if b.hi is None else number_value(b.hi.text, b.hi.unit, "money"), b)
                  for b in bands]
    except UnitError:
        return  # reported by check_types
    expect = 0
    for lo, hi, band in values:
        if expect is None or lo != expect or (hi is not None and hi <= lo):
            where = "0" if expect == 0 else "where the previous band ends"
            ctx.report(error("E411", "bands must start at 0, each where the previous ends, "
                             "each above its start", band.span, f"this band should start at {where}" if expect == 0 else "this band should start where the previous one ends"
                             if expect is not None else "nothing may follow `and above`"))
            return
        expect = hi


# -- ratio range ------------------------------------------------------------------------------

def _check_ratio_range(layer: ast.LayerDecl, checked: set, ctx: Context) -> None:
    name = layer.name.name
    for stmt in layer.statements:
        if isinstance(stmt, ast.Ratio):
            for kind, node in _ratio_leaves(stmt.expr):
                if kind == "number":
                    _in_range(node, None, f"the ratio of layer '{name}'", ctx)
                elif node not in checked and node in ctx.table_values:
                    checked.add(node)
                    for value_node, value, span in ctx.table_values[node]:
                        _in_range(value_node, value, f"a value of table '{node}' (the ratio "
                                  f"of layer '{name}')", ctx, span)
        elif isinstance(stmt, ast.RatioBy):
            for value_node, value, span in ctx.table_values.get(f"{name}.ratio", ()):
                _in_range(value_node, value, f"a `ratio by` value of layer '{name}'", ctx, span)
        elif isinstance(stmt, ast.Bands):
            for band in (*stmt.bands, *(b for s in stmt.sets for b in s.bands)):
                _in_range(band.rate, None, f"a band rate of layer '{name}'", ctx)


def _ratio_leaves(expr):
    """('number', node) for each constant the ratio can be, ('table', name) for each table it
    can be looked up in: through if/else, min/max and a leading minus."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Number) or (isinstance(node, ast.Unary) and node.op == "-"
                                            and isinstance(node.operand, ast.Number)):
            yield "number", node
        elif isinstance(node, ast.IfElse):
            stack.extend((node.orelse, node.then))
        elif isinstance(node, ast.Call) and node.func.name in ("min", "max"):
            stack.extend(reversed(node.args))
        elif isinstance(node, ast.Lookup):
            yield "table", node.table.name


def _in_range(node, value, what: str, ctx: Context, span=None) -> None:
    """E413 when the ratio ``node`` (engine ``value`` if known) is below 0 or above 100%."""
    from decimal import Decimal

    from yibao.core.plan import RATIO, RATIO_SCALE

    from ..units import UnitError, number_value
    number, sign = (node.operand, "-") if isinstance(node, ast.Unary) else (node, "")
    if not isinstance(number, ast.Number):
        return
    if value is None:
        try:
            value = number_value(number.text, number.unit, RATIO)
        except UnitError:
            return  # reported by check_types
        value = -value if sign else value
    if 0 <= value <= RATIO_SCALE:
        return
    written = f"{sign}{number.text}{number.unit or ''}"
    percent = f"{(Decimal(value) * 100 / RATIO_SCALE).normalize():f}%"
    shown = f"{written}," if written == percent else f"{written}, that is {percent},"
    hint = "a layer pays between 0% and 100% of its base"
    bare = Decimal(number.text) if number.unit is None and not sign else None
    if bare is not None and 1 < bare <= 100:
        hint = f"did you mean {number.text}%?"
    ctx.report(error("E413", f"{what} is {shown} outside 0%..100%", span or node.span, hint))


def _check_paid(layer: ast.LayerDecl, earlier: list, ctx: Context) -> None:
    for stmt in layer.statements:
        for expr in layer_expressions(stmt):
            top = set(map(id, _top_terms(expr))) if isinstance(stmt, ast.Base) else set()
            for node in ast.walk(expr):
                if not isinstance(node, ast.Paid):
                    continue
                if not isinstance(stmt, ast.Base):
                    ctx.report(error("E402", "paid is only allowed in base", node.span))
                elif id(node) not in top:
                    ctx.report(error("E403", "paid may only be added or subtracted at the top "
                                     "of base", node.span,
                                     "write base as: claim amounts ± paid(…) ± …"))
                for ref in node.layers:
                    if ref.name in ctx.layers and ref.name not in earlier:
                        ctx.report(error("E401", f"paid({ref.name}) in layer "
                                         f"'{layer.name.name}': '{ref.name}' is not an earlier "
                                         "layer", ref.span, "layers run in file order"))


def _top_terms(expr) -> list:
    """The terms of the top-level chain of + and -."""
    out, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and node.op in ("+", "-"):
            stack.extend((node.left, node.right))
        else:
            out.append(node)
    return out


# -- reachability ----------------------------------------------------------------------------

def _check_reachable(layer: ast.LayerDecl, ctx: Context) -> None:
    applies = next((s for s in layer.statements if isinstance(s, ast.Applies)), None)
    if applies is None:
        return
    if fold(applies.cond) is False:
        ctx.report(error("E406", f"layer '{layer.name.name}' can never apply: its condition is "
                         "always false", applies.cond.span))
    elif _contradictory(applies.cond, ctx):
        ctx.report(warning("W407", f"layer '{layer.name.name}' can never apply: its condition "
                           "contradicts itself", applies.cond.span,
                           "a claim has one value per column"))


def fold(node):
    """The constant value of a condition made only of literals, or None."""
    if isinstance(node, ast.Bool):
        return node.value
    if isinstance(node, ast.Unary) and node.op == "not":
        value = fold(node.operand)
        return None if value is None else not value
    if isinstance(node, ast.BinOp) and node.op in ("and", "or"):
        left, right = fold(node.left), fold(node.right)
        if node.op == "and":
            return False if False in (left, right) else (True if left and right else None)
        return True if True in (left, right) else (False if left is False and right is False else None)
    if isinstance(node, ast.BinOp) and isinstance(node.left, ast.Number) and isinstance(
            node.right, ast.Number) and node.left.unit == node.right.unit:
        from decimal import Decimal
        a, b = Decimal(node.left.text), Decimal(node.right.text)
        return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}.get(node.op)
    return None


def _contradictory(cond, ctx: Context) -> bool:
    allowed = {}  # column -> set of values
    for term in _conjuncts(cond):
        found = _restriction(term, ctx)
        if found is None:
            continue
        column, values = found
        allowed[column] = allowed.get(column, values) & values
        if not allowed[column]:
            return True
    return False


def _conjuncts(cond) -> list:
    out, stack = [], [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and node.op == "and":
            stack.extend((node.left, node.right))
        else:
            out.append(node)
    return out


def _literal_key(node):
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Str):
        return node.value
    if isinstance(node, ast.Number):
        return (node.text, node.unit)
    if isinstance(node, ast.Bool):
        return node.value
    return None


def _restriction(term, ctx: Context):
    """(column, allowed values) when ``term`` pins one column to literal values."""
    def column(node):
        return node.name if isinstance(node, ast.Name) and ctx.kinds.get(id(node)) == "column" else None

    if column(term):
        return column(term), {True}
    if isinstance(term, ast.Unary) and term.op == "not" and column(term.operand):
        return column(term.operand), {False}
    if isinstance(term, ast.BinOp) and term.op == "=":
        for col, lit in ((term.left, term.right), (term.right, term.left)):
            key = _literal_key(lit)
            if column(col) and key is not None and not (isinstance(lit, ast.Name) and column(lit)):
                return column(col), {key}
    if isinstance(term, ast.InSet) and column(term.operand):
        keys = {_literal_key(v) for v in term.values}
        if None not in keys:
            return column(term.operand), keys
    return None

"""Type the provider-payment conditions (the third provider pass): a pool's ``applies``, an
``adjust … when``, a ``group by … when`` source and a DRG ``split when``, each becomes typed
plan tests (``core.points.plan.Test`` with the column's declared ``Type``).

A condition is a comparison of a claim column with a literal, ``column in {…}`` or a bool
column (``not`` allowed on it), joined by ``and``; ``or`` only in a DRG split (E502 elsewhere,
and for any other shape). An unknown column is E201, a date column E502, a word outside the
column's domain E206, a literal of the wrong kind E210.

``ctx.provider_tests[id(condition)]`` holds the result: a tuple of ``Test`` (a conjunction)
for ``applies``, ``adjust`` and ``group by``, a tuple of such tuples (a disjunction) for a
split, None when the condition was reported. ``check_flags`` types supervision conditions
with the same ``conjunction``.
"""
from __future__ import annotations

from yibao.core.plan import BOOL, DATE, INT, MONEY, RATIO, TEXT
from yibao.core.points import plan as PP

from .. import ast
from ..errors import error, suggest
from ..units import UnitError, number_value
from . import Context

_OPS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SHAPES = ("a condition here is `column op value`, `column in {…}` or a bool column, "
          "joined by 'and'")


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    ctx.provider_tests = {}
    for decl in ctx.provider_decls["groupers"].values():
        for stmt in decl.statements:
            if isinstance(stmt, ast.DrgSplit):
                ctx.provider_tests[id(stmt.cond)] = conjunctions(stmt.cond, ctx, True)
    for decl in ctx.provider_decls["pools"].values():
        for stmt in decl.statements:
            for cond, typed in _pool_conditions(stmt):
                ctx.provider_tests[id(cond)] = typed(cond, ctx)
    return policy


def _applies(cond, ctx: Context):
    """A pool's ``applies``: one conjunction (an ``or`` is reported by ``conjunctions``)."""
    if isinstance(cond, ast.BinOp) and cond.op == "or":
        return conjunctions(cond, ctx, False)
    return conjunction(cond, ctx)


def _pool_conditions(stmt) -> list:
    """(condition, its typing function) of each condition in a pool statement."""
    if isinstance(stmt, ast.Applies):
        return [(stmt.cond, _applies)]
    if isinstance(stmt, ast.Adjust):
        return [(stmt.cond, conjunction)]
    if isinstance(stmt, ast.GroupBy):
        return [(row.cond, conjunction) for row in stmt.sources if row.cond is not None]
    return []


def conjunctions(expr, ctx: Context, allow_or: bool):
    """A condition as a tuple of conjunctions of ``Test``s (or None, reported)."""
    if isinstance(expr, ast.BinOp) and expr.op == "or":
        if not allow_or:
            ctx.report(error("E502", "'or' is not allowed here", expr.span,
                             "a pool or adjustment condition joins comparisons with 'and'; "
                             "declare two pools or adjustments instead"))
            return None
        left, right = conjunctions(expr.left, ctx, True), conjunctions(expr.right, ctx, True)
        return None if left is None or right is None else left + right
    tests = conjunction(expr, ctx)
    return None if tests is None else (tests,)


def conjunction(expr, ctx: Context):
    """A condition joined by ``and`` as a tuple of ``Test``s (or None, reported)."""
    if isinstance(expr, ast.BinOp) and expr.op == "and":
        left, right = conjunction(expr.left, ctx), conjunction(expr.right, ctx)
        return None if left is None or right is None else left + right
    test = _test(expr, ctx)
    return None if test is None else (test,)


def column_type(name: ast.Name, ctx: Context):
    """The declared type of a claim column a provider statement reads, or None (reported:
    unknown E201; a date E502)."""
    t = ctx.columns.get(name.name)
    if t is None:
        ctx.report(error("E201", f"unknown column '{name.name}'", name.span,
                         suggest(name.name, ctx.columns)))
    elif t.kind == DATE:
        ctx.report(error("E502", f"column '{name.name}' is a date; provider conditions compare "
                         "text, numbers, money and flags", name.span))
        return None
    return t


def _test(expr, ctx: Context):
    if isinstance(expr, ast.Name):
        return _flag_test(expr, ctx, True)
    if isinstance(expr, ast.Unary) and expr.op == "not" and isinstance(expr.operand, ast.Name):
        return _flag_test(expr.operand, ctx, False)
    if isinstance(expr, ast.BinOp) and expr.op in _OPS and isinstance(expr.left, ast.Name):
        t = column_type(expr.left, ctx)
        value = None if t is None else claim_value(expr.right, t, ctx)
        return None if value is None else PP.Test(expr.left.name, _OPS[expr.op], value, t)
    if isinstance(expr, ast.InSet) and isinstance(expr.operand, ast.Name):
        t = column_type(expr.operand, ctx)
        values = [None if t is None else claim_value(v, t, ctx) for v in expr.values]
        return None if None in values or t is None else PP.Test(expr.operand.name, "in",
                                                                tuple(values), t)
    ctx.report(error("E502", "this condition cannot be a provider test", expr.span, SHAPES))
    return None


def _flag_test(name: ast.Name, ctx: Context, value: bool):
    """``flag`` (== true) or ``not flag`` (== false) over a bool column."""
    t = column_type(name, ctx)
    if t is not None and t.kind != BOOL:
        ctx.report(error("E502", f"column '{name.name}' is {t.kind}, not a flag", name.span,
                         SHAPES))
        return None
    return None if t is None else PP.Test(name.name, "==", value, t)


def claim_value(node, t, ctx: Context):
    """A literal in the claim's own units: text as text, money fen, ints, bools."""
    if t.kind == TEXT and isinstance(node, (ast.Name, ast.Str)):
        word = node.name if isinstance(node, ast.Name) else node.value
        if t.domain is not None and word not in t.domain:
            ctx.report(error("E206", f"'{word}' is not one of {{{', '.join(t.domain)}}}",
                             node.span))
            return None
        return word
    if t.kind == BOOL and isinstance(node, ast.Bool):
        return node.value
    if t.kind in (MONEY, INT, RATIO) and isinstance(node, ast.Number):
        value = literal_value(node, t.kind, ctx, "condition")
        if value is not None and t.kind == INT and t.domain and value not in t.domain:
            ctx.report(error("E206", f"{value} is not one of "
                             f"{{{', '.join(map(str, t.domain))}}}", node.span))
            return None
        return value
    want = {MONEY: "an amount", INT: "an integer", RATIO: "a ratio", BOOL: "true or false",
            TEXT: "a word or quoted text"}.get(t.kind, f"a {t.kind} value")
    ctx.report(error("E210", f"expected {want}", node.span))
    return None


def literal_value(node, kind, ctx: Context, where):
    """A number literal in engine units of ``kind``, or None (reported with its unit code)."""
    try:
        return number_value(node.text, node.unit, kind)
    except UnitError as exc:
        ctx.report(error(exc.code, f"{where}: {exc.message}", node.span, exc.hint))
        return None

"""Resolve every name: columns (built-in and declared attributes), closed-domain words,
tables, functions, layers and accumulator keys. Unknown names get E201 with the nearest
known name suggested; names defined twice get E202.

Records ``ctx.kinds[id(name)]`` for every expression Name: 'column' or 'word' (a value of some
closed text domain, checked against its place by check_types).
"""
from __future__ import annotations

from yibao.core.plan import INT, TEXT, Type

from .. import ast
from ..errors import error, suggest
from . import BUILTIN_COLUMNS, BUILTIN_FUNCTIONS, Context

LAYER_EXPRS = {
    ast.Applies: ("cond",), ast.Base: ("expr",), ast.Ratio: ("expr",),
    ast.Deductible: ("amount", "continuing"), ast.Cap: ("amount",),
    ast.SelfPayLimit: ("amount",),
}


def layer_expressions(stmt):
    """The expressions of one layer statement (alternatives included)."""
    for attr in LAYER_EXPRS.get(type(stmt), ()):
        value = getattr(stmt, attr)
        if value is not None:
            yield value
    for alt in getattr(stmt, "alts", ()):
        yield alt.amount
        yield alt.cond
    for band_set in getattr(stmt, "sets", ()):
        yield band_set.cond


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    _declare(policy, ctx)
    words = _domain_words(ctx)
    for layer in policy.layers():
        for stmt in layer.statements:
            _resolve_statement(stmt, ctx, words)
    for table in policy.tables():
        for key in table.keys:
            _column(key, ctx, "E306")
    return policy


def _declare(policy: ast.PolicyFile, ctx: Context) -> None:
    seen = {}
    for stmt in policy.statements:
        if isinstance(stmt, ast.AttributeDecl):
            _declare_attribute(stmt, ctx)
        elif isinstance(stmt, ast.DomainDecl):
            _declare_domain(stmt, ctx, seen)
        elif isinstance(stmt, ast.TableDecl):
            _unique(stmt.name, ctx.tables, "table", ctx)
            ctx.tables.setdefault(stmt.name.name, stmt)
        elif isinstance(stmt, ast.LayerDecl):
            if stmt.name.name in ctx.layers:
                ctx.report(error("E202", f"layer '{stmt.name.name}' is defined twice",
                                 stmt.name.span, "give each layer its own name"))
            else:
                ctx.layers.append(stmt.name.name)


def _unique(name: ast.Name, known, what: str, ctx: Context) -> None:
    if name.name in known:
        ctx.report(error("E202", f"{what} '{name.name}' is defined twice", name.span))


def _declare_attribute(stmt: ast.AttributeDecl, ctx: Context) -> None:
    name = stmt.name.name
    if name in ctx.columns:
        what = "a built-in claim column" if name in BUILTIN_COLUMNS else "declared twice"
        ctx.report(error("E202", f"attribute '{name}' is {what}", stmt.name.span))
        return
    spec = stmt.type
    domain = None
    if spec.domain is not None:
        if spec.kind not in (TEXT, INT):
            ctx.report(error("E205", f"a {spec.kind} attribute cannot have a domain", spec.span,
                             "only text and int attributes take `of {…}`"))
        else:
            domain = _domain_values(spec.domain, spec.kind, ctx)
    ctx.columns[name] = Type(spec.kind, domain)


def _declare_domain(stmt: ast.DomainDecl, ctx: Context, seen: dict) -> None:
    name = stmt.name.name
    current = ctx.columns.get(name)
    if name in seen:
        ctx.report(error("E202", f"domain of '{name}' is declared twice", stmt.name.span))
        return
    seen[name] = stmt
    if current is None:
        ctx.report(error("E205", f"domain for unknown column '{name}'", stmt.name.span,
                         suggest(name, ctx.columns) or "declare it with `attribute`"))
    elif current.kind != TEXT or current.domain is not None:
        ctx.report(error("E205", f"column '{name}' is {current}; a domain can only close an "
                         "open text column", stmt.name.span))
    else:
        ctx.columns[name] = Type(TEXT, _domain_values(stmt.values, TEXT, ctx))


def _domain_values(values, kind: str, ctx: Context) -> tuple:
    out = []
    for v in values:
        if kind == INT:
            if not isinstance(v, ast.Number) or v.unit or not v.text.lstrip("-").isdigit():
                ctx.report(error("E210", "an int domain lists integers", v.span))
                continue
            item = int(v.text)
        else:
            if isinstance(v, ast.Number):
                ctx.report(error("E210", "a text domain lists words or quoted texts", v.span))
                continue
            item = v.name if isinstance(v, ast.Name) else v.value
        if item in out:
            ctx.report(error("E202", f"'{item}' is listed twice in the domain", v.span))
        else:
            out.append(item)
    return tuple(out)


def _domain_words(ctx: Context) -> set:
    return {w for t in ctx.columns.values() if t.kind == TEXT and t.domain for w in t.domain}


def _column(name: ast.Name, ctx: Context, code: str = "E201") -> bool:
    if name.name in ctx.columns:
        return True
    ctx.report(error(code, f"unknown column '{name.name}'", name.span,
                     suggest(name.name, ctx.columns)))
    return False


def _resolve_statement(stmt, ctx: Context, words: set) -> None:
    for expr in layer_expressions(stmt):
        for node in ast.walk(expr):
            _resolve_node(node, ctx, words)
    scope = getattr(stmt, "scope", None)
    if isinstance(stmt, ast.Bands):
        _key(stmt.key, ctx)
    elif scope is not None and scope.key is not None:
        _key(scope.key, ctx)
        for column in scope.by:
            _scope_column(column, ctx)
    if isinstance(stmt, ast.RatioBy):
        _column(stmt.column, ctx)


def _scope_column(name: ast.Name, ctx: Context) -> None:
    """A column refining an accumulator key (per person and mtb_disease): a known column
    whose values name groups (text, int, bool or date), not an amount."""
    if not _column(name, ctx, "E201"):
        return
    kind = ctx.columns[name.name].kind
    if kind in ("money", "ratio"):
        ctx.report(error("E414", f"an accumulator cannot be kept per {kind} column "
                         f"'{name.name}'", name.span,
                         "refine a key by a column that names groups: text, int, bool or "
                         "date (per person and mtb_disease per year)"))


def _key(name: ast.Name, ctx: Context) -> None:
    if name.name not in ctx.registry.keys:
        ctx.report(error("E204", f"unknown accumulator key '{name.name}'", name.span,
                         suggest(name.name, ctx.registry.keys)
                         or f"known keys: {', '.join(sorted(ctx.registry.keys))}"
                         + ("; `family` comes from the family plugin" if name.name == "family"
                            else "")))


def _resolve_node(node, ctx: Context, words: set) -> None:
    if isinstance(node, ast.Name):
        if id(node) in ctx.kinds:
            return
        if node.name in ctx.columns:
            ctx.kinds[id(node)] = "column"
        elif node.name in words:
            ctx.kinds[id(node)] = "word"
        else:
            ctx.report(error("E201", f"unknown name '{node.name}'", node.span,
                             suggest(node.name, [*ctx.columns, *words])))
    elif isinstance(node, ast.Lookup):
        ctx.kinds[id(node.table)] = "table"
        if node.table.name not in ctx.tables:
            ctx.report(error("E201", f"unknown table '{node.table.name}'", node.table.span,
                             suggest(node.table.name, ctx.tables)))
    elif isinstance(node, ast.Call):
        ctx.kinds[id(node.func)] = "function"
        fname = node.func.name
        if fname not in BUILTIN_FUNCTIONS and fname not in ctx.registry.functions:
            known = [*BUILTIN_FUNCTIONS, *ctx.registry.functions]
            ctx.report(error("E203", f"unknown function '{fname}'", node.func.span,
                             suggest(fname, known) or "functions: " + ", ".join(sorted(known))))
    elif isinstance(node, ast.Paid):
        for layer in node.layers:
            ctx.kinds[id(layer)] = "layer"
            if layer.name not in ctx.layers:
                ctx.report(error("E201", f"unknown layer '{layer.name}'", layer.span,
                                 suggest(layer.name, ctx.layers)))

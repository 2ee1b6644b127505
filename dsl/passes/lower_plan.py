"""AST (checked) -> ``yibao.core.plan.Plan``. Runs only when no pass reported an error.

Every literal becomes engine units (see plan.py): money fen, ratio millionths, dates days since
1970-01-01, closed-domain text the index of the word in its domain. ``A, B when C`` becomes
``Cond(C, B, A)`` (later clauses wrap earlier ones, so they win); ``ratio by COL {…}`` becomes
the table ``<layer>.ratio`` and a Lookup; a shared-cap reference copies the declared cap.
"""
from __future__ import annotations

import hashlib

from yibao.core import plan as P
from yibao.core.plan import BOOL, DATE, MONEY, RATIO, TEXT, Type

from .. import ast
from ..units import date_days, number_value
from . import ALWAYS_READ, Context

T_BOOL = Type(BOOL)


def run(policy: ast.PolicyFile, ctx: Context) -> P.Plan:
    """Returns the Plan (the last pass turns the AST into the IR)."""
    return _Lowerer(ctx).policy(policy)


def _has_paid(e) -> bool:
    return any(isinstance(x, P.Paid) for x in P.walk(e))


def paid_last(base: P.Expr) -> P.Expr:
    """The base as a left-to-right sum with its paid() terms last: ``in_scope - paid(a) +
    total`` becomes ``in_scope + total - paid(a)``. Exact integers make the two equal; the
    order fixes which partial sums are checked against int64, so the reference evaluator
    (every node of the tree) and the kernel (claim part first, then each paid() term in
    order) check the same values (docs/reliability.md). check_layers guarantees paid() only
    appears added or subtracted at the top of a base."""
    if not _has_paid(base):
        return base
    terms = []

    def flatten(e, sign):
        if isinstance(e, P.Binary) and e.op in ("+", "-") and _has_paid(e):
            flatten(e.left, sign)
            flatten(e.right, sign if e.op == "+" else -sign)
        else:
            terms.append((sign, e))

    flatten(base, 1)
    ordered = ([t for t in terms if not isinstance(t[1], P.Paid)]
               + [t for t in terms if isinstance(t[1], P.Paid)])
    sign, out = ordered[0]
    if sign < 0:
        out = P.Binary(base.type, "-", P.Const(base.type, 0), out)
    for sign, term in ordered[1:]:
        out = P.Binary(base.type, "+" if sign > 0 else "-", out, term)
    return out


class _Lowerer:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.caps = {}  # shared cap name -> plan.Cap

    def source(self, node) -> str:
        return f"{node.span.file}:{node.span.line}"

    def policy(self, policy: ast.PolicyFile) -> P.Plan:
        header = policy.header()
        tables = [self.table(t) for t in policy.tables()]
        layers = []
        for layer in policy.layers():
            extra, lowered = self.layer(layer)
            tables.extend(extra)
            layers.append(lowered)
        start, end = header.effective
        month, day = (int(x) for x in (header.year_start or "01-01").split("-"))
        return P.Plan(
            name=header.name, region=header.region or "",
            effective_from=date_days(start.value), effective_to=date_days(end.value),
            columns=self.columns(layers), tables=tuple(tables), layers=tuple(layers),
            year_start=(month, day), groupers=tuple(self.ctx.provider.get("groupers", ())),
            provider=self.provider(), supervision=self.supervision(),
            meta=(("policy_file", self.ctx.filename),
                  ("sha256", hashlib.sha256(self.ctx.source.encode("utf-8")).hexdigest())))

    def provider(self):
        """The pools checked by check_pools, or None when the policy declares none."""
        from yibao.core.points.plan import PointsPlan
        pools = self.ctx.provider.get("pools", ())
        alliances = tuple(self.ctx.provider.get("alliances", ()))
        return PointsPlan(tuple(pools), alliances=alliances) if pools else None

    def supervision(self):
        """The flags checked by check_flags, or None when the policy declares none."""
        from yibao.core.supervision.plan import Supervision
        return Supervision(tuple(self.ctx.flags)) if self.ctx.flags else None

    def columns(self, layers) -> tuple:
        read = set(ALWAYS_READ)
        for layer in layers:
            for expr in P.layer_exprs(layer):
                read.update(n.name for n in P.walk(expr) if isinstance(n, P.Column))
            for part in (layer.deductible, layer.ratio, layer.limit, *layer.caps):
                key = getattr(part, "key", None)
                if isinstance(key, P.Key):
                    read.update((key.column, *key.by))
        return tuple(P.ColumnDecl(name, t) for name, t in self.ctx.columns.items() if name in read)

    def table(self, t: ast.TableDecl) -> P.Table:
        name = t.name.name
        key_types = tuple(self.ctx.columns[k.name] for k in t.keys)
        return P.Table(name, key_types, Type(t.value_type.kind), self.rows(name), self.source(t))

    def rows(self, name: str) -> tuple:
        return tuple((keys, value) for keys, value, _ in self.ctx.table_rows[name])

    # -- layers --
    def layer(self, layer: ast.LayerDecl):
        name = layer.name.name
        parts = {"applies": P.Const(T_BOOL, True), "deductible": None, "ratio": None,
                 "limit": None, "caps": []}
        tables = []
        for stmt in layer.statements:
            if isinstance(stmt, ast.Applies):
                parts["applies"] = self.expr(stmt.cond)
            elif isinstance(stmt, ast.Base):
                parts["base"] = paid_last(self.expr(stmt.expr))
            elif isinstance(stmt, ast.Deductible):
                parts["deductible"] = self.deductible(stmt)
            elif isinstance(stmt, ast.Ratio):
                parts["ratio"] = self.expr(stmt.expr)
            elif isinstance(stmt, ast.RatioBy):
                table = self.ratio_table(name, stmt)
                tables.append(table)
                column = P.Column(self.ctx.columns[stmt.column.name], stmt.column.name)
                parts["ratio"] = P.Lookup(Type(RATIO), table.name, (column,))
            elif isinstance(stmt, ast.Bands):
                parts["ratio"] = self.bands(stmt)
            elif isinstance(stmt, ast.Cap):
                parts["caps"].append(self.cap(stmt))
            elif isinstance(stmt, ast.CapRef):
                parts["caps"].append(self.caps[stmt.name.name])
            elif isinstance(stmt, ast.SelfPayLimit):
                parts["limit"] = P.SelfPayLimit(self.amount(stmt), self.scoped_key(stmt.scope))
            elif isinstance(stmt, ast.National):
                parts["national"] = stmt.field.name
        parts["caps"] = tuple(parts["caps"])
        return tables, P.Layer(name=name, label=layer.label or "", source=self.source(layer),
                               **parts)

    def ratio_table(self, layer: str, stmt: ast.RatioBy) -> P.Table:
        name = f"{layer}.ratio"
        return P.Table(name, (self.ctx.columns[stmt.column.name],), Type(RATIO), self.rows(name),
                       self.source(stmt))

    def key(self, name) -> P.Key:
        if name is None or name.name == "person":
            return P.PERSON
        return P.Key(name.name, self.ctx.key_column(name.name))

    def scoped_key(self, scope) -> P.Key:
        """The key of a ``per KEY [and COLUMN …] per year|month`` scope."""
        by = tuple(name.name for name in scope.by)
        return self.key(scope.key).refine(by, P.MONTH if scope.period == "month" else P.YEAR)

    def amount(self, stmt) -> P.Expr:
        """The amount with its `, B when C` alternatives: later clauses win."""
        out = self.expr(stmt.amount)
        for alt in stmt.alts:
            out = P.Cond(out.type, self.expr(alt.cond), self.expr(alt.amount), out)
        return out

    def deductible(self, stmt: ast.Deductible) -> P.Deductible:
        per_year = stmt.scope is not None and stmt.scope.key is not None
        continuing = None if stmt.continuing is None else self.expr(stmt.continuing)
        if per_year:
            return P.Deductible(self.amount(stmt), P.PER_YEAR, self.scoped_key(stmt.scope))
        return P.Deductible(self.amount(stmt), P.PER_CLAIM, P.PERSON, continuing)

    def bands(self, stmt: ast.Bands) -> P.Bands:
        alts = tuple(P.BandSet(self.expr(s.cond), self.band_rows(s.bands)) for s in stmt.sets)
        return P.Bands(self.band_rows(stmt.bands), self.key(stmt.key), alts)

    @staticmethod
    def band_rows(rows) -> tuple:
        return tuple(P.Band(number_value(b.lo.text, b.lo.unit, MONEY),
                            None if b.hi is None else number_value(b.hi.text, b.hi.unit, MONEY),
                            number_value(b.rate.text, b.rate.unit, RATIO)) for b in rows)

    def cap(self, stmt: ast.Cap) -> P.Cap:
        per_year = stmt.scope.key is not None
        cap = P.Cap(self.amount(stmt), P.PER_YEAR if per_year else P.PER_CLAIM,
                    self.scoped_key(stmt.scope) if per_year else P.PERSON,
                    stmt.name.name if stmt.name else None)
        if stmt.name is not None:
            self.caps.setdefault(stmt.name.name, cap)
        return cap

    # -- expressions --
    def expr(self, node) -> P.Expr:
        return getattr(self, "e_" + type(node).__name__)(node)

    def type_of(self, node) -> Type:
        return self.ctx.types[id(node)]

    def e_Number(self, node):
        t = self.type_of(node)
        return P.Const(t, number_value(node.text, node.unit, t.kind))

    def e_Str(self, node):
        return self.word(node, node.value)

    def e_Name(self, node):
        if self.ctx.kinds.get(id(node)) == "column":
            return P.Column(self.ctx.columns[node.name], node.name)
        return self.word(node, node.name)

    def word(self, node, text: str):
        t = self.type_of(node)
        return P.Const(t, t.domain.index(text) if t.domain else text)

    def e_Bool(self, node):
        return P.Const(T_BOOL, node.value)

    def e_Date(self, node):
        return P.Const(Type(DATE), date_days(node.value))

    def e_Lookup(self, node):
        table = self.ctx.tables[node.table.name]
        return P.Lookup(Type(table.value_type.kind), node.table.name,
                        tuple(map(self.expr, node.args)))

    def e_Call(self, node):
        args = tuple(map(self.expr, node.args))
        if node.func.name in ("min", "max"):
            return P.Binary(self.type_of(node), node.func.name, *args)
        decl = self.ctx.registry.functions[node.func.name]
        return P.Call(decl.result, node.func.name, args)

    def e_Paid(self, node):
        return P.Paid(Type(MONEY), tuple(n.name for n in node.layers))

    def e_Unary(self, node):
        operand = self.expr(node.operand)
        if node.op == "not":
            return P.Not(T_BOOL, operand)
        if isinstance(operand, P.Const):
            return P.Const(operand.type, -operand.value)
        return P.Binary(operand.type, "-", P.Const(operand.type, 0), operand)

    def e_BinOp(self, node):
        left, right = self.expr(node.left), self.expr(node.right)
        op = "==" if node.op == "=" else node.op
        t = T_BOOL if op in ("==", "!=", "<", "<=", ">", ">=", "and", "or") else self.type_of(node)
        return P.Binary(Type(t.kind) if t.kind != TEXT else t, op, left, right)

    def e_InSet(self, node):
        values = tuple(self.expr(v).value for v in node.values)
        return P.InSet(T_BOOL, self.expr(node.operand), values)

    def e_IfElse(self, node):
        return P.Cond(self.type_of(node), self.expr(node.test), self.expr(node.then),
                      self.expr(node.orelse))



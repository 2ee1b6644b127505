"""Type-check every layer expression and record ``ctx.types[id(node)]``.

Types are plan ``Type``s (money, ratio, int, bool, text [of domain], date) plus two flexible
ones that take the type their place needs: ``NUM`` (a bare number: money in yuan, a ratio or
an int) and ``WORD`` (a bare word or quoted text: a value of the text column it meets).
Rules: ``+ - min max`` need equal kinds; ``money * ratio`` and ``money * int`` are money,
``int * int`` is int, ``ratio * ratio`` is E211; comparisons need equal kinds (text of the same
domain); ``and or not`` and conditions are bool. A number is then checked exact in its unit
(E212 ratio, E213 money).
"""
from __future__ import annotations

from yibao.core.plan import BOOL, DATE, INT, MONEY, RATIO, TEXT, Type

from .. import ast
from ..errors import error
from ..units import UnitError, number_value
from . import Context
from .resolve_names import layer_expressions

NUM, WORD = "a number", "a word"
NUMERIC = (MONEY, RATIO, INT)
T_BOOL, T_MONEY, T_RATIO = Type(BOOL), Type(MONEY), Type(RATIO)


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    checker = _Checker(ctx)
    for layer in policy.layers():
        for stmt in layer.statements:
            checker.statement(stmt)
    return policy


def show(t) -> str:
    if t in (NUM, WORD):
        return t
    return str(t) if t.domain and t.kind == TEXT else t.kind


class _Checker:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def statement(self, stmt) -> None:
        expected = {ast.Applies: T_BOOL, ast.Base: T_MONEY, ast.Ratio: T_RATIO}
        if type(stmt) in expected:
            self.expect(next(layer_expressions(stmt)), expected[type(stmt)])
        elif isinstance(stmt, (ast.Deductible, ast.Cap, ast.SelfPayLimit)):
            self.expect(stmt.amount, T_MONEY)
            for alt in stmt.alts:
                self.expect(alt.amount, T_MONEY)
                self.expect(alt.cond, T_BOOL)
            if getattr(stmt, "continuing", None) is not None:
                self.expect(stmt.continuing, T_BOOL)
        elif isinstance(stmt, ast.Bands):
            for band in (*stmt.bands, *(b for s in stmt.sets for b in s.bands)):
                for bound in (band.lo, band.hi):
                    if bound is not None:
                        self.expect(bound, T_MONEY)
                self.expect(band.rate, T_RATIO)
            for band_set in stmt.sets:
                self.expect(band_set.cond, T_BOOL)

    # -- entry points --
    def expect(self, node, want: Type) -> None:
        got = self.infer(node)
        if got is None:
            return
        if got in (NUM, WORD):
            self.settle(node, want)
        elif got.kind != want.kind:
            self.mismatch(node, f"expected {show(want)}, found {show(got)}")

    def mismatch(self, node, message, code="E210", hint=None) -> None:
        self.ctx.report(error(code, message, node.span, hint))

    def record(self, node, t):
        self.ctx.types[id(node)] = t
        return t

    # -- settling flexible literals --
    def settle(self, node, t: Type) -> None:
        """Give the flexible literals under ``node`` the type ``t`` (checking units)."""
        if isinstance(node, ast.Number):
            if t.kind not in NUMERIC:
                return self.mismatch(node, f"expected {show(t)}, found a number")
            self.record(node, t)
            try:
                value = number_value(node.text, node.unit, t.kind)
            except UnitError as exc:
                return self.mismatch(node, exc.message, exc.code, exc.hint)
            if t.kind == INT and t.domain is not None and value not in t.domain:
                self.mismatch(node, f"{value} is not one of {{{', '.join(map(str, t.domain))}}}",
                              "E206")
        elif isinstance(node, (ast.Name, ast.Str)):
            self.settle_word(node, t)
        elif isinstance(node, ast.Unary) or (isinstance(node, ast.Call)
                                            and node.func.name in ("min", "max")):
            self.record(node, t)
            for child in ast.children(node):
                self.settle(child, t)
        elif isinstance(node, ast.BinOp):
            self.record(node, Type(t.kind))
            self.settle(node.left, Type(t.kind))
            self.settle(node.right, Type(t.kind) if node.op != "*" or t.kind != MONEY
                        else T_RATIO)
        elif isinstance(node, ast.IfElse):
            self.record(node, t)
            self.settle(node.then, t)
            self.settle(node.orelse, t)

    def settle_word(self, node, t: Type) -> None:
        word = node.name if isinstance(node, ast.Name) else node.value
        if t.kind != TEXT:
            return self.mismatch(node, f"expected {show(t)}, found the word '{word}'")
        if t.domain is not None and word not in t.domain:
            return self.mismatch(node, f"'{word}' is not one of {{{', '.join(t.domain)}}}",
                                 "E206")
        self.record(node, t)

    # -- inference --
    def infer(self, node):
        handler = getattr(self, "i_" + type(node).__name__)
        return self.record(node, handler(node))

    def i_Number(self, node):
        t = {"yuan": T_MONEY, "fen": T_MONEY, "%": T_RATIO}.get(node.unit, NUM)
        if t != NUM:
            try:
                number_value(node.text, node.unit, t.kind)
            except UnitError as exc:
                self.mismatch(node, exc.message, exc.code, exc.hint)
                return None
        return t

    def i_Str(self, node):
        return WORD

    def i_Bool(self, node):
        return T_BOOL

    def i_Date(self, node):
        return Type(DATE)

    def i_Name(self, node):
        kind = self.ctx.kinds.get(id(node))
        if kind == "column":
            return self.ctx.columns[node.name]
        return WORD if kind == "word" else None

    def i_Paid(self, node):
        return T_MONEY

    def i_Lookup(self, node):
        table = self.ctx.tables.get(node.table.name)
        if table is None:
            return None
        if len(node.args) != len(table.keys):
            self.mismatch(node, f"table '{table.name.name}' takes {len(table.keys)} key(s), "
                          f"got {len(node.args)}", "E203",
                          f"keys: {', '.join(k.name for k in table.keys)}")
        for arg, key in zip(node.args, table.keys):
            if key.name in self.ctx.columns:
                self.expect_same(arg, self.ctx.columns[key.name])
        return Type(table.value_type.kind)

    def i_Call(self, node):
        name = node.func.name
        if name in ("min", "max"):
            if len(node.args) != 2:
                self.mismatch(node, f"{name}() takes 2 arguments, got {len(node.args)}", "E203")
                return None
            return self.unify(node, *node.args, numeric=True)
        decl = self.ctx.registry.functions.get(name)
        if decl is None:
            return None
        if len(node.args) != len(decl.params):
            self.mismatch(node, f"{name}() takes {len(decl.params)} argument(s), got "
                          f"{len(node.args)}", "E203", decl.doc)
            return decl.result
        for arg, param in zip(node.args, decl.params):
            self.expect_same(arg, param)
        return decl.result

    def expect_same(self, node, want: Type) -> None:
        """Like expect, and text must also have the same domain."""
        got = self.infer(node)
        if got is None:
            return
        if got in (NUM, WORD):
            return self.settle(node, want)
        if got.kind != want.kind or (got.kind == TEXT and got.domain != want.domain):
            self.mismatch(node, f"expected {show(want)}, found {show(got)}")

    def i_Unary(self, node):
        if node.op == "not":
            self.expect(node.operand, T_BOOL)
            return T_BOOL
        t = self.infer(node.operand)
        if t not in (None, NUM) and t.kind not in NUMERIC:
            self.mismatch(node.operand, f"cannot negate {show(t)}")
            return None
        return t if t in (None, NUM) else Type(t.kind)

    def i_IfElse(self, node):
        self.expect(node.test, T_BOOL)
        return self.unify(node, node.then, node.orelse)

    def i_InSet(self, node):
        t = self.infer(node.operand)
        if t in (NUM, WORD):
            self.mismatch(node.operand, "the left of `in` must be a column or expression")
        elif t is not None:
            for value in node.values:
                self.expect_same(value, t)
        return T_BOOL

    def i_BinOp(self, node):
        op = node.op
        if op in ("and", "or"):
            self.expect(node.left, T_BOOL)
            self.expect(node.right, T_BOOL)
            return T_BOOL
        if op in ("=", "!="):
            self.unify(node, node.left, node.right)
            return T_BOOL
        if op in ("<", "<=", ">", ">="):
            t = self.unify(node, node.left, node.right)
            if t not in (None, NUM) and t.kind not in (*NUMERIC, DATE):
                self.mismatch(node, f"cannot order {show(t)} values with '{op}'")
            return T_BOOL
        if op == "*":
            return self.multiply(node)
        return self.unify(node, node.left, node.right, numeric=True)

    def multiply(self, node):
        lt, rt = self.infer(node.left), self.infer(node.right)
        if lt is None or rt is None:
            return None
        for side, t in ((node.left, lt), (node.right, rt)):
            if t == WORD or (t != NUM and t.kind not in NUMERIC):
                self.mismatch(side, f"cannot multiply {show(t)}")
                return None
        kinds = {lt if lt == NUM else lt.kind, rt if rt == NUM else rt.kind}
        if kinds == {NUM}:
            return NUM
        if kinds == {RATIO}:
            self.mismatch(node, "a ratio multiplied by a ratio", "E211",
                          "apply ratios to money one at a time: (amount * r1) * r2")
            return T_RATIO
        if kinds == {MONEY}:
            self.mismatch(node, "money multiplied by money")
            return T_MONEY
        if MONEY in kinds:
            other = node.right if lt != NUM and lt.kind == MONEY else node.left
            if self.ctx.types.get(id(other)) == NUM:
                self.settle(other, T_RATIO)
            return T_MONEY
        if kinds == {INT} or kinds == {INT, NUM}:
            for side, t in ((node.left, lt), (node.right, rt)):
                if t == NUM:
                    self.settle(side, Type(INT))
            return Type(INT)
        if RATIO in kinds and NUM in kinds:  # ratio * bare number: the number is money
            other = node.left if lt == NUM else node.right
            self.settle(other, T_MONEY)
            return T_MONEY
        self.mismatch(node, f"cannot multiply {show(lt)} by {show(rt)}")
        return None

    def unify(self, node, left, right, numeric=False):
        lt, rt = self.infer(left), self.infer(right)
        if lt is None or rt is None:
            return None
        if lt in (NUM, WORD) and rt in (NUM, WORD):
            if lt != rt:
                self.mismatch(node, f"cannot combine {show(lt)} and {show(rt)}")
                return None
            if lt == WORD:
                self.mismatch(node, "two words compared; one side must be a column")
                return None
            return NUM
        if lt in (NUM, WORD):
            self.settle(left, rt)
            t = rt
        elif rt in (NUM, WORD):
            self.settle(right, lt)
            t = lt
        else:
            if lt.kind != rt.kind or (lt.kind == TEXT and lt.domain != rt.domain):
                self.mismatch(node, f"cannot combine {show(lt)} and {show(rt)}")
                return None
            t = lt
        if numeric and t.kind not in NUMERIC:
            self.mismatch(node, f"arithmetic on {show(t)}")
            return None
        return t if not numeric else Type(t.kind)

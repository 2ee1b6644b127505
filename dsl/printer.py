"""The canonical layout of a policy (``yibao fmt``).

``format_policy(ast)`` prints two-space indented blocks, one blank line between top-level
statements, numbers with ``_`` every three digits, tables with keys grouped by their first key
on one line, and only the parentheses the precedence needs. Comments are kept: a comment on
its own line is printed before the statement that follows it, a trailing comment at the end of
its statement's first line. Printing is idempotent, and parse → print → parse gives the same
plan (tests/dsl/test_printer.py).
"""
from __future__ import annotations

from . import ast

# binding strength, loosest first
PRECEDENCE = {"if": 1, "or": 2, "and": 3, "not": 4, "=": 5, "!=": 5, "<": 5, "<=": 5, ">": 5,
              ">=": 5, "in": 5, "+": 6, "-": 6, "*": 7, "neg": 8}
ATOM = 9


def format_number(node: ast.Number) -> str:
    text = node.text
    sign = "-" if text.startswith("-") else ""
    whole, dot, frac = text.lstrip("-").partition(".")
    groups = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    body = "_".join([whole, *groups]) + (dot + frac)
    unit = {"%": "%", "yuan": " yuan", "fen": " fen", None: ""}[node.unit]
    return sign + body + unit


def _prec(node) -> int:
    if isinstance(node, ast.IfElse):
        return PRECEDENCE["if"]
    if isinstance(node, ast.BinOp):
        return PRECEDENCE[node.op]
    if isinstance(node, ast.InSet):
        return PRECEDENCE["in"]
    if isinstance(node, ast.Unary):
        return PRECEDENCE["not" if node.op == "not" else "neg"]
    if isinstance(node, ast.Number) and node.text.startswith("-"):
        return PRECEDENCE["neg"]
    return ATOM


def format_expr(node) -> str:
    """An expression with the fewest parentheses that keep its tree (iterative for depth)."""
    return _Expr().run(node)


class _Expr:
    def run(self, node) -> str:
        return self.fmt(node)

    def wrap(self, node, at_least: int) -> str:
        text = self.fmt(node)
        return f"({text})" if _prec(node) < at_least else text

    def fmt(self, node) -> str:
        if isinstance(node, ast.Number):
            return format_number(node)
        if isinstance(node, ast.Str):
            return f'"{node.value}"'
        if isinstance(node, ast.Bool):
            return "true" if node.value else "false"
        if isinstance(node, ast.Date):
            return node.value
        if isinstance(node, ast.Name):
            return node.name
        if isinstance(node, ast.Lookup):
            return f"{node.table.name}[{', '.join(map(self.fmt, node.args))}]"
        if isinstance(node, ast.Call):
            return f"{node.func.name}({', '.join(map(self.fmt, node.args))})"
        if isinstance(node, ast.Paid):
            return "paid" + (f"({', '.join(n.name for n in node.layers)})" if node.layers else "")
        if isinstance(node, ast.Unary):
            if node.op == "not":
                return "not " + self.wrap(node.operand, PRECEDENCE["not"])
            return "-" + self.wrap(node.operand, PRECEDENCE["neg"])
        if isinstance(node, ast.BinOp):
            p = PRECEDENCE[node.op]
            left_min, right_min = (p, p + 1) if p != 5 else (p + 1, p + 1)
            return f"{self.wrap(node.left, left_min)} {node.op} {self.wrap(node.right, right_min)}"
        if isinstance(node, ast.InSet):
            values = ", ".join(map(self.fmt, node.values))
            return f"{self.wrap(node.operand, PRECEDENCE['+'])} in {{{values}}}"
        if isinstance(node, ast.IfElse):
            return (f"if {self.fmt(node.test)} then {self.fmt(node.then)} "
                    f"else {self.wrap(node.orelse, PRECEDENCE['or'])}")
        raise TypeError(f"cannot print {type(node).__name__}")


def format_scope(scope) -> str:
    if scope is None:
        return ""
    if scope.key is None:
        return " per claim"
    names = " and ".join(n.name for n in (scope.key, *scope.by))
    return f" per {names} per {scope.period}"


def format_tail(stmt) -> str:
    """Scope, `, X when C` alternatives and `continuing when` of an amount statement."""
    text = "" if getattr(stmt, "prefix", False) else format_scope(stmt.scope)
    for alt in stmt.alts:
        text += f", {format_expr(alt.amount)} when {format_expr(alt.cond)}"
    if getattr(stmt, "continuing", None) is not None:
        text += f" continuing when {format_expr(stmt.continuing)}"
    return text


def format_literal(node) -> str:
    return format_expr(node)


def _row(row: ast.Row) -> str:
    return f"{', '.join(map(format_literal, row.keys))}: {format_literal(row.value)}"


class _Printer:
    def __init__(self, comments):
        self.comments = sorted(comments, key=lambda c: (c.span.line, c.span.col))
        self.lines = []

    # -- comments --
    def leading(self, before_line: int, indent: str) -> None:
        """Own-line comments above ``before_line``; trailing ones there become own-line too."""
        while self.comments and self.comments[0].span.line < before_line:
            self.lines.append(indent + self.comments.pop(0).text)

    def trailing(self, line: int) -> str:
        found = []
        while self.comments and self.comments[0].span.line == line:
            found.append(self.comments.pop(0).text)
        return ("  " + " ".join(found)) if found else ""

    def emit(self, indent: str, text: str, node) -> None:
        self.leading(node.span.line, indent)
        self.lines.append(indent + text + self.trailing(node.span.line))

    def close(self, indent: str, node) -> None:
        self.leading(node.span.end_line, indent + "  ")
        self.lines.append(indent + "}" + self.trailing(node.span.end_line))

    # -- statements --
    def policy(self, policy: ast.PolicyFile) -> str:
        prev = None
        for stmt in policy.statements:
            if prev is not None and not (isinstance(stmt, ast.AttributeDecl)
                                         and isinstance(prev, ast.AttributeDecl)):
                self.lines.append("")
            getattr(self, "s_" + type(stmt).__name__)(stmt)
            prev = stmt
        self.leading(10**9, "")
        return "\n".join(self.lines).strip("\n") + "\n"

    def s_Header(self, h: ast.Header) -> None:
        self.emit("", f'policy "{h.name}" {{', h)
        if h.region is not None:
            self.lines.append(f'  region "{h.region}"')
        if h.effective is not None:
            self.lines.append(f"  effective {h.effective[0].value} to {h.effective[1].value}")
        if h.year_start is not None:
            self.lines.append(f"  year starts {h.year_start}")
        self.close("", h)

    def s_AdjustmentDecl(self, a: ast.AdjustmentDecl) -> None:
        self.emit("", f"adjust by {a.adjustment.name} {{", a)
        for param in a.params:
            value = (f'from "{param.value.value}"' if param.csv
                     else format_literal(param.value))
            self.emit("  ", f"{param.name.name} {value}", param)
        self.close("", a)

    def s_PluginUse(self, p: ast.PluginUse) -> None:
        self.emit("", f'plugin "{p.distribution.value}" "{p.versions.value}"', p)

    def s_DomainDecl(self, d: ast.DomainDecl) -> None:
        self.emit("", f"domain {d.name.name} {{ {', '.join(map(format_literal, d.values))} }}", d)

    def s_AttributeDecl(self, a: ast.AttributeDecl) -> None:
        t = a.type.kind
        if a.type.domain is not None:
            t += f" of {{{', '.join(map(format_literal, a.type.domain))}}}"
        self.emit("", f"attribute {a.name.name}: {t}", a)

    def s_TableDecl(self, t: ast.TableDecl) -> None:
        head = f"table {t.name.name} ({', '.join(k.name for k in t.keys)}) -> {t.value_type.kind}"
        if t.csv is not None:
            return self.emit("", f'{head} from "{t.csv.value}"', t)
        self.emit("", head + " {", t)
        self.rows("  ", t.rows, len(t.keys) > 1)
        self.close("", t)

    def rows(self, indent: str, rows, grouped: bool) -> None:
        groups = {}
        for row in rows:
            first = format_literal(row.keys[0]) if grouped and row.keys else id(row)
            groups.setdefault(first, []).append(row)
        for group in groups.values():
            text = "    ".join(_row(r) for r in group)
            self.leading(group[0].span.line, indent)
            tails = "".join(self.trailing(r.span.line) for r in group)
            self.lines.append(indent + text + tails)

    def s_LayerDecl(self, layer: ast.LayerDecl) -> None:
        label = f' "{layer.label}"' if layer.label is not None else ""
        self.emit("", f"layer {layer.name.name}{label} {{", layer)
        for stmt in layer.statements:
            getattr(self, "l_" + type(stmt).__name__)(stmt)
        self.close("", layer)

    def l_Applies(self, s):
        self.emit("  ", f"applies when {format_expr(s.cond)}", s)

    def l_Base(self, s):
        self.emit("  ", f"base {format_expr(s.expr)}", s)

    def l_Deductible(self, s):
        prefix = "per claim " if s.prefix else ""
        self.emit("  ", f"deductible {prefix}{format_expr(s.amount)}{format_tail(s)}", s)

    def l_Ratio(self, s):
        self.emit("  ", f"ratio {format_expr(s.expr)}", s)

    def l_RatioBy(self, s):
        rows = ", ".join(_row(r) for r in s.rows)
        self.emit("  ", f"ratio by {s.column.name} {{ {rows} }}", s)

    def l_Bands(self, s):
        self.emit("  ", f"bands per {s.key.name} per year {{", s)
        self._band_rows(s.bands, "    ")
        for band_set in s.sets:
            self.emit("    ", f"when {format_expr(band_set.cond)} {{", band_set)
            self._band_rows(band_set.bands, "      ")
            self.close("    ", band_set)
        self.close("  ", s)

    def _band_rows(self, bands, indent: str) -> None:
        for band in bands:
            bound = (f"{format_number(band.lo)} to {format_number(band.hi)}" if band.hi is not None
                     else f"{format_number(band.lo)} and above")
            self.emit(indent, f"{bound}: {format_number(band.rate)}", band)

    def l_Cap(self, s):
        name = f"{s.name.name}: " if s.name is not None else ""
        self.emit("  ", f"cap {name}{format_expr(s.amount)}{format_tail(s)}", s)

    def l_CapRef(self, s):
        self.emit("  ", f"cap {s.name.name}", s)

    def l_SelfPayLimit(self, s):
        self.emit("  ", f"self_pay_limit {format_expr(s.amount)}{format_tail(s)}", s)

    def l_National(self, s):
        self.emit("  ", f"national {s.field.name}", s)


def _pct_or_num(node) -> str:
    return format_number(node)


class _ProviderPrinter:
    """``grouper`` and ``pool`` blocks (mixed into _Printer)."""

    def s_GrouperDecl(self, g: ast.GrouperDecl) -> None:
        label = f' "{g.label}"' if g.label is not None else ""
        if g.csv is not None:
            default = f' default "{g.default.value}"' if g.default is not None else ""
            return self.emit("", f'grouper {g.name.name}{label} from "{g.csv.value}"{default}', g)
        self.emit("", f"grouper {g.name.name}{label} {{", g)
        for stmt in g.statements:
            if isinstance(stmt, ast.DrgTables):
                self.emit("  ", f"tables {stmt.name.name}", stmt)
            elif isinstance(stmt, ast.GrouperBy):
                self.emit("  ", f"by {stmt.name.name}", stmt)
            elif isinstance(stmt, ast.MdcOrder):
                self.emit("  ", f"mdc order {', '.join(n.name for n in stmt.names)}", stmt)
            else:
                self.emit("  ", f'split suffix "{stmt.suffix.value}" when '
                                f'{format_expr(stmt.cond)}', stmt)
        self.close("", g)

    def s_AllianceDecl(self, a: ast.AllianceDecl) -> None:
        label = f' "{a.label}"' if a.label is not None else ""
        self.emit("", f"alliance {a.name.name}{label} {{", a)
        for stmt in a.statements:
            self.emit("  ", _alliance_statement(stmt), stmt)
        self.close("", a)

    def s_PoolDecl(self, p: ast.PoolDecl) -> None:
        label = f' "{p.label}"' if p.label is not None else ""
        self.emit("", f"pool {p.name.name}{label} {{", p)
        for stmt in p.statements:
            if isinstance(stmt, ast.DayTiers):
                self.emit("  ", "day tiers {", stmt)
                for band in stmt.bands:
                    bound = (f"{format_number(band.lo)} to {format_number(band.hi)}"
                             if band.hi is not None else f"{format_number(band.lo)} and above")
                    self.emit("    ", f"{bound}: {format_number(band.rate)}", band)
                self.close("  ", stmt)
            else:
                self.emit("  ", pool_statement(stmt), stmt)
        self.close("", p)


def _high_outlier(s) -> str:
    n = format_number
    return "high outlier " + ", ".join(
        f"{n(b.threshold)} when points <= {n(b.max_points)}" if b.max_points is not None
        else f"{n(b.threshold)} otherwise" for b in s.bands)


def _coefficients(s) -> str:
    if s.csv is not None:
        return f'coefficient by {s.column.name} from "{s.csv.value}"'
    return f"coefficient by {s.column.name} {{ {', '.join(_row(r) for r in s.rows)} }}"


def _readmission(s) -> str:
    if s.share is None:
        return f"readmission within {format_number(s.days)} days halves the earlier stay"
    return f"readmission within {format_number(s.days)} days: earlier stay {format_number(s.share)}"


def _point_value(s) -> str:
    if s.kind == "budget_plus_paid":
        return "point value (budget + patient_paid) / points"
    if s.kind == "budget":
        return "point value budget / points"
    return f"point value baseline {format_number(s.share)} at {format_number(s.value)}"


def _sharing(s) -> str:
    n = format_number
    text = f"sharing keep {n(s.keep)} surplus, bear {n(s.bear)} overrun"
    if s.per_head is not None:
        text += f" against {n(s.per_head)} per head for {n(s.insured)} insured"
    return text


def _prepayments(s) -> str:
    floor = "" if s.floor is None else f" floor {format_number(s.floor)}"
    return f'prepayments from "{s.csv.value}"{floor}'


# Pool statements by node type (`day tiers` is a block, printed by the pool printer).
_POOL_STATEMENTS = {
    ast.Applies: lambda s: f"applies when {format_expr(s.cond)}",
    ast.GroupBy: lambda s: "group by " + (", ".join(
        f"{r.grouper.name} when {format_expr(r.cond)}" if r.cond is not None
        else f"{r.grouper.name} otherwise" for r in s.sources) or s.grouper.name),
    ast.Budget: lambda s: f"budget {format_number(s.amount)}" + (
        "" if s.insured is None else f" per head for {format_number(s.insured)} insured"),
    ast.BudgetFrom: lambda s: (f'budget from "{s.csv.value}" mean with '
                               f"{format_number(s.growth)} growth"),
    ast.BasePoints: lambda s: "base points from " + ", ".join(
        f'"{c.value}"' for c in (s.csv, *s.more)),
    ast.Coefficients: _coefficients,
    ast.HighOutlier: _high_outlier,
    ast.LowOutlier: lambda s: f"low outlier {format_number(s.threshold)}",
    ast.Incomplete: lambda s: f"incomplete when {s.column.name}",
    ast.BedDay: lambda s: f'bed day points from "{s.csv.value}"',
    ast.Readmission: _readmission,
    ast.Adjust: lambda s: (f"adjust {s.name.name} {format_number(s.factor)} when "
                           f"{format_expr(s.cond)}"),
    ast.PointValueDecl: _point_value,
    ast.Reserve: lambda s: f"reserve {format_number(s.share)}",
    ast.Sharing: _sharing,
    ast.Capitation: lambda s: (f"capitation {format_number(s.per_head)} per head signed from "
                               f'"{s.csv.value}"'),
    ast.Prepayments: _prepayments,
    ast.SpecialReview: lambda s: f'special review from "{s.csv.value}"',
    ast.FixedPointValue: lambda s: f'fixed point value from "{s.csv.value}"',
}


def _alliance_statement(s) -> str:
    if isinstance(s, ast.AllianceResidents):
        return f"residents by {s.column.name}"
    if isinstance(s, ast.AllianceBudget):
        return f'budget {format_number(s.per_head)} per head from "{s.csv.value}"'
    if isinstance(s, ast.AlliancePools):
        return "applies to " + ", ".join(n.name for n in s.names)
    return _sharing(s)


def pool_statement(s) -> str:
    """One pool statement in its canonical form (not `day tiers`, a block)."""
    fmt = _POOL_STATEMENTS.get(type(s))
    if fmt is None:
        raise TypeError(f"cannot print {type(s).__name__}")
    return fmt(s)


for _name in ("s_GrouperDecl", "s_PoolDecl", "s_AllianceDecl"):
    setattr(_Printer, _name, getattr(_ProviderPrinter, _name))


# -- fund supervision: `flag` blocks (docs/supervision.md) --

def _min_cases(n) -> str:
    return "" if n is None else f", at least {format_number(n)} cases"


def _flag_groups(s) -> str:
    words = [f'"{g.value}"' if isinstance(g, ast.Str) else format_expr(g) for g in s.groups]
    return "group in {" + ", ".join(words) + "}"


_FLAG_STATEMENTS = {
    ast.Applies: lambda s: f"applies when {format_expr(s.cond)}",
    ast.FlagReadmit: lambda s: (f"readmission within {format_number(s.days)} days at "
                                f"{'the same' if s.same_hospital else 'another'} hospital"),
    ast.FlagAboveMean: lambda s: (f"{s.measure} above {format_number(s.factor)} of the group "
                                  "mean"),
    ast.FlagShortStay: lambda s: (f"stay at most {format_number(s.days)} days with weight "
                                  f"below {format_number(s.weight)}"),
    ast.FlagGroups: _flag_groups,
    ast.FlagCcShare: lambda s: (f"cc share above {format_number(s.factor)} of the city"
                                f"{_min_cases(s.min_cases)}"),
    ast.FlagSevereShare: lambda s: (f"severe share below {format_number(s.factor)} of the "
                                    f"level, weight at least {format_number(s.weight)}"
                                    f"{_min_cases(s.min_cases)}"),
    ast.Severity: lambda s: f"severity {s.word.name}",
    ast.Effect: lambda s: f"effect {s.kind}",
}


def _print_flag(self, f: ast.FlagDecl) -> None:
    label = f' "{f.label}"' if f.label is not None else ""
    self.emit("", f"flag {f.name.name}{label} {{", f)
    for stmt in f.statements:
        self.emit("  ", _FLAG_STATEMENTS[type(stmt)](stmt), stmt)
    self.close("", f)


_Printer.s_FlagDecl = _print_flag


def format_policy(policy: ast.PolicyFile) -> str:
    """The canonical text of a parsed policy (comments kept)."""
    return _Printer(policy.comments).policy(policy)

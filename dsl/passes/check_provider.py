"""Check the provider-payment part (``grouper`` and ``pool`` declarations) and convert it to
engine units in ``ctx.provider`` (groupers, pools: lists of plan-node keyword dicts), which
``lower_plan`` assembles into ``Plan.groupers`` and ``Plan.provider``.

- names: a grouper or pool defined twice (E202); ``group by`` an unknown grouper (E501);
  an unknown column in a condition (E201) or a value outside its domain (E206);
- conditions (pool ``applies``, ``adjust … when``, DRG ``split when``) are comparisons of a
  claim column with a literal, ``column in {…}`` or a bool column, joined by ``and`` (``or``
  only in a split): anything else is E502;
- a pool needs ``group by``, a budget and base points (E503); each statement once (E111);
- files: the path rules of tables (E304, E305); a decision table the grouper cannot read is
  E504; its rows are analysed (``core.grouping.table.analyse``): a row hidden by an earlier
  one or never matching is E505, partly overlapping rows W506; a points, coefficient,
  bed-day, budget or capitation CSV with a bad header or value is E507;
- an MDC not in the scheme (E508); high-outlier bands out of order or without a last
  ``otherwise`` (E509); a split suffix that is not a short code (E510);
- per-hospital budgets (``budget from … mean with G growth``) with capitation, a per-head
  control total or a baseline point value (E511); a prepayments CSV with a bad header, month
  (not YYYY-MM) or amount is E507; a special-review CSV (特病单议) with a bad header, an
  empty claim_id, points not exact at 1/10,000 or a claim listed twice is E507, naming the line;
- ``group by`` several groupers (one point scale): a grouper named twice or ``otherwise``
  before the last source (E514); base points from several tables listing one group twice
  (E507);
- ``fixed point value from …`` (固定费率): a CSV with a bad header, a hospital listed twice,
  a point value not exact at 1/10^6 fen or a compensation outside 0–100% (E507); combined with
  capitation (E515);
- ``alliance`` (医共体 package budgets): a missing part, an unknown pool or one named twice,
  a residents column that is not text or an integer, a control total in its sharing (E516);
  its ``alliance,persons`` CSV with a bad header, count or a repeated alliance (E507);
- a pool shape a city rarely means (W512): risk sharing, which measures the fund's own cost
  (patients' payments excluded) against the budget, with the point value
  ``(budget + patient_paid) / points``, which adds patients' payments back.
"""
from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation

from yibao.core.money import round_half_up
from yibao.core.plan import BOOL, DATE, INT, MONEY, RATIO, RATIO_SCALE, TEXT
from yibao.core.points import plan as PP

from ..source import SourceError, read_table_text
from .. import ast
from ..errors import error, suggest, warning
from ..units import UnitError, number_value
from . import Context
from .check_tables import _csv_path

POOL_SINGLE = {ast.Applies: "applies", ast.GroupBy: "group by", ast.Budget: "budget",
               ast.BudgetFrom: "budget", ast.BasePoints: "base points",
               ast.Coefficients: "coefficient", ast.HighOutlier: "high outlier",
               ast.LowOutlier: "low outlier", ast.Incomplete: "incomplete",
               ast.BedDay: "bed day points", ast.DayTiers: "day tiers",
               ast.Readmission: "readmission", ast.PointValueDecl: "point value",
               ast.Reserve: "reserve", ast.Sharing: "sharing", ast.Capitation: "capitation",
               ast.Prepayments: "prepayments", ast.SpecialReview: "special review",
               ast.FixedPointValue: "fixed point value"}
_OPS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    ctx.provider = {"groupers": [], "pools": []}
    outputs = {}
    for decl in policy.groupers():
        if decl.name.name in outputs:
            ctx.report(error("E202", f"grouper '{decl.name.name}' is defined twice",
                             decl.name.span))
            continue
        node = _grouper(decl, ctx)
        outputs[decl.name.name] = node
        if node is not None:
            ctx.provider["groupers"].append(node)
    seen = set()
    for decl in policy.pools():
        if decl.name.name in seen:
            ctx.report(error("E202", f"pool '{decl.name.name}' is defined twice", decl.name.span))
            continue
        seen.add(decl.name.name)
        pool = _Pool(decl, ctx, outputs).build()
        if pool is not None:
            ctx.provider["pools"].append(pool)
    for decl in policy.alliances():  # ctx.provider["alliances"] only when there are some
        if decl.name.name in seen:
            ctx.report(error("E202", f"'{decl.name.name}' is already a pool or alliance",
                             decl.name.span))
            continue
        seen.add(decl.name.name)
        alliance = _alliance(decl, ctx, {p.name.name for p in policy.pools()})
        if alliance is not None:
            ctx.provider.setdefault("alliances", []).append(alliance)
    return policy


# -- 医共体 alliances --------------------------------------------------------------------------

ALLIANCE_PARTS = {ast.AllianceResidents: "residents by", ast.AllianceBudget: "budget",
                  ast.AlliancePools: "applies to", ast.Sharing: "sharing"}


def _alliance(decl: ast.AllianceDecl, ctx: Context, pools: set):
    """An ``Alliance`` plan node, or None (reported): every part once, known pools each
    once, a text or integer residents column, ``alliance,persons`` rows."""
    name, kw, ok = decl.name.name, {}, True
    first = {}
    for stmt in decl.statements:
        what = ALLIANCE_PARTS[type(stmt)]
        if what in first:
            ctx.report(error("E111", f"'{what}' is given twice in alliance '{name}'", stmt.span,
                             f"the first is on line {first[what].line}"))
            ok = False
            continue
        first[what] = stmt.span
        part = _ALLIANCE_STATEMENTS[type(stmt)](stmt, ctx, pools)
        ok &= part is not None
        kw.update(part or {})
    missing = [w for w in ALLIANCE_PARTS.values() if w not in first]
    if missing:
        ctx.report(error("E516", f"alliance '{name}' has no '{missing[0]}'", decl.name.span,
                         "an alliance needs residents by, budget … per head from, applies to "
                         "and sharing"))
        return None
    return PP.Alliance(name=name, **kw) if ok else None


def _alliance_residents(s, ctx, pools):
    t = _column(s.column, ctx)
    if t is None:
        return None
    if t.kind not in (TEXT, INT):
        ctx.report(error("E516", f"column '{s.column.name}' is {t.kind}; an alliance is named by "
                         "text or an integer", s.column.span))
        return None
    return {"column": s.column.name}


def _alliance_budget(s, ctx, pools):
    per_head = _value(s.per_head, MONEY, ctx, "alliance budget")
    rows = read_csv(s.csv, ctx, ("alliance", "persons"), ("label",))
    if per_head is None or rows is None:
        return None
    members, seen = [], {}
    for n, cells in rows:
        a = cells["alliance"]
        if not a or a in seen:
            ctx.report(error("E507", f"{s.csv.value} line {n}: " + (
                f"alliance {a!r} is listed twice" if a else "no alliance"), s.csv.span))
            return None
        seen[a] = n
        persons = decimal_cell(cells["persons"], 1, s.csv, n, "persons", ctx)
        if persons is None:
            return None
        members.append((a, persons))
    return {"per_head": per_head, "members": tuple(members)}


def _alliance_pools(s, ctx, pools):
    names = []
    for n in s.names:
        if n.name not in pools:
            ctx.report(error("E516", f"unknown pool '{n.name}'", n.span,
                             suggest(n.name, pools) or "an alliance applies to declared pools"))
            return None
        if n.name in names:
            ctx.report(error("E516", f"pool '{n.name}' is named twice", n.span))
            return None
        names.append(n.name)
    return {"pools": tuple(names)}


def _alliance_sharing(s, ctx, pools):
    if s.per_head is not None:
        ctx.report(error("E516", "an alliance's control total is its budget per head; "
                         "'against … per head' belongs to a pool", s.span,
                         "write: sharing keep 100% surplus, bear 60% overrun"))
        return None
    keep, bear = (_value(x, RATIO, ctx, w) for x, w in ((s.keep, "keep"), (s.bear, "bear")))
    return None if keep is None or bear is None else {"keep": keep, "bear": bear}


_ALLIANCE_STATEMENTS = {ast.AllianceResidents: _alliance_residents,
                        ast.AllianceBudget: _alliance_budget, ast.AlliancePools: _alliance_pools,
                        ast.Sharing: _alliance_sharing}


def _value(node, kind, ctx, where):
    try:
        return number_value(node.text, node.unit, kind)
    except UnitError as exc:
        ctx.report(error(exc.code, f"{where}: {exc.message}", node.span, exc.hint))
        return None


# -- conditions -> tests ---------------------------------------------------------------------

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
    if isinstance(expr, ast.BinOp) and expr.op == "and":
        left, right = conjunction(expr.left, ctx), conjunction(expr.right, ctx)
        return None if left is None or right is None else left + right
    test = _test(expr, ctx)
    return None if test is None else (test,)


def _column(name: ast.Name, ctx: Context):
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
    bad = ("a condition here is `column op value`, `column in {…}` or a bool column, "
           "joined by 'and'")
    if isinstance(expr, ast.Name):
        t = _column(expr, ctx)
        if t is not None and t.kind != BOOL:
            ctx.report(error("E502", f"column '{expr.name}' is {t.kind}, not a flag", expr.span,
                             bad))
            return None
        return None if t is None else PP.Test(expr.name, "==", True)
    if isinstance(expr, ast.Unary) and expr.op == "not" and isinstance(expr.operand, ast.Name):
        inner = _test(expr.operand, ctx)
        return None if inner is None else PP.Test(inner.column, "==", False)
    if isinstance(expr, ast.BinOp) and expr.op in _OPS and isinstance(expr.left, ast.Name):
        t = _column(expr.left, ctx)
        value = None if t is None else _claim_value(expr.right, t, ctx)
        return None if value is None else PP.Test(expr.left.name, _OPS[expr.op], value)
    if isinstance(expr, ast.InSet) and isinstance(expr.operand, ast.Name):
        t = _column(expr.operand, ctx)
        values = [None if t is None else _claim_value(v, t, ctx) for v in expr.values]
        return None if None in values or t is None else PP.Test(expr.operand.name, "in",
                                                                tuple(values))
    ctx.report(error("E502", "this condition cannot be a provider test", expr.span, bad))
    return None


def _claim_value(node, t, ctx: Context):
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
        value = _value(node, t.kind, ctx, "condition")
        if value is not None and t.kind == INT and t.domain and value not in t.domain:
            ctx.report(error("E206", f"{value} is not one of "
                             f"{{{', '.join(map(str, t.domain))}}}", node.span))
            return None
        return value
    want = {MONEY: "an amount", INT: "an integer", RATIO: "a ratio", BOOL: "true or false",
            TEXT: "a word or quoted text"}.get(t.kind, f"a {t.kind} value")
    ctx.report(error("E210", f"expected {want}", node.span))
    return None


# -- CSV -------------------------------------------------------------------------------------

def read_csv(ref: ast.Str, ctx: Context, required: tuple, optional: tuple = ()):
    """[(line, {column: cell})] of a CSV beside the policy ('#' lines skipped), or None."""
    path = _csv_path(ref, ctx)
    if path is None:
        return None
    try:  # the benefit tables' reader: a FIFO or device is refused, never read (it may hang)
        text = read_table_text(path).removeprefix("\ufeff")
    except SourceError as exc:  # not a regular file, too large, not UTF-8
        where = f" (line {exc.line})" if exc.text else ""
        ctx.report(error("E305", f"cannot read file '{ref.value}'{where}: "
                         f"{exc.message.replace(repr(str(path)), 'it')}", ref.span, exc.hint))
        return None
    except OSError as exc:
        ctx.report(error("E305", f"cannot read file '{ref.value}': "
                         f"{exc.strerror or exc.__class__.__name__}",
                         ref.span, "the file must sit in the policy's folder, UTF-8"))
        return None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        ctx.report(error("E507", f"file '{ref.value}' has no header", ref.span))
        return None
    header = [h.strip() for h in next(csv.reader([lines[0][1]]))]
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional
               and optional != "*"]
    if missing or unknown:
        ctx.report(error("E507", f"file '{ref.value}' header {','.join(header)}: "
                         + (f"missing {', '.join(missing)}" if missing else
                            f"unknown column {', '.join(unknown)}"), ref.span,
                         f"the header is {','.join(required)}"
                         + (f" (optional: {','.join(optional)})" if optional else "")))
        return None
    rows = []
    for n, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(header):
            ctx.report(error("E507", f"{ref.value} line {n}: {len(cells)} cells, the header "
                             f"has {len(header)}", ref.span))
            return None
        rows.append((n, dict(zip(header, cells))))
    return rows


def decimal_cell(cell: str, scale: int, ref: ast.Str, n: int, what: str, ctx: Context):
    """int(cell × scale), exact, else None (reported)."""
    try:
        value = Decimal(cell.replace("_", "")) * scale
    except InvalidOperation:
        value = None
    if value is None or value != value.to_integral_value() or value < 0:
        ctx.report(error("E507", f"{ref.value} line {n}: {what} {cell!r} is not a number "
                         f"exact at 1/{scale}", ref.span))
        return None
    return int(value)


def _percent_cell(cell: str, ref: ast.Str, n: int, ctx: Context):
    """A ratio cell written ``70%`` (or ``0.7``) as millionths in 0..100%, else None
    (reported E507)."""
    text = cell.strip()
    scale = RATIO_SCALE // 100 if text.endswith("%") else RATIO_SCALE
    value = decimal_cell(text.removesuffix("%"), scale, ref, n, "compensation", ctx)
    if value is not None and value > RATIO_SCALE:
        ctx.report(error("E507", f"{ref.value} line {n}: compensation {cell!r} is above 100%",
                         ref.span))
        return None
    return value


# -- groupers --------------------------------------------------------------------------------

def _grouper(decl: ast.GrouperDecl, ctx: Context):
    if decl.csv is not None:
        return _table_grouper(decl, ctx)
    return _drg_grouper(decl, ctx)


def _table_grouper(decl: ast.GrouperDecl, ctx: Context):
    from yibao.core.grouping.table import DecisionTableError, analyse, load_decision_table_csv
    path = _csv_path(decl.csv, ctx)
    if path is None:
        return None
    name = decl.name.name
    default = decl.default.value if decl.default else None
    try:  # read as the benefit tables are: a FIFO refused, UTF-8 or GBK/GB18030
        text = read_table_text(path)
        table = load_decision_table_csv(path, name, name, default, decl.csv.value, text)
    except SourceError as exc:
        ctx.report(error("E305", f"cannot read decision table '{decl.csv.value}': "
                         f"{exc.message.replace(repr(str(path)), 'it')}", decl.csv.span,
                         exc.hint))
        return None
    except FileNotFoundError:
        ctx.report(error("E305", f"cannot read decision table '{decl.csv.value}'",
                         decl.csv.span, "the file must sit in the policy's folder, UTF-8"))
        return None
    except DecisionTableError as exc:
        ctx.report(error("E504", f"decision table: {exc}", decl.csv.span,
                         "see the CSV layout in docs/language.md"))
        return None
    for c in table.input_columns():
        if c not in ctx.columns and c not in ("principal_dx", "procedures"):
            ctx.report(error("E201", f"decision table '{decl.csv.value}' reads column '{c}', "
                             "which the policy does not declare", decl.csv.span,
                             f"declare it: attribute {c}: int"))
    for f in analyse(table):
        if f.code in ("T001", "T004"):
            ctx.report(error("E505", f"{f}", decl.csv.span, "delete or reorder the row"))
        elif f.code == "T002":
            ctx.report(warning("W506", f"{f}", decl.csv.span,
                               "make the rows disjoint, or put the special case first"))
    return table


def _drg_grouper(decl: ast.GrouperDecl, ctx: Context):
    from yibao.core.grouping.tables import DATA_DIR, load_tables
    from yibao.core.provider import DRG_INPUTS, DrgGrouper, DrgSplit
    parts = {"tables": "chs_drg_11", "mdc_order": None, "splits": [], "by": "chs_drg"}
    for stmt in decl.statements:
        if isinstance(stmt, ast.GrouperBy):
            parts["by"] = _grouper_plugin(stmt, ctx)
        elif isinstance(stmt, ast.DrgTables):
            if not (DATA_DIR.parent / stmt.name.name / "scheme.json").exists():
                ctx.report(error("E508", f"unknown DRG tables '{stmt.name.name}'", stmt.name.span,
                                 f"known: {DATA_DIR.name}"))
                return None
            parts["tables"] = stmt.name.name
        elif isinstance(stmt, ast.MdcOrder):
            parts["mdc_order"] = _mdc_order(stmt, ctx)
        elif isinstance(stmt, ast.DrgSplit):
            when = conjunctions(stmt.cond, ctx, True)
            suffix = stmt.suffix.value
            if not (suffix.isalnum() and 1 <= len(suffix) <= 3):
                ctx.report(error("E510", f"split suffix {suffix!r} is not a short code",
                                 stmt.suffix.span, 'use 1-3 letters or digits, e.g. "A"'))
            elif when is not None:
                parts["splits"].append(DrgSplit(suffix, when, f"{stmt.span}"))
    if parts["mdc_order"] is not None and parts["tables"]:
        known = load_tables(None if parts["tables"] == DATA_DIR.name
                            else str(DATA_DIR.parent / parts["tables"])).scheme["mdc"]
        bad = [m for m in parts["mdc_order"] if m not in known]
        for stmt in decl.statements:
            if isinstance(stmt, ast.MdcOrder) and bad:
                ctx.report(error("E508", f"unknown MDC {', '.join(bad)}", stmt.span,
                                 "MDCs are A, P, Y, Z, M, N, B … X (or MDCA …)"))
        if bad:
            return None
    columns = tuple(c for c in DRG_INPUTS if c in ctx.columns)
    return DrgGrouper(decl.name.name, decl.label or "", parts["tables"], parts["mdc_order"],
                      tuple(parts["splits"]), columns, f"{decl.span}", parts["by"])


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


# -- pools -----------------------------------------------------------------------------------

class _Pool:
    def __init__(self, decl: ast.PoolDecl, ctx: Context, groupers: dict):
        self.decl, self.ctx, self.groupers = decl, ctx, groupers
        self.kw = {"name": decl.name.name}
        self.ok = True

    def fail(self, code, message, span, hint=None):
        self.ctx.report(error(code, message, span, hint))
        self.ok = False

    def build(self):
        seen = {}
        for stmt in self.decl.statements:
            what = POOL_SINGLE.get(type(stmt))
            if what and what in seen:
                self.fail("E111", f"'{what}' is given twice in pool '{self.kw['name']}'",
                          stmt.span, f"the first is on line {seen[what].line}")
                continue
            if what:
                seen[what] = stmt.span
        order = sorted(self.decl.statements, key=lambda s: isinstance(s, ast.Coefficients))
        for stmt in order:  # coefficients by level expand over the base points' groups
            getattr(self, "s_" + type(stmt).__name__)(stmt)
        for what in ("group by", "budget", "base points"):
            control = (self.kw.get("sharing") is not None
                       and self.kw["sharing"].per_head is not None)
            if what not in seen and not (what == "budget" and control) \
                    and not (what == "base points" and "bed day points" in seen):
                self.fail("E503", f"pool '{self.kw['name']}' has no '{what}'", self.decl.name.span,
                          f"add: {what} …")
        if "budget" not in seen and self.ok:
            self.kw["budget"] = 0
        if self.kw.get("fixed_rates") and "capitation" in seen:
            self.fail("E515", f"pool '{self.kw['name']}': fixed point values cannot be combined "
                      "with capitation", seen["fixed point value"],
                      "a signed person's care is paid from the signed institution's budget at "
                      "the pool's point value; put the fixed-rate hospitals in a pool of their own")
        if self.kw.get("hospital_budgets"):
            sharing, pv = self.kw.get("sharing"), self.kw.get("point_value")
            clash = ("capitation" if "capitation" in seen else
                     "a per-head control total" if sharing and sharing.per_head is not None else
                     "a baseline point value" if pv and pv.kind == PP.BASELINE else None)
            if clash:
                self.fail("E511", f"pool '{self.kw['name']}': per-hospital budgets (budget from "
                          f"… mean) cannot be combined with {clash}", seen["budget"],
                          "give the pool one budget: budget <amount>")
        self._warn_shape(seen)
        return PP.Pool(**self.kw) if self.ok else None

    def _warn_shape(self, seen: dict) -> None:
        """W512: sharing (fund cost against the budget) with (budget + patient_paid) / points.
        Per-hospital budgets are exempt: there each hospital's value is its own fund amount
        plus its own patients' payments, whatever the form."""
        sharing, pv = self.kw.get("sharing"), self.kw.get("point_value", PP.PointValue())
        if sharing is None or pv.kind != PP.BUDGET_PLUS_PAID or self.kw.get("hospital_budgets"):
            return
        self.ctx.report(warning(
            "W512", f"pool '{self.kw['name']}' shares a surplus or overrun of fund money (its "
            "cost without patients' payments), but its point value adds patients' payments "
            "back", seen.get("point value", seen.get("sharing")),
            "with sharing the fund amount is fund money; `point value budget / points` splits "
            "it by points. Keep (budget + patient_paid) / points only if the whole cost, "
            "patients' part included, is to be split by points"))

    def ratio(self, node, where):
        value = _value(node, RATIO, self.ctx, where)
        if value is None:
            self.ok = False
        return value

    def s_Applies(self, s):
        tests = conjunction(s.cond, self.ctx) if not (
            isinstance(s.cond, ast.BinOp) and s.cond.op == "or") else conjunctions(
            s.cond, self.ctx, False)
        if tests is None:
            self.ok = False
        else:
            self.kw["applies"] = tests

    def s_GroupBy(self, s):
        if s.sources:
            return self._group_sources(s)
        column = self._grouper_column(s.grouper)
        if column is not None:
            self.kw["group_column"] = column

    def _grouper_column(self, name: ast.Name):
        """The output column of a declared grouper (None, reported E501, when unknown)."""
        from yibao.core.provider import grouper_output
        if name.name not in self.groupers:
            self.fail("E501", f"unknown grouper '{name.name}'", name.span,
                      suggest(name.name, self.groupers) or "declare it with `grouper`")
            return None
        g = self.groupers[name.name]
        return None if g is None else grouper_output(g)

    def _group_sources(self, s):
        """``group by drg when …, dip otherwise``: the first source whose condition holds
        gives the claim's group; every source's groups share the pool's point scale."""
        sources, seen = [], set()
        for i, row in enumerate(s.sources):
            if row.grouper.name in seen:
                self.fail("E514", f"grouper '{row.grouper.name}' is named twice in 'group by'",
                          row.grouper.span, "name each grouper once, with one condition (comparisons joined by 'and')")
            seen.add(row.grouper.name)
            if row.cond is None and i != len(s.sources) - 1:
                self.fail("E514", "'otherwise' comes last in 'group by'", row.span,
                          "the sources after it could never apply")
            column = self._grouper_column(row.grouper)
            tests = () if row.cond is None else conjunction(row.cond, self.ctx)
            if column is None or tests is None:
                self.ok = False
                continue
            sources.append(PP.GroupSource(column, tests))
        self.kw["group_sources"] = tuple(sources)
        self.kw["group_column"] = "+".join(src.column for src in sources)

    def s_Budget(self, s):
        """``budget X`` or ``budget X per head for N insured`` (a budget that scales with
        the insured population: X × N fen)."""
        value = _value(s.amount, MONEY, self.ctx, "budget")
        if s.insured is not None and value is not None:
            insured = _value(s.insured, INT, self.ctx, "insured persons")
            value = None if insured is None else value * insured
            if value is not None and value >= 1 << 63:  # no arithmetic wraps
                self.ctx.report(error("E215", f"budget {value} fen is out of range",
                                      s.span, "a budget is below 9.2 × 10^16 yuan"))
                value = None
        self.ok &= value is not None
        self.kw["budget"] = value

    def s_BudgetFrom(self, s):
        growth = self.ratio(s.growth, "growth")
        rows = read_csv(s.csv, self.ctx, ("hospital_id",), "*")
        if rows is None:
            rows = []
            self.ok = False
        years = [c for c in (rows[0][1] if rows else ()) if c != "hospital_id"]
        if rows and not years:
            self.fail("E507", f"file '{s.csv.value}' lists no year columns", s.csv.span)
        from fractions import Fraction
        budgets = []
        for n, cells in rows:
            fen = [decimal_cell(cells[y], 100, s.csv, n, y, self.ctx) for y in years]
            if None in fen or growth is None:
                self.ok = False
                continue
            budget = Fraction(sum(fen), len(fen)) * Fraction(RATIO_SCALE + growth, RATIO_SCALE)
            budgets.append((cells["hospital_id"],
                            round_half_up(budget.numerator, budget.denominator)))
        if len({h for h, _ in budgets}) != len(budgets):
            self.fail("E507", f"file '{s.csv.value}' lists a hospital twice", s.csv.span)
        self.kw["hospital_budgets"] = tuple(budgets)
        self.kw["budget"] = sum(b for _, b in budgets)

    def s_Prepayments(self, s):
        import re
        if s.floor is not None:
            self.kw["prepay_floor"] = self.ratio(s.floor, "prepayment floor")
        rows = read_csv(s.csv, self.ctx, ("hospital_id", "month", "amount"))
        if rows is None:
            self.ok = False
            return
        out = []
        for n, cells in rows:
            month = cells["month"].strip()
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
                self.fail("E507", f"{s.csv.value} line {n}: month {month!r} is not YYYY-MM",
                          s.csv.span)
                continue
            fen = decimal_cell(cells["amount"], 100, s.csv, n, "amount", self.ctx)
            self.ok &= fen is not None
            out.append((cells["hospital_id"], month, fen or 0))
        self.kw["prepayments"] = tuple(out)

    def s_BasePoints(self, s):
        """One table, or one per grouper (``base points from "drg.csv", "dip.csv"``): the
        groups of all of them on one point scale, so a group may appear in one file only."""
        base, avg, first = [], [], {}
        for ref in (s.csv, *s.more):
            rows = read_csv(ref, self.ctx, ("group", "points", "avg_cost"), ("label",))
            if rows is None:
                self.ok = False
                continue
            for n, cells in rows:
                b = decimal_cell(cells["points"], PP.POINT_SCALE, ref, n, "points", self.ctx)
                a = decimal_cell(cells["avg_cost"], 100, ref, n, "avg_cost", self.ctx)
                if b is None or a is None:
                    self.ok = False
                    continue
                if cells["group"] in first:
                    self.fail("E507", f"{ref.value} line {n}: group {cells['group']!r} is "
                              f"listed twice", ref.span, f"it is first in {first[cells['group']]}")
                    continue
                first[cells["group"]] = f"{ref.value} line {n}"
                base.append((cells["group"], b))
                avg.append((cells["group"], a))
        self.kw["base_points"], self.kw["avg_cost"] = tuple(base), tuple(avg)

    def s_Coefficients(self, s):
        t = self.ctx.columns.get(s.column.name)
        if t is None:
            return self.fail("E201", f"unknown column '{s.column.name}'", s.column.span,
                             suggest(s.column.name, self.ctx.columns))
        self.kw["coefficient_by"] = s.column.name
        if s.csv is not None:
            return self._coefficients_csv(s)
        groups = [g for g, _ in self.kw.get("base_points", ())]
        out = []
        for row in s.rows:
            if len(row.keys) != 1:
                self.fail("E303", "a coefficient row has one key", row.span)
                continue
            key = _claim_value(row.keys[0], t, self.ctx)
            k = self.ratio(row.value, "coefficient") if isinstance(row.value, ast.Number) else None
            if key is None or k is None:
                self.ok = False
                continue
            out.extend((str(key), g, k) for g in groups)
        self.kw["coefficients"] = tuple(out)

    def _coefficients_csv(self, s):
        col = s.column.name
        rows = read_csv(s.csv, self.ctx, (col, "group", "coefficient"))
        if rows is None:
            self.ok = False
            return
        out = []
        for n, cells in rows:
            k = decimal_cell(cells["coefficient"], RATIO_SCALE, s.csv, n, "coefficient",
                             self.ctx)
            if k is None:
                self.ok = False
                continue
            out.append((cells[col], cells["group"], k))
        self.kw["coefficients"] = tuple(out)

    def s_HighOutlier(self, s):
        bands, last = [], None
        for i, band in enumerate(s.bands):
            t = self.ratio(band.threshold, "high outlier")
            b = None
            if band.max_points is not None:
                b = decimal_cell(band.max_points.text, PP.POINT_SCALE, ast.Str(band.span, "policy"),
                                 band.span.line, "points", self.ctx)
                if b is not None and last is not None and b <= last:
                    self.fail("E509", "high-outlier bands go up in points", band.span)
                last = b
            elif i != len(s.bands) - 1:
                self.fail("E509", "'otherwise' comes last", band.span)
            bands.append(PP.HighBand(b, t))
        self.kw["outliers"] = PP.Outliers(tuple(bands), self.kw.get("outliers",
                                                                     PP.Outliers()).t_low)

    def s_LowOutlier(self, s):
        t = self.ratio(s.threshold, "low outlier")
        self.kw["outliers"] = PP.Outliers(self.kw.get("outliers", PP.Outliers()).high, t or 0)

    def s_Incomplete(self, s):
        t = _column(s.column, self.ctx)
        if t is not None and t.kind != BOOL:
            self.fail("E502", f"column '{s.column.name}' is {t.kind}, not a flag", s.column.span)
        self.kw["incomplete_column"] = s.column.name

    def s_BedDay(self, s):
        rows = read_csv(s.csv, self.ctx, ("group", "points_per_day"), ("label",))
        if rows is None:
            self.ok = False
            return
        per_day = []
        for n, cells in rows:
            p = decimal_cell(cells["points_per_day"], PP.POINT_SCALE, s.csv, n, "points_per_day",
                             self.ctx)
            self.ok &= p is not None
            per_day.append((cells["group"], p))
        tiers = self.kw.get("bed_day", PP.BedDay(())).tiers
        self.kw["bed_day"] = PP.BedDay(tuple(per_day), tiers)

    def s_DayTiers(self, s):
        tiers, expect = [], 1
        for band in s.bands:
            first = _value(band.lo, INT, self.ctx, "day")
            last = None if band.hi is None else _value(band.hi, INT, self.ctx, "day")
            factor = self.ratio(band.rate, "day factor")
            if first != expect or (last is not None and last < first):
                self.fail("E509", f"day tiers run on from day {expect}", band.span)
            expect = (last or 0) + 1
            tiers.append(PP.DayTier(first, last, factor))
        per_day = self.kw.get("bed_day", PP.BedDay(())).per_day
        self.kw["bed_day"] = PP.BedDay(per_day, tuple(tiers))

    def s_Readmission(self, s):
        days = _value(s.days, INT, self.ctx, "readmission")
        share = RATIO_SCALE // 2 if s.share is None else self.ratio(s.share, "readmission")
        self.ok &= days is not None
        self.kw["readmission"] = PP.Readmission(days or 0, share or 0)

    def s_Adjust(self, s):
        factor = self.ratio(s.factor, "adjustment")
        tests = conjunction(s.cond, self.ctx)
        if tests is None:
            self.ok = False
            return
        self.kw["adjustments"] = self.kw.get("adjustments", ()) + (
            PP.Adjustment(s.name.name, factor or 0, tests),)

    def s_PointValueDecl(self, s):
        if s.kind != PP.BASELINE:
            self.kw["point_value"] = PP.PointValue(s.kind)
            return
        share = self.ratio(s.share, "baseline share")
        if s.value.unit == "%":
            return self.fail("E214", "a point value is money per point", s.value.span)
        # a point value may be finer than a fen: held in micro-fen, exact
        scale = PP.PV_SCALE * (1 if s.value.unit == "fen" else 100)
        value = decimal_cell(s.value.text, scale, ast.Str(s.span, "policy"), s.span.line,
                             "point value", self.ctx)
        self.kw["point_value"] = PP.PointValue(PP.BASELINE, value or 0, share or 0)

    def s_Reserve(self, s):
        self.kw["reserve_share"] = self.ratio(s.share, "reserve")

    def s_Sharing(self, s):
        keep, bear = self.ratio(s.keep, "keep"), self.ratio(s.bear, "bear")
        per_head = insured = None
        if s.per_head is not None:
            per_head = _value(s.per_head, MONEY, self.ctx, "control total")
            insured = _value(s.insured, INT, self.ctx, "insured persons")
            self.ok &= per_head is not None and insured is not None
        self.kw["sharing"] = PP.RiskSharing(keep or 0, bear or 0, per_head, insured or 0)

    def s_SpecialReview(self, s):
        """特病单议: claim_id -> final points (point-method.md §2), one row per claim."""
        rows = read_csv(s.csv, self.ctx, ("claim_id", "points"), ("reason", "label"))
        if rows is None:
            self.ok = False
            return
        out, first = [], {}
        for n, cells in rows:
            cid = cells["claim_id"]
            if not cid:
                self.fail("E507", f"{s.csv.value} line {n}: no claim_id", s.csv.span)
                continue
            if cid in first:
                self.fail("E507", f"{s.csv.value} line {n}: claim {cid!r} is listed twice",
                          s.csv.span, f"it is first on line {first[cid]}; keep one row")
                continue
            first[cid] = n
            pts = decimal_cell(cells["points"], PP.POINT_SCALE, s.csv, n, "points", self.ctx)
            self.ok &= pts is not None
            out.append((cid, pts or 0))
        self.kw["review"] = tuple(out)

    def s_FixedPointValue(self, s):
        """固定费率: hospital_id -> yuan per point decided in advance, and the share of its
        year-end shortfall the fund makes up (compensation, default 0%)."""
        rows = read_csv(s.csv, self.ctx, ("hospital_id", "point_value"), ("compensation", "label"))
        if rows is None:
            self.ok = False
            return
        out, first = [], {}
        for n, cells in rows:
            h = cells["hospital_id"]
            if not h or h in first:
                self.fail("E507", f"{s.csv.value} line {n}: " + (
                    f"hospital {h!r} is listed twice" if h else "no hospital_id"), s.csv.span)
                continue
            first[h] = n
            rate = decimal_cell(cells["point_value"], 100 * PP.PV_SCALE, s.csv, n,
                                "point_value (yuan)", self.ctx)
            comp = _percent_cell(cells.get("compensation") or "0%", s.csv, n, self.ctx)
            if rate is None or comp is None:
                self.ok = False
                continue
            out.append(PP.FixedRate(h, rate, comp))
        self.kw["fixed_rates"] = tuple(out)

    def s_Capitation(self, s):
        per_head = _value(s.per_head, MONEY, self.ctx, "capitation")
        rows = read_csv(s.csv, self.ctx, ("institution", "persons"))
        if rows is None or per_head is None:
            self.ok = False
            return
        signed = []
        for n, cells in rows:
            p = decimal_cell(cells["persons"], 1, s.csv, n, "persons", self.ctx)
            self.ok &= p is not None
            signed.append((cells["institution"], p))
        self.kw["capitation"] = PP.Capitation(per_head, tuple(signed))

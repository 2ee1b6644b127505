"""Check the pools and alliances and lower them to plan nodes (the last provider pass), in
engine units: ``ctx.provider["pools"]`` (``core.points.plan.Pool``) and, when there are
some, ``ctx.provider["alliances"]`` (``Alliance``), which ``lower_plan`` assembles into
``Plan.provider``. It reads the tables ``read_provider_tables`` read, the typed conditions
``check_provider_conditions`` built and the grouper nodes ``check_groupers`` built.

- ``group by`` an unknown grouper (E501); several groupers (one point scale): a grouper
  named twice or ``otherwise`` before the last source (E514);
- a pool needs ``group by``, a budget and base points (E503); each statement once (E111);
- table cells: points, coefficients, bed-day points, budgets, capitation counts not exact at
  their scale, a group listed twice across base-points tables, a hospital or special-review
  claim listed twice, a prepayment month not YYYY-MM, a fixed point value not exact at
  1/10^6 fen or a compensation outside 0–100% (E507, naming the line or sheet row);
- an unknown coefficient column (E201), a coefficient key outside its domain (E206);
- high-outlier bands out of order or without a last ``otherwise``, day tiers that do not run
  on (E509);
- per-hospital budgets (``budget from … mean with G growth``) with capitation, a per-head
  control total or a baseline point value (E511); fixed point values with capitation (E515);
- ``alliance`` (医共体 package budgets): a missing part, an unknown pool or one named twice,
  a residents column that is not text or an integer, a control total in its sharing (E516);
- a pool shape a city rarely means (W512): risk sharing, which measures the fund's own cost
  (patients' payments excluded) against the budget, with the point value
  ``(budget + patient_paid) / points``, which adds patients' payments back.
"""
from __future__ import annotations

from yibao.core.money import round_half_up
from yibao.core.plan import BOOL, INT, MONEY, RATIO, RATIO_SCALE, TEXT
from yibao.core.grouping.plan import grouper_output
from yibao.core.points import plan as PP

from .. import ast
from ..errors import error, suggest, warning
from . import Context
from .check_provider_conditions import claim_value, column_type, literal_value
from .read_provider_tables import at, decimal_cell, percent_cell, rows_of

POOL_SINGLE = {ast.Applies: "applies", ast.GroupBy: "group by", ast.Budget: "budget",
               ast.BudgetFrom: "budget", ast.BasePoints: "base points",
               ast.Coefficients: "coefficient", ast.HighOutlier: "high outlier",
               ast.LowOutlier: "low outlier", ast.Incomplete: "incomplete",
               ast.BedDay: "bed day points", ast.DayTiers: "day tiers",
               ast.Readmission: "readmission", ast.PointValueDecl: "point value",
               ast.Reserve: "reserve", ast.Sharing: "sharing", ast.Capitation: "capitation",
               ast.Prepayments: "prepayments", ast.SpecialReview: "special review",
               ast.FixedPointValue: "fixed point value"}


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    decls = ctx.provider_decls
    for decl in decls["pools"].values():
        pool = _Pool(decl, ctx, ctx.grouper_nodes).build()
        if pool is not None:
            ctx.provider["pools"].append(pool)
    for decl in decls["alliances"].values():  # ctx.provider["alliances"] only when some
        alliance = _alliance(decl, ctx, set(decls["pools"]))
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
    t = column_type(s.column, ctx)
    if t is None:
        return None
    if t.kind not in (TEXT, INT):
        ctx.report(error("E516", f"column '{s.column.name}' is {t.kind}; an alliance is named by "
                         "text or an integer", s.column.span))
        return None
    return {"column": s.column.name}


def _alliance_budget(s, ctx, pools):
    per_head = literal_value(s.per_head, MONEY, ctx, "alliance budget")
    rows = rows_of(ctx, s.csv)
    if per_head is None or rows is None:
        return None
    members, seen = [], {}
    for n, cells in rows:
        a = cells["alliance"]
        if not a or a in seen:
            ctx.report(error("E507", f"{at(s.csv, n)}: " + (
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
    keep, bear = (literal_value(x, RATIO, ctx, w) for x, w in ((s.keep, "keep"), (s.bear, "bear")))
    return None if keep is None or bear is None else {"keep": keep, "bear": bear}


_ALLIANCE_STATEMENTS = {ast.AllianceResidents: _alliance_residents,
                        ast.AllianceBudget: _alliance_budget, ast.AlliancePools: _alliance_pools,
                        ast.Sharing: _alliance_sharing}


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
        value = literal_value(node, RATIO, self.ctx, where)
        if value is None:
            self.ok = False
        return value

    def s_Applies(self, s):
        tests = self.ctx.provider_tests[id(s.cond)]
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
                          row.grouper.span, "name each grouper once, with one condition "
                          "(comparisons joined by 'and')")
            seen.add(row.grouper.name)
            if row.cond is None and i != len(s.sources) - 1:
                self.fail("E514", "'otherwise' comes last in 'group by'", row.span,
                          "the sources after it could never apply")
            column = self._grouper_column(row.grouper)
            tests = () if row.cond is None else self.ctx.provider_tests[id(row.cond)]
            if column is None or tests is None:
                self.ok = False
                continue
            sources.append(PP.GroupSource(column, tests))
        self.kw["group_sources"] = tuple(sources)
        self.kw["group_column"] = "+".join(src.column for src in sources)

    def s_Budget(self, s):
        """``budget X`` or ``budget X per head for N insured`` (a budget that scales with
        the insured population: X × N fen)."""
        value = literal_value(s.amount, MONEY, self.ctx, "budget")
        if s.insured is not None and value is not None:
            insured = literal_value(s.insured, INT, self.ctx, "insured persons")
            value = None if insured is None else value * insured
            if value is not None and value >= 1 << 63:  # no arithmetic wraps
                self.ctx.report(error("E215", f"budget {value} fen is out of range",
                                      s.span, "a budget is below 9.2 × 10^16 yuan"))
                value = None
        self.ok &= value is not None
        self.kw["budget"] = value

    def s_BudgetFrom(self, s):
        growth = self.ratio(s.growth, "growth")
        rows = rows_of(self.ctx, s.csv)
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
        rows = self.table_rows(s.csv)
        if rows is None:
            return
        out = []
        for n, cells in rows:
            month = cells["month"].strip()
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
                self.fail("E507", f"{at(s.csv, n)}: month {month!r} is not YYYY-MM",
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
            rows = rows_of(self.ctx, ref)
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
                    self.fail("E507", f"{at(ref, n)}: group {cells['group']!r} is "
                              f"listed twice", ref.span, f"it is first in {first[cells['group']]}")
                    continue
                first[cells["group"]] = at(ref, n)
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
            key = claim_value(row.keys[0], t, self.ctx)
            k = self.ratio(row.value, "coefficient") if isinstance(row.value, ast.Number) else None
            if key is None or k is None:
                self.ok = False
                continue
            out.extend((str(key), g, k) for g in groups)
        self.kw["coefficients"] = tuple(out)

    def _coefficients_csv(self, s):
        col = s.column.name
        rows = self.table_rows(s.csv)
        if rows is None:
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
        t = column_type(s.column, self.ctx)
        if t is not None and t.kind != BOOL:
            self.fail("E502", f"column '{s.column.name}' is {t.kind}, not a flag", s.column.span)
        self.kw["incomplete_column"] = s.column.name

    def s_BedDay(self, s):
        rows = self.table_rows(s.csv)
        if rows is None:
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
            first = literal_value(band.lo, INT, self.ctx, "day")
            last = None if band.hi is None else literal_value(band.hi, INT, self.ctx, "day")
            factor = self.ratio(band.rate, "day factor")
            if first != expect or (last is not None and last < first):
                self.fail("E509", f"day tiers run on from day {expect}", band.span)
            expect = (last or 0) + 1
            tiers.append(PP.DayTier(first, last, factor))
        per_day = self.kw.get("bed_day", PP.BedDay(())).per_day
        self.kw["bed_day"] = PP.BedDay(per_day, tuple(tiers))

    def s_Readmission(self, s):
        days = literal_value(s.days, INT, self.ctx, "readmission")
        share = RATIO_SCALE // 2 if s.share is None else self.ratio(s.share, "readmission")
        self.ok &= days is not None
        self.kw["readmission"] = PP.Readmission(days or 0, share or 0)

    def s_Adjust(self, s):
        factor = self.ratio(s.factor, "adjustment")
        tests = self.ctx.provider_tests[id(s.cond)]
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
            per_head = literal_value(s.per_head, MONEY, self.ctx, "control total")
            insured = literal_value(s.insured, INT, self.ctx, "insured persons")
            self.ok &= per_head is not None and insured is not None
        self.kw["sharing"] = PP.RiskSharing(keep or 0, bear or 0, per_head, insured or 0)

    def table_rows(self, csv):
        """The table's rows as (line, cells); None (and this statement failed) when the file
        cannot be read — rows_of has reported why."""
        rows = rows_of(self.ctx, csv)
        if rows is None:
            self.ok = False
        return rows

    def rows_once_each(self, csv, key: str, noun: str):
        """The rows of a table keyed by ``key`` as (line, key, cells); a row without a key or
        with a key seen before is an E507 and left out. None when the table cannot be read."""
        rows = self.table_rows(csv)
        if rows is None:
            return None
        kept, first = [], {}
        for n, cells in rows:
            k = cells[key]
            if not k:
                self.fail("E507", f"{at(csv, n)}: no {key}", csv.span)
            elif k in first:
                self.fail("E507", f"{at(csv, n)}: {noun} {k!r} is listed twice", csv.span,
                          f"it is first on line {first[k]}; keep one row")
            else:
                first[k] = n
                kept.append((n, k, cells))
        return kept

    def s_SpecialReview(self, s):
        """特病单议: claim_id -> final points (point-method.md §2), one row per claim."""
        rows = self.rows_once_each(s.csv, "claim_id", "claim")
        if rows is None:
            return
        out = []
        for n, cid, cells in rows:
            pts = decimal_cell(cells["points"], PP.POINT_SCALE, s.csv, n, "points", self.ctx)
            self.ok &= pts is not None
            out.append((cid, pts or 0))
        self.kw["review"] = tuple(out)

    def s_FixedPointValue(self, s):
        """固定费率: hospital_id -> yuan per point decided in advance, and the share of its
        year-end shortfall the fund makes up (compensation, default 0%)."""
        rows = self.rows_once_each(s.csv, "hospital_id", "hospital")
        if rows is None:
            return
        out = []
        for n, h, cells in rows:
            rate = decimal_cell(cells["point_value"], 100 * PP.PV_SCALE, s.csv, n,
                                "point_value (yuan)", self.ctx)
            comp = percent_cell(cells.get("compensation") or "0%", s.csv, n, self.ctx)
            if rate is None or comp is None:
                self.ok = False
                continue
            out.append(PP.FixedRate(h, rate, comp))
        self.kw["fixed_rates"] = tuple(out)

    def s_Capitation(self, s):
        per_head = literal_value(s.per_head, MONEY, self.ctx, "capitation")
        rows = rows_of(self.ctx, s.csv)
        if rows is None or per_head is None:
            self.ok = False
            return
        signed = []
        for n, cells in rows:
            p = decimal_cell(cells["persons"], 1, s.csv, n, "persons", self.ctx)
            self.ok &= p is not None
            signed.append((cells["institution"], p))
        self.kw["capitation"] = PP.Capitation(per_head, tuple(signed))

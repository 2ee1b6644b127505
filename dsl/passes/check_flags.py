"""Check the fund-supervision part (``flag`` declarations) and convert it to plan nodes in
``ctx.flags`` (``core.supervision.plan.SupervisionFlag``), which ``lower_plan`` assembles into
``Plan.supervision``.

- names: a flag defined twice (E202); an unknown column in ``applies`` (E201) or a value
  outside its domain (E206); ``applies`` is a provider-style test (E502, as a pool's);
- a flag has exactly one rule (E801: none, or two);
- a rule that reads the claims' group (group mean, weight, listed groups, cc and severe
  shares) in a policy without a pool, so without a DRG per claim (E802);
- a severity that is not notice, review or serious (E803);
- ``effect review`` on a hospital rule, which names no claim to hold (E804);
- each of ``applies``, ``severity``, ``effect`` once (E111); numbers in their units (days and
  case counts whole, factors and weights ratios: E210/E212/E214/E215), a factor or weight
  above 0 and at least 1 case (E805).
"""
from __future__ import annotations

from yibao.core.plan import INT, RATIO
from yibao.core.supervision import plan as SP

from .. import ast
from ..errors import error, suggest
from ..units import UnitError, number_value
from . import Context
from .check_provider_conditions import conjunction

SINGLE = {ast.Applies: "applies", ast.Severity: "severity", ast.Effect: "effect"}


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    ctx.flags = []
    seen = set()
    has_groups = bool(ctx.provider.get("pools"))
    for decl in policy.flags():
        if decl.name.name in seen:
            ctx.report(error("E202", f"flag '{decl.name.name}' is defined twice",
                             decl.name.span))
            continue
        seen.add(decl.name.name)
        flag = _Flag(decl, ctx, has_groups).build()
        if flag is not None:
            ctx.flags.append(flag)
    return policy


class _Flag:
    def __init__(self, decl: ast.FlagDecl, ctx: Context, has_groups: bool):
        self.decl, self.ctx, self.has_groups = decl, ctx, has_groups
        self.ok = True

    def fail(self, code, message, span, hint=None):
        self.ctx.report(error(code, message, span, hint))
        self.ok = False

    def build(self):
        name = self.decl.name.name
        rules = [s for s in self.decl.statements if isinstance(s, ast.FLAG_RULES)]
        if len(rules) != 1:
            span = rules[1].span if rules else self.decl.name.span
            self.fail("E801", f"flag '{name}' has {'no rule' if not rules else 'two rules'}",
                      span, "a flag has exactly one rule (readmission …, los/cost above …, "
                      "stay at most …, group in …, cc share …, severe share …); declare "
                      "another flag for another rule")
        kw = {"name": name, "label": self.decl.label or ""}
        seen = {}
        for stmt in self.decl.statements:
            what = SINGLE.get(type(stmt))
            if what in seen:
                self.fail("E111", f"'{what}' is given twice in flag '{name}'", stmt.span,
                          f"the first is on line {seen[what].line}")
                continue
            if what:
                seen[what] = stmt.span
            self.statement(stmt, kw)
        if rules and "effect" in seen:
            self.check_effect(rules[0], kw, seen)
        if not self.ok or "rule" not in kw:
            return None
        return SP.SupervisionFlag(**kw, source=f"{self.decl.span}")

    def check_effect(self, rule, kw, seen) -> None:
        if isinstance(rule, (ast.FlagCcShare, ast.FlagSevereShare)):
            self.fail("E804", f"flag '{kw['name']}' is a hospital rule; 'effect review' holds "
                      "a claim's payment and a hospital flag names no claim", seen["effect"],
                      "drop the effect, or flag the claims with a claim rule")

    def statement(self, stmt, kw) -> None:
        if isinstance(stmt, ast.Applies):
            tests = conjunction(stmt.cond, self.ctx)
            self.ok &= tests is not None
            kw["applies"] = tests or ()
        elif isinstance(stmt, ast.Severity):
            word = stmt.word.name
            if word not in SP.SEVERITIES:
                self.fail("E803", f"unknown severity '{word}'", stmt.word.span,
                          suggest(word, SP.SEVERITIES) or
                          f"use one of {', '.join(SP.SEVERITIES)}")
            kw["severity"] = word
        elif isinstance(stmt, ast.Effect):
            kw["effect"] = SP.REVIEW
        else:
            rule = self.rule(stmt)
            if rule is not None:
                kw.setdefault("rule", rule)

    # -- rules --

    def number(self, node, kind, what, positive=True):
        try:
            value = number_value(node.text, node.unit, kind)
        except UnitError as exc:
            self.fail(exc.code, f"{what}: {exc.message}", node.span, exc.hint)
            return None
        if value < 0 or (positive and value == 0):
            self.fail("E805", f"{what} must be {'above' if positive else 'at least'} 0, not "
                      f"{node.text}{node.unit or ''}", node.span)
            return None
        return value

    def needs_groups(self, stmt) -> bool:
        if self.has_groups or isinstance(stmt, ast.FlagReadmit):
            return True
        self.fail("E802", f"flag '{self.decl.name.name}' reads the claims' DRG group, but the "
                  "policy has no pool to group them", stmt.span,
                  "the group rules read the provider payment's group: declare a grouper and "
                  "a pool (docs/language.md \"Provider payment\")")
        return False

    def rule(self, s):
        """The rule's node; None (reported) for a bad figure or a group rule without groups
        (its figures are checked either way, so one compile reports both)."""
        rule = self.lowered(s)
        return rule if self.needs_groups(s) else None

    def lowered(self, s):
        if isinstance(s, ast.FlagReadmit):
            days = self.number(s.days, INT, "days", positive=False)
            return None if days is None else SP.Readmit(days, s.same_hospital)
        if isinstance(s, ast.FlagAboveMean):
            factor = self.number(s.factor, RATIO, "factor")
            return None if factor is None else SP.AboveGroupMean(s.measure, factor)
        if isinstance(s, ast.FlagShortStay):
            days = self.number(s.days, INT, "days", positive=False)
            weight = self.number(s.weight, RATIO, "weight")
            return None if None in (days, weight) else SP.ShortStay(days, weight)
        if isinstance(s, ast.FlagGroups):
            return SP.ListedGroups(tuple(sorted({self.group_code(g) for g in s.groups})))
        return self.share_rule(s)

    def group_code(self, node) -> str:
        if isinstance(node, ast.Str):
            return node.value
        if isinstance(node, ast.Name):
            return node.name
        return node.text if isinstance(node, ast.Number) else str(node)

    def share_rule(self, s):
        factor = self.number(s.factor, RATIO, "factor")
        cases = 1 if s.min_cases is None else self.number(s.min_cases, INT, "cases")
        if isinstance(s, ast.FlagCcShare):
            return None if None in (factor, cases) else SP.CcShare(factor, cases)
        weight = self.number(s.weight, RATIO, "weight")
        return None if None in (factor, weight, cases) else SP.SevereShare(factor, weight,
                                                                           cases)

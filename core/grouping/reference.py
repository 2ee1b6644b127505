"""The obvious, slow CHS-DRG grouper: one claim at a time over Python sets (the oracle).

Semantics (the kernel ``_drg.pyx`` must agree on every claim; the rulings are those of
spec/point-method.md §1, see docs/grouping.md):
0. Input: ``inputs`` normalises sex, whole numbers and codes (the same for both groupers).
1. Validation, in this order: principal dx valid (``invalid_principal_dx``), every non-null
   secondary dx valid, every non-null procedure valid, sex 1/2, age ≥ 0 and age_days ≥ 0
   when given, birth_weight ≥ 0 when given. Null list elements are ignored; a null list is
   empty. The principal procedure is the first non-null procedure.
2. MDC: walk ``mdc_order``; an MDC whose entry rule holds is tried; its ADRGs are tried in
   table order and the first whose rule holds wins. An MDC with no matching ADRG falls
   through to the next MDC (as the published grouper does).
   A condition on age_days or birth_weight whose value is unknown (null; weight 0 too) is
   neither true nor false: a rule whose other conditions hold is then *undecided*, and an
   MDC or ADRG none of whose rules holds but one is undecided stops the walk: the claim is
   ``missing_age_days`` (if an undecided rule lacks age_days) or ``missing_birth_weight``,
   never silently another group.
3. DRG: severity 2 if a secondary dx is an MCC whose exclusion table differs from the
   principal's (``MCC[x] != CCE[principal]``; a principal with no CCE row excludes nothing),
   else 1 for such a CC, else 0; the ADRG's suffixes map it (see ``tables.SPLIT_BY_SUFFIXES``).
4. No ADRG anywhere: ``sex_conflict`` when the principal dx is in the other sex's MDC list
   (MDCM for sex 2, MDCN for sex 1), else ``no_adrg`` if some MDC's entry held, else ``no_mdc``.
5. Output: ``mdc``/``adrg``/``drg`` only for a grouped claim; an ungrouped one has ``status``
   (why) and ``stopped_at_mdc``/``stopped_at_adrg`` (where: the first MDC whose entry held
   for ``no_adrg``/``sex_conflict``, the MDC and ADRG being decided for ``missing_*``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from yibao.core.grouping.inputs import normaliser, sex_code, whole_number
from yibao.core.grouping.tables import DrgTables, load_tables, resolve_order

MISSING_DAYS, MISSING_WEIGHT = "missing_age_days", "missing_birth_weight"


class GroupResult(NamedTuple):
    drg: str | None
    status: str
    mdc: str | None
    adrg: str | None
    stopped_at_mdc: str | None = None
    stopped_at_adrg: str | None = None


class Claim(NamedTuple):
    """A claim normalised for grouping (nulls dropped from the code lists)."""
    pdx: str | None
    sdx: tuple
    procs: tuple
    sex: object
    age: object
    age_days: object
    weight: object

    @property
    def pproc(self):
        return self.procs[0] if self.procs else None


@lru_cache(maxsize=8)
def _normalisers(t: DrgTables) -> tuple:
    """(dx, procedure) code normalisers of a tables object (cached by its identity)."""
    return normaliser(t.diagnoses), normaliser(t.procedures)


def normalise(row: dict, t: DrgTables | None = None) -> Claim:
    """The claim as the groupers see it (``inputs``: sex, whole numbers, code spellings)."""
    t = t or load_tables()
    dx, proc = _normalisers(t)

    def codes(key, norm):
        return tuple(norm(c) or c for c in (row.get(key) or ()) if c is not None)
    pdx = row.get("principal_dx")
    return Claim(dx(pdx) or pdx, codes("secondary_dx", dx), codes("procedures", proc),
                 sex_code(row.get("sex")), whole_number(row.get("age")),
                 whole_number(row.get("age_days")), whole_number(row.get("birth_weight")))


def validate(c: Claim, t: DrgTables) -> str | None:
    """The first validation failure, or None."""
    if c.pdx is None or c.pdx not in t.diagnoses:
        return "invalid_principal_dx"
    if any(x not in t.diagnoses for x in c.sdx):
        return "invalid_secondary_dx"
    if any(p not in t.procedures for p in c.procs):
        return "invalid_procedure"
    if c.sex not in (1, 2):
        return "invalid_sex"
    if c.age is None or c.age < 0 or (c.age_days is not None and c.age_days < 0):
        return "invalid_age"
    if c.weight is not None and c.weight < 0:
        return "invalid_birth_weight"
    return None


def check(cond: list, c: Claim, t: DrgTables):
    """One rule condition (see data/chs_drg_11/PROVENANCE.md for the kinds): True, False,
    or the missing-value status when it reads an unknown age_days / birth weight."""
    kind, arg = cond
    if kind == "pdx_in":
        return c.pdx in t.dx_sets[arg]
    if kind == "anydx_in":
        s = t.dx_sets[arg]
        return c.pdx in s or any(x in s for x in c.sdx)
    if kind == "pproc_in":
        return c.pproc is not None and c.pproc in t.proc_sets[arg]
    if kind == "anyproc_in":
        s = t.proc_sets[arg]
        return any(p in s for p in c.procs)
    if kind == "pproc_or":
        return c.pproc is not None and c.pproc in t.or_procedures
    if kind == "no_or_proc":              # 且无手术: no OR procedure among all of them
        return not any(p in t.or_procedures for p in c.procs)
    if kind == "sex_eq":
        return c.sex == arg
    if kind == "age_eq":
        return c.age == arg
    if kind in ("age_days_lt", "age_days_ge"):
        if c.age_days is None:
            return MISSING_DAYS
        return c.age_days < arg if kind == "age_days_lt" else c.age_days >= arg
    if kind in ("weight_lt", "weight_ge"):
        if not c.weight:                   # null or 0: not recorded
            return MISSING_WEIGHT
        return c.weight < arg if kind == "weight_lt" else c.weight >= arg
    if kind == "trauma_regions_ge":
        return multiple_trauma(c, t, arg)
    raise ValueError(f"unknown rule condition {kind!r}")


def multiple_trauma(c: Claim, t: DrgTables, n: int) -> bool:
    """At least ``n`` different trauma codes in at least ``n`` different body regions, one
    region per code (a code listed under two regions still counts once). For n = 2 that is:
    two different codes with a region, and two regions among them."""
    codes = {dx for dx in (c.pdx, *c.sdx) if t.trauma_regions.get(dx)}
    regions = {r for dx in codes for r in t.trauma_regions[dx]}
    return len(codes) >= n and len(regions) >= n


def rule_state(rule: list, c: Claim, t: DrgTables):
    """True, False, or the set of missing-value statuses that leave the rule undecided."""
    missing = set()
    for cond in rule:
        got = check(cond, c, t)
        if got is False:
            return False
        if got is not True:
            missing.add(got)
    return frozenset(missing) or True


def first_rule(rules: list, c: Claim, t: DrgTables):
    """(the first rule that holds or None, missing-value statuses of undecided rules)."""
    missing = set()
    for rule in rules:
        state = rule_state(rule, c, t)
        if state is True:
            return rule, frozenset()
        if state:
            missing |= state
    return None, frozenset(missing)


def _missing_status(missing) -> str:
    return MISSING_DAYS if MISSING_DAYS in missing else MISSING_WEIGHT


def severity(c: Claim, t: DrgTables) -> tuple[int, str | None]:
    """(2 MCC / 1 CC / 0, the secondary dx that gave it)."""
    own = t.cce.get(c.pdx)
    best, why = 0, None
    for x in c.sdx:
        if x in t.mcc and t.mcc[x] != own:
            return 2, x
        if best == 0 and x in t.cc and t.cc[x] != own:
            best, why = 1, x
    return best, why


def _no_group(c: Claim, t: DrgTables, first_mdc) -> GroupResult:
    other = {1: "MDCN", 2: "MDCM"}[c.sex]
    if other in t.dx_sets and c.pdx in t.dx_sets[other]:
        return GroupResult(None, "sex_conflict", None, None, first_mdc)
    return GroupResult(None, "no_adrg" if first_mdc else "no_mdc", None, None, first_mdc)


class _Undecided(Exception):
    """The walk stopped at an MDC / ADRG whose match needs a value the claim lacks."""

    def __init__(self, status: str, mdc: str, adrg: str | None):
        super().__init__(status)
        self.result = GroupResult(None, status, None, None, mdc, adrg)


def _decide(rules: list, c: Claim, t: DrgTables, mdc: str, adrg: str | None):
    rule, missing = first_rule(rules, c, t)
    if rule is None and missing:
        raise _Undecided(_missing_status(missing), mdc, adrg)
    return rule


def _walk(c: Claim, t: DrgTables, order, trace=None):
    """(first MDC whose entry held, matching ADRG or None); append (step, code, rule) to
    ``trace`` when given; raises ``_Undecided`` when a needed value is missing."""
    first_mdc = None
    for mdc in order:
        spec = t.scheme["mdc"][mdc]
        rule = _decide(spec["entry"], c, t, mdc, None)
        if rule is None:
            continue
        first_mdc = first_mdc or mdc
        if trace is not None:
            trace.append({"step": "mdc", "code": mdc, "rule": rule})
        for adrg in spec["adrgs"]:
            rule = _decide(t.scheme["adrg"][adrg]["rules"], c, t, mdc, adrg)
            if rule is not None:
                if trace is not None:
                    trace.append({"step": "adrg", "code": adrg, "rule": rule})
                return mdc, adrg
        if trace is not None:
            trace.append({"step": "mdc_no_adrg", "code": mdc, "rule": None})
    return first_mdc, None


def group_claim(row: dict, tables: DrgTables | None = None, mdc_order=None,
                trace: list | None = None) -> GroupResult:
    """Group one claim (a dict with the ``group_drg`` input columns)."""
    t = tables or load_tables()
    order = resolve_order(t, mdc_order)
    c = normalise(row, t)
    bad = validate(c, t)
    if bad:
        if trace is not None:
            trace.append({"step": "validate", "code": bad, "rule": None})
        return GroupResult(None, bad, None, None)
    try:
        mdc, adrg = _walk(c, t, order, trace)
    except _Undecided as stop:
        if trace is not None:
            trace.append({"step": "undecided", "code": stop.result.stopped_at_adrg
                          or stop.result.stopped_at_mdc, "rule": stop.result.status})
        return stop.result
    if adrg is None:
        return _no_group(c, t, mdc)
    sev, why = severity(c, t)
    drg = t.scheme["adrg"][adrg]["drgs"][t.split_suffix(adrg, sev)]
    if trace is not None:
        trace.append({"step": "drg", "code": drg,
                      "rule": {"severity": ("none", "CC", "MCC")[sev], "secondary_dx": why,
                               "principal_exclusion_table": t.cce.get(c.pdx)}})
    return GroupResult(drg, "ok", mdc, adrg)


def group_claims(rows, tables: DrgTables | None = None, mdc_order=None) -> list[GroupResult]:
    t = tables or load_tables()
    return [group_claim(r, t, mdc_order) for r in rows]


def explain_drg(row: dict, tables: DrgTables | None = None, mdc_order=None) -> list[dict]:
    """The steps that grouped a claim: validation failure, or MDC → ADRG → DRG, each with
    the code chosen and the rule (conditions) that matched; last step is the result."""
    steps: list[dict] = []
    res = group_claim(row, tables, mdc_order, trace=steps)
    steps.append({"step": "result", "code": res.drg, "rule": None, "status": res.status})
    return steps

"""The obvious, slow CHS-DRG grouper: one claim at a time over Python sets (the oracle).

Semantics (the kernel ``_drg.pyx`` must agree on every claim):
1. Validation, in this order: principal dx valid (``invalid_principal_dx``), every non-null
   secondary dx valid, every non-null procedure valid, sex 1/2, age ≥ 0 and age_days ≥ 0
   when given. Null list elements are ignored; a null list is empty. The principal
   procedure is the first non-null procedure.
2. MDC: walk ``mdc_order``; an MDC whose entry rule holds is tried; its ADRGs are tried in
   table order and the first whose rule holds wins. An MDC with no matching ADRG falls
   through to the next MDC (as the published grouper does).
3. DRG: severity 2 if a secondary dx is an MCC whose exclusion table differs from the
   principal's (``MCC[x] != CCE[principal]``; a principal with no CCE row excludes nothing),
   else 1 for such a CC, else 0; the ADRG's suffixes map it (see ``tables.SPLIT_BY_SUFFIXES``).
4. No ADRG anywhere: ``sex_conflict`` when the principal dx is in the other sex's MDC list
   (MDCM for sex 2, MDCN for sex 1), else ``no_adrg`` if some MDC's entry held, else ``no_mdc``.
"""
from __future__ import annotations

from typing import NamedTuple

from yibao.core.grouping.tables import DrgTables, load_tables, resolve_order


class GroupResult(NamedTuple):
    drg: str | None
    status: str
    mdc: str | None
    adrg: str | None


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


def normalise(row: dict) -> Claim:
    def codes(key):
        return tuple(c for c in (row.get(key) or ()) if c is not None)
    return Claim(row.get("principal_dx"), codes("secondary_dx"), codes("procedures"),
                 row.get("sex"), row.get("age"), row.get("age_days"), row.get("birth_weight"))


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
    return None


def _known(v) -> bool:
    return v is not None


def _weight_known(v) -> bool:
    return v is not None and v > 0


def check(cond: list, c: Claim, t: DrgTables) -> bool:
    """One rule condition (see data/chs_drg_11/PROVENANCE.md for the kinds)."""
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
    if kind == "no_pproc_or":
        return not (c.pproc is not None and c.pproc in t.or_procedures)
    if kind == "sex_eq":
        return c.sex == arg
    if kind == "age_eq":
        return c.age == arg
    if kind == "age_days_lt":
        return _known(c.age_days) and c.age_days < arg
    if kind == "age_days_ge":
        return _known(c.age_days) and c.age_days >= arg
    if kind == "weight_lt":
        return _weight_known(c.weight) and c.weight < arg
    if kind == "weight_ge":
        return _weight_known(c.weight) and c.weight >= arg
    if kind == "trauma_regions_ge":
        return len(trauma_regions(c, t)) >= arg
    raise ValueError(f"unknown rule condition {kind!r}")


def trauma_regions(c: Claim, t: DrgTables) -> set:
    regions = set()
    for dx in (c.pdx, *c.sdx):
        regions.update(t.trauma_regions.get(dx, ()))
    return regions


def first_rule(rules: list, c: Claim, t: DrgTables):
    """The first rule (list of conditions) that holds, or None."""
    for rule in rules:
        if all(check(cond, c, t) for cond in rule):
            return rule
    return None


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
        return GroupResult(None, "sex_conflict", first_mdc, None)
    return GroupResult(None, "no_adrg" if first_mdc else "no_mdc", first_mdc, None)


def _walk(c: Claim, t: DrgTables, order, trace=None):
    """Yield the grouping; append (step, code, rule) to ``trace`` when given."""
    first_mdc = None
    for mdc in order:
        spec = t.scheme["mdc"][mdc]
        rule = first_rule(spec["entry"], c, t)
        if rule is None:
            continue
        first_mdc = first_mdc or mdc
        if trace is not None:
            trace.append({"step": "mdc", "code": mdc, "rule": rule})
        for adrg in spec["adrgs"]:
            rule = first_rule(t.scheme["adrg"][adrg]["rules"], c, t)
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
    c = normalise(row)
    bad = validate(c, t)
    if bad:
        if trace is not None:
            trace.append({"step": "validate", "code": bad, "rule": None})
        return GroupResult(None, bad, None, None)
    mdc, adrg = _walk(c, t, order, trace)
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

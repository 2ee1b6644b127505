"""Records built from the real tables to reach each ADRG's DRGs (for the reachability test).

For an ADRG, each of its rules, together with its MDC's entry rule, is turned into claims
that satisfy the rule: principal dx from the rule's and the MDC's lists, principal
procedure from the rule's list (or any operating-room procedure), the sets every
``anyproc_in`` / ``anydx_in`` names, sex, age, age in days and birth weight as the
conditions say. Each claim then gets no secondary dx, an MCC, or a CC (not an MCC) outside
the principal's exclusion table, so each of the ADRG's DRGs has candidates. First match
means an earlier MDC or ADRG may take a candidate; many principal dx and procedures are
tried so that only a table fact can leave a DRG unreached.
"""
from __future__ import annotations

from functools import lru_cache

WIDTH = 12                 # principal dx / procedure candidates tried per rule


def spread(codes, n=WIDTH) -> list:
    """``n`` codes spread evenly over a sorted list (deterministic)."""
    codes = sorted(codes)
    if len(codes) <= n:
        return codes
    step = len(codes) / n
    return [codes[int(i * step)] for i in range(n)]


def preferred(codes, shadow, n=WIDTH) -> list:
    """Codes outside ``shadow`` (what an earlier MDC / ADRG would take) first, then others."""
    free = [c for c in codes if c not in shadow]
    return spread(free, n) + spread([c for c in codes if c in shadow], n // 3)


@lru_cache(maxsize=2)
def _severity_pool(t):
    return spread(t.mcc, 400), spread([c for c in t.cc if c not in t.mcc], 400)


def _severity_dx(t, pdx):
    """(None, MCCs, CCs that are not MCCs) whose exclusion table differs from the principal's."""
    own = t.cce.get(pdx)
    mccs, ccs = _severity_pool(t)
    mcc = [c for c in mccs if t.mcc[c] != own][:2]
    cc = [c for c in ccs if t.cc[c] != own][:2]
    return [[]] + [[c] for c in mcc] + [[c] for c in cc]


@lru_cache(maxsize=512)
def _shadows(t, adrg: str):
    """(dx, procedures) an earlier MDC or an earlier ADRG of the same MDC would take."""
    mdc = t.scheme["adrg"][adrg]["mdc"]
    dx, proc = set(), set()
    for m in t.scheme["mdc_order"]:
        if m == mdc:
            break
        if m in t.dx_sets:
            dx |= t.dx_sets[m]
    for other in t.scheme["mdc"]["MDCA"]["adrgs"] + t.scheme["mdc"][mdc]["adrgs"]:
        if other == adrg:
            break
        for rule in t.scheme["adrg"][other]["rules"]:
            for kind, arg in rule:
                if kind == "pdx_in":
                    dx |= t.dx_sets[arg]
                elif kind == "pproc_in":
                    proc |= t.proc_sets[arg]
    return frozenset(dx), frozenset(proc)


def _entry_dx(t, mdc):
    rule = t.scheme["mdc"][mdc]["entry"][0]
    sets = [t.dx_sets[a] for k, a in rule if k == "pdx_in"]
    return sets[0] if sets else None


def _conditions(rule, t):
    """(pdx set or None, principal procedure set or None, extra procs, extra dx, attrs)."""
    pdx, pproc, procs, dxs = None, None, [], []
    attrs = {"sex": 1, "age": 40, "age_days": 10000, "birth_weight": None, "no_or": False}
    for kind, arg in rule:
        if kind == "pdx_in":
            pdx = t.dx_sets[arg] if pdx is None else pdx & t.dx_sets[arg]
        elif kind == "pproc_in":
            pproc = t.proc_sets[arg]
        elif kind == "anyproc_in":
            procs.append(spread(t.proc_sets[arg], 3))
        elif kind == "anydx_in":
            dxs.append(spread(t.dx_sets[arg], 3))
        elif kind == "pproc_or" and pproc is None:
            pproc = t.or_procedures
        elif kind == "no_or_proc":
            attrs["no_or"] = True
        elif kind == "sex_eq":
            attrs["sex"] = arg
        elif kind == "age_eq":
            attrs["age"], attrs["age_days"] = arg, 10
        elif kind == "age_days_lt":
            attrs["age_days"] = min(attrs["age_days"], arg - 1)
        elif kind == "age_days_ge":
            attrs["age_days"] = arg
        elif kind == "weight_lt":
            attrs["birth_weight"] = arg - 1
        elif kind == "weight_ge":
            attrs["birth_weight"] = max(attrs["birth_weight"] or 0, arg)
    if attrs["age_days"] < 365:
        attrs["age"] = 0
    return pdx, pproc, procs, dxs, attrs


def _trauma_pairs(t, pdx_codes):
    """(principal, a second trauma code of another region) for MDCZ."""
    out = []
    codes = sorted(t.trauma_regions)
    for p in pdx_codes:
        mine = set(t.trauma_regions.get(p, ()))
        other = next((c for c in codes if c != p and set(t.trauma_regions[c]) - mine), None)
        if mine and other:
            out.append((p, [other]))
    return out


def candidates(t, adrg: str) -> list[dict]:
    """Claims meant to land in ``adrg`` (one per rule × dx × procedure × severity)."""
    spec = t.scheme["adrg"][adrg]
    mdc = spec["mdc"]
    entry = t.scheme["mdc"][mdc]["entry"][0]
    rows = []
    for rule in spec["rules"]:
        pdx_set, pproc, procs, dxs, attrs = _conditions(list(entry) + list(rule), t)
        if pdx_set is None:
            pdx_set = _entry_dx(t, mdc) or t.diagnoses
        if mdc == "MDCN":
            attrs["sex"] = 2
        dx_shadow, proc_shadow = _shadows(t, adrg)
        pdx_codes = preferred(pdx_set, dx_shadow)
        if any(k == "trauma_regions_ge" for k, _ in entry):
            pairs = _trauma_pairs(t, pdx_codes)
        else:
            pairs = [(p, []) for p in pdx_codes]
        principal_procs = preferred(pproc, proc_shadow) if pproc is not None else [None]
        extra_procs = [p for group in procs for p in group[:1]]
        extra_dx = [d for group in dxs for d in group[:1]]
        for i, (pdx, sdx) in enumerate(pairs):
            for j, pp in enumerate(principal_procs):
                if pp is None and procs:
                    plist = list(extra_procs)
                else:
                    plist = ([pp] if pp else []) + extra_procs
                if attrs["no_or"] and any(p in t.or_procedures for p in plist):
                    continue
                for sev in _severity_dx(t, pdx):
                    rows.append({"principal_dx": pdx, "secondary_dx": sdx + extra_dx + sev,
                                 "procedures": plist, "sex": attrs["sex"],
                                 "age": attrs["age"], "age_days": attrs["age_days"],
                                 "birth_weight": attrs["birth_weight"]})
                if j >= 4 and i >= 4:
                    break
    return rows

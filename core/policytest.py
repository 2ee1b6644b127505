"""Policy tests: hand-checked cases beside a policy (``tests.yaml``), run like ``opa test``.

A case file is a YAML list; each case has a ``name``, ``claims`` (claim records, money in yuan
as YAML numbers or strings, read exactly with ``Decimal(str(x))``) and ``expect``:
``{claim_id: {column: value}}`` where a column is a layer, ``<layer>_deductible`` or
``self_pay`` (yuan), or one of the provider-payment columns ``pool``, ``group``,
``grouping_status``, ``case_class`` (text) and ``points`` (points, exact to 4 decimals).
Claim fields not given take neutral defaults (tier2, inpatient, hospital H1, not TCM,
admitted on the discharge date, no diagnoses).

A case may also state ``hospitals: {pool: {hospital_id: {column: value}}}`` and
``pools: {pool: {column: value}}``: the case's claims settled as one provider year under the
policy's pools (``provider.settle_provider_year``, the policy's budgets as written), compared
with the hospitals and pools outputs (docs/outputs.md): money columns (``value``,
``hifp_pay``, ``psn_part_amt``, ``shared_amt``, ``budget_deviation`` …) in yuan, ``points``
and ``points_pv`` in points, ``claims`` and ``pending_review_claims`` as counts,
``point_value`` as its exact text ("num/den" fen per point).

``run_cases`` settles each case as its own batch on the kernel (``engine.settle``) and
compares; a mismatch names the layer (or the pool and hospital). Coverage comes from the tracer (``explain.py``) over the
same cases: layers that never applied, table rows never matched, bands never entered.
Missing expectations are not failures; a claim the engine rejects is (its reason is shown).

For a policy with ``flag`` rules (docs/supervision.md) a case may state ``flags: {claim or
hospital id: [rule, …]}``, the rules that flag it (exactly; ``[]`` for none), and expect the
``pending_review`` column (yuan) that ``effect review`` adds; the case's claims are
supervised as one batch.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pyarrow as pa

from .describe import format_value
from .engine import settle
from .explain import explain_claims
from .claims import LTC_COLUMNS, STANDARD_SCHEMA
from .plan import BOOL, DATE, INT, MONEY, RATIO, Bands, Plan
from .errors import YibaoError

STANDARD = {f.name: f.type for f in STANDARD_SCHEMA}  # core/claims.py
DEFAULTS = {"tier": "tier2", "low_income": False, "setting": "inpatient", "hospital_id": "H1",
            "hospital_tcm": False, "principal_dx": "K85.9", "secondary_dx": [],
            "procedures": []}
KIND_TYPES = {MONEY: pa.int64(), RATIO: pa.int64(), INT: pa.int64(), BOOL: pa.bool_(),
              DATE: pa.date32()}


class CaseFileError(YibaoError, ValueError):
    """A tests.yaml that cannot be read (the message names the case and field)."""


def fen(yuan) -> int:
    """Yuan as written in YAML (int, float, str, Decimal) to int fen, exactly."""
    value = Decimal(str(yuan)) * 100
    if value != value.to_integral_value():
        raise CaseFileError(f"{yuan} yuan has more than 2 decimals")
    return int(value)


def _date(value) -> datetime.date:
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value))


def _column(name: str, typ, values: list) -> pa.Array:
    if name in ("total", "in_scope", "self_first") or typ == "money":
        return pa.array([None if v is None else fen(v) for v in values], pa.int64())
    if pa.types.is_date32(typ):
        return pa.array([None if v is None else _date(v) for v in values], typ)
    if pa.types.is_dictionary(typ):
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, typ)


def claims_table(rows: list, plan: Plan) -> pa.Table:
    """Claim records (dicts, money in yuan) as a batch of the claim-record schema plus the
    policy's own attribute columns (typed from the plan; money ones in yuan too)."""
    def values(name):
        return [r.get(name, DEFAULTS.get(name)) for r in rows]

    arrays = {}
    for name, typ in STANDARD.items():
        vals = values(name)
        if name == "admit_date":
            vals = [r.get("admit_date", r.get("discharge_date")) for r in rows]
        if name == "los":
            vals = [r.get("los", max(1, (_date(r["discharge_date"]) - _date(
                r.get("admit_date", r["discharge_date"]))).days)) for r in rows]
        arrays[name] = _column(name, typ, vals)
    for col in plan.columns:
        if col.name not in arrays:
            typ = "money" if col.type.kind == MONEY else KIND_TYPES.get(col.type.kind, pa.string())
            arrays[col.name] = _column(col.name, typ, values(col.name))
    for name, typ in _provider_columns(plan).items():  # sex, age, adl_score, signed_inst …
        if name not in arrays:
            arrays[name] = _column(name, typ, values(name))
    return pa.table(arrays)


def _provider_columns(plan: Plan) -> dict:
    """Claim columns the groupers and pools read (``provider.needed_columns``)."""
    if plan.provider is None and not plan.groupers:
        return {}
    from .provider import needed_columns
    return needed_columns(plan)


# -- cases -----------------------------------------------------------------------------------


TEXT_COLUMNS = ("pool", "group", "grouping_status", "case_class", "point_value")
POINT_COLUMNS = ("points", "points_pv")
COUNT_COLUMNS = ("claims", "pending_review_claims")


def points_value(value) -> int:
    """Points as written (12.5) to points ×10^4, exactly."""
    scaled = Decimal(str(value)) * 10_000
    if scaled != scaled.to_integral_value():
        raise CaseFileError(f"{value} points has more than 4 decimals")
    return int(scaled)


def expected_value(column: str, value):
    """A value as written in an expectation, in engine units: text, points ×10^4, a count,
    or yuan to fen."""
    if column in TEXT_COLUMNS:
        if value is not None and not isinstance(value, str):
            # YAML reads 0101 as 65 and 0000 as 0: a code must be written as text
            raise CaseFileError(f"{column} {value!r} is not text: quote it ('{value}')")
        return value
    if column in POINT_COLUMNS:
        return points_value(value)
    if column in COUNT_COLUMNS:
        if not isinstance(value, int):
            raise CaseFileError(f"{column} is a count, not {value!r}")
        return value
    return fen(value)


def show(column: str, value) -> str:
    """A value in the units a case writes it (for mismatch messages)."""
    from .describe import format_money
    if value is None:
        return "nothing"
    if column in TEXT_COLUMNS or column in COUNT_COLUMNS or not isinstance(value, int):
        return str(value)
    if column in POINT_COLUMNS:
        return f"{Decimal(value) / 10_000:.4f} points"
    return format_money(value)


@dataclass(frozen=True)
class Case:
    name: str
    claims: tuple  # claim dicts as written
    expect: tuple  # ((claim_id, column, engine value), ...)
    hospitals: tuple = ()  # ((pool, hospital_id, column, engine value), ...)
    pools: tuple = ()  # ((pool, column, engine value), ...)
    flags: tuple = ()  # ((claim or hospital id, (rule, ...) sorted), ...): supervision
    where: str = ""  # "tests.yaml:12": the file and line the case starts on
    lines: tuple = ()  # ((what, line), ...): ("claim 2 in_scpoe", 14), ("expect A1 basic", 20)

    def line_of(self, what: str) -> str:
        """``file:line`` of a claim field or an expected column, else the case's own."""
        found = dict(self.lines).get(what)
        return f"{self.where.rpartition(':')[0]}:{found}" if found else self.where


def load_cases(path) -> list:
    """The cases of a tests.yaml (a city folder's, or a file), each knowing its file and
    line. A YAML syntax error is one CaseFileError line: ``FILE:LINE:COL: …``."""
    import yaml
    path = Path(path)
    if path.is_dir():
        path = path / "tests.yaml"
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or []
        nodes = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise CaseFileError(_yaml_error(path, exc)) from None
    if not isinstance(data, list):
        raise CaseFileError(f"{path}: expected a list of cases")
    items = nodes.value if nodes is not None else []
    return [_case(path, i, c, _node_lines(items[i - 1]))
            for i, c in enumerate(data, 1)]


def _yaml_error(path, exc) -> str:
    """One line: where the YAML parser stopped and why."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return " ".join(f"{where}: YAML syntax error: {problem}"
                    f"{' (' + context + ')' if context else ''}".split())


def _node_lines(node) -> tuple:
    """(case line, ((what, line), …)) for one case's YAML node: each claim field as
    ``claim N FIELD`` and each expected column as ``expect CLAIM_ID COLUMN``."""
    import yaml
    lines = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "claims" and isinstance(value, yaml.SequenceNode):
                for n, claim in enumerate(value.value, 1):
                    lines += [(f"claim {n} {k.value}", k.start_mark.line + 1)
                              for k, _ in getattr(claim, "value", ()) if isinstance(k, yaml.ScalarNode)]
            if key.value == "expect" and isinstance(value, yaml.MappingNode):
                for cid, cols in value.value:
                    lines += [(f"expect {cid.value} {k.value}", k.start_mark.line + 1)
                              for k, _ in getattr(cols, "value", ()) if isinstance(k, yaml.ScalarNode)]
    return node.start_mark.line + 1, tuple(lines)


def _case(path, i, c, lines=(0, ())) -> Case:
    where = f"{path}:{lines[0]}"
    if not isinstance(c, dict) or "claims" not in c or not (
            "expect" in c or "hospitals" in c or "pools" in c or "flags" in c):
        raise CaseFileError(f"{where}: case {i} needs name, claims and expect (or hospitals, "
                            "pools)")
    name = str(c.get("name", f"case {i}"))
    try:
        expect = tuple((str(cid), col, expected_value(col, v))
                       for cid, cols in (c.get("expect") or {}).items()
                       for col, v in cols.items())
        hospitals = tuple((str(pool), str(h), col, expected_value(col, v))
                          for pool, rows in (c.get("hospitals") or {}).items()
                          for h, cols in rows.items() for col, v in cols.items())
        pools = tuple((str(pool), col, expected_value(col, v))
                      for pool, cols in (c.get("pools") or {}).items() for col, v in cols.items())
        flags = tuple((str(k), tuple(sorted(map(str, v or ()))))
                      for k, v in (c.get("flags") or {}).items())
    except (CaseFileError, AttributeError, ArithmeticError, TypeError) as exc:
        raise CaseFileError(f"{where}: case {i} ({name}): {exc}") from None
    return Case(name, tuple(c["claims"]), expect, hospitals, pools, flags, where, lines[1])


# -- checking a case against the policy -------------------------------------------------------

def claim_fields(plan: Plan) -> set:
    """Every field a case's claim may set: the claim-record schema (long-term care's optional
    columns too), the policy's attributes and what its groupers and pools read."""
    return (set(STANDARD) | {name for name, _ in LTC_COLUMNS} | {c.name for c in plan.columns}
            | set(_provider_columns(plan)))


def unknown_fields(plan: Plan, case: Case) -> list:
    """One line per claim field the policy does not know (a misspelling would otherwise be
    dropped silently and the claim settled without it), with its line and a did-you-mean."""
    known = claim_fields(plan)
    out = []
    for n, claim in enumerate(case.claims, 1):
        for name in claim if isinstance(claim, dict) else ():
            if str(name) not in known:
                out.append(f"{case.line_of(f'claim {n} {name}')}: claim field {name!r} is not "
                           f"a claim column{_did_you_mean(str(name), known)}")
    return out


def _did_you_mean(name: str, candidates) -> str:
    import difflib
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class Mismatch:
    claim_id: str
    column: str
    layer: str  # the layer the column belongs to ("" for self_pay)
    label: str
    expected: object  # engine units: int fen, points ×10^4, a count, or text
    actual: object  # the same units, or None when the claim was not settled
    note: str = ""

    def shown(self, value) -> str:
        """``value`` (expected or actual) in the units the case wrote it."""
        return show(self.column, value)


@dataclass
class CaseResult:
    case: Case
    mismatches: list = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.mismatches and not self.error


@dataclass
class Coverage:
    """What no case exercised: layer names, (table, key text), (layer, band text)."""
    layers: list
    rows: list
    bands: list

    @property
    def complete(self) -> bool:
        return not (self.layers or self.rows or self.bands)


def _layer_of(plan: Plan, column: str):
    for layer in plan.layers:
        if column in (layer.name, layer.name + "_deductible"):
            return layer
    return None


def run_case(plan: Plan, case: Case, registry=None, settle_fn=None) -> CaseResult:
    """Settle one case's claims as one batch and compare with its expectations."""
    result = CaseResult(case)
    unknown = unknown_fields(plan, case)
    if unknown:
        result.error = "; ".join(unknown)
        return result
    try:
        table = claims_table(list(case.claims), plan)
        batch = (settle_fn or settle)(plan, table, registry)
    except Exception as exc:  # a case that cannot run is a failed case, with the reason
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    results = batch.results
    supervised = _supervised(plan, table, results)
    if supervised is not None:  # flags with effect review hold payments: pending_review
        results = supervised.apply(results)
    got = {r["claim_id"]: r for r in results.to_pylist()}
    why = {r["claim_id"]: f"{r['reason']}: {r['message']}" for r in batch.rejects.to_pylist()}
    for cid, column, want in case.expect:
        layer = _layer_of(plan, column)
        actual = got.get(cid, {}).get(column)
        if cid in got and column not in got[cid]:
            note = (f"{case.line_of(f'expect {cid} {column}')}: no column {column!r} in the "
                    f"results{_did_you_mean(column, got[cid])}")
        else:
            note = why.get(cid, "" if cid in got else "claim not in the case")
        if actual != want:
            result.mismatches.append(Mismatch(cid, column, layer.name if layer else "",
                                              layer.label if layer else "", want, actual, note))
    if case.hospitals or case.pools:
        result.mismatches += _provider_mismatches(plan, case, table, batch.results)
    if case.flags:
        result.mismatches += _flag_mismatches(case, supervised)
    return result


def _supervised(plan: Plan, table: pa.Table, results: pa.Table):
    """The case's claims supervised as one batch (None for a policy without flags)."""
    from .supervision import evaluate
    return evaluate(plan, table, results)


def _flag_mismatches(case: Case, supervised) -> list:
    """``flags: {claim or hospital id: [rule, ...]}``: the rules that flag it, exactly."""
    raised = {}
    for row in (supervised.flags.to_pylist() if supervised is not None else ()):
        key = row["claim_id"] if row["claim_id"] is not None else row["hospital_id"]
        raised.setdefault(key, []).append(row["rule"])
    out = []
    for key, want in case.flags:
        actual = tuple(sorted(raised.get(key, ())))
        if actual != want:
            out.append(Mismatch(key, "flags", "", "supervision", ", ".join(want) or "none",
                                ", ".join(actual) or "none",
                                "" if supervised is not None else "the policy has no flags"))
    return out


def _provider_mismatches(plan: Plan, case: Case, table: pa.Table, results: pa.Table) -> list:
    """The case's provider year against its ``hospitals`` and ``pools`` expectations."""
    from .provider import settle_provider_year
    wanted = [(pool, h, col, want) for pool, h, col, want in case.hospitals] + [
        (pool, None, col, want) for pool, col, want in case.pools]
    if plan.provider is None:
        return [Mismatch(pool if h is None else f"{pool}:{h}", col, "", "", want, None,
                         "the policy has no pools") for pool, h, col, want in wanted]
    hospitals, pools = settle_provider_year(plan, table, results)
    rows = {(r["pool"], r["fixmedins_code"]): r for r in hospitals.to_pylist()}
    rows.update({(r["pool"], None): r for r in pools.to_pylist()})
    out = []
    for pool, h, column, want in wanted:
        row = rows.get((pool, h))
        actual = None if row is None else row.get(column)
        what = "pools" if h is None else "hospitals"
        note = ("no such pool" if row is None and h is None else
                "no such hospital in the pool" if row is None else
                f"no column {column!r} in {what}" if column not in row else "")
        if actual != want:
            out.append(Mismatch(pool if h is None else f"{pool}:{h}", column, "",
                                f"pool {pool}", want, actual, note))
    return out


def coverage(plan: Plan, cases, registry=None) -> Coverage:
    """Layers, table rows and bands that no case's claims reached (traced, case by case)."""
    applied, rows, bands = set(), set(), set()
    for case in cases:
        try:
            explained = explain_claims(plan, claims_table(list(case.claims), plan), registry)
        except Exception:  # such a case fails in run_case; it covers nothing
            continue
        for ex in explained.values():
            for t in ex.layers:
                if t.applies:
                    applied.add(t.name)
                rows.update((h.table, h.key) for h in t.lookups)
                rule = t.bands.rule if t.bands is not None else ""  # the band set that paid
                bands.update((t.name, rule, p.index) for p in t.pieces)
    return Coverage(
        [layer.name for layer in plan.layers if layer.name not in applied],
        [(t.name, _key_text(t, key)) for t in plan.tables for key, _ in t.rows
         if (t.name, key) not in rows],
        [(layer.name, rule + _band_text(b)) for layer in plan.layers
         if isinstance(layer.ratio, Bands) for rule, band_set in _band_sets(layer.ratio)
         for i, b in enumerate(band_set) if (layer.name, rule.rstrip(": "), i) not in bands])


def _band_sets(bands: Bands) -> list:
    """(prefix, bands) of the default set ("") and of each `when` set ("when COND: ")."""
    from .describe import expr_text
    return [("", bands.bands)] + [(f"when {expr_text(a.cond)}: ", a.bands) for a in bands.alts]


def _key_text(table, key) -> str:
    return ", ".join(format_value(k, typ) for k, typ in zip(key, table.key_types))


def _band_text(band) -> str:
    from .describe import format_money, format_ratio
    hi = "and above" if band.hi is None else f"to {format_money(band.hi)}"
    return f"{format_money(band.lo)} {hi}: {format_ratio(band.rate)}"


def coverage_share(plans_and_coverage) -> Fraction:
    """The share of coverage items some case exercised, over every version: items are the
    layers (applied), table rows (matched) and bands (entered) of each plan. 1 when a policy
    has none."""
    total = exercised = 0
    for plan, cov in plans_and_coverage:
        items = (len(plan.layers) + sum(len(t.rows) for t in plan.tables)
                 + sum(len(layer.ratio.bands) for layer in plan.layers
                       if isinstance(layer.ratio, Bands)))
        total += items
        exercised += items - len(cov.layers) - len(cov.rows) - len(cov.bands)
    return Fraction(exercised, total) if total else Fraction(1)


def select_cases(cases, expression: str) -> list:
    """The cases whose name matches ``-k EXPRESSION`` as pytest's does: words matched as
    case-insensitive substrings of the name, combined with and, or, not and parentheses."""
    import re
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    if not tokens:
        return list(cases)

    def matches(name: str) -> bool:
        words = [t if t in ("and", "or", "not", "(", ")") else str(t.lower() in name.lower())
                 for t in tokens]
        try:
            return bool(eval(" ".join(words), {"__builtins__": {}}, {}))  # only True/False/ops
        except SyntaxError:
            raise CaseFileError(f"-k {expression!r}: write words joined by and, or, not "
                                "and parentheses") from None
    return [c for c in cases if matches(c.name)]


def run_cases(plan: Plan, cases, registry=None, settle_fn=None) -> tuple:
    """(results per case, coverage)."""
    results = [run_case(plan, c, registry, settle_fn) for c in cases]
    return results, coverage(plan, cases, registry)

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
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from .describe import format_value
from .engine import settle
from .explain import explain_claims
from .claims import STANDARD_SCHEMA
from .plan import BOOL, DATE, INT, MONEY, RATIO, Bands, Plan

STANDARD = {f.name: f.type for f in STANDARD_SCHEMA}  # core/claims.py
DEFAULTS = {"tier": "tier2", "low_income": False, "setting": "inpatient", "hospital_id": "H1",
            "hospital_tcm": False, "principal_dx": "K85.9", "secondary_dx": [],
            "procedures": []}
KIND_TYPES = {MONEY: pa.int64(), RATIO: pa.int64(), INT: pa.int64(), BOOL: pa.bool_(),
              DATE: pa.date32()}


class CaseFileError(ValueError):
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


def load_cases(path) -> list:
    """The cases of a tests.yaml (a city folder's, or a file)."""
    import yaml
    path = Path(path)
    if path.is_dir():
        path = path / "tests.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise CaseFileError(f"{path}: expected a list of cases")
    return [_case(path, i, c) for i, c in enumerate(data, 1)]


def _case(path, i, c) -> Case:
    if not isinstance(c, dict) or "claims" not in c or not (
            "expect" in c or "hospitals" in c or "pools" in c):
        raise CaseFileError(f"{path}: case {i} needs name, claims and expect (or hospitals, "
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
    except (CaseFileError, AttributeError, ArithmeticError) as exc:
        raise CaseFileError(f"{path}: case {i} ({name}): {exc}") from None
    return Case(name, tuple(c["claims"]), expect, hospitals, pools)


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
    try:
        table = claims_table(list(case.claims), plan)
        batch = (settle_fn or settle)(plan, table, registry)
    except Exception as exc:  # a case that cannot run is a failed case, with the reason
        result.error = f"{type(exc).__name__}: {exc}"
        return result
    got = {r["claim_id"]: r for r in batch.results.to_pylist()}
    why = {r["claim_id"]: f"{r['reason']}: {r['message']}" for r in batch.rejects.to_pylist()}
    for cid, column, want in case.expect:
        layer = _layer_of(plan, column)
        actual = got.get(cid, {}).get(column)
        if cid in got and column not in got[cid]:
            note = f"no column {column!r} in the results"
        else:
            note = why.get(cid, "" if cid in got else "claim not in the case")
        if actual != want:
            result.mismatches.append(Mismatch(cid, column, layer.name if layer else "",
                                              layer.label if layer else "", want, actual, note))
    if case.hospitals or case.pools:
        result.mismatches += _provider_mismatches(plan, case, table, batch.results)
    return result


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


def run_cases(plan: Plan, cases, registry=None, settle_fn=None) -> tuple:
    """(results per case, coverage)."""
    results = [run_case(plan, c, registry, settle_fn) for c in cases]
    return results, coverage(plan, cases, registry)

"""Explain a yuan: every step that settled one claim, as the oracle settled it.

Explain is the reference evaluator plus a recorder: ``explain_claims(policy, claims)`` runs
``reference.settle`` with a ``Recorder`` that hears the oracle's steps (core/trace.py: one
event per step) and keeps, for every layer of every claim asked about:

- whether it applied (and the condition), the base with the column and ``paid()`` values that
  formed it;
- the deductible: the amount D (and the table rows behind it), the key's consumption before
  and after this claim, and the earlier claims that consumed it;
- the ratio: the table row that applied (with the table's ``file:line``), or the bands entered
  with their pieces; the exact product and its half-up rounding to the fen;
- every cap and the self-pay limit: room before, use after, and the earlier claims that used it.

The numbers are the oracle's own, so an explanation agrees with ``reference.settle`` by
construction, and with ``engine.settle`` wherever the conformance corpus does (every
golden claim: tests/tools/test_explain.py). ``explain_claim(policy, claims, claim_id)``
settles only the claim's key-mates (the rows sharing an accumulator key with it, transitively,
and the rows sharing their claim ids: core/key_mates.py, which also reads only those from a
claims file), so its cost follows that person's claims, not the batch's. Several versions:
each claim is explained under the version in force on its discharge date, the accounts
carried as settlement carries them. A plan with a provider part: the settle run hands the
recorder to the points oracle, so a claim's case class and points are heard in the same run
(``Recorder.points``) and explain computes none of them.

``explain_rows(policy, rows, claim_id)`` is the same for rows already in plain Python (a key
index's, core/claim_rows.py): the oracle's row entry (``reference.settle_rows``) with the same
recorder, no numpy or pyarrow, for a plan the row entry settles as the batch entry does
(``rows_explainable``).

Empty batch: no explanations. A rejected claim is not explained; ``ExplainError`` says why
(the oracle's reject reason).

Adding a step: an event in core/trace.py that the reference reports, a handler in
``Recorder.HANDLERS`` that files it in the trace, and its lines in the text renderer below.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional

from . import reference, trace
from .trace import CaseClass, ClaimPoints, PointsAdjusted
from .describe import expr_text, format_date, format_money, format_ratio, format_value
from .errors import YibaoError
from .plan import PER_YEAR, RATIO_SCALE, Column, Paid, Plan, walk
from .policy import Policy
from .reference import ClaimEvaluator, _key_value
from .registry import default_registry
from .key_mates import (ClaimIds, accumulator_keys, explain_columns,  # noqa: F401
                        key_mate_mask, key_mates, read_key_mates)  # (explain's public names)


class ExplainError(YibaoError, LookupError):
    """The claim cannot be explained: not in the batch, or rejected (the message says why)."""


# -- the trace -------------------------------------------------------------------------------


@dataclass
class TableHit:
    """A lookup that matched: ``table`` at row ``key`` gave ``value`` (engine units)."""
    part: str  # which step evaluated it: applies, base, deductible, ratio, cap 1, limit
    table: str
    key: tuple
    key_text: tuple
    value: int
    value_text: str
    source: str  # file:line of the table in the policy


@dataclass
class AccountStep:
    """One accumulator (deductible, cap, bands, self-pay limit) as this claim met it."""
    kind: str  # deductible | cap | bands | limit
    rule: str  # the amount's expression in policy syntax
    scope: str  # "per claim" or "per <key> per year"
    key: str  # the key value ("person p1", "family f3"), empty per claim
    amount: int  # D, the cap, or the limit L for this claim (fen)
    before: int  # the key's accumulator before this claim (0 per claim)
    room: int  # what was left for this claim
    used: int  # what this claim added
    after: int
    earlier: list = field(default_factory=list)  # [(claim_id, amount)] that formed `before`
    note: str = ""
    name: str = ""  # a shared cap's name


@dataclass
class BandPiece:
    index: int
    lo: int
    hi: Optional[int]
    rate: int
    width: int  # fen of this claim's e inside the band
    exact: str  # width × rate, exact
    pay: int  # rounded half-up


@dataclass
class LayerTrace:
    name: str
    label: str
    source: str
    applies: bool
    applies_rule: str
    base_rule: str = ""
    base_values: list = field(default_factory=list)  # [(name, fen)]
    base_raw: int = 0  # before clipping at 0
    base: int = 0
    deductible: Optional[AccountStep] = None
    after_deductible: int = 0  # e = base − d
    ratio_kind: str = ""  # ratio | bands | limit | full
    ratio_rule: str = ""
    ratio: Optional[int] = None  # the ratio applied (millionths)
    exact: str = ""  # e × ratio exact, before rounding
    bands: Optional[AccountStep] = None
    pieces: list = field(default_factory=list)  # [BandPiece]
    limit: Optional[AccountStep] = None
    before_caps: int = 0
    caps: list = field(default_factory=list)  # [AccountStep]
    pay: int = 0
    lookups: list = field(default_factory=list)  # [TableHit]

    @property
    def deducted(self) -> int:
        return self.deductible.used if self.deductible else 0


@dataclass
class ClaimExplanation:
    claim_id: str
    person_id: str
    discharge_date: str
    year: int
    policy: str
    inputs: dict  # column -> value in policy units (text)
    total: int
    layers: list  # [LayerTrace]
    self_pay: int
    drg: Optional[list] = None  # yibao.core.grouping.reference.explain_drg steps
    provider: Optional["ProviderTrace"] = None  # pool, group, case class, points

    def result(self) -> dict:
        """The numbers ``engine.settle`` gives for this claim (same column names)."""
        out = {}
        for t, has_ded in zip(self.layers, self._has_ded):
            out[t.name] = t.pay
            if has_ded:
                out[t.name + "_deductible"] = t.deducted
        out["self_pay"] = self.self_pay
        return out

    _has_ded: tuple = ()

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data.pop("_has_ded", None)
        return data


def _key_text(row, key) -> str:
    kind, value = _key_value(row, key)
    return f"{key.name} {value}" if kind == "k" else f"person {value}"


def _scope_text(scope, key) -> str:
    return "per claim" if scope != PER_YEAR else key.scope_text


def _exact(num: int) -> str:
    """num / RATIO_SCALE fen as an exact decimal text (up to 6 places), in yuan."""
    q = Fraction(num, RATIO_SCALE * 100)
    whole = q.numerator // q.denominator
    frac = q - whole
    return f"{whole:,}" + (f"{float(frac):.8f}"[1:].rstrip("0") if frac else "")


def _inputs(plan: Plan, row: dict) -> dict:
    return {c.name: format_value(row.get(c.name), c.type) for c in plan.columns}


# -- the recorder: the oracle's steps filed into traces --------------------------------------


class Recorder:
    """Hears ``reference.settle`` (core/trace.py events) and files the steps of the claims in
    ``targets`` (None: every claim) into ``ClaimExplanation``s, ``explained`` by claim id.
    For every claim it also keeps which claim added what to each account, so a step can name
    the earlier claims that formed its ``before`` (a refused claim's entries are undone).
    Table rows a lookup matched are filed under the step that follows them. The points
    oracle's events of the same run (``CaseClass``, ``PointsAdjusted``, ``ClaimPoints``) are
    kept in ``points`` by claim id, for the provider block."""

    def __init__(self, targets=None, registry=None):
        self.targets = targets
        self.registry = registry
        self.explained = {}  # claim_id -> ClaimExplanation
        self.history = defaultdict(list)  # account slot -> [(claim_id, amount)]
        self.journal = {}  # slot -> its history before the current claim
        self.claim_id = None
        self.ex = None  # the explanation being recorded (None: a claim nobody asked about)
        self.row, self.plan, self.layer = None, None, None
        self.hits = []  # lookups not yet filed under a step
        self.open = {}  # account slot -> this layer's step whose use a write tells
        self.points = defaultdict(list)  # claim_id -> the points oracle's events about it
        self._evaluators = {}

    def __call__(self, event) -> None:
        handler = self.HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    # -- claims

    def started(self, ev: trace.ClaimStarted) -> None:
        row, plan = ev.row, ev.plan
        self.claim_id, self.row, self.plan, self.journal, self.hits = row["claim_id"], row, \
            plan, {}, []
        self.layer = None
        if self.targets is not None and row["claim_id"] not in self.targets:
            self.ex = None
            return
        self.ex = ClaimExplanation(row["claim_id"], row["__person"],
                                   format_date(row["discharge_date"]), ev.year, plan.name,
                                   _inputs(plan, row), row["total"], [], 0)
        self.ex._has_ded = tuple(layer.deductible is not None for layer in plan.layers)

    def settled(self, ev: trace.ClaimSettled) -> None:
        if self.ex is not None:
            self.ex.self_pay = ev.out["self_pay"]
            self.explained[ev.claim_id] = self.ex
        self.ex = self.layer = None

    def refused(self, ev: trace.ClaimRefused) -> None:
        """An amount would leave int64: the claim is rejected, its account entries undone."""
        self.history.update(self.journal)
        self.ex = self.layer = None

    def wrote(self, ev: trace.AccountWrite) -> None:
        self.journal.setdefault(ev.slot, list(self.history.get(ev.slot, ())))
        if ev.replace:
            self.history[ev.slot] = [(self.claim_id, ev.amount)]
        elif ev.amount:
            self.history[ev.slot].append((self.claim_id, ev.amount))
        step = self.open.get(ev.slot) if self.layer is not None and not ev.replace else None
        if step is not None:
            step.used, step.after = ev.amount, step.before + ev.amount

    def table_row(self, ev: trace.TableRow) -> None:
        if self.ex is not None:
            self.hits.append(ev)

    def provider_step(self, ev) -> None:
        """A points-oracle event (CaseClass, PointsAdjusted, ClaimPoints) of the same settle
        run: kept for the claims asked about, for their provider block."""
        if self.targets is None or ev.claim_id in self.targets:
            self.points[ev.claim_id].append(ev)

    # -- layers

    def applies(self, ev: trace.LayerApplies) -> None:
        if self.ex is None:
            return
        layer = ev.layer
        self.layer = LayerTrace(layer.name, layer.label, layer.source, ev.applies,
                                expr_text(layer.applies))
        self.ex.layers.append(self.layer)
        self.open = {}
        self._file_hits("applies")

    def base(self, ev: trace.Base) -> None:
        t = self._step("base")
        if t is not None:
            t.base_rule, t.base_raw, t.base = expr_text(ev.layer.base), ev.raw, ev.base
            t.after_deductible = ev.base
            t.base_values = self._base_values(ev.layer.base, ev.paid)

    def deductible(self, ev: trace.Deductible) -> None:
        t = self._step("deductible")
        if t is None:
            return
        ded = ev.layer.deductible
        yearly = ded.scope == PER_YEAR
        note = "" if ev.last is None else (
            f"continuing (连续计算): {format_money(ev.full)} − {format_money(ev.last)} paid on "
            f"the previous claim {self._earlier(ev.slot + ('last',))}")
        t.deductible = AccountStep(
            "deductible", expr_text(ded.amount), _scope_text(ded.scope, ded.key),
            _key_text(self.row, ded.key) if yearly else "", ev.amount, ev.before,
            ev.remaining, ev.used, ev.before + ev.used,
            self._earlier(ev.slot + ("consumed",)) if yearly else [], note)

    def ratio(self, ev: trace.Ratio) -> None:
        t = self._step("ratio")
        if t is not None:
            t.ratio_kind, t.ratio_rule, t.ratio = "ratio", expr_text(ev.layer.ratio), ev.ratio
            t.exact = _exact(ev.e * ev.ratio)

    def bands(self, ev: trace.Bands) -> None:
        t = self._step("bands")
        if t is not None:
            key = ev.layer.ratio.key
            t.ratio_kind = "bands"
            rule = f"when {expr_text(ev.when)}" if ev.when is not None else ""
            t.bands = AccountStep("bands", rule, key.scope_text,
                                  _key_text(self.row, key), 0, ev.start, 0,
                                  ev.end - ev.start, ev.end, self._earlier(ev.slot))

    def band_piece(self, ev: trace.BandPiece) -> None:
        if self.ex is not None and self.layer is not None:
            b = ev.band
            self.layer.pieces.append(BandPiece(ev.index, b.lo, b.hi, b.rate, ev.width,
                                               _exact(ev.width * b.rate), ev.pay))

    def limit(self, ev: trace.Limit) -> None:
        t = self._step("limit")
        if t is None:
            return
        lim = ev.layer.limit
        t.ratio_kind, t.ratio_rule = "limit", expr_text(lim.amount)
        t.limit = AccountStep("limit", t.ratio_rule, lim.key.scope_text,
                              _key_text(self.row, lim.key), ev.amount, ev.kept_before,
                              max(0, ev.amount - ev.kept_before), 0, ev.kept_before,
                              self._earlier(ev.slot))
        self.open[ev.slot] = t.limit

    def full_pay(self, ev: trace.FullPay) -> None:
        t = self._step("full")
        if t is not None:
            t.ratio_kind = "full"

    def cap(self, ev: trace.Cap) -> None:
        t = self._step(f"cap {ev.index + 1}")
        if t is None:
            return
        cap = ev.layer.caps[ev.index]
        yearly = ev.slot is not None
        step = AccountStep("cap", expr_text(cap.amount), _scope_text(cap.scope, cap.key),
                           _key_text(self.row, cap.key) if yearly else "", ev.amount, ev.used,
                           ev.room, 0, ev.used, self._earlier(ev.slot) if yearly else [],
                           name=cap.name or "")
        t.caps.append(step)
        if yearly:
            self.open[ev.slot] = step

    def layer_paid(self, ev: trace.LayerPaid) -> None:
        t = self._step("paid")
        if t is not None:
            t.after_deductible, t.before_caps, t.pay = ev.e, ev.before_caps, ev.pay

    # -- helpers

    def _step(self, part: str) -> Optional[LayerTrace]:
        """The layer being recorded (None when nobody asked about this claim), with the
        lookups since the last step filed under ``part``."""
        if self.ex is None or self.layer is None:
            return None
        self._file_hits(part)
        return self.layer

    def _file_hits(self, part: str) -> None:
        decl = {t.name: t for t in self.plan.tables}
        for hit in self.hits:
            t = decl[hit.table]
            self.layer.lookups.append(TableHit(
                part, hit.table, hit.key,
                tuple(format_value(k, typ) for k, typ in zip(hit.key, t.key_types)),
                hit.value, format_value(hit.value, t.value_type), t.source))
        self.hits = []

    def _earlier(self, slot) -> list:
        return list(self.history.get(slot, ()))

    def _base_values(self, base, paid) -> list:
        """The columns and paid() terms of the base with their values (the oracle's
        evaluator reads them)."""
        ev = self._evaluators.get(id(self.plan))
        if ev is None:
            ev = self._evaluators[id(self.plan)] = ClaimEvaluator(self.plan, self.registry)
        out, seen = [], set()
        for node in walk(base):
            if isinstance(node, (Column, Paid)):
                name = expr_text(node)
                if name not in seen:
                    seen.add(name)
                    out.append((name, ev.eval(node, self.row, paid)))
        return out

    HANDLERS = {
        trace.ClaimStarted: started, trace.ClaimSettled: settled,
        trace.ClaimRefused: refused, trace.AccountWrite: wrote, trace.TableRow: table_row,
        trace.LayerApplies: applies, trace.Base: base, trace.Deductible: deductible,
        trace.Ratio: ratio, trace.Bands: bands, trace.BandPiece: band_piece,
        trace.Limit: limit, trace.FullPay: full_pay, trace.Cap: cap,
        trace.LayerPaid: layer_paid, trace.CaseClass: provider_step,
        trace.PointsAdjusted: provider_step, trace.ClaimPoints: provider_step,
    }


# -- batches ---------------------------------------------------------------------------------


def explain_claims(policy, claims, registry=None, claim_ids=None, drg: bool = False,
                   drg_tables=None) -> dict:
    """claim_id -> ClaimExplanation for every accepted claim (or only ``claim_ids``, settling
    just their key-mates). ``policy``: a Plan, several version plans or a Policy. ``drg``
    adds the CHS-DRG grouping path (``explain_drg``) of each explained claim; a plan with a
    provider part adds each claim's pool, group, case class and points
    (``explain_provider``). Rejected or unknown ids are absent."""
    return _explain(policy, claims, registry, claim_ids, drg, drg_tables)[0]


def _explain(policy, claims, registry, claim_ids, drg, drg_tables) -> tuple:
    """(explanations, the oracle's BatchResult of the rows it settled)."""
    policy = Policy.of(policy)
    registry = registry or default_registry()
    from .arrow_io import as_table  # (the row entry, explain_rows, reads no Arrow)
    claims = as_table(claims)
    targets = None if claim_ids is None else {str(c) for c in claim_ids}
    if targets is not None:
        claims = key_mates(policy.versions, claims, targets)
    recorder = Recorder(targets, registry)
    settled = reference.settle(policy, claims, registry, record=recorder)
    out = recorder.explained
    if drg and out:
        _add_drg(out, claims, drg_tables)
    accepted = set(settled.results.column("claim_id").to_pylist())
    by_plan = {plan.name: plan for plan in policy.versions}
    for plan_name in {ex.policy for ex in out.values()}:
        wanted = {cid for cid, ex in out.items() if ex.policy == plan_name}
        for cid, t in explain_provider(by_plan[plan_name], claims, accepted, wanted,
                                       recorder.points, registry.groupers).items():
            out[cid].provider = t
    return out, settled


def _add_drg(out: dict, raw, tables) -> None:
    from .grouping.reference import explain_drg
    from .grouping.tables import load_tables
    tables = tables or load_tables()
    wanted = [c for c in ("claim_id", "principal_dx", "secondary_dx", "procedures", "sex",
                          "age", "age_days", "birth_weight") if c in raw.column_names]
    for r in raw.select(wanted).to_pylist():
        if r["claim_id"] in out:
            out[r["claim_id"]].drg = explain_drg(r, tables)


def explain_rows(policy, rows, claim_id: str, registry=None) -> ClaimExplanation:
    """``explain_claim`` of ``rows`` (``claim_rows.HeldRows``: the claim's key-mates, e.g.
    from a key index), settled by the oracle's row entry in plain Python: no numpy, no
    pyarrow. For one policy version whose plan ``rows_apply`` (no plugin check acting on
    it, no provider part) and rows ``claim_rows.supported``; the same explanation, or the
    same ``ExplainError``, as ``explain_claim`` of the same rows as a table."""
    from .claim_rows import prepare_rows
    policy = Policy.of(policy)
    registry = registry or default_registry()
    recorder = Recorder({str(claim_id)}, registry)
    settled = reference.settle_rows(policy.first, prepare_rows(policy.first, rows), registry,
                                    record=recorder)
    if claim_id in recorder.explained:
        return recorder.explained[claim_id]
    raise ExplainError(_not_explained(claim_id, (
        (cid, reason, message) for _, cid, reason, message in settled.rejects)))


def rows_explainable(policy, rows, registry=None, drg: bool = False) -> bool:
    """Whether ``explain_rows`` explains ``rows`` under ``policy`` (one version, a plan the
    row entry settles as the batch entry does, every converted column held)."""
    from .claim_rows import supported
    policy = Policy.of(policy)
    return not drg and policy.single and reference.rows_apply(
        policy.first, registry or default_registry()) and supported(policy.first, rows)


def _not_explained(claim_id: str, rejects) -> str:
    """Why ``claim_id`` has no explanation: the first reject of it (input row order), else
    it is not in the batch."""
    why = next((f"{reason}: {message}" for cid, reason, message in rejects
                if cid == claim_id), None)
    return f"claim {claim_id!r} " + (f"was rejected ({why})" if why else "is not in the batch")


def explain_claim(policy, claims, claim_id: str, registry=None, drg: bool = False,
                  drg_tables=None) -> ClaimExplanation:
    """One claim's explanation (its key-mates settled with it); ``ExplainError`` when the
    claim is not in the batch or was rejected, with the reject reason."""
    found, settled = _explain(policy, claims, registry, [claim_id], drg, drg_tables)
    if claim_id in found:
        return found[claim_id]
    raise ExplainError(_not_explained(claim_id, (
        (r["claim_id"], r["reason"], r["message"]) for r in settled.rejects.to_pylist())))


# -- provider payment: pool, group, case class and points (the points oracle) ---------------


@dataclass
class ProviderTrace:
    """How a claim earned its provider-payment points (point-method.md §2), from the oracles
    (``grouping.reference``, ``table.group_claim_table``, ``points.reference.claim_points``),
    independent of the vectorised path. ``pool`` None: the claim is in no pool."""
    pool: Optional[str]
    pool_applies: str = ""
    group_column: str = ""
    group: Optional[str] = None
    grouping_status: Optional[str] = None
    grouping: list = field(default_factory=list)  # [{step, code, rule|source, ...}]
    numbers: dict = field(default_factory=dict)  # B, k, avg cost, cost, r, thresholds …
    base_class: str = ""
    base_points: int = 0
    readmission: Optional[dict] = None  # the next stay that made this one a readmission
    review: Optional[int] = None
    adjustments: list = field(default_factory=list)
    case_class: Optional[str] = None
    points: Optional[int] = None  # ×10^4 (POINT_SCALE)
    notes: list = field(default_factory=list)  # settlement: fixed point value, 医共体
    point_value: str = ""  # the pool's point value rule (its value is the pool's, at year end)


def _settlement_notes(plan: Plan, pool, c: dict) -> list:
    """How the claim's hospital and person settle beyond its points: a fixed point value
    (固定费率) and the 医共体 alliances whose package budget its points count against."""
    from decimal import Decimal
    from .points.plan import PV_SCALE
    notes = [f"hospital {fx.hospital_id} is on a fixed point value of "
             f"{(Decimal(fx.rate) / (100 * PV_SCALE)).normalize():f} yuan (shortfall made up "
             f"{format_ratio(fx.compensation)}), not the floating one"
             for fx in pool.fixed_rates if str(fx.hospital_id) == str(c.get("hospital_id"))]
    notes += [f"resident of alliance {c[a.column]} ({a.name}): its points count against "
              f"that 医共体's package budget" for a in plan.provider.alliances
              if pool.name in a.pools and c.get(a.column) is not None]
    return notes


def _provider_rows(plan: Plan, raw, accepted: set, targets: set):
    """The accepted claims the oracle needs for ``targets``: theirs and, when a pool has a
    readmission rule, every claim of the same persons (a readmission is decided by the
    person's next stay)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from .provider import prepared
    table = prepared(plan, raw)
    ids = table.column("claim_id").cast(pa.string())
    keep = pc.is_in(ids, value_set=pa.array(sorted(targets), pa.string()))
    for pool in plan.provider.pools:
        if pool.readmission is None:
            continue
        col = table.column(pool.readmission.person_column).cast(pa.string())
        persons = pc.unique(col.filter(keep))
        keep = pc.or_(keep, pc.fill_null(pc.is_in(col, value_set=persons), False))
    keep = pc.and_(keep, pc.is_in(ids, value_set=pa.array(sorted(accepted), pa.string())))
    return table.filter(keep)


def _grouping_steps(plan: Plan, table, i: int, grouper) -> list:
    """The path that gave row ``i`` its group: the decision-table row (with file:line), or
    the CHS-DRG path MDC → ADRG → DRG and the city split."""
    from .grouping.reference import explain_drg
    from .grouping.table import group_claim_table
    from .points.reference import passes
    from .provider import DrgGrouper, drg_inputs, drg_tables
    if isinstance(grouper, DrgGrouper):
        row = drg_inputs(grouper, table.slice(i, 1)).to_pylist()[0]
        steps = explain_drg(row, drg_tables(grouper), grouper.mdc_order)
        claim = table.slice(i, 1).to_pylist()[0]
        if steps[-1]["code"] is not None:
            for split in grouper.splits:
                if any(passes(claim, conj) for conj in split.when):
                    steps.append({"step": "split", "code": steps[-1]["code"] + split.suffix,
                                  "rule": split.describe(), "source": split.source})
                    break
        return steps
    claim = table.select(list(grouper.input_columns())).slice(i, 1).to_pylist()[0] \
        if grouper.input_columns() else {}
    group, status, r = group_claim_table(grouper, claim)
    row = grouper.rows[r - 1] if r else None
    return [{"step": "table", "code": group, "status": status, "table": grouper.name,
             "row": r, "rule": row.describe() if row else
             ("default" if status != "unmatched" else "no row matched"),
             "source": row.source if row else grouper.source}]


def _case_numbers(event, pool, c: dict) -> dict:
    """The numbers that decided the case class (point-method.md §2), as the points oracle
    reported them (``trace.CaseClass``), with the claim's coefficient key and stay dates."""
    from .points.reference import day
    n = event.numbers
    if n["kind"] != "points":
        return dict(n)
    r = n["r"]
    out = {"kind": "points", "B": n["B"], "k": n["k"], "normal": n["normal"],
           "coefficient_by": pool.coefficient_by,
           "coefficient_key": c.get(pool.coefficient_by), "cost": n["cost"],
           "avg_cost": n["avg_cost"], "r": f"{r.numerator}/{r.denominator}",
           "r_decimal": f"{float(r):.4f}", "t_high": n["t_high"], "t_low": n["t_low"]}
    if pool.incomplete_column:
        out["incomplete"] = n.get("incomplete", False)
    if pool.readmission:
        rd = pool.readmission
        out["admit"], out["discharge"] = (day(c[rd.admit_column]) if c.get(rd.admit_column)
                                          is not None else None,
                                          day(c[rd.discharge_column]) if
                                          c.get(rd.discharge_column) is not None else None)
    return out


def _pool_of(plan: Plan, c: dict):
    """The claim's pool: the first whose applies hold (None: in no pool)."""
    from .points.reference import passes
    return next((p for p in plan.provider.pools if passes(c, p.applies)), None)


def _next_stay(pool, c: dict, members: list) -> Optional[dict]:
    """The stay that made the readmitted ``c`` an earlier stay (the oracle decided that it
    is one): of the pool's stays admitted 0..N days after its discharge (same person and
    group, any hospital), the first admitted (then claim_id)."""
    from .points.reference import day
    r = pool.readmission
    gap = lambda x: day(x[r.admit_column]) - day(c[r.discharge_column])
    later = [x for x in members if str(x["claim_id"]) != str(c["claim_id"])
             and None not in (x.get(r.admit_column), x.get(r.person_column),
                              x.get(pool.group_column))
             and str(x[r.person_column]) == str(c[r.person_column])
             and str(x[pool.group_column]) == str(c[pool.group_column])
             and 0 <= gap(x) <= r.days]
    if not later:
        return None
    nxt = min(later, key=lambda x: (day(x[r.admit_column]), str(x["claim_id"])))
    return {"claim_id": str(nxt["claim_id"]), "within_days": r.days, "share": r.share,
            "gap_days": gap(nxt)}


def explain_provider(plan: Plan, raw, accepted: set, targets: set, events: dict,
                     groupers=None) -> dict:
    """claim_id -> ProviderTrace for ``targets`` (accepted claims of ``raw``): pool, group
    and grouping path, case class with its numbers, adjustments and points. The class, the
    numbers behind it and the points are the points oracle's events of the settle run that
    settled the claims (``events``: claim_id -> [CaseClass, PointsAdjusted…, ClaimPoints],
    ``Recorder.points``); the claims are grouped again by the grouping oracles only to show
    the path that gave the group. Empty when the plan has no provider part."""
    if plan.provider is None or not targets:
        return {}  # (imports nothing of provider payment: most policies have no such part)
    from .points.reference import with_group
    from .provider import group_claims_reference
    grouped = group_claims_reference(plan, _provider_rows(plan, raw, accepted, targets),
                                     groupers)
    rows = grouped.to_pylist()
    pool_of = [_pool_of(plan, c) for c in rows]
    out = {}
    for i, c in enumerate(rows):
        cid = str(c["claim_id"])
        if cid not in targets:
            continue
        mine = events.get(cid, [])
        if not any(isinstance(e, ClaimPoints) for e in mine):  # the oracle scored it in
            out[cid] = ProviderTrace(None)                     # no pool
            continue
        pool = plan.provider.pool(_first(mine, ClaimPoints).pool)
        members = [with_group(pool, x) for x, p in zip(rows, pool_of) if p is pool]
        out[cid] = _provider_trace(plan, pool, grouped, i, members, mine)
    return out


def _first(events: list, kind):
    return next(e for e in events if isinstance(e, kind))


def _provider_trace(plan: Plan, pool, grouped, i: int, members: list, events: list):
    """The ProviderTrace of row ``i`` of ``grouped`` from the points oracle's ``events``
    about it: its case class and the numbers that decided it, the adjustments that applied
    and its final points."""
    from .points.plan import describe_tests
    from .points.reference import passes, with_group
    from .provider import grouper_output, status_column
    c = with_group(pool, grouped.slice(i, 1).to_pylist()[0])
    case, final = _first(events, CaseClass), _first(events, ClaimPoints)
    column = next((src.column for src in pool.group_sources if passes(c, src.when)),
                  None) if pool.group_sources else pool.group_column
    grouper = next((g for g in plan.groupers if grouper_output(g) == column), None)
    t = ProviderTrace(pool.name, describe_tests(pool.applies), pool.group_column,
                      final.group, c.get(status_column(grouper)) if grouper else None)
    t.grouping = _grouping_steps(plan, grouped, i, grouper) if grouper else []
    t.numbers = _case_numbers(case, pool, c)
    t.base_class, t.base_points = case.case_class, case.points
    t.review = final.points if final.case_class == "review" else None
    if final.case_class == "readmit":
        t.readmission = _next_stay(pool, c, members)
    when = {a.name: describe_tests(a.when) for a in pool.adjustments}
    t.adjustments = [(e.name, e.factor, when[e.name]) for e in events
                     if isinstance(e, PointsAdjusted)]
    t.case_class, t.points = final.case_class, final.points
    t.notes = _settlement_notes(plan, pool, c)
    t.point_value = pool.point_value.describe()
    return t


# -- text ------------------------------------------------------------------------------------

M = format_money


def _earlier(step: AccountStep) -> str:
    if not step.earlier:
        return ""
    shown = ", ".join(f"{cid} {M(a)}" for cid, a in step.earlier[-6:])
    more = f" (and {len(step.earlier) - 6} before them)" if len(step.earlier) > 6 else ""
    return f" — earlier claims: {shown}{more}"


def _hits(t: LayerTrace, part: str) -> list:
    return [f"      row {h.table}[{', '.join(h.key_text)}] = {h.value_text}"
            + (f"  ({h.source})" if h.source else "") for h in t.lookups if h.part == part]


def _account_lines(step: AccountStep, what: str) -> list:
    key = f" for {step.key}" if step.key else ""
    lines = [f"   {what} {step.rule} {step.scope}{key}: {M(step.amount)}"]
    if step.note:
        lines.append(f"      {step.note}")
    if step.scope != "per claim":
        lines.append(f"      before {M(step.before)}, room {M(step.room)}, this claim "
                     f"{M(step.used)}, after {M(step.after)}{_earlier(step)}")
    else:
        lines.append(f"      room {M(step.room)}, this claim {M(step.used)}")
    return lines


def _ratio_lines(t: LayerTrace) -> list:
    e = M(t.after_deductible)
    if t.ratio_kind == "ratio":
        return [f"   ratio {t.ratio_rule} = {format_ratio(t.ratio)}", *_hits(t, "ratio"),
                f"   {e} × {format_ratio(t.ratio)} = {t.exact} → {M(t.before_caps)} "
                "(half-up to the fen)"]
    if t.ratio_kind == "bands":
        b = t.bands
        rates = f" ({b.rule} rates)" if b.rule else ""
        lines = [f"   bands {b.scope} for {b.key}{rates}: cumulative {M(b.before)} → "
                 f"{M(b.after)}{_earlier(b)}"]
        for p in t.pieces:
            hi = "∞" if p.hi is None else M(p.hi)
            lines.append(f"      band {p.index + 1} [{M(p.lo)}, {hi}) {format_ratio(p.rate)}: "
                         f"{M(p.width)} × {format_ratio(p.rate)} = {p.exact} → {M(p.pay)}")
        return lines + [f"   bands pay {M(t.before_caps)}"]
    if t.ratio_kind == "limit":
        lim = t.limit
        return [f"   self-pay limit {lim.rule} {lim.scope} for {lim.key}: {M(lim.amount)}",
                *_hits(t, "limit"),
                f"      burden kept before {M(lim.before)}{_earlier(lim)}",
                f"      pays min({e}, max(0, {M(lim.before)} + {e} − {M(lim.amount)})) = "
                f"{M(t.before_caps)}; keeps {M(lim.used)}, burden after {M(lim.after)}"]
    return [f"   no ratio: pays all of {e}"]


def _layer_lines(i: int, t: LayerTrace) -> list:
    src = f"  ({t.source})" if t.source else ""
    head = f"{i}. {t.name} {t.label}{src}"
    if not t.applies:
        return [head, f"   applies when {t.applies_rule}: no — pays 0.00"]
    vals = ", ".join(f"{n} {M(v)}" for n, v in t.base_values)
    lines = [head, f"   applies when {t.applies_rule}: yes", *_hits(t, "applies"),
             f"   base {t.base_rule} = {M(t.base_raw)}" + (f"  [{vals}]" if vals else "")]
    if t.base_raw < 0:
        lines.append("      negative: clipped to 0.00")
    lines += _hits(t, "base")
    if t.deductible:
        lines += _account_lines(t.deductible, "deductible 起付线")
        lines += _hits(t, "deductible")
        lines.append(f"   after deductible e = {M(t.base)} − {M(t.deductible.used)} = "
                     f"{M(t.after_deductible)}")
    lines += _ratio_lines(t)
    for k, cap in enumerate(t.caps):
        name = f" {cap.name}:" if cap.name else ""
        lines += _account_lines(cap, f"cap 封顶线{name}")
        lines += _hits(t, f"cap {k + 1}")
    lines.append(f"   pays {M(t.pay)}")
    return lines


def _pts(p) -> str:
    """Points ×10^4 as an exact decimal text (4 places)."""
    from .points.plan import POINT_SCALE
    if p is None:
        return "null"
    sign, p = ("-", -p) if p < 0 else ("", p)
    return f"{sign}{p // POINT_SCALE:,}.{p % POINT_SCALE:04d}"


def _grouping_lines(steps: list) -> list:
    out = []
    for st in steps:
        if st["step"] == "table":
            where = f"row {st['row']}" if st["row"] else st["status"]
            src = f" ({st['source']})" if st.get("source") else ""
            out.append(f"    decision table {st['table']} {where}{src}: {st['rule']}")
        elif st["step"] == "split":
            out.append(f"    city split: {st['rule']} → {st['code']}")
        elif st["step"] != "result":
            rule = f"  rule {st['rule']}" if st.get("rule") else ""
            out.append(f"    {st['step']}: {st['code']}{rule}")
    return out


def _class_lines(t: ProviderTrace) -> list:
    n = t.numbers
    if n.get("kind") == "bed_day":
        tiers = ", ".join(f"days {a}-{b or ''} ×{format_ratio(f)}" for a, b, f in n["tiers"])
        return [f"  bed-day points: {_pts(n['per_day'])}/day × los {n['los']} ({tiers})"
                f" = {_pts(t.base_points)}"]
    if n.get("kind") != "points":
        if t.review is not None:
            return [f"  group {t.group} has no base points: valued by special review"]
        return [f"  group {t.group} has no base points: ungrouped, 0 points, awaiting "
                "special review (not charged to the hospital)"]
    lines = [f"  base points B {_pts(n['B'])}, coefficient k {format_ratio(n['k'])} "
             f"({n['coefficient_by']} {n['coefficient_key']}), normal B × k "
             f"= {_pts(n['normal'])}",
             f"  cost ratio r = cost {M(n['cost'])} / average {M(n['avg_cost'])} = "
             f"{n['r_decimal']} ({n['r']}); high when r ≥ "
             f"{_ratio_num(n['t_high'])}, low when r ≤ {_ratio_num(n['t_low'])}"]
    if n.get("incomplete"):
        lines.append("  incomplete stay: min(B, B × k × r)")
    lines.append(f"  → {t.base_class}: {_pts(t.base_points)} points")
    return lines


def _ratio_num(r) -> str:
    """A threshold ratio as a plain number (3, 1.5); None (no threshold) as ∞."""
    return "∞" if r is None else f"{Fraction(r, RATIO_SCALE).limit_denominator(RATIO_SCALE)}" \
        if r % (RATIO_SCALE // 1000) else f"{r / RATIO_SCALE:g}"


def provider_lines(t: ProviderTrace) -> list:
    """The provider-payment block of the text explanation."""
    if t.pool is None:
        return ["Provider payment (点数法): in no pool"]
    lines = ["Provider payment (点数法):",
             f"  pool {t.pool} (first pool whose applies holds: {t.pool_applies})",
             f"  group {t.group_column} = {t.group} (grouping status {t.grouping_status})",
             *_grouping_lines(t.grouping), *_class_lines(t)]
    if t.readmission:
        r = t.readmission
        lines.append(f"  readmission: {r['claim_id']} admitted {r['gap_days']} days after this "
                     f"discharge (within {r['within_days']}): × {format_ratio(r['share'])}")
    if t.review is not None:
        lines.append(f"  special review (特病单议): {_pts(t.review)} points, final "
                     "(no readmission share, no adjustments)")
    for name, factor, when in t.adjustments:
        lines.append(f"  adjustment {name} × {format_ratio(factor)} (when {when})")
    lines += [f"  case class {t.case_class}", f"  points {_pts(t.points)}"]
    if t.point_value:
        lines.append(f"  point value {t.point_value}, the pool's at year end (pools.parquet): "
                     "paid points × point value")
    lines += [f"  {note}" for note in t.notes]
    return lines


def format_explanation(ex: ClaimExplanation) -> str:
    """The explanation as indented text, one block per layer (money in yuan)."""
    lines = [f"claim {ex.claim_id} · person {ex.person_id} · discharged {ex.discharge_date} · "
             f"policy year {ex.year} · {ex.policy}",
             "  " + "  ".join(f"{k} {v}" for k, v in ex.inputs.items()), ""]
    for i, t in enumerate(ex.layers, 1):
        lines += _layer_lines(i, t)
    paid = " + ".join(M(t.pay) for t in ex.layers)
    lines += ["", f"self_pay = total {M(ex.total)} − ({paid}) = {M(ex.self_pay)}"]
    if ex.drg:
        lines += ["", "CHS-DRG grouping:"]
        for step in ex.drg:
            rule = f"  rule {step['rule']}" if step.get("rule") else ""
            extra = f"  ({step['status']})" if "status" in step else ""
            lines.append(f"  {step['step']}: {step['code']}{extra}{rule}")
    if ex.provider is not None:
        lines += ["", *provider_lines(ex.provider)]
    return "\n".join(lines)

"""Explain a yuan: every step that settled one claim, from the same plan with the same rules.

``explain_claims(plan, claims)`` walks the plan the way the oracle (``reference.py``) does —
it reuses the oracle's expression evaluator, row reading and accumulator slots, so the two
cannot disagree on semantics — and records, for every layer of every claim:

- whether it applied (and the condition), the base with the column and ``paid()`` values that
  formed it;
- the deductible: the amount D (and the table rows behind it), the key's consumption before
  and after this claim, and the earlier claims that consumed it;
- the ratio: the table row that applied (with the table's ``file:line``), or the bands entered
  with their pieces; the exact product and its half-up rounding to the fen;
- every cap and the self-pay limit: room before, use after, and the earlier claims that used it.

``explain_claim(plan, claims, claim_id)`` settles only the target's key-mates (the claims that
share an accumulator key with it, transitively, up to the target in settlement order), so one
claim of a large batch is explained quickly. The final numbers agree with ``engine.settle`` to
the fen (tests/tools/test_explain.py runs it over the whole golden batch in one pass).

Empty batch: no explanations. A rejected claim is not explained; ``ExplainError`` says why.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

import pyarrow as pa

from .arrow_io import prepare
from .describe import expr_text, format_date, format_money, format_ratio, format_value
from .errors import YibaoError
from .money import OutOfRange, checked
from .plan import PER_YEAR, RATIO_SCALE, Bands, Column, Lookup, Paid, Plan, walk
from .reference import (Accounts, ClaimEvaluator, LookupMiss, _cap_slot, _key_value,
                        _missing_lookup, _out_of_range_layer, _rows, policy_year, round_half_up)
from .registry import default_registry
from .settlement import run_validators


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


# -- the tracing evaluator -------------------------------------------------------------------


class TracingEvaluator(ClaimEvaluator):
    """The oracle's evaluator, also recording every table row a lookup matched."""

    def __init__(self, plan: Plan, registry):
        super().__init__(plan, registry)
        self.hits: Optional[list] = None
        self.part = ""
        self.decl = {t.name: t for t in plan.tables}

    def eval(self, e, row, paid):
        if isinstance(e, Lookup) and self.hits is not None:
            key = tuple(self.eval(a, row, paid) for a in e.args)
            if key not in self.tables[e.table]:
                raise LookupMiss(e.table)
            value = self.tables[e.table][key]
            self.hits.append(self._hit(e.table, key, value))
            return value
        return super().eval(e, row, paid)

    def _hit(self, name, key, value) -> TableHit:
        t = self.decl[name]
        key_text = tuple(format_value(k, typ) for k, typ in zip(key, t.key_types))
        return TableHit(self.part, name, key, key_text, value,
                        format_value(value, t.value_type), t.source)

    def traced(self, part: str, e, row, paid, hits: list):
        self.hits, self.part = hits, part
        try:
            return self.eval(e, row, paid)
        finally:
            self.hits = None


class Ledger(Accounts):
    """The oracle's accounts, remembering which claim added what to every slot."""

    def __init__(self):
        super().__init__()
        self.history = defaultdict(list)
        self.claim = None

    def add(self, amount, *slot):
        super().add(amount, *slot)
        if amount:
            self.history[slot].append((self.claim, amount))

    def set(self, amount, *slot):
        super().set(amount, *slot)
        self.history[slot] = [(self.claim, amount)]

    def earlier(self, *slot) -> list:
        return list(self.history.get(slot, ()))

    def roll_back(self) -> None:
        """Undo the current claim, its history entries too."""
        super().roll_back()
        for slot, entries in self.history.items():
            self.history[slot] = [h for h in entries if h[0] != self.claim]


def _key_text(row, key) -> str:
    kind, value = _key_value(row, key)
    return f"{key.name} {value}" if kind == "k" else f"person {value}"


def _scope_text(scope, key) -> str:
    return "per claim" if scope != PER_YEAR else f"per {key.name} per year"


# -- one claim, layer by layer (the rules of reference.settle_layer, with records) -----------


class Tracer:
    def __init__(self, plan: Plan, registry=None):
        self.plan = plan
        self.ev = TracingEvaluator(plan, registry or default_registry())
        self.acc = Ledger()

    def claim(self, row: dict) -> list:
        """Every layer's trace for one claim, updating the accounts (settlement order)."""
        self.acc.claim = row["claim_id"]
        year = policy_year(row["discharge_date"], self.plan.year_start)
        paid, traces = {}, []
        for layer in self.plan.layers:
            t = self.layer(layer, row, paid, year)
            paid[layer.name] = t.pay
            traces.append(t)
        return traces

    def settle(self, row: dict):
        """claim(row), or None with the accounts rolled back when an amount of the claim
        would leave int64 (the claim is rejected, as on the kernel path)."""
        try:
            traces = self.claim(row)
            checked(sum(t.pay for t in traces))
        except OutOfRange:
            self.acc.roll_back()
            return None
        self.acc.commit()
        return traces

    def layer(self, layer, row, paid, year) -> LayerTrace:
        ev = self.ev
        t = LayerTrace(layer.name, layer.label, layer.source, False, expr_text(layer.applies))
        t.applies = bool(ev.traced("applies", layer.applies, row, paid, t.lookups))
        if not t.applies:
            return t
        t.base_rule = expr_text(layer.base)
        t.base_raw = ev.traced("base", layer.base, row, paid, t.lookups)
        t.base = max(0, t.base_raw)
        t.base_values = _base_values(ev, layer.base, row, paid)
        d = self.deductible(layer, row, paid, year, t) if layer.deductible else 0
        e = t.after_deductible = t.base - d
        pay = self.ratio(layer, row, paid, year, t, e)
        t.before_caps = pay = max(0, min(pay, e))
        t.pay = self.caps(layer, row, paid, year, t, pay)
        if layer.limit is not None:
            self.acc.add(e - t.pay, layer.name, "limit", _key_value(row, layer.limit.key), year)
            t.limit.used, t.limit.after = e - t.pay, t.limit.before + e - t.pay
        return t

    def deductible(self, layer, row, paid, year, t) -> int:
        ded, acc = layer.deductible, self.acc
        k = (layer.name, "ded", _key_value(row, ded.key), year)
        full = D = self.ev.traced("deductible", ded.amount, row, paid, t.lookups)
        note = ""
        if ded.continuing is not None and self.ev.traced(
                "deductible", ded.continuing, row, paid, t.lookups):
            last = acc.get(*k, "last")
            D = max(0, checked(D - last))
            note = (f"continuing (连续计算): {format_money(full)} − {format_money(last)} paid on "
                    f"the previous claim {acc.earlier(*k, 'last')}")
        yearly = ded.scope == PER_YEAR
        before = acc.get(*k, "consumed") if yearly else 0
        earlier = acc.earlier(*k, "consumed") if yearly else []
        remaining = max(0, checked(D - before))
        d = min(t.base, remaining)
        if yearly:
            acc.add(d, *k, "consumed")
        acc.set(d, *k, "last")
        t.deductible = AccountStep("deductible", expr_text(ded.amount),
                                   _scope_text(ded.scope, ded.key),
                                   _key_text(row, ded.key) if yearly else "", D, before,
                                   remaining, d, before + d, earlier, note)
        return d

    def ratio(self, layer, row, paid, year, t, e) -> int:
        acc = self.acc
        if layer.limit is not None:
            lim = layer.limit
            k = (layer.name, "limit", _key_value(row, lim.key), year)
            L = self.ev.traced("limit", lim.amount, row, paid, t.lookups)
            A = acc.get(*k)
            t.ratio_kind, t.ratio_rule = "limit", expr_text(lim.amount)
            t.limit = AccountStep("limit", t.ratio_rule, f"per {lim.key.name} per year",
                                  _key_text(row, lim.key), L, A, max(0, L - A), 0, A,
                                  acc.earlier(*k))
            return min(e, max(0, checked(checked(A + e) - L)))
        if isinstance(layer.ratio, Bands):
            return self.bands(layer, row, year, t, e)
        if layer.ratio is not None:
            r = self.ev.traced("ratio", layer.ratio, row, paid, t.lookups)
            t.ratio_kind, t.ratio_rule, t.ratio = "ratio", expr_text(layer.ratio), r
            t.exact = _exact(e * r)
            return checked(round_half_up(e * r, RATIO_SCALE))
        t.ratio_kind = "full"
        return e

    def bands(self, layer, row, year, t, e) -> int:
        bands = layer.ratio
        k = (layer.name, "bands", _key_value(row, bands.key), year)
        start, pay = self.acc.get(*k), 0
        end = checked(start + e)
        t.bands = AccountStep("bands", "", f"per {bands.key.name} per year",
                              _key_text(row, bands.key), 0, start, 0, e, end,
                              self.acc.earlier(*k))
        for i, band in enumerate(bands.bands):
            hi = end if band.hi is None else min(end, band.hi)
            width = hi - max(start, band.lo)
            if width > 0:
                piece = checked(round_half_up(width * band.rate, RATIO_SCALE))
                t.pieces.append(BandPiece(i, band.lo, band.hi, band.rate, width,
                                          _exact(width * band.rate), piece))
                pay = checked(pay + piece)
        self.acc.add(e, *k)
        t.ratio_kind = "bands"
        return pay

    def caps(self, layer, row, paid, year, t, pay) -> int:
        acc = self.acc
        for i, cap in enumerate(layer.caps):
            amount = self.ev.traced(f"cap {i + 1}", cap.amount, row, paid, t.lookups)
            slot = _cap_slot(layer, i, cap, row, year)
            yearly = cap.scope == PER_YEAR
            used = acc.get(*slot) if yearly else 0
            room = max(0, checked(amount - used))
            t.caps.append(AccountStep("cap", expr_text(cap.amount),
                                      _scope_text(cap.scope, cap.key),
                                      _key_text(row, cap.key) if yearly else "", amount, used,
                                      room, 0, used, acc.earlier(*slot) if yearly else [],
                                      name=cap.name or ""))
            pay = min(pay, room)
        for i, cap in enumerate(layer.caps):
            if cap.scope == PER_YEAR:
                acc.add(pay, *_cap_slot(layer, i, cap, row, year))
                step = t.caps[i]
                step.used, step.after = pay, step.before + pay
        return pay


def _exact(num: int) -> str:
    """num / RATIO_SCALE fen as an exact decimal text (up to 6 places), in yuan."""
    q = Fraction(num, RATIO_SCALE * 100)
    whole = q.numerator // q.denominator
    frac = q - whole
    return f"{whole:,}" + (f"{float(frac):.8f}"[1:].rstrip("0") if frac else "")


def _base_values(ev, base, row, paid) -> list:
    out, seen = [], set()
    for node in walk(base):
        if isinstance(node, (Column, Paid)):
            name = expr_text(node)
            if name not in seen:
                seen.add(name)
                out.append((name, ev.eval(node, row, paid)))
    return out


# -- batches ---------------------------------------------------------------------------------


def _inputs(plan: Plan, row: dict) -> dict:
    return {c.name: format_value(row.get(c.name), c.type) for c in plan.columns}


def _key_mates(plan: Plan, rows: list, targets: set) -> list:
    """Indices of the rows in the targets' components: rows linked by sharing any accumulator
    key value, transitively (union-find over key values)."""
    parent = list(range(len(rows)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i, row in enumerate(rows):
        for key in plan.keys():
            j = first.setdefault((key.name, _key_value(row, key)), i)
            parent[find(i)] = find(j)
    roots = {find(i) for i, r in enumerate(rows) if r["claim_id"] in targets}
    return [i for i in range(len(rows)) if find(i) in roots]


def explain_claims(plan: Plan, claims, registry=None, claim_ids=None, drg: bool = False,
                   drg_tables=None) -> dict:
    """claim_id -> ClaimExplanation for every accepted claim (or only ``claim_ids``, settling
    just their key-mates up to the last of them). ``drg`` adds the CHS-DRG grouping path
    (``explain_drg``) of each explained claim; a plan with a provider part adds each claim's
    pool, group, case class and points (``explain_provider``). Rejected or unknown ids are
    absent."""
    registry = registry or default_registry()
    prep = run_validators(plan, prepare(plan, claims), registry)
    tracer = Tracer(plan, registry)
    raw = prep.raw
    rows = [r for r in _rows(plan, prep) if _missing_lookup(plan, tracer.ev, r) is None
            and _out_of_range_layer(plan, tracer.ev, r) is None]
    accepted = {str(r["claim_id"]) for r in rows}
    targets = set(claim_ids) if claim_ids is not None else None
    if targets is not None:
        rows = [rows[i] for i in _key_mates(plan, rows, targets)]
    order = sorted(rows, key=lambda r: (r["discharge_date"], r["claim_id"]))
    if targets is not None:
        last = max((i for i, r in enumerate(order) if r["claim_id"] in targets), default=-1)
        order = order[:last + 1]
    has_ded = tuple(layer.deductible is not None for layer in plan.layers)
    out = {}
    for row in order:
        traces = tracer.settle(row)
        if traces is None:  # refused: an amount would leave int64 (rolled back)
            accepted.discard(str(row["claim_id"]))
            continue
        if targets is not None and row["claim_id"] not in targets:
            continue
        ex = ClaimExplanation(
            row["claim_id"], row["__person"], format_date(row["discharge_date"]),
            policy_year(row["discharge_date"], plan.year_start), plan.name, _inputs(plan, row),
            row["total"], traces, row["total"] - sum(t.pay for t in traces))
        ex._has_ded = has_ded
        out[row["claim_id"]] = ex
    if drg and out:
        _add_drg(out, raw, drg_tables)
    for cid, trace in explain_provider(plan, raw, accepted, set(map(str, out))).items():
        out[cid].provider = trace
    return out


def _add_drg(out: dict, raw, tables) -> None:
    from .grouping.reference import explain_drg
    from .grouping.tables import load_tables
    tables = tables or load_tables()
    wanted = [c for c in ("claim_id", "principal_dx", "secondary_dx", "procedures", "sex",
                          "age", "age_days", "birth_weight") if c in raw.column_names]
    for r in raw.select(wanted).to_pylist():
        if r["claim_id"] in out:
            out[r["claim_id"]].drg = explain_drg(r, tables)


def explain_claim(plan: Plan, claims, claim_id: str, registry=None, drg: bool = False,
                  drg_tables=None) -> ClaimExplanation:
    """One claim's explanation (its key-mates settled first); ``ExplainError`` when the claim
    is not in the batch or was rejected, with the reject reason."""
    found = explain_claims(plan, claims, registry, [claim_id], drg, drg_tables)
    if claim_id in found:
        return found[claim_id]
    from .engine import settle
    rejects = settle(plan, claims, registry).rejects.to_pylist()
    why = next((f"{r['reason']}: {r['message']}" for r in rejects if r["claim_id"] == claim_id),
               None)
    raise ExplainError(f"claim {claim_id!r} " + (f"was rejected ({why})" if why else
                                                 "is not in the batch"))


# -- reading only what one claim needs -------------------------------------------------------


def read_key_mates(plans, path, claim_id: str, columns=None) -> pa.Table:
    """The rows of the claims at ``path`` (a Parquet file or folder, or an Arrow IPC file)
    that explaining ``claim_id`` needs: every row sharing an accumulator key value (person,
    family …, under any of ``plans``) with it, transitively, and every row sharing a claim id
    with those (a duplicate id rejects every copy). Only ``columns`` are read (None: all;
    ``explain_columns`` leaves out the diagnosis lists, most of a claim file's bytes), in one
    scan: a predicate pushed down to Parquet skips only row groups whose statistics exclude
    it, and claim and person ids are spread over every row group, so a filtered scan would
    decode the same pages, once per round of the closure. Results never depend on row order,
    so settling these rows settles the claim exactly as settling the whole file does. Empty
    when the claim id is not in the file."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    fmt = "ipc" if Path(path).suffix in (".arrow", ".ipc", ".feather") else "parquet"
    data = ds.dataset(str(path), format=fmt)
    keys = [c for c in dict.fromkeys(["person_id"] + [k.column for p in plans
                                                       for k in p.keys()])
            if c in data.schema.names]
    if columns is not None:
        wanted = set(columns) | set(keys) | {"claim_id"}
        columns = [c for c in data.schema.names if c in wanted]
    table = data.to_table(columns=columns)
    ids = table.column("claim_id")
    mine = pc.equal(ids, claim_id).fill_null(False)
    while True:  # grow to the key-mates' closure: a few rounds at most
        grown = pc.equal(ids, claim_id).fill_null(False)
        for c in keys:
            found = pc.unique(table.column(c).filter(mine)).drop_null()
            grown = pc.or_(grown, pc.is_in(table.column(c), value_set=found).fill_null(False))
        if pc.sum(grown).as_py() == pc.sum(mine).as_py():
            break
        mine = grown
    same_id = pc.is_in(ids, value_set=pc.unique(ids.filter(mine)).drop_null()).fill_null(False)
    return table.filter(same_id)


def explain_columns(plans, registry=None, drg: bool = False):
    """The claim columns an explanation under ``plans`` reads (None: every column, when a
    plugin validator or the DRG path may read any): ids, keys, the plans' columns and their
    provider part's. Leaving out the diagnosis lists the benefits never read is most of the
    saving of reading one person's claims."""
    from .provider import needed_columns
    registry = registry or default_registry()
    if drg or registry.validators:
        return None
    out = {"claim_id", "person_id", "discharge_date"}
    for plan in plans:
        out.update(c.name for c in plan.columns)
        out.update(k.column for k in plan.keys())
        if plan.provider is not None or plan.groupers:
            out.update(needed_columns(plan))
    return sorted(out)


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
    from .provider import DrgGrouper, _drg_inputs, drg_tables
    if isinstance(grouper, DrgGrouper):
        row = _drg_inputs(grouper, table.slice(i, 1)).to_pylist()[0]
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


def _case_numbers(pool, c: dict) -> dict:
    """The numbers that decide the case class (point-method.md §2), as the oracle reads them."""
    from .points.reference import day
    g = None if c.get(pool.group_column) is None else str(c[pool.group_column])
    per_day = {str(k): v for k, v in (pool.bed_day.per_day if pool.bed_day else ())}
    if g in per_day:
        return {"kind": "bed_day", "per_day": per_day[g], "los": c.get(pool.bed_day.los_column),
                "tiers": [(t.first, t.last, t.factor) for t in pool.bed_day.tiers]}
    base = {str(k): v for k, v in pool.base_points}
    if g not in base:
        return {"kind": "none"}
    avg = dict((str(k), v) for k, v in pool.avg_cost)[g]
    k = RATIO_SCALE
    for key, group, kk in pool.coefficients:
        if str(key) == str(c.get(pool.coefficient_by)) and str(group) == g:
            k = kk
    r = Fraction(c["total"] or 0, avg if avg > 0 else 1)
    out = {"kind": "points", "B": base[g], "k": k, "coefficient_by": pool.coefficient_by,
           "coefficient_key": c.get(pool.coefficient_by), "cost": c["total"] or 0,
           "avg_cost": avg, "r": f"{r.numerator}/{r.denominator}",
           "r_decimal": f"{float(r):.4f}", "t_high": pool.outliers.t_high_for(base[g]),
           "t_low": pool.outliers.t_low}
    if pool.incomplete_column:
        out["incomplete"] = bool(c.get(pool.incomplete_column))
    if pool.readmission:
        rd = pool.readmission
        out["admit"], out["discharge"] = (day(c[rd.admit_column]) if c.get(rd.admit_column)
                                          is not None else None,
                                          day(c[rd.discharge_column]) if
                                          c.get(rd.discharge_column) is not None else None)
    return out


def _next_stay(pool, c: dict, members: list) -> Optional[dict]:
    """The stay that makes ``c`` an earlier stay: of those admitted 0..N days after its
    discharge (same person and group, any hospital), the first admitted (then claim_id)."""
    from .points.reference import day, is_readmitted
    if not is_readmitted(pool, c, members):
        return None
    r = pool.readmission
    gap = lambda x: day(x[r.admit_column]) - day(c[r.discharge_column])
    later = [x for x in members if x is not c
             and None not in (x.get(r.admit_column), x.get(r.person_column),
                              x.get(pool.group_column))
             and str(x[r.person_column]) == str(c[r.person_column])
             and str(x[pool.group_column]) == str(c[pool.group_column])
             and 0 <= gap(x) <= r.days]
    nxt = min(later, key=lambda x: (day(x[r.admit_column]), str(x["claim_id"])))
    return {"claim_id": str(nxt["claim_id"]), "within_days": r.days, "share": r.share,
            "gap_days": gap(nxt)}


def explain_provider(plan: Plan, raw, accepted: set, targets: set) -> dict:
    """claim_id -> ProviderTrace for ``targets`` (accepted claims of ``raw``): pool (first
    whose applies hold), group and grouping path, case class with its numbers, adjustments
    and points, all from the oracles. Empty when the plan has no provider part."""
    from .points.plan import describe_tests
    from .points.reference import base_class, claim_points, passes
    from .provider import group_claims_reference, grouper_output, status_column
    if plan.provider is None or not targets:
        return {}
    grouped = group_claims_reference(plan, _provider_rows(plan, raw, accepted, targets))
    rows = grouped.to_pylist()
    out = {}
    pools = {}
    for i, c in enumerate(rows):
        pool = next((p for p in plan.provider.pools if passes(c, p.applies)), None)
        pools.setdefault(pool.name if pool else None, []).append(i)
    by_name = {p.name: p for p in plan.provider.pools}
    for name, at in pools.items():
        wanted = [i for i in at if str(rows[i]["claim_id"]) in targets]
        if not wanted:
            continue
        if name is None:
            out.update({str(rows[i]["claim_id"]): ProviderTrace(None) for i in wanted})
            continue
        pool = by_name[name]
        members = [rows[i] for i in at]
        scored = {s["claim_id"]: s for s in claim_points(plan.provider, pool, members)}
        for i in wanted:
            c, s = rows[i], scored[str(rows[i]["claim_id"])]
            column = next((src.column for src in pool.group_sources if passes(c, src.when)),
                          None) if pool.group_sources else pool.group_column
            grouper = next((g for g in plan.groupers if grouper_output(g) == column), None)
            cls, pts = base_class(pool, c)
            t = ProviderTrace(pool.name, describe_tests(pool.applies), pool.group_column,
                              s["group"], c.get(status_column(grouper)) if grouper else None)
            t.grouping = _grouping_steps(plan, grouped, i, grouper) if grouper else []
            t.numbers, t.base_class, t.base_points = _case_numbers(pool, c), cls, pts
            t.review = dict((str(k), v) for k, v in pool.review).get(s["claim_id"])
            if cls != "ungrouped" and pool.readmission and t.review is None:
                t.readmission = _next_stay(pool, c, members)  # review is final: none
            t.adjustments = [(a.name, a.factor, describe_tests(a.when)) for a in pool.adjustments
                             if a.name in s["adjustments"]]
            t.case_class, t.points = s["case_class"], s["points"]
            t.notes = _settlement_notes(plan, pool, c)
            out[s["claim_id"]] = t
    return out


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
        lines = [f"   bands {b.scope} for {b.key}: cumulative {M(b.before)} → {M(b.after)}"
                 f"{_earlier(b)}"]
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
    high = "none" if n["t_high"] is None else format_ratio(n["t_high"]).rstrip("%")
    lines = [f"  base points B {_pts(n['B'])}, coefficient k {format_ratio(n['k'])} "
             f"({n['coefficient_by']} {n['coefficient_key']}), normal B × k "
             f"= {_pts(half_up_points(n['B'], n['k']))}",
             f"  cost ratio r = cost {M(n['cost'])} / average {M(n['avg_cost'])} = "
             f"{n['r_decimal']} ({n['r']}); high when r ≥ "
             f"{_ratio_num(n['t_high'])}, low when r ≤ {_ratio_num(n['t_low'])}"]
    if n.get("incomplete"):
        lines.append("  incomplete stay: min(B, B × k × r)")
    lines.append(f"  → {t.base_class}: {_pts(t.base_points)} points")
    return lines


def half_up_points(b: int, k: int) -> int:
    """B × k half-up to 10^-4 point (the normal case's points)."""
    return round_half_up(b * k, RATIO_SCALE)


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

"""The oracle: a slow, obvious evaluator of the same plan, claim by claim, in plain Python.

It shares only ingestion (arrow_io.prepare: which rows are accepted, engine units; for a few
rows in plain Python, claim_rows.prepare_rows under the same rules, claim_rules.py) and the
statement of the money rules (money.py: half-up rounding on Python ints, the int64 range) with
the kernel path. Everything else — expression evaluation, ordering, years, accumulators — is
written again here in the most direct way, straight from spec/benefits.md, so that the
conformance corpus and the Hypothesis tests can compare the two.
"""
from __future__ import annotations

import datetime
from collections import defaultdict
from typing import TYPE_CHECKING

from .lazy import lazy_module
from .plan import (MONEY, MONTH, PER_YEAR, RATIO, RATIO_SCALE, Bands, Binary, Call, Column, Cond,
                   Const, InSet, Lookup, Not, Paid, Plan, layer_exprs, walk)
from .money import OUT_OF_RANGE, OutOfRange, checked, out_of_range_message, round_half_up
from .claim_rules import overpaid_message
from .policy import Policy
from .registry import default_registry
from . import trace
from .trace import ignore

if TYPE_CHECKING:  # the batch result's type is named in annotations only: no import at run time
    from .settlement import BatchResult

EPOCH = datetime.date(1970, 1, 1)

# Arrow, numpy and the batch code are imported by the batch entry (``settle``) when first
# used: the row entry (``settle_rows``, what ``yibao explain --run`` calls) evaluates plain
# Python rows and imports none of them (numpy only for a plugin function's call)
np, pa = lazy_module("numpy"), lazy_module("pyarrow")
_arrow_io = lazy_module(__name__.rsplit(".", 1)[0] + ".arrow_io")
_settlement = lazy_module(__name__.rsplit(".", 1)[0] + ".settlement")


class LookupMiss(Exception):
    pass


def policy_year(day: int, year_start) -> int:
    date = EPOCH + datetime.timedelta(days=day)
    return date.year if (date.month, date.day) >= tuple(year_start) else date.year - 1


class ClaimEvaluator:
    """Evaluates expressions for one claim (a dict of engine-unit values). ``record`` hears
    every table row a lookup matched (``trace.TableRow``)."""

    def __init__(self, plan: Plan, registry, record=ignore):
        self.plan, self.registry, self.record = plan, registry, record
        self.tables = {t.name: dict(t.rows) for t in plan.tables}
        self._lookups = {}  # layer name -> its Lookup nodes (the plan is frozen)

    def lookups(self, layer) -> list:
        """The table lookups of ``layer``'s expressions, walked once per plan."""
        if layer.name not in self._lookups:
            self._lookups[layer.name] = [e for top in layer_exprs(layer) for e in walk(top)
                                         if isinstance(e, Lookup)]
        return self._lookups[layer.name]

    def eval(self, e, row, paid):
        if isinstance(e, Const):
            return e.value
        if isinstance(e, Column):
            return row[e.name]
        if isinstance(e, Binary):
            return self.binary(e, row, paid)
        if isinstance(e, Not):
            return not self.eval(e.operand, row, paid)
        if isinstance(e, InSet):
            return self.eval(e.operand, row, paid) in e.values
        if isinstance(e, Cond):
            branch = e.then if self.eval(e.test, row, paid) else e.orelse
            return self.eval(branch, row, paid)
        if isinstance(e, Lookup):
            key = tuple(self.eval(a, row, paid) for a in e.args)
            if key not in self.tables[e.table]:
                raise LookupMiss(e.table)
            value = self.tables[e.table][key]
            self.record(trace.TableRow(e.table, key, value))
            return value
        if isinstance(e, Paid):
            return sum(paid[name] for name in (e.layers or paid))
        if isinstance(e, Call):
            decl = self.registry.functions[e.function]
            args = [np.asarray([self.eval(a, row, paid)]) for a in e.args]
            return decl.impl(*args, n=1)[0].item()
        raise TypeError(f"reference: unsupported node {type(e).__name__}")

    def binary(self, e, row, paid):
        """Python ints never wrap: every +, - and * is computed exactly and then refused
        (OutOfRange) if it leaves int64."""
        a, b = self.eval(e.left, row, paid), self.eval(e.right, row, paid)
        op = e.op
        if op == "*":
            kinds = (e.left.type.kind, e.right.type.kind)
            if kinds in ((MONEY, RATIO), (RATIO, MONEY)):
                return checked(round_half_up(a * b, RATIO_SCALE))
            return checked(a * b)
        if op in ("+", "-"):
            return checked(a + b if op == "+" else a - b)
        return {
            "min": lambda: min(a, b),
            "max": lambda: max(a, b), "==": lambda: a == b, "!=": lambda: a != b,
            "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
            "and": lambda: bool(a) and bool(b), "or": lambda: bool(a) or bool(b),
        }[op]()


class Accounts:
    """Accumulators per (key kind, key value, policy year), all starting at 0. A claim's
    changes are journaled so that a claim refused mid-way (OutOfRange) can be undone.
    ``record`` hears every change (``trace.AccountWrite``)."""

    def __init__(self, record=ignore):
        self.values = defaultdict(int)
        self.journal = {}  # slot -> value before the current claim touched it
        self.record = record

    def get(self, *slot):
        return self.values[slot]

    def add(self, amount, *slot):
        self._write(checked(self.values[slot] + amount), slot)
        self.record(trace.AccountWrite(slot, amount, False))

    def set(self, amount, *slot):
        self._write(amount, slot)
        self.record(trace.AccountWrite(slot, amount, True))

    def _write(self, amount, slot) -> None:
        self.journal.setdefault(slot, self.values[slot])
        self.values[slot] = amount

    def commit(self) -> None:
        self.journal = {}

    def roll_back(self) -> None:
        for slot, value in self.journal.items():
            self.values[slot] = value
        self.journal = {}


def _key_value(row, key):
    """(kind, value) of the claim's accumulator key: ``k`` its own column, ``p`` the person
    it falls back to. A refined key's value is the base value, then each ``by`` column's
    value (a null is ∅, a value of its own) and the month, joined by ' · '."""
    value = row.get("__key_" + key.column)
    kind, value = (("k", value) if value is not None and key.column != "person_id"
                   else ("p", row["__person"]))
    if key.by or key.period == MONTH:
        parts = [str(value)] + ["\u2205" if row["__key_" + c] is None else str(row["__key_" + c])
                                for c in key.by]
        if key.period == MONTH:
            date = EPOCH + datetime.timedelta(days=row["discharge_date"])
            parts.append(f"{date.year}-{date.month:02d}")
        value = " · ".join(parts)
    return kind, value


class ClaimOutOfRange(Exception):
    """A claim refused because an amount of ``layer`` would leave int64."""

    def __init__(self, layer: str):
        super().__init__(layer)
        self.layer = layer


def settle_claim(plan: Plan, ev: ClaimEvaluator, row: dict, acc: Accounts,
                 record=ignore) -> dict:
    """Every layer's payment and deductible for one claim, updating the accounts. Raises
    ClaimOutOfRange (the accounts untouched) when an amount would leave int64. ``record``
    hears every step (core/trace.py); it changes nothing."""
    year = policy_year(row["discharge_date"], plan.year_start)
    record(trace.ClaimStarted(plan, row, year))
    paid, out, paid_sum = {}, {}, 0
    for layer in plan.layers:
        try:
            applies = ev.eval(layer.applies, row, paid)
            record(trace.LayerApplies(layer, bool(applies)))
            if not applies:
                paid[layer.name] = 0
                out[layer.name], out[layer.name + "_deductible"] = 0, 0
                continue
            pay, ded = settle_layer(plan, ev, layer, row, paid, acc, year, record)
            paid_sum = checked(paid_sum + pay)
        except OutOfRange:
            acc.roll_back()
            record(trace.ClaimRefused(row["claim_id"], layer.name))
            raise ClaimOutOfRange(layer.name) from None
        paid[layer.name] = pay
        out[layer.name], out[layer.name + "_deductible"] = pay, ded
    out["self_pay"] = row["total"] - paid_sum
    acc.commit()
    record(trace.ClaimSettled(row["claim_id"], out))
    return out


def settle_layer(plan, ev, layer, row, paid, acc, year, record=ignore):
    raw = ev.eval(layer.base, row, paid)
    base = max(0, raw)
    record(trace.Base(layer, raw, base, dict(paid)))
    d = deduct(layer, ev, row, paid, acc, year, base, record) if layer.deductible else 0
    e = base - d
    if layer.limit is not None:
        k = (layer.name, "limit", _key_value(row, layer.limit.key), year)
        L = ev.eval(layer.limit.amount, row, paid)
        pay = min(e, max(0, checked(checked(acc.get(*k) + e) - L)))
        record(trace.Limit(layer, k, L, acc.get(*k), e, pay))
    elif isinstance(layer.ratio, Bands):
        pay = pay_bands(layer, ev, row, paid, acc, year, e, record)
    elif layer.ratio is not None:
        r = ev.eval(layer.ratio, row, paid)
        pay = checked(round_half_up(e * r, RATIO_SCALE))
        record(trace.Ratio(layer, e, r, pay))
    else:
        pay = e
        record(trace.FullPay(layer, e))
    before_caps = pay = max(0, min(pay, e))
    pay = apply_caps(layer, ev, row, paid, acc, year, pay, record)
    record(trace.LayerPaid(layer, e, before_caps, pay))
    if layer.limit is not None:
        acc.add(e - pay, layer.name, "limit", _key_value(row, layer.limit.key), year)
    return pay, d


def deduct(layer, ev, row, paid, acc, year, base, record=ignore) -> int:
    """The deductible d this claim bears (起付线), updating the key's accounts."""
    ded = layer.deductible
    k = (layer.name, "ded", _key_value(row, ded.key), year)
    D = full = ev.eval(ded.amount, row, paid)
    last = None
    if ded.continuing is not None and ev.eval(ded.continuing, row, paid):
        last = acc.get(*k, "last")
        D = max(0, checked(D - last))
    before = acc.get(*k, "consumed") if ded.scope == PER_YEAR else 0
    remaining = max(0, checked(D - before))
    d = min(base, remaining)
    record(trace.Deductible(layer, k, full, last, D, before, remaining, d))
    if ded.scope == PER_YEAR:
        acc.add(d, *k, "consumed")
    acc.set(d, *k, "last")
    return d


def pay_bands(layer, ev, row, paid, acc, year, e, record=ignore) -> int:
    """What the bands pay on ``e``, entered where the key's cumulative amount stands, at the
    rates of the band set chosen for this claim."""
    when, bands = chosen_bands(ev, layer.ratio, row, paid)
    k = (layer.name, "bands", _key_value(row, layer.ratio.key), year)
    start = acc.get(*k)
    end = checked(start + e)
    record(trace.Bands(layer, k, start, end, when))
    pay = 0
    for i, band in enumerate(bands):
        hi = end if band.hi is None else min(end, band.hi)
        width = hi - max(start, band.lo)
        if width > 0:
            piece = checked(round_half_up(width * band.rate, RATIO_SCALE))
            record(trace.BandPiece(layer, i, band, width, piece))
            pay = checked(pay + piece)
    acc.add(e, *k)
    return pay


def chosen_bands(ev, bands, row, paid) -> tuple:
    """(condition, bands) of the band set paying this claim: the last ``when`` set whose
    condition holds, else the default set (condition None)."""
    chosen = (None, bands.bands)
    for alt in bands.alts:
        if ev.eval(alt.cond, row, paid):
            chosen = (alt.cond, alt.bands)
    return chosen


def _cap_slot(layer, index, cap, row, year):
    owner = ("shared", cap.name) if cap.name else (layer.name, index)
    return (*owner, "cap", _key_value(row, cap.key), year)


def apply_caps(layer, ev, row, paid, acc, year, pay, record=ignore):
    for i, cap in enumerate(layer.caps):
        amount = ev.eval(cap.amount, row, paid)
        slot = _cap_slot(layer, i, cap, row, year) if cap.scope == PER_YEAR else None
        used = acc.get(*slot) if slot else 0
        room = max(0, checked(amount - used))
        record(trace.Cap(layer, i, slot, amount, used, room))
        pay = min(pay, room)
    for i, cap in enumerate(layer.caps):
        if cap.scope == PER_YEAR:
            acc.add(pay, *_cap_slot(layer, i, cap, row, year))
    return pay


def _rows(plan: Plan, prep) -> list:
    names = list(prep.columns)
    cols = {k: (v.tolist() if isinstance(v, np.ndarray) else v.to_pylist())
            for k, v in prep.columns.items()}
    ids = prep.claim_id.to_pylist()
    persons = prep.raw.column("person_id").to_pylist()
    key_cols = {c for k in plan.keys() for c in (k.column, *k.by) if c != "person_id"}
    keys = {c: prep.raw.column(c).to_pylist() for c in key_cols}
    rows = []
    for i in range(prep.n):
        row = {name: cols[name][i] for name in names}
        row.update(claim_id=ids[i], __person=persons[i])
        for c in key_cols:
            row["__key_" + c] = keys[c][i]
        rows.append(row)
    return rows


def _missing_lookup(plan, ev, row) -> str | None:
    """The first table an applying layer misses. A key or condition whose arithmetic leaves
    int64 is not a miss: the claim is refused as out of range instead (_out_of_range_layer)."""
    for layer in plan.layers:
        lookups = ev.lookups(layer)
        if not lookups:
            continue
        try:
            if not ev.eval(layer.applies, row, {}):
                continue
        except OutOfRange:
            continue
        for lk in lookups:
            try:
                ev.eval(lk, row, {})
            except LookupMiss as miss:
                return str(miss)
            except OutOfRange:
                pass
    return None


def _claim_amounts(layer) -> list:
    """The claim's own expressions an applying layer evaluates (spec order)."""
    exprs = [layer.base]
    if layer.deductible is not None:
        exprs.append(layer.deductible.amount)
        if layer.deductible.continuing is not None:
            exprs.append(layer.deductible.continuing)
    if layer.limit is None and layer.ratio is not None and not isinstance(layer.ratio, Bands):
        exprs.append(layer.ratio)
    if layer.limit is None and isinstance(layer.ratio, Bands):
        exprs += [alt.cond for alt in layer.ratio.alts]
    exprs += [cap.amount for cap in layer.caps]
    if layer.limit is not None:
        exprs.append(layer.limit.amount)
    return exprs


def _out_of_range_layer(plan, ev, row) -> str | None:
    """The first layer whose claim-only amounts leave int64 (paid() counted as 0, its terms
    are added during settlement), checked before any claim is settled, or None."""
    nothing_paid = defaultdict(int)
    for layer in plan.layers:
        try:
            if not ev.eval(layer.applies, row, nothing_paid):
                continue
            for e in _claim_amounts(layer):
                ev.eval(e, row, nothing_paid)
        except OutOfRange:
            return layer.name
    return None


def _settle_all(plan: Plan, ev, rows: list, order: list, acc: Accounts, record=ignore) -> tuple:
    """(outputs of the settled rows in order, {row index: layer} of rows refused because
    their accumulation would leave int64; they leave the accounts untouched)."""
    outs, refused = [], {}
    for i in order:
        try:
            outs.append((i, settle_claim(plan, ev, rows[i], acc, record)))
        except ClaimOutOfRange as exc:
            refused[i] = exc.layer
    return outs, refused


def _without_set_aside(prep, set_aside: tuple):
    """prep with the rows ``_claim_steps`` set aside moved to the rejects, kind by kind in
    the order the steps found them (each ``reject_more`` renumbers the rows it leaves)."""
    alive = list(range(prep.n))  # the rows' indices as _claim_steps numbered them
    for reason, why, message in set_aside:
        if not why:
            continue
        bad = np.array([i in why for i in alive], dtype=bool)
        prep = _arrow_io.reject_more(prep, bad, reason, [message(why[i]) for i in alive if i in why])
        alive = [i for i in alive if i not in why]
    return prep


def _without_lookup_misses(plan: Plan, prep, ev) -> tuple:
    """(prep with rows that miss a lookup table moved to the rejects, the other rows as dicts)."""
    rows = _rows(plan, prep)
    misses = [_missing_lookup(plan, ev, r) for r in rows]
    bad = np.array([m is not None for m in misses], dtype=bool)
    if bad.any():
        msgs = [_miss_message(m) for m in misses if m is not None]
        prep = _arrow_io.reject_more(prep, bad, "missing_table_key", msgs)
        rows = [r for r, m in zip(rows, misses) if m is None]
    return prep, rows


def _miss_message(table: str) -> str:
    return f"no row of table {table!r} matches the claim"


def _claim_steps(plan: Plan, ev, rows: list, record=ignore) -> tuple:
    """The oracle's steps over one plan's prepared rows (dicts, in prepared order), the same
    for both entries (``settle`` over Arrow, ``settle_rows`` over plain rows): rows missing a
    lookup are set aside first, then rows whose claim-only amounts leave int64; the rest
    settle in (discharge_date, claim_id) order, a claim whose accumulation would leave int64
    refused. Returns (missed {row: table}, overflowed {row: layer}, outputs [(row, outputs)]
    in settlement order, refused {row: layer}); every row index is into ``rows``."""
    missed = {i: m for i, r in enumerate(rows) if (m := _missing_lookup(plan, ev, r)) is not None}
    overflowed = {i: layer for i, r in enumerate(rows) if i not in missed
                  and (layer := _out_of_range_layer(plan, ev, r)) is not None}
    live = [i for i in range(len(rows)) if i not in missed and i not in overflowed]
    order = sorted(live, key=lambda i: (rows[i]["discharge_date"], rows[i]["claim_id"]))
    outs, refused = _settle_all(plan, ev, rows, order, Accounts(record), record)
    return missed, overflowed, outs, refused


def _set_aside(steps: tuple) -> tuple:
    """(reason, {row: why}, message of why) of ``_claim_steps``' three kinds of rejects, in
    the order the steps find them."""
    missed, overflowed, _, refused = steps
    return (("missing_table_key", missed, _miss_message),
            (OUT_OF_RANGE, overflowed, out_of_range_message),
            (OUT_OF_RANGE, refused, out_of_range_message))


# -- the row entry: rows prepared in plain Python (core/claim_rows.py) ------------------------


class RowsSettled:
    """What ``settle_rows`` settled: the accepted claim ids in settlement order, and the
    rejects (input row, claim_id, reason, message) in input row order."""

    def __init__(self, claim_ids: list, rejects: list):
        self.claim_ids, self.rejects = claim_ids, rejects


def rows_apply(plan: Plan, registry) -> bool:
    """Whether ``settle_rows`` settles under ``plan`` as ``settle`` does: no plugin check
    acts on the plan (their checks read Arrow columns), no stage acts without a run's
    context (a stage adds result columns only), and no provider part or grouper (the
    grouping and points oracles read Arrow tables)."""
    return plan.provider is None and not plan.groupers \
        and not any(v.acts(plan) for v in registry.validators) \
        and not any(s.acts({}) for s in registry.stages)


def settle_rows(plan: Plan, prepared, registry=None, record=ignore) -> RowsSettled:
    """The oracle over rows prepared in plain Python (``claim_rows.prepare_rows``: what
    ``prepare`` gives for them): the steps of ``settle`` for one plan after its plugin
    checks (``rows_apply``), without numpy or pyarrow: rows missing a lookup, then rows whose
    claim-only amounts leave int64, are rejected; the rest settle in (discharge_date,
    claim_id) order, ``record`` hearing every step, a claim whose accumulation would leave
    int64 refused. A policy paying more than a claim's total is refused as ``settle``
    refuses it (SettlementError)."""
    registry = registry or default_registry()
    ev = ClaimEvaluator(plan, registry, record)
    rows, at = prepared.rows, prepared.input_rows
    steps = _claim_steps(plan, ev, rows, record)
    rejects = list(prepared.rejects)
    for reason, why, message in _set_aside(steps):
        rejects += [(at[i], rows[i]["claim_id"], reason, message(w)) for i, w in sorted(why.items())]
    outs = steps[2]
    _check_rows(plan, [(rows[i]["claim_id"], out) for i, out in outs])
    return RowsSettled([rows[i]["claim_id"] for i, _ in outs],
                       sorted(rejects, key=lambda r: r[0]))


def _check_rows(plan: Plan, settled: list) -> None:
    """``check_invariants`` over (claim_id, outputs) in settlement order."""
    bad = [(cid, out["self_pay"]) for cid, out in settled if out["self_pay"] < 0]
    if bad:
        raise _settlement.SettlementError(overpaid_message(plan.name, len(bad), *bad[0]))


def settle(policy, claims, registry=None, context=None, record=ignore) -> BatchResult:
    """The oracle's one settle: the same contract as ``engine.settle``, computed claim by
    claim. A Plan or a sequence of version plans is taken as ``Policy.of`` it; one version
    never enters the version code. ``record`` hears every step of every claim settled
    (core/trace.py: how ``explain`` follows a claim); the results do not depend on it."""
    policy = Policy.of(policy)
    registry = registry or default_registry()
    if policy.single:
        return _settle_plan(policy.first, claims, registry, context, record)
    return _settle_versions(policy.versions, claims, registry, context, record)


def _settle_plan(plan: Plan, claims, registry, context=None, record=ignore) -> BatchResult:
    """One batch under one plan, claim by claim."""
    prep = _arrow_io.prepare(plan, claims)
    input_rows = prep.n + len(prep.rejects)
    prep = _settlement.run_validators(plan, prep, registry)
    ev = ClaimEvaluator(plan, registry, record)
    rows = _rows(plan, prep)
    steps = _claim_steps(plan, ev, rows, record)
    raw = prep.raw  # rows[i] is row i of it (before any of the steps' rejects leave prep)
    total = np.asarray(prep.columns["total"])  # fen, aligned with raw
    prep = _without_set_aside(prep, _set_aside(steps))
    outs = steps[2]
    order = [i for i, _ in outs]
    schema = _settlement.result_schema(plan)
    data = {"claim_id": [rows[i]["claim_id"] for i in order]}
    for name in schema.names[1:]:
        data[name] = [o[name] for _, o in outs]
    results = _with_identity_by_id(pa.table(data, schema=schema), raw)
    _settlement.check_invariants(plan, results)
    if registry.stages:
        results = _settlement.run_stages(plan, results, raw.take(pa.array(order, pa.int64())),
                                         registry, context, reference=True)
    if plan.provider is not None or plan.groupers:
        from .provider import append_claim_columns  # the grouping and points oracles
        results = append_claim_columns(
            plan, results, _settlement.with_fen_total(raw.take(pa.array(order, pa.int64())),
                                                      total[np.asarray(order, np.int64)]),
            reference=True,
            groupers=registry.groupers, record=record)
    return _settlement.BatchResult(results, _arrow_io.rejects_table(prep.rejects), input_rows)


def _settle_versions(plans, claims, registry, context=None, record=ignore) -> BatchResult:
    """Several versions, claim by claim: each claim is settled
    with the plan of the version in force on its discharge date, all claims in one
    (discharge_date, claim_id) order against one set of accounts, so a mid-year change between
    versions of the same structure carries every accumulator across (accounts are named by
    layer). The version choice, the refusal across structures and the cross-version duplicate
    rejects are core/settlement.py's, shared with the kernel."""
    plans = _settlement.check_versions(plans)
    claims = _arrow_io.as_table(claims)
    choice = _settlement.choose_versions(plans, claims)
    which, groups, rejects = choice.which, choice.groups, choice.rejects
    todo = []  # (plan, evaluator, row)
    for i, plan in enumerate(plans):
        rows, prep, ev, accepted = _version_rows(plan, claims, which == i, registry, rejects,
                                                 record)
        todo += [(plan, ev, r) for r in accepted]
    todo.sort(key=lambda t: (t[2]["discharge_date"], t[2]["claim_id"]))
    merged = _merged_plans(plans, groups, which)
    acc = Accounts(record)
    outs, kept = [], []
    for plan, ev, row in todo:
        try:
            outs.append(settle_claim(plan, ev, row, acc, record))
            kept.append((plan, ev, row))
        except ClaimOutOfRange as exc:  # the kernel's merged program stops; one plan rejects
            if id(plan) in merged:
                raise _settlement.SettlementError(f"claim {row['claim_id']!r}: "
                                                  f"{out_of_range_message(exc.layer)}") from None
            rejects.append(_refused_row(claims, row, exc.layer))
    todo = kept
    pieces = []
    for plan, group in _runs(todo, outs):
        schema = _settlement.result_schema(plan)
        data = {"claim_id": [row["claim_id"] for _, _, row, _ in group]}
        for name in schema.names[1:]:
            data[name] = [o[name] for *_, o in group]
        pieces.append(_with_identity_by_id(pa.table(data, schema=schema), claims))
    results = _settlement.concat_results(pieces, plans, claims.schema)
    _settlement.check_invariants(plans[0], results)  # reads claim_id and self_pay only
    if any(p.provider is not None or p.groupers for p in plans):
        results = _provider_by_version(plans, todo, results, claims, registry, record)
    return _settlement.BatchResult(results, _settlement.sorted_rejects(rejects),
                                   claims.num_rows)


def _provider_by_version(plans, todo, results: pa.Table, claims: pa.Table, registry,
                         record=ignore) -> pa.Table:
    """``results`` (row k: the claim of ``todo[k]``) with the provider columns, each
    version's claims grouped and scored under its own plan, as the engine does; ``record``
    hears the points oracle. A version without a provider part leaves its rows null."""
    from .provider import append_claim_columns  # the grouping and points oracles
    row_of = {c: i for i, c in enumerate(claims.column("claim_id").to_pylist())}
    pieces, at = [], []
    for plan in plans:
        mine = [k for k, t in enumerate(todo) if t[0] is plan]
        if not mine:
            continue
        rows = [todo[k][2] for k in mine]
        raw = claims.take(pa.array([row_of[r["claim_id"]] for r in rows], pa.int64()))
        pieces.append(append_claim_columns(
            plan, results.take(pa.array(mine, pa.int64())),
            _settlement.with_fen_total(raw, [r["total"] for r in rows]), reference=True,
            groupers=registry.groupers, record=record))
        at += mine
    back = np.empty(len(at), np.int64)
    back[np.asarray(at, np.int64)] = np.arange(len(at), dtype=np.int64)
    return pa.concat_tables(pieces, promote_options="default").take(pa.array(back))


def _with_identity_by_id(results: pa.Table, claims: pa.Table) -> pa.Table:
    """The identity columns (settlement.IDENTITY) found by claim id, a dict lookup per
    claim: the obvious way, apart from the engine's gather in settlement order."""
    names = [f.name for f in _settlement.identity_fields(claims.schema)]
    row_of = {c: i for i, c in enumerate(claims.column("claim_id").to_pylist())}
    rows = [row_of[c] for c in results.column("claim_id").to_pylist()]
    return _settlement.with_identity(results,
                                     claims.select(names).take(pa.array(rows, pa.int64())))


def _merged_plans(plans, groups, which) -> set:
    """ids of the plans that the kernel settles as one merged program (a
    structure group with claims under more than one version)."""
    used = {int(w) for w in np.unique(which) if w >= 0}
    out = set()
    for g in set(int(x) for x in groups):
        members = [i for i in range(len(plans)) if groups[i] == g and i in used]
        if len(members) > 1:
            out.update(id(plans[i]) for i in members)
    return out


def _refused_row(claims, row, layer) -> pa.Table:
    """The rejects row of a claim refused during settlement (input row number)."""
    ids = claims.column("claim_id").to_pylist()
    at = ids.index(row["claim_id"])
    return _arrow_io.rejects_table([(at, row["claim_id"], OUT_OF_RANGE,
                                     out_of_range_message(layer))])


def _runs(todo, outs):
    """Consecutive claims settled under one plan: [(plan, [(plan, ev, row, out)])]."""
    runs = []
    for (plan, ev, row), out in zip(todo, outs):
        if not runs or runs[-1][0] is not plan:
            runs.append((plan, []))
        runs[-1][1].append((plan, ev, row, out))
    return runs


def _version_rows(plan, claims, mask, registry, rejects, record=ignore):
    """Prepare one version's rows; append their rejects (input row numbers) to ``rejects``."""
    rows = np.flatnonzero(mask)
    prep = _arrow_io.prepare(plan, claims.take(pa.array(rows, pa.int64())))
    prep = _settlement.run_validators(plan, prep, registry)
    ev = ClaimEvaluator(plan, registry, record)
    prep, accepted = _without_lookup_misses(plan, prep, ev)
    rejects.append(_settlement.renumber_rejects(_arrow_io.rejects_table(prep.rejects), rows))
    return rows, prep, ev, accepted

"""The engine: settle a claim batch under a plan, in memory.

``settle(plan, claims)`` returns the per-claim results as a pyarrow Table; ``settle_batch``
also returns the rejects. Results are in settlement order (discharge_date, claim_id), so they
never depend on the input's row order or batching.

Result columns: ``claim_id``; one int64 fen column per layer, named by the layer; a
``<layer>_deductible`` column for each layer with a deductible; ``self_pay`` = total − Σ layer
payments.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .arrow_io import ClaimsError, Prepared, prepare, reject_more, rejects_table
from .lower import (Lowerer, applying_lookups_missing, dense_ids, key_values, policy_years,
                    settlement_order)
from .money import OUT_OF_RANGE, out_of_range_message
from .plan import Column, Plan, layer_exprs, walk
from .registry import default_registry
from .vector import Evaluator


class SettlementError(ClaimsError):
    """The plan produced a result the settlement contract forbids (a claim paid more than its
    total): a policy bug, so the run stops rather than publish wrong money (exit code 2)."""


def check_invariants(plan: Plan, results: pa.Table) -> None:
    """benefits.md: for every claim Σ payments + self_pay = total with self_pay ≥ 0 (each
    payment is ≥ 0 and ≤ its base by construction). A policy whose bases add up to more than
    the total (e.g. ``base in_scope + total``) breaks it; name the first such claim."""
    if results.num_rows == 0:
        return
    self_pay = results.column("self_pay").to_numpy()
    bad = np.flatnonzero(self_pay < 0)
    if len(bad):
        i = int(bad[0])
        claim = results.column("claim_id")[i].as_py()
        raise SettlementError(
            f"policy {plan.name!r} pays more than the total of {len(bad)} claim(s), e.g. claim "
            f"{claim!r} (self_pay {self_pay[i] / 100:,.2f} yuan): the layers' bases add up to "
            "more than the claim's total; base a later layer on what is left, e.g. "
            "`total - paid`")


@dataclass
class BatchResult:
    results: pa.Table  # accepted claims, settlement order
    rejects: pa.Table  # rejected rows, input row order
    input_rows: int


def result_schema(plan: Plan) -> pa.Schema:
    fields = [pa.field("claim_id", pa.string())]
    for layer in plan.layers:
        fields.append(pa.field(layer.name, pa.int64()))
        if layer.deductible is not None:
            fields.append(pa.field(f"{layer.name}_deductible", pa.int64()))
    fields.append(pa.field("self_pay", pa.int64()))
    return pa.schema(fields)


def run_validators(plan: Plan, prep: Prepared, registry) -> Prepared:
    """Plugin claim checks, in registration order; flagged rows go to the rejects."""
    for v in registry.validators:
        try:
            mask, messages = v.check(plan, prep.columns, prep.raw, prep.n)
        except Exception as exc:
            raise RuntimeError(f"plugin {v.plugin!r}: validator {v.name!r} failed: {exc}") from exc
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            if isinstance(messages, str):
                messages = [messages] * int(mask.sum())
            prep = reject_more(prep, mask, v.reason, list(messages))
    return prep


def run_stages(plan: Plan, results: pa.Table, claims: pa.Table, registry, context,
               reference=False) -> pa.Table:
    """Plugin stages after the layers: each adds its columns to the results."""
    for stage in registry.stages:
        fn = stage.reference if reference and stage.reference else stage.run
        try:
            added = fn(plan, results, claims, context or {})
        except Exception as exc:
            raise RuntimeError(f"plugin {stage.plugin!r}: stage {stage.name!r} failed: {exc}") \
                from exc
        if added is None:  # the run gave the stage nothing to do (e.g. no balances table)
            continue
        for name, typ in stage.columns:
            results = results.append_column(pa.field(name, typ), pa.array(added[name], typ))
    return results


def _keys(plan: Plan, prep: Prepared) -> dict:
    out = {}
    for key in plan.keys():
        out[key.name] = dense_ids(key_values(prep.raw, key)) if prep.n else (
            np.zeros(0, np.int64), 0)
    return out


@dataclass
class Lowered:
    """A batch ready for the kernel. The program's rows are the accepted rows permuted into
    settlement order (row t of the program is row ``order[t]`` of ``prep``), so the kernel and
    the result columns read memory front to back."""
    prep: Prepared
    program: object  # lower.Program, rows in settlement order
    order: np.ndarray  # int64: prep row of each program row
    kernel_order: np.ndarray  # the identity 0..n-1, what the kernel walks


def _in_order(prep: Prepared, keys: dict, order: np.ndarray) -> tuple:
    """The prepared columns and key ids taken into settlement order (one gather each)."""
    cols = {k: (v[order] if isinstance(v, np.ndarray) else v.take(pa.array(order)))
            for k, v in prep.columns.items()}
    return cols, {k: (np.ascontiguousarray(ids[order]), count) for k, (ids, count) in keys.items()}


def lower_batch(plan: Plan, claims, registry=None) -> Lowered:
    """Everything before the kernel loop: prepare, plugin validators, lookup rejects, keys,
    the settlement order, vectorised expressions and policy years."""
    registry = registry or default_registry()
    prep = prepare(plan, claims)
    prep = run_validators(plan, prep, registry)
    while True:  # at most three times: again only after rejecting lookup misses, overflows
        order = settlement_order(prep.claim_id, prep.columns["discharge_date"])
        cols, keys = _in_order(prep, _keys(plan, prep), order)
        ev = Evaluator(plan, cols, prep.n, registry)
        missing, which = applying_lookups_missing(plan, ev)  # the lookups stay cached in ev
        if missing.any():
            prep = _reject_rows_in_order(prep, order, missing, which)
            continue
        program = Lowerer(plan, ev, keys, prep.n).lower()
        over = program.claim_overflow > 0
        if not over.any():
            break
        prep = _reject_overflow_in_order(plan, prep, order, program.claim_overflow)
    program.year = np.ascontiguousarray(policy_years(cols["discharge_date"], plan.year_start))
    return Lowered(prep, program, order, np.arange(prep.n, dtype=np.int64))


def _reject_overflow_in_order(plan: Plan, prep: Prepared, order, layer_plus_one) -> Prepared:
    """Reject the rows whose amounts leave int64 (``layer_plus_one[t]`` > 0 for prep row
    ``order[t]``: the index + 1 of the first layer where they do)."""
    bad = np.zeros(prep.n, dtype=bool)
    at = np.zeros(prep.n, dtype=np.int64)
    flagged = layer_plus_one > 0
    bad[order[flagged]] = True
    at[order[flagged]] = layer_plus_one[flagged]
    messages = [out_of_range_message(plan.layers[k - 1].name) for k in at[bad]]
    return reject_more(prep, bad, OUT_OF_RANGE, messages)


def _reject_rows_in_order(prep: Prepared, order, missing, which) -> Prepared:
    """Reject the rows flagged in settlement order (``missing[t]`` is prep row ``order[t]``)."""
    bad = np.zeros(prep.n, dtype=bool)
    bad[order[missing]] = True
    table_of = np.empty(prep.n, dtype=object)
    table_of[order] = which
    messages = [f"no row of table {t!r} matches the claim" for t in table_of[bad]]
    return reject_more(prep, bad, "missing_table_key", messages)


CHUNK_ROWS = 1 << 16  # rows evaluated and settled at a time: the temporaries stay in cache


def expression_columns(plan: Plan) -> set:
    """The claim columns the layers' expressions read (ids and dates are read elsewhere)."""
    return {e.name for layer in plan.layers for top in layer_exprs(layer) for e in walk(top)
            if isinstance(e, Column)}


class ChunkedSettlement:
    """Settles prepared rows chunk by chunk in settlement order. Each chunk gathers its rows,
    evaluates the claim-only expressions (vector.py) and runs the kernel; the accumulators
    (one row per key id, see _kernel.pxd) persist across chunks, so the result is that of one
    pass. A row that misses a lookup table is not given to the kernel (a rejected row touches
    no accumulator) and is rejected afterwards. Peak memory is the prepared columns, the
    outputs and one chunk's temporaries, not a dozen full-length arrays per layer."""

    def __init__(self, plan: Plan, prep: Prepared, registry, order: np.ndarray, keys=None):
        self.plan, self.prep, self.registry, self.order = plan, prep, registry, order
        self.keys = keys if keys is not None else _keys(plan, prep)
        self.used = expression_columns(plan)  # only these are gathered per chunk
        self.years = policy_years(prep.columns["discharge_date"], plan.year_start)
        self.tables: dict = {}
        self.blocks = None
        n = prep.n
        self.out_pay = [np.zeros(n, dtype=np.int64) for _ in plan.layers]
        self.out_ded = [np.zeros(n, dtype=np.int64) if layer.deductible is not None else None
                        for layer in plan.layers]
        self.missing = np.zeros(n, dtype=bool)
        self.missing_table = np.empty(n, dtype=object)
        self.overflow = np.zeros(n, dtype=np.int32)  # layer + 1 where amounts leave int64

    def run(self, chunk_rows: int = None, progress=None) -> None:
        """Settle every chunk in order. With two threads (the default; ``YIBAO_THREADS=1``
        turns it off) the next chunk's gathers and expressions are built while the kernel,
        which releases the GIL, settles this one. Only the main thread runs the kernel, in
        chunk order, so results are the same whatever the thread count. ``progress(rows)``,
        when given, is called on the main thread after each chunk with its row count."""
        chunk_rows = chunk_rows or CHUNK_ROWS
        starts = list(range(0, self.prep.n, chunk_rows))
        if len(starts) < 2 or os.environ.get("YIBAO_THREADS", "2") == "1":
            for start in starts:
                self.settle_chunk(self.build(start, chunk_rows), progress)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-eval") as pool:
            pending = pool.submit(self.build, starts[0], chunk_rows)
            for k in range(len(starts)):
                built = pending.result()
                if k + 1 < len(starts):
                    pending = pool.submit(self.build, starts[k + 1], chunk_rows)
                self.settle_chunk(built, progress)

    def build(self, start: int, chunk_rows: int) -> tuple:
        """Gather one chunk's rows and evaluate its claim-only expressions (no state)."""
        rows = self.order[start:start + chunk_rows]
        n = len(rows)
        cols = {k: (v[rows] if isinstance(v, np.ndarray) else v.take(pa.array(rows)))
                for k, v in self.prep.columns.items() if k in self.used}
        ev = Evaluator(self.plan, cols, n, self.registry, self.tables)
        missing, which = applying_lookups_missing(self.plan, ev)
        keys = {k: (np.ascontiguousarray(ids[rows]), count)
                for k, (ids, count) in self.keys.items()}
        program = Lowerer(self.plan, ev, keys, n).lower()
        program.year = np.ascontiguousarray(self.years[rows])
        return start, program, missing, which

    def settle_chunk(self, built: tuple, progress=None) -> None:
        """Run the kernel on a built chunk against the carried accumulators."""
        start, program, missing, which = built
        end = start + program.n
        if self.blocks is None:
            self.blocks = program.accumulator_rows()
        skip = missing | (program.claim_overflow > 0)
        program.run_rows(np.flatnonzero(~skip).astype(np.int64), self.blocks)
        overflow = np.where(missing, 0, np.maximum(program.claim_overflow, program.overflow))
        if overflow.any():  # rare: rejected below, never given to (or rolled back by) the kernel
            self.overflow[start:end] = overflow
        for i, spec in enumerate(program.layers):
            self.out_pay[i][start:end] = spec["out_pay"]
            if spec["out_ded"] is not None:
                self.out_ded[i][start:end] = spec["out_ded"]
        if missing.any():  # rare: keep the object-array work off the common path
            self.missing[start:end] = missing
            self.missing_table[start:end] = which
        if progress is not None:
            progress(program.n)

    def results(self) -> tuple:
        """(results table in settlement order, the prep rows settled in that order); rows a
        lookup missed or whose amounts left int64 are left out (see ``rejected``)."""
        keep = ~self.missing & (self.overflow == 0)
        order = self.order[keep]
        cols = {"claim_id": self.prep.claim_id.take(pa.array(order))}
        paid = np.zeros(len(order), dtype=np.int64)
        for layer, pay, ded in zip(self.plan.layers, self.out_pay, self.out_ded):
            pay = pay[keep] if not keep.all() else pay
            paid += pay
            cols[layer.name] = pa.array(pay)
            if ded is not None:
                cols[f"{layer.name}_deductible"] = pa.array(ded[keep] if not keep.all() else ded)
        cols["self_pay"] = pa.array(self.prep.columns["total"][order] - paid)
        return pa.table(cols, schema=result_schema(self.plan)), order

    def rejected(self) -> Prepared:
        """The prepared rows with lookup misses, then those whose amounts leave int64,
        moved to the rejects."""
        prep = self.prep
        if self.missing.any():
            prep = _reject_rows_in_order(prep, self.order, self.missing, self.missing_table)
        if self.overflow.any():
            kept = self.order[~self.missing]  # prep rows left, in settlement order
            rank = np.empty(self.prep.n, dtype=np.int64)
            rank[np.sort(kept)] = np.arange(len(kept))  # their index in the reduced prep
            prep = _reject_overflow_in_order(self.plan, prep, rank[kept],
                                             self.overflow[~self.missing])
        return prep


def _stage_columns(registry):
    """The claim columns the registered stages read (None: a stage reads them all)."""
    wanted = set()
    for stage in registry.stages:
        if stage.claim_columns is None:
            return None
        wanted.update(stage.claim_columns)
    return wanted


def _claims_in_order(raw: pa.Table, order: np.ndarray, columns) -> pa.Table:
    """The accepted claims in settlement order, only ``columns`` of them (None: all): taking
    every column, list columns of diagnoses included, costs more than the settlement."""
    if columns is not None:
        raw = raw.select([c for c in raw.column_names if c in columns or c == "claim_id"])
    return raw.take(pa.array(order))


def _order_and_keys(plan: Plan, prep: Prepared) -> tuple:
    """The settlement order and the dense key ids: independent, and both mostly outside the
    GIL (sorting, id hashing), so with two threads they are computed side by side."""
    days = prep.columns["discharge_date"]
    if os.environ.get("YIBAO_THREADS", "2") == "1" or prep.n < CHUNK_ROWS:
        return settlement_order(prep.claim_id, days), _keys(plan, prep)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-keys") as pool:
        keys = pool.submit(_keys, plan, prep)
        return settlement_order(prep.claim_id, days), keys.result()


def settle_batch(plan: Plan, claims, registry=None, context=None,
                 progress=None) -> BatchResult:
    """Check, settle and return results and rejects for one in-memory batch. ``context`` holds
    the run's extra inputs for plugin stages (e.g. ``{"balances": table}``). ``progress(rows)``
    is called after each settled chunk (rows the validators rejected are never reported)."""
    registry = registry or default_registry()
    prep = run_validators(plan, prepare(plan, claims), registry)
    input_rows = prep.n + len(prep.rejects)
    order, keys = _order_and_keys(plan, prep)
    run = ChunkedSettlement(plan, prep, registry, order, keys)
    run.run(progress=progress)
    results, order = run.results()
    rejects = run.rejected().rejects
    check_invariants(plan, results)
    if registry.stages:
        claims_in_order = _claims_in_order(prep.raw, order, _stage_columns(registry))
        results = run_stages(plan, results, claims_in_order, registry, context)
    if plan.provider is not None or plan.groupers:
        from .provider import append_claim_columns, needed_columns  # group, points
        claims_in_order = _claims_in_order(prep.raw, order, set(needed_columns(plan)))
        results = append_claim_columns(plan, results, claims_in_order)
    return BatchResult(results, rejects_table(rejects), input_rows)


def _results_table(plan: Plan, prep: Prepared, program, order: np.ndarray) -> pa.Table:
    """Result columns in settlement order: the kernel's outputs already are."""
    cols = {"claim_id": prep.claim_id.take(pa.array(order))}
    paid = np.zeros(prep.n, dtype=np.int64)
    for layer, spec in zip(plan.layers, program.layers):
        paid += spec["out_pay"]
        cols[layer.name] = pa.array(spec["out_pay"])
        if spec["out_ded"] is not None:
            cols[f"{layer.name}_deductible"] = pa.array(spec["out_ded"])
    cols["self_pay"] = pa.array(prep.columns["total"][order] - paid)
    return pa.table(cols, schema=result_schema(plan))


def settle(plan: Plan, claims, registry=None, context=None) -> pa.Table:
    """Per-claim results of the accepted claims (see module docstring)."""
    return settle_batch(plan, claims, registry, context).results

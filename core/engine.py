"""The engine: settle a claim batch under a policy, in memory, with the Cython kernel.

``settle(policy, claims, registry)`` is the kernel's one entry point: it returns a
``BatchResult`` (results and rejects). Results are in settlement order (discharge_date,
claim_id), so they never depend on the input's row order or batching. What the oracle
(core/reference.py) shares with it — result schema, invariants, plugin validators and stages,
reject builders, the version of each claim — lives in core/settlement.py.

Result columns: ``claim_id``; the claims' ``person_id``, ``hospital_id`` (when they have
one) and ``discharge_date`` (settlement.IDENTITY: what a settlement system joins on); one
int64 fen column per layer, named by the layer; a ``<layer>_deductible`` column for each layer
with a deductible; ``self_pay`` = total − Σ layer payments.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from ._gather import take
from ._ids import renumber_in_order
from ._order import gather
from .identity import IdentityPieces, threaded as identity_threaded
from .arrow_io import (MONEY_COLUMNS, REQUIRED, Prepared, as_table, coded_schema,
                       only_columns, prepare, reject_more, rejects_table)
from .lower import (Lowerer, Program, applying_lookups_missing, dense_ids, key_values,
                    policy_years, settlement_order)
from .money import OUT_OF_RANGE, out_of_range_message
from .pages import small_pages
from .partition import bucket_order
from .plan import PERSON, Column, Plan, layer_exprs, walk
from .policy import Policy
from .registry import default_registry
from .settlement import (IDENTITY, BatchResult, SettlementError,  # noqa: F401
                         check_invariants, check_versions, choose_versions, concat_results,
                         identity_fields, renumber_rejects, result_schema, run_stages,
                         run_validators, sorted_rejects, with_fen_total, with_identity)
from .vector import Evaluator
from . import timeline


def _keys(plan: Plan, prep: Prepared) -> dict:
    """{key name: (dense id per prepared row, number of ids)}: as ingestion numbered them
    (``Prepared.key_ids``: the person, a family falling back to the person), the others
    (refined keys, non-text key columns) hashed here from their values."""
    out = {}
    for key in plan.keys():
        if key.name in prep.key_ids:
            out[key.name] = prep.key_ids[key.name]
            continue
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


def lower_batch(plan: Plan, claims, registry=None, lead=None) -> Lowered:
    """Everything before the kernel loop: prepare, plugin validators, lookup rejects, keys,
    the settlement order, vectorised expressions and policy years. ``lead`` (per input row,
    e.g. a run's buckets) leads the order and renumbers the key ids along it, as
    ``settle_by_bucket`` does: the program is then the one a run's kernel walks."""
    registry = registry or default_registry()
    prep = prepare(plan, claims)
    prep = run_validators(plan, prep, registry)
    while True:  # at most three times: again only after rejecting lookup misses, overflows
        order = _run_order(prep, lead)
        cols, keys = _in_order(prep, _keys_numbered_along(_keys(plan, prep), order, lead),
                               order)
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
# A run's chunks (``settle_by_bucket_streamed``) are RUN_CHUNKS times as long (2**17 rows:
# one results piece, STREAM_ROWS, each): each chunk's build pays a fixed cost in Python (the
# evaluator's dispatch and caches, hashing plan nodes, the lookups' small tables), and on a
# run's two busy cores every CPU second counts. Measured (issue 14, w17, 2M claims, reference
# policy, one thread, best of 5, load 5): builds 0.32-0.35 s of CPU at 2**16 rows, 0.29-0.30
# at 2**17, 0.27 at 2**18; the kernel's 0.11-0.13 s the same at all three. 2**18 would hold
# two chunks of 2**18 rows' temporaries (the build runs one ahead): not for 0.025 s more.
RUN_CHUNKS = 2


def expression_columns(plan: Plan) -> set:
    """The claim columns the layers' expressions read (ids and dates are read elsewhere)."""
    return {e.name for layer in plan.layers for top in layer_exprs(layer) for e in walk(top)
            if isinstance(e, Column)}


class ChunkedSettlement:
    """Settles prepared rows chunk by chunk in settlement order (``order``: the prep row of
    each result row). Each chunk gathers its rows, evaluates the claim-only expressions
    (vector.py) and runs the kernel; the accumulators (one row per key id, see _kernel.pxd)
    persist across chunks, so the result is that of one pass. A row that misses a lookup
    table is not given to the kernel (a rejected row touches no accumulator) and is rejected
    afterwards. Peak memory is the prepared columns, the result columns (written in place,
    ``self_pay`` too: the kernel's output buffers become the result's) and one chunk's
    temporaries; what the results do not need is let go when the run ends. A streamed run
    (``by_chunk``) makes no column of every row: each chunk's outputs are the columns of
    the pieces holding its rows and go with them (``results_between``)."""

    def __init__(self, plan: Plan, prep: Prepared, registry, order: np.ndarray, keys=None,
                 keep_columns=None, by_chunk: bool = False):
        self.plan, self.prep, self.registry, self.order = plan, prep, registry, order
        self.keys = keys if keys is not None else _keys(plan, prep)
        self.keep_columns = keep_columns  # prepared columns kept after the run (None: all)
        # only these are gathered per chunk: the expressions' columns, the dates (policy
        # years) and the total (self_pay)
        self.used = expression_columns(plan) | {"discharge_date", "total"}
        self.tables: dict = {}
        self.blocks = None
        # by_chunk (a streamed run): each chunk's kernel outputs are its results' columns,
        # kept by chunk start until ``results_between`` hands them out (and lets them go),
        # instead of columns of every row written chunk by chunk and held to the run's end
        # (issue 14, w18: at 2M claims 8 such columns were 128 MB of fresh pages)
        self.by_chunk = {} if by_chunk else None
        n = 0 if by_chunk else prep.n
        self.out_pay = [np.zeros(n, dtype=np.int64) for _ in plan.layers]
        self.out_ded = [np.zeros(n, dtype=np.int64) if layer.deductible is not None else None
                        for layer in plan.layers]
        self.self_pay = np.zeros(n, dtype=np.int64)
        # made when first needed (rare): a lookup miss (with its table), amounts leaving int64
        # (layer + 1 where they do); each by result row (of ``order``)
        self.missing = self.missing_table = self.overflow = None

    def run(self, chunk_rows: int = None, progress=None) -> None:
        """Settle every chunk in order. With two threads (the default; ``YIBAO_THREADS=1``
        turns it off) the next chunk's gathers and expressions are built while the kernel,
        which releases the GIL, settles this one. Only the main thread runs the kernel, in
        chunk order, so results are the same whatever the thread count. ``progress(rows)``,
        when given, is called on the main thread after each chunk with its row count. The key
        ids, the accumulators and the prepared columns not in ``keep_columns`` are let go at
        the end (the results need none of them)."""
        chunk_rows = chunk_rows or CHUNK_ROWS
        starts = list(range(0, self.prep.n, chunk_rows))
        if len(starts) < 2 or os.environ.get("YIBAO_THREADS", "2") == "1":
            for start in starts:
                self.settle_chunk(self.build(start, chunk_rows), progress)
        else:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-eval") as pool:
                pending = pool.submit(self.build, starts[0], chunk_rows)
                for k in range(len(starts)):
                    built = pending.result()
                    if k + 1 < len(starts):
                        pending = pool.submit(self.build, starts[k + 1], chunk_rows)
                    self.settle_chunk(built, progress)
        self.keys = self.blocks = None
        self.tables = {}
        if self.keep_columns is not None:
            self.prep = replace(self.prep, columns={k: v for k, v in self.prep.columns.items()
                                                    if k in self.keep_columns})

    def build(self, start: int, chunk_rows: int) -> tuple:
        """Gather one chunk's rows and evaluate its claim-only expressions (no state). The
        numpy columns and key ids are gathered by ``_gather.take`` (a typed loop per column:
        less CPU than numpy's fancy indexing)."""
        at = slice(start, min(start + chunk_rows, self.prep.n))  # the chunk's result rows
        rows = self.order[at]
        n = len(rows)
        cols = {k: (take(v, rows) if isinstance(v, np.ndarray) else v.take(pa.array(rows)))
                for k, v in self.prep.columns.items() if k in self.used}
        ev = Evaluator(self.plan, cols, n, self.registry, self.tables)
        missing, which = applying_lookups_missing(self.plan, ev)
        keys = {k: (take(ids, rows), count) for k, (ids, count) in self.keys.items()}
        program = Lowerer(self.plan, ev, keys, n).lower()
        program.year = np.ascontiguousarray(
            policy_years(cols["discharge_date"], self.plan.year_start))
        return at, program, missing, which, cols["total"]

    def settle_chunk(self, built: tuple, progress=None) -> None:
        """Run the kernel on a built chunk against the carried accumulators; its payments,
        deductibles and self_pay go to its result rows."""
        at, program, missing, which, total = built
        if self.blocks is None:
            self.blocks = program.accumulator_rows()
        skip = missing | (program.claim_overflow > 0)
        program.run_rows(np.flatnonzero(~skip).astype(np.int64), self.blocks)
        overflow = np.where(missing, 0, np.maximum(program.claim_overflow, program.overflow))
        if overflow.any():  # rare: rejected below, never given to (or rolled back by) the kernel
            self._flags()[2][at] = overflow
        self_pay = np.array(total, dtype=np.int64)  # total − Σ layer payments, in place
        for spec in program.layers:
            np.subtract(self_pay, spec["out_pay"], out=self_pay)
        if self.by_chunk is not None:
            self.by_chunk[at.start] = ([spec["out_pay"] for spec in program.layers],
                                       [spec["out_ded"] for spec in program.layers], self_pay)
        else:
            for i, spec in enumerate(program.layers):
                self.out_pay[i][at] = spec["out_pay"]
                if spec["out_ded"] is not None:
                    self.out_ded[i][at] = spec["out_ded"]
            self.self_pay[at] = self_pay
        if missing.any():  # rare: keep the object-array work off the common path
            flags = self._flags()
            flags[0][at] = missing
            flags[1][at] = which
        if progress is not None:
            progress(program.n)

    def _flags(self) -> tuple:
        """(missing, missing_table, overflow) by result row, made on first use."""
        if self.missing is None:
            n = self.prep.n
            self.missing, self.missing_table = np.zeros(n, dtype=bool), np.empty(n, object)
            self.overflow = np.zeros(n, dtype=np.int32)
        return self.missing, self.missing_table, self.overflow

    def results(self, identity: pa.Table) -> tuple:
        """(results table in settlement order, the prep rows settled in that order); rows a
        lookup missed or whose amounts left int64 are left out (see ``rejected``).
        ``identity`` is claim_id and the identity columns of every row of ``self.order``
        (``_identity_in_order``). The payment columns are the kernel's output buffers, not
        copies."""
        return self.results_between(identity, 0, len(self.order))

    def results_between(self, identity: pa.Table, start: int, end: int,
                        at: int = 0) -> tuple:
        """``results`` of rows ``start:end`` of ``self.order`` only (settled; a run's writer
        takes them piece by piece, ``_ResultStream``): the result columns are views of the
        kernel's outputs (no copy) unless a row is left out. ``identity``: of the rows from
        row ``at`` of the order on (0: of every row; core/identity.py)."""
        order, ident = self.order[start:end], identity.slice(start - at, end - start)
        pays, deds, self_pay = self._outputs(start, end)
        if self.missing is not None:  # rare: copies only when a row was left out
            keep = ~self.missing[start:end] & (self.overflow[start:end] == 0)
            if not keep.all():
                order, ident, self_pay = order[keep], ident.filter(pa.array(keep)), \
                    self_pay[keep]
                pays = [pay[keep] for pay in pays]
                deds = [None if ded is None else ded[keep] for ded in deds]
        cols = {"claim_id": ident.column("claim_id")}
        for layer, pay, ded in zip(self.plan.layers, pays, deds):
            cols[layer.name] = pa.array(pay)  # contiguous int64 without nulls: no copy
            if ded is not None:
                cols[f"{layer.name}_deductible"] = pa.array(ded)
        cols["self_pay"] = pa.array(self_pay)
        return with_identity(pa.table(cols, schema=result_schema(self.plan)), ident), order

    def _outputs(self, start: int, end: int) -> tuple:
        """(payments per layer, deductibles per layer or None, self_pay) of result rows
        ``start:end``: views of the whole columns, or (``by_chunk``) of the outputs of the
        chunks holding those rows. Pieces are asked for in order, each row once (a streamed
        run), so a chunk wholly handed out is let go here."""
        if self.by_chunk is None:
            return ([pay[start:end] for pay in self.out_pay],
                    [None if ded is None else ded[start:end] for ded in self.out_ded],
                    self.self_pay[start:end])  # written by each chunk (settle_chunk)
        parts = []
        for at in sorted(self.by_chunk):
            pays, deds, self_pay = self.by_chunk[at]
            last = at + len(self_pay)
            if last <= start or at >= end:
                continue
            cut = slice(max(start, at) - at, min(end, last) - at)
            parts.append(([p[cut] for p in pays], [None if d is None else d[cut] for d in deds],
                          self_pay[cut]))
            if last <= end:
                del self.by_chunk[at]
        if sum(len(part[2]) for part in parts) != end - start:
            raise ValueError(f"result rows {start}:{end} are not all settled")
        if len(parts) == 1:
            return parts[0]
        layers = range(len(self.plan.layers))
        return ([_joined([part[0][i] for part in parts], self.out_pay[i]) for i in layers],
                [None if self.out_ded[i] is None else
                 _joined([part[1][i] for part in parts], self.out_ded[i]) for i in layers],
                _joined([part[2] for part in parts], self.self_pay))

    def rejected(self) -> Prepared:
        """The prepared rows with lookup misses, then those whose amounts leave int64,
        moved to the rejects."""
        prep = self.prep
        if self.missing is None:
            return prep
        if self.missing.any():
            prep = _reject_rows_in_order(prep, self.order, self.missing, self.missing_table)
        if self.overflow.any():
            kept = self.order[~self.missing]  # prep rows left, in settlement order
            rank = np.empty(self.prep.n, dtype=np.int64)
            rank[np.sort(kept)] = np.arange(len(kept))  # their index in the reduced prep
            prep = _reject_overflow_in_order(self.plan, prep, rank[kept],
                                             self.overflow[~self.missing])
        return prep


def _joined(arrays: list, empty: np.ndarray) -> np.ndarray:
    """The arrays end to end; ``empty`` (a column of no rows) when there are none."""
    return np.concatenate(arrays) if arrays else empty


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


def _identity_in_order(prep: Prepared, order: np.ndarray) -> pa.Table:
    """claim_id and the identity columns (settlement.IDENTITY) of the prepared rows in
    ``order``: the results' only string gathers, each column gathered once (in C: _order).
    In memory (``settle``) ``_settle_plan`` gathers them after the kernel, once the prepared
    columns, key ids and accumulators are let go: gathered beside the kernel they were held
    with all of those (2M claims, reference policy, loaded machine: peak RSS growth 3.2× the
    input columns → 2.4–2.5×), for ~0.1 s of wall time the second core no longer hides. A
    run's piece (``settle_by_bucket``'s one-sort path) still gathers them beside the kernel:
    there ``--memory-limit`` sizes the pieces and the wall time is the target."""
    fields = identity_fields(prep.raw.schema)
    columns = [gather(prep.claim_id, order)] + [_text_in_order(prep.raw.column(f.name), order)
                                                 for f in fields]
    schema = pa.schema([pa.field("claim_id", prep.claim_id.type)] + fields)  # fields as given
    return pa.table(columns, schema=schema)


def _text_in_order(column: pa.ChunkedArray, order: np.ndarray) -> pa.Array:
    """``column`` in ``order``, a column read as dictionary codes (``hospital_id``:
    arrow_io.CODED_COLUMNS) decoded: its int32 codes are gathered (8 MB for 2M rows, not the
    strings scattered over a 2M-row column) and the text built from its dictionary, ~1.7k
    hospitals that stay in cache (issue 14, h21). A column with null codes is decoded and
    gathered as text."""
    if not pa.types.is_dictionary(column.type):
        return gather(column, order)
    if column.null_count or not column.num_chunks:
        return gather(column.cast(column.type.value_type), order)
    unified = column.unify_dictionaries()  # the chunks of several files share one dictionary
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False)
                            for c in unified.chunks]) if unified.num_chunks > 1 else \
        unified.chunk(0).indices.to_numpy()  # one chunk (_codes_joined): no copy
    return gather(unified.chunk(0).dictionary, take(codes, order).astype(np.int64))


def _beside(rows: int, name: str, fn, *args):
    """``run_beside`` for work over ``rows`` rows: on its own thread from a chunk of rows
    on (below, the thread costs more than it saves). The steps given to it (id hashing,
    Arrow gathers) release the GIL, as the sort and the kernel do, so two cores run them
    side by side."""
    if rows < CHUNK_ROWS:
        result = fn(*args)
        return lambda: result
    return run_beside(name, fn, *args)


def run_beside(name: str, fn, *args):
    """Start ``fn(*args)`` and return a function that waits for its result (raising what it
    raised). With two threads (the default; ``YIBAO_THREADS=1`` turns it off) it runs on a
    thread of its own (``yibao-<name>``), else here and now. The result is the same either
    way."""
    if os.environ.get("YIBAO_THREADS", "2") == "1":
        result = fn(*args)
        return lambda: result
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"yibao-{name}")
    started = pool.submit(timeline.timed(name, fn), *args)
    pool.shutdown(wait=False)  # its one task still runs; the thread ends after it
    return started.result


def _order_and_keys(plan: Plan, prep: Prepared, lead=None) -> tuple:
    """The settlement order and the dense key ids: independent, and both mostly outside the
    GIL (sorting, id hashing), so the keys are hashed beside the sort. ``lead`` (per input
    row, see ``settle_by_bucket``) becomes the order's first key."""
    keys = _beside(prep.n, "keys", _keys, plan, prep)
    order = _run_order(prep, lead)
    return order, _keys_numbered_along(keys(), order, lead)


def _order_keys_and_identity(plan: Plan, prep: Prepared, lead=None,
                             identity_of=None) -> tuple:
    """``_order_and_keys``, and for a run's piece (``lead`` given) a function waiting for the
    identity table of the order (``_identity_in_order``): its gathers start as soon as the
    order is known, beside the rest of the key hashing and then the kernel. In memory (no
    lead) the identity is None: ``_settle_plan`` gathers it after the kernel (peak memory).
    ``identity_of(prep, order)``: how it is gathered instead (a streamed run's pieces)."""
    keys = _beside(prep.n, "keys", _keys, plan, prep)
    order = _run_order(prep, lead)
    if identity_of is not None:
        identity = identity_of(prep, order)
    else:
        identity = None if lead is None else _beside(prep.n, "identity", _identity_in_order,
                                                     prep, order)
    return order, _keys_numbered_along(keys(), order, lead), identity


def _run_order(prep: Prepared, lead) -> np.ndarray:
    """The prepared rows in settlement order, led by ``lead`` of each row's input row when
    given: (lead, discharge_date, claim_id), one sort (lower.settlement_order)."""
    lead_of_row = None if lead is None or prep.n == 0 else (
        np.asarray(lead) if prep.rows is None else np.asarray(lead)[prep.rows])
    return settlement_order(prep.claim_id, prep.columns["discharge_date"], lead_of_row)


def _keys_numbered_along(keys: dict, order: np.ndarray, lead) -> dict:
    """In a run's (bucket, date, claim id) order (``lead`` given), the key ids renumbered by
    first appearance in that order: each bucket's few persons then have neighbouring
    accumulator rows, which the kernel meets front to back instead of at random (measured,
    issue 14, reference policy, 2M claims, loaded machine: kernel 0.25–0.35 s → 0.20 s of
    CPU, for 0.06 s of renumbering). In date order persons come at random whatever their
    numbers, so the ids are left as they are. The numbering only places accumulators in
    memory; results never depend on it."""
    if lead is None:
        return keys
    return {name: (renumber_in_order(ids, order, count), count)
            for name, (ids, count) in keys.items()}


def settle(policy, claims, registry=None, context=None, progress=None) -> BatchResult:
    """The kernel's one settle: results (settlement order) and rejects (input row order) of
    an in-memory batch under a ``Policy`` (a Plan or a sequence of version plans is taken as
    ``Policy.of`` it). One version runs the plain path and never the version code; several
    settle each claim under the version in force on its discharge date (core/settlement.py).
    ``context`` holds the run's extra inputs for plugin stages (e.g. ``{"balances": table}``).
    ``progress(rows)`` is called after each settled chunk of a single-version run. numpy's
    huge-page advice is off while it runs (``pages.small_pages``: fresh huge pages cost this
    benchmark VM system time) unless ``NUMPY_MADVISE_HUGEPAGE`` is set."""
    policy = Policy.of(policy)
    registry = registry or default_registry()
    with small_pages():  # a caller's process: numpy's huge-page advice off (core/pages.py)
        if policy.single:
            return _settle_plan(policy.first, claims, registry, context, progress)
        return _settle_versions(policy.versions, claims, registry, context)


def settle_by_bucket(policy, claims, bucket: np.ndarray, registry=None, context=None,
                     progress=None) -> BatchResult:
    """``settle`` with the results in (``bucket``, discharge_date, claim_id) order, the order
    of a run's results file (core/partition.py); ``bucket`` is the int bucket of each input
    row (< 65,536). When every accumulator of a one-version plan is the person's and no
    plugin stage runs, the claims are settled in that order directly: each person's claims
    keep their (date, claim id) order, so every claim settles as in date order, and the
    results need no reordering (no gather of the claim ids, no claim-id lookup). Otherwise
    the results of ``settle`` are reordered by the bucket of each claim (found through its
    input row when ``settle`` knows it, which the result keeps, else through its claim id)."""
    policy = Policy.of(policy)
    registry = registry or default_registry()
    acting = [stage for stage in registry.stages if stage.acts(context)]
    if policy.single and not acting and policy.first.keys() == (PERSON,):
        return _settle_plan(policy.first, claims, registry, context, progress, lead=bucket)
    batch = settle(policy, claims, registry, context, progress)
    rows, claim_id = batch.rows, None
    if rows is None:  # each result's claim is found through its id
        claim_id = as_table(claims).column("claim_id").combine_chunks()
        if not pa.types.is_string(claim_id.type):
            claim_id = claim_id.cast(pa.string())
    order = bucket_order(batch.results.column("claim_id"), claim_id, np.asarray(bucket), rows)
    return BatchResult(batch.results.take(pa.array(order)), batch.rejects, batch.input_rows,
                       None if rows is None else np.asarray(rows, np.int64)[order])


def _settle_plan(plan: Plan, claims, registry, context=None, progress=None,
                 lead=None) -> BatchResult:
    """Settle one batch under one plan (one version): the single-plan path of ``settle``;
    ``lead`` (per input row) leads the settlement order (``settle_by_bucket``). Each
    intermediate is let go as soon as it has been used (peak memory, issue 14)."""
    registry = registry or default_registry()
    provider = plan.provider is not None or bool(plan.groupers)
    early = _provider_pieces_early(plan, claims, registry) if provider else None
    settled = _settled_columns(plan, registry, context, provider)
    claims = only_columns(claims, settled)
    early_order = _date_order_beside(claims) if lead is None else None
    with timeline.stage("prepare"):
        coded = _coded_columns(plan, registry, context, settled)
        prep = run_validators(plan, prepare(plan, claims, coded), registry)
    input_rows = prep.n + len(prep.rejects)
    pieces = _provider_pieces(plan, prep, registry, early) if provider else None
    with timeline.stage("order (and keys)"):
        if early_order is None:
            order, keys, identity = _order_keys_and_identity(plan, prep, lead)
        else:  # in memory: the identity is gathered after the kernel (peak memory)
            order = _prepared_order(early_order(), prep.rows, input_rows)
            keys, identity = _keys(plan, prep), None
    laid = _beside(prep.n, "provider-layout", _laid_out, pieces, order) if provider else None
    acting = any(stage.acts(context) for stage in registry.stages)
    prep = _raw_kept(prep, acting or provider)
    run = ChunkedSettlement(plan, prep, registry, order, keys, keep_columns=())
    del prep, keys  # the run holds them, and lets go of them when it ends
    with timeline.stage("chunks (build beside kernel)"):
        run.run(progress=progress)
    with timeline.stage("identity and results"):
        results, order = run.results(identity() if identity is not None else
                                     _identity_in_order(run.prep, order))
    del identity
    rejects = run.rejected().rejects
    check_invariants(plan, results)
    raw = run.prep.raw
    if acting:  # no gather for idle stages
        claims_in_order = _claims_in_order(raw, order, _stage_columns(registry))
        results = run_stages(plan, results, claims_in_order, registry, context)
    if provider:  # laid out in the whole order unless the run left rows out (rare)
        from .provider import append_columns
        results = append_columns(results, laid() if len(order) == len(run.order)
                                 else pieces().columns(order))
    # the input row of each result: supervision reads the claims by it (no id lookup); when
    # every input row was accepted it is ``order`` itself (no gather of another n int64)
    return BatchResult(results, rejects_table(rejects), input_rows, run.prep.input_rows(order))


def _settled_columns(plan: Plan, registry, context, provider: bool):
    """The claim columns ``_settle_plan`` reads, or None when that is not known (a provider
    part; a validator, or an acting run's stage, that does not declare its columns): the
    plan's, the required and money columns, the keys' (with their ``by`` columns), the
    identity columns the results carry, and those the validators (and stages, when one
    acts) declare. The others are dropped before ``prepare``: it then neither decodes their
    dictionaries nor takes them when rows are rejected (issue 14, m17: a 2M batch with
    1,800 rejects spent 1.6 s of CPU taking every column, list columns of diagnoses
    included, for rows nobody read)."""
    if provider:
        return None
    declared = [v.claim_columns for v in registry.validators]
    if any(stage.acts(context) for stage in registry.stages):
        declared += [stage.claim_columns for stage in registry.stages]
    if None in declared:
        return None
    names = {c.name for c in plan.columns} | set(REQUIRED) | set(MONEY_COLUMNS) | set(IDENTITY)
    for key in plan.keys():
        names.update((key.column, *key.by))
    for columns in declared:
        names.update(columns)
    return names


def _coded_columns(plan: Plan, registry, context, settled) -> set:
    """The columns ``prepare`` may leave dictionary-encoded in ``Prepared.raw`` (it codes
    them from their dictionaries: ``arrow_io.prepare``'s ``coded``): those only the checks
    read. Empty when ``settled`` is None (a provider part, or a validator or an acting stage
    reading undeclared columns) or a stage acts (stages read ``raw``); never the identity
    columns (the results carry them), the keys' columns or a column a validator declares.
    ``_raw_kept`` lets the others go before the kernel, so nothing else sees them."""
    if settled is None or any(stage.acts(context) for stage in registry.stages):
        return set()
    read = set(IDENTITY) | {"claim_id", "person_id"}
    for key in plan.keys():
        read.update((key.column, *key.by))
    for validator in registry.validators:
        read.update(validator.claim_columns)
    return settled - read


# -- the provider part beside the benefit settlement ------------------------------------------
# Grouping, pools and points (``provider.claim_pieces``) read only the claims, never a
# payment, so they run on a thread of their own (``_beside``) while the claims are prepared,
# the settlement order is sorted and the kernel runs; once the order is known another thread
# lays the columns out in it (``_laid_out``), and after the kernel they are only appended.

def _provider_pieces_early(plan: Plan, claims, registry):
    """Start the provider part over the input claims as given, before ``prepare``, when they
    can stand for the accepted claims (``_provider_pieces``): a table already in the one
    layout (``normal_table``, its coded columns kept: a run's reader hands them so) with
    int64 fen totals, and a plan whose claims are scored each alone
    (``provider.scored_alone``). None otherwise, and with
    one thread (``YIBAO_THREADS=1``: the work would run here, and a rejected claim's failure
    with it)."""
    from .provider import scored_alone
    if os.environ.get("YIBAO_THREADS", "2") == "1" or not isinstance(claims, pa.Table) or \
            claims.num_rows < CHUNK_ROWS or "total" not in claims.column_names or \
            not scored_alone(plan):
        return None
    if claims.schema.field("total").type != pa.int64() or \
            not coded_schema(claims.schema).equals(claims.schema):
        return None
    return _pieces_beside(plan, claims, registry)


def _pieces_beside(plan: Plan, claims: pa.Table, registry):
    """``provider.claim_pieces`` of ``claims`` (only the columns it reads) on a thread, joined
    for the layout (``ClaimPieces.joined``) there too; returns a function waiting for it."""
    from .provider import needed_columns
    wanted = set(needed_columns(plan)) | {"claim_id"}
    claims = claims.select([c for c in claims.column_names if c in wanted])
    return _beside(claims.num_rows, "provider", _joined_pieces, plan, claims,
                   registry.groupers)


def _joined_pieces(plan: Plan, claims: pa.Table, groupers):
    from .provider import claim_pieces
    return claim_pieces(plan, claims, False, None, groupers).joined()


def _provider_pieces(plan: Plan, prep: Prepared, registry, early):
    """A function waiting for the provider pieces of the accepted claims (prep rows), laid
    out later by ``columns(order)`` with ``order`` in prep rows. The early start's
    (``_provider_pieces_early``: every input row) when it ran: read through each accepted
    row's input row (the same claim, the same int64 total; claims scored each alone, so
    the claims rejected meanwhile change nothing for the others); again over the accepted
    claims only if it failed while some rows were rejected (the failure may be a rejected
    row's). Without an early start: started now over the accepted claims, with the
    prepared int64 fen ``total`` (``with_fen_total``)."""
    if early is None:
        raw = prep.raw
        return _pieces_beside(plan, with_fen_total(raw, prep.columns["total"]), registry)
    if not prep.rejects:
        return early  # every row accepted: prep row k is input row k
    rows, raw, total, found = prep.rows, prep.raw, prep.columns["total"], []

    def pieces():
        if not found:
            try:
                found.append(_AtInputRows(early(), rows))
            except Exception:
                found.append(_pieces_beside(plan, with_fen_total(raw, total), registry)())
        return found[0]
    return pieces


class _AtInputRows:
    """Provider pieces of every input row, laid out by prep rows (``rows``: the input row
    of each prep row)."""

    def __init__(self, pieces, rows: np.ndarray):
        self.pieces, self.rows = pieces, rows

    def columns(self, order: np.ndarray):
        return self.pieces.columns(self.rows[np.asarray(order)])


def _laid_out(pieces, order: np.ndarray):
    """The provider columns (``pieces()``: a function waiting for ``provider.ClaimPieces``)
    laid out in settlement ``order``: on a thread too (``_beside``), so that after the
    kernel only the columns are appended."""
    return pieces().columns(order)


def _raw_kept(prep: Prepared, keep_all: bool) -> Prepared:
    """``prep`` with only the input columns the results read once the keys are hashed:
    claim_id and the identity columns (all of them when plugin stages or a provider part,
    which read claim columns, run). The rest go before the kernel runs: the columns
    ``prepare`` decoded from dictionaries (a tier, a setting: 28 MiB for 2M claims) were held
    to the end otherwise; the others are the caller's own."""
    if keep_all:
        return prep
    names = [c for c in prep.raw.column_names if c == "claim_id" or c in IDENTITY]
    return replace(prep, raw=prep.raw.select(names))


# -- results handed out as they settle (a run's writer) ---------------------------------------
# A run's results file is written while the claims settle: in a run's (bucket, date, claim id)
# order the kernel settles the claims in the file's order (``settle_by_bucket``'s direct
# path), so each stretch of ``STREAM_ROWS`` settled rows is a finished piece of the file, and
# the Parquet writer's thread encodes it while the next chunks are built and settled (issue
# 14: the run waited 0.6 s for the encoder after the kernel). The pieces concatenated are the
# results ``settle_by_bucket`` returns, row for row.

STREAM_ROWS = 1 << 17  # rows per piece handed out: core/manifest.ROW_GROUP, one row group each


def settle_by_bucket_streamed(policy, claims, bucket: np.ndarray, emit, registry=None,
                              context=None, progress=None) -> BatchResult:
    """``settle_by_bucket``, its results handed to ``emit(piece)`` (a results table, on this
    thread) in order while the rest settles; the BatchResult returned has empty results (its
    rejects, input rows and the input row of each result as ``settle_by_bucket``'s). A
    provider part's columns join each piece (``_ProviderLayout``). Where the results only
    exist at the end (several versions, plugin stages that act, keys wider than the person)
    they are emitted whole, once. ``emit`` is called at
    least once (an empty batch: an empty piece with the results' columns).

    ``bucket``: the bucket of every claim, or a function giving it, called once the provider
    part has started on its thread (it never reads the buckets): a run's bucket hashes
    (~12 ms at 1M claims, without the GIL) then run beside it instead of before it, on the
    chain that gates the writer's first row group (issue 14, p20)."""
    policy = Policy.of(policy)
    registry = registry or default_registry()
    if not _streamable(policy, registry, context):
        bucket = _buckets(bucket)
        batch = settle_by_bucket(policy, claims, bucket, registry, context, progress)
        emit(batch.results)
        return BatchResult(batch.results.slice(0, 0), batch.rejects, batch.input_rows,
                           batch.rows)
    plan = policy.first
    claims = as_table(claims)
    provider = _has_provider(plan)
    early_pieces = _provider_pieces_early(plan, claims, registry) if provider else None
    bucket = _buckets(bucket)
    early = _input_order_beside(claims, bucket)
    with timeline.stage("prepare"):
        prep = run_validators(plan, prepare(plan, claims), registry)
    input_rows = prep.n + len(prep.rejects)
    pieces = _provider_pieces(plan, prep, registry, early_pieces) if provider else None
    with timeline.stage("order (and keys, identity started)"):
        if early is None:
            order, keys, identity = _order_keys_and_identity(plan, prep, bucket,
                                                             _identity_pieces)
        else:
            order = _prepared_order(early(), prep.rows, input_rows)
            keys, identity = _keys_and_identity_along(plan, prep, order, bucket)
    run = None
    try:  # from here a failure stops the identity pieces not yet gathered
        laid = _ProviderLayout(prep.n, pieces, order) if provider else None
        run = ChunkedSettlement(plan, prep, registry, order, keys, by_chunk=True)
        if timeline.enabled():  # each chunk's two halves, as stages of their threads
            run.build = timeline.timed("build chunk", run.build)
            run.settle_chunk = timeline.timed("kernel chunk", run.settle_chunk)
        stream = _ResultStream(plan, run, identity, emit, progress, laid)
        run.run(RUN_CHUNKS * CHUNK_ROWS, progress=stream.settled)
        stream.finish()
    except BaseException:
        identity.cancel()  # a failed run gathers no more identity pieces
        raise
    finally:
        # the timed wrappers hold bound methods of ``run``: a reference cycle that would keep
        # each partition's columns alive until the garbage collector ran (s17 saw a 50M run
        # peak at 3.3-3.6 GiB with the timeline on, against 1.5 GiB without)
        if run is not None:
            run.__dict__.pop("build", None)
            run.__dict__.pop("settle_chunk", None)
    kept = order if run.missing is None else order[~run.missing & (run.overflow == 0)]
    return BatchResult(stream.empty, rejects_table(run.rejected().rejects), input_rows,
                       run.prep.input_rows(kept))


def _buckets(bucket):
    """``settle_by_bucket_streamed``'s buckets: given, or made now by the function given."""
    return bucket() if callable(bucket) else bucket


def _input_order_beside(claims: pa.Table, bucket: np.ndarray):
    """Start sorting every input row into the run's (bucket, date, claim id) order on a
    thread of its own, beside ``prepare`` (the sort releases the GIL), and return a function
    waiting for it; None when it would not pay (one thread, fewer than a chunk of rows) or
    the columns are not in the normal layout (string ids, date32 dates: then the order is
    sorted after ``prepare``, as ``settle_by_bucket`` does). Issue 14, w16: sorted after
    ``prepare``, the order was 0.25 s of CPU on one core with the other idle."""
    n, schema = claims.num_rows, claims.schema
    if (os.environ.get("YIBAO_THREADS", "2") == "1" or n < CHUNK_ROWS
            or not {"claim_id", "discharge_date"} <= set(schema.names)  # prepare refuses it
            or not pa.types.is_string(schema.field("claim_id").type)
            or not pa.types.is_date32(schema.field("discharge_date").type)):
        return None
    return _beside(n, "input order", _input_order, claims.column("claim_id"),
                   claims.column("discharge_date"), bucket)


def _input_order(claim_id, dates, bucket) -> np.ndarray:
    """Every input row (rejected ones too) in (bucket, discharge_date, claim_id) order, or
    (discharge_date, claim_id) order when ``bucket`` is None, by the sort ``_run_order``
    uses (lower.settlement_order); a null date counts as the first day given and a null
    claim id as "" (their rows are rejected by ``prepare``, so where they sort does not
    matter; a null id would send the whole sort to Arrow's, several times slower, and a
    null date as day 0 would widen the days' span past the counted sort's 16 bits)."""
    import pyarrow.compute as pc
    if claim_id.null_count:
        claim_id = pc.fill_null(claim_id, "")
    if dates.null_count:
        first = pc.min(dates)
        dates = pc.fill_null(dates, first) if first.is_valid else pc.fill_null(dates, 0)
    days = dates.cast(pa.int32())
    days = days.combine_chunks() if isinstance(days, pa.ChunkedArray) else days
    return settlement_order(claim_id, np.asarray(days.to_numpy()),
                            None if bucket is None else np.asarray(bucket))


def _date_order_beside(claims):
    """In memory (``settle``, no lead): start sorting every input row into (discharge_date,
    claim_id) order on a thread beside ``prepare`` (``_input_order``), as a run's order is
    (``_input_order_beside``), and return a function waiting for it; None as there. Sorted
    after ``prepare`` it was 0.1-0.15 s of CPU at 2M claims on one core with the other idle
    (issue 14, m18); m17 left it out for its buffers held beside the id tables (2M peak
    1.96-2.06x), which are narrower now (uint16 day groups, m18)."""
    if not isinstance(claims, pa.Table):
        return None
    return _input_order_beside(claims, None)


def _prepared_order(input_order: np.ndarray, rows: np.ndarray, input_rows: int) -> np.ndarray:
    """The settlement order of the prepared rows from that of every input row: the input
    rows ``prepare`` kept (``rows``, ascending), in the order they have there, as prep rows.
    The settlement order is a strict total order on accepted claims (their ids are unique),
    so leaving the rejected rows out of a sorted sequence leaves the prepared rows sorted,
    exactly as sorting them alone would (tests/batch/test_input_order.py)."""
    if rows is None or len(rows) == input_rows:  # all accepted: prep row k is input row k
        return input_order
    prep_row = np.full(input_rows, -1, dtype=np.int64)
    prep_row[rows] = np.arange(len(rows), dtype=np.int64)
    order = prep_row[input_order]
    return np.ascontiguousarray(order[order >= 0])


def _keys_and_identity_along(plan: Plan, prep: Prepared, order: np.ndarray, bucket) -> tuple:
    """``_order_keys_and_identity`` for an order already known: the identity gathers start
    first (on a thread, a piece of results at a time: ``_identity_pieces``), then the key
    ids are renumbered along the order."""
    identity = _identity_pieces(prep, order)
    return _keys_numbered_along(_keys(plan, prep), order, bucket), identity


def _identity_pieces(prep: Prepared, order: np.ndarray) -> IdentityPieces:
    """The identity of a streamed run's order, gathered in the pieces ``_ResultStream``
    hands out (core/identity.py), so the writer starts on the first piece instead of after
    the whole gather."""
    return IdentityPieces(_identity_in_order, _codes_joined(prep), order, STREAM_ROWS,
                          identity_threaded(prep.n, CHUNK_ROWS))


def _codes_joined(prep: Prepared) -> Prepared:
    """``prep`` with its identity columns read as dictionary codes in one chunk of one
    dictionary, so that each piece's gather (``_text_in_order``) takes its codes from it
    instead of joining the column's codes again (a fresh 8 MB per piece for 2M rows)."""
    raw = prep.raw
    for f in identity_fields(raw.schema):
        column = raw.column(f.name)
        if pa.types.is_dictionary(column.type) and column.num_chunks > 1 \
                and not column.null_count:
            joined = pa.chunked_array([column.unify_dictionaries().combine_chunks()])
            raw = raw.set_column(raw.schema.get_field_index(f.name), f.name, joined)
    return prep if raw is prep.raw else replace(prep, raw=raw)


def _streamable(policy: Policy, registry, context) -> bool:
    """Whether the results come out of the kernel in their final order and columns: a
    provider part's columns are laid out in that order beside the kernel
    (``_ProviderLayout``) and join each piece as it is handed out."""
    plan = policy.first
    return (policy.single and plan.keys() == (PERSON,)
            and not any(s.acts(context) for s in registry.stages))


def _has_provider(plan: Plan) -> bool:
    return plan.provider is not None or bool(plan.groupers)


class _ProviderLayout:
    """The provider columns of a streamed run (``settle_by_bucket_streamed``): the pieces
    (``_provider_pieces``) laid out in the settlement order on a thread of their own, a
    stretch of ``STREAM_ROWS`` result rows at a time, in order, so the first piece of
    results can go to the writer as soon as it is settled and its stretch laid out (issue
    14, p17). ``ready(end)`` says whether the rows before ``end`` are laid out (or the work
    failed, which ``columns`` raises), so the kernel never waits for them: the settled rows
    wait to be handed out instead."""

    def __init__(self, n: int, pieces, order: np.ndarray):
        self.pieces, self.order, self.n = pieces, order, n
        self.step = STREAM_ROWS
        self.laid: list = []  # the stretches laid out so far, in order (appended by one thread)
        self.over = threading.Event()  # set when every stretch is laid out, or the work failed
        self.more = threading.Condition()  # notified at every stretch laid out, and at the end
        self.wait = _beside(n, "provider-layout", self._lay_out)

    def _lay_out(self) -> None:
        try:
            pieces = self.pieces()
            for start in range(0, self.n, self.step):
                stretch = pieces.columns(self.order[start:start + self.step])
                with self.more:
                    self.laid.append(stretch)
                    self.more.notify_all()
        finally:
            with self.more:
                self.over.set()
                self.more.notify_all()

    def ready(self, end: int) -> bool:
        return self.over.is_set() or len(self.laid) * self.step >= end

    def _wait_for(self, end: int) -> None:
        """Until the rows before ``end`` are laid out, or the layout is over (then raising
        what it raised). Only those: a run whose kernel ended before the provider part did
        hands its first piece to the writer as soon as the first stretch exists, not once
        every stretch does (issue 14, p18: under load the writer started 0.45 s later)."""
        with self.more:
            self.more.wait_for(lambda: self.over.is_set() or len(self.laid) * self.step >= end)
        if self.over.is_set():
            self.wait()  # ended: returns at once, or raises what the layout raised

    def columns(self, start: int, end: int, order: np.ndarray) -> pa.Table:
        """The provider columns of result rows ``start:end`` of the whole order, of which
        ``order`` (prep rows) were kept: the stretches laid out (one when the piece is one
        stretch), the kept rows taken from them when a row was left out (a lookup miss, an
        amount leaving int64). Pieces come in order, so a stretch wholly before ``end`` is
        let go once its rows are handed out."""
        self._wait_for(end)
        if end == start:  # an empty piece (every claim rejected): none laid out
            return self.pieces().columns(order)
        first, last = start // self.step, -(-end // self.step)
        stretch = self.laid[first] if last - first == 1 else \
            pa.concat_tables(self.laid[first:last])
        stretch = stretch.slice(start - first * self.step, end - start)
        for k in range(first, end // self.step):
            self.laid[k] = None  # the list keeps its length: ``ready`` counts it
        if len(order) != end - start:  # both in settlement order: the kept rows' positions
            stretch = stretch.take(pa.array(np.flatnonzero(
                np.isin(self.order[start:end], order, assume_unique=True))))
        return stretch


class _ResultStream:
    """The settled rows of a ``ChunkedSettlement`` handed out in pieces of ``STREAM_ROWS``
    (rows a lookup missed or whose amounts left int64 left out, as ``results`` does). A claim
    paid more than its total stops the run at the end, as ``check_invariants`` would over the
    whole results: the same message (every such claim counted, the first named)."""

    def __init__(self, plan: Plan, run: ChunkedSettlement, identity, emit, progress,
                 provider: _ProviderLayout = None):
        self.plan, self.run, self.identity, self.emit = plan, run, identity, emit
        self.progress, self.provider = progress, provider
        self.done = self.sent = 0  # settled rows; rows handed out (of run.order)
        self.overpaid: list = []  # the rows paid more than their total, per piece
        self.empty = None

    def settled(self, rows: int) -> None:
        """After each kernel chunk: hand out what is settled, a piece at a time."""
        self.done += rows
        if self.progress is not None:
            self.progress(rows)
        # a piece at a time (one row group each), also when the provider columns were late
        while self.done - self.sent >= STREAM_ROWS and (
                self.provider is None or self.provider.ready(self.sent + STREAM_ROWS)):
            self._send(self.sent + STREAM_ROWS)

    def finish(self) -> None:
        """Hand out the rest (an empty piece if nothing was), then check the invariants."""
        while self.done - self.sent > STREAM_ROWS:  # held back for late provider columns
            self._send(self.sent + STREAM_ROWS)
        if self.done > self.sent or self.empty is None:
            self._send(self.done)
        if self.overpaid:
            check_invariants(self.plan, pa.concat_tables(self.overpaid))

    def _send(self, end: int) -> None:
        identity, at = self.identity.between(self.sent, end)
        piece, order = self.run.results_between(identity, self.sent, end, at)
        if self.provider is not None:
            from .provider import append_columns
            piece = append_columns(piece, self.provider.columns(self.sent, end, order))
        self.sent = end
        if self.empty is None:
            self.empty = piece.slice(0, 0)
        bad = np.flatnonzero(piece.column("self_pay").to_numpy() < 0)
        if len(bad):
            self.overpaid.append(piece.select(["claim_id", "self_pay"]).take(pa.array(bad)))
        self.emit(piece)


# -- several versions -------------------------------------------------------------------------

def _settle_versions(plans, claims, registry, context=None) -> BatchResult:
    """Settle each claim under the version in force on its discharge date (core/settlement.py:
    the version choice, its rejects and the refusal across structures). Results: each structure group's results in version order
    (each in settlement order), columns the union in layer order (a layer a version lacks is
    null); rejects carry the input row numbers of ``claims``."""
    plans = check_versions(plans)
    claims = as_table(claims)
    choice = choose_versions(plans, claims)
    which, groups, rejects, results = choice.which, choice.groups, choice.rejects, []
    for g in range(int(groups[-1]) + 1):
        members = [i for i in range(len(plans)) if groups[i] == g]
        parts = [(plans[i], np.flatnonzero(which == i)) for i in members]
        parts = [(p, rows) for p, rows in parts if len(rows)]
        if not parts:
            continue
        if len(parts) == 1:
            plan, rows = parts[0]
            batch = _settle_plan(plan, claims.take(pa.array(rows)), registry, context)
            res, rej = batch.results, renumber_rejects(batch.rejects, rows)
        else:
            res, rej = _settle_merged(parts, claims, registry, context)
        results.append(res)
        rejects.append(rej)
    return BatchResult(concat_results(results, plans, claims.schema), sorted_rejects(rejects),
                       claims.num_rows)


# -- one program over several versions ---------------------------------------------------------
# Consecutive versions of the same structure (settlement.structure) run as ONE kernel program:
# each claim's claim-only arrays are evaluated under its own version and scattered into one
# program whose accumulators are those of the earliest version, so a mid-year change carries
# each key's deductible, caps, bands and kept burden across the change.

CLAIM_ARRAYS = ("applies", "base_claim", "ded_amount", "ded_continuing", "ratio",
                "limit_amount", "band_set")


def _settle_merged(parts, claims: pa.Table, registry, context=None) -> tuple:
    """(results in settlement order, rejects with input rows) of the claims of several
    versions of one structure, settled as one kernel program. ``parts`` is [(plan, input rows
    of its claims)] in version order; the first plan's program gives the accumulators, every
    version's claim-only arrays are evaluated on its own rows (engine.lower_batch) and
    concatenated: versions tile time in order, so the concatenation of each version's rows in
    settlement order is the settlement order of all of them."""
    lows = [(plan, lower_batch(plan, claims.take(pa.array(rows)), registry), rows)
            for plan, rows in parts]
    first = lows[0][0]
    raw = pa.concat_tables([low.prep.raw.take(pa.array(low.order)) for _, low, _ in lows])
    program = _merged_program(first, [low.program for _, low, _ in lows], raw)
    program.run(np.arange(program.n, dtype=np.int64))
    _stop_on_overflow(first, lows, program)
    results = with_identity(_merged_results(first, lows, program), raw)
    check_invariants(first, results)
    if registry.stages:
        results = run_stages(first, results, raw, registry, context)
    if any(p.provider is not None or p.groupers for p, _ in parts):
        total = np.concatenate([np.asarray(low.prep.columns["total"])[low.order]
                                for _, low, _ in lows])
        results = _provider_columns(lows, results, with_fen_total(raw, total),
                                    registry.groupers)
    rejects = [renumber_rejects(rejects_table(low.prep.rejects), rows) for _, low, rows in lows]
    return results, pa.concat_tables(rejects)


def _stop_on_overflow(plan: Plan, lows: list, program: Program) -> None:
    """A claim whose yearly accumulation leaves int64 across versions stops the run, naming
    it (the single-plan path rejects such a claim; this merged program does not rebuild its
    rows)."""
    bad = np.flatnonzero(program.overflow)
    if len(bad) == 0:
        return
    from .money import out_of_range_message
    ids = pa.concat_arrays([_ids_in_order(low) for _, low, _ in lows])
    t = int(bad[0])
    layer = plan.layers[int(program.overflow[t]) - 1].name
    raise SettlementError(f"claim {ids[t].as_py()!r}: {out_of_range_message(layer)}")


def _ids_in_order(low: Lowered) -> pa.Array:
    """The claim ids of a lowered batch in its settlement order, as strings (one array)."""
    return gather(low.prep.claim_id, low.order).cast(pa.string())


def _cat(arrays: list, n: int):
    """Concatenate per-version arrays (each over its version's rows)."""
    if arrays[0] is None:
        return None
    return np.ascontiguousarray(np.concatenate(arrays))


def _merged_program(plan: Plan, programs: list, raw: pa.Table) -> Program:
    n = sum(p.n for p in programs)
    template = programs[0]
    keys = [dense_ids(key_values(raw, key)) if n else (np.zeros(0, np.int64), 0)
            for key in plan.keys()]
    prog = Program(plan, n, key_ids=[np.ascontiguousarray(ids) for ids, _ in keys],
                   key_counts=[count for _, count in keys],
                   state_keys=list(template.state_keys),
                   state_offsets=list(template.state_offsets),
                   widths=None if template.widths is None else list(template.widths))
    prog.year = np.ascontiguousarray(np.concatenate([p.year for p in programs]))
    for j, spec in enumerate(template.layers):
        specs = [p.layers[j] for p in programs]
        d = dict(spec)
        for name in CLAIM_ARRAYS:
            d[name] = _cat([_full(s[name], p.n) for s, p in zip(specs, programs)], n)
        d["caps"] = [(kind, _cat([_full(s["caps"][c][1], p.n) for s, p in zip(specs, programs)],
                                 n), state, key)
                     for c, (kind, _, state, key) in enumerate(spec["caps"])]
        d["out_pay"] = np.zeros(n, dtype=np.int64)
        d["out_ded"] = None if spec["out_ded"] is None else np.zeros(n, dtype=np.int64)
        prog.layers.append(d)
    return prog


def _full(a, n: int):
    """A claim array over a version's ``n`` rows; lowering holds a constant as a one-element
    array (the kernel reads element 0 for every row), expanded here because the versions'
    constants differ."""
    if a is None:
        return None
    a = np.asarray(a)
    return np.broadcast_to(a.reshape(-1)[:1], (n,)) if a.ndim == 0 or len(a) == 1 else a


def _merged_results(plan: Plan, lows: list, program: Program) -> pa.Table:
    ids = pa.concat_arrays([_ids_in_order(low) for _, low, _ in lows]) if program.n else \
        pa.array([], pa.string())
    total = np.concatenate([np.asarray(low.prep.columns["total"])[low.order]
                            for _, low, _ in lows]).astype(np.int64)
    cols, paid = {"claim_id": ids}, np.zeros(program.n, dtype=np.int64)
    for layer, spec in zip(plan.layers, program.layers):
        paid += spec["out_pay"]
        cols[layer.name] = pa.array(spec["out_pay"])
        if spec["out_ded"] is not None:
            cols[f"{layer.name}_deductible"] = pa.array(spec["out_ded"])
    cols["self_pay"] = pa.array(total - paid)
    return pa.table(cols, schema=result_schema(plan))


def _provider_columns(lows: list, results: pa.Table, raw: pa.Table,
                      groupers=None) -> pa.Table:
    """Provider payment (grouping, points) of each version's claims under its own plan."""
    from .provider import append_claim_columns
    pieces, at = [], 0
    for plan, low, _ in lows:
        n = low.prep.n
        pieces.append(append_claim_columns(plan, results.slice(at, n), raw.slice(at, n),
                                           groupers=groupers))
        at += n
    return pa.concat_tables(pieces, promote_options="default")

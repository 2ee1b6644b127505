"""A settlement run: claim files in, a results folder out, in bounded memory if need be.

``run_settle(policy, inputs, out_dir, ...)`` writes to ``out_dir``; ``policy`` is a
``core.policy.Policy`` (or one plan, or a sequence of version plans, taken as ``Policy.of`` it:
each claim is settled under the version in force on its discharge date, result columns the
union in layer order, core/settlement.py):

- ``claims.parquet``: one row per accepted claim, ordered by (bucket, discharge_date, claim_id)
  (core/partition.py): the same bytes whatever the engine, partition count or batch size;
- ``rejects.parquet``: every rejected row (claim_id, row, reason, message), ordered by ``row``,
  the input row number over the whole input (files in sorted path order, rows in file order);
- ``summary.json``: control totals (rows and fen of input, settled, rejected; per layer), which
  must balance or the run fails; ``manifest.json``: hashes and versions of everything used;
- for a plan with a provider part (point method, core/provider.py): ``hospitals.parquet`` and
  ``pools.parquet``, the year's settlement by pools, reduced from per-partition sums (the same
  bytes whatever the partition count), with per-pool totals in ``summary.json``.

One run at a time holds ``out_dir`` (a lock; a second run is refused naming the holder), and
the outputs appear together or not at all: staged under ``out_dir/.yibao-run``, moved to
``out_dir/runs/<run id>/`` and published by swapping the ``out_dir/current`` link, which every
output name in ``out_dir`` points through (core/manifest.py ``OutputFolder``).

Two local modes, the same results:

- *in memory*: every file read into one table, settled by
  ``engine.settle_by_bucket_streamed``, the results written while the claims settle;
- *partitioned* (the estimated in-memory size exceeds ``memory_limit``): pass 1 streams the
  input in record batches and spills each row, tagged with its row number and bucket, to the
  Arrow IPC stream of its partition (a range of buckets); duplicate claim ids are found across
  the whole input from 64-bit claim-id hashes (then confirmed on the ids themselves); pass 2
  settles partition by partition. Temporary files live in ``out_dir/.yibao-run`` and go on
  success.

Either mode reads only the claim columns the settlement reads (``sources.read_columns``) and
hands supervision the input row of each result (``BatchResult.rows`` over the whole run), so
supervision finds each result's claim without looking its id up.

Duplicates: every copy of a claim id that appears more than once anywhere in the input is
rejected (``duplicate_claim_id``), as ``engine.settle`` does within one batch.

The parts: core/sources.py (the input files), core/piece.py (one piece settled: also what the
Spark engine runs), core/spill.py (pass 1 of the partitioned mode), ``manifest.run_manifest``;
this module is the run (modes, progress, outputs, control totals). In memory the results come
out of the engine already in the file's row order, piece by piece.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, ClaimsError, check_unique_names, prepare
from .engine import run_beside, settle
from .errors import YibaoError
from .key_index import FOLDER as KEY_INDEX, KeyIndexWriter
from .manifest import InputHashes, OutputFolder, ParquetOut, Totals, run_manifest
from .partition import NBUCKETS, buckets, hash_strings, partition_of
from .piece import (bucket_plan, duplicate_rejects, input_fen, settle_piece,  # noqa: F401
                    settle_piece_streamed, zero_nulls)
from .plan import Plan
from .policy import Policy
from .registry import default_registry
from .settlement import AsWritten
from .sources import (InputError, Source, default_memory_limit, estimated_memory,  # noqa: F401
                      input_files, open_sources, partition_count, read_beside,
                      read_columns, read_rest, read_sources)
from .spill import (KeyCheck, Spill, duplicate_ids, spill_columns, spill_layout,
                    spilled_codes)
from . import timeline

if TYPE_CHECKING:
    from .provider import ProviderYear

BATCH_ROWS = 1 << 18  # most rows per record batch read in the partitioned mode
MIN_BATCH_ROWS = 1 << 13  # fewest (below this, per-batch overheads dominate)
# Shares of --memory-limit the partitioned mode's pass 1 may hold at once (docs/scale.md,
# "What --memory-limit bounds"): one read batch (and its copy sorted by partition), the next
# batch being read meanwhile (read_ahead), and the spill buffers of all partitions together.
BATCH_SHARE = 32
SPILL_SHARE = 8
EXIT_OK, EXIT_REJECTS, EXIT_FAILED = 0, 1, 2


class BalanceError(YibaoError, RuntimeError):
    """The control totals do not balance: the run is not published (exit 2)."""


@dataclass
class Summary:
    policy: str
    engine: str
    mode: str  # "memory" or "partitioned"
    partitions: int
    totals: Totals
    seconds: float = 0.0
    labels: dict = field(default_factory=dict)
    pools: dict = field(default_factory=dict)  # pool name -> totals (provider part only)
    supervision: dict = field(default_factory=dict)  # flags per rule (policies with flags)

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTS if self.totals.rejected_rows else EXIT_OK

    def as_dict(self) -> dict:
        return {"policy": self.policy, "engine": self.engine, "mode": self.mode,
                "partitions": self.partitions, "buckets": NBUCKETS,
                **self.totals.as_dict(), "labels": self.labels,
                **({"pools": self.pools} if self.pools else {}),
                **({"supervision": self.supervision} if self.supervision else {}),
                "seconds": round(self.seconds, 3)}


# -- progress --------------------------------------------------------------------------------

class Progress:
    """A rich progress bar on stderr (rows, rows/s, ETA), only when stderr is a terminal."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar,
                                       TaskProgressColumn, TextColumn, TimeRemainingColumn)
            self.bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TaskProgressColumn(),
                           TextColumn("{task.fields[rate]} rows/s"), TimeRemainingColumn(),
                           console=Console(stderr=True), transient=False)
            self.bar.start()

    def task(self, description: str, total: int):
        if self.bar is None:
            return None
        return self.bar.add_task(description, total=total, rate="-")

    def advance(self, task, rows: int) -> None:
        if self.bar is None or task is None:
            return
        self.bar.advance(task, rows)
        speed = self.bar.tasks[task].speed
        self.bar.update(task, rate=f"{speed:,.0f}" if speed else "-")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# -- the run ---------------------------------------------------------------------------------

def run_settle(plan: Plan, inputs, out_dir, registry=None, memory_limit=None, engine="local",
               overwrite=False, progress=True, context=None, policy_path=None,
               partitions=None, names="yibao", read_ahead=None, key_index=False) -> Summary:
    """Settle every claim of ``inputs`` into ``out_dir`` (module docstring). ``partitions``
    forces the partitioned mode with that many partitions (tests); otherwise it is chosen
    when the estimated in-memory size exceeds ``memory_limit`` (bytes; default half the RAM).
    ``read_ahead`` (core/read_ahead.py, started by the command before it compiled the
    policy) holds columns of the input already decoded for an in-memory run.
    ``key_index``: also write the key index explain reads (core/key_index.py; in memory only).
    Raises InputError, ClaimsError, PartitionError, FileExistsError, OutputBusyError or
    BalanceError when the run cannot be done; nothing is published then."""
    if partitions is not None and int(partitions) < 1:
        raise InputError(f"partitions must be at least 1, not {partitions}")
    start = time.perf_counter()
    timeline.start()
    registry = registry or default_registry()
    files = input_files(inputs)
    with timeline.stage("open sources"):
        sources = open_sources(plan, files)
    limit = memory_limit or default_memory_limit()
    _check_versions_supported(plan, engine)
    if partitions is None and engine == "local" and estimated_memory(sources) > limit:
        partitions = partition_count(sources, limit)
    supervised = _supervised(plan)
    late = names == "national" and supervised
    columns = read_columns(plan, registry)
    shape = claims_shape(plan, "yibao" if late else names)  # unknown names: before the lock
    out = OutputFolder(out_dir, overwrite)
    bar = Progress(progress)
    year = _provider_year(plan)
    provider_out = _ProviderOut(Policy.of(plan).versions[0], year, out)
    hashes = InputHashes([s.path for s in sources])
    try:
        settled = None  # the input row of each result, for supervision (None: unknown)
        if engine == "spark":
            from .spark import settle_spark
            mode, count, totals = "spark", partitions or 0, Totals()
            count = settle_spark(plan, sources, out, totals, registry, context, partitions,
                                 year=year, shape=shape)
        elif engine != "local":
            raise ValueError(f"unknown engine {engine!r}: use 'local' or 'spark'")
        elif partitions:
            mode, count = "partitioned", min(int(partitions), NBUCKETS)
            totals, settled = _settle_partitioned(plan, sources, out, count, registry,
                                                  context, bar, year, limit, shape,
                                                  columns, supervised)
        else:
            mode, count = "memory", 1
            totals, settled = _settle_in_memory(plan, sources, out, registry, context, bar,
                                                year, shape, columns, supervised, read_ahead,
                                                key_index, provider_out)
        pools = provider_out.write()  # in memory: already written beside the results writer
        from .supervision.run import write_supervision  # after settlement, whole run
        flags = write_supervision(plan, sources, out, settled)
        if late:
            _national_after_supervision(plan, out)
        summary = Summary(Policy.of(plan).name, engine, mode, count, totals,
                          time.perf_counter() - start, Policy.of(plan).layer_labels(), pools,
                          flags)
        with timeline.stage("finish (manifest, publish)"):
            _finish(plan, summary, sources, out, registry, policy_path, hashes.get())
    except BaseException:
        hashes.stop()
        out.discard()
        raise
    finally:
        bar.close()
        timeline.report()  # YIBAO_TIMELINE: also of a run that failed
    return summary


def _check_versions_supported(plan, engine: str) -> None:
    """Several versions: local engine only, and no provider part (its yearly pools are
    computed under one plan)."""
    plans = Policy.of(plan).versions
    if len(plans) == 1:
        return
    if engine == "spark":
        raise InputError(f"the policy has {len(plans)} versions; the Spark engine settles "
                         "under one version only: use --engine local (in memory or "
                         "--partitions N), or a folder with one version")
    if any(p.provider is not None for p in plans):
        raise InputError(f"the policy has {len(plans)} versions with provider payment; "
                         "the year's pools are settled under one version: settle each "
                         "version's claims with a folder of that version only")


def _provider_year(plan):
    """The year's provider-payment sums for a plan with a provider part; None (and
    core/provider.py not imported: it is most of a run's start-up beyond the engine) for one
    without."""
    first = Policy.of(plan).versions[0]
    if first.provider is None:
        return None
    from .provider import ProviderYear
    return ProviderYear(first)


class _ProviderOut:
    """hospitals.parquet and pools.parquet of a run, written once (``_write_provider``):
    an in-memory run writes them as soon as the year's sums are in, while the results
    writer still encodes claims.parquet on its thread (issue 14, p19: they were written
    after it, on the run's tail); ``write`` returns the per-pool totals every time."""

    def __init__(self, plan: Plan, year: "ProviderYear", out: OutputFolder):
        self.plan, self.year, self.out = plan, year, out
        self.pools = None

    def write(self) -> dict:
        if self.pools is None:
            with timeline.stage("provider year: hospitals, pools"):
                self.pools = _write_provider(self.plan, self.year, self.out)
        return self.pools


def _write_provider(plan: Plan, year: "ProviderYear", out: OutputFolder) -> dict:
    """Stage hospitals.parquet and pools.parquet (provider part only) and return the
    per-pool totals for summary.json; {} and no files for a plan without a provider part."""
    if plan.provider is None:
        return {}
    hospitals, pools = year.settle()
    out.write_table("hospitals.parquet", hospitals)
    out.write_table("pools.parquet", pools)
    return pool_totals(hospitals, pools)


def pool_totals(hospitals: pa.Table, pools: pa.Table) -> dict:
    """pool name -> its pools.parquet row (without ``pool``) plus the number of hospitals
    and claims and the Σ of what the fund pays the hospitals (hifp_pay, setl_amt)."""
    out = {}
    rows = hospitals.to_pylist()
    for row in pools.to_pylist():
        name = row.pop("pool")
        mine = [h for h in rows if h["pool"] == name]
        out[name] = {**row, "hospitals": len(mine), "claims": sum(h["claims"] for h in mine),
                     "hifp_pay": sum(h["hifp_pay"] for h in mine),
                     "setl_amt": sum(h["setl_amt"] for h in mine)}
    return out


def claims_shape(plan, names: str = "yibao"):
    """How each piece of the results is written to claims.parquet: as settled (``yibao``),
    or under the national settlement-list names (``national``, core/national.py), converted
    piece by piece as the pieces are written, so a partitioned run stays in bounded memory
    (the results carry the claims' identity columns, so no claim is looked up again)."""
    if names == "yibao":
        return AsWritten(Policy.of(plan).versions)
    if names != "national":
        raise ValueError(f"unknown names {names!r}: use 'yibao' or 'national'")
    from .national import national_table
    return lambda results: national_table(plan, results)


def _supervised(plan) -> bool:
    """Whether supervision flags read the staged results back (core/supervision/run.py): it
    reads them under yibao's names, so their national names are written after it."""
    from .supervision import supervision_of
    sup = supervision_of(plan)
    return sup is not None and bool(sup.flags)


def _national_after_supervision(plan, out: OutputFolder) -> None:
    """Rewrite the staged claims.parquet under the national names row group by row group
    (bounded memory, the same rows in the same order, so the same bytes as converting the
    pieces as they were written)."""
    import pyarrow.parquet as pq
    staged = out.stage("claims.parquet")
    shape = claims_shape(plan, "national")
    tmp = staged.with_name("claims.national.parquet")
    reader = pq.ParquetFile(str(staged))
    writer = ParquetOut(tmp, shape(reader.schema_arrow.empty_table()).schema)
    for batch in reader.iter_batches():
        writer.write(shape(pa.Table.from_batches([batch])))
    writer.close()
    tmp.replace(staged)


def _finish(plan, summary, sources, out, registry, policy_path, input_sha256=None) -> None:
    t = summary.totals
    if not t.balanced:
        raise BalanceError(f"control totals do not balance: input {t.input_rows} rows / "
                           f"{t.input_fen} fen, settled {t.settled_rows} / {t.settled_fen}, "
                           f"rejected {t.rejected_rows} / {t.rejected_fen}")
    out.write_json("summary.json", summary.as_dict())
    out.write_json("manifest.json", run_manifest(plan, summary, sources, out, registry,
                                                 policy_path, input_sha256))
    out.publish()


def _write_rejects(out: OutputFolder, pieces: list) -> None:
    rejects = pa.concat_tables(pieces) if pieces else REJECT_SCHEMA.empty_table()
    rejects = rejects.take(pc.sort_indices(rejects, sort_keys=[("row", "ascending")]))
    writer = ParquetOut(out.stage("rejects.parquet"), REJECT_SCHEMA)
    writer.write(rejects)
    writer.close()


def _input_rows(rows: np.ndarray, at) -> np.ndarray:
    """The run's input row of each result of a piece: ``at`` is each result's row in the
    piece (``settle_piece``), ``rows`` the piece's input rows; None when ``at`` is unknown."""
    return None if at is None else rows[np.asarray(at, dtype=np.int64)]


def _settle_in_memory(plan, sources, out, registry, context, bar, year=None,
                      shape=None, columns=None, keep_rows=False,
                      read_ahead=None, key_index=False, provider_out=None) -> tuple:
    """(control totals, the input row of each result when ``keep_rows`` and the engine
    knows them, else None): every file read (only ``columns``) into one table, settled as
    one piece, the results written while it settles (``settle_piece_streamed``: each piece
    goes to the writer thread as soon as it is settled, so its row groups are encoded
    beside the kernel instead of after it) and counted into the control totals.
    ``provider_out`` (``_ProviderOut``): the provider outputs, written once the year's sums
    are in, before waiting for the results writer."""
    task = bar.task("settle", sum(s.rows for s in sources))
    shape = shape or claims_shape(plan)
    with timeline.stage("read sources"):
        tables = _read_in_memory(sources, columns, read_ahead)
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    del tables
    # the input's fen is needed only for the control totals at the end: summed beside the
    # run (issue 14, w16: 0.02-0.03 s of CPU that delayed ``prepare``)
    fen_in = run_beside("input-fen", input_fen, table)
    totals = Totals(input_rows=table.num_rows)
    rows = np.arange(table.num_rows, dtype=np.int64)
    # explain's key index, written on a thread beside the kernel (core/key_index.py)
    index = KeyIndexWriter(Policy.of(plan).versions, registry, sources, table,
                           out.stage(KEY_INDEX)) if key_index else None
    settled = [0]
    results = _ResultsOut(out, shape, totals, Policy.of(plan).layer_names(), year is not None)

    def chunk_done(count: int) -> None:  # the bar moves per kernel chunk, not once at the end
        settled[0] += count
        bar.advance(task, count)
    try:
        with timeline.stage("settle piece"):
            # the buckets made by the engine once its provider part has started (beside it)
            rejects, fen, at = settle_piece_streamed(
                plan, table, rows, lambda t=table: buckets(bucket_plan(plan), t), registry,
                context, results.write, chunk_done)
        bar.advance(task, table.num_rows - settled[0])  # rows rejected before the kernel
        if year is not None:
            with timeline.stage("provider year: sums"):
                year.add(table, results.whole(), at)
        del table
        if provider_out is not None:
            provider_out.write()
        totals.input_fen = fen_in()
        totals.add_rejects(rejects, fen)
        with timeline.stage("write rejects"):
            _write_rejects(out, [rejects])
        with timeline.stage("wait for the results writer"):
            results.close()
        if index is not None:
            with timeline.stage("wait for the key index"):
                index.close()
    except BaseException:
        # no thread of this run may outlive it: the caller discards the staging folder and
        # releases the lock, and a writer still running would write into the next run's
        results.abort()
        if index is not None:
            index.discard()
        raise
    return totals, (_input_rows(rows, at) if keep_rows else None)


def _read_in_memory(sources, columns, read_ahead) -> list:
    """Every file's ``columns`` (``read_sources``), those read ahead (``read_ahead``, if
    given and it read these files) not read again; the files it did not begin read beside
    the one it is finishing (``read_beside``)."""
    if read_ahead is None:
        return read_sources(sources, columns)
    paths = [s.path for s in sources]
    begun = read_ahead.stop(paths)

    def read_ahead_tables():
        first_uses()  # this thread would only wait here
        return read_ahead.tables(paths)
    return read_beside(sources, columns, begun, read_ahead_tables, read_ahead.taken)


def first_uses() -> None:
    """Pay now what the run's first use of a library would pay on its threads later: the
    command waits for the read-ahead's file here (one core decoding, the other idle at a
    single-file run), while from the read to the kernel both cores are busy.

    ``numpy.ma``: pyarrow's ``pa.array`` of a numpy array asks whether it is a masked array,
    and numpy imports ``numpy.ma`` on that first look (≈ 7.5 ms of CPU). A provider run's
    first such call is on the provider thread (the decision table's ranks), the start of
    the chain that gates the results writer's first row group (issue 14, p20)."""
    import numpy.ma  # noqa: F401


# Row groups of results with the writer thread at once (_ResultsOut._ahead): one, so the kernel
# waits as soon as the writer falls behind and its CPU goes to the writer. The writer is the
# run's last stage (its encoding cannot be split over the cores): every row group queued
# behind it when the kernel ends is encoded with the other core idle. Issue 14, w20, 2M
# claims, loaded machine, 5 timelines each: the run waited 0.08-0.19 s for the writer alone
# with 4, 0.04-0.07 s with 1; the phase's CPU the same or less (fewer pieces held).
RESULTS_AHEAD = 1


class _ResultsOut:
    """claims.parquet of an in-memory run, written piece by piece as the results settle
    (under the names the run writes, ``shape``), each piece counted into ``totals``; the
    pieces are kept only when ``keep`` (the provider year reads the whole results)."""

    def __init__(self, out: OutputFolder, shape, totals: Totals, names, keep: bool):
        self.out, self.shape, self.totals, self.names = out, shape, totals, names
        self.writer = None
        self.kept = [] if keep else None

    def write(self, results: pa.Table) -> None:
        written = self.shape(results)
        if self.writer is None:
            self.writer = ParquetOut(self.out.stage("claims.parquet"), written.schema,
                                     ahead=self._ahead(), digest=True)
        self.writer.write(written)
        with timeline.stage("control totals"):
            self.totals.add_results(zero_nulls(results), self.names)
        if self.kept is not None:
            self.kept.append(results)

    def _ahead(self) -> int:
        """Row groups that may be with the writer thread: ``RESULTS_AHEAD`` when the pieces
        are let go once written (a streamed run's pieces own their columns since w18, issue
        14: a writer falling behind would otherwise hold them all), no bound when they are
        kept anyway."""
        return 0 if self.kept is not None else RESULTS_AHEAD

    def whole(self) -> pa.Table:
        return pa.concat_tables(self.kept) if len(self.kept) > 1 else self.kept[0]

    def close(self) -> None:
        """Wait for the writer thread (raising what it raised) and close the file; its
        sha256 (hashed as it was written) goes to the manifest."""
        self.writer.close()
        self.out.digests["claims.parquet"] = self.writer.sha256

    def abort(self) -> None:
        """The run failed: stop the writer thread and close the file (the run's staging
        folder, with the half-written file, is removed by ``OutputFolder.discard``)."""
        if self.writer is not None:
            self.writer.abort()


# -- partitioned -----------------------------------------------------------------------------

def iter_settle(plan: Plan, batches, workdir, partitions: int = 8, registry=None,
                context=None, totals: Totals = None, bar=None,
                expected_rows=None, year: "ProviderYear" = None,
                spill_budget: int = None) -> Iterator[tuple]:
    """Settle a stream of claim batches (pa.RecordBatch or pa.Table, any sizes) in bounded
    memory: pass 1 spills them to ``partitions`` Arrow IPC streams under ``workdir``; then yields
    ``(results, rejects)`` per partition, results in (bucket, discharge_date, claim_id) order
    (concatenated, the file's order), rejects with input row numbers (sorted per piece, not
    across pieces). ``totals`` (if given) receives the control totals, ``year`` (if given)
    each partition's provider-payment sums; ``spill_budget`` (bytes) bounds what pass 1
    buffers before writing to the spill files."""
    for results, rejects, _ in _iter_settle_rows(plan, batches, workdir, partitions, registry,
                                                 context, totals, bar, expected_rows, year,
                                                 spill_budget):
        yield results, rejects


def _iter_settle_rows(plan: Plan, batches, workdir, partitions: int = 8, registry=None,
                      context=None, totals: Totals = None, bar=None,
                      expected_rows=None, year: "ProviderYear" = None,
                      spill_budget: int = None) -> Iterator[tuple]:
    """``iter_settle`` yielding ``(results, rejects, the input row of each result or
    None)`` per partition."""
    registry = registry or default_registry()
    totals = totals if totals is not None else Totals()
    bar = bar or Progress(False)
    spill, duplicates = _spill_input(plan, batches, workdir, partitions, totals, bar,
                                     expected_rows, spill_budget,
                                     columns=read_columns(plan, registry))
    yield from _settle_spilled(plan, spill, totals, duplicates, registry, context, bar, year)


def _spill_input(plan, batches, workdir, partitions: int, totals: Totals, bar,
                 expected_rows=None, spill_budget: int = None, columns=None) -> tuple:
    """Pass 1: every batch's rows tagged and spilled to their partitions' files, the input
    counted into ``totals``; then the whole-input checks. Returns (the Spill, the claim ids
    seen more than once). ``columns``: the ones the run reads (``read_columns``; None: the
    batches hold no others, as a run's file reader gives them)."""
    spill = Spill(Path(workdir), partitions, spill_budget)
    check = KeyCheck(bucket_plan(plan))
    task = bar.task("partition", expected_rows)
    first = coded = None
    for k, table in enumerate(batches):
        table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
        if first is None or table.schema != first.schema:
            table = _checked_batch(plan, table, k, columns)
        if first is None:
            first, coded = table.schema.empty_table(), spilled_codes([table.schema])
        table = spill_columns(first, table, k)
        _spill_batch(plan, table, spill, check, totals, coded)
        bar.advance(task, table.num_rows)
    with timeline.stage("pass 1: close the spill"):
        spill.close()
    with timeline.stage("pass 1: persons, duplicate ids"):
        check.check_persons()
        duplicates = duplicate_ids(spill, check.candidate_hashes())
    return spill, duplicates


def _checked_batch(plan, table: pa.Table, k: int, columns) -> pa.Table:
    """Batch ``k`` (0-based) checked as a batch settled alone would be (unique names, the
    contract's columns and types: a ``ClaimsError`` naming the batch), with only ``columns``
    kept. Every batch whose schema differs from the first's is checked, not only the first:
    a later batch of float money or text dates is refused as it would be on its own."""
    check_unique_names(table.schema, f"batch {k + 1} of the claims")
    if columns is not None:
        table = table.select([c for c in columns if c in table.schema.names])
    try:
        for version in Policy.of(plan).versions:
            prepare(version, table.schema.empty_table())
    except ClaimsError as exc:
        if k == 0:
            raise
        raise ClaimsError(f"batch {k + 1} of the claims: {exc}") from None
    return table


def _spill_batch(plan, table, spill, check, totals, coded) -> None:
    """One batch tagged and spilled; ``coded``: the text columns spilled as codes, the first
    batch's choice for every batch (``spill.spill_layout``)."""
    n = table.num_rows
    rows = np.arange(totals.input_rows, totals.input_rows + n, dtype=np.int64)
    totals.input_rows += n
    with timeline.stage("pass 1: fen, buckets, id hashes"):
        table = spill_layout(table, coded)
        totals.input_fen += input_fen(table)
        bucket = buckets(bucket_plan(plan), table)
        claim_hash = hash_strings(table.column("claim_id"))
        check.add(table, bucket, claim_hash)
        table = (table.append_column("_row", pa.array(rows))
                 .append_column("_bucket", pa.array(bucket)))
    with timeline.stage("pass 1: spill"):
        spill.add(table, partition_of(bucket, spill.count))


def _settle_partitioned(plan, sources, out, count, registry, context, bar,
                        year=None, limit=None, shape=None, columns=None,
                        keep_rows=False) -> tuple:
    """(control totals, the input row of each result or None), as ``_settle_in_memory``."""
    previous = _returning_pool(limit)
    try:
        return _settle_partitions(plan, sources, out, count, registry, context, bar, year,
                                  limit, shape, columns, keep_rows)
    finally:
        if previous is not None:
            pa.set_memory_pool(previous)


# How soon jemalloc gives freed Arrow memory back to the OS in the partitioned mode: at once
# under a small --memory-limit, where the peak is what the limit is for (2M claims at 200M:
# 326-335 MiB peak RSS at once, 358-383 MiB after 1 s), else after a second, so pass 1's
# batches and each partition's buffers reuse the pages the last ones freed instead of
# faulting fresh ones in (10M claims in 5 partitions, loaded machine: 5.4-6.4 s of system
# CPU at once, 3.2 s after 1 s, the same peak RSS). Since issue 14's s19 after 10 s: a
# partition of a 50M run under 4G (~2.2M claims) takes 1.5-2.5 s to settle, so a 1 s decay
# purged each partition's pages before the next one could reuse them (10M in 5 partitions,
# 3 alternating rounds, load 4-4.6: minor faults 497-530k → 408-418k, CPU 12.3-13.0 →
# 11.8-12.0 s, peak RSS 1066-1090 → 1076-1135 MB; under 1G, 17 partitions: faults −25 %,
# peak +90 MB, 0.68 GB against a bound of 1.5 × the limit).
PURGE_AT_ONCE_BELOW = 1 << 30  # bytes of --memory-limit
PURGE_AFTER_MS = 10_000


def purge_delay_ms(limit: int) -> int:
    """jemalloc's decay (ms) for a partitioned run under ``limit`` bytes (above)."""
    return 0 if limit < PURGE_AT_ONCE_BELOW else PURGE_AFTER_MS


def _returning_pool(limit: int = None):
    """Make Arrow allocate from jemalloc for the bounded-memory mode, with the decay of
    ``purge_delay_ms``: freed buffers go back to the OS at once or within seconds instead
    of staying in the allocator's caches (measured: 2M claims at --memory-limit 200M peak at
    ~450 MiB RSS with the default pool, ~390 MiB with this one). Returns the pool to
    restore, or None where the build has no jemalloc."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(purge_delay_ms(limit or default_memory_limit()))
    except (NotImplementedError, pa.ArrowException, AttributeError):
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    return previous


def _settle_partitions(plan, sources, out, count, registry, context, bar, year,
                       limit, shape=None, columns=None, keep_rows=False) -> tuple:
    """Pass 1 (``_spill_input``), then each partition settled with its results written as
    they settle (``_settle_spilled_streamed``), as the in-memory run writes them."""
    totals = Totals()
    shape = shape or claims_shape(plan)
    limit = limit or default_memory_limit()
    batches = _input_batches(sources, batch_rows(sources, limit), columns)
    spill, duplicates = _spill_input(plan, batches, out.spill, count, totals, bar,
                                     sum(s.rows for s in sources), limit // SPILL_SHARE)
    results = _PartitionedOut(out, shape)
    try:
        rejects, settled = _settle_spilled_streamed(plan, spill, totals, duplicates, registry,
                                                    context, bar, year, results.write,
                                                    keep_rows)
        if results.writer is None:  # no rows at all: an empty file with the right columns
            results.write(settle(plan, sources[0].schema.empty_table(), registry,
                                 context).results)
        with timeline.stage("pass 2: wait for the results writer"):
            results.close()
    except BaseException:
        results.abort()  # no writer thread outlives the run (the caller discards the folder)
        raise
    _write_rejects(out, rejects)
    if not keep_rows or settled is None:
        return totals, None
    return totals, np.concatenate(settled) if settled else np.zeros(0, np.int64)


class _PartitionedOut:
    """claims.parquet of a partitioned run: each settled piece (under the names the run
    writes, ``shape``) handed to one ``ParquetOut`` (at most ``WRITE_AHEAD`` row groups
    waiting: bounded memory), the file hashed by its writer thread as it grows, so the
    manifest does not read it again (1.3 GB at 50M claims)."""

    def __init__(self, out: OutputFolder, shape):
        self.out, self.shape, self.writer = out, shape, None

    def write(self, results: pa.Table) -> None:
        written = self.shape(results)
        if self.writer is None:
            self.writer = ParquetOut(self.out.stage("claims.parquet"), written.schema,
                                     digest=True)
        with timeline.stage("pass 2: hand to the writer"):
            self.writer.write(written)

    def close(self) -> None:
        self.writer.close()
        self.out.digests["claims.parquet"] = self.writer.sha256

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def batch_rows(sources, limit: int) -> int:
    """Rows per read batch: a batch of at most ``limit / BATCH_SHARE`` bytes (Parquet's
    uncompressed size per row), between MIN_BATCH_ROWS and BATCH_ROWS."""
    rows = sum(s.rows for s in sources)
    per_row = max(1, sum(s.bytes for s in sources) // max(rows, 1))
    return int(min(BATCH_ROWS, max(MIN_BATCH_ROWS, limit // BATCH_SHARE // per_row)))


def _input_batches(sources, rows: int = BATCH_ROWS, columns=None) -> Iterator[pa.Table]:
    """The files' rows in batches of ``rows`` (only ``columns``), in the run's row order,
    each read on a thread while pass 1 spills the one before (``read_ahead``); text read as
    dictionary codes is left so (pass 1 spills it as codes: ``spill.spill_layout``)."""
    coded = spilled_codes([source.schema for source in sources])

    def in_order():
        for source in sources:
            batches = source.batches(rows, columns, coded=coded)  # spill_layout
            while True:
                with timeline.stage("pass 1: read batch"):
                    batch = next(batches, None)
                if batch is None:
                    break
                yield batch
    return read_ahead(in_order())


def read_ahead(items: Iterator) -> Iterator:
    """The items of ``items`` in order, the next one produced on a thread while the caller
    works on this one: decoding Parquet releases the GIL, so on two cores pass 1's reading
    and spilling overlap. One item is held ahead (pass 1's budget counts two read batches,
    ``BATCH_SHARE``); an error producing an item is raised where it is taken."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-read") as pool:
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield item


_DONE = object()  # read_ahead's end of the items


def _settle_spilled(plan, spill, totals, duplicates, registry, context, bar,
                    year=None) -> Iterator:
    """Pass 2 of ``iter_settle``: ``(results, rejects, the input row of each result)`` per
    partition, each partition settled whole."""
    task = bar.task("settle", totals.input_rows)
    names = Policy.of(plan).layer_names()
    totals.expect_layers(names)
    for p, table in _spilled_partitions(spill):
        table, rows, bucket, pieces = _without_duplicates(table, duplicates, totals)
        with timeline.stage("pass 2: settle piece"):
            results, piece_rejects, fen, at = settle_piece(plan, table, rows, bucket, registry,
                                                           context)
        settled = _input_rows(rows, at)
        if year is not None:
            year.add(table, results, at)
        totals.add_results(zero_nulls(results), names)
        totals.add_rejects(piece_rejects, fen)
        rejects = _partition_rejects(pieces + [piece_rejects])
        spill.path(p).unlink()
        bar.advance(task, results.num_rows + rejects.num_rows)
        yield results, rejects, settled


def _settle_spilled_streamed(plan, spill, totals, duplicates, registry, context, bar, year,
                             emit, keep_rows: bool) -> tuple:
    """Pass 2 of a run: each partition settled with its results handed to ``emit`` in the
    file's order as they settle (``settle_piece_streamed``: the order sorted beside
    ``prepare``, each 2^17 settled rows to the writer thread while the kernel goes on, as in
    memory), counted into ``totals`` piece by piece. Returns (the rejects of every partition,
    each partition's input row of each result when ``keep_rows`` and known, else None)."""
    task = bar.task("settle", totals.input_rows)
    totals.expect_layers(Policy.of(plan).layer_names())
    rejects, settled = [], ([] if keep_rows else None)
    partitions = _spilled_partitions(spill, coded=year is None)
    with closing(partitions):  # a failed run waits for the partition being read ahead
        for p, table in partitions:
            piece_rejects, rows = _settle_partition(plan, table, duplicates, totals, registry,
                                                    context, year, emit)
            rejects.append(piece_rejects)
            if settled is not None:
                settled = None if rows is None else settled + [rows]
            spill.path(p).unlink()
            bar.advance(task, table.num_rows)
    return rejects, settled


def _settle_partition(plan, table, duplicates, totals, registry, context, year,
                      emit) -> tuple:
    """One spilled partition settled, its results handed to ``emit`` as they settle and
    counted into ``totals``: (its rejects by input row, the input row of each result or
    None)."""
    names = Policy.of(plan).layer_names()
    table, rows, bucket, pieces = _without_duplicates(table, duplicates, totals)
    kept = [] if year is not None else None  # the provider year reads the whole results

    def piece_out(results: pa.Table) -> None:
        totals.add_results(zero_nulls(results), names)
        if kept is not None:
            kept.append(results)
        emit(results)
    with timeline.stage("pass 2: settle piece"):
        piece_rejects, fen, at = settle_piece_streamed(plan, table, rows, bucket, registry,
                                                       context, piece_out)
    if year is not None:
        year.add(table, pa.concat_tables(kept) if len(kept) > 1 else kept[0], at)
    totals.add_rejects(piece_rejects, fen)
    return _partition_rejects(pieces + [piece_rejects]), _input_rows(rows, at)


def _spilled_partitions(spill: Spill, coded: bool = False) -> Iterator[tuple]:
    """``(p, partition p's table)`` for every partition a row went to, in order; the next
    one read from its spill file on a thread (``read_ahead``) while the caller settles this
    one (reading releases the GIL). One partition's spilled rows (~110 bytes a claim of the
    reference run's columns) are held ahead: a small part of the ~900 bytes a claim that
    settling a partition is budgeted (docs/scale.md, "What --memory-limit bounds").
    ``coded``: text spilled as dictionary codes is left so (``Spill.read``), for a settlement
    alone (the provider year reads the claims as they are)."""
    def read(p: int):
        with timeline.stage("pass 2: spill read"):
            return p, spill.read(p, coded=coded)
    for p, table in read_ahead(read(p) for p in range(spill.count)):
        if table is not None:
            yield p, table


def _without_duplicates(table: pa.Table, duplicates, totals: Totals) -> tuple:
    """A spilled partition's claims without pass 1's tags, less the rows whose claim id is a
    duplicate (rejected here, counted into ``totals``): (claims, their input rows, their
    buckets, [the duplicates' rejects] or [])."""
    rows = np.asarray(table.column("_row").to_numpy(), dtype=np.int64)
    bucket = np.asarray(table.column("_bucket").to_numpy(), dtype=np.int32)
    table = table.drop_columns(["_row", "_bucket"])
    if not len(duplicates):
        return table, rows, bucket, []
    dup, dup_rejects, fen = duplicate_rejects(table, rows, duplicates)
    totals.add_rejects(dup_rejects, fen)
    keep = np.flatnonzero(~dup)
    return table.take(pa.array(keep)), rows[keep], bucket[keep], [dup_rejects]


def _partition_rejects(pieces: list) -> pa.Table:
    """One partition's rejects (duplicates and the settlement's), by input row."""
    rejects = pa.concat_tables(pieces)
    return rejects.take(pc.sort_indices(rejects, sort_keys=[("row", "ascending")]))

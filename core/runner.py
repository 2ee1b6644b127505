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

- *in memory*: every file read into one table, settled by ``engine.settle``;
- *partitioned* (the estimated in-memory size exceeds ``memory_limit``): pass 1 streams the
  input in record batches and spills each row, tagged with its row number and bucket, to the
  Parquet file of its partition (a range of buckets); duplicate claim ids are found across the
  whole input from 64-bit claim-id hashes (then confirmed on the ids themselves); pass 2 settles
  partition by partition. Temporary files live in ``out_dir/.yibao-run`` and go on success.

Duplicates: every copy of a claim id that appears more than once anywhere in the input is
rejected (``duplicate_claim_id``), as ``engine.settle`` does within one batch.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .arrow_io import (REJECT_SCHEMA, ClaimsError, _message, check_unique_names, fen_sum,
                       normal_schema, normal_table, prepare)
from .engine import settle
from .errors import YibaoError
from .manifest import (TABLE_OUTPUTS, OutputFolder, ParquetOut, Totals, exact_sum,
                       plugin_versions, policy_files, sha256_file)
from .partition import (NBUCKETS, PartitionError, bucket_order, buckets, hash_strings,
                        partition_key, partition_of)
from .plan import PERSON, Plan
from .policy import Policy
from .provider import ProviderYear
from .registry import default_registry

BATCH_ROWS = 1 << 18  # most rows per record batch read in the partitioned mode
MIN_BATCH_ROWS = 1 << 13  # fewest (below this, per-batch overheads dominate)
SPILL_FLUSH = 1 << 16  # rows buffered per partition before a spill write
# Shares of --memory-limit the partitioned mode's pass 1 may hold at once (docs/scale.md,
# "What --memory-limit bounds"): one read batch (and its copy sorted by partition) and the
# spill buffers of all partitions together.
BATCH_SHARE = 32
SPILL_SHARE = 8
MEMORY_FACTOR = 15  # peak bytes of an in-memory settle per byte of Parquet-uncompressed
# claims (measured: 1M generated claims, 60 MB in Parquet pages, peak RSS 0.87 GB)
GLOBAL_BYTES_PER_ROW = 24  # pass 1 keeps 8 bytes of claim-id hash per row (+ a sorted copy)
IPC_SUFFIXES = (".arrow", ".ipc", ".feather")
EXIT_OK, EXIT_REJECTS, EXIT_FAILED = 0, 1, 2


class InputError(YibaoError, ValueError):
    """A claims file cannot be read (exit 2)."""


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

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTS if self.totals.rejected_rows else EXIT_OK

    def as_dict(self) -> dict:
        return {"policy": self.policy, "engine": self.engine, "mode": self.mode,
                "partitions": self.partitions, "buckets": NBUCKETS,
                **self.totals.as_dict(), "labels": self.labels,
                **({"pools": self.pools} if self.pools else {}),
                "seconds": round(self.seconds, 3)}


# -- versions ------------------------------------------------------------------------------

def bucket_plan(plan) -> Plan:
    """The version whose partition key splits the run: every version must accumulate over
    the person or one same wider key (a family) for the run to be split by buckets."""
    plans = Policy.of(plan).versions
    wide = {k.coarse.name: p for p in plans for k in p.keys() if k.coarse.name != PERSON.name}
    if len(wide) > 1:
        raise PartitionError(f"the policy versions accumulate over several keys "
                             f"({', '.join(wide)}); settle this run in memory")
    return next(iter(wide.values())) if wide else plans[0]


def zero_nulls(results: pa.Table) -> pa.Table:
    """For the control totals: a layer a claim's version lacks (null) paid 0."""
    for i, name in enumerate(results.column_names):
        col = results.column(i)
        if col.null_count and pa.types.is_integer(col.type):
            results = results.set_column(i, name, col.fill_null(0))
    return results


# -- input -----------------------------------------------------------------------------------

def input_files(inputs) -> list:
    """The claim files of ``inputs`` (a path or a list): a folder stands for every Parquet
    file under it; all files sorted by path, which fixes the row numbering."""
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(f for f in p.rglob("*.parquet") if f.is_file())
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(f"no claims file or folder at {p}")
    if not found:
        raise InputError(f"no Parquet files under {', '.join(map(str, paths))}")
    return sorted(found, key=lambda f: f.as_posix())


class Source:
    """One claims file: Parquet, or Arrow IPC (file or stream format)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.ipc = self.path.suffix in IPC_SUFFIXES
        try:
            if self.ipc:
                table = self._read_ipc()
                self.rows, self.schema, self.bytes = table.num_rows, table.schema, table.nbytes
            else:
                meta = pq.ParquetFile(str(self.path)).metadata
                self.rows = meta.num_rows
                self.schema = meta.schema.to_arrow_schema()
                self.bytes = sum(meta.row_group(i).total_byte_size
                                 for i in range(meta.num_row_groups))
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc) -> InputError:
        kind = "Arrow IPC" if self.ipc else "Parquet"
        return InputError(f"{self.path}: not a readable {kind} file ({exc}); the file may be "
                          "truncated or corrupt: export it again")

    def _read_ipc(self) -> pa.Table:
        import pyarrow.ipc as ipc
        with pa.memory_map(str(self.path)) as src:
            try:
                return ipc.open_file(src).read_all()
            except pa.ArrowInvalid:
                src.seek(0)
                return ipc.open_stream(src).read_all()

    def batches(self, rows: int) -> Iterator[pa.Table]:
        """The file in tables of ``rows`` rows, in the one column layout (arrow_io)."""
        try:
            if self.ipc:
                for batch in self._read_ipc().to_batches(rows):
                    yield normal_table(pa.Table.from_batches([batch]))
                return
            # a buffered stream and no pre-buffering: pages are read as the batches need them,
            # not whole column chunks (a 1M-row row group would be ~135 MB decoded at once)
            reader = pq.ParquetFile(str(self.path), buffer_size=1 << 20, pre_buffer=False)
            for batch in reader.iter_batches(batch_size=rows):
                yield normal_table(pa.Table.from_batches([batch]))
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc

    def read(self) -> pa.Table:
        """The whole file, in the one column layout (arrow_io)."""
        try:
            table = self._read_ipc() if self.ipc else pq.ParquetFile(str(self.path)).read()
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc
        return normal_table(table)


def open_sources(plan: Plan, files: list) -> list:
    """Open every file and check that its columns can be settled (same schema everywhere)."""
    sources = [Source(f) for f in files]
    for s in sources:
        check_unique_names(s.schema, str(s.path))
    first = sources[0]
    for version in Policy.of(plan).versions:
        prepare(version, first.schema.empty_table())  # raises ClaimsError for a missing/wrong column
    for s in sources[1:]:
        if not normal_schema(s.schema).equals(normal_schema(first.schema)):
            raise ClaimsError(f"{s.path} has columns {_cols(s.schema)} but {first.path} has "
                              f"{_cols(first.schema)}: every claims file of a run needs the "
                              "same columns and types")
    return sources


def _cols(schema) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in schema) + ")"


def estimated_memory(sources) -> int:
    return MEMORY_FACTOR * sum(s.bytes for s in sources)


def partition_count(sources, limit: int) -> int:
    """Partitions so that one partition's settle, plus pass 1's per-row hashes, fits in
    ``limit`` with a 1.5x margin."""
    rows = sum(s.rows for s in sources)
    room = max(limit - GLOBAL_BYTES_PER_ROW * rows, limit // 8)
    return min(NBUCKETS, max(2, math.ceil(1.5 * estimated_memory(sources) / room)))


def default_memory_limit() -> int:
    """Half the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError):
        return 4 << 30


# -- one piece -------------------------------------------------------------------------------

def settle_piece(plan: Plan, table: pa.Table, rows: np.ndarray, bucket: np.ndarray,
                 registry, context, progress=None) -> tuple:
    """Settle the claims of some whole buckets. ``rows`` are their input row numbers and
    ``bucket`` their buckets. Returns (results in (bucket, date, claim_id) order, rejects with
    input row numbers, fen of the rejected rows' totals)."""
    if table.num_rows == 0:
        empty = settle(plan, table, registry, context)
        return empty.results, empty.rejects, 0
    batch = settle(plan, table, registry, context, progress)
    claim_id = table.column("claim_id").combine_chunks()
    if not pa.types.is_string(claim_id.type):
        claim_id = claim_id.cast(pa.string())
    results = batch.results.take(pa.array(
        bucket_order(batch.results.column("claim_id"), claim_id, bucket)))
    local = np.asarray(batch.rejects.column("row").to_numpy(), dtype=np.int64)
    rejects = batch.rejects.set_column(1, "row", pa.array(rows[local], pa.int64()))
    fen = fen_sum(table.column("total").take(pa.array(local))) if len(local) else 0
    return results, rejects, fen


def duplicate_rejects(table: pa.Table, rows: np.ndarray, duplicates: pa.Array) -> tuple:
    """(rows of ``table`` whose claim id is a known duplicate, their rejects, their fen)."""
    mask = np.asarray(pc.is_in(table.column("claim_id"), value_set=duplicates)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    idx = np.flatnonzero(mask)
    ids = table.column("claim_id").take(pa.array(idx)).to_pylist()
    rejects = pa.table({
        "claim_id": pa.array(ids, pa.string()), "row": pa.array(rows[idx], pa.int64()),
        "reason": pa.array(["duplicate_claim_id"] * len(idx), pa.string()),
        "message": pa.array([_message("duplicate_claim_id", "claim_id", c) for c in ids],
                            pa.string())}, schema=REJECT_SCHEMA)
    fen = fen_sum(table.column("total").take(pa.array(idx))) if len(idx) else 0
    return mask, rejects, fen


def input_fen(table: pa.Table) -> int:
    return fen_sum(table.column("total"))


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
               partitions=None) -> Summary:
    """Settle every claim of ``inputs`` into ``out_dir`` (module docstring). ``partitions``
    forces the partitioned mode with that many partitions (tests); otherwise it is chosen
    when the estimated in-memory size exceeds ``memory_limit`` (bytes; default half the RAM).
    Raises InputError, ClaimsError, PartitionError, FileExistsError, OutputBusyError or
    BalanceError when the run cannot be done; nothing is published then."""
    if partitions is not None and int(partitions) < 1:
        raise InputError(f"partitions must be at least 1, not {partitions}")
    start = time.perf_counter()
    registry = registry or default_registry()
    files = input_files(inputs)
    sources = open_sources(plan, files)
    limit = memory_limit or default_memory_limit()
    _check_versions_supported(plan, engine)
    if partitions is None and engine == "local" and estimated_memory(sources) > limit:
        partitions = partition_count(sources, limit)
    out = OutputFolder(out_dir, overwrite)
    bar = Progress(progress)
    year = ProviderYear(Policy.of(plan).versions[0])
    try:
        if engine == "spark":
            from .spark import settle_spark
            mode, count, totals = "spark", partitions or 0, Totals()
            count = settle_spark(plan, sources, out, totals, registry, context, partitions,
                                 year=year)
        elif engine != "local":
            raise ValueError(f"unknown engine {engine!r}: use 'local' or 'spark'")
        elif partitions:
            mode, count = "partitioned", min(int(partitions), NBUCKETS)
            totals = _settle_partitioned(plan, sources, out, count, registry, context, bar,
                                         year, limit)
        else:
            mode, count = "memory", 1
            totals = _settle_in_memory(plan, sources, out, registry, context, bar, year)
        pools = _write_provider(Policy.of(plan).versions[0], year, out)
        summary = Summary(Policy.of(plan).name, engine, mode, count, totals,
                          time.perf_counter() - start, Policy.of(plan).layer_labels(), pools)
        _finish(plan, summary, sources, out, registry, policy_path)
    except BaseException:
        out.discard()
        raise
    finally:
        bar.close()
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


def _write_provider(plan: Plan, year: ProviderYear, out: OutputFolder) -> dict:
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


def _finish(plan, summary, sources, out, registry, policy_path) -> None:
    t = summary.totals
    if not t.balanced:
        raise BalanceError(f"control totals do not balance: input {t.input_rows} rows / "
                           f"{t.input_fen} fen, settled {t.settled_rows} / {t.settled_fen}, "
                           f"rejected {t.rejected_rows} / {t.rejected_fen}")
    out.write_json("summary.json", summary.as_dict())
    out.write_json("manifest.json", _manifest(plan, summary, sources, out, registry,
                                              policy_path))
    out.publish()


def _manifest(plan, summary, sources, out, registry, policy_path) -> dict:
    outputs = {name: {"sha256": sha256_file(out.stage(name)),
                      "rows": pq.ParquetFile(str(out.stage(name))).metadata.num_rows}
               for name in TABLE_OUTPUTS if out.stage(name).exists()}
    from .describe import format_date
    plans = Policy.of(plan).versions
    policy = {"name": Policy.of(plan).name, "region": plans[0].region,
              "meta": dict(plans[-1].meta), "files": policy_files(policy_path)}
    if len(plans) > 1:
        policy["versions"] = [{"name": p.name, "effective_from": format_date(p.effective_from),
                               "effective_to": format_date(p.effective_to),
                               "meta": dict(p.meta)} for p in plans]
    return {
        "yibao_version": __version__, "plan_version": plans[0].version,
        "policy": policy,
        "plugins": plugin_versions(registry),
        "inputs": [{"path": str(s.path), "sha256": sha256_file(s.path), "rows": s.rows,
                    "bytes": s.path.stat().st_size} for s in sources],
        "outputs": outputs, "run": out.run_id, "engine": summary.engine, "mode": summary.mode,
        "partitions": summary.partitions, "buckets": NBUCKETS,
        "row_order": "claims: (bucket of partition key, discharge_date, claim_id); "
                     "rejects: input row",
    }


def _write_rejects(out: OutputFolder, pieces: list) -> None:
    rejects = pa.concat_tables(pieces) if pieces else REJECT_SCHEMA.empty_table()
    rejects = rejects.take(pc.sort_indices(rejects, sort_keys=[("row", "ascending")]))
    writer = ParquetOut(out.stage("rejects.parquet"), REJECT_SCHEMA)
    writer.write(rejects)
    writer.close()


def _settle_in_memory(plan, sources, out, registry, context, bar, year=None) -> Totals:
    task = bar.task("settle", sum(s.rows for s in sources))
    tables = [s.read() for s in sources]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    del tables
    totals = Totals(input_rows=table.num_rows, input_fen=input_fen(table))
    rows = np.arange(table.num_rows, dtype=np.int64)
    settled = [0]

    def chunk_done(count: int) -> None:  # the bar moves per kernel chunk, not once at the end
        settled[0] += count
        bar.advance(task, count)
    results, rejects, fen = settle_piece(plan, table, rows, buckets(bucket_plan(plan), table),
                                         registry, context, chunk_done)
    bar.advance(task, table.num_rows - settled[0])  # rows rejected before the kernel
    if year is not None:
        year.add(table, results)
    totals.add_results(zero_nulls(results), Policy.of(plan).layer_names())
    totals.add_rejects(rejects, fen)
    writer = ParquetOut(out.stage("claims.parquet"), results.schema)
    writer.write(results)
    writer.close()
    _write_rejects(out, [rejects])
    return totals


# -- partitioned -----------------------------------------------------------------------------

class Spill:
    """Pass 1's output: one Parquet file per partition, written in buffered chunks."""

    def __init__(self, folder: Path, count: int, budget: int = None):
        self.folder, self.count = folder, count
        self.budget = budget  # bytes all buffers may hold together (None: no bound)
        folder.mkdir(parents=True, exist_ok=True)
        self.buffers = [[] for _ in range(count)]
        self.sizes = [0] * count
        self.buffered = 0  # bytes in all buffers
        self.writers = [None] * count

    def path(self, p: int) -> Path:
        return self.folder / f"part-{p:05d}.parquet"

    def add(self, table: pa.Table, part: np.ndarray) -> None:
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.count + 1))
        sorted_table = table.take(pa.array(order))
        for p in range(self.count):
            lo, hi = int(bounds[p]), int(bounds[p + 1])
            if hi > lo:
                piece = sorted_table.slice(lo, hi - lo)
                self.buffers[p].append(piece)
                self.sizes[p] += hi - lo
                self.buffered += piece.nbytes
                if self.sizes[p] >= SPILL_FLUSH:
                    self._flush(p)
        if self.budget is not None and self.buffered > self.budget:
            for p in range(self.count):  # over budget: every buffer to disk
                if self.sizes[p]:
                    self._flush(p)

    def _flush(self, p: int) -> None:
        table = pa.concat_tables(self.buffers[p])
        if self.writers[p] is None:
            self.writers[p] = pq.ParquetWriter(str(self.path(p)), table.schema,
                                               compression="lz4")
        self.writers[p].write_table(table)
        self.buffered -= sum(piece.nbytes for piece in self.buffers[p])
        self.buffers[p], self.sizes[p] = [], 0

    def close(self) -> None:
        for p in range(self.count):
            if self.sizes[p]:
                self._flush(p)
            if self.writers[p] is not None:
                self.writers[p].close()

    def read(self, p: int, columns=None):
        path = self.path(p)
        return pq.read_table(str(path), columns=columns) if path.exists() else None


class _KeyCheck:
    """Global checks over pass 1: claim-id hashes (duplicates across partitions) and, when the
    partition key is wider than the person, that every person stays in one bucket."""

    def __init__(self, plan: Plan):
        self.wide = partition_key(plan).name != PERSON.name
        self.claims: list = []
        self.persons: list = []

    def add(self, table: pa.Table, bucket: np.ndarray, claim_hash: np.ndarray) -> None:
        valid = np.asarray(pc.is_valid(table.column("claim_id")).to_numpy(
            zero_copy_only=False), dtype=bool)
        self.claims.append(claim_hash[valid])
        if self.wide:
            ph = hash_strings(table.column("person_id"))
            pairs = np.unique(np.stack([ph, bucket.astype(np.uint64)], axis=1), axis=0)
            self.persons.append(pairs)

    def candidate_hashes(self) -> np.ndarray:
        """Claim-id hashes seen more than once (the ids themselves are compared later)."""
        h = np.sort(np.concatenate(self.claims)) if self.claims else np.zeros(0, np.uint64)
        self.claims = []
        return np.unique(h[1:][h[1:] == h[:-1]])

    def check_persons(self) -> None:
        if not self.wide or not self.persons:
            return
        pairs = np.unique(np.concatenate(self.persons), axis=0)
        self.persons = []
        split = np.flatnonzero(pairs[1:, 0] == pairs[:-1, 0])
        if len(split):
            raise PartitionError(
                f"{len(split)} person(s) appear under different family keys (e.g. a family id "
                "on some claims and none on others), so their claims cannot be settled "
                "partition by partition: settle in memory (raise --memory-limit) or make "
                "each person's family id the same on all of their claims")


def iter_settle(plan: Plan, batches, workdir, partitions: int = 8, registry=None,
                context=None, totals: Totals = None, bar=None,
                expected_rows=None, year: ProviderYear = None,
                spill_budget: int = None) -> Iterator[tuple]:
    """Settle a stream of claim batches (pa.RecordBatch or pa.Table, any sizes) in bounded
    memory: pass 1 spills them to ``partitions`` Parquet files under ``workdir``; then yields
    ``(results, rejects)`` per partition, results in (bucket, discharge_date, claim_id) order
    (concatenated, the file's order), rejects with input row numbers (sorted per piece, not
    across pieces). ``totals`` (if given) receives the control totals, ``year`` (if given)
    each partition's provider-payment sums; ``spill_budget`` (bytes) bounds what pass 1
    buffers before writing to the spill files."""
    registry = registry or default_registry()
    totals = totals if totals is not None else Totals()
    bar = bar or Progress(False)
    spill = Spill(Path(workdir), partitions, spill_budget)
    check = _KeyCheck(bucket_plan(plan))
    task = bar.task("partition", expected_rows)
    for table in batches:
        table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
        if totals.input_rows == 0:
            for version in Policy.of(plan).versions:  # ClaimsError for a wrong column
                prepare(version, table.schema.empty_table())
        _spill_batch(plan, table, spill, check, totals)
        bar.advance(task, table.num_rows)
    spill.close()
    check.check_persons()
    duplicates = _duplicate_ids(spill, check.candidate_hashes())
    yield from _settle_spilled(plan, spill, totals, duplicates, registry, context, bar, year)


def _spill_batch(plan, table, spill, check, totals) -> None:
    n = table.num_rows
    rows = np.arange(totals.input_rows, totals.input_rows + n, dtype=np.int64)
    totals.input_rows += n
    totals.input_fen += input_fen(table)
    bucket = buckets(bucket_plan(plan), table)
    claim_hash = hash_strings(table.column("claim_id"))
    check.add(table, bucket, claim_hash)
    table = (table.append_column("_row", pa.array(rows))
             .append_column("_bucket", pa.array(bucket))
             .append_column("_chash", pa.array(claim_hash)))
    spill.add(table, partition_of(bucket, spill.count))


def _settle_partitioned(plan, sources, out, count, registry, context, bar,
                        year=None, limit=None) -> Totals:
    previous = _returning_pool()
    try:
        return _settle_partitions(plan, sources, out, count, registry, context, bar, year,
                                  limit)
    finally:
        if previous is not None:
            pa.set_memory_pool(previous)


def _returning_pool():
    """Make Arrow allocate from jemalloc with decay 0 for the bounded-memory mode, so freed
    buffers go back to the OS at once instead of staying in the allocator's caches (measured:
    2M claims at --memory-limit 200M peak at ~450 MiB RSS with the default pool, ~390 MiB with
    this one). Returns the pool to restore, or None where the build has no jemalloc."""
    try:
        pool = pa.jemalloc_memory_pool()
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowException, AttributeError):
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    return previous


def _settle_partitions(plan, sources, out, count, registry, context, bar, year,
                       limit) -> Totals:
    totals = Totals()
    writer, rejects = None, []
    limit = limit or default_memory_limit()
    batches = _input_batches(sources, batch_rows(sources, limit))
    for results, piece_rejects in iter_settle(plan, batches, out.spill, count,
                                              registry, context, totals, bar,
                                              sum(s.rows for s in sources), year,
                                              spill_budget=limit // SPILL_SHARE):
        if writer is None:
            writer = ParquetOut(out.stage("claims.parquet"), results.schema)
        writer.write(results)
        rejects.append(piece_rejects)
    if writer is None:  # no rows at all: an empty results file with the right columns
        empty = settle(plan, sources[0].schema.empty_table(), registry, context).results
        writer = ParquetOut(out.stage("claims.parquet"), empty.schema)
    writer.close()
    _write_rejects(out, rejects)
    return totals


def batch_rows(sources, limit: int) -> int:
    """Rows per read batch: a batch of at most ``limit / BATCH_SHARE`` bytes (Parquet's
    uncompressed size per row), between MIN_BATCH_ROWS and BATCH_ROWS."""
    rows = sum(s.rows for s in sources)
    per_row = max(1, sum(s.bytes for s in sources) // max(rows, 1))
    return int(min(BATCH_ROWS, max(MIN_BATCH_ROWS, limit // BATCH_SHARE // per_row)))


def _input_batches(sources, rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    for source in sources:
        yield from source.batches(rows)


def _duplicate_ids(spill: Spill, candidates: np.ndarray) -> pa.Array:
    """Claim ids (strings) occurring more than once in the whole input."""
    if len(candidates) == 0:
        return pa.array([], pa.string())
    found = []
    for p in range(spill.count):
        t = spill.read(p, ["claim_id", "_chash"])
        if t is not None:
            hit = pc.is_in(t.column("_chash"), value_set=pa.array(candidates))
            found.append(t.column("claim_id").filter(hit))
    ids = pa.chunked_array(found, pa.string()).combine_chunks() if found else \
        pa.array([], pa.string())
    counts = pc.value_counts(ids)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))


def _settle_spilled(plan, spill, totals, duplicates, registry, context, bar,
                    year=None) -> Iterator:
    task = bar.task("settle", totals.input_rows)
    names = Policy.of(plan).layer_names()
    for p in range(spill.count):
        table = spill.read(p)
        if table is None:
            continue
        rows = np.asarray(table.column("_row").to_numpy(), dtype=np.int64)
        bucket = np.asarray(table.column("_bucket").to_numpy(), dtype=np.int32)
        table = table.drop_columns(["_row", "_bucket", "_chash"])
        pieces = []
        if len(duplicates):
            dup, dup_rejects, fen = duplicate_rejects(table, rows, duplicates)
            totals.add_rejects(dup_rejects, fen)
            pieces.append(dup_rejects)
            keep = np.flatnonzero(~dup)
            table, rows, bucket = table.take(pa.array(keep)), rows[keep], bucket[keep]
        results, piece_rejects, fen = settle_piece(plan, table, rows, bucket, registry, context)
        if year is not None:
            year.add(table, results)
        totals.add_results(zero_nulls(results), names)
        totals.add_rejects(piece_rejects, fen)
        pieces.append(piece_rejects)
        rejects = pa.concat_tables(pieces)
        rejects = rejects.take(pc.sort_indices(rejects, sort_keys=[("row", "ascending")]))
        spill.path(p).unlink()
        bar.advance(task, results.num_rows + rejects.num_rows)
        yield results, rejects

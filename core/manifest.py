"""What a run leaves behind besides its results: exact control totals, the run manifest, and
output files written under temporary names and published only when complete.

Control totals (``Totals``) are Python ints summed exactly from int64 fen (``exact_sum``
splits each value into 32-bit halves, so no int64 sum can wrap silently, whatever the input).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import YibaoError
from . import timeline

# every file a run may publish, in publication order (the manifest last); the provider
# payment files only for a plan with a provider part
PROVIDER_OUTPUTS = ("hospitals.parquet", "pools.parquet")
# and the supervision files only for a plan with flags (core/supervision/run.py)
SUPERVISION_OUTPUTS = ("flags.parquet", "hospital_indicators.parquet")
TABLE_OUTPUTS = ("claims.parquet", "rejects.parquet") + PROVIDER_OUTPUTS + SUPERVISION_OUTPUTS
OUTPUTS = TABLE_OUTPUTS + ("summary.json", "manifest.json")
STAGING = ".yibao-run"  # a run's working folder inside the output folder
ROW_GROUP = 1 << 17  # rows per Parquet row group in the outputs, whatever the engine: the
# results writer buffers one row group, so this bounds its memory (~100 bytes a row)
WRITE_AHEAD = 2  # row groups that may wait for ParquetOut's writer thread
# The rest of the output layout, fixed here rather than left to pyarrow's defaults (which may
# change between versions): page boundaries must follow the rows, never the write batches.
# No dictionary encoding (issue 14, measured on 2M reference results, benchmarks/README.md):
# claim ids and most money columns have hundreds of thousands of distinct values, so pyarrow
# built a dictionary per column chunk only to give it up past dictionary_pagesize_limit; plain
# pages + zstd wrote in 0.75 s of CPU instead of 1.19 s and the file shrank from 37 to 30 MB.
# Snappy rather than zstd (issue 14, r14, 2M reference results, CPU of the writer thread, best
# of 3): zstd 1.03 s / 39.7 MB, zstd level -3 0.91 s / 53.4 MB, snappy 0.76 s / 64.4 MB, lz4
# 0.77 s / 63.3 MB, none 0.46 s / 206 MB. The run waits for that thread at the end (the results
# of an in-memory run exist all at once), so its CPU is the command's wall time; snappy is
# Parquet's most widely read codec (pyarrow, DuckDB, Polars, every Spark), at ~60 % more bytes.
WRITE_OPTIONS = {
    "compression": "snappy",
    "use_dictionary": False,
    "data_page_size": 1 << 20,
    "dictionary_pagesize_limit": 1 << 20,
    "write_batch_size": 1024,
    "data_page_version": "1.0",
    "write_statistics": True,
}
# Per column, by type (issue 14, w15; 2M reference results in 2^17-row groups, CPU of the
# writer thread, best of 3 on a loaded machine: WRITE_OPTIONS alone 0.57-0.63 s / 64.4 MB,
# these 0.42-0.43 s / 61.7 MB; benchmarks/README.md "w15"):
# - integers (money in fen, counts, row numbers): DELTA_BINARY_PACKED and no codec. The
#   payments are mostly 0 or small, which delta packing stores in a few bits, faster than
#   plain pages + snappy (snappy over the packed pages saved 9 MB for 0.05-0.08 s more);
# - text: no statistics. Results are in (bucket, date, claim id) order, so every row group's
#   ids span the whole range and min/max statistics skip nothing, and comparing millions of
#   strings for them cost ~0.05 s;
# - ``hospital_id`` (DICTIONARY_COLUMNS): a dictionary, a few thousand hospitals (per column:
#   0.057 s / 2.9 MB against plain + snappy 0.069 s / 6.5 MB; a person's or claim's id has
#   too many values for one);
# - everything else (dates, other text, booleans) as WRITE_OPTIONS says.
# Every reader of the peers reads these encodings (pyarrow, DuckDB, Polars, Spark ≥ 3.3;
# tests/batch/test_run_io.py). A schema with nested columns keeps WRITE_OPTIONS whole (the
# per-column settings name leaf paths).
DELTA = "DELTA_BINARY_PACKED"
DICTIONARY_COLUMNS = ("hospital_id",)


def write_options(schema: pa.Schema) -> dict:
    """The ParquetWriter settings of an output with ``schema`` (the comments above)."""
    options = dict(WRITE_OPTIONS)
    if any(pa.types.is_nested(f.type) for f in schema):
        return options
    ints = {f.name for f in schema if pa.types.is_integer(f.type)}
    text = {f.name for f in schema if pa.types.is_string(f.type) or
            pa.types.is_large_string(f.type)}
    codec = options["compression"]
    options["compression"] = {f.name: "none" if f.name in ints else codec for f in schema}
    options["column_encoding"] = {name: DELTA for name in ints}
    options["use_dictionary"] = [n for n in DICTIONARY_COLUMNS if n in text]
    options["write_statistics"] = [f.name for f in schema if f.name not in text]
    return options


EXACT_SUM_BLOCK = 1 << 16  # values split at a time: temporaries of 512 KB, not of the column


def exact_sum(values) -> int:
    """Σ of int64 values as a Python int, exact even where an int64 sum would overflow: each
    value split into its high and low 32 bits, whose sums fit int64. A block at a time, so
    the split halves are small temporaries reused, not two fresh copies of the column (2M
    values: 32 MB of fresh pages, which on a VM are system time)."""
    a = np.asarray(values, dtype=np.int64).ravel()
    total = 0
    for start in range(0, a.size, EXACT_SUM_BLOCK):
        block = a[start:start + EXACT_SUM_BLOCK]
        hi = int(np.sum(block >> 32, dtype=np.int64))
        lo = int(np.sum(block & 0xFFFFFFFF, dtype=np.int64))
        total += (hi << 32) + lo
    return total


@dataclass
class Totals:
    """Rows and fen of ``total`` for the input, the settled and the rejected claims, and what
    each layer paid. ``balanced`` when input = settled + rejected in rows and in fen."""
    input_rows: int = 0
    input_fen: int = 0
    settled_rows: int = 0
    settled_fen: int = 0
    rejected_rows: int = 0
    rejected_fen: int = 0
    layers: dict = field(default_factory=dict)
    self_pay: int = 0
    reasons: dict = field(default_factory=dict)

    def expect_layers(self, layer_names) -> None:
        """Every layer listed, at 0 until results add to it, in the policy's order: a
        partitioned run that settles no row (an empty input, every row rejected) names its
        layers as the in-memory run does, which adds its one, empty, results table."""
        for name in layer_names:
            self.layers.setdefault(name, 0)

    def add_results(self, results: pa.Table, layer_names) -> None:
        self.settled_rows += results.num_rows
        paid = 0
        for name in layer_names:
            fen = exact_sum(_np(results.column(name)))
            self.layers[name] = self.layers.get(name, 0) + fen
            paid += fen
        self_pay = exact_sum(_np(results.column("self_pay")))
        self.self_pay += self_pay
        self.settled_fen += paid + self_pay

    def add_rejects(self, rejects: pa.Table, fen: int) -> None:
        self.rejected_rows += rejects.num_rows
        self.rejected_fen += fen
        for reason in rejects.column("reason").to_pylist():
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    @property
    def balanced(self) -> bool:
        return (self.input_rows == self.settled_rows + self.rejected_rows
                and self.input_fen == self.settled_fen + self.rejected_fen)

    def as_dict(self) -> dict:
        return {
            "input": {"rows": self.input_rows, "total_fen": self.input_fen},
            "settled": {"rows": self.settled_rows, "total_fen": self.settled_fen},
            "rejected": {"rows": self.rejected_rows, "total_fen": self.rejected_fen,
                         "reasons": dict(sorted(self.reasons.items()))},
            "layers": dict(self.layers), "self_pay": self.self_pay, "balanced": self.balanced,
        }


def _np(col) -> np.ndarray:
    return np.asarray(col.to_numpy(), dtype=np.int64) if len(col) else np.zeros(0, np.int64)


def sha256_file(path, stop=None) -> str:
    """The file's sha256 (hex); None when ``stop`` (a threading.Event) is set first."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 23), b""):
            if stop is not None and stop.is_set():
                return None
            h.update(chunk)
    return h.hexdigest()


class InputHashes:
    """The sha256 of a run's input files for its manifest, computed on a thread from the
    run's start (hashlib and file reads release the GIL), so the run does not hash them
    after its results are written (issue 14, w15: ~0.1 s of CPU at the end of a 2M-claim
    run, ~60 MB of Parquet). ``stop()`` lets a failed run end without waiting for it."""

    def __init__(self, paths):
        import threading
        self.paths, self.stopped = [Path(p) for p in paths], threading.Event()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-hash")
        self.pending = pool.submit(lambda: [sha256_file(p, self.stopped) for p in self.paths])
        pool.shutdown(wait=False)  # its one task still runs; the thread ends after it

    def get(self) -> dict:
        """{path: sha256} of every input file (waits for the thread)."""
        return dict(zip(self.paths, self.pending.result()))

    def stop(self) -> None:
        self.stopped.set()


class ParquetOut:
    """A Parquet file written in row groups of exactly ``ROW_GROUP`` rows (the last one
    shorter), however the tables arrive, so the same rows give the same bytes whatever the
    batching. Each row group is written from ONE contiguous table (its chunks combined):
    pyarrow ends a data page at every chunk boundary, so writing the pieces as they arrived
    would put page boundaries — and so the bytes — where the batches happened to end.
    Written to ``path`` (a staging name) and closed by ``close()``.

    Row groups are encoded and written on one writer thread (pyarrow releases the GIL while
    it compresses), in the order they were formed, so the caller settles the next part, or
    sums the control totals, meanwhile; at most ``WRITE_AHEAD`` row groups wait for it, which
    bounds the memory they hold (``ahead``). ``close()`` waits for the thread and raises what it raised.

    With ``digest`` the file's new bytes are hashed after each row group on a thread of its
    own (``yibao-digest``), one row group behind the writer, never on the writer's: at the
    end of a run the writer is the one thread left working (the other core idle), and the
    hash of what it wrote (sha256 and the read back, ~0.03 s of a 1M-claim provider run's
    0.22 s of writer CPU, issue 14, p20) was on that tail; now only the last row group's
    is."""

    def __init__(self, path: Path, schema: pa.Schema, ahead: int = None, digest: bool = False):
        """``ahead``: most row groups waiting for the writer thread (default WRITE_AHEAD;
        0 for no bound, when the rows are in memory anyway). ``digest``: the thread also
        hashes the file as it grows (``FileDigest``), so ``sha256`` is known at ``close()``
        without reading the file again."""
        self.path, self.schema = Path(path), schema
        self.ahead = WRITE_AHEAD if ahead is None else ahead
        self.writer = pq.ParquetWriter(str(path), schema, **write_options(schema))
        self.digest = FileDigest(self.path) if digest else None
        self.sha256 = None  # with ``digest``: the file's, from close() on
        self.pending: list = []
        self.count = 0
        self.rows = 0
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-write")
        self.queued: deque = deque()  # futures of the row groups handed to the thread
        self.hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yibao-digest") \
            if digest else None
        self.hashed: deque = deque()  # futures of the digest's updates not yet seen done

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if table.schema != self.schema:  # (a run's pieces come cast already: 0.2 ms each)
            table = table.cast(self.schema)
        self.pending.append(table)
        self.count += table.num_rows
        self.rows += table.num_rows
        while self.count >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n: int) -> None:
        buffered = pa.concat_tables(self.pending)
        group = buffered.slice(0, n).combine_chunks()
        while self.queued and (self.queued[0].done() or
                               (self.ahead and len(self.queued) >= self.ahead)):
            self.queued.popleft().result()  # a failed write is raised here, not only at close
        self.queued.append(self.thread.submit(timeline.timed("write row group", self._write),
                                              group))
        rest = buffered.slice(n)
        self.pending, self.count = ([rest] if rest.num_rows else []), rest.num_rows

    def _write(self, group: pa.Table) -> None:
        """On the writer thread: one row group, then the file's new bytes handed to the
        digest's thread (hashed there in order: ``FileDigest.update`` reads what the file
        holds by then, a prefix of the file however far the writer has gone on)."""
        self.writer.write_table(group, row_group_size=ROW_GROUP)
        if self.digest is not None:
            while self.hashed and self.hashed[0].done():
                self.hashed.popleft().result()  # a failed hash is raised here, not only at close
            self.hashed.append(self.hashing.submit(timeline.timed("digest", self.digest.update)))

    def abort(self) -> None:
        """Give up the file (the caller failed): drop what is not yet queued, wait for the
        thread without raising what it raised, close the writer. The half-written file is
        left for the caller to remove."""
        self.pending, self.count = [], 0
        try:
            while self.queued:
                self.queued.popleft().exception()
        finally:
            self.thread.shutdown(wait=True)
            self._stop_hashing()
            self.writer.close()

    def close(self) -> None:
        """Write what is left, wait for the writer thread and close the file."""
        try:
            if self.count:
                self._flush(self.count)
            while self.queued:
                self.queued.popleft().result()
            while self.hashed:
                self.hashed.popleft().result()
        finally:
            self.thread.shutdown(wait=True)
            self._stop_hashing()
            self.writer.close()
        if self.digest is not None:
            self.sha256 = self.digest.finish()

    def _stop_hashing(self) -> None:
        """Wait for the digest's thread (its failures were raised by ``close`` or do not
        matter to ``abort``) and end it."""
        if self.hashing is not None:
            self.hashing.shutdown(wait=True)
            self.hashed.clear()


DIGEST_READ = 1 << 20  # bytes FileDigest reads at a time (into the same buffer)


class FileDigest:
    """The sha256 of a file being written, hashed as it grows: ``update()`` reads the bytes
    appended since the last call (from the page cache, just written), ``finish()`` the rest
    and gives the hex digest with the file's (size, mtime) at that moment. Valid for a file
    only ever appended to, as a Parquet writer does (pages, then the footer; nothing written
    is rewritten). Issue 14, w16: a 2M-claim run's claims.parquet (62 MB) was read again
    and hashed after the writer ended, ~0.05 s of CPU with the other core idle; hashed on
    the writer thread it overlaps the settlement."""

    def __init__(self, path: Path):
        self.path, self.hash, self.done = Path(path), hashlib.sha256(), 0
        self.buffer = memoryview(bytearray(DIGEST_READ))

    def update(self) -> None:
        """Hash the bytes appended since the last call, read into one buffer kept for every
        call: a fresh ``read`` of 8 MiB was a fresh allocation each time, its pages faulted in
        anew (a row group's ~3.4 MB of a 1M-claim provider run: ~850 faults a call)."""
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.done)
            start = self.done
            while True:
                got = f.readinto(self.buffer)
                if not got:
                    break
                self.hash.update(self.buffer[:got])
                self.done += got
            start_writeback(f.fileno(), start, self.done - start)

    def finish(self) -> tuple:
        """(hex sha256, its identity: (inode, size, mtime in ns)) of the file as it is now,
        complete."""
        self.update()
        return self.hash.hexdigest(), file_identity(self.path)


SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writing the range's dirty pages, do not wait


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a just-written range of a file to disk without waiting for it (Linux
    ``sync_file_range``), so the fsync before the run is published has little left to write
    (issue 14, w19: claims.parquet of 2M claims, 62 MB: that fsync took 0.02-0.04 s after
    the last row group, 0-0.01 s with each row group's bytes sent on as written). Nothing
    where the call does not exist: the fsync then writes it all, as before."""
    call = _sync_file_range()
    if call is not None and length > 0:
        call(fd, offset, length, SYNC_FILE_RANGE_WRITE)  # an error only leaves it to fsync


def _sync_file_range():
    """libc's ``sync_file_range`` with its argument types, or None (not Linux)."""
    global _SYNC_FILE_RANGE
    if _SYNC_FILE_RANGE is False:
        _SYNC_FILE_RANGE = None
        if sys.platform.startswith("linux"):
            try:  # a Python without ctypes, or a libc that cannot be opened: fsync does it all
                import ctypes
                call = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
            except (ImportError, OSError):
                call = None
            if call is not None:
                call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64,
                                 ctypes.c_uint]
                _SYNC_FILE_RANGE = call
    return _SYNC_FILE_RANGE


_SYNC_FILE_RANGE = False  # not looked up yet


def file_identity(path: Path) -> tuple:
    """(inode, size, mtime in ns): a file replaced or rewritten since has another."""
    stat = Path(path).stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class OutputBusyError(YibaoError, RuntimeError):
    """Another run holds the output folder (exit 2); the message names it."""


class OutputFolder:
    """The output folder of a run: one run at a time, results published all at once.

    Layout (docs/scale.md, "Reliability")::

        OUT/.yibao.lock              the lock (flock), with the holder's pid, host, start time
        OUT/.yibao-run/              the running run's files: outputs as written, spill/
        OUT/runs/<run id>/           complete result sets, each moved here in one rename
        OUT/current -> runs/<id>     the published set: swapped by one atomic rename
        OUT/claims.parquet -> current/claims.parquet   (and every other output name)

    A reader opening ``OUT/claims.parquet`` (or anything through ``OUT/current``) sees the old
    complete set or the new one, never a mix or a half: the outputs are written and fsynced
    under ``.yibao-run/``, moved to ``runs/<id>/`` in one rename, and published by replacing
    the ``current`` link. The old set is deleted only after the switch. The lock is an
    ``fcntl.flock`` held for the whole run: the kernel drops it when the process ends, however
    it ends, so a killed run's lock never blocks the next one; a second run on the same folder
    is refused (``OutputBusyError``) naming the holder. Leftovers of a killed run (a staging
    folder, a run folder never switched to) are removed by the next run."""

    LOCK = ".yibao.lock"
    RUNS = "runs"
    CURRENT = "current"

    def __init__(self, out_dir, overwrite: bool = False):
        self.root = Path(out_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_id = _run_id()
        self._lock = _take_lock(self.root / self.LOCK, self.run_id)
        try:
            self._check_existing(overwrite)
            self.staging = self.root / STAGING
            shutil.rmtree(self.staging, ignore_errors=True)  # a killed run's leftovers
            for name in OUTPUTS + (self.CURRENT,):
                _unlink(self.root / (name + ".tmp"))
            self.staging.mkdir()
        except BaseException:
            self.release()
            raise
        self.spill = self.staging / "spill"
        self.digests: dict = {}  # staged output -> FileDigest.finish() of it, when known
        publish_checkpoint("locked")

    def _check_existing(self, overwrite: bool) -> None:
        existing = [n for n in OUTPUTS if (self.root / n).exists()]
        if not existing and (self.root / self.CURRENT).exists():
            existing = [self.CURRENT]
        if existing and not overwrite:
            raise FileExistsError(f"{self.root} already holds results ({', '.join(existing)}); "
                                  "pass --overwrite to replace them")

    def stage(self, name: str) -> Path:
        return self.staging / name

    def write_table(self, name: str, table: pa.Table) -> None:
        """Stage ``table`` as the Parquet output ``name`` (``ParquetOut``'s fixed layout)."""
        writer = ParquetOut(self.stage(name), table.schema)
        writer.write(table)
        writer.close()

    def write_json(self, name: str, data: dict) -> None:
        self.stage(name).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n",
                                    encoding="utf-8")

    def publish(self) -> None:
        """Make the staged outputs the folder's results in one switch (class docstring)."""
        try:
            shutil.rmtree(self.spill, ignore_errors=True)
            for name in OUTPUTS:
                if self.stage(name).exists():
                    _fsync(self.stage(name))
            _fsync(self.staging)
            publish_checkpoint("staged")
            self._adopt_loose_results()
            runs = self.root / self.RUNS
            runs.mkdir(exist_ok=True)
            os.rename(self.staging, runs / self.run_id)
            _fsync(runs)
            publish_checkpoint("moved")
            self._link_names()
            publish_checkpoint("linked")
            _replace_link(self.root / self.CURRENT, f"{self.RUNS}/{self.run_id}")
            _fsync(self.root)
            publish_checkpoint("switched")
            self._remove_old_runs()
            publish_checkpoint("cleaned")
        finally:
            self.release()

    def _adopt_loose_results(self) -> None:
        """Results of a yibao before run folders (plain files, no ``current``): hard-link them
        into a run folder of their own and point ``current`` at it, then every name can become
        a link without the folder ever showing less than it held."""
        loose = [n for n in OUTPUTS if (self.root / n).is_file()
                 and not (self.root / n).is_symlink()]
        if not loose or (self.root / self.CURRENT).is_symlink():
            return
        folder = self.root / self.RUNS / "earlier"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in loose:
            os.link(self.root / name, folder / name)
        _fsync(folder)
        _replace_link(self.root / self.CURRENT, f"{self.RUNS}/earlier")

    def _link_names(self) -> None:
        """Every output name a link into ``current``: the names absent from the current set
        dangle (absent to every reader) until the switch makes them appear together."""
        for name in OUTPUTS:
            path = self.root / name
            target = f"{self.CURRENT}/{name}"
            if not (path.is_symlink() and os.readlink(path) == target):
                _replace_link(path, target)
        _fsync(self.root)

    def _remove_old_runs(self) -> None:
        for old in (self.root / self.RUNS).iterdir():
            if old.name != self.run_id:
                shutil.rmtree(old, ignore_errors=True)
        for name in OUTPUTS:  # names the new set lacks: drop their dangling links
            path = self.root / name
            if path.is_symlink() and not path.exists():
                path.unlink()

    def discard(self) -> None:
        """Drop the run's staged files (the published set is untouched) and the lock."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None


PUBLISH_STEPS = ("locked", "staged", "moved", "linked", "switched", "cleaned")
PUBLISH_HOOK = "YIBAO_TEST_PUBLISH_HOOK"  # "kill:<step>" or "pause:<step>", for the tests


def publish_checkpoint(step: str) -> None:
    """A point of the publish sequence (``PUBLISH_STEPS``) where the tests can kill the run
    (SIGKILL, as a power cut would) or pause it (to hold the lock while a second run tries)."""
    hook = os.environ.get(PUBLISH_HOOK)
    if not hook or hook.partition(":")[2] != step:
        return
    if hook.startswith("kill:"):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    while hook.startswith("pause:"):
        import time
        time.sleep(1)


def _run_id() -> str:
    import datetime
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{os.getpid()}"


def _take_lock(path: Path, run_id: str):
    """Open and flock ``path``, write the holder into it; ``OutputBusyError`` naming the holder
    if another process holds it."""
    import fcntl
    import socket
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise OutputBusyError(f"{path.parent} is in use by another yibao run ({_holder(holder)});"
                              " wait for it to finish or choose another --out") from None
    import datetime
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": started, "run": run_id}) + "\n")
    handle.flush()
    return handle


def _holder(text: str) -> str:
    try:
        h = json.loads(text)
        return f"pid {h['pid']} on {h['host']}, started {h['started']}"
    except (ValueError, KeyError, TypeError):
        return "holder not yet recorded"


def _replace_link(path: Path, target: str) -> None:
    """Point the symlink ``path`` at ``target`` in one rename (readers see old or new)."""
    tmp = path.with_name(path.name + ".tmp")
    _unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's (its entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plugin_versions(registry) -> list:
    """[{name, distribution, version}] of every plugin the run's registry was built from
    (``Registry.distributions``, filled by the plugin manager), and of any plugin stamped on a
    registered item that the registry does not list (a registry assembled by hand)."""
    from . import __version__
    loaded = dict(registry.distributions)
    for group in (registry.functions.values(), registry.keys.values(), registry.validators,
                  registry.stages):
        for item in group:
            name = getattr(item, "plugin", "yibao")
            loaded.setdefault(name, ("yibao", __version__) if name in ("yibao", "builtin")
                              else ("unknown", "unknown"))
    return [{"name": n, "distribution": d, "version": v}
            for n, (d, v) in sorted(loaded.items())]


def policy_files(path) -> dict:
    """{relative path: sha256} of the policy file, or of every file in a policy folder."""
    if path is None:
        return {}
    path = Path(path)
    if path.is_file():
        return {path.name: sha256_file(path)}
    return {p.relative_to(path).as_posix(): sha256_file(p)
            for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def _output_sha256(out: OutputFolder, name: str) -> str:
    """The staged output's sha256: as hashed while it was written (``FileDigest``) if the
    file is still that one (``file_identity``), else read again."""
    path = out.stage(name)
    digest = out.digests.get(name)
    if digest is not None and file_identity(path) == digest[1]:
        return digest[0]
    return sha256_file(path)


def run_manifest(plan, summary, sources, out, registry, policy_path, input_sha256=None) -> dict:
    """manifest.json of a settle run (core/runner.py): versions, policy files, plugins, input
    and output hashes, the mode and the row order. ``input_sha256``: {path: sha256} of the
    inputs when already computed (``InputHashes``)."""
    known = input_sha256 or {}
    outputs = {name: {"sha256": _output_sha256(out, name),
                      "rows": pq.ParquetFile(str(out.stage(name))).metadata.num_rows}
               for name in TABLE_OUTPUTS if out.stage(name).exists()}
    from . import __version__
    from .describe import format_date
    from .partition import NBUCKETS
    from .policy import Policy
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
        "inputs": [{"path": str(s.path), "sha256": known.get(s.path) or sha256_file(s.path),
                    "rows": s.rows,
                    "bytes": s.path.stat().st_size} for s in sources],
        "outputs": outputs, "run": out.run_id, "engine": summary.engine, "mode": summary.mode,
        "partitions": summary.partitions, "buckets": NBUCKETS,
        "row_order": "claims: (bucket of partition key, discharge_date, claim_id); "
                     "rejects: input row",
    }

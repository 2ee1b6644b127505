"""Reading a run's claims while the command starts (issue 14, w16): `yibao settle` spends its
first ~0.4 s of CPU importing, building the plugin registry and compiling the policy, all on
one core and holding the GIL, while the other core idles; Arrow decodes Parquet without the
GIL. So the command starts this thread first: it opens the input files and, if the run will
settle them in memory (as ``run_settle`` decides: the same estimate against the same memory
limit), decodes the columns every run reads (``AHEAD_COLUMNS``: the ids, the dates, the money
and the identity columns, most of a file's decoded bytes) and those the policy's text names,
file by file. The run then reads only the columns the compiled policy adds, and the files
the thread had not begun (``sources.read_beside``), and gets the same tables as reading
everything then (tests/batch/test_read_ahead.py).

Nothing here decides a result: when the thread read nothing (a run in partitions, an Arrow
IPC file, a file it could not read, other files than the run's) the run reads the files
itself, and reports what is wrong with them as it always did. Only the standard library,
``core/claim_files.py`` and ``core/timeline.py`` are imported by the command's thread before
it starts; pyarrow is imported on the thread.
"""
from __future__ import annotations

import threading
from typing import Optional

from . import timeline
from .claim_files import IPC_SUFFIXES, MEMORY_FACTOR, default_memory_limit, input_files

# columns every run reads (arrow_io.REQUIRED, settlement.IDENTITY, arrow_io.MONEY_COLUMNS:
# sources.read_columns always includes them; tests/batch/test_read_ahead.py checks it)
AHEAD_COLUMNS = ("claim_id", "person_id", "discharge_date", "total", "in_scope", "self_first",
                 "hospital_id")

# columns read as dictionaries, as the run's own read does (arrow_io.CODED_COLUMNS, which is
# not imported here; tests/provider/test_coded_read.py checks they are the same), so that the
# tables read ahead and those the run reads concatenate
CODED_COLUMNS = ("principal_dx", "hospital_id")


def coded_file(path):
    """The Parquet file at ``path`` with its ``CODED_COLUMNS`` read as dictionaries (int32
    codes into their distinct values; ``arrow_io.normal_table`` keeps them): the run's own
    read and the read-ahead both open files this way. Only top-level text columns are asked
    for: pyarrow refuses a ``read_dictionary`` name the file lacks (a claims file without
    diagnoses, which a policy without grouping settles) or holds as a list (KeyError), so
    such a file is read as it is and the checks name what is wrong with it."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    plain = pq.ParquetFile(str(path))
    schema = plain.schema_arrow
    coded = [name for name in CODED_COLUMNS if name in schema.names and
             _text(schema.field(name).type, pa)]
    if not coded:
        return plain
    metadata = plain.metadata
    plain.close()  # one open file per file (a folder of daily extracts: see ReadAhead)
    return pq.ParquetFile(str(path), metadata=metadata, read_dictionary=coded)


def _text(t, pa) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


class ReadAhead:
    """The ``AHEAD_COLUMNS`` of the Parquet files of ``inputs``, and the columns among
    ``words`` (a guess, e.g. the words of the policy's text: columns the run turns out not to
    read are dropped), read on a thread from construction on when an in-memory run of them
    fits ``memory_limit`` (None: the run's default, half the machine's memory). The files are
    decoded one after the other on that one thread, without Arrow's own threads: on two
    cores start-up keeps one and the decoding takes the other, instead of three threads
    sharing two cores and start-up (the critical path) slowed down. ``tables(paths)`` ends
    the reading ahead: it waits for the column being decoded, and a file not begun by then
    is left to the run (which reads such files two at a time), as are the columns of the
    file being read that the thread had not begun (``taken``). ``stop(paths)`` ends it
    without waiting, so the run reads those while the thread finishes its column."""

    def __init__(self, inputs, memory_limit: Optional[int] = None, words=()):
        self.limit = memory_limit or default_memory_limit()
        self.wanted = set(AHEAD_COLUMNS) | set(words)
        self._paths: Optional[list] = None  # the files, once the thread knows it reads them
        self._read: dict = {}  # path -> table of the columns read, file by file
        self._begun: set = set()  # the files the thread has begun (read, or being read)
        self._taken: dict = {}  # path -> the columns read or being read (None: not yet known)
        self._enough = threading.Event()  # the run wants the tables: begin no other file
        self._lock = threading.Lock()  # a file is begun, or the run stops that: not both
        self._thread = threading.Thread(target=self._run, args=(inputs,),
                                        name="yibao-read-ahead", daemon=True)
        self._thread.start()

    def _run(self, inputs) -> None:
        with timeline.stage("read ahead"):
            try:
                self._read_files(inputs)
            except Exception:  # noqa: BLE001 (the run reads the files and says what is wrong)
                self._paths, self._read = None, {}

    def _read_files(self, inputs) -> None:
        paths = input_files(inputs)
        if any(p.suffix in IPC_SUFFIXES for p in paths):
            return
        import pyarrow.parquet as pq
        # One file open at a time: the run's own readers and the input hashes open them too,
        # and a folder of ~1,000 daily extracts held open here ran a valid run out of file
        # descriptors (review of issue 14's read-ahead)
        size = 0
        for p in paths:
            meta = pq.read_metadata(str(p))
            size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if MEMORY_FACTOR * size > self.limit:  # the run goes in partitions
            return
        self._paths = paths
        for path in paths:
            with self._lock:
                if self._enough.is_set():
                    return
                self._begun.add(path)
                self._taken[path] = None
            with coded_file(path) as f:
                self._read[path] = self._read_columns(path, f, self.reads(f.schema_arrow.names))

    def _read_columns(self, path, f, columns: list):
        """The file's ``columns`` decoded one at a time, stopping after the one being decoded
        when the run wants the tables (it reads the others itself, beside this thread and on
        Arrow's threads: ``taken``): on two cores the run's thread only waited here while the
        other core idled (issue 14, p20: 0.17 s at a 1M-claim provider run). The same table
        as reading them together (tests/batch/test_read_ahead.py), and less CPU: 0.13 s
        against 0.16-0.18 s for the 11 columns of 1M claims (each column's pages decoded
        while in cache). At least one column, so the table has the file's rows."""
        import pyarrow as pa
        parts = []
        for name in columns:
            with self._lock:
                if self._enough.is_set() and parts:
                    break
                self._taken[path] = [*(self._taken[path] or ()), name]
            parts.append(f.read(columns=[name], use_threads=False))
        if not parts:  # the file has none of the columns
            return f.read(columns=[], use_threads=False)
        return pa.Table.from_arrays([part.column(0) for part in parts],
                                    schema=pa.schema([part.schema.field(0) for part in parts],
                                                     metadata=parts[0].schema.metadata))

    def taken(self, path) -> Optional[list]:
        """The columns of the file at ``path`` this hands over (``tables``) once stopped:
        those it read and the one it is reading (final after ``stop``); None when not yet
        known (the file just begun, its columns not yet listed: then the run waits for
        the table before it reads the others)."""
        with self._lock:
            taken = self._taken.get(path)
            return None if taken is None else list(taken)

    def reads(self, names) -> list:
        """The columns among a file's ``names`` this reads ahead, unless stopped first."""
        return [name for name in names if name in self.wanted]

    def stop(self, paths) -> set:
        """Begin no other file, and say which of ``paths`` (the run's files) the thread has
        begun, without waiting for the one being decoded: the run reads the others at once,
        beside it (``sources.read_beside``), then takes the begun ones from ``tables``. The
        empty set when the thread reads none of these files (other files, partitions)."""
        with self._lock:
            self._enough.set()
            if self._paths is None or list(self._paths) != list(paths):
                return set()
            return set(self._begun)

    def tables(self, paths) -> Optional[list]:
        """Per file of ``paths`` (the run's files, in its order) the table read ahead, or
        None for a file not read ahead; None when the thread read none of these files
        (module docstring). Handed over once (the thread's references are dropped, so the
        run alone holds the tables)."""
        self._enough.set()
        self._thread.join()
        known, read = self._paths, self._read
        self._paths, self._read = None, {}
        if known is None or list(known) != list(paths):
            return None
        return [read.get(p) for p in paths]

    def close(self) -> None:
        """Stop reading ahead, wait for the thread and drop what it read (the command ends,
        or settles without it)."""
        self._enough.set()
        self._thread.join()
        self._paths, self._read = None, {}

"""A run's input: claim files (Parquet or Arrow IPC), opened and checked before any claim is
settled, and the memory an in-memory settle of them would take (core/runner.py picks the mode
from it). Row numbers over a run are fixed here: files in sorted path order, rows in file
order.

A run reads only the claim columns its settlement reads (``read_columns``): a claims file
often carries columns no layer, key, provider part or plugin check reads (the diagnosis and
procedure lists of a policy without a DRG grouper are most of a file's bytes). The files are
checked whole when opened (every column's name and type), so what is left out is never
silently wrong, only not decoded."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Optional

import pyarrow as pa
import pyarrow.parquet as pq

from .arrow_io import (MONEY_COLUMNS, REQUIRED, ClaimsError, check_unique_names,
                       column_difference, normal_schema, normal_table, prepare)
from .claim_files import (IPC_SUFFIXES, MEMORY_FACTOR, InputError,  # noqa: F401 (re-exported)
                          default_memory_limit, input_files)
from .partition import NBUCKETS
from .read_ahead import coded_file
from .plan import Plan
from .policy import Policy
from .settlement import IDENTITY
from . import timeline

GLOBAL_BYTES_PER_ROW = 24  # pass 1 keeps 8 bytes of claim-id hash per row (+ a sorted copy)
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

    def present(self, columns: Optional[list]) -> Optional[list]:
        """The file's columns among ``columns``, in the file's order (None: all of them)."""
        if columns is None:
            return None
        wanted = set(columns)
        return [name for name in self.schema.names if name in wanted]

    def batches(self, rows: int, columns: Optional[list] = None,
                coded=()) -> Iterator[pa.Table]:
        """The file in tables of ``rows`` rows, in the one column layout (arrow_io); only
        ``columns`` (those the file has, in its order; None: all); the columns of ``coded``
        that are dictionary-encoded text stay so (``normal_table``)."""
        columns = self.present(columns)
        try:
            if self.ipc:
                table = self._read_ipc()
                table = table if columns is None else table.select(columns)
                for batch in table.to_batches(rows):
                    yield normal_table(pa.Table.from_batches([batch]), coded, codes=False)
                return
            # a buffered stream and no pre-buffering: pages are read as the batches need them,
            # not whole column chunks (a 1M-row row group would be ~135 MB decoded at once)
            reader = pq.ParquetFile(str(self.path), buffer_size=1 << 20, pre_buffer=False)
            for batch in reader.iter_batches(batch_size=rows, columns=columns):
                yield normal_table(pa.Table.from_batches([batch]), coded, codes=False)
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc

    def read(self, columns: Optional[list] = None) -> pa.Table:
        """The whole file, in the one column layout (arrow_io); only ``columns`` (those the
        file has, in its order; None: all)."""
        columns = self.present(columns)
        try:
            if self.ipc:
                table = self._read_ipc()
                table = table if columns is None else table.select(columns)
            else:
                with timeline.stage(f"read {self.path.name}"):
                    table = coded_file(self.path).read(columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc
        return normal_table(table)

    def read_rest(self, early: pa.Table, columns: Optional[list] = None,
                  late=None) -> pa.Table:
        """``read(columns)``, the columns of ``early`` (this Parquet file's, read earlier:
        core/read_ahead.py) taken from it and only the others read now: the same table.
        ``late``: (names, a function giving ``read_late(names)``) begun earlier, beside the
        read-ahead (``read_beside``); used when those are the other columns."""
        names = self.present(columns) or self.schema.names
        rest = [name for name in names if name not in early.column_names]
        late = late[1]() if late is not None and late[0] == rest else self.read_late(rest)
        parts = [early if name in early.column_names else late for name in names]
        fields = [part.schema.field(name) for part, name in zip(parts, names)]
        table = pa.Table.from_arrays([part.column(name) for part, name in zip(parts, names)],
                                     schema=pa.schema(fields, metadata=early.schema.metadata))
        return normal_table(table)

    def read_late(self, names: list) -> Optional[pa.Table]:
        """Only the columns ``names`` of this Parquet file as read (None for none): the
        columns ``read_rest`` adds to those read ahead."""
        try:
            return coded_file(self.path).read(columns=names) if names else None
        except (pa.ArrowException, OSError) as exc:
            raise self._error(exc) from exc


READ_THREADS = 2  # files read at once in memory (each read also decodes columns in parallel)


def read_sources(sources, columns: Optional[list] = None) -> list:
    """Every file read whole (``Source.read``), in the run's file order, several at once:
    a file's read waits on the disk and decompresses on Arrow's threads, and the Python
    around it (opening, normalising the columns) overlaps the other file's."""
    if len(sources) == 1:
        return [sources[0].read(columns)]
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="yibao-read") as pool:
        return list(pool.map(lambda source: source.read(columns), sources))


def read_rest(sources, early: list, columns: Optional[list] = None) -> list:
    """``read_sources``, each file's ``early`` columns (read ahead; None: the file was not)
    not read again (``Source.read_rest``)."""
    if len(sources) == 1:
        return [_read_after(sources[0], early[0], columns)]
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="yibao-read") as pool:
        return list(pool.map(lambda s, ahead: _read_after(s, ahead, columns), sources, early))


def _read_after(source, ahead, columns: Optional[list], late=None) -> pa.Table:
    """``source``'s table (only ``columns``), its ``ahead`` columns (read ahead; None: not
    read ahead) not read again (``late``: as ``Source.read_rest`` takes it)."""
    return source.read(columns) if ahead is None else source.read_rest(ahead, columns, late)


def read_beside(sources, columns: Optional[list], begun: set, early_tables,
                taken=None) -> list:
    """``read_rest`` for a read-ahead that may still be decoding a file: the files it has not
    begun (paths not in ``begun``) are read at once, beside it, instead of after it
    (issue 14, w19: at 2M claims in two files the run waited ~0.1 s for the read-ahead's
    first file with a core idle before it began the second); then ``early_tables()`` waits
    for the read-ahead and gives each file's table read ahead (None: not read ahead; None
    for all: it read none) and the begun files' other columns are added. With ``taken``
    (``ReadAhead.taken``: the columns of a file the stopped read-ahead hands over, None if
    not known yet) those other columns are read at once too, beside it, not after it (issue
    14, p20: a 1M-claim provider run waited 18 ms for its diagnoses and procedures after
    the read-ahead, and 0.17 s for the read-ahead's own columns, a core idle meanwhile).
    The same tables as ``read_sources``, in the run's file order; the first file's error
    is the one raised."""
    with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="yibao-read") as pool:
        now = {i: pool.submit(s.read, columns) for i, s in enumerate(sources)
               if s.path not in begun}
        late = {}
        for i, s in enumerate(sources):
            ahead = None if taken is None or i in now or s.ipc else taken(s.path)
            if ahead is not None:  # what the read-ahead hands over is known: read the rest
                names = [n for n in s.present(columns) or s.schema.names if n not in ahead]
                late[i] = (names, pool.submit(s.read_late, names).result)
        early = early_tables() or [None] * len(sources)
        # a later read waits only for a ``late`` one, submitted (so begun) before it
        later = {i: pool.submit(_read_after, s, early[i], columns, late.get(i))
                 for i, s in enumerate(sources) if i not in now}
        return [(now[i] if i in now else later[i]).result() for i in range(len(sources))]


def read_columns(plan, registry) -> Optional[list]:
    """The claim columns a run's settlement reads, sorted (None: every column, when a plugin
    check or stage does not declare the columns it reads): the ids and dates every run
    reads, the results' identity columns, the money columns the row checks test when
    present, and per version its columns, its keys' columns and its provider part's.
    Supervision reads its own columns from the files (core/supervision/run.py)."""
    declared = [p.claim_columns for p in (*registry.validators, *registry.stages)]
    if None in declared:
        return None
    out = {*REQUIRED, *IDENTITY, *MONEY_COLUMNS, *(c for cs in declared for c in cs)}
    for version in Policy.of(plan).versions:
        out.update(c.name for c in version.columns)
        for key in version.keys():
            out.update((key.column, *key.by))
        if version.provider is not None or version.groupers:
            from .provider import needed_columns  # only a plan with a provider part
            out.update(needed_columns(version))
    return sorted(out)


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
            raise ClaimsError(f"{s.path} differs from {first.path}: "
                              f"{_difference(s.schema, first.schema)}; every claims file of a "
                              "run needs the same columns and types")
    return sources


def _difference(schema: pa.Schema, first: pa.Schema) -> str:
    """What a file's columns have that the first file's lack, and the other way round, in
    words (a 30-column listing of both hid the one column that differed)."""
    mine, theirs = normal_schema(schema), normal_schema(first)
    said = []
    missing, extra = column_difference(mine.names, theirs.names)
    if missing:
        said.append(f"no column {', '.join(missing)}")
    if extra:
        said.append(f"column(s) {', '.join(extra)} the first file does not have")
    for f in mine:
        if f.name in theirs.names and theirs.field(f.name).type != f.type:
            said.append(f"column {f.name} is {schema.field(f.name).type} there but "
                        f"{first.field(f.name).type} in the first file")
    if not said:
        said.append("the columns are in another order")
    return "; ".join(said)


def estimated_memory(sources) -> int:
    return MEMORY_FACTOR * sum(s.bytes for s in sources)


def partition_count(sources, limit: int) -> int:
    """Partitions so that one partition's settle, plus pass 1's per-row hashes, fits in
    ``limit`` with a 1.5x margin."""
    rows = sum(s.rows for s in sources)
    room = max(limit - GLOBAL_BYTES_PER_ROW * rows, limit // 8)
    return min(NBUCKETS, max(2, math.ceil(1.5 * estimated_memory(sources) / room)))

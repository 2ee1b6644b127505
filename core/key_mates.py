"""Reading only what explaining one claim needs (``yibao explain``, issue 13).

A claim's settlement depends on its key-mates: the rows sharing an accumulator key value
with it (person, family …), transitively, and the rows sharing their claim ids (a duplicate
id rejects every copy). Results never depend on row order, so settling those rows settles
the claim exactly as settling the whole batch does; ``key_mates`` picks them from a table,
``read_key_mates`` from a Parquet file or folder while decoding the rest of the file's
columns only where a key-mate is, and ``ClaimIds`` reads ahead in a background thread while
the policy compiles (Arrow decodes without holding the GIL): the ids, the claim's key-mates
by person and the columns the policy probably reads at their rows.
"""
from __future__ import annotations

import threading
from pathlib import Path

from .lazy import lazy_module

# imported where first used: the read-ahead thread starts once pyarrow is imported, and
# reads while the command imports the rest (pyarrow.compute, the core) and compiles; a
# command reading a key index (explain --run) reads no Arrow at all (core/key_index.py)
pa, pc = lazy_module("pyarrow"), lazy_module("pyarrow.compute")


def key_mates(plans, table: pa.Table, claim_ids) -> pa.Table:
    """The rows of ``table`` that settling ``claim_ids`` depends on: every row sharing an
    accumulator key value (person, family …, under any of ``plans``) with them, transitively,
    and every row sharing a claim id with those (a duplicate id rejects every copy). Results
    never depend on row order, so settling these rows settles the claims exactly as settling
    the whole table does. Empty when no claim id is in the table."""
    return table.filter(key_mate_mask(plans, table, claim_ids))


def accumulator_keys(plans, names) -> list:
    """The key columns (person first, then the plans' accumulator keys) among ``names``."""
    return [c for c in dict.fromkeys(["person_id"] + [k.column for p in plans
                                                      for k in p.keys()])
            if c in names]


def key_mate_mask(plans, table: pa.Table, claim_ids) -> pa.ChunkedArray:
    """True at the rows of ``table`` that ``key_mates`` keeps. ``table`` needs only the
    ``claim_id`` column and the key columns."""
    return closure_mask(table, accumulator_keys(plans, table.column_names), claim_ids)


def closure_mask(table: pa.Table, keys: list, claim_ids) -> pa.ChunkedArray:
    """True at the rows of ``claim_ids``, at every row sharing a value of one of the ``keys``
    columns with them, transitively, and at every row sharing a claim id with those. Each
    round of the closure is one ``is_in`` pass per key column against the few keys found so
    far (a small hash set: far cheaper than hashing or dictionary-encoding every row's
    key)."""
    ids = table.column("claim_id").cast(pa.string())
    asked = pc.is_in(ids, value_set=pa.array(sorted(claim_ids), pa.string()))
    mine, found = asked, None
    while True:  # grow to the key-mates' closure: a few rounds at most
        now = [pc.unique(table.column(c).filter(mine)).drop_null() for c in keys]
        if found is not None and all(len(a) == len(b) for a, b in zip(now, found)):
            break  # no new key value (the sets only grow): mine is closed
        found, grown = now, asked
        for c, values in zip(keys, found):
            grown = pc.or_(grown, pc.is_in(table.column(c), value_set=values).fill_null(False))
        mine = grown
    return pc.is_in(ids, value_set=pc.unique(ids.filter(mine)).drop_null())


BATCH_ROWS = 65_536  # rows of the other columns decoded at a time (a row group may hold
# millions: its key-mates are taken from each batch as it is decoded, so memory stays bounded)


PREFETCHED = ("claim_id", "person_id")  # the columns every explanation reads in full
PERSON = ["person_id"]  # the key the read-ahead closes over: most policies' only key
ALWAYS = ("claim_id", "person_id", "discharge_date", "total")  # read by every explanation
# (arrow_io.REQUIRED: not imported from there, the read-ahead starts before arrow_io is)


class ClaimIds:
    """Reading ahead, in a background thread from construction on, while the command
    compiles the policy (Arrow decodes without holding the GIL): the ``claim_id`` and
    ``person_id`` of every row of the Parquet claims at ``path`` (a file or folder);
    ``tables()`` waits for them: {file: table of those columns}, or None when they could
    not be read (not Parquet, an Arrow IPC file …): ``read_key_mates`` then reads, and
    refuses, exactly as without them.

    Given ``claim_id``, the thread goes on: it closes the claim's key-mates over the person
    alone (``PERSON``) and decodes, at those rows, the columns ``want`` names (``columns``
    to begin with: a guess such as the words of the policy's text; more as they become
    known), one column at a time. Nothing it does decides a result: ``read_key_mates``
    takes its rows only for the same claim under the same keys (``key_mates``), decodes the
    columns it needs that the thread has not begun alongside it, and drops the others.
    ``close()`` (always call it) lets the thread finish its column and start no other."""

    def __init__(self, path, claim_id=None, columns=()):
        self.path, self.claim_id = path, claim_id
        self._tables = self._rows = None
        self._wanted, self._taken, self._decoded = list(columns), set(), []
        self._names, self._busy, self._closed, self._ended = (), True, False, False
        self._state = threading.Condition()
        self._ids_read, self._rows_known = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="yibao-claim-ids",
                                        daemon=True)
        self._thread.start()

    def tables(self):
        self._ids_read.wait()
        return self._tables

    def want(self, columns) -> None:
        """Decode ``columns`` too at the key-mates' rows (those not in the file are skipped)."""
        with self._state:
            self._wanted += [c for c in columns if c not in self._wanted]
            self._state.notify_all()

    def close(self) -> None:
        """Start decoding no other column, and wait for the thread."""
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._thread.join()

    def key_mates(self, claim_id: str, keys: list, columns: list, decode):
        """(rows, decoded): the positions of ``claim_id``'s key-mates in the files read one
        after another, and a table of ``columns`` at them (or of those decoded: a column the
        thread failed to decode is left out), when ``keys`` are ``PERSON``; None when the
        read-ahead cannot serve (another claim or other keys, or it failed before finding
        the rows). A column neither decoded nor begun by the thread is decoded here, by
        ``decode(positions, [column])`` (the caller's files), meanwhile. Closes the
        read-ahead."""
        if claim_id != self.claim_id or list(keys) != PERSON:
            self.close()
            return None
        self.want(columns)
        self._rows_known.wait()
        if self._rows is None:
            self.close()
            return None
        positions, mine = self._rows.to_pylist(), []
        while (column := self._take(columns)) is not None:
            mine.append(decode(positions, [column]))
        self.close()
        tables = [t for t in (*self._decoded, *mine) if t.num_columns]
        return self._rows, (_side_by_side(tables) if tables else None)

    def caught_up(self) -> None:
        """Wait until every column wanted so far is decoded (or the read-ahead ended): for a
        caller that would rather wait than decode them itself (tests)."""
        self._rows_known.wait()
        with self._state:
            self._state.wait_for(lambda: self._ended or not (self._busy or self._todo()))

    def _take(self, among=None):
        """The next wanted column (of ``among``) nobody has begun, now taken; None: none."""
        with self._state:
            todo = [c for c in self._todo() if among is None or c in among]
            if todo:
                self._taken.add(todo[0])
            return todo[0] if todo else None

    def _todo(self) -> list:
        """The wanted columns of the file nobody has begun (under _state)."""
        return [c for c in self._wanted if c in self._names and c not in PREFETCHED
                and c not in self._taken]

    def _run(self) -> None:
        try:
            self._tables = self._read_ids()
        except Exception:  # noqa: BLE001 (read_key_mates reads again and says what is wrong)
            self._tables = None
        finally:
            self._ids_read.set()
        try:
            if self._tables is not None and self.claim_id is not None:
                self._read_ahead()
        except Exception:  # noqa: BLE001 (read_key_mates decodes what it lacks itself: the
            pass           # rows and the columns decoded before the failure stay good)
        finally:
            self._rows_known.set()
            with self._state:
                self._ended = True
                self._state.notify_all()

    def _read_ids(self):
        import pyarrow.parquet as pq
        from .claim_files import IPC_SUFFIXES, input_files
        if Path(self.path).suffix in IPC_SUFFIXES:
            return None
        out = {}
        for f in input_files(self.path):
            file = pq.ParquetFile(str(f), memory_map=True)
            out[f] = file.read(columns=[c for c in PREFETCHED
                                        if c in file.schema_arrow.names])
        return out

    def _read_ahead(self) -> None:
        """The claim's key-mates by person, then the wanted columns at them, one at a time,
        until closed."""
        parts = [_ParquetRows(f, ids) for f, ids in self._tables.items()]
        names = parts[0].file.schema_arrow.names
        if not set(PREFETCHED) <= set(names):
            return
        index = _concat([part.read(list(PREFETCHED)) for part in parts])
        rows = pc.indices_nonzero(closure_mask(index, PERSON, [self.claim_id]))
        with self._state:
            self._rows, self._names = rows, names
        self._rows_known.set()
        positions = rows.to_pylist()
        while True:
            with self._state:
                self._busy = False
                self._state.notify_all()
                self._state.wait_for(lambda: self._closed or self._todo())
                if self._closed:
                    return
                self._busy = True
            column = self._take()
            if column is not None:
                self._decoded.append(_rows_of_files(parts, positions, [column]))


def _side_by_side(tables: list) -> pa.Table:
    """The columns of ``tables`` (of the same rows) as one table."""
    out = tables[0]
    for t in tables[1:]:
        for name in t.column_names:
            out = out.append_column(t.schema.field(name), t.column(name))
    return out


def read_key_mates(plans, path, claim_id: str, columns=None, ids: ClaimIds = None) -> pa.Table:
    """The rows of the claims at ``path`` (a Parquet file or folder, or an Arrow IPC file)
    that explaining ``claim_id`` needs (``key_mates``), with only ``columns`` (None: all;
    ``explain_columns`` leaves out the diagnosis lists, most of a claim file's bytes), in the
    file's column and row order. Empty when the claim id is not in the file. A file without a
    column the policy reads (or ``claim_id``) is refused naming the file (``ClaimsError``),
    before any row is read; so are files of a folder whose columns differ, as ``settle``
    refuses them.

    Parquet is read in two steps, so the cost follows the file's ids, not its money: first
    the ``claim_id`` and key columns of every row (the closure needs every row's keys: ids
    and persons are spread over all row groups, so statistics skip nothing), then the other
    columns of only the row groups that hold a key-mate, decoded ``BATCH_ROWS`` at a time,
    of which only the key-mates' rows are kept (and a row group is left as soon as its last
    key-mate is read). A folder is read as ``yibao settle`` reads it (every ``*.parquet``
    under it, in path order). ``ids``: the read-ahead of ``path`` (``ClaimIds``): its ids
    are used instead of reading them again, and its rows and columns when they serve
    (``ClaimIds.key_mates``); the caller closes it."""
    if Path(path).suffix in (".arrow", ".ipc", ".feather"):
        import pyarrow.dataset as ds
        data = ds.dataset(str(path), format="ipc")
        _check_columns(plans, data.schema, path)
        from .arrow_io import normal_table
        return key_mates(plans, normal_table(
            data.to_table(columns=_wanted(plans, data.schema, columns))), [claim_id])
    from .sources import Source, input_files, open_sources
    files = input_files(path)
    for f in files:  # a file that is not Parquet: InputError naming it
        _check_columns(plans, Source(f).schema, f)
    sources = open_sources(plans, files)  # as settle: one schema over the files
    wanted = _wanted(plans, sources[0].schema, columns)
    ids = ids if ids is not None and ids.path == path else None
    prefetched = (ids.tables() if ids is not None else None) or {}
    parts = [_ParquetRows(s.path, prefetched.get(s.path)) for s in sources]
    got = _key_mates_of_files(plans, parts, claim_id, wanted, ids)
    return pa.Table.from_arrays([got[c][1] for c in wanted],
                                schema=pa.schema([got[c][0] for c in wanted]))


def _key_mates_of_files(plans, parts: list, claim_id: str, wanted: list, ids) -> dict:
    """column -> (field, values) of ``wanted`` at ``claim_id``'s key-mates in the files
    ``parts``: the ids and keys of every row, then the other columns at the key-mates'
    rows, taken from the read-ahead ``ids`` where it serves."""
    from .arrow_io import normal_table
    index_columns = ["claim_id", *accumulator_keys(plans, wanted)]
    # in the one layout settle reads (timestamps as dates, dictionaries decoded …): the
    # closure compares key values, and the explanation is the settlement's whatever the types
    index = normal_table(_concat([part.read(index_columns) for part in parts]))
    payload = [c for c in wanted if c not in index_columns]

    def decode(rows, columns):
        return _rows_of_files(parts, rows, columns)
    ahead = ids.key_mates(claim_id, index_columns[1:], payload, decode) if ids else None
    rows, decoded = ahead or (pc.indices_nonzero(key_mate_mask(plans, index, [claim_id])),
                              None)
    got = {**_columns(index.take(rows)), **_columns(decoded)}
    got.update(_columns(decode(rows, [c for c in payload if c not in got])))
    return got


def _columns(table) -> dict:
    """column name -> (field, values) of ``table`` (None: none), in the one layout."""
    if table is None:
        return {}
    from .arrow_io import normal_table
    table = normal_table(table)
    return {f.name: (f, table.column(f.name)) for f in table.schema}


def _check_columns(plans, schema: pa.Schema, path) -> None:
    """Refuse a claims file that lacks a column (``claim_id`` or one a version of the policy
    reads) or has one of a wrong type, naming the file: checked on the schema, before any
    row is read."""
    from .arrow_io import ClaimsError, prepare
    try:
        for plan in plans:
            prepare(plan, schema.empty_table())
    except ClaimsError as exc:
        raise ClaimsError(f"{path}: {exc}") from None


def _wanted(plans, schema, columns) -> list:
    """The columns to read, in the file's order: ``columns`` (None: all) plus the ids and
    keys the closure needs."""
    if columns is None:
        return list(schema.names)
    keep = set(columns) | set(accumulator_keys(plans, schema.names)) | {"claim_id"}
    return [c for c in schema.names if c in keep]


def _concat(tables: list) -> pa.Table:
    """The tables of several files end to end. Files whose column types differ (one writer's
    string, another's large_string or dictionary: ``settle`` reads such a folder) are put in
    the one layout first, as ``settle`` puts each file."""
    if len(tables) == 1:
        return tables[0]
    if any(t.schema != tables[0].schema for t in tables[1:]):
        from .arrow_io import normal_table
        tables = [normal_table(t, codes=False) for t in tables]
    return pa.concat_tables(tables, promote_options="default")


class _ParquetRows:
    """One Parquet file read by columns, or by the row groups holding some rows."""

    def __init__(self, path, ids: pa.Table = None):
        import pyarrow.parquet as pq
        self.ids = ids  # columns of the file already read (ClaimIds), or None
        # memory-mapped: the pages are decoded from the page cache without first being
        # copied into read buffers (measured: the first read's system time 0.35 s → 0.03 s
        # for the ids and keys of 2M claims)
        self.file = pq.ParquetFile(str(path), memory_map=True)
        meta = self.file.metadata
        self.starts = [0]  # the first row of each row group, then the file's row count
        for i in range(meta.num_row_groups):
            self.starts.append(self.starts[-1] + meta.row_group(i).num_rows)

    def read(self, columns) -> pa.Table:
        """``columns`` of every row: those already read taken as they are."""
        have = set(self.ids.column_names) if self.ids is not None else set()
        rest = [c for c in columns if c not in have]
        if not rest:
            return self.ids.select(columns)
        read = self.file.read(columns=rest)
        return pa.Table.from_arrays([(self.ids if c in have else read).column(c)
                                     for c in columns], names=list(columns))

    def rows(self, positions, columns) -> pa.Table:
        """The rows at ``positions`` (sorted, within this file) of ``columns``: only the row
        groups holding one of them are decoded, ``BATCH_ROWS`` at a time, each up to its
        last wanted row."""
        import bisect
        parts, i = [], 0
        while i < len(positions):
            group = bisect.bisect_right(self.starts, positions[i]) - 1
            end = bisect.bisect_left(positions, self.starts[group + 1], i)
            parts += self._group_rows(group, positions[i:end], columns)
            i = end
        return _concat(parts) if parts else None

    def _group_rows(self, group: int, positions: list, columns) -> list:
        """Tables of the rows at ``positions`` (sorted, within row group ``group``)."""
        import bisect
        out, first, i = [], self.starts[group], 0
        for batch in self.file.iter_batches(BATCH_ROWS, row_groups=[group], columns=columns):
            end = bisect.bisect_left(positions, first + batch.num_rows, i)
            if end > i:
                at = pa.array([r - first for r in positions[i:end]], pa.int64())
                out.append(pa.Table.from_batches([batch.take(at)]))
            first, i = first + batch.num_rows, end
            if i == len(positions):
                break  # the rest of the row group holds no key-mate: not decoded
        return out


def with_columns_at_rows(plans, path, table: pa.Table, rows, columns) -> pa.Table:
    """``table`` (the claims at ``path`` at the sorted positions ``rows``: e.g. the key-mates
    a key index held) with the ``columns`` it lacks (None: every column of the files, for
    ``--drg``'s diagnosis lists …) decoded from the Parquet files at ``rows`` only, in the
    files' column order and in the one layout; None for Arrow IPC claims (read whole
    anyway: the caller scans)."""
    held = set(table.column_names)
    if columns is not None and set(columns) <= held:
        return table
    from .claim_files import IPC_SUFFIXES, input_files
    files = input_files(path)
    if any(f.suffix in IPC_SUFFIXES for f in files):
        return None
    parts = [_ParquetRows(f) for f in files]
    wanted = _wanted(plans, parts[0].file.schema_arrow, columns)
    got = {**_columns(table), **_columns(_rows_of_files(parts, rows,
                                                        [c for c in wanted if c not in held]))}
    return pa.Table.from_arrays([got[c][1] for c in wanted],
                                schema=pa.schema([got[c][0] for c in wanted]))


def _rows_of_files(parts: list, rows, columns) -> pa.Table:
    """``columns`` of the rows at ``rows`` (sorted positions in the files read one after
    another: a list or an Arrow array); the files' empty table of ``columns`` when ``rows``
    is empty; None when ``columns`` is."""
    import bisect
    if not columns:
        return None
    rows = rows if isinstance(rows, list) else rows.to_pylist()
    out, first = [], 0
    for part in parts:
        last = first + part.starts[-1]
        lo, hi = bisect.bisect_left(rows, first), bisect.bisect_left(rows, last)
        if hi > lo:
            out.append(part.rows([r - first for r in rows[lo:hi]], columns))
        first = last
    if not out:
        return parts[0].file.schema_arrow.empty_table().select(columns)
    return _concat(out)


def explain_columns(plans, registry=None, drg: bool = False):
    """The claim columns an explanation under ``plans`` reads (None: every column, when the
    DRG path or a plugin validator or stage that does not declare its columns may read any):
    ids, keys, the plans' columns, their provider part's and the plugins' declared ones.
    Leaving out the diagnosis lists the benefits never read is most of the saving of reading
    one person's claims."""
    from .registry import default_registry
    declared = declared_columns(registry or default_registry())
    if drg or declared is None:
        return None
    out = {*ALWAYS, *declared}
    for plan in plans:
        out.update(c.name for c in plan.columns)
        out.update(k.column for k in plan.keys())
        if plan.provider is not None or plan.groupers:
            from .provider import needed_columns  # imported only when there is a provider part
            out.update(needed_columns(plan))
    return sorted(out)


def declared_columns(registry):
    """The claim columns the registry's validators and stages declare they read (None when
    one does not declare them: it may read any)."""
    declared = [p.claim_columns for p in (*registry.validators, *registry.stages)]
    return None if None in declared else sorted({c for cs in declared for c in cs})

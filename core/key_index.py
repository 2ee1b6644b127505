"""The key index: what ``yibao explain --run OUT`` reads instead of the claims file (issue 13).

``yibao settle`` (in memory) writes ``explain-index/`` into its results folder: every input
row with a claim id, with the columns an explanation reads (``key_mates.explain_columns``),
grouped by *key group* (the rows linked by sharing a value of an accumulator key column:
person, family …, transitively: what ``key_mates.closure_mask`` closes over), and a
``claim_id -> row`` lookup. Explaining one claim then reads the claim's key group (and the
few rows elsewhere that share one of its claim ids: a duplicate id rejects every copy), which
are exactly the rows ``key_mates.read_key_mates`` would have read from the claims file, in
the same (input) order, so the explanation is the same, byte for byte.

Files (little-endian, the machine's byte order recorded)::

    index.json     what the index describes: format, the inputs (path, bytes, mtime_ns,
                   rows), the policy files' digest, yibao's version, the key columns, the
                   columns held, and the size of every file below
    hashes.u64     FNV-1a 64 of each stored claim id (core/_fnv.pxd), sorted
    records.u32    the record (row of rows.arrow) of each hash, same order
    groups.u32     the first record of each key group, then the number of records
    dups.u64       the hashes held by more than one record, sorted (usually empty)
    rows.arrow     Arrow IPC file: the held columns and ``__row`` (the input row), records
                   sorted by (key group, input row), in batches of ``BATCH`` records

The lookup (``KeyIndex.locate``) is ``mmap`` and binary search in pure Python (no pyarrow,
no numpy): it can run while the command still imports and compiles. Only the batches of
rows.arrow that hold the claim's key group are read (``KeyIndex.key_mates``).

An index is used only when it still describes the command's inputs and policy
(``KeyIndex.unusable``): the same files (resolved paths) with the same size and mtime_ns,
the same policy files (sha256), the same yibao version and key columns, and every column the
explanation reads held (or, for Parquet inputs, decodable at the key-mates' rows:
``--drg`` reads the diagnosis columns from the claims file at those rows only).
"""
from __future__ import annotations

import bisect
import hashlib
import json
import mmap
import os
import sys
from pathlib import Path

FORMAT = "yibao-key-index/1"
FOLDER = "explain-index"
BATCH = 4096  # records per batch of rows.arrow: a key group is read in one or two batches
TAKE = 16 * BATCH  # records copied at a time while writing rows.arrow
ROW = "__row"  # rows.arrow's input-row column
FNV_OFFSET, FNV_PRIME, MASK64 = 14695981039346656037, 1099511628211, (1 << 64) - 1
MAX_RECORDS = (1 << 32) - 1  # records are numbered in uint32


class IndexUnusable(Exception):
    """The index cannot be used for this command; the message says why in a few words."""


def fnv1a(text: str) -> int:
    """FNV-1a 64 of ``text``'s UTF-8 bytes: core/_fnv.pxd's hash, which settle wrote."""
    h = FNV_OFFSET
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def policy_files(policy_path) -> dict:
    """{relative path: sha256} of the policy file, or of every file of a policy folder: what
    manifest.json records under ``policy.files`` (manifest.policy_files), computed here
    without importing the manifest (and pyarrow)."""
    path = Path(policy_path)
    if path.is_file():
        return {path.name: _sha256(path)}
    return {p.relative_to(path).as_posix(): _sha256(p)
            for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_stamp(path) -> dict:
    """What an index records of one input file: resolved path, bytes, mtime_ns."""
    st = os.stat(path)
    return {"path": str(Path(path).resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def index_folder(run_dir) -> Path:
    """The index of a results folder: published through ``current`` (core/manifest.py)."""
    run_dir = Path(run_dir)
    for where in (run_dir / "current" / FOLDER, run_dir / FOLDER):
        if where.is_dir():
            return where
    return run_dir / "current" / FOLDER


# -- writing (settle) ------------------------------------------------------------------------


class KeyIndexWriter:
    """Writes the key index of a run's input into ``folder`` on a thread, beside the run:
    sorting, hashing and encoding are numpy and Arrow work that releases the GIL, so on a
    second core it overlaps the kernel. ``close()`` waits for it. The index only speeds
    explain up: a failure to write it is not the run's; the half-written folder is removed
    and one line on stderr says so (explain then reads the claims file)."""

    def __init__(self, plans, registry, sources, table, folder: Path):
        import threading
        self.folder, self.error, self.written = Path(folder), None, False
        self._thread = threading.Thread(
            target=self._run, args=(plans, registry, sources, table), name="yibao-key-index",
            daemon=True)
        self._thread.start()

    def _run(self, plans, registry, sources, table) -> None:
        try:
            self.written = write_key_index(plans, registry, sources, table, self.folder)
        except Exception as exc:  # noqa: BLE001 (reported by close(); the run goes on)
            self.error = exc

    def close(self) -> bool:
        """Wait for the index; whether it was written."""
        self._thread.join()
        if self.error is not None:
            import shutil
            shutil.rmtree(self.folder, ignore_errors=True)
            print(f"yibao settle: note: no key index for explain written ({self.error})",
                  file=sys.stderr)
        return self.written and self.error is None


def write_key_index(plans, registry, sources, table, folder: Path) -> bool:
    """Write the key index of the run's input ``table`` (every input row, in input-row
    order, the run's columns) into ``folder`` (created; its parent must exist). False
    (nothing written) when the run cannot hold what explain reads: a plugin check or stage
    that does not declare its columns, a column explain reads that the run did not, or more
    rows than uint32 numbers."""
    import numpy as np
    from .key_mates import _wanted, accumulator_keys, explain_columns
    if table.num_rows > MAX_RECORDS:
        return False
    columns = explain_columns(plans, registry, False)
    if columns is None:
        return False
    wanted = _wanted(plans, sources[0].schema, columns)
    if not set(wanted) <= set(table.column_names):
        return False
    keys = accumulator_keys(plans, wanted)
    group = key_groups(table, keys)
    has_id = np.asarray(table.column("claim_id").is_valid().to_numpy(zero_copy_only=False),
                        dtype=bool)
    order = np.argsort(group, kind="stable")  # by key group, then input row
    order = order[has_id[order]].astype(np.int64)  # a null id is never a key-mate
    folder.mkdir()
    sizes = {"rows.arrow": _write_rows(table.select(wanted), order, folder / "rows.arrow")}
    sizes.update(_write_lookup(table.column("claim_id"), group, order, folder))
    meta = {"format": FORMAT, "byteorder": sys.byteorder, "yibao": _version(),
            "inputs": [{**input_stamp(s.path), "rows": s.rows} for s in sources],
            "keys": keys, "columns": wanted, "records": int(len(order)), "batch": BATCH,
            "files": sizes}
    (folder / "index.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return True


def key_groups(table, keys: list):
    """int64 key group of every row of ``table``: rows sharing a non-null value of one of
    the ``keys`` columns are in one group, transitively (a row whose keys are all null is a
    group of its own). Each group is numbered by its first row, so sorting by group keeps
    the groups in the order of their first rows. Label propagation: a row takes the
    smallest label among the rows sharing one of its key values, until nothing changes
    (one round per link of the longest chain: one round for one key)."""
    import numpy as np
    n = table.num_rows
    label = np.arange(n, dtype=np.int64)
    codes = [_codes(table.column(k)) for k in keys]
    changed = True
    while changed:
        changed = False
        for code, values in codes:
            valid = code >= 0
            least = np.full(values, n, dtype=np.int64)
            np.minimum.at(least, code[valid], label[valid])
            now = label.copy()
            now[valid] = np.minimum(label[valid], least[code[valid]])
            if len(codes) > 1 and not np.array_equal(now, label):
                changed = True
            label = now
    return label


def _codes(column) -> tuple:
    """(int64 code of each row's value, -1 for null; the number of distinct values)."""
    import numpy as np
    import pyarrow as pa
    encoded = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = encoded.dictionary_encode()
    code = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False),
                      dtype=np.int64)
    return code, len(encoded.dictionary)


def _write_rows(table, order, path: Path) -> int:
    """rows.arrow: ``table``'s rows at ``order`` and their input row, in batches of
    ``BATCH`` records (taken ``TAKE`` records at a time: the copy held is that, not the
    table); its bytes."""
    import pyarrow as pa
    schema = table.schema.append(pa.field(ROW, pa.int64()))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, len(order), TAKE):
            at = pa.array(order[start:start + TAKE])
            part = table.take(at).append_column(ROW, at).combine_chunks()
            writer.write_table(part, max_chunksize=BATCH)  # TAKE is a multiple of BATCH
        if not len(order):
            writer.write_table(schema.empty_table())
    return path.stat().st_size


def _write_lookup(claim_ids, group, order, folder: Path) -> dict:
    """hashes.u64 + records.u32 (the id lookup), groups.u32 (each group's first record),
    dups.u64 (hashes of more than one record); {file: bytes}."""
    import numpy as np
    from .partition import hash_strings
    import pyarrow as pa
    hashes = hash_strings(claim_ids.take(pa.array(order)))
    by_hash = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[by_hash]
    grouped = group[order]
    first = np.flatnonzero(np.diff(grouped, prepend=-1)) if len(grouped) else grouped
    same = sorted_hashes[1:] == sorted_hashes[:-1]
    arrays = {"hashes.u64": sorted_hashes.astype("<u8"),
              "records.u32": by_hash.astype("<u4"),
              "groups.u32": np.append(first, len(order)).astype("<u4"),
              "dups.u64": np.unique(sorted_hashes[1:][same]).astype("<u8")}
    sizes = {}
    for name, values in arrays.items():
        (folder / name).write_bytes(values.tobytes())
        sizes[name] = values.nbytes
    return sizes


def _version() -> str:
    from . import __version__
    return __version__


# -- reading (explain) -----------------------------------------------------------------------


class KeyIndex:
    """An opened key index (``open``). ``unusable`` says whether it still describes the
    command's inputs and policy; ``locate`` finds a claim's key group without pyarrow;
    ``key_mates`` reads its rows."""

    def __init__(self, folder: Path, meta: dict):
        self.folder, self.meta = folder, meta
        self._maps = {}

    @classmethod
    def open(cls, run_dir) -> "KeyIndex":
        """The index of results folder ``run_dir``; ``IndexUnusable`` when there is none
        (settled before yibao wrote one, or partitioned, Spark) or it is unreadable."""
        folder = index_folder(run_dir)
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexUnusable(f"{run_dir} has no key index") from None
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"{folder / 'index.json'} is unreadable ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT \
                or meta.get("byteorder") != sys.byteorder:
            raise IndexUnusable(f"{folder} is not a {FORMAT} index of this machine")
        for name, size in meta["files"].items():
            if not (folder / name).is_file() or (folder / name).stat().st_size != size:
                raise IndexUnusable(f"{folder / name} is missing or incomplete")
        return cls(folder, meta)

    def unusable(self, claim_files, policy_path) -> str:
        """Why the index does not describe ``claim_files`` (the command's, as
        ``claim_files.input_files`` lists them) under the policy at ``policy_path`` ("" when
        it does): other files, a file whose size or mtime_ns changed, other policy files
        than the run's manifest.json records, another yibao. Stat calls and the policy
        files' sha256 only: no claims file is opened."""
        if self.meta.get("yibao") != _version():
            return f"it was written by yibao {self.meta.get('yibao')}"
        inputs = self.meta["inputs"]
        if [str(Path(f).resolve()) for f in claim_files] != [i["path"] for i in inputs]:
            return "it was written for other claim files"
        for f, was in zip(claim_files, inputs):
            now = input_stamp(f)
            if (now["bytes"], now["mtime_ns"]) != (was["bytes"], was["mtime_ns"]):
                return f"{f} changed since the run"
        try:
            manifest = json.loads((self.folder.parent / "manifest.json").read_text("utf-8"))
            recorded = manifest["policy"]["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return "the run's manifest.json is missing or unreadable"
        if not recorded or policy_files(policy_path) != recorded:
            return "the policy files differ from the run's"
        return ""

    def keys(self) -> list:
        return list(self.meta["keys"])

    def columns(self) -> list:
        return list(self.meta["columns"])

    # -- the lookup, in pure Python

    def _array(self, name: str, code: str):
        """The file ``name`` as a read-only memoryview of ``code`` items (``mmap``)."""
        if name not in self._maps:
            path = self.folder / name
            if path.stat().st_size == 0:
                self._maps[name] = memoryview(b"").cast(code)
            else:
                with open(path, "rb") as f:
                    self._maps[name] = memoryview(
                        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)).cast(code)
        return self._maps[name]

    def records_of(self, claim_id: str) -> list:
        """The records whose claim id hashes as ``claim_id`` does (a hash collision's too:
        ``key_mates`` compares the ids)."""
        hashes, h = self._array("hashes.u64", "Q"), fnv1a(claim_id)
        lo = bisect.bisect_left(hashes, h)
        hi = bisect.bisect_right(hashes, h, lo)
        records = self._array("records.u32", "I")
        return [records[i] for i in range(lo, hi)]

    def group_of(self, record: int) -> tuple:
        """(first record, end) of the key group holding ``record``."""
        groups = self._array("groups.u32", "I")
        k = bisect.bisect_right(groups, record) - 1
        return groups[k], groups[k + 1]

    def duplicated(self, claim_id: str) -> bool:
        """Whether more than one record's id hashes as ``claim_id`` does."""
        dups, h = self._array("dups.u64", "Q"), fnv1a(claim_id)
        i = bisect.bisect_left(dups, h)
        return i < len(dups) and dups[i] == h

    def locate(self, claim_id: str) -> list:
        """[(candidate record, (first, end) of its group)] for ``claim_id``: no pyarrow."""
        return [(r, self.group_of(r)) for r in self.records_of(claim_id)]

    # -- the rows, with pyarrow

    def key_mates(self, claim_id: str, located=None):
        """The rows ``key_mates.read_key_mates`` reads for ``claim_id`` (the held columns,
        in input order) and their input rows (a sorted list): the key groups of the records
        holding ``claim_id``, and the records elsewhere sharing a claim id with them. Empty
        when no record holds it."""
        import pyarrow as pa
        located = self.locate(claim_id) if located is None else located
        rows = _Rows(self.folder / "rows.arrow")
        groups = {g for r, g in located if rows.claim_id(r) == claim_id}
        mates = {}
        for first, end in sorted(groups):
            for r in range(first, end):
                mates[r] = None
        for cid in {rows.claim_id(r) for r in list(mates)}:
            if self.duplicated(cid):
                mates.update((r, None) for r in self.records_of(cid)
                             if rows.claim_id(r) == cid)
        table = rows.take(sorted(mates))
        inputs = table.column(ROW).to_pylist()
        order = sorted(range(len(inputs)), key=inputs.__getitem__)  # the input's row order
        return table.take(pa.array(order, pa.int64())).drop_columns([ROW]), sorted(inputs)


class _Rows:
    """rows.arrow, memory-mapped; batches read as first touched."""

    def __init__(self, path: Path):
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401 (pa.ipc: not imported by pyarrow itself)
        self.reader = pa.ipc.open_file(pa.memory_map(str(path)))
        self.batches = {}

    def batch(self, k: int):
        if k not in self.batches:
            self.batches[k] = self.reader.get_batch(k)
        return self.batches[k]

    def claim_id(self, record: int) -> str:
        value = self.batch(record // BATCH).column("claim_id")[record % BATCH].as_py()
        return None if value is None else str(value)

    def take(self, records: list):
        """The records at ``records`` (sorted) as one table of rows.arrow's schema."""
        import pyarrow as pa
        parts, i = [], 0
        while i < len(records):
            k = records[i] // BATCH
            j = bisect.bisect_left(records, (k + 1) * BATCH, i)
            at = pa.array([r - k * BATCH for r in records[i:j]], pa.int64())
            parts.append(self.batch(k).take(at))
            i = j
        if not parts:
            return self.reader.schema.empty_table()
        return pa.Table.from_batches(parts, schema=self.reader.schema)

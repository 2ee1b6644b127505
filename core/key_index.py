"""The key index: what ``yibao explain --run OUT`` reads instead of the claims file (issue 13).

``yibao settle --key-index`` (in memory) writes ``explain-index/`` into its results folder: the columns an
explanation reads (``key_mates.explain_columns``) of every input row, as they are (no copy
sorted: that is what keeps writing it cheap), the rows of each *key group* listed together,
and a ``claim_id -> key group`` lookup. A key group holds every row sharing a value of an
accumulator key column (person, family …) with it, transitively (what
``key_mates.closure_mask`` closes over), and a few more: a group is the rows whose keys'
hashes share their upper 16 bits (about one row in 65,536 of the input besides: 30 at 2M).
Explaining one claim reads the key groups of the rows holding its id and the rows elsewhere
sharing a claim id with them (a duplicate id rejects every copy), then closes over the keys
exactly (``closure`` on those few rows): the rows ``key_mates.read_key_mates`` would read
from the claims file, in the same (input) order, so the explanation is the same, byte for
byte.

Everything explain reads is plain fixed-width integers and bytes, so reading it needs neither
numpy nor pyarrow (``struct`` codes through ``memoryview.cast`` over ``mmap``): explain then
settles the rows in plain Python (core/claim_rows.py, ``reference.settle_rows``). Files
(little-endian, the machine's byte order recorded)::

    index.json     what the index describes: format, the inputs (resolved path, bytes,
                   mtime_ns, rows), yibao's version, the key columns, the held columns
                   (name, kind, file, decimal scale and width, whether it has nulls) and the
                   size of every file below
    col<k>.values  held column k, one value per input row, in input order: integers in
                   their own width (signed, or unsigned up to 32 bits), uint8 (booleans),
                   int32 days (dates), the decimal's unscaled integer in the type's width;
                   for text the uint32 offsets (int64 past 4 GiB of text) of each row's
                   UTF-8 bytes in col<k>.text (rows + 1 of them); index.json names each
                   file's ``struct`` code
    col<k>.text    a text column's bytes, one blob
    col<k>.valid   a uint8 per row (0: null), only for a column with nulls
    schema.arrow   the held columns' Arrow schema (the types the run read, in the one
                   layout): what builds a table of the rows when explain reads them through
                   Arrow (``key_mates``)
    members.u32    the input rows, key group after key group (each group in input order)
    groups.u32     where each key group starts in members.u32, then the number of rows
    ids.u64        FNV-1a 64 (core/_fnv.pxd) of each non-null claim id, sorted by the upper
                   16 bits (a lookup scans the entries sharing them: 30 at 2M ids)
    id_groups.u32  the key group of each entry of ids.u64

A column of another type (a list of diagnoses, a float, uint64) is not held: explain decodes
it from the Parquet claims at the key-mates' rows only (and reads through Arrow). The lookup
(``KeyIndex.locate``) is ``mmap`` and binary search, so it runs on a thread while the
command still imports and compiles; ``held_rows`` then reads the group's rows.

Writing is whole-column work (``write_key_index``): two FNV hash passes (the person and
the claim id), two stable 16-bit ``argsort`` passes (numpy's radix sort: the key groups and
the ids, each by the upper 16 bits of a hash) and the columns written as they are. Every
file, then the folder, is fsynced before the writer returns, so before the run is published.

An index is used only when it still describes the command's inputs and policy
(``KeyIndex.unusable``): the same files (resolved paths) with the same size and mtime_ns,
the policy files the run's manifest.json records (sha256), the same yibao version and key
columns. An index of another format (``FORMAT``: an older yibao's) is not used either.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import mmap
import os
import sys
from pathlib import Path

from .claim_rows import (BOOL_KIND, DATE_KIND, DECIMAL_KIND, INT_KIND, TEXT_KIND, HeldColumn,
                         HeldRows)
from .errors import YibaoError

FORMAT = "yibao-key-index/2"
FOLDER = "explain-index"
FNV_OFFSET, FNV_PRIME, MASK64 = 14695981039346656037, 1099511628211, (1 << 64) - 1
MAX_RECORDS = (1 << 32) - 1  # rows are numbered in uint32


class IndexUnusable(YibaoError):
    """The index cannot be used for this command; the message says why in a few words
    (explain then notes it and reads the claims: it never ends a command)."""


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
        inputs = [{**input_stamp(s.path), "rows": s.rows} for s in sources]  # as read
        self._thread = threading.Thread(
            target=self._run, args=(plans, registry, sources, table, inputs),
            name="yibao-key-index", daemon=True)
        self._thread.start()

    def _run(self, plans, registry, sources, table, inputs) -> None:
        try:
            self.written = write_key_index(plans, registry, sources, table, self.folder,
                                           inputs)
        except Exception as exc:  # noqa: BLE001 (reported by close(); the run goes on)
            self.error = exc

    def discard(self) -> None:
        """The run failed: wait for the thread (it cannot be stopped half-way; the index is
        whole-column work of a second or so) and remove what it wrote, saying nothing."""
        import shutil
        self._thread.join()
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> bool:
        """Wait for the index; whether it was written."""
        self._thread.join()
        if self.error is not None:
            import shutil
            shutil.rmtree(self.folder, ignore_errors=True)
            print(f"yibao settle: note: no key index for explain written ({self.error})",
                  file=sys.stderr)
        return self.written and self.error is None


def write_key_index(plans, registry, sources, table, folder: Path, inputs=None) -> bool:
    """Write the key index of the run's input ``table`` (every input row, in input-row
    order, the run's columns) into ``folder`` (created; its parent must exist); ``inputs``:
    the input files' stamps (``input_stamp`` and rows) when the run read them (None: now).
    False
    (nothing written) when the run cannot hold what explain reads: a plugin check or stage
    that does not declare its columns, a column explain reads that the run did not, or more
    rows than uint32 numbers."""
    from .arrow_io import normal_table
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
    held = normal_table(table.select(wanted), codes=False)  # the index holds text, not codes
    if not set(keys) <= {f.name for f in held.schema if held_kind(f.type)}:
        return False  # a key of a type the index does not hold: explain scans
    folder.mkdir()
    columns, sizes = _write_columns(held, folder)
    sizes.update(_write_lookup(table, keys, folder))
    meta = {"format": FORMAT, "byteorder": sys.byteorder, "yibao": _version(),
            "inputs": inputs or [{**input_stamp(s.path), "rows": s.rows} for s in sources],
            "keys": keys, "columns": columns, "rows": table.num_rows, "files": sizes}
    _write_file(folder / "index.json", (json.dumps(meta) + "\n").encode("utf-8"))
    from .manifest import _fsync  # the writer's side only: explain never imports manifest
    _fsync(folder)  # the folder too, so that its entries (the files' names) are on disk
    return True


def held_kind(t) -> str | None:
    """How the index holds a column of Arrow type ``t`` (in the one layout): text, int
    (signed, or unsigned up to 32 bits, in its own width), bool, date (date32: int32 days), decimal
    (its unscaled integers, the type's own width); None: not held (explain decodes it from
    the claims at the key-mates' rows)."""
    import pyarrow as pa
    if pa.types.is_string(t):
        return TEXT_KIND
    if pa.types.is_signed_integer(t) or t in (pa.uint8(), pa.uint16(), pa.uint32()):
        return INT_KIND
    if pa.types.is_boolean(t):
        return BOOL_KIND
    if pa.types.is_date32(t):
        return DATE_KIND
    return DECIMAL_KIND if pa.types.is_decimal(t) else None


def _write_columns(table, folder: Path) -> tuple:
    """col<k>.* of every held column of ``table`` (``held_kind``); ([{name, kind, file,
    struct code, scale, width, nulls}], {file: bytes})."""
    columns, sizes = [], {}
    for field in table.schema:
        kind = held_kind(field.type)
        if kind is None:
            continue
        col, stem = table.column(field.name), f"col{len(columns)}"
        files = _column_files(col, kind)
        for suffix, data in files.items():
            sizes[f"{stem}.{suffix}"] = _write_file(folder / f"{stem}.{suffix}", data)
        columns.append({"name": field.name, "kind": kind, "file": stem,
                        "code": _struct_code(files["values"]) if kind != DECIMAL_KIND else None,
                        "scale": getattr(field.type, "scale", None),
                        "width": field.type.byte_width if kind == DECIMAL_KIND else None,
                        "nulls": col.null_count > 0})
    import pyarrow as pa
    schema = pa.schema([table.schema.field(c["name"]) for c in columns])
    sizes["schema.arrow"] = _write_file(folder / "schema.arrow",
                                        schema.serialize().to_pybytes())
    return columns, sizes


def _column_files(col, kind: str) -> dict:
    """{suffix: bytes-like} of one held column: ``values`` (integers in their own width,
    uint8 booleans, int32 days, decimal words; text: uint32 offsets, n + 1 of them, int64
    when the text passes 4 GiB), ``text`` (the text's UTF-8 bytes, one blob) and ``valid``
    (a uint8 per row) when it has nulls."""
    import numpy as np
    import pyarrow as pa
    files = {}
    if kind == TEXT_KIND:
        files["values"], files["text"] = _text_files(col)
    elif kind == DECIMAL_KIND:
        files["values"] = b"".join(_decimal_words(c) for c in col.chunks)
    elif kind == DATE_KIND:
        files["values"] = np.asarray(col.cast(pa.int32()).fill_null(0).to_numpy(), "<i4")
    elif kind == BOOL_KIND:
        files["values"] = np.asarray(col.fill_null(False).to_numpy(), np.uint8)
    else:
        files["values"] = np.asarray(col.fill_null(0).to_numpy(), col.type.to_pandas_dtype())
    if col.null_count:
        files["valid"] = np.asarray(col.is_valid().to_numpy(), np.uint8)
    return files


def _text_files(col) -> tuple:
    """(int64 offsets into the blob, the blob) of a string column, chunk after chunk."""
    import numpy as np
    offsets, blobs, at = [np.zeros(1, "<i8")], [], 0
    for chunk in col.chunks:
        if not len(chunk):
            continue
        _, off_buf, data = chunk.buffers()
        off = np.frombuffer(off_buf, np.int32)[chunk.offset:chunk.offset + len(chunk) + 1]
        lo, hi = int(off[0]), int(off[-1])
        blobs.append(memoryview(data)[lo:hi] if data is not None and hi > lo else b"")
        offsets.append(off[1:].astype("<i8") - lo + at)
        at += hi - lo
    offsets = np.concatenate(offsets)
    return (offsets.astype("<u4") if at < 1 << 32 else offsets), b"".join(blobs)


def _struct_code(values) -> str:
    """The ``struct`` code of a values file's items (``memoryview.cast`` reads them)."""
    import numpy as np
    dtype = np.dtype(values.dtype)  # (numpy's own char for int64 is C long: 'l')
    return {"i": "bhiq", "u": "BHIQ"}[dtype.kind]["1248".index(str(dtype.itemsize))]


def _decimal_words(chunk) -> bytes:
    """A decimal chunk's values, the type's width each (two's complement, little-endian)."""
    if not len(chunk):
        return b""
    width = chunk.type.byte_width
    data = memoryview(chunk.buffers()[1])
    return bytes(data[chunk.offset * width:(chunk.offset + len(chunk)) * width])


def _write_file(path: Path, data) -> int:
    """Write ``data`` (bytes or a numpy array) to ``path`` and fsync it: the index is
    whole on disk before the run is published (docs/outputs.md); its bytes."""
    with open(path, "wb") as f:
        f.write(memoryview(data).cast("B") if not isinstance(data, bytes) else data)
        f.flush()
        os.fsync(f.fileno())
    return path.stat().st_size


def key_groups(table, keys: list):
    """A uint32 group key of every row of ``table`` whose upper 16 bits are its key group
    (``radix_order`` sorts by them): rows sharing a value of one of the ``keys`` columns
    are in one group, transitively, and so are the unrelated rows whose keys' hashes share
    those bits (one row in 65,536 of the input: explain closes over the keys again, exactly,
    on the group's rows). A null links nothing. One key: the upper 32 bits of the value's
    FNV-1a hash (a null row's drawn from its row number). Several: label propagation over
    the values (a row takes the smallest row number among the rows sharing one of its
    values, and that row's own label, until nothing changes: a few rounds for a chain of
    families and persons), the label spread over 32 bits."""
    import numpy as np
    from .partition import hash_strings
    n = table.num_rows
    valid = [np.asarray(table.column(k).is_valid().to_numpy(zero_copy_only=False), bool)
             for k in keys]
    tops = [_top32(hash_strings(table.column(k))) for k in keys]
    if len(tops) == 1:
        return np.where(valid[0], tops[0], _spread(np.arange(n)))
    label = np.arange(n, dtype=np.int64)
    links = []
    for top, ok in zip(tops, valid):
        values, code = np.unique(top[ok], return_inverse=True)
        links.append((np.flatnonzero(ok), code, len(values)))
    changed = True
    while changed:
        changed = False
        for rows, code, count in links:
            least = np.full(count, n, dtype=np.int64)
            np.minimum.at(least, code, label[rows])
            now = np.minimum(label[rows], least[code])
            changed = changed or not np.array_equal(now, label[rows])
            label[rows] = now
        label = label[label]  # a label is a row of the group: take that row's (jumping)
    return _spread(label)


def _spread(numbers):
    """uint32 of ``numbers`` (row numbers) spread over the upper bits (Knuth's
    multiplicative hash), so that their upper 16 bits fall apart evenly."""
    import numpy as np
    return (numbers.astype(np.uint64) * np.uint64(2654435761)).astype(np.uint32)


def _top32(hashes):
    import numpy as np
    return (hashes >> np.uint64(32)).astype(np.uint32)


def radix_order(keys):
    """The stable order sorting uint32 ``keys`` by their upper 16 bits: one stable 16-bit
    ``argsort`` (numpy sorts 16-bit integers by radix: linear, ≈ 6× faster than sorting
    32-bit ones)."""
    import numpy as np
    return np.argsort((keys >> np.uint32(16)).astype(np.uint16), kind="stable")


def _write_lookup(table, keys: list, folder: Path) -> dict:
    """members.u32 + groups.u32 (the rows of each key group), ids.u64 + id_groups.u32 (the
    claim-id lookup); {file: bytes}."""
    import numpy as np
    from .partition import hash_strings
    n = table.num_rows
    group = key_groups(table, keys)
    members = radix_order(group)  # stable: each group's rows in input order
    ordered = group[members] >> np.uint32(16)  # the key group of each row of members
    new = np.ones(n, dtype=bool)  # where a group starts in members
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    number = np.empty(n, dtype=np.uint32)  # each row's group: its index in groups.u32
    number[members] = np.cumsum(new) - 1
    del group, ordered, new
    ids = table.column("claim_id")
    hashes = hash_strings(ids)
    if ids.null_count:  # a null id is never looked up
        keep = np.asarray(ids.is_valid().to_numpy(zero_copy_only=False), bool)
        rows = np.flatnonzero(keep)
        rows = rows[radix_order(_top32(hashes[rows]))]
    else:
        rows = radix_order(_top32(hashes))
    arrays = {"members.u32": members.astype("<u4"),
              "groups.u32": np.append(starts, n).astype("<u4"),
              "ids.u64": hashes[rows].astype("<u8"),
              "id_groups.u32": number[rows].astype("<u4")}
    return {name: _write_file(folder / name, values) for name, values in arrays.items()}


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
        (settled without ``--key-index``, or partitioned, Spark) or it is unreadable."""
        folder = index_folder(run_dir)
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise IndexUnusable("there is none: settled without --key-index, not in "
                                "memory, or under a plugin that does not declare its "
                                "columns") from None
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"index.json is unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT \
                or meta.get("byteorder") != sys.byteorder:
            raise IndexUnusable(f"it is not a {FORMAT} index of this machine")
        for name, size in meta["files"].items():
            if not (folder / name).is_file() or (folder / name).stat().st_size != size:
                raise IndexUnusable(f"its {name} is missing or incomplete")
        return cls(folder, meta)

    def unusable(self, claim_files, policy_path) -> str:
        """Why the index does not describe ``claim_files`` (the command's, as
        ``claim_files.input_files`` lists them) under the policy at ``policy_path`` ("" when
        it does): other files, a file whose size or mtime_ns changed, other policy files
        than the run's manifest.json records, another yibao. Stat calls and the policy
        files' sha256 only: no claims file is opened."""
        if self.meta.get("yibao") != _version():
            return f"it was written by yibao {self.meta.get('yibao')}, this is {_version()}"
        inputs = self.meta["inputs"]
        if [str(Path(f).resolve()) for f in claim_files] != [i["path"] for i in inputs]:
            return "it describes other claim files"
        for f, was in zip(claim_files, inputs):
            now = input_stamp(f)
            if (now["bytes"], now["mtime_ns"]) != (was["bytes"], was["mtime_ns"]):
                return f"{f} changed since the run (size or mtime)"
        try:
            manifest = json.loads((self.folder.parent / "manifest.json").read_text("utf-8"))
            recorded = manifest["policy"]["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return "the run's manifest.json is missing or unreadable"
        if not recorded or policy_files(policy_path) != recorded:
            return "the policy's files differ from the run's"
        return ""

    def keys(self) -> list:
        return list(self.meta["keys"])

    def columns(self) -> list:
        """The names of the held columns, in the claims' column order."""
        return [c["name"] for c in self.meta["columns"]]

    # -- the lookup, in pure Python

    def _array(self, name: str, code: str):
        """The file ``name`` as a read-only memoryview of ``code`` items (``mmap``)."""
        if name not in self._maps:
            path = self.folder / name
            if path.stat().st_size == 0:
                self._maps[name] = memoryview(b"").cast("B").cast(code)
            else:
                with open(path, "rb") as f:
                    self._maps[name] = memoryview(
                        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)).cast(code)
        return self._maps[name]

    def _entries(self, claim_id: str) -> range:
        """The entries of ids.u64 sharing the upper 16 bits of ``claim_id``'s hash (sorted
        so: a few dozen per million ids, scanned)."""
        ids = self._array("ids.u64", "Q")
        top = fnv1a(claim_id) >> 48
        lo = bisect.bisect_left(ids, top, key=_upper16)
        return range(lo, bisect.bisect_right(ids, top, lo, key=_upper16))

    def groups_of(self, claim_id: str) -> list:
        """The key groups of the rows whose claim id hashes as ``claim_id``'s does (a hash
        collision's too: ``key_mates`` closes over the rows exactly)."""
        ids, h = self._array("ids.u64", "Q"), fnv1a(claim_id)
        groups = self._array("id_groups.u32", "I")
        return sorted({groups[i] for i in self._entries(claim_id) if ids[i] == h})

    def members(self, group: int) -> list:
        """The input rows of key group ``group``, ascending."""
        starts = self._array("groups.u32", "I")
        return self._array("members.u32", "I")[starts[group]:starts[group + 1]].tolist()

    def duplicated(self, claim_id: str) -> bool:
        """Whether more than one row's id hashes as ``claim_id``'s does."""
        ids, h = self._array("ids.u64", "Q"), fnv1a(claim_id)
        return sum(ids[i] == h for i in self._entries(claim_id)) > 1

    def locate(self, claim_id: str) -> list:
        """The input rows of the key groups holding ``claim_id`` (ascending): no pyarrow."""
        return sorted({r for g in self.groups_of(claim_id) for r in self.members(g)})

    # -- the rows, in pure Python

    def held_rows(self, claim_id: str) -> tuple:
        """(``HeldRows`` of the rows ``key_mates.read_key_mates`` reads for ``claim_id``, of
        the held columns in input order; their input rows, ascending): the key groups of
        ``locate`` and the rows elsewhere sharing one of their claim ids, closed over the
        keys exactly (``closure``, as ``key_mates.closure_mask``). No row holds the claim:
        no rows. Pure Python: no numpy, no pyarrow."""
        mine = self.locate(claim_id)
        ids = self._values("claim_id", mine)
        twins = {str(cid) for cid in ids if cid is not None and self.duplicated(str(cid))}
        more = {r for cid in twins for g in self.groups_of(cid) for r in self.members(g)}
        if more - set(mine):
            mine = sorted(set(mine) | more)
            ids = self._values("claim_id", mine)
        keep = closure(ids, [self._values(k, mine) for k in self.keys()], [claim_id])
        at = [r for r, k in zip(mine, keep) if k]
        return self.rows_at(at), at

    def rows_at(self, rows: list) -> HeldRows:
        """The held columns at input rows ``rows``."""
        return HeldRows({c["name"]: HeldColumn(c["kind"], self._values(c["name"], rows),
                                               c["scale"])
                         for c in self.meta["columns"]}, len(rows))

    def _values(self, name: str, rows: list) -> list:
        """Column ``name``'s values at ``rows`` (None for a null): text as str, a date as int
        days, a decimal as its unscaled integer."""
        c = next(c for c in self.meta["columns"] if c["name"] == name)
        stem, kind = c["file"], c["kind"]
        if kind == TEXT_KIND:
            off, blob = self._array(f"{stem}.values", c["code"]), self._blob(f"{stem}.text")
            out = [blob[off[r]:off[r + 1]].decode("utf-8") for r in rows]
        elif kind == DECIMAL_KIND:
            words, w = self._blob(f"{stem}.values"), c["width"]
            out = [int.from_bytes(words[r * w:(r + 1) * w], "little", signed=True)
                   for r in rows]
        else:
            values = self._array(f"{stem}.values", c["code"])
            out = [bool(values[r]) for r in rows] if kind == BOOL_KIND else \
                [values[r] for r in rows]
        if c["nulls"]:
            valid = self._array(f"{stem}.valid", "B")
            out = [v if valid[r] else None for v, r in zip(out, rows)]
        return out

    def _blob(self, name: str):
        """The file ``name`` as bytes read on demand (``mmap``: slicing copies only the
        slice)."""
        if name not in self._maps:
            path = self.folder / name
            if path.stat().st_size == 0:
                self._maps[name] = b""
            else:
                with open(path, "rb") as f:
                    self._maps[name] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self._maps[name]

    # -- the rows as Arrow (the scan's layout), for what reads them through Arrow

    def key_mates(self, claim_id: str) -> tuple:
        """``held_rows`` as a pyarrow Table of the held columns (their types as the run read
        them, in the one layout), and the input rows."""
        held, at = self.held_rows(claim_id)
        return self.arrow_table(held), at

    def arrow_table(self, held: HeldRows):
        """``held`` as a pyarrow Table (``schema.arrow``: the run's types)."""
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401 (pa.ipc: not imported by pyarrow itself)
        schema = pa.ipc.read_schema(pa.py_buffer((self.folder / "schema.arrow").read_bytes()))
        return pa.Table.from_arrays([_arrow_column(held.columns[f.name], f.type)
                                     for f in schema], schema=schema)


def _upper16(h: int) -> int:
    return h >> 48


def _arrow_column(col: HeldColumn, t):
    import pyarrow as pa
    if col.kind == DATE_KIND:  # from the days: a day beyond datetime.date's years is kept
        return pa.array(col.values, pa.int32()).cast(t)
    return pa.array([col.raw(i) for i in range(len(col.values))], t)


def closure(ids: list, keys: list, claim_ids) -> list:
    """``key_mates.closure_mask`` in pure Python: True at the rows whose claim id (as text)
    is one of ``claim_ids``, at every row sharing a value of one of the ``keys`` columns
    (lists of values, None for a null: a null links nothing) with them, transitively, and at
    every row sharing a claim id with those."""
    asked_ids = {str(c) for c in claim_ids}
    texts = [None if v is None else str(v) for v in ids]
    asked = [t is not None and t in asked_ids for t in texts]
    mine, found = asked, None
    while True:  # grow to the key-mates' closure: a few rounds at most
        now = [{v for v, m in zip(col, mine) if m and v is not None} for col in keys]
        if found is not None and all(len(a) == len(b) for a, b in zip(now, found)):
            break  # no new key value (the sets only grow): mine is closed
        found = now
        mine = [a or any(col[i] is not None and col[i] in values
                         for col, values in zip(keys, found))
                for i, a in enumerate(asked)]
    mine_ids = {t for t, m in zip(texts, mine) if m and t is not None}
    return [t is not None and t in mine_ids for t in texts]

"""Pass 1 of the partitioned mode: every input row, tagged with its row number and bucket,
spilled to the Arrow IPC stream of its partition (a range of buckets), and the
checks that need the whole input (claim ids seen twice across partitions; a person under one
partition key)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from .arrow_io import ClaimsError, column_difference, normal_table, normal_type
from .partition import PartitionError, hash_strings, partition_key
from .plan import PERSON, Plan
from . import timeline

# Rows buffered per partition before a spill write. The buffered pieces are slices of their
# batch's copy sorted by partition, which stays allocated until every one of them is
# written: at 2^16 rows a 23-partition run (50M under 4G: ~11k rows per partition a batch)
# held six batches' copies and freed them together, and the allocator purged and faulted
# them in again. At 2^14 (issue 14, s19; 10M in 23 partitions, 3 alternating rounds, load
# 4-5) system CPU 1.95-2.20 → 1.76-1.92 s, minor faults 418-437k → 358-396k, peak RSS
# 547-593 → 479-483 MB, user CPU the same.
SPILL_FLUSH = 1 << 14
# Arrow IPC files with lz4-compressed buffers (issue 14, r14; 1M generated claims, the
# columns a reference run reads plus the three tags, CPU of all threads, best of 3): write
# 0.25 s, read back 0.10 s, 67 MB; Parquet lz4 without dictionaries (before) 0.54 s, 0.53 s,
# 47 MB; IPC uncompressed 0.07 s, 0.03 s, 114 MB; IPC zstd 0.43 s, 0.20 s, 39 MB. The spill is
# written and read once by this process, so nothing is gained by Parquet's encodings; lz4
# kept it near Parquet's size (≈ 3.4 GB for 50M such claims) at a third of the CPU.
# Since issue 14's s17 uncompressed (1M claims, CPU, loaded machine: write 0.04 s, read
# 0.015 s, 107 MB, against lz4's 0.21 s and 0.06 s, 69 MB): pass 1's main thread is its
# critical path, and at 50M its CPU went 19.0 → 11.1 s with the radix sort of ``add``, for
# disk bytes the page cache absorbs here (during a 50M run the whole disk read back ≈ 0.6 GB).
SPILL_OPTIONS = ipc.IpcWriteOptions(compression=None)
# Text the input holds as dictionary codes (Parquet's dictionary pages: the reference
# claims' tier and setting, 23 of 107 bytes a claim decoded) is spilled as its codes and
# decoded when the partition is read back, on pass 2's read thread (issue 14, s19): pass 1
# neither decodes it nor sorts and writes the strings. Each batch brings dictionaries of its
# own, which an IPC *file* refuses (one dictionary per field), so the spill is an IPC
# *stream* (a dictionary may be replaced from one batch to the next), read back whole.
SPILL_CODES = pa.dictionary(pa.int32(), pa.string())


class Spill:
    """Pass 1's output: one Arrow IPC stream per partition, written in buffered chunks (each
    flush one or more record batches, read back in the order written)."""

    def __init__(self, folder: Path, count: int, budget: int = None):
        self.folder, self.count = folder, count
        self.budget = budget  # bytes all buffers may hold together (None: no bound)
        folder.mkdir(parents=True, exist_ok=True)
        self.buffers = [[] for _ in range(count)]
        self.sizes = [0] * count
        self.buffered = 0  # bytes in all buffers
        self.writers = [None] * count  # (file, IPC writer) of each partition once written

    def path(self, p: int) -> Path:
        return self.folder / f"part-{p:05d}.arrow"

    def add(self, table: pa.Table, part: np.ndarray) -> None:
        # partition numbers are < 4,096: as uint16 the stable sort is numpy's radix sort
        # (262,144 rows: 1.6 ms of CPU against 10 ms for int32's merge sort), the same order
        order = np.argsort(part.astype(np.uint16), kind="stable")
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
        with timeline.stage("spill write"):
            self._write(p)

    def _write(self, p: int) -> None:
        table = pa.concat_tables(self.buffers[p])
        if self.writers[p] is None:
            sink = pa.OSFile(str(self.path(p)), "wb")
            self.writers[p] = (sink, ipc.new_stream(sink, table.schema, options=SPILL_OPTIONS))
        self.writers[p][1].write_table(table)
        self.buffered -= sum(piece.nbytes for piece in self.buffers[p])
        self.buffers[p], self.sizes[p] = [], 0

    def close(self) -> None:
        for p in range(self.count):
            if self.sizes[p]:
                self._flush(p)
            if self.writers[p] is not None:
                sink, writer = self.writers[p]
                writer.close()
                sink.close()

    def read(self, p: int, columns=None, coded: bool = False):
        """Partition ``p``'s rows in the order spilled, only ``columns`` (None: all), or None
        for a partition no row went to; in the one column layout (the codes decoded:
        ``SPILL_CODES``) unless ``coded`` (text spilled as codes stays so: a settlement's
        ``prepare`` codes what only its checks read from the dictionaries, and decodes the
        rest)."""
        path = self.path(p)
        if not path.exists():
            return None
        with pa.OSFile(str(path), "rb") as source:  # read, not mapped: the heap is what counts
            if columns is None:
                table = ipc.open_stream(source).read_all()
                return table if coded else normal_table(table, codes=False)
            # only the columns' buffers are kept (in the file's column order)
            fields = [self.schema(p).get_field_index(c) for c in columns]
            options = ipc.IpcReadOptions(included_fields=fields)
            table = ipc.open_stream(source, options=options).read_all().select(columns)
            return normal_table(table, codes=False)

    def schema(self, p: int) -> pa.Schema:
        with pa.OSFile(str(self.path(p)), "rb") as source:
            return ipc.open_stream(source).schema


def spill_layout(table: pa.Table, coded=None) -> pa.Table:
    """A read batch as pass 1 spills it: the text columns named in ``coded`` as
    ``SPILL_CODES`` dictionary codes (encoded here if the batch holds them as text or other
    codes), every other column in the one layout (``normal_table``), as are the claim id and
    the person, which pass 1 hashes. ``coded`` None: the columns this batch holds as
    ``SPILL_CODES``. A run passes the same ``coded`` for every batch (``spill_columns``), so
    every batch of a partition's stream has one schema whatever layout each batch came in."""
    if coded is None:
        coded = spilled_codes([table.schema])
    coded = [name for name in coded if name not in ("claim_id", "person_id")]
    for name in coded:
        i = table.schema.get_field_index(name)
        if i >= 0 and table.schema.field(i).type != SPILL_CODES:
            table = table.set_column(i, name, _as_spill_codes(table.column(i)))
    return normal_table(table, coded, codes=False)


def _as_spill_codes(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column (plain, or codes of another dictionary type) as ``SPILL_CODES``."""
    plain = normal_table(pa.table({"c": column}), codes=False).column(0)
    return pc.dictionary_encode(plain).cast(SPILL_CODES)


def spill_columns(first: pa.Table, table: pa.Table, k: int) -> pa.Table:
    """Batch ``k`` (0-based) of a stream with the first batch's columns, in their order and
    (after ``normal_table``) their types: pass 1 spills every batch into the same streams.
    An integer column narrower or wider than the first batch's is cast to it, value by value
    checked (integers mean the same in any width: fen, days, counts). Any other change of
    type is refused, never cast: money as integer fen in one batch and decimal yuan in the
    next would be cast 100× off. A batch with other columns, another type, or a value its
    type cannot hold is an error that says which batch and column, not a failed
    concatenation."""
    names = first.schema.names
    missing, extra = column_difference(table.schema.names, names)
    if missing or extra:
        raise ClaimsError(
            f"batch {k + 1} of the claims has other columns than the first batch "
            f"(missing: {', '.join(missing) or 'none'}; not in the first: "
            f"{', '.join(extra) or 'none'}): every batch of one run must have the same columns")
    if table.schema.names != names:
        table = table.select(names)
    for i, (want, got) in enumerate(zip(first.schema, table.schema)):
        if normal_type(got.type) != normal_type(want.type):
            table = table.set_column(i, want.name, _cast(table.column(i), want, got, k))
    return table


def _cast(column: pa.ChunkedArray, want: pa.Field, got: pa.Field, k: int) -> pa.ChunkedArray:
    said = (f"batch {k + 1} of the claims: column {want.name!r} is {got.type} where the first "
            f"batch's is {want.type}")
    if not (pa.types.is_integer(want.type) and pa.types.is_integer(got.type)):
        raise ClaimsError(f"{said}: give every batch of one run the same column types")
    try:
        return column.cast(want.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ClaimsError(f"{said}, and it cannot be read as that ({exc}): give every batch "
                          "of one run the same column types") from None


def spilled_codes(schemas) -> list:
    """The columns pass 1 may spill as codes: those every input file holds as ``SPILL_CODES``.
    A partition's stream has one schema, so a column one file holds as codes and another as
    text (extracts written by different tools) is decoded from every file."""
    names = [f.name for f in schemas[0] if f.type == SPILL_CODES] if schemas else []
    return [name for name in names if all(
        name in schema.names and schema.field(name).type == SPILL_CODES for schema in schemas)]


class KeyCheck:
    """Global checks over pass 1: claim-id hashes (duplicates across partitions) and, when the
    partition key is wider than the person, that every person stays in one bucket."""

    def __init__(self, plan: Plan):
        self.wide = partition_key(plan).name != PERSON.name
        self.claims: list = []  # (hashes grouped by top byte, group bounds) of each batch
        self.persons: list = []

    def add(self, table: pa.Table, bucket: np.ndarray, claim_hash: np.ndarray) -> None:
        valid = np.asarray(pc.is_valid(table.column("claim_id")).to_numpy(
            zero_copy_only=False), dtype=bool)
        self.claims.append(_by_top_byte(claim_hash[valid]))
        if self.wide:
            ph = hash_strings(table.column("person_id"))
            pairs = np.unique(np.stack([ph, bucket.astype(np.uint64)], axis=1), axis=0)
            self.persons.append(pairs)

    def candidate_hashes(self) -> np.ndarray:
        """Claim-id hashes seen more than once, sorted (the ids themselves are compared
        later): group by group of ``_by_top_byte``, a hash's copies all in its group."""
        groups = [_repeated(np.concatenate([h[b[g]:b[g + 1]] for h, b in self.claims]))
                  for g in range(HASH_GROUPS)] if self.claims else []
        self.claims = []
        return np.concatenate(groups) if groups else np.zeros(0, np.uint64)

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


# Pass 1 keeps every claim-id hash for the duplicate check between the passes (50M at 50M
# claims). Grouped by their top byte as each batch comes (a radix sort of 8-bit keys, ≈ 3 ms
# per 2^18 hashes), they are sorted group by group at the end: 256 sorts of arrays that fit
# the cache instead of one of the whole, and no whole-input copy of fresh pages (issue 14,
# s19; 10M hashes in 40 batches: 0.70 s of CPU → 0.12 s in pass 1 + 0.39 s between passes).
HASH_GROUPS = 256


def _by_top_byte(hashes: np.ndarray) -> tuple:
    """(``hashes`` grouped by their top byte, the ``HASH_GROUPS + 1`` bounds of the groups)."""
    top = (hashes >> np.uint64(56)).astype(np.uint8)
    order = np.argsort(top, kind="stable")
    return hashes[order], np.searchsorted(top[order], np.arange(HASH_GROUPS + 1))


def _repeated(hashes: np.ndarray) -> np.ndarray:
    """The values occurring more than once in ``hashes`` (sorted in place), sorted, once."""
    hashes.sort()
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def duplicate_ids(spill: Spill, candidates: np.ndarray) -> pa.Array:
    """Claim ids (strings) occurring more than once in the whole input."""
    if len(candidates) == 0:
        return pa.array([], pa.string())
    found = []
    for p in range(spill.count):
        t = spill.read(p, ["claim_id"])
        if t is not None:  # the hashes again (not spilled: most runs have no candidates)
            hit = pc.is_in(pa.array(hash_strings(t.column("claim_id"))),
                           value_set=pa.array(candidates))
            found.append(t.column("claim_id").filter(hit))
    ids = pa.chunked_array(found, pa.string()).combine_chunks() if found else \
        pa.array([], pa.string())
    counts = pc.value_counts(ids)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# every file a run may publish, in publication order (the manifest last); the provider
# payment files only for a plan with a provider part
PROVIDER_OUTPUTS = ("hospitals.parquet", "pools.parquet")
TABLE_OUTPUTS = ("claims.parquet", "rejects.parquet") + PROVIDER_OUTPUTS
OUTPUTS = TABLE_OUTPUTS + ("summary.json", "manifest.json")
STAGING = ".yibao-run"  # a run's working folder inside the output folder
ROW_GROUP = 1 << 20  # rows per Parquet row group in the outputs, whatever the engine
# The rest of the output layout, fixed here rather than left to pyarrow's defaults (which may
# change between versions): page boundaries must follow the rows, never the write batches.
WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": True,
    "data_page_size": 1 << 20,
    "dictionary_pagesize_limit": 1 << 20,
    "write_batch_size": 1024,
    "data_page_version": "1.0",
    "write_statistics": True,
}


def exact_sum(values) -> int:
    """Σ of int64 values as a Python int, exact even where an int64 sum would overflow."""
    a = np.asarray(values, dtype=np.int64)
    if a.size == 0:
        return 0
    hi = int(np.sum(a >> 32, dtype=np.int64))
    lo = int(np.sum(a & 0xFFFFFFFF, dtype=np.int64))
    return (hi << 32) + lo


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


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 23), b""):
            h.update(chunk)
    return h.hexdigest()


class ParquetOut:
    """A Parquet file written in row groups of exactly ``ROW_GROUP`` rows (the last one
    shorter), however the tables arrive, so the same rows give the same bytes whatever the
    batching. Each row group is written from ONE contiguous table (its chunks combined):
    pyarrow ends a data page at every chunk boundary, so writing the pieces as they arrived
    would put page boundaries — and so the bytes — where the batches happened to end.
    Written to ``path`` (a staging name) and closed by ``close()``."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = Path(path), schema
        self.writer = pq.ParquetWriter(str(path), schema, **WRITE_OPTIONS)
        self.pending: list = []
        self.count = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table.cast(self.schema))
        self.count += table.num_rows
        self.rows += table.num_rows
        while self.count >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n: int) -> None:
        buffered = pa.concat_tables(self.pending)
        group = buffered.slice(0, n).combine_chunks()
        self.writer.write_table(group, row_group_size=ROW_GROUP)
        rest = buffered.slice(n)
        self.pending, self.count = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> None:
        if self.count:
            self._flush(self.count)
        self.writer.close()


class OutputFolder:
    """The output folder of a run: refuses existing results unless ``overwrite``, stages every
    file under ``.yibao-run/`` and publishes them by rename when the run is complete. A staging
    folder left by a killed run is removed at the next start."""

    def __init__(self, out_dir, overwrite: bool = False):
        self.root = Path(out_dir)
        existing = [n for n in OUTPUTS if (self.root / n).exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{self.root} already holds results ({', '.join(existing)}); "
                                  "pass --overwrite to replace them")
        self.root.mkdir(parents=True, exist_ok=True)
        self.staging = self.root / STAGING
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir()
        self.spill = self.staging / "spill"
        for name in existing:
            (self.root / name).unlink()

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
        """Rename the staged outputs into place (manifest last), then drop the staging folder."""
        for name in OUTPUTS:
            staged = self.stage(name)
            if staged.exists():
                with open(staged, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(staged, self.root / name)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def plugin_versions(registry) -> list:
    """[{name, version}] of every plugin that contributed to ``registry``."""
    from importlib import metadata
    from . import __version__
    names = set()
    for group in (registry.functions.values(), registry.keys.values(), registry.validators,
                  registry.stages):
        names.update(getattr(item, "plugin", "yibao") for item in group)
    dists = {}
    try:
        for ep in metadata.entry_points(group="yibao.plugins"):
            dists[ep.name] = ep.dist.version if ep.dist else None
    except Exception:  # a broken environment must not stop a settlement run
        pass
    return [{"name": n, "version": dists.get(n) or __version__} for n in sorted(names)]


def policy_files(path) -> dict:
    """{relative path: sha256} of the policy file, or of every file in a policy folder."""
    if path is None:
        return {}
    path = Path(path)
    if path.is_file():
        return {path.name: sha256_file(path)}
    return {p.relative_to(path).as_posix(): sha256_file(p)
            for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}

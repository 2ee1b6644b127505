"""The I/O floor of a Parquet → Parquet command: what any pyarrow-based program pays to read
the columns a run reads and write the files a run writes, with the same settings, in a fresh
process — interpreter start, ``import pyarrow.parquet``, the reads, the writes; nothing else.

Issue 14 asks that where a target is missed, the table says what bounds it. A command that
reads and writes through pyarrow cannot take less than this floor, so ``peer seconds /
floor seconds`` is the best ratio such a command can reach on this machine: when it is below
the target, the target is out of reach of the I/O stack, whatever the settlement costs.

The outputs to write are the files the yibao run just wrote: the floor process loads them
first (not timed: measured inside the process and subtracted) and writes them again with
``manifest.write_options`` of their schema, one row group per ``ROW_GROUP`` rows as the
run does. Reading uses ``pq.read_table(columns=…)``, as ``core/sources.py`` does (Arrow's
threads on).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROW_GROUP = 1 << 17  # core/engine.py writes results in pieces of 2^17 rows

SCRIPT = r"""
import json, sys, time
import pyarrow.parquet as pq
job = json.loads(sys.argv[1])
loaded = time.perf_counter()
outputs = [(pq.read_table(src), dst, options) for src, dst, options in job["outputs"]]
untimed = time.perf_counter() - loaded
read = time.perf_counter()
for path in job["inputs"]:
    pq.read_table(path, columns=job["columns"])
read = time.perf_counter() - read
write = time.perf_counter()
for table, dst, options in outputs:
    with pq.ParquetWriter(dst, table.schema, **options) as w:
        for batch in table.to_batches(max_chunksize=job["row_group"]):
            w.write_batch(batch)
write = time.perf_counter() - write
print(json.dumps({"untimed_s": untimed, "read_s": read, "write_s": write}))
"""


def io_floor(inputs: list, columns, outputs: list, rounds: int = 2) -> dict:
    """Best of ``rounds`` floor processes: ``seconds`` (whole process minus the untimed load
    of the outputs), and inside it ``read_s`` and ``write_s``; ``start_s`` is the rest
    (interpreter start and ``import pyarrow.parquet``)."""
    import pyarrow.parquet as pq
    from yibao.core.manifest import write_options
    with tempfile.TemporaryDirectory(prefix="yibao-floor-") as tmp:
        job = {"inputs": [str(p) for p in inputs], "columns": columns, "row_group": ROW_GROUP,
               "outputs": [(str(p), str(Path(tmp) / f"{k}.parquet"),
                            write_options(pq.read_schema(p)))
                           for k, p in enumerate(outputs)]}
        best = None
        for _ in range(rounds):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(job)],
                                  capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            parts = json.loads(done.stdout.strip().splitlines()[-1])
            seconds = wall - parts["untimed_s"]
            if best is None or seconds < best["seconds"]:
                best = {"seconds": seconds, "read_s": parts["read_s"],
                        "write_s": parts["write_s"],
                        "start_s": seconds - parts["read_s"] - parts["write_s"]}
    return best


def settle_columns(policy: Path) -> list:
    """The claim columns ``yibao settle`` reads under ``policy`` (core/sources.read_columns)."""
    from yibao.core.sources import read_columns
    from yibao.dsl.commands._common import registry
    from yibao.dsl.commands._policies import load_policy
    reg = registry(str(policy))
    return read_columns(load_policy(str(policy), reg), reg)


def parquet_files(folder: Path) -> list:
    return sorted(Path(folder).glob("*.parquet"))

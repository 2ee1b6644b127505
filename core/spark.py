"""The Spark engine: the same plan and kernel, partitioned by Spark (PySpark 4).

The job, for claim files read by ``spark.read.parquet``:

1. ``mapInArrow(annotate)``: each row gets its input row number (the file's offset in the
   sorted file list + Spark's ``_metadata.row_index``) and its bucket (core/partition.py);
2. duplicate claim ids over the whole input: ``groupBy(claim_id).count() > 1``, joined back;
3. ``repartition(N, _bucket)`` + ``sortWithinPartitions(_bucket, discharge_date, claim_id)``
   + ``mapInArrow(settle)``, which runs ``piece.settle_piece`` (the local engine's code) on
   each partition: a partition holds whole buckets, so every accumulator group is complete;
   for a plan with a provider part it also sums the partition's provider payment
   (``provider.provider_partials``, sent as JSON on the partition's totals row);
4. the driver collects the settled rows and the rejects and writes them in the local engine's
   order: results by (bucket, position within the bucket), rejects by input row; the
   partitions' provider sums are merged into the run's ``ProviderYear`` (the runner writes
   hospitals.parquet and pools.parquet from it, as for the local engine).

Step 4 collects to the driver, which suits a run whose results fit the driver's memory; at
cluster scale the same job writes each partition's output with ``DataFrame.write`` instead
(docs/scale.md).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, decimal_fen, fen_sum, normal_table
from .engine import settle
from .manifest import ParquetOut
from .partition import buckets
from .policy import Policy
from .provider import partials_from_json, partials_to_json, provider_partials
from .settlement import AsWritten

HELPERS = ("_row", "_bucket", "_dup")


def session(master=None, partitions=8):
    """A SparkSession (``local[N]`` with N = the machine's cores unless ``master`` is given)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ImportError("the spark engine needs PySpark 4: pip install 'pyspark>=4'") from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    master = master or os.environ.get("YIBAO_SPARK_MASTER") or f"local[{os.cpu_count() or 1}]"
    return (SparkSession.builder.master(master).appName("yibao settle")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(partitions))
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


def _local_path(uri: str) -> str:
    return str(Path(unquote(urlparse(uri).path)).resolve())


def _annotate(plan, offsets):
    """mapInArrow function: add _row and _bucket, drop Spark's file columns."""
    def fn(batches):
        for batch in batches:
            t = pa.Table.from_batches([batch])
            files = t.column("_file").to_pylist()
            base = np.array([offsets[_local_path(f)] for f in files], dtype=np.int64)
            rows = base + np.asarray(t.column("_ri").to_numpy(), dtype=np.int64)
            t = t.drop_columns(["_file", "_ri"])
            t = t.append_column("_row", pa.array(rows)).append_column(
                "_bucket", pa.array(buckets(plan, t)))
            yield from t.to_batches()
    return fn


def _out_schema(result_schema: pa.Schema) -> pa.Schema:
    fields = [pa.field("_kind", pa.string()), pa.field("_bucket", pa.int32()),
              pa.field("_seq", pa.int64()), pa.field("_fen", pa.int64()),
              pa.field("_partials", pa.string())]
    fields += [pa.field(f"c_{f.name}", f.type) for f in result_schema]
    fields += [pa.field(f"r_{f.name}", f.type) for f in REJECT_SCHEMA]
    return pa.schema(fields)


def _settle(plan, registry, context, out_schema):
    """mapInArrow function: settle one partition with the local engine's code."""
    from .piece import duplicate_rejects, settle_piece

    def fn(batches):
        batches = list(batches)
        if not batches or sum(b.num_rows for b in batches) == 0:
            return
        t = pa.Table.from_batches(batches)
        rows = np.asarray(t.column("_row").to_numpy(), dtype=np.int64)
        bucket = np.asarray(t.column("_bucket").to_numpy(), dtype=np.int32)
        dup = np.asarray(pc.fill_null(t.column("_dup"), False).to_numpy(zero_copy_only=False),
                         dtype=bool)
        t = normal_table(t.drop_columns(list(HELPERS)))  # Spark's Arrow types -> yibao's
        ids = pc.unique(t.column("claim_id").filter(pa.array(dup)))
        _, dup_rejects, _ = duplicate_rejects(t, rows, ids.cast(pa.string()))
        keep = np.flatnonzero(~dup)
        t_all_total = t.column("total")
        t, rows, bucket = t.take(pa.array(keep)), rows[keep], bucket[keep]
        results, rejects, fen, at = settle_piece(plan, t, rows, bucket, registry, context)
        dup_fen = fen_sum(t_all_total.take(pa.array(np.flatnonzero(dup))))
        partials = (partials_to_json(provider_partials(plan, t, results, at))
                    if plan.provider is not None and results.num_rows else None)
        yield _pack(out_schema, results, pa.concat_tables([dup_rejects, rejects]),
                    fen + dup_fen, t, bucket, partials)
    return fn


def _pack(schema, results, rejects, fen, claims, bucket, partials=None) -> pa.RecordBatch:
    """One output batch: the results (kind c), the rejects (kind r), other side null, then
    one row (kind t) whose ``_fen`` is the fen of the partition's rejected rows and whose
    ``_partials`` its provider-payment sums (JSON, null without a provider part)."""
    n, m = results.num_rows, rejects.num_rows + 1
    rejects = pa.concat_tables([rejects, REJECT_SCHEMA.empty_table()])
    claim_id = claims.column("claim_id").combine_chunks().cast(pa.string())
    pos = np.asarray(pc.index_in(results.column("claim_id"), value_set=claim_id)
                     .to_numpy(zero_copy_only=False), dtype=np.int64)
    cols = {"_kind": pa.array(["c"] * n + ["r"] * (m - 1) + ["t"], pa.string()),
            "_bucket": pa.array(np.concatenate([bucket[pos], np.zeros(m, np.int32)])
                                .astype(np.int32)),
            "_seq": pa.array(np.arange(n + m, dtype=np.int64)),
            "_fen": pa.array([0] * (n + m - 1) + [fen], pa.int64()),
            "_partials": pa.array([None] * (n + m - 1) + [partials], pa.string())}
    for f in schema:
        if f.name.startswith("c_"):
            cols[f.name] = pa.concat_arrays([results.column(f.name[2:]).combine_chunks()
                                             .cast(f.type), pa.nulls(m, f.type)])
        elif f.name.startswith("r_"):
            cols[f.name] = pa.concat_arrays([pa.nulls(n, f.type), rejects.column(f.name[2:])
                                             .combine_chunks().cast(f.type), pa.nulls(1, f.type)])
    return pa.RecordBatch.from_pydict(cols, schema=schema)


def settle_spark(plan, sources, out, totals, registry, context, partitions=None,
                 master=None, year=None, shape=None) -> int:
    """Run the Spark job over ``sources`` (sources.Source, Parquet only), write the staged
    claims and rejects of ``out``, fill ``totals`` and merge every partition's provider sums
    into ``year`` (a ``provider.ProviderYear``, if given). ``shape`` (runner.claims_shape)
    turns the results into what claims.parquet holds. Returns the number of partitions."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema
    if any(s.ipc for s in sources):
        from .sources import InputError
        raise InputError("the spark engine reads Parquet files only")
    count = partitions or 2 * (os.cpu_count() or 1)
    spark = session(master, count)
    spark.sparkContext.setLogLevel("ERROR")
    offsets, at = {}, 0
    for s in sources:
        offsets[str(s.path.resolve())] = at
        at += s.rows
    df = spark.read.parquet(*[str(s.path.resolve()) for s in sources]).select(
        "*", F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.row_index").alias("_ri"))
    annotated = df.mapInArrow(_annotate(plan, offsets), _annotated_schema(df))
    dups = (annotated.where(F.col("claim_id").isNotNull()).groupBy("claim_id").count()
            .where(F.col("count") > 1).select("claim_id", F.lit(True).alias("_dup")))
    joined = annotated.join(dups, on="claim_id", how="left")
    result_schema = settle(plan, sources[0].schema.empty_table(), registry,
                           context).results.schema
    schema = _out_schema(result_schema)
    settled = (joined.repartition(count, "_bucket")
               .sortWithinPartitions("_bucket", "discharge_date", "claim_id")
               .mapInArrow(_settle(plan, registry, context, schema), from_arrow_schema(schema)))
    _input_totals(annotated, totals)
    _collect(settled.toArrow(), result_schema, plan, out, totals, year, shape)
    return count


def _annotated_schema(df):
    """``df``'s columns without Spark's file columns, plus _row and _bucket."""
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType
    fields = [f for f in df.schema.fields if f.name not in ("_file", "_ri")]
    return StructType(fields + [StructField("_row", LongType(), False),
                                StructField("_bucket", IntegerType(), False)])


def _input_totals(df, totals) -> None:
    from decimal import Decimal
    from pyspark.sql import functions as F
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum("total").alias("s")).collect()[0]
    total = row["s"] or 0
    totals.input_rows += int(row["n"])
    # exact: Decimal * 100 would round beyond the default context's 28 digits
    totals.input_fen += decimal_fen(total) if isinstance(total, Decimal) else int(total)


def _collect(table: pa.Table, result_schema, plan, out, totals, year=None,
             shape=None) -> None:
    kind = table.column("_kind")
    res = table.filter(pc.equal(kind, "c"))
    res = res.take(pc.sort_indices(res, sort_keys=[("_bucket", "ascending"),
                                                   ("_seq", "ascending")]))
    results = pa.table({f.name: res.column(f"c_{f.name}") for f in result_schema},
                       schema=result_schema)
    rej = table.filter(pc.equal(kind, "r"))
    rej = rej.take(pc.sort_indices(rej, sort_keys=[("r_row", "ascending")]))
    rejects = pa.table({f.name: rej.column(f"r_{f.name}") for f in REJECT_SCHEMA},
                       schema=REJECT_SCHEMA)
    totals.add_results(results, [layer.name for layer in plan.layers])
    partition_rows = table.filter(pc.equal(kind, "t"))
    totals.add_rejects(rejects, sum(partition_rows.column("_fen").to_pylist()))
    for text in partition_rows.column("_partials").to_pylist():
        if text is not None and year is not None:
            year.merge(partials_from_json(text))
    # no shape given: as the local engine writes them
    results = (shape or AsWritten(Policy.of(plan).versions))(results)
    for name, data, schema in (("claims.parquet", results, results.schema),
                               ("rejects.parquet", rejects, REJECT_SCHEMA)):
        writer = ParquetOut(out.stage(name), schema)
        writer.write(data)
        writer.close()

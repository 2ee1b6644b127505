"""The claims' row checks and conversions as they were before the fused Cython pass
(core/_ingest.pyx): one pyarrow/numpy pass per column per check. Kept as a plain oracle that
the fused ``arrow_io.prepare`` must equal (tests/batch/test_ingest_fused.py): the same rejects
(row, claim id, reason, message, in the same order) and the same engine values per column.

Only the batch-level refusals (``_check_columns``, ``_check_type``), the layout
(``as_table``) and the reject messages are borrowed from arrow_io: they are not what the fused
pass replaced."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core import _ids
from yibao.core.arrow_io import (MONEY_COLUMNS, _check_columns, _check_type, _reject_rows,
                                 as_table)
from yibao.core.plan import BOOL, DATE, MONEY, TEXT, Plan, Type

INT64_MAX = 2**63 - 1


def reference_prepare(plan: Plan, claims) -> tuple:
    """(rejects [(row, claim_id, reason, message)], accepted input rows, {name: engine column
    over the accepted rows, int64 / bool numpy or a pa.Array for open text})."""
    table = as_table(claims)
    _check_columns(plan, table)
    if "total" in table.column_names:
        _check_type("total", Type(MONEY), table.schema.field("total").type)
    converted, beyond = _converted_columns(plan, table)
    rejected = np.zeros(table.num_rows, dtype=bool)
    rejects = []
    for reason, mask, column in _row_checks(plan, table, converted, beyond):
        new = mask & ~rejected
        if new.any():
            rejects.extend(_reject_rows(table, np.flatnonzero(new), reason, column))
            rejected |= new
    rows = np.flatnonzero(~rejected).astype(np.int64)
    columns = {k: (v[rows] if isinstance(v, np.ndarray) else v.take(pa.array(rows)))
               for k, v in converted.items()}
    return rejects, rows, columns


def money_fen(arr) -> tuple:
    arr = _one_chunk(arr)
    if not pa.types.is_decimal(arr.type):
        return _int_numpy(arr, np.int64), np.zeros(len(arr), dtype=bool)
    unscaled, fits = _decimal_unscaled(arr)
    factor = 10 ** (2 - arr.type.scale)
    limit = INT64_MAX // factor
    fits &= (unscaled >= -limit) & (unscaled <= limit)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    keep = fits & valid
    fen = np.where(keep, unscaled, 0) * (np.int64(factor) if limit else np.int64(0))
    return fen.astype(np.int64), valid & ~fits


def _decimal_unscaled(arr: pa.Array) -> tuple:
    n, width, buf = len(arr), arr.type.byte_width, arr.buffers()[1]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    if width == 4:
        values = np.frombuffer(buf, np.int32)[arr.offset:arr.offset + n].astype(np.int64)
        return values, np.ones(n, dtype=bool)
    words = np.frombuffer(buf, np.int64)[arr.offset * (width // 8):]
    words = words[:n * (width // 8)].reshape(n, width // 8)
    low = words[:, 0].copy()
    fits = (words[:, 1:] == (low >> 63)[:, None]).all(axis=1)
    return low, fits


def _one_chunk(arr):
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 0:
            return pa.array([], arr.type)
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


def _int_numpy(arr, dtype) -> np.ndarray:
    arr = pc.fill_null(arr, 0) if arr.null_count else arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def domain_codes(arr, domain: tuple) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    text = pa.types.is_string(t) or pa.types.is_large_string(t)
    values = pa.array([str(v) for v in domain]) if text else pa.array(domain)
    if pa.types.is_dictionary(arr.type):
        dict_codes = pc.index_in(arr.dictionary, value_set=values.cast(arr.dictionary.type))
        return pc.take(dict_codes, arr.indices)
    return pc.index_in(arr, value_set=values.cast(arr.type))


def _engine_column(arr, typ: Type):
    if typ.kind == MONEY:
        return money_fen(arr)[0]
    if typ.kind == BOOL:
        return _int_numpy(pc.cast(arr, pa.int8()), np.int64).astype(bool)
    if typ.kind == DATE:
        return _int_numpy(pc.cast(arr, pa.int32()), np.int64)
    if typ.kind == TEXT and typ.domain is not None:
        return _int_numpy(pc.fill_null(domain_codes(arr, typ.domain), -1), np.int64)
    if typ.kind == TEXT:
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
    return _int_numpy(arr, np.int64)


def _np_bool(arr) -> np.ndarray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _row_checks(plan: Plan, table: pa.Table, converted: dict, beyond: dict):
    claim_id = table.column("claim_id")
    yield "null_claim_id", _np_bool(pc.is_null(claim_id)), "claim_id"
    yield "duplicate_claim_id", _ids.duplicate_mask(claim_id), "claim_id"
    key_columns = {k.column for k in plan.keys()} - {"person_id"}
    for name in [c.name for c in plan.columns if c.name not in key_columns] + ["person_id"]:
        yield "null_value", _np_bool(pc.is_null(table.column(name))), name
    for name, mask in beyond.items():
        yield "amount_out_of_range", mask, name
    for name in MONEY_COLUMNS:
        if name in converted:
            yield "negative_amount", converted[name] < 0, name
    if "in_scope" in converted:
        yield "in_scope_exceeds_total", converted["in_scope"] > converted["total"], "in_scope"
    if "self_first" in converted and "in_scope" in converted:
        yield ("self_first_exceeds_in_scope", converted["self_first"] > converted["in_scope"],
               "self_first")
    for col in plan.columns:
        if col.type.domain is not None:
            nulls = _np_bool(pc.is_null(table.column(col.name)))
            values = converted[col.name]
            outside = (values < 0) if col.type.kind == TEXT else ~np.isin(values, col.type.domain)
            yield "unknown_value", outside & ~nulls, col.name
    days = converted["discharge_date"]
    yield ("outside_policy_period", ~((days >= plan.effective_from) & (days <= plan.effective_to)),
           "discharge_date")


def _converted_columns(plan: Plan, table: pa.Table) -> tuple:
    out, beyond = {}, {}
    types = {c.name: c.type for c in plan.columns}
    types.setdefault("discharge_date", Type(DATE))
    for name in MONEY_COLUMNS:
        if name in table.column_names:
            types.setdefault(name, Type(MONEY))
    for name, typ in types.items():
        if typ.kind == MONEY:
            out[name], beyond[name] = money_fen(table.column(name))
        else:
            out[name] = _engine_column(table.column(name), typ)
    return out, {name: mask for name, mask in beyond.items() if mask.any()}


def text_array(kind: str, values) -> pa.Array:
    """``values`` as one producer's text type: ``string``, ``large_string``, ``string_view``
    or ``dictionary`` (the ingestion tests run every check on each)."""
    arr = pa.array(values, pa.string())
    if kind == "dictionary":
        return arr.dictionary_encode()
    return arr.cast(pa.large_string() if kind == "large_string" else
                    pa.string_view() if kind == "string_view" else pa.string())

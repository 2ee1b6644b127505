"""``group_drg``: the CHS-DRG grouper over Arrow tables (kernel in ``_drg.pyx``).

String work happens once per distinct code: each code column is dictionary-encoded, the
dictionary is looked up against the valid code list with ``pyarrow.compute.index_in``
(vectorised over distinct values), and the per-row ids are a numpy ``take``. The claim loop
then runs on int ids without the GIL.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.grouping import _drg
from yibao.core.grouping.compile import compile_tables
from yibao.core.grouping.tables import STATUSES, DrgTables

NULL_INT = -2147483648   # the kernel's null integer (NULL_INT in _drg.pxd)
CODE_UNKNOWN, CODE_NULL = -1, -2
OUTPUT_SCHEMA = pa.schema([("drg", pa.string()), ("drg_status", pa.string()),
                           ("mdc", pa.string()), ("adrg", pa.string())])
_INT_COLUMNS = {"sex": "sex", "age": "age", "age_days": "age_days", "weight": "birth_weight"}


def _column(table: pa.Table, name: str):
    """A table column as one Array (chunks concatenated), or None when absent."""
    if name not in table.column_names:
        return None
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _code_ids(values: pa.Array, universe: pa.Array) -> np.ndarray:
    """int32 ids of string codes: index in ``universe``; -1 unknown, -2 null."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int32)
    enc = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    dictionary = enc.dictionary.cast(pa.string())
    lookup = pc.index_in(dictionary, value_set=universe).fill_null(CODE_UNKNOWN)
    lookup = np.append(lookup.to_numpy(zero_copy_only=False), CODE_NULL).astype(np.int32)
    # Null codes index the appended CODE_NULL slot.
    idx = enc.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(lookup[idx])


def _list_ids(arr, n: int, universe: pa.Array):
    """(start, end, ids) for a list<string> column; a null list is empty."""
    if arr is None:
        zeros = np.zeros(n, dtype=np.int64)
        return zeros, zeros, np.empty(0, dtype=np.int32)
    offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    start, end = offsets[:-1].copy(), offsets[1:].copy()
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        end[~valid] = start[~valid]
    return start, end, _code_ids(arr.values, universe)


def _int_column(arr, n: int) -> np.ndarray:
    if arr is None:
        return np.full(n, NULL_INT, dtype=np.int32)
    return pc.cast(arr, pa.int32()).fill_null(NULL_INT).to_numpy(zero_copy_only=False)


def _claim_columns(table: pa.Table, comp: dict) -> dict:
    n = table.num_rows
    dx_u, proc_u = comp["dx_universe_arrow"], comp["proc_universe_arrow"]
    pdx = _column(table, "principal_dx")
    if pdx is None:
        raise KeyError("group_drg needs a principal_dx column")
    pdx_ids = _code_ids(pdx, dx_u)
    pdx_ids[pdx_ids == CODE_NULL] = CODE_UNKNOWN     # a null principal dx is invalid
    ss, se, sdx = _list_ids(_column(table, "secondary_dx"), n, dx_u)
    ps, pe, proc = _list_ids(_column(table, "procedures"), n, proc_u)
    cols = {"pdx": np.ascontiguousarray(pdx_ids), "sdx_start": ss, "sdx_end": se, "sdx": sdx,
            "proc_start": ps, "proc_end": pe, "proc": proc}
    for key, name in _INT_COLUMNS.items():
        cols[key] = np.ascontiguousarray(_int_column(_column(table, name), n))
    return cols


def _names(idx: np.ndarray, names: pa.Array) -> pa.Array:
    return pc.take(names, pa.array(idx, mask=idx < 0))


def _compiled_with_arrow(tables, mdc_order) -> dict:
    comp = compile_tables(tables, mdc_order)
    if "dx_universe_arrow" not in comp:      # cached dict: build the Arrow views once
        comp["dx_universe_arrow"] = pa.array(comp["dx_universe"], pa.string())
        comp["proc_universe_arrow"] = pa.array(comp["proc_universe"], pa.string())
        for key in ("mdc", "adrg", "drg"):
            comp[f"{key}_names_arrow"] = pa.array(comp[f"{key}_names"], pa.string())
    return comp


def group_drg(table: pa.Table, tables: DrgTables | None = None, mdc_order=None) -> pa.Table:
    """Group every claim of ``table`` with the CHS-DRG tables (default: 1.1 national).

    Input columns: principal_dx (string), secondary_dx and procedures (list<string>, the
    principal procedure first), sex (int: 1 male, 2 female), age (int years), and optional
    age_days, birth_weight (int, nullable); other columns (los, discharge status …) are
    ignored by the national scheme. Output: one row per input row, columns ``drg`` (null
    unless ``drg_status`` is ``ok``), ``drg_status`` (one of ``tables.STATUSES``), ``mdc``,
    ``adrg``. Never raises for bad codes or values; an empty table gives an empty result.
    """
    comp = _compiled_with_arrow(tables, mdc_order)
    cols = _claim_columns(table, comp)
    status, mdc, adrg, drg = _drg.run(comp, cols)
    return pa.table([_names(drg, comp["drg_names_arrow"]),
                     pc.take(pa.array(STATUSES, pa.string()), pa.array(status)),
                     _names(mdc, comp["mdc_names_arrow"]),
                     _names(adrg, comp["adrg_names_arrow"])], schema=OUTPUT_SCHEMA)

"""``group_drg``: the CHS-DRG grouper over Arrow tables (kernel in ``_drg.pyx``).

Code strings become int ids through a hash index of the valid code list, built once per
compiled tables (``_drg.build_code_index``) and probed once per value without the GIL; a
dictionary column is looked up once per distinct value. The claim loop then runs on int ids
without the GIL, and the output strings are written straight from the resulting ids.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.grouping import _drg
from yibao.core.grouping.compile import compile_tables
from yibao.core.grouping.inputs import int_column, normaliser, sex_column
from yibao.core.grouping.tables import STATUSES, DrgTables

NULL_INT = -2147483648   # the kernel's null integer (NULL_INT in _drg.pxd)
CODE_UNKNOWN, CODE_NULL = -1, -2
# mdc / adrg / drg: only for a grouped claim. drg_status: ok or why not; stopped_at_mdc /
# stopped_at_adrg: where an ungrouped claim stopped (reference.py, step 5).
OUTPUT_SCHEMA = pa.schema([("drg", pa.string()), ("drg_status", pa.string()),
                           ("mdc", pa.string()), ("adrg", pa.string()),
                           ("stopped_at_mdc", pa.string()), ("stopped_at_adrg", pa.string())])
_INT_COLUMNS = {"age": "age", "age_days": "age_days", "weight": "birth_weight"}


def _column(table: pa.Table, name: str):
    """A table column as one Array (chunks concatenated), or None when absent."""
    if name not in table.column_names:
        return None
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def _code_ids(values: pa.Array, universe: pa.Array, index, null_id: int = CODE_NULL) -> np.ndarray:
    """int32 ids of string codes: index in ``universe``; -1 unknown, ``null_id`` null.

    ``index`` is the universe's hash index (``_drg.build_code_index``, built once per
    compiled tables): one probe per value, no per-batch hash table. A dictionary column is
    looked up once per distinct value; without an index ``pc.index_in`` does the work.
    """
    if len(values) == 0:
        return np.empty(0, dtype=np.int32)
    if pa.types.is_dictionary(values.type):
        dictionary = values.dictionary
        lookup = np.append(_code_ids(dictionary, universe, index, CODE_UNKNOWN), null_id)
        idx = values.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(lookup.astype(np.int32)[idx])
    if values.type != pa.string():
        values = values.cast(pa.string())
    if index is not None:
        return _drg.lookup_codes(index, values, null_id)
    ids = pc.index_in(values, value_set=universe).to_numpy(zero_copy_only=False)
    ids = np.where(np.isnan(ids), CODE_UNKNOWN, ids) if ids.dtype.kind == "f" else ids
    ids = ids.astype(np.int32)
    if values.null_count:
        ids[~values.is_valid().to_numpy(zero_copy_only=False)] = null_id
    return ids


def _normalised_ids(values: pa.Array, universe: pa.Array, index, null_id: int,
                    norm) -> np.ndarray:
    """``_code_ids``, then each unknown code looked up once more in its normalised spelling
    (``inputs.CodeNormaliser``: case, spaces, dot, ``x``); no cost when every code is valid."""
    ids = _code_ids(values, universe, index, null_id)
    unknown = np.flatnonzero(ids == CODE_UNKNOWN)
    if len(unknown) == 0:
        return ids
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    odd = values.take(pa.array(unknown)).cast(pa.string())
    distinct = pc.unique(odd)
    fixed = pa.array([norm(v) for v in distinct.to_pylist()], pa.string())
    fixed_ids = _code_ids(fixed, universe, index, CODE_UNKNOWN)
    at = pc.index_in(odd, value_set=distinct, skip_nulls=False)   # a null finds the null
    ids = ids.copy()
    ids[unknown] = fixed_ids[at.to_numpy(zero_copy_only=False).astype(np.int64)]
    return ids


def _list_ids(arr, n: int, universe: pa.Array, index, norm):
    """(start, end, ids) for a list<string> column; a null list is empty."""
    if arr is None:
        zeros = np.zeros(n, dtype=np.int64)
        return zeros, zeros, np.empty(0, dtype=np.int32)
    offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    start, end = offsets[:-1].copy(), offsets[1:].copy()
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        end[~valid] = start[~valid]
    return start, end, _normalised_ids(arr.values, universe, index, CODE_NULL, norm)


def _claim_columns(table: pa.Table, comp: dict) -> dict:
    n = table.num_rows
    dx_u, proc_u = comp["dx_universe_arrow"], comp["proc_universe_arrow"]
    pdx = _column(table, "principal_dx")
    if pdx is None:
        raise KeyError("group_drg needs a principal_dx column")
    dx_ix, proc_ix = comp["dx_index"], comp["proc_index"]
    dx_norm, proc_norm = comp["dx_normaliser"], comp["proc_normaliser"]
    pdx_ids = _normalised_ids(pdx, dx_u, dx_ix, CODE_UNKNOWN, dx_norm)  # null principal: invalid
    ss, se, sdx = _list_ids(_column(table, "secondary_dx"), n, dx_u, dx_ix, dx_norm)
    ps, pe, proc = _list_ids(_column(table, "procedures"), n, proc_u, proc_ix, proc_norm)
    cols = {"pdx": np.ascontiguousarray(pdx_ids), "sdx_start": ss, "sdx_end": se, "sdx": sdx,
            "proc_start": ps, "proc_end": pe, "proc": proc}
    cols["sex"] = np.ascontiguousarray(sex_column(_column(table, "sex"), n, NULL_INT))
    for key, name in _INT_COLUMNS.items():
        cols[key] = np.ascontiguousarray(int_column(_column(table, name), n, NULL_INT))
    return cols


def _names(idx: np.ndarray, names: list) -> pa.Array:
    return _drg.names_from_ids(idx, names)


def _compiled_with_arrow(tables, mdc_order) -> dict:
    comp = compile_tables(tables, mdc_order)
    if "drg_names_arrow" not in comp:   # cached dict: build the Arrow views once (the code
        # indexes come with the compiled arrays, stored on disk with them)
        extra = {"dx_universe_arrow": pa.array(comp["dx_universe"], pa.string()),
                 "proc_universe_arrow": pa.array(comp["proc_universe"], pa.string()),
                 "dx_normaliser": normaliser(frozenset(comp["dx_universe"])),
                 "proc_normaliser": normaliser(frozenset(comp["proc_universe"]))}
        for key in ("mdc", "adrg", "drg"):
            extra[f"{key}_names_arrow"] = pa.array(comp[f"{key}_names"], pa.string())
        comp.update(extra)                # dict.update: the check key lands with the rest
    return comp


def group_drg(table: pa.Table, tables: DrgTables | None = None, mdc_order=None) -> pa.Table:
    """Group every claim of ``table`` with the CHS-DRG tables (default: 1.1 national).

    Input columns: ``inputs.DRG_INPUT_SCHEMA`` (principal_dx; secondary_dx and procedures as
    list<string>, the principal procedure first; sex; age in years; age_days; birth_weight
    in grams), in the types ``inputs`` accepts (sex '1'/'M'/'男'/1 …, nulls, codes in any
    case or spelling it can map without doubt). Absent optional columns are null; other
    columns (los, discharge status …) are ignored by the national scheme.

    Output: one row per input row: ``drg``, ``mdc``, ``adrg`` (null unless ``drg_status``
    is ``ok``), ``drg_status`` (one of ``tables.STATUSES``), ``stopped_at_mdc`` and
    ``stopped_at_adrg`` (where an ungrouped claim stopped; null for a grouped one). Never
    raises for bad codes or values; an empty table gives an empty result.
    """
    comp = _compiled_with_arrow(tables, mdc_order)
    cols = _claim_columns(table, comp)
    status, mdc, adrg, drg = _drg.run(comp, cols)
    grouped = status == 0
    return pa.table([_names(drg, comp["drg_names"]), _names(status, STATUSES),
                     _names(np.where(grouped, mdc, -1), comp["mdc_names"]),
                     _names(np.where(grouped, adrg, -1), comp["adrg_names"]),
                     _names(np.where(grouped, -1, mdc), comp["mdc_names"]),
                     _names(np.where(grouped, -1, adrg), comp["adrg_names"])],
                    schema=OUTPUT_SCHEMA)

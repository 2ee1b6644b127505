"""The decision table's per-batch work makes no full-length copy it does not need (issue 14,
p18: at 1M claims the int64 copies of codes and list offsets and the 2-D stacks were ~40 MB
of fresh memory and ~0.1 s of CPU): codes are their own int32 buffer, list offsets views,
one column's row of the loop's 2-D arrays a view, and the loop writes the 1-based int32
matched row the result carries. What the table answers is unchanged (tests/grouping's
oracle tests; here: the coded loop against ``group_table_reference``)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from yibao.core.generate import generate_claims
from yibao.core.grouping import table as dtable
from yibao.core.grouping._table import first_rows

CSV = """\
group,label,dx_prefix,proc_any,age_lo
G_I_SURG,,I,3*,
G_I_OLD,,I,,65
G_I,,I,,
G_J,,J,,
"""


def _table(tmp_path, default="OTHER"):
    (tmp_path / "dt.csv").write_text(CSV, encoding="utf-8")
    return dtable.load_decision_table_csv(tmp_path / "dt.csv", "dt", default=default)


def _claims():
    claims = generate_claims(3_000, 17)
    dx = claims.column("principal_dx").combine_chunks()
    with_nulls = pa.array([None if i % 97 == 0 else v for i, v in enumerate(dx.to_pylist())])
    return claims.set_column(claims.schema.get_field_index("principal_dx"), "principal_dx",
                             with_nulls)


def test_the_loop_writes_the_one_based_int32_matched_row(tmp_path):
    table, claims = _table(tmp_path), _claims()
    view = dtable._Claims(claims, table)
    conditions, columns = dtable._table_plan(table).compile(view)
    matched = first_rows(conditions, columns, view.n)
    assert matched.dtype == np.int32
    want = dtable.group_table_reference(table, claims).column("dt_row")
    assert matched.tolist() == [0 if r is None else r for r in want.to_pylist()]
    assert (matched == 0).any() and (matched > 0).any()


def test_codes_of_a_dictionary_column_are_its_own_buffer():
    dx = pa.array(["I21", "J18", "I21"]).dictionary_encode()
    dictionary, idx = dtable._encode(dx)
    assert idx.dtype == np.int32 and idx.tolist() == [0, 1, 0]
    assert np.shares_memory(idx, np.frombuffer(dx.indices.buffers()[1], np.int32))
    _, with_null = dtable._encode(pa.array(["I21", None]).dictionary_encode())
    assert with_null.tolist() == [0, 1]  # a null: the slot after the values


def test_one_list_column_is_laid_out_without_copies(tmp_path):
    table, claims = _table(tmp_path), _claims()
    view = dtable._Claims(claims, table)
    dtable._table_plan(table).compile(view)
    start, end, _, _ = view.lists("procedures")
    offsets = np.asarray(start)
    assert np.shares_memory(start, end)  # both views of one int64 copy of the offsets
    assert offsets.flags.c_contiguous


def test_coded_results_with_and_without_a_default(tmp_path):
    claims = _claims()
    for default in ("OTHER", None):
        table = _table(tmp_path, default)
        got = dtable.group_table(table, claims)
        assert got.equals(dtable.group_table_reference(table, claims)), default

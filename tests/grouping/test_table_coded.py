"""A decision table's result as integer codes (``group_table_coded``, what provider payment
reads): the group and status are dictionary arrays over the table's distinct groups and the
statuses, no text built per claim, and they decode to exactly the oracle's columns, with or
without a default, for input columns given as text or as dictionaries."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from yibao.core.grouping.table import (STATUSES, DecisionRow, DecisionTable, DxPrefix,
                                       decoded, group_table, group_table_coded,
                                       group_table_reference, table_groups)

from .test_table_compiled import batch, random_table


def _as_dictionaries(claims: pa.Table) -> pa.Table:
    """The text columns of ``claims`` dictionary-encoded (a Parquet file's categories)."""
    return pa.table({name: pc.dictionary_encode(col) if pa.types.is_string(col.type) else col
                     for name, col in zip(claims.column_names, claims.columns)})


def test_codes_decode_to_the_oracle():
    for seed in range(10):
        table = random_table(30, seed, "OTHER" if seed % 2 else None)
        claims = batch(500, seed)
        want = group_table_reference(table, claims)
        for given in (claims, _as_dictionaries(claims)):
            coded = group_table_coded(table, given)
            assert pa.types.is_dictionary(coded.column("grp").type), seed
            assert pa.types.is_dictionary(coded.column("grp_status").type), seed
            assert decoded(coded).equals(want), seed
            assert group_table(table, given).equals(want), seed


def test_the_codes_index_the_tables_distinct_groups():
    """Rows sharing a group share its code; the default is one more code (or none)."""
    table = DecisionTable("t", "g", (DecisionRow((DxPrefix(("I2",)),), "IHD"),
                                     DecisionRow((DxPrefix(("J",)),), "RESP"),
                                     DecisionRow((DxPrefix(("I",)),), "IHD")), "OTHER")
    groups, of_row = table_groups(table)
    assert groups == ("IHD", "RESP", "OTHER") and of_row.tolist() == [0, 1, 0, 2]
    claims = pa.table({"principal_dx": ["I21", "J18", "I50", "K35", None]})
    coded = group_table_coded(table, claims).column("g").chunk(0)
    assert coded.dictionary.to_pylist() == ["IHD", "RESP", "OTHER"]
    assert coded.indices.to_pylist() == [0, 1, 0, 2, 2]
    status = group_table_coded(table, claims).column("g_status").chunk(0)
    assert status.dictionary.to_pylist() == list(STATUSES)
    no_default = DecisionTable("t", "g", table.rows, None)
    assert table_groups(no_default)[1].tolist() == [0, 1, 0, -1]
    assert group_table_coded(no_default, claims).column("g").to_pylist() == [
        "IHD", "RESP", "IHD", None, None]


def test_an_empty_batch_has_the_columns():
    table = random_table(5, 1, "OTHER")
    claims = batch(0, 1)
    assert decoded(group_table_coded(table, claims)).equals(
        group_table_reference(table, claims))

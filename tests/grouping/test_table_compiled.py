"""The compiled decision-table loop (_table.pyx via table._TablePlan) against the per-claim
oracle on shapes the Hypothesis suites draw rarely: several code and list columns in one
table, ProcAll, null lists and null codes inside lists, int bands open at one end, flags,
values numpy strings cannot hold (the exact fallback), and one compiled table reused across
batches whose distinct codes differ."""
from __future__ import annotations

import random

import pyarrow as pa

from yibao.core.grouping import table as dt
from yibao.core.grouping.table import (DecisionRow, DecisionTable, DxPrefix, DxRange, Flag,
                                       IntBand, NoProcedure, ProcAll, ProcAny, SettingIn,
                                       group_table, group_table_reference)

DX = ["I20", "I21.0", "I21.000", "I25.9", "J18", "J18.900", "K35", "K35.1", "Z50", "A"]
PX = ["36.06", "36.0601", "36.1", "47.0", "47.01", "88.5", "99.0"]
SCHEMA = pa.schema([("principal_dx", pa.string()), ("other_dx", pa.string()),
                    ("procedures", pa.list_(pa.string())), ("tcm", pa.list_(pa.string())),
                    ("setting", pa.string()), ("age", pa.int16()), ("adl", pa.int32()),
                    ("icu", pa.bool_())])


def _maybe(rng, value, null_share=0.15):
    return None if rng.random() < null_share else value


def _codes(rng, pool):
    if rng.random() < 0.1:
        return None
    return [_maybe(rng, rng.choice(pool), 0.1) for _ in range(rng.randint(0, 3))]


def batch(n: int, seed: int, dx=DX) -> pa.Table:
    rng = random.Random(seed)
    rows = [{"principal_dx": _maybe(rng, rng.choice(dx)),
             "other_dx": _maybe(rng, rng.choice(dx), 0.4),
             "procedures": _codes(rng, PX), "tcm": _codes(rng, ["T1", "T2", "T3.1"]),
             "setting": _maybe(rng, rng.choice(["inpatient", "rehab", "outpatient"])),
             "age": _maybe(rng, rng.randint(0, 95)), "adl": _maybe(rng, rng.randint(0, 100)),
             "icu": _maybe(rng, rng.random() < 0.3)} for _ in range(n)]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _condition(rng):
    kind = rng.randrange(9)
    if kind == 0:
        return DxPrefix(tuple(rng.sample(["I2", "I21", "J18.9", "K", "Z50", "A"], 2)))
    if kind == 1:
        lo, hi = sorted(rng.sample(DX, 2))
        return DxRange(lo, hi, rng.choice(["principal_dx", "other_dx"]))
    if kind == 2:
        return ProcAny(tuple(rng.sample(["36.06*", "36.1", "47*", "88.5", "99.0*"], 2)))
    if kind == 3:
        return ProcAll(("36*", rng.choice(["47.0", "88*", "36.1"])))
    if kind == 4:
        return NoProcedure(rng.choice(["procedures", "tcm"]))
    if kind == 5:
        return ProcAny(("T3*", "T1"), "tcm")
    if kind == 6:
        return SettingIn(tuple(rng.sample(["inpatient", "rehab", "outpatient"], 2)))
    if kind == 7:
        lo = rng.choice([None, 18, 60])
        return IntBand(rng.choice(["age", "adl"]), lo, rng.choice([None, 65, 90]))
    return Flag("icu", rng.random() < 0.5)


def random_table(rows: int, seed: int, default=None) -> DecisionTable:
    rng = random.Random(seed)
    out = [DecisionRow(tuple(_condition(rng) for _ in range(rng.randint(0, 3))), f"G{r}")
           for r in range(rows)]
    return DecisionTable("t", "grp", tuple(out), default)


def test_random_tables_over_every_column_kind_equal_the_oracle():
    for seed in range(12):
        table, claims = random_table(40, seed, "OTHER" if seed % 2 else None), batch(600, seed)
        assert group_table(table, claims).equals(group_table_reference(table, claims)), seed


def test_one_compiled_table_serves_batches_with_other_codes():
    table = random_table(60, 99)
    plan = dt._table_plan(table)
    for seed, dx in ((1, DX), (2, DX[:3]), (3, ["I21.0", "Q99", "K35.1"])):
        claims = batch(400, seed, dx)
        assert group_table(table, claims).equals(group_table_reference(table, claims))
    assert dt._table_plan(table) is plan


def test_codes_numpy_cannot_hold_take_the_exact_path():
    """numpy strings drop trailing NULs: such values are searched in Python, same result."""
    table = DecisionTable("t", "grp", (
        DecisionRow((DxPrefix(("A\x00",)),), "NUL"),
        DecisionRow((DxRange("A", "A"),), "A"),
        DecisionRow((ProcAny(("x\x00*",)),), "PX")), None)
    claims = pa.table({"principal_dx": ["A\x00", "A", "A\x001", "B", None],
                       "procedures": pa.array([[], ["x\x00y"], None, ["x"], ["x\x00"]],
                                              pa.list_(pa.string()))})
    got = group_table(table, claims)
    assert got.equals(group_table_reference(table, claims))
    assert got.column("grp").to_pylist() == ["NUL", "A", "NUL", None, "PX"]


def test_rows_without_the_index_column_interleave_in_row_order():
    """Global rows (no condition on the index column) and indexed rows are tried in table
    order: an earlier global row wins over a later indexed one and the other way round."""
    table = DecisionTable("t", "grp", (
        DecisionRow((DxPrefix(("I21",)), IntBand("age", 80)), "OLD_MI"),
        DecisionRow((IntBand("age", None, 18),), "CHILD"),
        DecisionRow((DxPrefix(("I2",)),), "IHD"),
        DecisionRow((DxPrefix(("J",)),), "RESP"),
        DecisionRow((), "ANY")), None)
    claims = pa.table({"principal_dx": ["I21.0", "I21.0", "I21.0", "J18", None, "K35"],
                       "age": pa.array([85, 10, 40, 5, 50, 50], pa.int16())})
    got = group_table(table, claims)
    assert got.column("grp").to_pylist() == ["OLD_MI", "CHILD", "IHD", "CHILD", "ANY", "ANY"]
    assert got.equals(group_table_reference(table, claims))

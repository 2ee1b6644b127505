"""`yibao settle` hands the DRG grouper age in days and birth weight even when the policy
declares only sex and age (Jinhua's does): a 10-day-old with P07.300 and a PB1 procedure
groups to PB19, and the same claim without age_days is ungrouped with that reason."""
import argparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yibao.core.generate import generate_claims
from yibao.core.grouping.tables import load_tables
from yibao.dsl.commands import settle as cmd
from yibao.dsl.compiler import compile_policy

PB1_PROC = sorted(load_tables().proc_sets["PB1.pproc"])[0]
NEWBORNS = {  # row -> (age_days, birth_weight)
    0: (10, 3100),
    1: (None, 3100),
    2: (10, None),         # PB1 does not read the weight: still PB19
}


def _claims() -> pa.Table:
    t = generate_claims(400, 21)
    inpatient = pc.equal(t["setting"].cast(pa.string()), "inpatient").to_numpy(
        zero_copy_only=False)
    rows = [int(i) for i in inpatient.nonzero()[0][:len(NEWBORNS)]]
    cols = {name: t[name].to_pylist() for name in ("principal_dx", "secondary_dx",
                                                    "procedures", "age")}
    days, weight = [None] * t.num_rows, [None] * t.num_rows
    for k, row in enumerate(rows):
        cols["principal_dx"][row], cols["secondary_dx"][row] = "P07.300", []
        cols["procedures"][row], cols["age"][row] = [PB1_PROC], 0
        days[row], weight[row] = NEWBORNS[k]
    for name, values in cols.items():
        t = t.set_column(t.schema.get_field_index(name), name,
                         pa.array(values, t.schema.field(name).type))
    # the generator has both columns (null but at age 0): these rows get the values under test
    for name, values in (("age_days", days), ("birth_weight", weight)):
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.int32()))
    return t, [t["claim_id"][r].as_py() for r in rows]


def test_settle_reads_age_days_the_policy_does_not_declare(tmp_path):
    plan = compile_policy("city_configs/jinhua")
    grouper = next(g for g in plan.groupers if g.name == "drg")
    assert grouper.columns == ("sex", "age")         # the policy declares only these
    claims, ids = _claims()
    (tmp_path / "in").mkdir()
    pq.write_table(claims, tmp_path / "in" / "claims.parquet")
    args = argparse.Namespace(claims=[str(tmp_path / "in")], policy="city_configs/jinhua",
                              out=str(tmp_path / "out"), memory_limit=None, engine="local",
                              partitions=1, overwrite=False, no_progress=True)
    assert cmd.run(args) == 0
    out = pq.read_table(tmp_path / "out" / "claims.parquet").to_pylist()
    by_id = {r["claim_id"]: r for r in out}
    got = [(by_id[i]["group"], by_id[i]["grouping_status"]) for i in ids]
    assert [status for _, status in got] == ["ok", "missing_age_days", "ok"]
    assert got[0][0].startswith("PB19") and got[2][0].startswith("PB19")
    assert got[1][0] is None
    stops = [by_id[i]["grouping_stopped_at"] for i in ids]
    assert stops[0] is None and stops[2] is None            # grouped: no stopping point
    assert stops[1] is not None and stops[1].startswith("MDCP")


def test_builtin_grouper_declares_the_columns_group_drg_writes():
    from yibao.core.grouping.drg import OUTPUT_SCHEMA
    from yibao.plugins.manager import build_registry, make_plugin_manager
    reg = build_registry(make_plugin_manager(load_entry_points=False))
    assert tuple(reg.groupers["chs_drg"].columns) == tuple(OUTPUT_SCHEMA.names)

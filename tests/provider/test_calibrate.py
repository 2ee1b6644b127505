"""`yibao calibrate`: two years of claims -> CSVs the pool statements read back."""
from __future__ import annotations

import argparse
import shutil
from fractions import Fraction

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from yibao.core.generate import generate_claims
from yibao.dsl.commands import calibrate as cmd
from yibao.dsl.compiler import compile_policy


def test_calibrate_writes_tables_a_policy_reads(tmp_path):
    for i, seed in enumerate((21, 22)):
        pq.write_table(generate_claims(3_000, seed), tmp_path / f"y{i}.parquet")
    args = argparse.Namespace(claims=[str(tmp_path / "y0.parquet"), str(tmp_path / "y1.parquet")],
                              policy="city_configs/jinhua", grouper="drg", by="hospital_level",
                              setting="inpatient", out=str(tmp_path / "out"))
    assert cmd.run(args) == 0
    points = (tmp_path / "out" / "drg_points.csv").read_text().splitlines()
    coef = (tmp_path / "out" / "drg_coefficients.csv").read_text().splitlines()
    assert points[1] == "group,points,avg_cost" and coef[0] == "hospital_level,group,coefficient"
    # B = group average / city average × 100, checked for one group by hand
    claims = pa.concat_tables([pq.read_table(tmp_path / f"y{i}.parquet") for i in (0, 1)])
    plan = compile_policy("city_configs/jinhua")
    base, avg, _ = cmd.calibrate_tables(plan, claims, "drg", "hospital_level", "inpatient")
    g, b = base[0]
    from yibao.core import provider
    grouped = provider.group_claims(plan, claims)
    grouped = grouped.filter(pc.and_(pc.equal(grouped["setting"], "inpatient"),
                                     pc.is_valid(grouped["drg"])))
    mine = grouped.filter(pc.equal(grouped["drg"], g))["total"].to_pylist()
    city = grouped["total"].to_pylist()
    want = Fraction(sum(mine), len(mine)) / Fraction(sum(city), len(city)) * 100 * 10_000
    assert abs(b - want) <= Fraction(1, 2)
    # the written tables compile in a pool
    folder = tmp_path / "city"
    shutil.copytree("city_configs/jinhua", folder)
    shutil.copy(tmp_path / "out" / "drg_points.csv", folder / "drg_points.csv")
    shutil.copy(tmp_path / "out" / "drg_coefficients.csv", folder / "drg_coefficients.csv")
    text = (folder / "policy.yb").read_text(encoding="utf-8").replace(
        "coefficient by hospital_level { 1: 0.85, 2: 0.95, 3: 1.0 }",
        'coefficient by hospital_level from "drg_coefficients.csv"')
    (folder / "policy.yb").write_text(text, encoding="utf-8")
    pool = compile_policy(folder).provider.pool("inpatient_drg")
    assert pool.base_points == base and len(pool.coefficients) == len(coef) - 1

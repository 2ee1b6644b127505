"""`yibao calibrate POLICY YEAR1 YEAR2 --grouper drg --out DIR`: recompute base points
and coefficients from two previous years of claims (point-method.md §2, Jinhua's rule:
B = the group's average cost ÷ the city's × 100; k = the level's average cost for the group ÷
the city's). The claims are grouped with the policy's own groupers, then
``core.points.calibrate`` writes two CSVs in the layouts the ``pool`` statements read:
``<grouper>_points.csv`` (group,points,avg_cost) and ``<grouper>_coefficients.csv``
(<by>,group,coefficient). Exit codes: 0 written, 2 could not run.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

NAME = "calibrate"
HELP = "recompute base points and coefficients from two previous years of claims"


def add_arguments(parser):
    from ._common import add_policy_and_claims
    add_policy_and_claims(parser, claims="2")  # the two previous years' claims
    parser.add_argument("--grouper", required=True, help="which grouper of the policy (drg, apg …)")
    parser.add_argument("--by", default="hospital_level",
                        help="coefficient key column (default: hospital_level)")
    parser.add_argument("--setting", default=None,
                        help="only claims of this setting (e.g. inpatient)")
    parser.add_argument("--out", default=".", help="output folder (default: here)")


def write_csvs(out: Path, name: str, base, avg, coefficients, by: str) -> tuple:
    """Write the two CSVs; returns their paths. Points 4 decimals, costs in yuan."""
    from decimal import Decimal
    from yibao.core.points.plan import POINT_SCALE
    from yibao.core.plan import RATIO_SCALE
    out.mkdir(parents=True, exist_ok=True)
    avg = dict(avg)
    points_path = out / f"{name}_points.csv"
    lines = ["# calibrated by `yibao calibrate` from two previous years of claims",
             "group,points,avg_cost"]
    lines += [f"{g},{Decimal(b) / POINT_SCALE},{Decimal(avg[g]) / 100}" for g, b in base]
    points_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    coef_path = out / f"{name}_coefficients.csv"
    lines = [f"{by},group,coefficient"]
    lines += [f"{k},{g},{Decimal(c) / RATIO_SCALE}" for k, g, c in coefficients]
    coef_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return points_path, coef_path


def calibrate_tables(plan, claims, grouper: str, by: str, setting=None):
    """(base points, average costs, coefficients) of ``grouper``'s groups over ``claims``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from yibao.core import provider
    from yibao.core.points.calibrate import calibrate, group_average_cost
    wanted = [g for g in plan.groupers if provider.grouper_output(g) == grouper
              or getattr(g, "name", None) == grouper]
    if not wanted:
        raise KeyError(f"the policy has no grouper {grouper!r}")
    only = dataclasses.replace(plan, groupers=tuple(wanted), provider=None)
    grouped = provider.group_claims(only, claims)
    if setting:
        grouped = grouped.filter(pc.equal(grouped["setting"].cast(pa.string()), setting))
    column = provider.grouper_output(wanted[0])
    base, coefficients = calibrate(grouped, column, by)
    return base, group_average_cost(grouped, column), coefficients


def run(args) -> int:
    import pyarrow as pa
    from ._common import load_policy, read_claims, registry
    plan = load_policy(args.policy, registry(args.policy))
    if plan is None:
        return 2
    try:
        claims = pa.concat_tables([read_claims(p) for p in args.claims], promote_options="default")
        base, avg, coef = calibrate_tables(plan, claims, args.grouper, args.by, args.setting)
    except (KeyError, OSError, pa.ArrowInvalid) as exc:
        print(f"yibao calibrate: {exc}", file=sys.stderr)
        return 2
    paths = write_csvs(Path(args.out), args.grouper, base, avg, coef, args.by)
    print(f"{len(base)} groups, {len(coef)} coefficients: {paths[0]}, {paths[1]}")
    return 0

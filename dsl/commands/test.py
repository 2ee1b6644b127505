"""`yibao test city_configs/X`: run the hand-checked cases beside a policy, like `opa test`."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "test"
HELP = "run a policy folder's tests.yaml cases on the kernel: PASS/FAIL with diffs, coverage"


def add_arguments(parser):
    parser.add_argument("folder", help="a city folder with policy file(s) and tests.yaml")
    parser.add_argument("--cases", help="a case file other than FOLDER/tests.yaml")
    parser.add_argument("-q", "--quiet", action="store_true", help="print failures only")


def run(args) -> int:
    from yibao.core.policytest import CaseFileError, coverage, load_cases, run_case
    from ._common import console, registry
    from ._policies import load_versions, settle_under
    reg = registry(args.folder)
    plans = load_versions(args.folder, reg)
    if plans is None:
        return 2
    path = Path(args.cases) if args.cases else Path(args.folder) / "tests.yaml"
    try:
        cases = load_cases(path)
    except (CaseFileError, OSError) as exc:
        print(f"yibao test: {exc}", file=sys.stderr)
        return 2
    out = console()
    settle = (lambda plan, table, r: settle_under(plans, table, r))
    results = [run_case(plans[0], c, reg, settle) for c in cases]
    for res in results:
        if res.passed and not args.quiet:
            out.print(f"[green]PASS[/] {res.case.name}")
        elif not res.passed:
            _print_failure(out, res)
    for plan in plans:
        _print_coverage(out, plan, coverage(plan, cases, reg), len(plans) > 1)
    failed = sum(not r.passed for r in results)
    out.print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _print_failure(out, res) -> None:
    from yibao.core.describe import format_money
    out.print(f"[red]FAIL[/] {res.case.name}")
    if res.error:
        out.print(f"     could not run: {res.error}", markup=False)
    for m in res.mismatches:
        layer = f"layer {m.layer} {m.label}" if m.layer else m.column
        got = format_money(m.actual) if isinstance(m.actual, int) else "nothing"
        note = f"  ({m.note})" if m.note else ""
        out.print(f"     {m.claim_id} {m.column} [{layer}]: expected {format_money(m.expected)}, "
                  f"got {got}{note}", markup=False)


def _print_coverage(out, plan, cov, several) -> None:
    which = f" of {plan.name} ({plan.effective_from})" if several else ""
    if cov.complete:
        out.print(f"coverage{which}: every layer, table row and band exercised")
        return
    out.print(f"coverage{which}: not exercised by any case")
    for name in cov.layers:
        out.print(f"  layer {name} never applied", markup=False)
    for table, key in cov.rows:
        out.print(f"  table {table} row [{key}] never matched", markup=False)
    for layer, band in cov.bands:
        out.print(f"  layer {layer} band {band} never entered", markup=False)

"""`yibao test POLICY`: run the hand-checked cases beside a policy, like `opa test`.

POLICY is a city folder or a bundled city's name. Exit codes: 0 every case passed, 1 a case
failed (or, with ``--strict``, the policy compiled with warnings), 2 could not run.
``--format json`` prints one JSON document; ``--junit-xml FILE`` also writes a JUnit report
(one testcase per case) for CI."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "test"
HELP = "run a policy folder's tests.yaml cases on the kernel: PASS/FAIL with diffs, coverage"


def add_arguments(parser):
    parser.add_argument("folder", metavar="POLICY",
                        help="a city folder with policy file(s) and tests.yaml, or a bundled "
                             "city's name")
    parser.add_argument("--cases", help="a case file other than POLICY/tests.yaml")
    parser.add_argument("-q", "--quiet", action="store_true", help="print failures only")
    parser.add_argument("--strict", action="store_true",
                        help="policy warnings are findings too (exit 1)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout, for CI")
    parser.add_argument("--junit-xml", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument("-k", metavar="EXPRESSION", dest="select",
                        help="only the cases whose name matches, as pytest -k: words "
                             "(substrings, any case) with and, or, not")
    parser.add_argument("--min-coverage", type=float, metavar="PERCENT", default=None,
                        help="fail (exit 1) when the cases exercise less than PERCENT of the "
                             "policy's layers, table rows and bands (docs/testing.md)")


def run(args) -> int:
    from yibao.core.policytest import (CaseFileError, coverage, coverage_share, load_cases,
                                       run_case, select_cases)
    from ._common import console, registry
    from yibao.core.engine import settle
    from ._policies import resolve_policy
    folder = resolve_policy(args.folder)  # PolicyNotFound: one line, exit 2 (cli.main)
    reg = registry(folder)
    policy, warned = _load_recording_warnings(folder, reg)
    if policy is None:
        return 2
    plans = policy.versions
    path = Path(args.cases) if args.cases else folder / "tests.yaml"
    try:
        cases = load_cases(path)
        if args.select:
            cases = select_cases(cases, args.select)
    except (CaseFileError, OSError) as exc:
        print(f"yibao test: {exc}", file=sys.stderr)
        return 2
    settle_case = (lambda plan, table, r: settle(policy, table, r))
    results = [run_case(plans[0], c, reg, settle_case) for c in cases]
    covers = [(plan, coverage(plan, cases, reg)) for plan in plans]
    if args.junit_xml:
        Path(args.junit_xml).write_text(junit_xml(results, str(path), warned if args.strict
                                                  else []), encoding="utf-8")
    failed = sum(not r.passed for r in results)
    share = coverage_share(covers)
    short = args.min_coverage is not None and share * 100 < args.min_coverage
    if args.format == "json":
        doc = as_json(results, covers, warned, args.strict)
        doc.update(coverage_percent=float(share * 100), min_coverage=args.min_coverage,
                   ok=doc["ok"] and not short)
        import json
        print(json.dumps(doc, ensure_ascii=False, indent=1))
    else:
        out = console()
        _print_text(out, results, covers, args.quiet)
        out.print(f"coverage {_percent(share)} of layers, table rows and bands"
                  + (f" (--min-coverage {args.min_coverage:g}%)" if args.min_coverage is not None
                     else ""))
    if short:
        print(f"yibao test: coverage {_percent(share)} is below --min-coverage "
              f"{args.min_coverage:g}%", file=sys.stderr)
    return 1 if failed or (args.strict and warned) or short else 0


def _percent(share) -> str:
    """A share as a percentage with one decimal, rounded down (90.0% is never 89.96%)."""
    tenths = share.numerator * 1000 // share.denominator
    return f"{tenths // 10}.{tenths % 10}%"


def _load_recording_warnings(folder, reg) -> tuple:
    """(policy or None, the policy warnings' texts); the warnings still go to stderr."""
    import warnings
    from ..errors import PolicyWarning
    from ._policies import load_policy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PolicyWarning)
        policy = load_policy(folder, reg, cache=False)  # a test run shows every diagnostic
    texts = []
    for w in caught:
        if issubclass(w.category, PolicyWarning):
            texts.append(str(w.message))
            print(str(w.message), file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return policy, texts


def _print_text(out, results, covers, quiet: bool) -> None:
    for res in results:
        if res.passed and not quiet:
            out.print(f"[green]PASS[/] {res.case.name}")
        elif not res.passed:
            _print_failure(out, res)
    for plan, cov in covers:
        _print_coverage(out, plan, cov, len(covers) > 1)
    failed = sum(not r.passed for r in results)
    out.print(f"{len(results) - failed} passed, {failed} failed")


def failure_lines(res) -> list:
    """The lines that say why a case failed (no markup)."""
    lines = [f"could not run: {res.error}"] if res.error else []
    for m in res.mismatches:
        layer = f"layer {m.layer} {m.label}" if m.layer else m.label or m.column
        note = f"  ({m.note})" if m.note else ""
        lines.append(f"{m.claim_id} {m.column} [{layer}]: expected {m.shown(m.expected)}, "
                     f"got {m.shown(m.actual)}{note}")
    return lines


def _print_failure(out, res) -> None:
    where = f" ({res.case.where})" if res.case.where else ""
    out.print(f"[red]FAIL[/] {res.case.name}{where}", markup=True)
    for line in failure_lines(res):
        out.print(f"     {line}", markup=False)


def _coverage_lines(cov) -> list:
    return ([f"layer {name} never applied" for name in cov.layers]
            + [f"table {table} row [{key}] never matched" for table, key in cov.rows]
            + [f"layer {layer} band {band} never entered" for layer, band in cov.bands])


def _print_coverage(out, plan, cov, several) -> None:
    which = f" of {plan.name} ({plan.effective_from})" if several else ""
    if cov.complete:
        out.print(f"coverage{which}: every layer, table row and band exercised")
        return
    out.print(f"coverage{which}: not exercised by any case")
    for line in _coverage_lines(cov):
        out.print(f"  {line}", markup=False)


def as_json(results, covers, warned, strict: bool) -> dict:
    failed = sum(not r.passed for r in results)
    return {"ok": not failed and not (strict and warned), "strict": strict,
            "passed": len(results) - failed, "failed": failed, "warnings": warned,
            "cases": [{"name": r.case.name, "passed": r.passed, "where": r.case.where,
                       "failures": failure_lines(r)} for r in results],
            "coverage": [{"policy": plan.name, "complete": cov.complete,
                          "not_exercised": _coverage_lines(cov)} for plan, cov in covers]}


def junit_xml(results, case_file: str, warned: list) -> str:
    """A JUnit XML report: one <testcase> per case, a <failure> with the mismatches; under
    --strict the policy's warnings are one more failed testcase."""
    from xml.etree import ElementTree as ET
    failed = sum(not r.passed for r in results) + (1 if warned else 0)
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name="yibao test",
                          tests=str(len(results) + bool(warned)), failures=str(failed),
                          errors="0", skipped="0")
    for r in results:
        file, _, line = r.case.where.rpartition(":")
        case = ET.SubElement(suite, "testcase", classname=case_file, name=r.case.name,
                             **({"file": file, "line": line} if file else {}))
        if not r.passed:
            lines = failure_lines(r)
            fail = ET.SubElement(case, "failure", message=lines[0] if lines else "failed")
            fail.text = "\n".join(lines)
    if warned:
        case = ET.SubElement(suite, "testcase", classname=case_file, name="policy warnings")
        fail = ET.SubElement(case, "failure", message=f"{len(warned)} warning(s) (--strict)")
        fail.text = "\n\n".join(warned)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")

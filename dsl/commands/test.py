"""`yibao test POLICY`: run the hand-checked cases beside a policy, like `opa test`.

POLICY is a city folder or a bundled city's name. Exit codes: 0 every case passed, 1 a case
failed (or, with ``--strict``, the policy compiled with warnings), 2 could not run.
``--format json`` prints one JSON document; ``--junit-xml FILE`` also writes a JUnit report
(one testcase per case) for CI."""
from __future__ import annotations

import json
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


def run(args) -> int:
    from yibao.core.policytest import CaseFileError, coverage, load_cases, run_case
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
    if args.format == "json":
        print(json.dumps(as_json(results, covers, warned, args.strict), ensure_ascii=False,
                         indent=1))
    else:
        _print_text(console(), results, covers, args.quiet)
    return 1 if failed or (args.strict and warned) else 0


def _load_recording_warnings(folder, reg) -> tuple:
    """(policy or None, the policy warnings' texts); the warnings still go to stderr."""
    import warnings
    from ..errors import PolicyWarning
    from ._policies import load_policy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PolicyWarning)
        policy = load_policy(folder, reg)
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
    out.print(f"[red]FAIL[/] {res.case.name}")
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
            "cases": [{"name": r.case.name, "passed": r.passed,
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
        case = ET.SubElement(suite, "testcase", classname=case_file, name=r.case.name)
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

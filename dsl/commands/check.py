"""`yibao check POLICY`: compile a policy and report every error and warning.

POLICY is a city folder, a policy file or the name of a bundled city (``yibao check rizhao``).
A city folder holds one or more versions (every ``*.yb`` file directly in it, see
``yibao.dsl.versions``): each file is checked, then that the versions tile time (E601 gap,
E602 overlap).

Exit codes, as linters use them: 0 clean, 1 findings (errors; warnings too with
``--strict``), 2 could not run (no such policy, a usage error)."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "check"
HELP = "compile a policy (city folder or .yb file); errors with file:line:col, caret and help"

EXIT_CLEAN, EXIT_FINDINGS, EXIT_CANNOT_RUN = 0, 1, 2


def add_arguments(parser):
    parser.add_argument("policy", help="a city folder (every *.yb in it is a version), a "
                                       "policy file, or a bundled city's name (rizhao)")
    parser.add_argument("--strict", action="store_true",
                        help="warnings are findings too (exit 1)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout, for CI")


def run(args) -> int:
    from ..versions import version_files
    from ._common import registry
    from ._policies import resolve_policy
    path = resolve_policy(args.policy)  # PolicyNotFound: one line, exit 2 (cli.main)
    try:
        files = version_files(path)
    except FileNotFoundError:
        files = []
    if not files or not all(f.is_file() for f in files):
        print(f"yibao check: no policy file at {path}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    # yibao's own plugins and those the policy declares; a check compiles, never settles, so
    # the run-time hooks (validators, stages) are not called
    reg = registry(path, settles=False)
    reports = [check_file(f, reg) for f in files]
    if len(files) > 1 and all(r.plan is not None for r in reports):
        reports.append(check_tiling(path, reg))
    findings = sum(r.errors + (r.warnings if args.strict else 0) for r in reports)
    if args.format == "json":
        import json
        print(json.dumps(as_json(reports, findings, args.strict), ensure_ascii=False, indent=1))
    else:
        for r in reports:
            r.print_text()
    return EXIT_FINDINGS if findings else EXIT_CLEAN


class FileReport:
    """One file's diagnostics (with the text they point into) and its plan when it compiled."""

    def __init__(self, path, diagnostics, sources, plan=None, ok_line=""):
        from ..errors import ERROR
        self.path, self.diagnostics, self.sources = str(path), diagnostics, sources
        self.plan, self.ok_line = plan, ok_line
        self.errors = sum(d.severity == ERROR for d in diagnostics)
        self.warnings = len(diagnostics) - self.errors

    def print_text(self) -> None:
        from ..errors import render
        for diag in self.diagnostics:
            where = diag.span.file if diag.span else self.path
            print(render(diag, self.sources.get(where, "")), file=sys.stderr)
        if self.errors or self.plan is None:
            print(f"{self.path}: {self.errors} error(s)", file=sys.stderr)
        elif self.ok_line:
            print(self.ok_line)

    def as_dict(self) -> dict:
        return {"path": self.path, "errors": self.errors, "warnings": self.warnings,
                "diagnostics": [diagnostic_dict(d) for d in self.diagnostics]}


def diagnostic_dict(d) -> dict:
    """A diagnostic as JSON: code, severity, message, file/line/column (1-based), help."""
    span = d.span
    return {"code": d.code, "severity": d.severity, "message": d.message,
            "file": span.file if span else None, "line": span.line if span else None,
            "column": span.col if span else None, "end_line": span.end_line if span else None,
            "end_column": span.end_col if span else None, "help": d.hint}


def as_json(reports, findings: int, strict: bool) -> dict:
    return {"ok": findings == 0, "strict": strict, "findings": findings,
            "errors": sum(r.errors for r in reports),
            "warnings": sum(r.warnings for r in reports),
            "files": [r.as_dict() for r in reports]}


def check_file(path: Path, reg) -> FileReport:
    """One file's diagnostics; its plan when it has no errors."""
    from ..compiler import check_text
    from yibao.core.describe import format_date
    from ..errors import PolicyError
    from ..source import read_policy
    try:
        text = read_policy(path)
    except PolicyError as exc:  # not UTF-8, or not a regular file: E005
        return FileReport(path, exc.diagnostics, {str(path): exc.source})
    plan, diagnostics = check_text(text, str(path), path.parent, reg)
    report = FileReport(path, diagnostics, {str(path): text}, plan)
    if plan is not None and not report.errors:
        report.ok_line = (f"{path}: ok — {len(plan.layers)} layers, {len(plan.tables)} tables, "
                          f"in force {format_date(plan.effective_from)} to "
                          f"{format_date(plan.effective_to)}"
                          f"{f', {len(diagnostics)} warning(s)' if diagnostics else ''}")
    else:
        report.plan = None
    return report


def check_tiling(folder: Path, reg) -> FileReport:
    """The versions of a folder leave no gap and do not overlap (the folder's own report)."""
    import warnings
    from ..errors import PolicyError
    from ..versions import compile_versions
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported per file
            plans = compile_versions(folder, reg).versions
    except PolicyError as exc:
        sources = getattr(exc, "sources", {})
        return FileReport(folder, exc.diagnostics, sources)
    return FileReport(folder, [], {}, plans,
                      f"{folder}: {len(plans)} versions in force without gap or overlap")

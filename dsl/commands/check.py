"""`yibao check POLICY`: compile a policy and report every error and warning."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "check"
HELP = "compile a policy (city folder or .yb file); errors with file:line:col, caret and help"


def add_arguments(parser):
    parser.add_argument("policy", help="a city folder (its policy.yb) or a policy file")


def run(args) -> int:
    from ..compiler import check_text
    from ..errors import ERROR, render
    from ._common import registry
    path = Path(args.policy)
    if path.is_dir():
        path = path / "policy.yb"
    if not path.is_file():
        print(f"yibao check: no policy file at {path}", file=sys.stderr)
        return 2
    text = path.read_text(encoding="utf-8")
    plan, diagnostics = check_text(text, str(path), path.parent, registry())
    for diag in diagnostics:
        print(render(diag, text), file=sys.stderr)
    errors = sum(1 for d in diagnostics if d.severity == ERROR)
    if plan is None or errors:
        print(f"{path}: {errors} error(s)", file=sys.stderr)
        return 2
    print(f"{path}: ok — {len(plan.layers)} layers, {len(plan.tables)} tables"
          f"{f', {len(diagnostics)} warning(s)' if diagnostics else ''}")
    return 0

"""`yibao check POLICY`: compile a policy and report every error and warning.

A city folder holds one or more versions (every ``*.yb`` file directly in it, see
``yibao.dsl.versions``): each file is checked, then that the versions tile time (E601 gap,
E602 overlap)."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "check"
HELP = "compile a policy (city folder or .yb file); errors with file:line:col, caret and help"


def add_arguments(parser):
    parser.add_argument("policy", help="a city folder (every *.yb in it is a version) or a "
                                       "policy file")


def run(args) -> int:
    from ..versions import version_files
    from ._common import registry
    path = Path(args.policy)
    try:
        files = version_files(path)
    except FileNotFoundError:
        files = []
    if not files or not all(f.is_file() for f in files):
        print(f"yibao check: no policy file at {path}", file=sys.stderr)
        return 2
    reg = registry()
    plans = [check_file(f, reg) for f in files]
    if any(p is None for p in plans):
        return 2
    if len(plans) > 1:
        return check_tiling(path, reg)
    return 0


def check_file(path: Path, reg):
    """The plan of one file after printing its diagnostics and a one-line verdict; None
    when it has errors."""
    from ..compiler import check_text
    from ..errors import ERROR, PolicyError, render
    from ..source import read_policy
    try:
        text = read_policy(path)
    except PolicyError as exc:  # not UTF-8, or not a regular file: E005
        print(str(exc), file=sys.stderr)
        print(f"{path}: 1 error(s)", file=sys.stderr)
        return None
    plan, diagnostics = check_text(text, str(path), path.parent, reg)
    for diag in diagnostics:
        print(render(diag, text), file=sys.stderr)
    errors = sum(1 for d in diagnostics if d.severity == ERROR)
    if plan is None or errors:
        print(f"{path}: {errors} error(s)", file=sys.stderr)
        return None
    from yibao.core.describe import format_date
    print(f"{path}: ok — {len(plan.layers)} layers, {len(plan.tables)} tables, in force "
          f"{format_date(plan.effective_from)} to {format_date(plan.effective_to)}"
          f"{f', {len(diagnostics)} warning(s)' if diagnostics else ''}")
    return plan


def check_tiling(folder: Path, reg) -> int:
    """The versions of a folder leave no gap and do not overlap."""
    import warnings
    from ..errors import PolicyError
    from ..versions import compile_versions
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already printed per file
            plans = compile_versions(folder, reg)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{folder}: {len(plans)} versions in force without gap or overlap")
    return 0

"""`yibao fmt PATH [--check | --diff]`: rewrite policy files in the canonical layout
(dsl/printer.py). ``--check`` lists the files that would change, ``--diff`` prints the change as
a unified diff; both change nothing and exit 1 when a file would change (like ``ruff format``)."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "fmt"
HELP = "rewrite policy files (a file, or every *.yb under a folder) in canonical layout"


def add_arguments(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy file or folder")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list the files that are not formatted, exit 1")
    parser.add_argument("--diff", action="store_true",
                        help="change nothing; print a unified diff of what would change, exit 1")


def policy_files(paths) -> list:
    out = []
    for p in map(Path, paths):
        out += sorted(p.rglob("*.yb")) if p.is_dir() else [p]
    return out


def formatted(path: Path) -> tuple:
    """(original text, canonical text); PolicyError when the file does not parse."""
    from ..parser import parse
    from ..printer import format_policy
    from ..source import read_policy
    text = read_policy(path)
    return text, format_policy(parse(text, str(path)))


def unified_diff(path: Path, text: str, canonical: str) -> str:
    import difflib
    return "".join(difflib.unified_diff(text.splitlines(keepends=True),
                                        canonical.splitlines(keepends=True),
                                        f"{path} (current)", f"{path} (formatted)"))


def run(args) -> int:
    from ..errors import PolicyError
    dry = args.check or args.diff
    files = policy_files(args.paths)
    if not files:
        print("yibao fmt: no *.yb files", file=sys.stderr)
        return 2
    changed, broken = [], 0
    for path in files:
        try:
            text, canonical = formatted(path)
        except (PolicyError, OSError) as exc:
            print(str(exc), file=sys.stderr)
            broken += 1
            continue
        if text != canonical:
            changed.append(path)
            if args.diff:
                sys.stdout.write(unified_diff(path, text, canonical))
            if not dry:
                path.write_text(canonical, encoding="utf-8")
    verb = "would reformat" if dry else "reformatted"
    for path in changed:
        print(f"{verb} {path}")
    print(f"{len(files) - broken} file(s): {len(changed)} {verb}, "
          f"{len(files) - broken - len(changed)} unchanged")
    if broken:
        return 2
    return 1 if dry and changed else 0

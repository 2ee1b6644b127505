"""`yibao fmt PATH [--check]`: rewrite policy files in the canonical layout (dsl/printer.py)."""
from __future__ import annotations

import sys
from pathlib import Path

NAME = "fmt"
HELP = "rewrite policy files (a file, or every *.yb under a folder) in canonical layout"


def add_arguments(parser):
    parser.add_argument("paths", nargs="+", metavar="PATH", help="policy file or folder")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list the files that are not formatted, exit 1")


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


def run(args) -> int:
    from ..errors import PolicyError
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
            if not args.check:
                path.write_text(canonical, encoding="utf-8")
    verb = "would reformat" if args.check else "reformatted"
    for path in changed:
        print(f"{verb} {path}")
    print(f"{len(files) - broken} file(s): {len(changed)} {verb}, "
          f"{len(files) - broken - len(changed)} unchanged")
    if broken:
        return 2
    return 1 if args.check and changed else 0

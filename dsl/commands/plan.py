"""`yibao plan POLICY`: print the compiled plan (text, or the versioned JSON IR)."""
from __future__ import annotations

NAME = "plan"
HELP = "print the compiled plan (text; --json for the versioned IR)"


def add_arguments(parser):
    parser.add_argument("policy", help="a city folder or a policy file")
    parser.add_argument("--json", action="store_true", help="print the JSON IR")


def run(args) -> int:
    from ._common import load_policy
    plan = load_policy(args.policy)
    if plan is None:
        return 2
    print(plan.to_json() if args.json else plan.describe(), end="" if not args.json else "\n")
    return 0

"""`yibao plan POLICY`: print the compiled plan (text, or the versioned JSON IR).

A folder with several versions (every ``*.yb`` in it) prints every version's plan in date
order; with ``--json`` a JSON list of the plans."""
from __future__ import annotations

NAME = "plan"
HELP = "print the compiled plan of every version (text; --json for the versioned IR)"


def add_arguments(parser):
    parser.add_argument("policy", help="a city folder (every *.yb in it is a version), a "
                                       "policy file, or a bundled city's name (rizhao)")
    parser.add_argument("--json", action="store_true", help="print the JSON IR")
    from ._common import add_cache_option
    add_cache_option(parser)


def run(args) -> int:
    from ._common import registry, use_cache
    from ._policies import load_policy
    # compiles only: the registry of the compiler's hooks (validators and stages are a run's)
    policy = load_policy(args.policy, registry(args.policy, settles=False),
                         cache=use_cache(args))
    if policy is None:
        return 2
    plans = policy.versions
    if len(plans) == 1:
        plan = plans[0]
        print(plan.to_json() if args.json else plan.describe(), end="" if not args.json else "\n")
        return 0
    if args.json:
        print("[\n" + ",\n".join(p.to_json() for p in plans) + "\n]")
        return 0
    from yibao.core.describe import format_date
    for i, plan in enumerate(plans):
        print(f"{'' if i == 0 else chr(10)}# version {i + 1} of {len(plans)}: "
              f"{format_date(plan.effective_from)} to {format_date(plan.effective_to)}")
        print(plan.describe(), end="")
    return 0

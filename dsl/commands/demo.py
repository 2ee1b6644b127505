"""`yibao demo`: the whole path on an embedded default — generated sample claims settled under
a bundled city policy, with the summary printed. Needs nothing but the installed package."""
from __future__ import annotations

import importlib.util
from pathlib import Path

NAME = "demo"
DEMO_CLAIMS = 20_000  # the city the bundled budgets are sized to (city READMEs, "Budgets")
HELP = "settle bundled sample claims under a bundled city policy and print the summary"


def add_arguments(parser):
    parser.add_argument("--city", default="jinhua",
                        help="bundled city policy: reference, jinhua, rizhao, shanghai, feicheng")
    from ._common import add_count
    add_count(parser, DEMO_CLAIMS, "sample size")
    parser.add_argument("--seed", type=int, default=7)


def bundled_root() -> Path:
    """Where yibao.city_configs is installed: the first folder on its search path that holds
    at least one city policy.

    It is a data folder without __init__.py, i.e. a namespace package. Its search path can hold
    an editable install's path hook (not a folder), and an empty folder that a regular install
    left behind when an editable install replaced it (pip removes the files, not the folders),
    so "the first folder" is not enough. The repository's own city_configs/ next to this
    package is the last resort, for an editable install whose hook importlib cannot list."""
    spec = importlib.util.find_spec("yibao.city_configs")
    candidates = [Path(e) for e in (spec.submodule_search_locations or [])] if spec else []
    candidates.append(Path(__file__).resolve().parents[2] / "city_configs")
    for folder in candidates:
        if folder.is_dir() and _cities(folder):
            return folder
    raise SystemExit("yibao demo: the bundled city policies (yibao.city_configs) are not installed")


def _cities(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "policy.yb").is_file())


def bundled_cities() -> list[str]:
    """The names of the city policies shipped with yibao (reference, jinhua, …)."""
    return _cities(bundled_root())


def find_bundled(city: str):
    """The folder of the bundled city ``city``, or None when yibao ships no such city."""
    root = bundled_root()
    folder = root / city
    return folder if city and "/" not in city and (folder / "policy.yb").is_file() else None


def bundled_policy(city: str) -> Path:
    """The folder of a city policy shipped with yibao (installed as yibao.city_configs)."""
    folder = find_bundled(city)
    if folder is None:
        raise SystemExit(f"yibao demo: no bundled policy {city!r}; "
                         f"choose one of {bundled_cities()}")
    return folder


def demo_claims(plan, n: int, seed: int, year: int):
    """The sample the city's policy is about: long-term care months (core/generate_ltc.py)
    for a policy that reads ``care_service`` (Feicheng's 长护险), medical claims otherwise."""
    if any(c.name == "care_service" for c in plan.columns):
        from yibao.core.generate_ltc import ltc_claims
        return ltc_claims(n, seed=seed, start_year=year)
    from yibao.core.generate import sample_claims
    return sample_claims(n, seed=seed, start_year=year)


def run(args) -> int:
    import datetime
    import time
    from yibao.core.engine import settle
    from ._common import all_rejected_hint, console, load_policy, registry
    from yibao.core import provider
    from .summary import print_pools, print_summary, summarise, summarise_pools
    folder = bundled_policy(args.city)
    reg = registry()
    plan = load_policy(folder, reg)
    if plan is None:
        return 2
    # the sample claims are discharged in the policy's first effective year, so a policy
    # of another year (Rizhao's is 2016) settles them instead of rejecting them all
    first_year = (datetime.date(1970, 1, 1) + datetime.timedelta(days=plan.effective_from)).year
    claims = demo_claims(plan, args.count, args.seed, first_year)
    start = time.perf_counter()
    result = settle(plan, claims, reg)
    elapsed = time.perf_counter() - start
    out = console()
    out.print(f"[bold]yibao demo[/bold]: {claims.num_rows:,} sample claims (seed {args.seed}) "
              f"under {plan.name} ({folder.name}/policy.yb)")
    summary = summarise(plan, claims, result, elapsed)
    print_summary(summary, out)
    if plan.provider is not None:
        _, pools = provider.settle_provider_year(plan, claims, result.results)
        print_pools(summarise_pools(result, pools), out)
        if args.count != DEMO_CLAIMS:
            out.print(f"note: the bundled budgets are written for the demo city of "
                      f"{DEMO_CLAIMS:,} claims; {args.count:,} claims are a "
                      f"{'bigger' if args.count > DEMO_CLAIMS else 'smaller'} city with the "
                      f"same budgets, so point values scale inversely")
    _print_flags(plan, claims, result, out)
    reasons = {}
    for reason in result.rejects.column("reason").to_pylist():
        reasons[reason] = reasons.get(reason, 0) + 1
    hint = all_rejected_hint(plan, result.results.num_rows, reasons)
    if hint:
        out.print(hint)
    return 0


def _print_flags(plan, claims, result, out) -> None:
    """The flag summary of a city with supervision rules (docs/supervision.md)."""
    from yibao.core import supervision
    from .summary import print_flags
    found = supervision.evaluate(plan, claims, result.results)
    if found is not None:
        labels = {f.name: f.label for f in supervision.supervision_of(plan).flags}
        print_flags(supervision.summary(found), labels, out)

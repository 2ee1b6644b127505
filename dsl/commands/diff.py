"""`yibao diff POLICY_A POLICY_B CLAIMS`: what changing policy A into B costs."""
from __future__ import annotations

import importlib.util
import sys

NAME = "diff"
HELP = "settle claims under two policies: fund spending per layer/tier/level, self-pay movers"


def add_arguments(parser):
    from ._common import add_cache_option, add_policy_and_claims
    add_policy_and_claims(parser, policies=2, claims="1")
    add_cache_option(parser)
    parser.add_argument("--html", metavar="FILE", help="also write an HTML report with charts")
    parser.add_argument("--top", type=int, default=10, help="largest movers to list")


def run(args) -> int:
    from yibao.core.arrow_io import ClaimsError
    from yibao.core.diff import diff_policies
    from yibao.core.settlement import VersionError
    from ._common import console, read_claims, registry, use_cache
    from ._policies import load_policy
    if args.html and importlib.util.find_spec("plotly") is None:
        print("yibao diff: error: --html draws its charts with plotly, which is not installed: "
              "pip install 'yibao[report]'", file=sys.stderr)
        return 2
    reg = registry(*args.policy)
    plans = [load_policy(p, reg, cache=use_cache(args)) for p in args.policy]
    if None in plans:
        return 2
    try:
        report = diff_policies(plans[0], plans[1], read_claims(args.claims), reg, top=args.top)
    except (ClaimsError, VersionError, OSError) as exc:
        print(f"yibao diff: {exc}", file=sys.stderr)
        return 2
    print_report(report, console())
    if args.html:
        from ._diff_html import html_report
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(html_report(report))
        print(f"wrote {args.html}")
    return 0


# -- terminal --------------------------------------------------------------------------------


def _money(fen) -> str:
    from yibao.core.describe import format_money
    return format_money(int(fen))


def _signed(fen) -> str:
    return ("+" if fen > 0 else "") + _money(fen)


def _rows(table, key_cols) -> list:
    return [[*(f"{r[k]:,}" if k == "claims" else str(r[k]) for k in key_cols),
             _money(r["fund_a"]), _money(r["fund_b"]),
             _signed(r["change"])] for r in table.to_pylist()]


SECTIONS = (("layers", "fund spending per layer", ("layer", "label")),
            ("tiers", "fund spending per tier", ("tier", "claims")),
            ("levels", "fund spending per hospital level", ("hospital_level", "claims")))


def print_report(r, out) -> None:
    from rich.table import Table
    from ._common import amount_column, text_column
    out.print(f"[bold]{r.policy_a} → {r.policy_b}[/]: {r.compared:,} claims compared "
              f"({r.rejected_a:,} rejected under A, {r.rejected_b:,} under B)")
    for attr, title, keys in SECTIONS:
        t = Table(title=title, title_justify="left")
        for k in keys:
            (amount_column if k == "claims" else text_column)(t, k)
        for name in ("A (yuan)", "B (yuan)", "change"):
            amount_column(t, name)
        for row in _rows(getattr(r, attr), keys):
            t.add_row(*row)
        out.print(t)
    tot = r.totals
    out.print(f"fund total {_money(tot['fund_a'])} → {_money(tot['fund_b'])} "
              f"({_signed(tot['fund_b'] - tot['fund_a'])}); self-pay changed for "
              f"{r.changed:,} claims ({r.raised:,} up, {r.lowered:,} down)")
    t = Table(title="largest movers (self-pay)", title_justify="left")
    for name in ("claim", "person", "tier", "level"):
        text_column(t, name)
    for name in ("A", "B", "change"):
        amount_column(t, name)
    for m in r.movers.to_pylist():
        t.add_row(m["claim_id"], m["person_id"], str(m["tier"]), str(m["hospital_level"]),
                  _money(m["self_pay_a"]), _money(m["self_pay_b"]), _signed(m["change"]))
    out.print(t)

"""`yibao diff --policy A --policy B --claims C`: what changing policy A into B costs."""
from __future__ import annotations

import html
import sys

NAME = "diff"
HELP = "settle claims under two policies: fund spending per layer/tier/level, self-pay movers"


def add_arguments(parser):
    parser.add_argument("--policy", action="append", required=True, metavar="POLICY",
                        help="give twice: the current policy, then the changed one")
    parser.add_argument("--claims", required=True, help="Parquet file/folder or Arrow IPC file")
    parser.add_argument("--html", metavar="FILE", help="also write an HTML report with charts")
    parser.add_argument("--top", type=int, default=10, help="largest movers to list")


def run(args) -> int:
    from yibao.core.arrow_io import ClaimsError
    from yibao.core.diff import diff_policies
    from yibao.core.versions import VersionError
    from ._common import console, read_claims, registry
    from ._policies import load_versions
    if len(args.policy) != 2:
        print("yibao diff: give --policy exactly twice (A, then B)", file=sys.stderr)
        return 2
    reg = registry(*args.policy)
    plans = [load_versions(p, reg) for p in args.policy]
    if None in plans:
        return 2
    try:
        report = diff_policies(plans[0], plans[1], read_claims(args.claims), reg, top=args.top)
    except (ClaimsError, VersionError, OSError) as exc:
        print(f"yibao diff: {exc}", file=sys.stderr)
        return 2
    print_report(report, console())
    if args.html:
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
    return [[*(str(r[k]) for k in key_cols), _money(r["fund_a"]), _money(r["fund_b"]),
             _signed(r["change"])] for r in table.to_pylist()]


SECTIONS = (("layers", "fund spending per layer", ("layer", "label")),
            ("tiers", "fund spending per tier", ("tier", "claims")),
            ("levels", "fund spending per hospital level", ("hospital_level", "claims")))


def print_report(r, out) -> None:
    from rich.table import Table
    out.print(f"[bold]{r.policy_a} → {r.policy_b}[/]: {r.compared:,} claims compared "
              f"({r.rejected_a:,} rejected under A, {r.rejected_b:,} under B)")
    for attr, title, keys in SECTIONS:
        t = Table(title=title, title_justify="left")
        for k in keys:
            t.add_column(k)
        for name in ("A (yuan)", "B (yuan)", "change"):
            t.add_column(name, justify="right")
        for row in _rows(getattr(r, attr), keys):
            t.add_row(*row)
        out.print(t)
    tot = r.totals
    out.print(f"fund total {_money(tot['fund_a'])} → {_money(tot['fund_b'])} "
              f"({_signed(tot['fund_b'] - tot['fund_a'])}); self-pay changed for "
              f"{r.changed:,} claims ({r.raised:,} up, {r.changed - r.raised:,} down)")
    t = Table(title="largest movers (self-pay)", title_justify="left")
    for name in ("claim", "person", "tier", "level", "A", "B", "change"):
        t.add_column(name, justify="right" if name in ("A", "B", "change") else "left")
    for m in r.movers.to_pylist():
        t.add_row(m["claim_id"], m["person_id"], str(m["tier"]), str(m["hospital_level"]),
                  _money(m["self_pay_a"]), _money(m["self_pay_b"]), _signed(m["change"]))
    out.print(t)


# -- HTML with inline SVG (no scripts, nothing fetched) --------------------------------------


def svg_pairs(labels, a, b, width=640) -> str:
    """Horizontal bars, A and B per label, scaled to the largest value."""
    top = max([1, *map(abs, a), *map(abs, b)])
    row, left, bar = 34, 170, width - 170 - 110
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{row * len(labels) + 10}" role="img">']
    for i, (label, x, y) in enumerate(zip(labels, a, b)):
        top_y = 5 + i * row
        parts.append(f'<text x="0" y="{top_y + 20}" font-size="12">{html.escape(str(label))}'
                     '</text>')
        for k, (v, colour) in enumerate(((x, "#8aa"), (y, "#c63"))):
            w = round(bar * abs(v) / top)
            yy = top_y + k * 13
            parts.append(f'<rect x="{left}" y="{yy}" width="{w}" height="11" fill="{colour}">'
                         f'<title>{"AB"[k]}: {_money(v)}</title></rect>')
            parts.append(f'<text x="{left + w + 4}" y="{yy + 10}" font-size="10">'
                         f'{_money(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(table, width=640, height=200) -> str:
    rows = table.to_pylist()
    if not rows:
        return "<p>No claim's self-pay changed.</p>"
    top = max(r["claims"] for r in rows)
    w = (width - 20) / len(rows)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             'role="img">']
    for i, r in enumerate(rows):
        h = round((height - 10) * r["claims"] / top)
        parts.append(f'<rect x="{10 + i * w:.1f}" y="{height - h}" width="{w - 2:.1f}" '
                     f'height="{h}" fill="#c63"><title>[{_money(r["lo"])}, {_money(r["hi"])}): '
                     f'{r["claims"]} claims</title></rect>')
    parts.append(f'<text x="10" y="{height + 20}" font-size="11">{_money(rows[0]["lo"])}</text>')
    parts.append(f'<text x="{width - 10}" y="{height + 20}" font-size="11" text-anchor="end">'
                 f'{_money(rows[-1]["hi"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(table, keys) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in (*keys, "A", "B", "change"))
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in _rows(table, keys))
    return f"<table><tr>{head}</tr>{body}</table>"


def html_report(r) -> str:
    """A self-contained HTML page: summary, tables and inline SVG charts."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>yibao diff</title>"
             "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto}"
             "td,th{padding:2px 8px;text-align:right}</style></head><body>",
             f"<h1>{e(r.policy_a)} → {e(r.policy_b)}</h1>",
             f"<p>{r.compared:,} claims compared; fund {_money(r.totals['fund_a'])} → "
             f"{_money(r.totals['fund_b'])} yuan; self-pay changed for {r.changed:,} claims "
             f"({r.raised:,} up).</p>"]
    for attr, title, keys in SECTIONS:
        t = getattr(r, attr)
        labels = t.column(keys[0]).to_pylist()
        parts += [f"<h2>{e(title)}</h2>",
                  svg_pairs(labels, t.column("fund_a").to_pylist(), t.column("fund_b").to_pylist()),
                  _html_table(t, keys)]
    parts += ["<h2>change in self-pay (claims that changed, yuan)</h2>",
              svg_histogram(r.histogram), "<h2>largest movers</h2><table>"]
    parts.append("".join(f"<tr><td>{e(m['claim_id'])}</td><td>{e(str(m['tier']))}</td>"
                         f"<td>{_money(m['self_pay_a'])}</td><td>{_money(m['self_pay_b'])}</td>"
                         f"<td>{_signed(m['change'])}</td></tr>" for m in r.movers.to_pylist()))
    parts.append("</table></body></html>")
    return "".join(parts)

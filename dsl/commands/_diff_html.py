"""The `yibao diff --html` report: one self-contained page, charts drawn by Plotly.

Plotly's JavaScript is inlined once (``include_plotlyjs=True``), so the page opens offline and
fetches nothing. The page is ``lang="zh-CN"`` with a font stack that names the common Chinese
fonts of Linux, macOS and Windows before ``sans-serif``, so labels such as 基本医保住院 do not
fall back to a Latin font's missing-glyph boxes. Every chart has a legend (which colour is
which policy), titled axes and tooltips with the exact amounts; every table has a header.

Money stays int64 fen in the report; bar lengths are yuan as floats for drawing only, every
amount a reader sees (tables, tooltips, summary) is formatted from the exact fen.
"""
from __future__ import annotations

import html

FONT_STACK = ('"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", '
              '"WenQuanYi Micro Hei", sans-serif')
COLOUR_A, COLOUR_B, COLOUR_CHANGE = "#4c78a8", "#e45756", "#72b7b2"

SECTIONS = (("layers", "各层基金支出 fund spending per layer", ("layer", "label")),
            ("tiers", "各档基金支出 fund spending per tier", ("tier", "claims")),
            ("levels", "各级医院基金支出 fund spending per hospital level",
             ("hospital_level", "claims")))


def _money(fen) -> str:
    from yibao.core.describe import format_money
    return format_money(int(fen))


def _signed(fen) -> str:
    return ("+" if fen > 0 else "") + _money(fen)


def _yuan(fen) -> float:
    return int(fen) / 100  # drawing only: bar length in a chart, never a reported amount


def _layout(fig, legend: str, x_title: str, y_title: str, height: int) -> None:
    """Fonts, legend, titled axes; the section's <h2> is the chart's title."""
    fig.update_layout(
        height=height, font={"family": FONT_STACK, "size": 13},
        legend={"title": {"text": legend}, "orientation": "h", "y": -0.25},
        xaxis={"title": {"text": x_title}, "tickformat": ",~r"},
        yaxis={"title": {"text": y_title}}, margin={"l": 170, "r": 30, "t": 20, "b": 90},
        plot_bgcolor="white", paper_bgcolor="white", hoverlabel={"font": {"family": FONT_STACK}})
    fig.update_xaxes(showline=True, linecolor="#444", gridcolor="#ddd", zerolinecolor="#444")
    fig.update_yaxes(showline=True, linecolor="#444")


def pairs_figure(r, attr: str):
    """Grouped horizontal bars: the fund spending of each row under A and under B."""
    import plotly.graph_objects as go
    rows = getattr(r, attr).to_pylist()
    key = getattr(r, attr).column_names[0]
    labels = [_row_label(row, key) for row in rows]
    fig = go.Figure()
    for side, name, colour in (("a", r.policy_a, COLOUR_A), ("b", r.policy_b, COLOUR_B)):
        fig.add_trace(go.Bar(
            name=f"{side.upper()}: {name}", y=labels, x=[_yuan(x[f"fund_{side}"]) for x in rows],
            orientation="h", marker_color=colour,
            customdata=[_money(x[f"fund_{side}"]) for x in rows],
            hovertemplate=f"%{{y}}<br>{side.upper()}: %{{customdata}} 元<extra></extra>"))
    fig.update_layout(barmode="group")
    _layout(fig, "政策 policy", "基金支出 fund spending (元 yuan)", key,
            150 + 56 * max(1, len(rows)))
    fig.update_yaxes(autorange="reversed")
    return fig


def _row_label(row: dict, key: str) -> str:
    if key == "layer":
        return f"{row['label']} {row['layer']}" if row.get("label") else str(row["layer"])
    return str(row[key])


def histogram_figure(r):
    """The changed claims' self-pay change (B − A), one bar per integer-fen bin."""
    import plotly.graph_objects as go
    rows = r.histogram.to_pylist()
    fig = go.Figure(go.Bar(
        name=f"self-pay changed 自付变化: {r.raised:,} up 上升, {r.lowered:,} down 下降",
        x=[(_yuan(b["lo"]) + _yuan(b["hi"])) / 2 for b in rows],
        width=[_yuan(b["hi"] - b["lo"]) for b in rows], y=[b["claims"] for b in rows],
        marker={"color": COLOUR_CHANGE, "line": {"color": "#2f6f6a", "width": 1}},
        customdata=[f"[{_money(b['lo'])}, {_money(b['hi'])})" for b in rows],
        hovertemplate="%{customdata} 元: %{y:,} claims 病例<extra></extra>", showlegend=True))
    _layout(fig, "", "个人自付变化 change in self-pay per claim, B − A (元 yuan)",
            "病例数 claims", 400)
    fig.update_layout(bargap=0, margin={"l": 80})
    return fig


def _table(head, rows, numeric_from: int) -> str:
    """An HTML table with a header row; columns from ``numeric_from`` on are right-aligned."""
    e = html.escape
    th = "".join(f"<th scope='col'{' class=num' if i >= numeric_from else ''}>{e(h)}</th>"
                 for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{' class=num' if i >= numeric_from else ''}>{e(str(c))}"
                                    "</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def section_table(table, keys) -> str:
    rows = [[*(r[k] for k in keys), _money(r["fund_a"]), _money(r["fund_b"]),
             _signed(r["change"])] for r in table.to_pylist()]
    return _table([*keys, "A (元 yuan)", "B (元 yuan)", "change 变化"], rows, len(keys))


def movers_table(r) -> str:
    if r.movers.num_rows == 0:
        return "<p>No claim's self-pay changed. 没有病例的个人自付发生变化。</p>"
    rows = [[m["claim_id"], m["person_id"], m["tier"], m["hospital_level"],
             _money(m["self_pay_a"]), _money(m["self_pay_b"]), _signed(m["change"])]
            for m in r.movers.to_pylist()]
    head = ["claim 病例", "person 参保人", "tier 档次", "level 医院等级",
            "self-pay A 自付 (元)", "self-pay B 自付 (元)", "change 变化 (元)"]
    return _table(head, rows, 4)


def summary_table(r) -> str:
    t = r.totals
    rows = [["claims compared 比较病例", f"{r.compared:,}"],
            ["rejected under A / B 拒付", f"{r.rejected_a:,} / {r.rejected_b:,}"],
            ["fund spending A 基金支出", _money(t["fund_a"])],
            ["fund spending B 基金支出", _money(t["fund_b"])],
            ["change 变化 (B − A)", _signed(t["fund_b"] - t["fund_a"])],
            ["self-pay changed 自付变化病例", f"{r.changed:,}"],
            ["… up 上升", f"{r.raised:,}"], ["… down 下降", f"{r.lowered:,}"]]
    return _table(["", "value 数值"], rows, 1)


STYLE = f"""
body {{ font-family: {FONT_STACK}; max-width: 980px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
th, td {{ padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
th {{ background: #f3f3f3; }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.legend-a {{ color: {COLOUR_A}; font-weight: bold; }} .legend-b {{ color: {COLOUR_B};
font-weight: bold; }}
"""


def html_report(r) -> str:
    """The whole page (module docstring)."""
    e = html.escape
    figures = [(title, pairs_figure(r, attr), section_table(getattr(r, attr), keys))
               for attr, title, keys in SECTIONS]
    parts = ["<!doctype html>", "<html lang='zh-CN'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>yibao diff: {e(r.policy_a)} → {e(r.policy_b)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>政策对比 policy diff: <span class='legend-a'>A {e(r.policy_a)}</span> → "
             f"<span class='legend-b'>B {e(r.policy_b)}</span></h1>", summary_table(r)]
    for i, (title, fig, table) in enumerate(figures):
        parts += [f"<h2>{e(title)}</h2>", _div(fig, f"yibao-diff-{i}", first=i == 0), table]
    parts += ["<h2>个人自付变化 change in self-pay</h2>"]
    if r.histogram.num_rows:
        parts.append(_div(histogram_figure(r), "yibao-diff-histogram", first=False))
    parts += ["<h2>变化最大的病例 largest movers (self-pay)</h2>", movers_table(r),
              "</body></html>"]
    return "\n".join(parts)


def _div(fig, div_id: str, first: bool) -> str:
    """A figure's <div>; the first one carries plotly.js itself, inlined."""
    return fig.to_html(full_html=False, include_plotlyjs=True if first else False,
                       div_id=div_id, config={"displaylogo": False, "responsive": True})

"""The settlement summary as a terminal table (used by `yibao demo`)."""
from __future__ import annotations

import pyarrow.compute as pc

from yibao.core.describe import format_money


def summarise(plan, claims, result, seconds: float) -> dict:
    """Counts and per-layer totals (fen) of one settled batch."""
    res = result.results
    layers = {layer.name: int(pc.sum(res.column(layer.name)).as_py() or 0)
              for layer in plan.layers}
    return {
        "policy": plan.name, "input_rows": result.input_rows, "settled": res.num_rows,
        "rejected": result.rejects.num_rows, "layers": layers,
        "labels": {layer.name: layer.label for layer in plan.layers},
        "self_pay": int(pc.sum(res.column("self_pay")).as_py() or 0),
        "seconds": round(seconds, 3),
    }


def print_summary(summary: dict, console) -> None:
    from rich.table import Table
    from ._common import amount_column
    table = Table(title=f"{summary['policy']}: {summary['settled']:,} claims settled, "
                        f"{summary['rejected']:,} rejected", title_justify="left")
    table.add_column("layer")
    table.add_column("label")
    amount_column(table, "paid (yuan)")
    for name, fen in summary["layers"].items():
        table.add_row(name, summary["labels"].get(name, ""), format_money(fen))
    table.add_row("self_pay", "个人自付", format_money(summary["self_pay"]))
    console.print(table)
    rate = summary["settled"] / summary["seconds"] if summary["seconds"] else 0
    console.print(f"{summary['input_rows']:,} input rows in {summary['seconds']:.2f}s "
                  f"({rate:,.0f} claims/s)")

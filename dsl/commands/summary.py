"""The settlement summary as a terminal table (used by `yibao demo`)."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# pyarrow.compute and the core are imported by the functions that use them: the CLI imports
# every module of this package to find its commands, and `yibao check` should not pay for them


def summarise(plan, claims, result, seconds: float) -> dict:
    """Counts and per-layer totals (fen) of one settled batch."""
    import pyarrow.compute as pc
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
    from yibao.core.describe import format_money
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


def summarise_pools(result, pools) -> list:
    """One dict per provider pool of a settled year: claims, grouping rate, point value and
    the fund's money against the fee-for-service cost (what ``yibao demo`` prints beside the
    benefit summary). ``pools`` is the pools table of ``provider.settle_provider_year``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    res = result.results
    if "pool" not in res.column_names or pools is None or not pools.num_rows:
        return []
    rows = []
    for pool in pools.to_pylist():
        if pool.get("kind") == "alliance":  # a 医共体's budget spans pools: not a pool row
            continue
        mine = res.filter(pc.equal(res.column("pool"), pool["pool"]))
        status = mine.column("grouping_status")
        grouped = int(pc.sum(pc.is_in(status, value_set=pa.array(["ok", "default"]))).as_py() or 0)
        rows.append({"pool": pool["pool"], "claims": mine.num_rows, "grouped": grouped,
                     "points_e4": pool["points"], "point_value_e6": pool["point_value_e6"],
                     "budget": pool["control_total"], "fund_cost": pool["fund_cost"],
                     "fund_pays": pool["hifp_pay"]})
    return rows


def _percent(part: int, whole: int) -> str:
    """part / whole as a percentage with one decimal, exact (Decimal), '—' for 0/0."""
    if not whole:
        return "—"
    return f"{(Decimal(part) * 100 / Decimal(whole)).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def print_pools(rows: list, console) -> None:
    """The pools table: grouping rate, point value (yuan a point), budget, the fund's
    fee-for-service cost and what it pays; surplus/overrun = pays / cost − 1."""
    from yibao.core.describe import format_money
    if not rows:
        return
    from rich.table import Table
    from ._common import amount_column
    table = Table(title="provider payment (点数法)", title_justify="left")
    table.add_column("pool")
    for header in ("claims", "grouped", "point value (yuan)", "budget (yuan)",
                   "fund cost FFS (yuan)", "fund pays (yuan)", "vs FFS"):
        amount_column(table, header)
    for r in rows:
        value = (Decimal(r["point_value_e6"]) / Decimal(100_000_000)).quantize(
            Decimal("0.01"), ROUND_HALF_UP)
        diff = _percent(r["fund_pays"] - r["fund_cost"], r["fund_cost"])
        table.add_row(r["pool"], f"{r['claims']:,}", _percent(r["grouped"], r["claims"]),
                      f"{value:,}", format_money(r["budget"]), format_money(r["fund_cost"]),
                      format_money(r["fund_pays"]), diff if diff.startswith(("-", "—")) else "+" + diff)
    console.print(table)


def print_flags(summary: dict, labels: dict, console) -> None:
    """The supervision table: flags per rule (supervision.summary), then what the review
    effect holds. Nothing for a policy without flags."""
    from yibao.core.describe import format_money
    if not summary:
        return
    from rich.table import Table
    from ._common import amount_column
    table = Table(title="supervision flags (医保基金监管)", title_justify="left")
    table.add_column("rule")
    table.add_column("label")
    amount_column(table, "flags")
    for rule in labels:
        table.add_row(rule, labels[rule], f"{summary['flags'].get(rule, 0):,}")
    console.print(table)
    if summary.get("held_claims"):
        console.print(f"held for review: {summary['held_claims']:,} claim(s), fund "
                      f"{format_money(summary['pending_review'])} yuan (pending_review)")

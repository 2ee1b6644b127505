"""Read the provider-payment tables (the second provider pass): every CSV or ``.xlsx`` a pool
or alliance names, through the one table reader (``dsl/table_files.py``: the policy's
folder only, UTF-8 or GBK/GB18030, a sheet's first page), with its header checked.

``ctx.provider_tables[id(file reference)]`` is a ``ProviderTable`` (rows as
``(line, {column: cell})``, '#' comment lines and blank lines skipped) or None when the file
could not be read or its header is wrong (reported: E304/E305, E507). Cells are converted
later, by ``check_pools``, which knows what each one means. Decision tables are read by
``check_groupers``, which parses them.

The header each statement's file must have (``HEADERS``): required columns, then optional
ones (``"*"``: any further column, the years of ``budget from``).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from yibao.core.plan import RATIO_SCALE

from .. import ast
from ..errors import error
from ..table_files import is_workbook, read_table_file
from . import Context

HEADERS = {
    ast.BudgetFrom: (("hospital_id",), "*"),
    ast.Prepayments: (("hospital_id", "month", "amount"), ()),
    ast.BasePoints: (("group", "points", "avg_cost"), ("label",)),
    ast.BedDay: (("group", "points_per_day"), ("label",)),
    ast.SpecialReview: (("claim_id", "points"), ("reason", "label")),
    ast.FixedPointValue: (("hospital_id", "point_value"), ("compensation", "label")),
    ast.Capitation: (("institution", "persons"), ()),
    ast.AllianceBudget: (("alliance", "persons"), ("label",)),
}


@dataclass(frozen=True)
class ProviderTable:
    name: str  # the file as the policy names it
    rows: tuple  # ((line, {column: cell}), …)


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    ctx.provider_tables = {}
    decls = ctx.provider_decls
    for decl in (*decls["pools"].values(), *decls["alliances"].values()):
        for stmt in decl.statements:
            for ref, required, optional in table_refs(stmt):
                rows = read_csv(ref, ctx, required, optional)
                ctx.provider_tables[id(ref)] = None if rows is None else ProviderTable(
                    ref.value, tuple(rows))
    return policy


def table_refs(stmt) -> list:
    """(file reference, required columns, optional columns) of each table ``stmt`` names."""
    if isinstance(stmt, ast.Coefficients):  # keyed by the statement's own column
        return [] if stmt.csv is None else [(stmt.csv, (stmt.column.name, "group",
                                                        "coefficient"), ())]
    if type(stmt) not in HEADERS:
        return []
    required, optional = HEADERS[type(stmt)]
    refs = (stmt.csv, *stmt.more) if isinstance(stmt, ast.BasePoints) else (stmt.csv,)
    return [(ref, required, optional) for ref in refs]


def rows_of(ctx: Context, ref: ast.Str):
    """The rows this pass read for ``ref`` (None: unreadable, reported). A reference it did
    not read is a compiler bug, raised as KeyError rather than passed over silently."""
    table = ctx.provider_tables[id(ref)]
    return None if table is None else list(table.rows)


def at(ref: ast.Str, n: int) -> str:
    """Where a cell is, for a message: ``points.csv line 3`` or ``points.xlsx row 3``."""
    return f"{ref.value} {'row' if is_workbook(ref) else 'line'} {n}"


def read_csv(ref: ast.Str, ctx: Context, required: tuple, optional=()):
    """[(line, {column: cell})] of a table beside the policy ('#' lines and blank lines
    skipped), or None (reported)."""
    file = read_table_file(ref, ctx, "file")
    if file is None:
        return None
    records = [(n, cells) for n, cells in file.records if _content(cells)]
    if not records:
        ctx.report(error("E507", f"file '{ref.value}' has no header", ref.span))
        return None
    header = [h.strip() for h in records[0][1]]
    if not _header_ok(header, ref, ctx, required, optional):
        return None
    rows = []
    for n, cells in records[1:]:
        cells = [c.strip() for c in cells]
        if len(cells) != len(header):
            ctx.report(error("E507", f"{at(ref, n)}: {len(cells)} cells, the header "
                             f"has {len(header)}", ref.span))
            return None
        rows.append((n, dict(zip(header, cells))))
    return rows


def _content(cells: list) -> bool:
    """A record that is neither blank nor a '#' comment."""
    text = ",".join(cells)
    return bool(text.strip()) and not text.lstrip().startswith("#")


def _header_ok(header: list, ref: ast.Str, ctx: Context, required: tuple, optional) -> bool:
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional
               and optional != "*"]
    if missing or unknown:
        ctx.report(error("E507", f"file '{ref.value}' header {','.join(header)}: "
                         + (f"missing {', '.join(missing)}" if missing else
                            f"unknown column {', '.join(unknown)}"), ref.span,
                         f"the header is {','.join(required)}"
                         + (f" (optional: {','.join(optional)})" if optional else "")))
    return not (missing or unknown)


def decimal_cell(cell: str, scale: int, ref: ast.Str, n: int, what: str, ctx: Context):
    """int(cell × scale), exact, else None (reported)."""
    try:
        value = Decimal(cell.replace("_", "")) * scale
    except InvalidOperation:
        value = None
    if value is None or value != value.to_integral_value() or value < 0:
        ctx.report(error("E507", f"{at(ref, n)}: {what} {cell!r} is not a number "
                         f"exact at 1/{scale}", ref.span))
        return None
    return int(value)


def percent_cell(cell: str, ref: ast.Str, n: int, ctx: Context):
    """A ratio cell written ``70%`` (or ``0.7``) as millionths in 0..100%, else None
    (reported E507)."""
    text = cell.strip()
    scale = RATIO_SCALE // 100 if text.endswith("%") else RATIO_SCALE
    value = decimal_cell(text.removesuffix("%"), scale, ref, n, "compensation", ctx)
    if value is not None and value > RATIO_SCALE:
        ctx.report(error("E507", f"{at(ref, n)}: compensation {cell!r} is above 100%",
                         ref.span))
        return None
    return value

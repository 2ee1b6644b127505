"""Check every table (declared, CSV-loaded, and each layer's `ratio by`) and convert its rows
to engine units in ``ctx.table_rows[name] = ((keys, value, span), …)``.

- a row with the wrong number of keys: E303; a key outside its column's domain: E206;
- a repeated key tuple: E302;
- when every key column has a closed domain (text/int `of {…}`, bool), every combination must
  have a row: E301 counts the missing ones and names the first few, in time proportional to
  the rows present (never by listing the product of the domains);
- `from "file.csv"` reads a CSV in the policy's own folder only (E304 for absolute paths,
  `..` or a NUL byte; E305 when it cannot be read: missing, not a regular file — a FIFO is
  refused before it is opened —, neither UTF-8 nor GBK/GB18030 (naming the encoding it seems
  to be in)); `from "file.xlsx"` reads the first sheet of an Excel workbook (openpyxl). The
  header is the key names then `value`; a cell is a number only when written in ASCII digits,
  money also as `30万`, `3000元`, `1.5万元` (exact: 万 is 10,000 yuan).
"""
from __future__ import annotations

import itertools
import math
import re
from decimal import Decimal

from yibao.core.plan import BOOL, INT, MONEY, RATIO, TEXT, Type

from .. import ast
from ..errors import error
from ..table_files import TableFile, read_table_file
from ..units import UnitError, number_value
from . import Context


MAX_MISSING_SHOWN = 4
# money as Chinese spreadsheets write it: 30万, 3000元, 1.5万元 (万 = 10,000 yuan)
CHINESE_AMOUNT = re.compile(r"(-?[0-9][0-9_]*(?:\.[0-9]+)?)\s*(万元|万|元)")
AMOUNT_SPELLINGS = ("write amounts as 300000 or 300_000 yuan (in a CSV or .xlsx table also "
                    "30万, 3000元 or 1.5万元)")


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    for table in policy.tables():
        rows = table.rows if table.csv is None else _load_csv(table, ctx)
        if rows is not None:
            _check(table.name.name, table.keys, table.value_type.kind, rows, table.span, ctx,
                   table.csv is not None)
    for layer in policy.layers():
        for stmt in layer.statements:
            if isinstance(stmt, ast.RatioBy):
                _check(f"{layer.name.name}.ratio", (stmt.column,), RATIO, stmt.rows, stmt.span,
                       ctx)
    return policy


def _check(name, keys, kind, rows, span, ctx: Context, from_csv: bool = False) -> None:
    key_types = [ctx.columns.get(k.name) for k in keys]
    if None in key_types or name in ctx.table_rows:
        return  # unknown key column (reported by resolve_names) or duplicate table name
    out, seen, bad, values_at = [], {}, False, []
    for row in rows:
        if len(row.keys) != len(keys):
            ctx.report(error("E303", f"table '{name}' has {len(keys)} key(s); this row has "
                             f"{len(row.keys)}", row.span))
            bad = True
            continue
        values = [literal(k, t, ctx) for k, t in zip(row.keys, key_types)]
        value = literal(row.value, Type(kind), ctx)
        if None in values or value is None:
            bad = True
            continue
        key = tuple(values)
        if key in seen:
            ctx.report(error("E302", f"table '{name}' has two rows for "
                             f"({_show(key, key_types)})", row.span,
                             f"the first is on line {seen[key].line}"))
            continue
        seen[key] = row.span
        out.append((key, value, row.span))
        # a CSV cell's own span is the `from "…"` text; the row's span names the CSV line
        values_at.append((row.value, value, row.span if from_csv else row.value.span))
    ctx.table_rows[name] = tuple(out)
    ctx.table_values[name] = tuple(values_at)
    if not bad:  # a row already reported would only be reported again as missing
        _check_complete(name, key_types, seen, span, ctx)


def _check_complete(name, key_types, seen, span, ctx: Context) -> None:
    """E301 when a combination of closed-domain keys has no row. Every row in ``seen`` is a
    distinct in-domain combination, so the count missing is the product of the domain sizes
    minus the rows; the first few missing ones are found walking the product in order and
    stopping after MAX_MISSING_SHOWN misses, which visits at most len(seen) + that many
    combinations (six keys of 20 values: 64 million combinations, none listed)."""
    domains = [_closed(t) for t in key_types]
    if any(d is None for d in domains):
        return
    count = math.prod(len(d) for d in domains) - len(seen)
    if count <= 0:
        return
    first = []
    for combo in itertools.product(*domains):
        if combo not in seen:
            first.append(combo)
            if len(first) == MAX_MISSING_SHOWN:
                break
    shown = "; ".join(f"({_show(m, key_types)})" for m in first)
    more = f" and {count - len(first):,} more" if count > len(first) else ""
    ctx.report(error("E301", f"table '{name}' has no row for {shown}{more}", span,
                     "every combination of closed-domain keys needs a row"))


def _closed(t: Type):
    """Engine values of a closed domain, or None when the column is open."""
    if t.kind == BOOL:
        return (False, True)
    if t.domain is None:
        return None
    return tuple(range(len(t.domain))) if t.kind == TEXT else tuple(t.domain)


def _show(key, key_types) -> str:
    parts = []
    for v, t in zip(key, key_types):
        parts.append(t.domain[v] if t.kind == TEXT and t.domain else str(v).lower()
                     if isinstance(v, bool) else str(v))
    return ", ".join(map(str, parts))


def literal(node, t: Type, ctx: Context):
    """A table key or value literal in engine units for type ``t``, or None (reported)."""
    try:
        return _literal(node, t)
    except UnitError as exc:
        ctx.report(error(exc.code, exc.message, node.span, exc.hint))
        return None


def _literal(node, t: Type):
    if t.kind == TEXT:
        if isinstance(node, (ast.Name, ast.Str)):
            word = node.name if isinstance(node, ast.Name) else node.value
            if t.domain is None:
                return word
            if word in t.domain:
                return t.domain.index(word)
            raise UnitError("E206", f"'{word}' is not one of {{{', '.join(t.domain)}}}")
        found = ("a number" if isinstance(node, ast.Number) else
                 f"'{str(node.value).lower()}'" if isinstance(node, ast.Bool) else "an expression")
        if t.domain is None:
            raise UnitError("E210", f"expected a word or quoted text, found {found}")
        raise UnitError("E210", f"expected one of {{{', '.join(t.domain)}}}, found {found}")
    if t.kind == BOOL:
        if isinstance(node, ast.Bool):
            return node.value
        raise UnitError("E210", "expected true or false")
    if not isinstance(node, ast.Number):
        raise UnitError("E210", f"expected {'an amount' if t.kind == MONEY else 'a ' + t.kind}",
                        AMOUNT_SPELLINGS if t.kind == MONEY else None)
    value = number_value(node.text, node.unit, t.kind)
    if t.kind == INT and t.domain is not None and value not in t.domain:
        raise UnitError("E206", f"{value} is not one of {{{', '.join(map(str, t.domain))}}}")
    return value


# -- CSV -------------------------------------------------------------------------------------

def _load_csv(table: ast.TableDecl, ctx: Context):
    """The CSV's or sheet's rows as AST rows (spans point at the `from "…"` text), or None;
    read by the one table reader (``dsl/table_files.py``)."""
    file = read_table_file(table.csv, ctx)
    return None if file is None else _table_rows(file, table, ctx)


def _table_rows(file: TableFile, table: ast.TableDecl, ctx: Context):
    """The header check and the rows of a CSV or sheet (lists of cell texts), or None."""
    want = [k.name for k in table.keys] + ["value"]
    records = file.records
    if not records or [h.strip() for h in records[0][1]] != want:
        ctx.report(error("E305", f"table file '{table.csv.value}' must start with the header "
                         f"{','.join(want)}", table.csv.span))
        return None
    return tuple(_csv_row(cells, table, n, ctx, file.unit) for n, cells in records[1:]
                 if any(c.strip() for c in cells))


def _csv_row(cells, table: ast.TableDecl, lineno: int, ctx: Context,
             unit: str = "line") -> ast.Row:
    span = table.csv.span
    row_span = ast.Span(f"{span.file} ({table.csv.value} {unit} {lineno})", span.line,
                        span.col, span.end_line, span.end_col)
    nodes = [_csv_cell(c.strip(), row_span) for c in cells]
    return ast.Row(row_span, tuple(nodes[:-1]), nodes[-1])


def _csv_cell(cell: str, row_span: ast.Span):
    """A cell as a literal node spanning its CSV line: true/false, a number (digits of any
    script, sign, '.', '_', an optional unit: number_value then refuses ``--5`` or ``²`` or
    full-width digits with E104 at that line), or text."""
    if cell in ("true", "false"):
        return ast.Bool(row_span, cell == "true")
    chinese = CHINESE_AMOUNT.fullmatch(cell)
    if chinese:  # 30万 / 3000元 / 1.5万元: yuan, exactly (Decimal, no float)
        number, unit = chinese.group(1).replace("_", ""), chinese.group(2)
        yuan = Decimal(number) * (10_000 if unit.startswith("万") else 1)
        return ast.Number(row_span, format(yuan, "f"), "yuan")
    for unit in ("%", " yuan", " fen", ""):
        number = cell[: len(cell) - len(unit)] if unit else cell
        if cell.endswith(unit) and _numberish(number):
            return ast.Number(row_span, number.replace("_", ""), unit.strip() or None)
    return ast.Str(row_span, cell)


def _numberish(text: str) -> bool:
    """Digits (any script: ３, ², ٣ …) with only signs, '.' and '_' around them."""
    return any(ch.isdigit() for ch in text) and all(ch.isdigit() or ch in "-+._"
                                                    for ch in text)

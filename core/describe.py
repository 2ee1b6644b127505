"""``Plan.describe()``: the plan as indented text, for `yibao plan`, reviews and golden tests.

Values print in policy units (yuan with two decimals, ratios in %), text domain values by name,
so the print reads like the policy it came from and a pass regression is a one-line diff.
"""
from __future__ import annotations

import datetime
from fractions import Fraction

from .plan import (BOOL, DATE, MONEY, PER_CLAIM, RATIO, RATIO_SCALE, TEXT, Band, Bands, Binary,
                   Call, Column, Cond, Const, Expr, InSet, Lookup, Not, Paid, Plan, Type)

EPOCH = datetime.date(1970, 1, 1)


def format_value(value, typ: Type) -> str:
    """One engine-unit value in policy units."""
    if value is None:
        return "null"
    if typ.kind == MONEY:
        return format_money(value)
    if typ.kind == RATIO:
        return format_ratio(value)
    if typ.kind == BOOL:
        return "true" if value else "false"
    if typ.kind == DATE:
        return (EPOCH + datetime.timedelta(days=value)).isoformat()
    if typ.kind == TEXT and typ.domain is not None and isinstance(value, int):
        return str(typ.domain[value])
    return str(value)


def format_money(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


def format_ratio(units: int) -> str:
    pct = Fraction(units * 100, RATIO_SCALE)
    if pct.denominator == 1:
        return f"{pct.numerator}%"
    return f"{float(pct):.4f}".rstrip("0") + "%"  # display only; the plan holds the exact int


def format_date(days: int) -> str:
    return (EPOCH + datetime.timedelta(days=days)).isoformat()


def expr_text(e: Expr) -> str:
    """An expression in policy syntax (fully parenthesised binary operators)."""
    fmt = _EXPR_FORMATTERS.get(type(e))
    if fmt is None:
        raise TypeError(f"describe: unsupported expression node {type(e).__name__}")
    return fmt(e)


def _binary(e: Binary) -> str:
    if e.op in ("min", "max"):
        return f"{e.op}({expr_text(e.left)}, {expr_text(e.right)})"
    return f"({expr_text(e.left)} {e.op} {expr_text(e.right)})"


def _inset(e: InSet) -> str:
    values = ", ".join(format_value(v, e.operand.type) for v in e.values)
    return f"{expr_text(e.operand)} in {{{values}}}"


def _paid(e: Paid) -> str:
    return f"paid({', '.join(e.layers)})" if e.layers else "paid"


_EXPR_FORMATTERS = {
    Const: lambda e: format_value(e.value, e.type),
    Column: lambda e: e.name,
    Binary: _binary,
    Not: lambda e: f"not {expr_text(e.operand)}",
    InSet: _inset,
    Cond: lambda e: f"if {expr_text(e.test)} then {expr_text(e.then)} else {expr_text(e.orelse)}",
    Lookup: lambda e: f"{e.table}[{', '.join(expr_text(a) for a in e.args)}]",
    Call: lambda e: f"{e.function}({', '.join(expr_text(a) for a in e.args)})",
    Paid: _paid,
}


def _scope(scope: str, key) -> str:
    return "per claim" if scope == PER_CLAIM else key.scope_text


def _bands_text(bands: Bands) -> list:
    lines = [f"bands {bands.key.scope_text}:"]
    lines += _band_rows(bands.bands, "  ")
    for alt in bands.alts:
        lines.append(f"  when {expr_text(alt.cond)}:")
        lines += _band_rows(alt.bands, "    ")
    return lines


def _band_rows(bands, indent: str) -> list:
    out = []
    for b in bands:
        hi = "and above" if b.hi is None else f"to {format_money(b.hi)}"
        out.append(f"{indent}{format_money(b.lo)} {hi}: {format_ratio(b.rate)}")
    return out


def _layer_lines(index: int, layer) -> list:
    src = f"  [{layer.source}]" if layer.source else ""
    out = [f"{index}. {layer.name} {layer.label!r}{src}",
           f"   applies: {expr_text(layer.applies)}",
           f"   base: {expr_text(layer.base)}"]
    d = layer.deductible
    if d is not None:
        cont = f" continuing when {expr_text(d.continuing)}" if d.continuing is not None else ""
        out.append(f"   deductible {_scope(d.scope, d.key)}: {expr_text(d.amount)}{cont}")
    if isinstance(layer.ratio, Bands):
        out.extend("   " + line for line in _bands_text(layer.ratio))
    elif layer.ratio is not None:
        out.append(f"   ratio: {expr_text(layer.ratio)}")
    for cap in layer.caps:
        name = f" {cap.name}" if cap.name else ""
        out.append(f"   cap{name} {_scope(cap.scope, cap.key)}: {expr_text(cap.amount)}")
    if layer.limit is not None:
        lim = layer.limit
        out.append(f"   self_pay_limit {lim.key.scope_text}: {expr_text(lim.amount)}")
    if getattr(layer, "national", ""):
        out.append(f"   national: {layer.national}")
    return out


def _table_lines(table) -> list:
    keys = ", ".join(str(t) for t in table.key_types)
    src = f"  [{table.source}]" if table.source else ""
    out = [f"table {table.name} ({keys}) -> {table.value_type.kind}{src}"]
    for key, value in table.rows:
        ks = ", ".join(format_value(k, t) for k, t in zip(key, table.key_types))
        out.append(f"  {ks}: {format_value(value, table.value_type)}")
    return out


def describe_plan(plan: Plan) -> str:
    y_m, y_d = plan.year_start
    out = [f"plan {plan.name!r} ({plan.version})",
           f"region {plan.region}; effective {format_date(plan.effective_from)} to "
           f"{format_date(plan.effective_to)}; policy year starts {y_m:02d}-{y_d:02d}",
           "columns:"]
    out.extend(f"  {c.name}: {c.type}" for c in plan.columns)
    for table in plan.tables:
        out.extend(_table_lines(table))
    out.append("layers:")
    for i, layer in enumerate(plan.layers, 1):
        out.extend(_layer_lines(i, layer))
    for grouper in plan.groupers:
        out.append(grouper.describe().rstrip("\n"))
    if plan.provider is not None:
        out.append(plan.provider.describe().rstrip("\n"))
    if getattr(plan, "supervision", None) is not None:
        out.append(plan.supervision.describe().rstrip("\n"))
    return "\n".join(out) + "\n"

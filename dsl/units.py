"""Literal values in engine units (money fen, ratio millionths, days since epoch).

Exactness is checked here: a money amount must be a whole number of fen (E213) and a ratio
exact in millionths (E212); no float is ever involved (Decimal arithmetic).
"""
from __future__ import annotations

import datetime
from decimal import Decimal

from yibao.core.plan import INT, MONEY, RATIO, RATIO_SCALE

EPOCH = datetime.date(1970, 1, 1)


class UnitError(ValueError):
    def __init__(self, code: str, message: str, hint: str = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def number_value(text: str, unit, kind: str) -> int:
    """The engine value of the number ``text`` written with ``unit`` in a place of ``kind``."""
    value = Decimal(text)
    if kind == MONEY:
        if unit == "%":
            raise UnitError("E214", f"'{text}%' is a ratio where money is expected")
        fen = value if unit == "fen" else value * 100
        if fen != fen.to_integral_value():
            raise UnitError("E213", f"{text} {unit or 'yuan'} is not a whole number of fen",
                            "money has at most 2 decimals in yuan (0 in fen)")
        return int(fen)
    if kind == RATIO:
        if unit in ("yuan", "fen"):
            raise UnitError("E214", f"'{text} {unit}' is money where a ratio is expected")
        scaled = value * RATIO_SCALE / (100 if unit == "%" else 1)
        if scaled != scaled.to_integral_value():
            raise UnitError("E212", f"ratio {text}{unit or ''} is not exact in millionths",
                            "use at most 6 decimals (4 in a percentage)")
        return int(scaled)
    if kind == INT:
        if unit is not None:
            raise UnitError("E214", f"'{text}{unit}' has a unit where a plain integer is expected")
        if value != value.to_integral_value():
            raise UnitError("E210", f"{text} is not an integer")
        return int(value)
    raise UnitError("E210", f"a number where {kind} is expected")


def date_days(text: str) -> int:
    return (datetime.date.fromisoformat(text) - EPOCH).days



"""Literal values in engine units (money fen, ratio millionths, days since epoch).

Exactness is checked here: a money amount must be a whole number of fen (E213) and a ratio
exact in millionths (E212); no float is ever involved (Decimal arithmetic). Range is checked
here too (E215): every number a policy can write has a bound far inside int64, so no literal
can make the engine's arithmetic leave int64 by itself (docs/reliability.md).
"""
from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

from yibao.core.plan import INT, MONEY, RATIO, RATIO_SCALE
from yibao.core.errors import YibaoError

EPOCH = datetime.date(1970, 1, 1)


class UnitError(YibaoError, ValueError):
    def __init__(self, code: str, message: str, hint: str = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


# The largest magnitude a policy may write, per kind, in engine units: 10 trillion yuan
# (10**15 fen; a city's yearly fund is about 10**12 fen), 100,000% (a ratio is millionths), and
# 10**12 for counts, points and days. Products of two of them still fit in int64 where the
# engine multiplies (money × ratio is computed exactly in 128 bits or Python ints).
MAX_LITERAL = {MONEY: 10**15, RATIO: 1000 * RATIO_SCALE, INT: 10**12}
_SHOWN_MAX = {MONEY: "10,000,000,000,000 yuan", RATIO: "100,000%", INT: "1,000,000,000,000"}

ASCII_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def number_value(text: str, unit, kind: str) -> int:
    """The engine value of the number ``text`` written with ``unit`` in a place of ``kind``."""
    if not ASCII_NUMBER.fullmatch(text):
        raise UnitError("E104", f"'{text}' is not a number", ascii_digits_hint(text))
    try:
        value = Decimal(text)
    except InvalidOperation:  # unreachable after the pattern; kept so no caller sees it
        raise UnitError("E104", f"'{text}' is not a number") from None
    engine = _engine_value(text, value, unit, kind)
    if abs(engine) > MAX_LITERAL[kind]:
        written = f"{text}{'' if unit in (None, '%') else ' '}{unit or ''}"
        raise UnitError("E215", f"{written} is outside the range a policy may write as "
                        f"{'an' if kind == INT else 'a'} {kind} ({_SHOWN_MAX[kind]} at most)",
                        "amounts that large are a typo (or a number of fen written as yuan)")
    return engine


def ascii_digits_hint(text: str):
    """For digits of another script (full-width ３, Arabic-Indic ٣ …): the ASCII spelling."""
    import unicodedata
    if not any(ch.isdigit() and not ch.isascii() for ch in text):
        return "write digits 0-9, an optional '-' and one '.', e.g. 1_000.50"
    plain = "".join(str(unicodedata.digit(ch)) if ch.isdigit() and not ch.isascii() else ch
                    for ch in text)
    if ASCII_NUMBER.fullmatch(plain):
        return f"write it with ASCII digits: {plain}"
    return "write digits 0-9, an optional '-' and one '.', e.g. 1_000.50"


def _engine_value(text: str, value: Decimal, unit, kind: str) -> int:
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



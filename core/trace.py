"""What the oracle (``reference.py``) reports while it settles: one event per step.

The reference evaluator takes an optional ``record`` callable and hands it one of these events
at every step of every claim it settles; ``ignore`` (the default) drops them, so the oracle's
results are the same with or without a recorder. ``explain.py`` is such a recorder: it keeps
the events of the claims it was asked about, which makes an explanation exact by construction
(the numbers are the oracle's own, not a second copy of the rules).

Events carry the values the oracle computed at that step (engine units: fen, millionths) and
the accumulator slot it read, never a recomputation. A lookup is reported as it matches
(``TableRow``), before the step that evaluated it; ``AccountWrite`` reports every change of an
accumulator (the recorder keeps which claim added what). Steps are reported in settlement
order: ``ClaimStarted``, then per layer ``LayerApplies`` and, when it applies, ``Base``,
``Deductible`` (if any), one of ``Ratio`` / ``Bands`` + ``BandPiece``… / ``Limit`` /
``FullPay``, ``Cap``… and ``LayerPaid``; then ``ClaimSettled`` or ``ClaimRefused``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


def ignore(event) -> None:
    """The default recorder: settles exactly as if nobody listened."""


@dataclass(frozen=True)
class ClaimStarted:
    plan: Any  # the plan (version) the claim is settled under
    row: dict  # the claim in engine units (reference._rows)
    year: int  # its policy year


@dataclass(frozen=True)
class TableRow:
    table: str
    key: tuple
    value: Any


@dataclass(frozen=True)
class AccountWrite:
    slot: tuple
    amount: int  # added (replace False) or the new value (replace True)
    replace: bool


@dataclass(frozen=True)
class LayerApplies:
    layer: Any
    applies: bool


@dataclass(frozen=True)
class Base:
    layer: Any
    raw: int  # the base expression's value, before clipping at 0
    base: int
    paid: dict  # what the earlier layers paid (for paid() in the base)


@dataclass(frozen=True)
class Deductible:
    layer: Any
    slot: tuple  # (layer, "ded", key value, year): "consumed" and "last" hang below it
    full: int  # the deductible amount D as written
    last: Optional[int]  # continuing: what the previous claim paid (D − last); else None
    amount: int  # D for this claim
    before: int  # consumed earlier this year (0 per claim)
    remaining: int
    used: int  # d = min(base, remaining)


@dataclass(frozen=True)
class Ratio:
    layer: Any
    e: int  # after the deductible
    ratio: int  # millionths
    pay: int  # e × ratio, half-up to the fen


@dataclass(frozen=True)
class Bands:
    layer: Any
    slot: tuple
    start: int  # the key's cumulative amount before this claim
    end: int
    when: Any = None  # the condition of the `when` band set that pays, None: the default set


@dataclass(frozen=True)
class BandPiece:
    layer: Any
    index: int
    band: Any  # plan.Band
    width: int  # fen of this claim's e inside the band
    pay: int  # width × rate, half-up


@dataclass(frozen=True)
class Limit:
    layer: Any
    slot: tuple
    amount: int  # the self-pay limit L
    kept_before: int  # burden the key kept earlier this year
    e: int
    pay: int  # min(e, max(0, kept_before + e − L))


@dataclass(frozen=True)
class FullPay:
    layer: Any
    e: int


@dataclass(frozen=True)
class Cap:
    layer: Any
    index: int
    slot: Optional[tuple]  # None per claim
    amount: int
    used: int  # used earlier this year (0 per claim)
    room: int


@dataclass(frozen=True)
class LayerPaid:
    layer: Any
    e: int
    before_caps: int
    pay: int


@dataclass(frozen=True)
class ClaimSettled:
    claim_id: str
    out: dict  # the claim's result columns


@dataclass(frozen=True)
class ClaimRefused:
    claim_id: str
    layer: str  # the layer whose amount would leave int64 (the accounts are rolled back)


# -- provider payment: what the points oracle (core/points/reference.py) reports ------------
# ``claim_points(…, record=)`` reports, for each claim of a pool, ``CaseClass`` (the numbers
# its case class was decided by, point-method.md §2), then ``PointsAdjusted`` per adjustment
# that applied, then ``ClaimPoints`` (the final class and points).


@dataclass(frozen=True)
class CaseClass:
    claim_id: str
    pool: str
    group: Optional[str]
    numbers: dict  # kind "points": B, k, avg_cost, cost, r (a Fraction), t_high, t_low …;
    # kind "bed_day": per_day, los, tiers; kind "none": the group has no base points
    case_class: str  # before readmission, review and adjustments
    points: int  # ×10^4 (POINT_SCALE)


@dataclass(frozen=True)
class PointsAdjusted:
    claim_id: str
    name: str
    factor: int  # millionths
    points: int  # after the factor, half-up


@dataclass(frozen=True)
class ClaimPoints:
    claim_id: str
    pool: str
    group: Optional[str]
    case_class: str
    points: int
    adjustments: tuple  # names, in the order applied

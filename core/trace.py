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

from typing import Any, Optional

from .records import Record, record


def ignore(event) -> None:
    """The default recorder: settles exactly as if nobody listened."""


@record
class ClaimStarted(Record):
    plan: Any  # the plan (version) the claim is settled under
    row: dict  # the claim in engine units (reference._rows)
    year: int  # its policy year


@record
class TableRow(Record):
    table: str
    key: tuple
    value: Any


@record
class AccountWrite(Record):
    slot: tuple
    amount: int  # added (replace False) or the new value (replace True)
    replace: bool


@record
class LayerApplies(Record):
    layer: Any
    applies: bool


@record
class Base(Record):
    layer: Any
    raw: int  # the base expression's value, before clipping at 0
    base: int
    paid: dict  # what the earlier layers paid (for paid() in the base)


@record
class Deductible(Record):
    layer: Any
    slot: tuple  # (layer, "ded", key value, year): "consumed" and "last" hang below it
    full: int  # the deductible amount D as written
    last: Optional[int]  # continuing: what the previous claim paid (D − last); else None
    amount: int  # D for this claim
    before: int  # consumed earlier this year (0 per claim)
    remaining: int
    used: int  # d = min(base, remaining)


@record
class Ratio(Record):
    layer: Any
    e: int  # after the deductible
    ratio: int  # millionths
    pay: int  # e × ratio, half-up to the fen


@record
class Bands(Record):
    layer: Any
    slot: tuple
    start: int  # the key's cumulative amount before this claim
    end: int
    when: Any = None  # the condition of the `when` band set that pays, None: the default set


@record
class BandPiece(Record):
    layer: Any
    index: int
    band: Any  # plan.Band
    width: int  # fen of this claim's e inside the band
    pay: int  # width × rate, half-up


@record
class Limit(Record):
    layer: Any
    slot: tuple
    amount: int  # the self-pay limit L
    kept_before: int  # burden the key kept earlier this year
    e: int
    pay: int  # min(e, max(0, kept_before + e − L))


@record
class FullPay(Record):
    layer: Any
    e: int


@record
class Cap(Record):
    layer: Any
    index: int
    slot: Optional[tuple]  # None per claim
    amount: int
    used: int  # used earlier this year (0 per claim)
    room: int


@record
class LayerPaid(Record):
    layer: Any
    e: int
    before_caps: int
    pay: int


@record
class ClaimSettled(Record):
    claim_id: str
    out: dict  # the claim's result columns


@record
class ClaimRefused(Record):
    claim_id: str
    layer: str  # the layer whose amount would leave int64 (the accounts are rolled back)


# -- provider payment: what the points oracle (core/points/reference.py) reports ------------
# ``claim_points(…, record=)`` reports, for each claim of a pool, ``CaseClass`` (the numbers
# its case class was decided by, point-method.md §2), then ``PointsAdjusted`` per adjustment
# that applied, then ``ClaimPoints`` (the final class and points).


@record
class CaseClass(Record):
    claim_id: str
    pool: str
    group: Optional[str]
    numbers: dict  # kind "points": B, k, avg_cost, cost, r (a Fraction), t_high, t_low …;
    # kind "bed_day": per_day, los, tiers; kind "none": the group has no base points
    case_class: str  # before readmission, review and adjustments
    points: int  # ×10^4 (POINT_SCALE)


@record
class PointsAdjusted(Record):
    claim_id: str
    name: str
    factor: int  # millionths
    points: int  # after the factor, half-up


@record
class ClaimPoints(Record):
    claim_id: str
    pool: str
    group: Optional[str]
    case_class: str
    points: int
    adjustments: tuple  # names, in the order applied

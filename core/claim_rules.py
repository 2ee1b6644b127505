"""The claim contract's rules in plain Python: which checks a batch runs, in which order, what
a reject says, and how one value converts to engine units.

Two readers share them: ``arrow_io.prepare`` (whole columns, in core/_ingest.pyx, for every
run) and ``claim_rows.prepare_rows`` (a handful of rows read from a key index, for ``yibao
explain --run``: no numpy, no pyarrow). The check list, the reason codes and the messages
live only here; the per-value conversions below state the rule the Cython passes apply to a
column (the Hypothesis test tests/tools/test_claim_rows.py holds the two to one answer).
Nothing here imports numpy or pyarrow.
"""
from __future__ import annotations

import datetime

from .plan import DATE, MONEY, Plan, Type
from .privacy import mask_id

MONEY_COLUMNS = ("total", "in_scope", "self_first")
REQUIRED = ("claim_id", "person_id", "discharge_date", "total")
INT64_MAX = (1 << 63) - 1
DATE32 = (-(2**31), 2**31 - 1)  # the days a date32 holds

# Reject reason codes, in the order the checks run (a row gets the first that applies).
REASONS = {
    "null_claim_id": "claim_id is null",
    "duplicate_claim_id": "claim_id appears more than once in the batch",
    "null_value": "a column the policy reads is null",
    "amount_out_of_range": "a money amount does not fit in int64 fen (±92 233 720 368 547 758.07 "
                           "yuan)",
    "negative_amount": "a money amount is negative",
    "in_scope_exceeds_total": "in_scope is greater than total",
    "self_first_exceeds_in_scope": "self_first is greater than in_scope",
    "unknown_value": "a value outside the column's declared domain",
    "outside_policy_period": "discharge_date is outside every policy year of the policy",
    "missing_table_key": "no row of a lookup table matches the claim",
}


def column_types(plan: Plan, names) -> dict:
    """name -> Type of every column converted: the plan's, discharge_date, and the money
    columns among ``names`` (the batch's column names)."""
    types = {c.name: c.type for c in plan.columns}
    types.setdefault("discharge_date", Type(DATE))
    for name in MONEY_COLUMNS:
        if name in names:
            types.setdefault(name, Type(MONEY))
    return types


def check_list(plan: Plan, types: dict) -> list:
    """Every row check of the batch as (reason, column), in the order they apply: a row is
    rejected for the first it fails."""
    checks = [("null_claim_id", "claim_id"), ("duplicate_claim_id", "claim_id")]
    checks += [("null_value", name) for name in null_checked(plan)]
    checks += [("amount_out_of_range", name) for name, t in types.items() if t.kind == MONEY]
    checks += [("negative_amount", name) for name in MONEY_COLUMNS if name in types]
    if "in_scope" in types:
        checks.append(("in_scope_exceeds_total", "in_scope"))
        if "self_first" in types:
            checks.append(("self_first_exceeds_in_scope", "self_first"))
    checks += [("unknown_value", c.name) for c in plan.columns if c.type.domain is not None]
    checks.append(("outside_policy_period", "discharge_date"))
    return checks


def null_checked(plan: Plan) -> list:
    """The columns whose null rejects a claim (``null_value``), in check order: every column
    the plan reads but a key column other than ``person_id`` (its null falls back to the
    person), then ``person_id`` (read or not), then ``hospital_id`` under a plan with a
    provider part (the hospital its points and payment are summed for: a claim with no
    hospital cannot be paid to one, and the provider step failed on it). No accepted claim
    has a null in one of them (nor in ``claim_id``: ``null_claim_id``)."""
    key_columns = {k.column for k in plan.keys()} - {"person_id"}
    checked = [c.name for c in plan.columns if c.name not in key_columns] + ["person_id"]
    if plan.provider is not None and "hospital_id" not in checked:
        checked.append("hospital_id")
    return checked


def check_numbers(checks: list) -> dict:
    """(reason, column) -> its number in ``checks`` (a check listed twice: its first place)."""
    number = {}
    for k, check in enumerate(checks):
        number.setdefault(check, k)
    return number


def reject_message(reason: str, column: str, value) -> str:
    """The reject message of a row failing (reason, column) with ``value`` (as shown:
    ``shown_day``, a decimal's text; a person id is masked)."""
    base = REASONS[reason]
    if reason in ("null_claim_id", "duplicate_claim_id", "outside_policy_period",
                  "in_scope_exceeds_total", "self_first_exceeds_in_scope",
                  "amount_out_of_range"):
        return base if value is None else f"{base} ({column} = {value})"
    if column == "person_id":
        value = mask_id(value)
    return f"{base}: {column} = {value!r}" if reason != "null_value" else f"{base}: {column}"


def policy_period(plan: Plan) -> tuple:
    """The policy period as int32 days, clipped (a day outside int32 is outside it anyway)."""
    return tuple(max(DATE32[0], min(int(d), DATE32[1]))
                 for d in (plan.effective_from, plan.effective_to))


# -- one value (the rule each column pass of core/_ingest.pyx applies) -----------------------


def fen_per_unit(scale) -> int:
    """Fen per unit of a money column: 1 for integer fen (``scale`` None), 10**(2 - scale)
    for decimal yuan (scale ≤ 2, checked when the batch is taken)."""
    return 1 if scale is None else 10 ** (2 - scale)


def money_fen(value: int, scale) -> int | None:
    """Exact fen of a money value (integer fen, or a decimal's unscaled integer at ``scale``);
    None when it does not fit int64 fen (amount_out_of_range). A decimal whose unscaled value
    is beyond ±(INT64_MAX // fen per unit) does not fit (the pass compares before scaling)."""
    factor = fen_per_unit(scale)
    if scale is None:
        return value
    limit = INT64_MAX // factor
    return value * factor if -limit <= value <= limit else None


def decimal_value(unscaled: int, scale: int):
    """The ``decimal.Decimal`` Arrow gives for a decimal's unscaled integer at ``scale``
    (exact: no context rounding)."""
    from decimal import Context, Decimal  # only decimal money columns need it
    return Decimal(unscaled).scaleb(-scale, Context(prec=100))


def shown_day(days: int) -> str:
    """A date32 day as ISO text, also beyond the years ``datetime.date`` holds, as numpy's
    ``datetime64`` writes it (which reject messages used first: a discharge in year 10000 is
    shown, not a crash; year -1 is ``-001``)."""
    year, month, day = civil_from_days(days)
    return f"{year:04d}-{month:02d}-{day:02d}"


def civil_from_days(days: int) -> tuple:
    """(year, month, day) of the proleptic Gregorian calendar, ``days`` after 1970-01-01
    (H. Hinnant's ``civil_from_days``: exact for any integer)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


EPOCH = datetime.date(1970, 1, 1)


def date_value(days: int) -> datetime.date:
    """The ``datetime.date`` Arrow gives for a date32 day (a key column's raw value)."""
    return EPOCH + datetime.timedelta(days=days)


def overpaid_message(plan_name: str, count: int, claim, self_pay: int) -> str:
    """check_invariants' refusal: a policy paying more than the total of ``count`` claims,
    ``claim`` the first in settlement order (its self_pay in fen)."""
    return (f"policy {plan_name!r} pays more than the total of {count} claim(s), e.g. claim "
            f"{claim!r} (self_pay {self_pay / 100:,.2f} yuan): the layers' bases add up to "
            "more than the claim's total; base a later layer on what is left, e.g. "
            "`total - paid`")

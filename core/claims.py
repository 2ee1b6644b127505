"""The claim record of benefits.md, written once.

Three places needed it and each wrote its own copy (the compiler's built-in columns, the
sample generator's schema, the policy test runner's columns); they now read this module:

- ``STANDARD_SCHEMA``: the standard claim columns as a claim file stores them (Arrow types:
  dictionary-encoded tier and setting, int8 hospital level, date32 dates, int64 fen);
- ``PLAN_TYPES``: the ones the policy language knows as built-in columns, with their plan
  types (engine units: ``setting`` restricted to ``SETTINGS``, ``hospital_level`` to 1..3).
  The diagnosis and procedure lists are read by groupers only, so they are not among them.

A claim file may carry any other column (policy attributes, grouper inputs); a run reads the
columns its plan names, whatever their Arrow type (arrow_io.py).
"""
from __future__ import annotations

from .plan import BOOL, DATE, INT, MONEY, TEXT, Type

SETTINGS = ("inpatient", "outpatient", "rehab")

# Built-in columns of the policy language, in the order Plan.columns lists them.
PLAN_TYPES = {
    "claim_id": Type(TEXT), "person_id": Type(TEXT), "family_id": Type(TEXT),
    "tier": Type(TEXT), "low_income": Type(BOOL), "hospital_tcm": Type(BOOL),
    "setting": Type(TEXT, SETTINGS), "hospital_id": Type(TEXT),
    "hospital_level": Type(INT, (1, 2, 3)), "admit_date": Type(DATE),
    "discharge_date": Type(DATE), "los": Type(INT), "total": Type(MONEY),
    "in_scope": Type(MONEY), "self_first": Type(MONEY),
}


ARROW_NAMES = ("STANDARD_SCHEMA", "LTC_COLUMNS", "LTC_SCHEMA")


def __getattr__(name):
    """The Arrow schemas, built on first use: the compiler reads only ``PLAN_TYPES``, and
    ``yibao check`` should not import pyarrow for them (PEP 562)."""
    if name not in ARROW_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals().update(_arrow_schemas())
    return globals()[name]


def _arrow_schemas() -> dict:
    import pyarrow as pa
    _DICT = pa.dictionary(pa.int32(), pa.string())

    STANDARD_SCHEMA = pa.schema([
        ("claim_id", pa.string()),
        ("person_id", pa.string()),
        ("family_id", pa.string()),
        ("tier", _DICT),
        ("low_income", pa.bool_()),
        ("setting", _DICT),
        ("hospital_id", pa.string()),
        ("hospital_level", pa.int8()),
        ("hospital_tcm", pa.bool_()),
        ("admit_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("los", pa.int32()),
        ("principal_dx", pa.string()),
        ("secondary_dx", pa.list_(pa.string())),
        ("procedures", pa.list_(pa.string())),
        ("total", pa.int64()),
        ("in_scope", pa.int64()),
        ("self_first", pa.int64()),
    ])

    # Optional columns of a long-term care (长护险) claim, one month of one service for one person
    # (city_configs/feicheng; core/generate_ltc.py). A policy declares the ones it reads as
    # attributes; other claims need not carry them.
    LTC_COLUMNS = [
        ("care_service", pa.string()),  # none | family (亲属照护) | visit (上门服务) | institution
        ("disability_grade", pa.int8()),  # 重度失能等级 from the assessment; 0: not 重度失能
        ("assessed_date", pa.date32()),  # the day the assessment took effect
        ("care_days", pa.int32()),  # days of institutional care in the period
        ("care_visits", pa.int32()),  # professional home visits in the period
        ("scheme", pa.string()),  # employee | resident
    ]
    LTC_SCHEMA = pa.schema(list(STANDARD_SCHEMA) + [pa.field(n, t) for n, t in LTC_COLUMNS])
    return {"STANDARD_SCHEMA": STANDARD_SCHEMA, "LTC_COLUMNS": LTC_COLUMNS,
            "LTC_SCHEMA": LTC_SCHEMA}

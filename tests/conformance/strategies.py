"""Hypothesis strategies for claim batches in the claim-record schema of benefits.md."""
from __future__ import annotations

import datetime

import pyarrow as pa
from hypothesis import strategies as st

TIERS = ["tier1", "tier2", "tier3"]
SETTINGS = ["inpatient", "outpatient", "rehab"]
START = datetime.date(2024, 12, 1)  # claims straddle the 2024/2025 policy-year boundary

SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("person_id", pa.string()), ("family_id", pa.string()),
    ("tier", pa.string()), ("low_income", pa.bool_()), ("setting", pa.string()),
    ("hospital_id", pa.string()), ("hospital_level", pa.int8()), ("hospital_tcm", pa.bool_()),
    ("admit_date", pa.date32()), ("discharge_date", pa.date32()), ("los", pa.int32()),
    ("total", pa.int64()), ("in_scope", pa.int64()), ("self_first", pa.int64()),
    ("referral", pa.bool_()),
])


@st.composite
def claim(draw, persons=3, invalid=False):
    # Multiples of 10 fen make exact half-fen products (e × 85% = x.5) common: rounding bugs show.
    total = draw(st.one_of(st.integers(0, 2_000_000), st.integers(0, 150_000_000),
                           st.integers(0, 200_000).map(lambda x: x * 10)))
    in_scope = draw(st.one_of(st.just(total), st.integers(0, total).map(lambda x: x - x % 10),
                              st.integers(0, total)))  # odd differences: half-fen products
    self_first = draw(st.one_of(st.just(0), st.integers(0, in_scope).map(lambda x: x - x % 10)))
    day = START + datetime.timedelta(days=draw(st.integers(0, 60)))
    row = {
        "person_id": f"p{draw(st.integers(0, persons - 1))}",
        "family_id": draw(st.sampled_from([None, "f0", "f1"])),
        "tier": draw(st.sampled_from(TIERS)),
        "low_income": draw(st.booleans()),
        "setting": draw(st.sampled_from(SETTINGS)),
        "hospital_id": draw(st.sampled_from(["h1", "h2"])),
        "hospital_level": draw(st.sampled_from([1, 2, 3])),
        "hospital_tcm": draw(st.booleans()),
        "admit_date": day - datetime.timedelta(days=3), "discharge_date": day, "los": 3,
        "total": total, "in_scope": in_scope, "self_first": self_first,
        "referral": draw(st.booleans()),
    }
    if invalid and draw(st.integers(0, 9)) == 0:
        field, value = draw(st.sampled_from([
            ("total", -5), ("tier", "tier9"), ("setting", "dental"), ("person_id", None),
            ("in_scope", total + 1), ("hospital_level", 7), ("discharge_date",
                                                            datetime.date(2031, 1, 1))]))
        row[field] = value
    return row


@st.composite
def batches(draw, max_size=40, invalid=False):
    rows = draw(st.lists(claim(invalid=invalid), max_size=max_size))
    ids = draw(st.lists(st.text("abc", min_size=1, max_size=3), min_size=len(rows),
                        max_size=len(rows), unique=not invalid))
    for row, cid in zip(rows, ids):
        row["claim_id"] = cid
    return pa.Table.from_pylist(rows, schema=SCHEMA)

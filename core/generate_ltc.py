"""Synthetic long-term care (长护险) claims: the demo data of ``city_configs/feicheng``.

One claim is one month of one care service for one person with an assessed disability, in the
columns of ``claims.LTC_SCHEMA`` (the standard claim record plus ``care_service``,
``disability_grade``, ``assessed_date``, ``care_days``, ``care_visits``, ``scheme``). The
shapes (all SYNTHETIC, chosen to exercise the Feicheng policy, not statistics of a city):

* persons: ``n // 10`` (each has about ten care months in the year); 85 % residents (the
  seed's scheme is the resident one), 15 % employees;
* the assessed 重度失能 grade: 1 (40 %), 2 (35 %), 3 (20 %), or 0 (5 %: assessed below 重度,
  paid nothing);
* the assessment takes effect in the year before (60 %) or on a day of this year (40 %):
  care months that begin before it are not covered;
* 75 % are cared for at home: every month a 亲属照护 claim of 450 yuan and a 上门服务 claim of
  2–4 visits by grade (sometimes one more) at 70–100 yuan a visit, a second family claim in
  ~3 % of months (a duplicate the monthly limit must not pay twice); 25 % live in a care
  institution: one claim a month of the month's days less 0–5 days in hospital, at 55–90
  yuan a day.

Deterministic for its arguments, like ``generate.generate_claims``.
"""
from __future__ import annotations

import calendar
import datetime

import numpy as np
import pyarrow as pa

from .claims import LTC_SCHEMA

EPOCH = datetime.date(1970, 1, 1)
GRADES_P = (0.05, 0.40, 0.35, 0.20)  # grade 0, 1, 2, 3
HOME_SHARE = 0.75
EMPLOYEE_SHARE = 0.15


def _month_bounds(year: int) -> tuple:
    """(first day, last day) of each month of ``year`` as day numbers since 1970-01-01."""
    first = np.array([(datetime.date(year, m, 1) - EPOCH).days for m in range(1, 13)])
    days = np.array([calendar.monthrange(year, m)[1] for m in range(1, 13)])
    return first, first + days - 1


def _persons(rng, persons: int, year: int) -> dict:
    start = (datetime.date(year, 1, 1) - EPOCH).days
    before = rng.random(persons) < 0.6
    assessed = np.where(before, start - rng.integers(1, 365, persons),
                        start + rng.integers(0, 365, persons))
    return {"grade": rng.choice(4, persons, p=GRADES_P), "assessed": assessed,
            "home": rng.random(persons) < HOME_SHARE,
            "employee": rng.random(persons) < EMPLOYEE_SHARE,
            "first_month": rng.integers(0, 4, persons)}  # care months start in Jan–Apr


def _care_rows(rng, p: dict, year: int) -> dict:
    """Every person's care months as parallel arrays (person, service, period, amounts)."""
    first, last = _month_bounds(year)
    who, month = np.nonzero(np.arange(12)[None, :] >= p["first_month"][:, None])
    home = p["home"][who]
    twice = home & (rng.random(len(who)) < 0.03)
    # home persons: a family claim and a visit claim each month (a second family claim in
    # `twice` months); institution persons: one institution claim a month
    parts = [(who[home], month[home], 1), (who[home], month[home], 2),
             (who[twice], month[twice], 1), (who[~home], month[~home], 3)]
    who = np.concatenate([w for w, _, _ in parts])
    month = np.concatenate([m for _, m, _ in parts])
    service = np.concatenate([np.full(len(w), s) for w, _, s in parts])
    n = len(who)
    grade = p["grade"][who]
    visits = np.where(service == 2, np.array([2, 2, 3, 4])[grade]
                      + (rng.random(n) < 0.15), 0)
    away = rng.integers(0, 6, n)
    days_in_month = last[month] - first[month] + 1
    care_days = np.where(service == 3, days_in_month - away, 0)
    visit_fee = rng.integers(70, 101, n) * 100  # fen
    day_fee = rng.integers(55, 91, n) * 100
    total = np.select([service == 1, service == 2, service == 3],
                      [np.full(n, 45_000), visits * visit_fee, care_days * day_fee])
    return {"who": who, "service": service, "admit": first[month], "discharge": last[month],
            "visits": visits, "care_days": care_days, "total": total.astype(np.int64)}


def ltc_claims(n: int, seed: int = 7, start_year: int = 2024) -> pa.Table:
    """``n`` synthetic LTC claims of ``start_year`` (module docstring), deterministic."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    persons = max(1, n // 10 + 1)
    p = _persons(rng, persons, start_year)
    rows = _care_rows(rng, p, start_year)
    while len(rows["who"]) < n:  # few care months drawn: add persons until there are n claims
        persons *= 2
        p = _persons(rng, persons, start_year)
        rows = _care_rows(rng, p, start_year)
    keep = np.sort(rng.permutation(len(rows["who"]))[:n])
    rows = {k: v[keep] for k, v in rows.items()}
    return _table(rows, p, rng)


def _table(rows: dict, p: dict, rng) -> pa.Table:
    n, who, service = len(rows["who"]), rows["who"], rows["service"]
    width = len(str(max(n - 1, 0)))
    institution = service == 3
    provider = np.where(institution, who % 6, 6 + who % 14)  # 6 institutions, 14 township clinics
    columns = {
        "claim_id": [f"L{i:0{width}d}" for i in rng.permutation(n)],
        "person_id": [f"LP{w:06d}" for w in who],
        "family_id": pa.nulls(n, pa.string()),
        "tier": pa.array(["tier2"] * n).dictionary_encode(),
        "low_income": pa.array(np.zeros(n, dtype=bool)),
        "setting": pa.array(["rehab"] * n).dictionary_encode(),
        "hospital_id": [f"FC{h:02d}" for h in provider],
        "hospital_level": pa.array(np.where(institution, 2, 1).astype(np.int8)),
        "hospital_tcm": pa.array(np.zeros(n, dtype=bool)),
        "admit_date": pa.array(rows["admit"].astype(np.int32), pa.date32()),
        "discharge_date": pa.array(rows["discharge"].astype(np.int32), pa.date32()),
        "los": pa.array((rows["discharge"] - rows["admit"] + 1).astype(np.int32)),
        "principal_dx": pa.array(["Z74.0"] * n),  # 需要照顾 (dependence on care)
        "secondary_dx": pa.array([[]] * n, pa.list_(pa.string())),
        "procedures": pa.array([[]] * n, pa.list_(pa.string())),
        "total": pa.array(rows["total"]),
        "in_scope": pa.array(rows["total"]),
        "self_first": pa.array(np.zeros(n, dtype=np.int64)),
        "care_service": pa.array(np.array(["none", "family", "visit", "institution"])[service]),
        "disability_grade": pa.array(p["grade"][who].astype(np.int8)),
        "assessed_date": pa.array(p["assessed"][who].astype(np.int32), pa.date32()),
        "care_days": pa.array(rows["care_days"].astype(np.int32)),
        "care_visits": pa.array(rows["visits"].astype(np.int32)),
        "scheme": pa.array(np.where(p["employee"][who], "employee", "resident")),
    }
    return pa.Table.from_pydict(columns, schema=LTC_SCHEMA)

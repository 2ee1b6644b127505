"""Shared fixtures for the CHS-DRG grouper tests: the real tables and the OpenDRG cases."""
import csv
from pathlib import Path

import pyarrow as pa
import pytest

from yibao.core.grouping.tables import load_tables

SRC = Path("/work/shared/data/chs-drg-1.1")
SCHEMA = pa.schema([("principal_dx", pa.string()), ("secondary_dx", pa.list_(pa.string())),
                    ("procedures", pa.list_(pa.string())), ("sex", pa.int8()),
                    ("age", pa.int32()), ("age_days", pa.int32()),
                    ("birth_weight", pa.int32())])


def _int(v):
    return int(v) if v else None


def load_cases():
    """(index, expected drg or None, claim row) from cases/opendrg_input.csv."""
    out = []
    with open(SRC / "cases" / "opendrg_input.csv", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            dx = r["ICD10_DRGS"].split("|")
            row = {"principal_dx": dx[0], "secondary_dx": dx[1:],
                   "procedures": [p for p in r["ICD9_DRGS"].split("|") if p],
                   "sex": int(r["gender"]), "age": int(r["age"]),
                   "age_days": _int(r["ageDay"]), "birth_weight": _int(r["weight"])}
            out.append((r["Index"], r["drg"] or None, row))
    return out


@pytest.fixture(scope="session")
def tables():
    return load_tables()


@pytest.fixture(scope="session")
def cases():
    return load_cases()


def _to_table(rows):
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@pytest.fixture(scope="session")
def to_table():
    """Claim dicts -> Arrow table with the group_drg input schema."""
    return _to_table


@pytest.fixture(scope="session")
def expected_cases(cases):
    return [(i, drg, row) for i, drg, row in cases if drg]

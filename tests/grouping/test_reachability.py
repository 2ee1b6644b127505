"""Every DRG of every ADRG is reached by at least one record built from the real code lists
(``reach.py``), unless ``UNREACHABLE`` names it with the table fact that makes it so.

A DRG no record reaches is a rule no claim can meet: how PV1 (a subset of PU1 before the
29-day ruling) and ZZ15 (a CC went to ZZ11) would have been caught."""
import pyarrow as pa
import pytest

from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import group_claim
from yibao.core.grouping.tables import load_tables

from .conftest import SCHEMA
from .reach import candidates

T = load_tables()
# DRG -> the table fact that makes it unreachable (checked below to still be unreached).
# Empty for CHS-DRG 1.1 with the §1 rulings: every one of the 628 DRGs is reached.
UNREACHABLE: dict[str, str] = {}


@pytest.fixture(scope="module")
def reached():
    """(DRG reached, one record per DRG) over every ADRG's candidates, by the kernel."""
    rows = [r for adrg in T.scheme["adrg"] for r in candidates(T, adrg)]
    drgs = group_drg(pa.Table.from_pylist(rows, schema=SCHEMA)).column("drg").to_pylist()
    example = {}
    for row, drg in zip(rows, drgs):
        example.setdefault(drg, row)
    return example


def test_every_drg_is_reached(reached):
    missing = {d for d in T.scheme["drg"] if d not in reached}
    assert missing == set(UNREACHABLE), sorted(missing ^ set(UNREACHABLE))


def test_each_drg_lands_in_its_own_adrg(reached):
    for adrg, spec in T.scheme["adrg"].items():
        for drg in spec["drgs"].values():
            assert drg in UNREACHABLE or drg[:3] == adrg


def test_the_reference_agrees_on_one_record_per_drg(reached):
    """The kernel's example of each DRG groups the same on the oracle."""
    for drg, row in reached.items():
        if drg is not None:
            assert group_claim(row, T).drg == drg, row

"""The vectorised evaluator's shortcuts against what they replace: the settlement's input
rows instead of a claim-id lookup, readmission pairs from neighbours in (person, admit,
discharge) order instead of a self-join, and per-cell integer bins instead of group-bys."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from yibao.core import supervision
from yibao.core.engine import settle
from yibao.core.supervision import compute, reference
from yibao.core.supervision.plan import Readmit, Supervision, SupervisionFlag
from yibao.core.supervision.stays import STAY_FIELDS, SupervisionError, build_stays
from supervision_helpers import both, city, claim, flagged

READMIT = """
flag split_stay "分解住院" {
  readmission within 3 days at the same hospital
}
flag elsewhere "短期再入院" {
  readmission within 15 days at another hospital
}
"""


def test_neighbour_pairs_same_day_ties_and_several_hospitals(tmp_path):
    """p1: four stays at three hospitals: a1 and a2 both day 10 only (equal admit and
    discharge: the larger id is the later, gap 0), b1 admitted day 10 too but discharged
    later (after both, gap 0); c1 pairs with stays up to three places before it in the
    sorted order. p2 has a stay without a hospital (no part in readmission) between two at
    H1."""
    plan = city(tmp_path, READMIT)
    rows = [claim("a2", "p1", "H1", "AB15", 1000, 10, 10),
            claim("a1", "p1", "H2", "AB15", 1000, 10, 10),
            claim("b1", "p1", "H1", "AB15", 1000, 10, 14),
            claim("c1", "p1", "H3", "AB15", 1000, 20, 21),
            claim("n1", "p2", "H1", "AB15", 1000, 1, 2),
            claim("n2", "p2", None, "AB15", 1000, 3, 4),
            claim("n3", "p2", "H1", "AB15", 1000, 5, 6)]
    got = both(plan, rows)
    assert flagged(got, "split_stay") == [("split_stay", "b1", 0, 3, ["a2"]),
                                          ("split_stay", "n3", 3, 3, ["n1"])]
    assert flagged(got, "elsewhere") == [("elsewhere", "a2", 0, 15, ["a1"]),
                                         ("elsewhere", "b1", 0, 15, ["a1"]),
                                         ("elsewhere", "c1", 6, 15, ["a1", "a2", "b1"])]


def test_readmission_rules_of_one_applies_share_pairs_up_to_the_longest_gap(tmp_path):
    """Two readmission rules over the same stays share one pair table, cut at the longer
    window: a 10-day gap is beyond the 3-day rule but within the 15-day one."""
    plan = city(tmp_path, """
flag short "短" {
  readmission within 3 days at the same hospital
}
flag long "长" {
  readmission within 15 days at the same hospital
}
""")
    rows = [claim("c1", "p1", "H1", "AB15", 1000, 1, 2),
            claim("c2", "p1", "H1", "AB15", 1000, 4, 5),
            claim("c3", "p1", "H1", "AB15", 1000, 15, 16)]
    got = both(plan, rows)
    assert flagged(got, "short") == [("short", "c2", 2, 3, ["c1"])]
    assert flagged(got, "long") == [("long", "c2", 2, 15, ["c1"]),
                                    ("long", "c3", 10, 15, ["c1", "c2"])]


tight_stays = st.lists(st.tuples(st.sampled_from("pqr"), st.sampled_from(["H1", "H2", None]),
                                 st.integers(0, 3), st.integers(0, 2)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(tight_stays, st.integers(0, 3))
def test_pairs_from_neighbours_are_every_pair(stays, days):
    """Many stays of few persons on few days (ties everywhere): both readmission rules on
    the vectorised evaluator equal the oracle's all-pairs search."""
    rows = [{"claim_id": f"c{i:02d}", "person_id": p, "hospital_id": h, "hospital_level": 3,
             "admit": a, "discharge": a + d, "los": max(d, 1), "total": 100, "fund": 0,
             "group": "AB15"} for i, (p, h, a, d) in enumerate(stays)]
    table = pa.Table.from_pylist(rows, schema=pa.schema(STAY_FIELDS))
    table = table.take(pa.array(np.argsort([r["person_id"] for r in rows], kind="stable")))
    sup = Supervision(tuple(SupervisionFlag(f"f{same}", "", Readmit(days, same), "notice", (),
                                            "") for same in (True, False)))
    assert compute.evaluate(sup, table)[0].equals(reference.evaluate(sup, table)[0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60), st.sampled_from([7, 50, 1 << 40]))
def test_cells_dense_and_sorted_agree(keys, size):
    """_cells numbers the distinct keys ascending, by dense bins or (key space large
    against the rows) by a sort: the same cells either way."""
    key = np.array(keys, np.int64) % size
    cell, present = compute._cells(key, size)
    assert present.tolist() == sorted(set(key.tolist()))
    assert (present[cell] == key).all()


def test_settlement_rows_name_each_results_input_row(tmp_path):
    """BatchResult.rows: the input row of each result, rejects and settlement order
    notwithstanding (a claim with no total is rejected)."""
    plan = city(tmp_path, READMIT)
    rows = [claim(f"c{i}", f"p{i % 3}", "H1", "AB15", 1000, 30 - i, 31 - i)
            for i in range(9)]
    rows[4]["total"] = None
    claims = pa.Table.from_pylist(rows)
    batch = settle(plan, claims)
    assert batch.results.num_rows == 8
    assert claims.column("claim_id").take(pa.array(batch.rows)).to_pylist() == \
        batch.results.column("claim_id").to_pylist()


def test_wrong_rows_are_not_trusted(tmp_path):
    """Rows that do not hold the results' ids (another claims table's) fall back to the
    lookup: the flags are the lookup's."""
    plan = city(tmp_path, READMIT)
    rows = [claim("c1", "p1", "H1", "AB15", 1000, 10, 12),
            claim("c2", "p1", "H1", "AB15", 1000, 13, 15),
            claim("c3", "p1", "H2", "AB15", 1000, 16, 17)]
    claims = pa.Table.from_pylist(rows)
    batch = settle(plan, claims)
    right = supervision.evaluate(plan, claims, batch.results)
    for wrong in (batch.rows[::-1], batch.rows + 1, batch.rows[:1]):
        got = supervision.evaluate(plan, claims, batch.results, rows=wrong)
        assert got.flags.equals(right.flags) and got.indicators.equals(right.indicators)


def test_a_claim_twice_in_the_results_is_refused(tmp_path):
    plan = city(tmp_path, READMIT)
    claims = pa.table({"claim_id": ["a", "b"], "total": pa.array([5, 6], pa.int64())})
    results = pa.table({"claim_id": ["a", "a"], "self_pay": pa.array([0, 0], pa.int64())})
    with pytest.raises(SupervisionError, match="claim 'a' occurs twice"):
        build_stays(plan.supervision, claims, results)


def test_self_pay_beyond_int64_sums_refused(tmp_path):
    """The fund (total − self_pay) is summed per hospital: a self-pay column whose sum
    leaves int64 is refused like the totals, not wrapped."""
    plan = city(tmp_path, READMIT)
    big = 4_000_000_000_000_000_000
    claims = pa.table({"claim_id": ["a", "b"], "total": pa.array([0, 0], pa.int64())})
    results = pa.table({"claim_id": ["a", "b"], "self_pay": pa.array([-big, -big], pa.int64())})
    with pytest.raises(SupervisionError, match="2\\^62"):
        build_stays(plan.supervision, claims, results)

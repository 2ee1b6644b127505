"""Each flag rule on a hand-built batch, on both evaluators (helpers.both asserts that the
kernel path and the oracle give the same flags, indicators and held payments)."""
from __future__ import annotations

from supervision_helpers import both, city, claim, flagged

READMIT = """
flag split_stay "分解住院" {
  applies when setting = inpatient
  readmission within 3 days at the same hospital
  severity review
}
flag elsewhere "短期再入院" {
  readmission within 15 days at another hospital
}
"""


def test_readmission_same_and_other_hospital(tmp_path):
    """p1 at H1: c1 days 10–15, c2 17–20 (2 days after c1: split), c3 30–31 (10 days after
    c2: not split). p1 at H2: c4 21–22: 1 day after c2 and 6 after c1 at another hospital
    (readmission elsewhere, related c1 and c2); c3 is 8 days after c4 (elsewhere, related
    c4). p2 at H1: c5 and c6 both day 40–40: c6 is the later (same dates, larger id), gap 0.
    An outpatient claim o1 of p1 at H1 on day 16 is no stay for split_stay (applies)."""
    plan = city(tmp_path, READMIT)
    rows = [claim("c1", "p1", "H1", "AB15", 1000, 10, 15),
            claim("c2", "p1", "H1", "AB15", 1000, 17, 20),
            claim("c3", "p1", "H1", "AB15", 1000, 30, 31),
            claim("c4", "p1", "H2", "AB15", 1000, 21, 22),
            claim("c5", "p2", "H1", "CD19", 1000, 40, 40),
            claim("c6", "p2", "H1", "CD19", 1000, 40, 40),
            claim("o1", "p1", "H1", None, 100, 16, 16, setting="outpatient")]
    got = both(plan, rows)
    assert flagged(got, "split_stay") == [("split_stay", "c2", 2, 3, ["c1"]),
                                          ("split_stay", "c6", 0, 3, ["c5"])]
    # o1 (day 16) is one day after c1 at H1 too, but only inpatient stays count for
    # split_stay; `elsewhere` has no applies, so o1 counts there — and it is at H1 like c1,
    # c2, c3, so it only pairs with c4 (H2): o1 is before c4 (gap 5 from o1's discharge)
    assert flagged(got, "elsewhere") == [("elsewhere", "c3", 8, 15, ["c4"]),
                                         ("elsewhere", "c4", 1, 15, ["c1", "c2", "o1"])]
    rows_ = {r["claim_id"]: r for r in got.flags.to_pylist()}
    assert rows_["c2"]["severity"] == "review" and rows_["c2"]["label"] == "分解住院"
    assert rows_["c2"]["level"] == "claim" and rows_["c2"]["hospital_id"] == "H1"
    assert got.held.num_rows == 0  # no effect declared: payment untouched


def test_los_and_cost_above_group_mean(tmp_path):
    """AB15 stays last 2, 2, 2 and 10 days: mean 4, 200% is 8, so the 10-day stay (l4) is
    flagged (threshold 8, basis 4). CD19 costs 1,000 ×4 and 10,000 fen: mean 2,800, 300% is
    8,400: k5 is flagged."""
    plan = city(tmp_path, """
    flag long_stay "超长住院" {
      los above 200% of the group mean
    }
    flag costly "费用异常" {
      cost above 300% of the group mean
    }
    """)
    rows = [claim(f"l{i}", f"p{i}", "H1", "AB15", 500, 10, 12) for i in (1, 2, 3)]
    rows += [claim("l4", "p4", "H1", "AB15", 500, 10, 20)]
    rows += [claim(f"k{i}", f"q{i}", "H2", "CD19", 1000, 5, 6) for i in (1, 2, 3, 4)]
    rows += [claim("k5", "q5", "H2", "CD19", 10_000, 5, 6)]
    got = both(plan, rows)
    assert flagged(got) == [("costly", "k5", 10_000, 8_400, []),
                            ("long_stay", "l4", 10, 8, [])]
    basis = {r["claim_id"]: (r["basis"], r["unit"]) for r in got.flags.to_pylist()}
    assert basis == {"k5": (2_800, "fen"), "l4": (4, "days")}


def test_low_standard_admission(tmp_path):
    """Groups' weights over all 4 grouped stays: mean cost (100 + 100 + 1,900 + 1,900)/4 =
    1,000; EE15's mean 100 gives RW 0.1, CD19's 1.9. Stays of at most 2 days in a group below
    50%: e1 (1 day) only — e2 lasts 5 days, c1 is heavy. The listed-group rule flags both
    EE15 stays whatever their length."""
    plan = city(tmp_path, """
    flag light "低标准入院" {
      stay at most 2 days with weight below 50%
    }
    flag listed "门诊可治病组住院" {
      group in {"EE15"}
    }
    """)
    rows = [claim("e1", "p1", "H1", "EE15", 100, 10, 11),
            claim("e2", "p2", "H1", "EE15", 100, 10, 15),
            claim("c1", "p3", "H1", "CD19", 1_900, 10, 11),
            claim("c2", "p4", "H2", "CD19", 1_900, 10, 11)]
    got = both(plan, rows)
    assert flagged(got) == [("light", "e1", 1, 2, []), ("listed", "e1", None, None, []),
                            ("listed", "e2", None, None, [])]
    assert got.flags.to_pylist()[0]["basis"] == 100_000  # RW 0.1 in millionths


def test_cc_share_upcoding(tmp_path):
    """ADRG AB1: H1 codes AB11, AB13, AB13, AB15 (3 of 4 with MCC/CC); H2 AB13, AB15 ×4 (1 of
    5). The city's share is 4/9; 150% of it is 2/3 = 666,667 millionths. H1's 3/4 is above:
    flagged with its three MCC/CC claims; H2 is below. H3 has 1 AB11 stay (share 1) but fewer
    than the 2 cases the rule needs."""
    plan = city(tmp_path, """
    flag upcoding "高套病组" {
      cc share above 150% of the city, at least 2 cases
      severity serious
    }
    """)
    h1 = [("a1", "AB11"), ("a2", "AB13"), ("a3", "AB13"), ("a4", "AB15")]
    h2 = [("b1", "AB13")] + [(f"b{i}", "AB15") for i in range(2, 6)]
    rows = [claim(c, c, "H1", g, 1000, 1, 3) for c, g in h1]
    rows += [claim(c, c, "H2", g, 1000, 1, 3) for c, g in h2]
    rows += [claim("z1", "z1", "H3", "AB11", 1000, 1, 3)]
    got = both(plan, rows)
    # the city share counts H3 too: 5 of 10 stays have MCC/CC, 150% of 1/2 = 750,000;
    # H1's 3/4 = 750,000 is not above it. Drop H3's stay from the rule's reach by a second
    # batch without it (below) — here nobody is flagged.
    assert flagged(got) == []
    got = both(plan, rows[:-1])
    assert flagged(got) == [("upcoding", "H1", 750_000, 666_667, ["a1", "a2", "a3"])]
    row = got.flags.to_pylist()[0]
    assert (row["group"], row["basis"], row["level"], row["claim_id"]) == \
        ("AB1", 444_444, "hospital", None)


def test_severe_share_refusal(tmp_path):
    """Weights: CD19 stays cost 3,000, EE15 stays 500; 10 stays, mean cost (4×3,000 +
    6×500)/10 = 1,500, so CD19's RW is 2 (severe at ≥ 150%) and EE15's 1/3. Level 3 hospitals
    H1 (3 severe of 4) and H2 (1 of 4): the level's share is 4/8 = 1/2; 60% of it is 0.3, and
    H2's 1/4 is below it. H9 is level 2 (its own level, share 0 of 2 = its level's): not
    flagged (0 < 0 is false)."""
    plan = city(tmp_path, """
    flag refusal "推诿重患" {
      severe share below 60% of the level, weight at least 150%, at least 3 cases
    }
    """)
    rows = [claim(f"s{i}", f"s{i}", "H1", "CD19", 3000, 1, 5) for i in (1, 2, 3)]
    rows += [claim("s4", "s4", "H1", "EE15", 500, 1, 5)]
    rows += [claim("t1", "t1", "H2", "CD19", 3000, 1, 5)]
    rows += [claim(f"t{i}", f"t{i}", "H2", "EE15", 500, 1, 5) for i in (2, 3, 4)]
    rows += [claim(f"u{i}", f"u{i}", "H9", "EE15", 500, 1, 5, level=2) for i in (1, 2)]
    got = both(plan, rows)
    assert flagged(got) == [("refusal", "H2", 250_000, 300_000, [])]
    assert got.flags.to_pylist()[0]["basis"] == 500_000


def test_hospital_indicators_by_hand(tmp_path):
    """Two groups. AB15: H1 1 stay 2,000 fen 4 days; H2 1 stay 1,000 fen 2 days (city mean
    1,500 fen, 3 days). CD19: H1 1 stay 6,000 fen 2 days (mean 6,000, 2 days). City mean cost
    (2,000 + 1,000 + 6,000)/3 = 3,000: RW AB15 = 0.5, CD19 = 2.
    H1: RW total 2.5, CMI 1.25; cost index (2,000/1,500 + 6,000/6,000)/2 = 7/6; time index
    (4/3 + 2/2)/2 = 7/6; price index 8,000 / (1,500 + 6,000) = 16/15. Patients pay 20% (ratio
    80% on in_scope = total): self-pay rate 20%.
    H2: RW 0.5, CMI 0.5, cost index 1,000/1,500 = 2/3, time 2/3, price 2/3."""
    plan = city(tmp_path, """
    flag listed "门诊可治病组住院" {
      group in {"EE15"}
    }
    """)
    rows = [claim("a", "p1", "H1", "AB15", 2000, 1, 5), claim("b", "p2", "H2", "AB15", 1000, 1, 3),
            claim("c", "p3", "H1", "CD19", 6000, 1, 3)]
    got = both(plan, rows)
    ind = {r["hospital_id"]: r for r in got.indicators.to_pylist()}
    h1, h2 = ind["H1"], ind["H2"]
    assert (h1["claims"], h1["cases"], h1["total"], h1["self_pay"]) == (2, 2, 8000, 1600)
    assert (h1["rw_total"], h1["cmi"]) == (2_500_000, 1_250_000)
    assert (h1["cost_index"], h1["time_index"], h1["price_index"]) == (1_166_667, 1_166_667,
                                                                       1_066_667)
    assert h1["self_pay_rate"] == 200_000
    assert (h2["rw_total"], h2["cmi"], h2["cost_index"], h2["time_index"], h2["price_index"]) \
        == (500_000, 500_000, 666_667, 666_667, 666_667)

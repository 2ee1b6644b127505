"""`explain`: the trace of every claim agrees with engine.settle to the fen, and names the
table rows, accumulators and earlier claims that formed each number."""
from __future__ import annotations

import json

import pytest

from yibao.core.engine import settle
from yibao.core.explain import (ExplainError, explain_claim, explain_claims,
                                format_explanation)
from yibao.core.policytest import claims_table
from yibao.core.settlement import IDENTITY

# benefits.md worked examples A1, A2 (person p1) and O1–O3 (person p3), in yuan
WORKED = [
    dict(claim_id="A1", person_id="p1", discharge_date="2024-03-01", setting="inpatient",
         hospital_level=3, tier="tier2", low_income=False, total=50_000, in_scope=45_000,
         self_first=2_000),
    dict(claim_id="A2", person_id="p1", discharge_date="2024-07-15", setting="inpatient",
         hospital_level=3, tier="tier2", low_income=False, total=300_000, in_scope=250_000,
         self_first=10_000),
    dict(claim_id="O1", person_id="p3", discharge_date="2024-01-05", setting="outpatient",
         hospital_level=1, tier="tier2", low_income=False, total=800, in_scope=700,
         self_first=0),
    dict(claim_id="O2", person_id="p3", discharge_date="2024-02-05", setting="outpatient",
         hospital_level=1, tier="tier2", low_income=False, total=1_500, in_scope=1_400,
         self_first=100),
]

NOT_AMOUNTS = ("claim_id", *IDENTITY)  # explain gives a claim's amounts; results carry its ids too


def test_every_golden_claim_agrees_with_settle(golden, reference_plan):
    """One tracing pass over the whole golden batch; each claim's numbers == the kernel's."""
    claims, expected = golden
    explained = explain_claims(reference_plan, claims)
    settled = settle(reference_plan, claims).results.to_pylist()
    assert len(explained) == len(settled) == claims.num_rows
    wrong = [r["claim_id"] for r in settled
             if explained[r["claim_id"]].result() != {k: v for k, v in r.items()
                                                       if k not in NOT_AMOUNTS}]
    assert not wrong, f"{len(wrong)} claims differ, e.g. {wrong[0]}"
    want = {r["claim_id"]: r["self_pay"] for r in expected.to_pylist()}
    assert {cid: ex.self_pay for cid, ex in explained.items()} == want


def test_one_golden_claim_alone_equals_the_batch(golden, reference_plan):
    """Explaining one claim settles only its key-mates, and gives the batch's numbers."""
    claims, _ = golden
    settled = settle(reference_plan, claims).results.to_pylist()
    for row in (settled[-1], settled[len(settled) // 2]):
        ex = explain_claim(reference_plan, claims, row["claim_id"])
        assert ex.result() == {k: v for k, v in row.items() if k not in NOT_AMOUNTS}


def test_a2_names_the_deductible_a1_consumed(reference_plan):
    ex = explain_claim(reference_plan, claims_table(WORKED, reference_plan), "A2")
    basic, _, critical, _ = ex.layers
    assert basic.base == 24_000_000 and basic.deducted == 80_000
    assert basic.ratio == 850_000 and basic.pay == 20_332_000
    hit = [h for h in basic.lookups if h.part == "ratio"][0]
    assert (hit.table, hit.key_text, hit.value_text) == ("inpatient_ratio", ("tier2", "3"), "85%")
    assert hit.source.endswith("policy.yb:15")
    assert basic.caps[0].before == 3_587_000 and basic.caps[0].room == 26_413_000
    ded = critical.deductible
    assert (ded.before, ded.room, ded.used, ded.after) == (913_000, 1_087_000, 1_087_000,
                                                           2_000_000)
    assert ded.earlier == [("A1", 913_000)]
    assert [(p.index, p.width, p.pay) for p in critical.pieces] == [(0, 3_581_000, 2_148_600)]
    assert critical.pay == 2_148_600 and ex.self_pay == 7_519_400
    text = format_explanation(ex)
    assert "row inpatient_ratio[tier2, 3] = 85%" in text and "A1 9,130.00" in text
    assert "self_pay = total 300,000.00" in text and "75,194.00" in text


def test_outpatient_deductible_accumulates_over_o1_o2(reference_plan):
    ex = explain_claim(reference_plan, claims_table(WORKED, reference_plan), "O2")
    out = ex.layers[1]
    assert out.deductible.earlier == [("O1", 70_000)]
    assert (out.deductible.room, out.pay) == (30_000, 70_000)
    assert ex.self_pay == 80_000


def test_json_round_trips(reference_plan):
    ex = explain_claim(reference_plan, claims_table(WORKED, reference_plan), "A1")
    data = json.loads(json.dumps(ex.to_dict(), ensure_ascii=False))
    assert data["claim_id"] == "A1" and data["layers"][0]["pay"] == 3_587_000


def test_unknown_and_rejected_claims_say_why(reference_plan):
    table = claims_table([*WORKED, dict(WORKED[0], claim_id="BAD", person_id="x",
                                        in_scope=60_000)], reference_plan)
    with pytest.raises(ExplainError, match="not in the batch"):
        explain_claim(reference_plan, table, "nope")
    with pytest.raises(ExplainError, match="in_scope_exceeds_total"):
        explain_claim(reference_plan, table, "BAD")


def test_empty_batch_explains_nothing(reference_plan):
    assert explain_claims(reference_plan, claims_table([], reference_plan)) == {}


def test_drg_path_is_included_when_asked(reference_plan):
    from yibao.core.grouping import tables  # yibao's own: an import error is a failure
    drg_tables = tables.load_tables()  # ../shared is required (tests/conftest.py)
    from yibao.core.grouping.reference import explain_drg
    codes = {"principal_dx": "K22.301", "secondary_dx": ["I10.x05"],
             "procedures": ["96.0800x005"]}  # tests/grouping/test_edges.py GOOD
    row = dict(WORKED[0], **codes)
    import pyarrow as pa
    table = claims_table([row], reference_plan)
    table = table.append_column("sex", pa.array([2], pa.int8())).append_column(
        "age", pa.array([88], pa.int16()))
    ex = explain_claim(reference_plan, table, "A1", drg=True, drg_tables=drg_tables)
    want = explain_drg(dict(codes, sex=2, age=88), drg_tables)
    assert ex.drg == want and ex.drg[-1]["step"] == "result"
    assert ex.drg[0]["step"] == "mdc"  # a valid code walks MDC → ADRG → DRG
    assert "CHS-DRG grouping:" in format_explanation(ex)


@pytest.fixture(scope="module")
def jinhua_batch():
    from yibao.core.engine import settle
    from yibao.core.generate import generate_claims
    from yibao.dsl.compiler import compile_policy
    from tests.tools.conftest import CONFIGS
    plan = compile_policy(CONFIGS / "jinhua")
    claims = generate_claims(5_000)
    return plan, claims, settle(plan, claims).results.to_pylist()


def test_provider_points_of_every_drg_claim_equal_settle(jinhua_batch):
    """Oracle-explained case class and points == the vectorised settle columns, for
    every claim of the DRG pool (readmissions see the person's other stays)."""
    plan, claims, rows = jinhua_batch
    drg = [r for r in rows if r["pool"] == "inpatient_drg"]
    assert len({r["case_class"] for r in drg}) >= 3
    ex = explain_claims(plan, claims, claim_ids=[r["claim_id"] for r in drg])
    got = {cid: (e.provider.pool, e.provider.group, e.provider.grouping_status,
                 e.provider.case_class, e.provider.points) for cid, e in ex.items()}
    want = {r["claim_id"]: (r["pool"], r["group"], r["grouping_status"], r["case_class"],
                            r["points"]) for r in drg}
    assert got == want
    normal = next(r for r in drg if r["case_class"] == "normal")
    text = format_explanation(ex[normal["claim_id"]])
    assert "case class normal" in text and "\n  points " in text
    assert "base points B " in text and "cost ratio r = " in text and "mdc: MDC" in text
    data = json.loads(json.dumps(ex[normal["claim_id"]].to_dict(), ensure_ascii=False))
    assert data["provider"]["points"] == normal["points"]
    assert data["provider"]["numbers"]["B"] > 0


def test_one_claim_alone_gets_the_batch_points_and_table_row(jinhua_batch):
    """explain_claim of a decision-table claim names the row's file:line, and its points
    equal the batch's."""
    plan, claims, rows = jinhua_batch
    r = next(r for r in rows if r["pool"] == "outpatient_apg" and r["grouping_status"] == "ok")
    ex = explain_claim(plan, claims, r["claim_id"])
    assert (ex.provider.case_class, ex.provider.points) == (r["case_class"], r["points"])
    step = ex.provider.grouping[0]
    assert step["step"] == "table" and step["code"] == r["group"]
    assert step["source"].startswith("apg.csv:") or "apg.csv:" in step["source"]
    assert f"({step['source']})" in format_explanation(ex)


def test_readmission_names_the_next_stay(jinhua_batch):
    """A stay followed by the same person's stay in the same DRG 3 days later is a readmit:
    the explanation (of the earlier claim alone) names the later one and agrees with settle."""
    import datetime as dt
    import pyarrow as pa
    from yibao.core.engine import settle
    plan, claims, rows = jinhua_batch
    r = next(x for x in rows if x["pool"] == "inpatient_drg" and x["case_class"] == "normal")
    c = next(x for x in claims.to_pylist() if x["claim_id"] == r["claim_id"])
    again = dict(c, claim_id="RE1", admit_date=c["discharge_date"] + dt.timedelta(days=3),
                 discharge_date=c["discharge_date"] + dt.timedelta(days=7))
    table = pa.concat_tables([claims, pa.Table.from_pylist([again], schema=claims.schema)])
    want = {x["claim_id"]: x for x in settle(plan, table).results.to_pylist()}
    ex = explain_claim(plan, table, r["claim_id"])
    assert want[r["claim_id"]]["case_class"] == ex.provider.case_class == "readmit"
    assert ex.provider.points == want[r["claim_id"]]["points"]
    assert ex.provider.readmission["claim_id"] == "RE1"
    assert "readmission: RE1 admitted 3 days after" in format_explanation(ex)


def test_reading_only_the_key_mates_explains_like_the_whole_file(jinhua_batch, tmp_path):
    """`yibao explain` reads only the claim's person/family rows (and rows sharing their
    claim ids) with Parquet filters: the explanation equals the one from the whole file,
    and the read is a small part of the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from yibao.core.explain import explain_columns, read_key_mates
    plan, claims, rows = jinhua_batch
    dup = claims.slice(7, 1).set_column(
        claims.schema.get_field_index("person_id"), "person_id", pa.array(["someone else"]))
    path = tmp_path / "c.parquet"
    pq.write_table(pa.concat_tables([claims, dup]), path, row_group_size=500)
    by_person = {}
    for r in claims.select(["claim_id", "person_id"]).to_pylist():
        by_person.setdefault(r["person_id"], []).append(r["claim_id"])
    busy = max(by_person, key=lambda p: len(by_person[p]))
    wanted = [by_person[busy][-1], rows[0]["claim_id"], claims.column("claim_id")[7].as_py()]
    for claim_id, columns in [(c, None) for c in wanted] + [(c, explain_columns([plan]))
                                                            for c in wanted]:
        mates = read_key_mates([plan], path, claim_id, columns)
        assert 0 < mates.num_rows < claims.num_rows // 10
        whole = pq.read_table(path)
        try:
            want = explain_claim(plan, whole, claim_id).to_dict()
        except ExplainError as exc:  # the duplicated id: rejected from both reads alike
            with pytest.raises(ExplainError, match="duplicate_claim_id"):
                explain_claim(plan, mates, claim_id)
            assert "duplicate_claim_id" in str(exc)
            continue
        assert explain_claim(plan, mates, claim_id).to_dict() == want
    assert read_key_mates([plan], path, "no such claim").num_rows == 0

"""A supervised `yibao settle` hands each result's input row to supervision (issue 16's
leftover): no claim id is looked up, in memory or partitioned, and the flags, indicators and
results are the bytes the claim-id lookup gives."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from yibao.core.runner import run_settle
from yibao.core.supervision import run as supervision_run, stays
from supervision_helpers import FLAGS, HEADER, _random_claims, city

OUT = ("flags.parquet", "hospital_indicators.parquet", "claims.parquet")


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    """The four-rule city and 400 random stays in two files (rows numbered across both)."""
    folder = tmp_path_factory.mktemp("rows")
    plan = city(folder, FLAGS)
    (folder / "policy.yb").write_text(HEADER + FLAGS, encoding="utf-8")
    rows = _random_claims(17, 400)
    (folder / "in").mkdir()
    for k, part in enumerate((rows[:150], rows[150:])):
        pq.write_table(pa.Table.from_pylist(part), folder / "in" / f"{k}.parquet",
                       row_group_size=60)
    return folder, plan


@pytest.fixture
def lookups(monkeypatch):
    """Every claim-id lookup supervision makes (``stays.claim_rows``), counted."""
    calls = []
    real = stays.claim_rows

    def counted(ids, claim_ids):
        calls.append(len(ids))
        return real(ids, claim_ids)
    monkeypatch.setattr(stays, "claim_rows", counted)
    return calls


def _run(supervised, name: str, partitions=None):
    folder, plan = supervised
    summary = run_settle(plan, folder / "in", folder / name, progress=False,
                         partitions=partitions)
    assert summary.supervision["flags"] and summary.totals.settled_rows == 400
    return {n: (folder / name / n).read_bytes() for n in OUT}


@pytest.mark.parametrize("partitions", [None, 3])
def test_run_hands_rows_and_looks_up_no_claim(supervised, lookups, partitions, monkeypatch):
    handed = _run(supervised, f"rows-{partitions}", partitions)
    assert lookups == []
    real = supervision_run.evaluate

    def without_rows(policy, claims, results, rows=None):  # the run before the hand-off
        return real(policy, claims, results)
    monkeypatch.setattr(supervision_run, "evaluate", without_rows)
    looked_up = _run(supervised, f"lookup-{partitions}", partitions)
    assert lookups == [400]
    assert handed == looked_up


def test_partitioned_rows_are_the_files_rows(supervised, monkeypatch):
    """The rows handed on are input rows over both files, in claims.parquet's order."""
    folder, plan = supervised
    seen = []
    real = supervision_run.evaluate

    def spy(policy, claims, results, rows=None):
        seen.append((claims, results, rows))
        return real(policy, claims, results, rows=rows)
    monkeypatch.setattr(supervision_run, "evaluate", spy)
    run_settle(plan, folder / "in", folder / "spy", progress=False, partitions=4)
    claims, results, rows = seen[0]
    assert claims.num_rows == 400 and len(rows) == results.num_rows == 400
    assert claims.column("claim_id").take(pa.array(rows)).to_pylist() == \
        results.column("claim_id").to_pylist()

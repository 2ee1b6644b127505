"""`--names national` in a partitioned run converts each partition's results as it is written
(docs/outputs.md "National names", Memory): no step holds the run's results, and the file is
the in-memory run's, byte for byte."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import yibao
from yibao.core import national
from yibao.core.generate import generate_claims
from yibao.core.runner import run_settle

POLICY = '''policy "分片国家字段" {
  effective 2024-01-01 to 2024-12-31
}
layer basic "基本医保" {
  base in_scope - self_first
  deductible 800 yuan per person per year
  ratio 80%
  national hifp_pay
}
layer serious "大病保险" {
  base in_scope - paid
  deductible 15000 yuan per person per year
  ratio 60%
  national hifmi_pay
}
'''


def test_partitioned_national_converts_piece_by_piece(tmp_path, monkeypatch):
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "policy.yb").write_text(POLICY, encoding="utf-8")
    policy = yibao.compile(tmp_path / "city")
    claims = generate_claims(4000, seed=29)
    pq.write_table(claims, tmp_path / "c.parquet", row_group_size=700)
    run_settle(policy.policy, tmp_path / "c.parquet", tmp_path / "mem",
               registry=policy.registry, progress=False, names="national")
    seen = []
    real = national.national_table

    def counting(plan, results):
        seen.append(results.num_rows)
        return real(plan, results)
    monkeypatch.setattr(national, "national_table", counting)
    run_settle(policy.policy, tmp_path / "c.parquet", tmp_path / "parts",
               registry=policy.registry, progress=False, names="national", partitions=4)
    settled = pq.read_metadata(tmp_path / "mem" / "claims.parquet").num_rows
    assert sum(seen) == settled > 3900
    assert len([n for n in seen if n]) == 4 and max(seen) < settled / 2  # one partition each
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp_path / "parts" / name).read_bytes() == (tmp_path / "mem" / name).read_bytes()
    assert pq.read_schema(tmp_path / "parts" / "claims.parquet").names[:4] == [
        "setl_id", "psn_no", "fixmedins_code", "enddate"]


def test_unknown_names_refused_before_the_output_folder_is_taken(tmp_path):
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "policy.yb").write_text(POLICY, encoding="utf-8")
    policy = yibao.compile(tmp_path / "city")
    pq.write_table(generate_claims(50, seed=3), tmp_path / "c.parquet")
    with pytest.raises(ValueError, match="unknown names 'nationl'"):
        run_settle(policy.policy, tmp_path / "c.parquet", tmp_path / "o",
                   registry=policy.registry, progress=False, names="nationl")
    assert not (tmp_path / "o").exists()  # refused before the folder is made or locked
    run_settle(policy.policy, tmp_path / "c.parquet", tmp_path / "o",  # not locked
               registry=policy.registry, progress=False)
    assert (tmp_path / "o" / "claims.parquet").exists()

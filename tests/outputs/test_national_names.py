"""National settlement-list names (docs/outputs.md, "National names"): a layer says which
national fund field it fills (`national hifp_pay`, E420 with did-you-mean otherwise), and
`yibao settle --names national` / `yibao.settle(..., names="national")` write the per-claim
results as setl_id, psn_no, fixmedins_code, enddate, medfee_sumamt, act_pay_dedc, hifp_pay …,
yuan as exact decimal(16,2)."""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import yibao
from yibao.core.engine import settle as settle_kernel
from yibao.core.generate import generate_claims
from yibao.core.national import YUAN, NationalNamesError, national_table, yuan
from yibao.core.reference import settle as settle_reference
from yibao.dsl.cli import main
from yibao.dsl.errors import PolicyError

POLICY = '''policy "国家字段" {
  effective 2024-01-01 to 2024-12-31
}
layer basic "基本医保" {
  base in_scope - self_first
  deductible 800 yuan per person per year
  ratio 80%
  national hifp_pay
}
layer serious "大病保险" {
  base in_scope - self_first - paid
  deductible 15000 yuan per person per year
  ratio 60%
  national hifmi_pay
}
layer relief "医疗救助" {
  applies when low_income
  base in_scope - self_first - paid
  ratio 70%
  national maf_pay
}
layer extra "补充保险" {
  base in_scope - self_first - paid
  ratio 10%
}
'''


@pytest.fixture
def city(tmp_path):
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "policy.yb").write_text(POLICY, encoding="utf-8")
    return tmp_path / "city"


def test_yuan_is_exact_decimal_16_2():
    ids = pa.array(["a", "b", "c", "d"])
    got = yuan(pa.array([1, -5, 123_456_789_012_345, 0]), ids, "hifp_pay")
    assert got.type == YUAN
    assert got.to_pylist() == [Decimal("0.01"), Decimal("-0.05"),
                               Decimal("1234567890123.45"), Decimal("0.00")]
    with pytest.raises(NationalNamesError, match="claim 'b'.*hifp_pay"):
        yuan(pa.array([0, 10 ** 16]), ids.slice(0, 2), "hifp_pay")


def test_policy_names_the_field_each_layer_fills(city):
    policy = yibao.compile(city)
    assert [l.national for l in policy.policy.first.layers] == ["hifp_pay", "hifmi_pay",
                                                                "maf_pay", ""]
    assert "national: hifmi_pay" in policy.policy.first.describe()


def test_misspelt_national_field_is_e420_with_did_you_mean(city):
    (city / "policy.yb").write_text(POLICY.replace("national maf_pay", "national maf_pya"),
                                    encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        yibao.compile(city)
    text = str(info.value)
    assert "E420" in text and "did you mean 'maf_pay'?" in text and "policy.yb:20:12" in text


def test_national_table_sums_and_identities(city):
    policy = yibao.compile(city)
    claims = generate_claims(600, seed=9)
    result = settle_kernel(policy.policy, claims, policy.registry)
    named = national_table(policy.policy, result.results)
    assert named.column_names[:4] == ["setl_id", "psn_no", "fixmedins_code", "enddate"]
    assert named.num_rows == result.results.num_rows
    by_id = {r["claim_id"]: r for r in claims.to_pylist()}
    fen = lambda d: int(d * 100)  # Decimal → fen, exact
    for row, res in zip(named.to_pylist(), result.results.to_pylist()):
        claim = by_id[row["setl_id"]]
        assert (row["psn_no"], row["fixmedins_code"], row["enddate"]) == (
            claim["person_id"], claim["hospital_id"], claim["discharge_date"])
        assert fen(row["hifp_pay"]) == res["basic"] and fen(row["maf_pay"]) == res["relief"]
        assert fen(row["hifmi_pay"]) == res["serious"]
        assert fen(row["extra"]) == res["extra"]  # unmapped: under its own name
        assert fen(row["act_pay_dedc"]) == res["basic_deductible"]
        layers = res["basic"] + res["serious"] + res["relief"] + res["extra"]
        assert fen(row["fund_pay_sumamt"]) == layers
        assert fen(row["psn_part_amt"]) == res["self_pay"]
        assert fen(row["medfee_sumamt"]) == claim["total"]
    for name in ("medfee_sumamt", "hifp_pay", "fund_pay_sumamt", "psn_part_amt"):
        assert named.schema.field(name).type == YUAN


def test_kernel_and_reference_agree_under_national_names(city):
    policy = yibao.compile(city)
    claims = generate_claims(400, seed=21)
    kernel = settle_kernel(policy.policy, claims, policy.registry)
    oracle = settle_reference(policy.policy, claims, policy.registry)
    assert national_table(policy.policy, kernel.results).equals(
        national_table(policy.policy, oracle.results))


def test_api_names_national_any_input_order(city):
    claims = generate_claims(300, seed=4)
    got = yibao.settle(city, claims, names="national")
    shuffled = claims.take(pa.array(list(range(299, -1, -1))))
    assert yibao.settle(city, shuffled.to_reader(max_chunksize=41),
                        names="national").results.equals(got.results)
    with pytest.raises(ValueError, match="names="):
        yibao.settle(city, claims, names="nationl")


def test_settle_names_national_writes_the_national_columns(city, tmp_path, capsys):
    pq.write_table(generate_claims(300, seed=8), tmp_path / "c.parquet")
    assert main(["settle", str(city), str(tmp_path / "c.parquet"), "--out",
                 str(tmp_path / "yb"), "--no-progress"]) in (0, 1)
    assert main(["settle", str(city), str(tmp_path / "c.parquet"), "--out",
                 str(tmp_path / "nat"), "--no-progress", "--names", "national"]) in (0, 1)
    plain = pq.read_table(tmp_path / "yb" / "current" / "claims.parquet")
    named = pq.read_table(tmp_path / "nat" / "current" / "claims.parquet")
    assert "hifp_pay" in named.column_names and "basic" not in named.column_names
    assert named.schema.field("hifp_pay").type == YUAN
    assert [int(d * 100) for d in named.column("hifp_pay").to_pylist()] == \
        plain.column("basic").to_pylist()
    assert named.column("setl_id").to_pylist() == plain.column("claim_id").to_pylist()


def test_names_national_is_the_same_partitioned(city, tmp_path, capsys):
    pq.write_table(generate_claims(300, seed=8), tmp_path / "c.parquet")
    tables = []
    for extra in ([], ["--partitions", "3"]):
        out = tmp_path / f"o{len(extra)}"
        assert main(["settle", str(city), str(tmp_path / "c.parquet"), "--out", str(out),
                     "--no-progress", "--names", "national", *extra]) in (0, 1)
        tables.append(pq.read_table(out / "current" / "claims.parquet"))
    key = [("setl_id", "ascending")]
    assert tables[0].sort_by(key).equals(tables[1].sort_by(key))

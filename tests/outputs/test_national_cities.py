"""Bundled cities written under the national settlement-list names (issue 15): Rizhao's and
Jinhua's layers name the fund field each fills (`national hifp_pay` …), and
`yibao settle CITY CLAIMS --names national` writes the national columns with sums that add up,
the same bytes in memory and partitioned (converted piece by piece, or after supervision for
a policy with flags: both cities have flags, the test policy below has none)."""
from __future__ import annotations

from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from yibao.core.generate import generate_claims
from yibao.core.national import FUND_FIELDS, YUAN
from yibao.dsl.cli import main

# city -> (first effective year, {national field: the layers filling it})
CITIES = {
    "rizhao": (2016, {"hifp_pay": ["basic_inpatient", "outpatient_pooling",
                                   "outpatient_special"],
                      "hifmi_pay": ["critical"]}),
    "jinhua": (2024, {"hifp_pay": ["basic_inpatient", "outpatient_pooling",
                                   "outpatient_chronic"],
                      "hifmi_pay": ["critical"], "maf_pay": ["assistance"],
                      "oth_pay": ["supplementary", "temporary_relief", "farmer_supplement",
                                  "warm_fund"]}),
}


def fen(yuan: Decimal) -> int:
    """decimal(16,2) yuan → int fen, exactly."""
    value = yuan * 100
    assert value == value.to_integral_value()
    return int(value)


def settle(city, claims_file, out, *extra) -> None:
    code = main(["settle", city, str(claims_file), "--out", str(out), "--no-progress", *extra])
    assert code in (0, 1)


@pytest.fixture(scope="module", params=sorted(CITIES))
def city_run(request, tmp_path_factory):
    """(city, claims, yibao-named results, national results, folder) of one run each."""
    city = request.param
    year, _ = CITIES[city]
    tmp = tmp_path_factory.mktemp(city)
    claims = generate_claims(1500, seed=23, start_year=year)
    pq.write_table(claims, tmp / "claims.parquet", row_group_size=400)
    settle(city, tmp / "claims.parquet", tmp / "yb")
    settle(city, tmp / "claims.parquet", tmp / "nat", "--names", "national")
    plain = pq.read_table(tmp / "yb" / "claims.parquet")
    named = pq.read_table(tmp / "nat" / "claims.parquet")
    return city, claims, plain, named, tmp


def test_city_writes_its_national_fund_fields(city_run):
    city, _, plain, named, _ = city_run
    fields = CITIES[city][1]
    assert named.column_names[:5] == ["setl_id", "psn_no", "fixmedins_code", "enddate",
                                      "medfee_sumamt"]
    for field in fields:
        assert named.schema.field(field).type == YUAN
    layers = [name for names in fields.values() for name in names]
    assert not set(layers) & set(named.column_names)  # every layer is filed, none left over
    assert not (set(FUND_FIELDS) - set(fields)) & set(named.column_names)
    assert named.num_rows == plain.num_rows > 1000
    # provider payment columns follow under yibao's names
    assert {"pool", "group", "points"} <= set(named.column_names)


def test_city_national_sums_add_up(city_run):
    """Per claim: the fund fields add up to fund_pay_sumamt, medfee_sumamt is the claim's
    total and = fund_pay_sumamt + psn_part_amt; each field is Σ of its layers' fen."""
    city, claims, plain, named, _ = city_run
    fields = CITIES[city][1]
    total = {r["claim_id"]: r["total"] for r in claims.select(["claim_id", "total"]).to_pylist()}
    yibao_row = {r["claim_id"]: r for r in plain.to_pylist()}
    paid = 0
    for row in named.to_pylist():
        mine = yibao_row[row["setl_id"]]
        funds = sum(fen(row[field]) for field in fields)
        assert funds == fen(row["fund_pay_sumamt"])
        assert fen(row["medfee_sumamt"]) == total[row["setl_id"]]
        assert fen(row["fund_pay_sumamt"]) + fen(row["psn_part_amt"]) == total[row["setl_id"]]
        for field, layers in fields.items():
            assert fen(row[field]) == sum(mine[name] for name in layers)
        assert fen(row["act_pay_dedc"]) == sum(mine.get(f"{name}_deductible") or 0
                                               for name in fields["hifp_pay"])
        assert (row["psn_no"], row["fixmedins_code"], row["enddate"]) == (
            mine["person_id"], mine["hospital_id"], mine["discharge_date"])
        paid += funds
    assert paid > 0


def test_city_national_same_bytes_partitioned(city_run):
    """A city with supervision flags: converted after supervision, row group by row group,
    the same bytes as the in-memory run."""
    city, _, _, _, tmp = city_run
    settle(city, tmp / "claims.parquet", tmp / "nat3", "--names", "national",
           "--partitions", "3")
    for name in ("claims.parquet", "rejects.parquet"):
        assert (tmp / "nat3" / name).read_bytes() == (tmp / "nat" / name).read_bytes()


def test_pending_review_kept_under_national_names(city_run):
    """Jinhua's `effect review` flag adds pending_review (fen); the national output keeps it."""
    city, _, plain, named, _ = city_run
    if "pending_review" not in plain.column_names:
        assert city == "rizhao"  # no flag with an effect
        return
    assert named.column("pending_review").to_pylist() == plain.column(
        "pending_review").to_pylist()

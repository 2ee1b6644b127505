"""Every Arrow type Parquet, Polars, DuckDB or Spark produce for the claim columns settles to the
same bytes, in memory and partitioned, and the reference evaluator agrees: text as string,
large_string, string_view or a dictionary of any of them (ids and categories); money as int8-int64
fen or decimal128/decimal256 yuan of any precision; dates as date32, date64 or timestamps of any
unit, with or without a time zone (a zoned timestamp's day is the date on that zone's clock).
Out-of-range values are row rejects naming the claim, never a batch refusal or a crash."""
from __future__ import annotations

import decimal

import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from yibao.core.arrow_io import prepare
from yibao.core.engine import settle
from yibao.core.generate import generate_claims, write_claims
from yibao.core.reference import settle as settle_reference
from yibao.core.runner import run_settle

TEXT = ("claim_id", "person_id", "hospital_id", "tier", "setting", "scheme")
MONEY = ("total", "in_scope", "self_first", "tcm_amount")
DATES = ("admit_date", "discharge_date")
OUTPUTS = ("claims.parquet", "rejects.parquet")


def replace(t: pa.Table, name: str, values) -> pa.Table:
    return t.set_column(t.schema.get_field_index(name), name, values)


def base_claims(small_money: bool) -> pa.Table:
    """Generated claims with three duplicated claim ids and a null one (and, for the narrow
    integer types, every amount below 128 fen)."""
    t = generate_claims(1_500, seed=5)
    ids = t.column("claim_id").to_pylist()
    ids[40] = ids[900]
    ids[41] = ids[1200] = ids[7]
    ids[55] = None
    t = replace(t, "claim_id", pa.array(ids, pa.string()))
    if small_money:
        for name in MONEY:
            t = replace(t, name, pc.min_element_wise(t.column(name), 120 - len(name)))
    return t


def text_as(kind):
    """``kind``: an Arrow text type name, or ``dictionary_<name>`` (plain ``dictionary``:
    of string)."""
    def convert(col):
        plain = col.cast(pa.string())
        if kind == "dictionary":
            return plain.dictionary_encode()
        if kind.startswith("dictionary_"):
            return plain.cast(getattr(pa, kind.split("_", 1)[1])()).dictionary_encode()
        return plain.cast(getattr(pa, kind)())
    return lambda t: _each(t, TEXT, convert)


def money_as(make_type):
    def convert(col):
        typ = make_type()
        if pa.types.is_integer(typ):
            return col.cast(typ)
        yuan = [None if v is None else decimal.Decimal(v).scaleb(-2) for v in col.to_pylist()]
        return pa.array(yuan, typ)
    return lambda t: _each(t, MONEY, convert)


def dates_as(typ, zone=None):
    def convert(col):
        if pa.types.is_date64(typ):
            return col.cast(typ)
        naive = col.cast(pa.timestamp(typ.unit))
        if zone is None:  # 09:30 on the day, as written
            return pc.add(naive, pa.scalar(34_200 * _per_second(typ.unit), pa.duration(typ.unit)))
        # 00:30 on the day on the clock of ``zone``: the UTC day is often the day before
        wall = pc.add(naive, pa.scalar(1_800 * _per_second(typ.unit), pa.duration(typ.unit)))
        return pc.assume_timezone(wall, zone)
    return lambda t: _each(t, DATES, convert)


def _per_second(unit: str) -> int:
    return {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]


def _each(t: pa.Table, names, convert) -> pa.Table:
    for name in names:
        t = replace(t, name, convert(t.column(name)))
    return t


VARIANTS = {
    "large_string": (False, text_as("large_string")),
    "string_view": (False, text_as("string_view")),
    "dictionary": (False, text_as("dictionary")),
    "dictionary_large_string": (False, text_as("dictionary_large_string")),
    "dictionary_string_view": (False, text_as("dictionary_string_view")),
    "int8": (True, money_as(pa.int8)),
    "int16": (True, money_as(pa.int16)),
    "int32": (False, money_as(pa.int32)),
    "decimal128(9,2)": (False, money_as(lambda: pa.decimal128(9, 2))),
    "decimal128(38,2)": (False, money_as(lambda: pa.decimal128(38, 2))),
    "decimal128(20,2)": (False, money_as(lambda: pa.decimal128(20, 2))),
    "decimal256(76,2)": (False, money_as(lambda: pa.decimal256(76, 2))),
    "date64": (False, dates_as(pa.date64())),
    "timestamp[s]": (False, dates_as(pa.timestamp("s"))),
    "timestamp[ms]": (False, dates_as(pa.timestamp("ms"))),
    "timestamp[us]": (False, dates_as(pa.timestamp("us"))),
    "timestamp[ns]": (False, dates_as(pa.timestamp("ns"))),
    "timestamp[us, Asia/Shanghai]": (False, dates_as(pa.timestamp("us"), "Asia/Shanghai")),
    "timestamp[ns, UTC]": (False, dates_as(pa.timestamp("ns"), "UTC")),
}


def run_bytes(plan, registry, table, folder, partitions, fmt="parquet") -> dict:
    """Output bytes of a run over ``table`` written as Parquet or as an Arrow IPC file (which
    keeps every Arrow type as it is, where Parquet may give some back as plain strings)."""
    path = folder / f"in.{fmt}"
    if fmt == "parquet":
        write_claims(table, path, row_group_size=400)
    else:
        write_ipc(table, path)
    out = folder / f"out-{fmt}-{partitions}"
    run_settle(plan, path, out, registry=registry, progress=False, partitions=partitions)
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def write_ipc(table: pa.Table, path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=400)


def formats(table: pa.Table) -> list:
    """Arrow IPC always; Parquet too when it can store the types (not a string_view
    dictionary)."""
    try:
        pq.write_table(table.slice(0, 1), pa.BufferOutputStream())
    except pa.ArrowNotImplementedError:
        return ["arrow"]
    return ["arrow", "parquet"]


@pytest.fixture(scope="module")
def expected(plan, registry, tmp_path_factory):
    """Output bytes of the plain-typed batches (string, int64 fen, date32), in memory."""
    out = {}
    for small in (False, True):
        folder = tmp_path_factory.mktemp(f"plain-{small}")
        out[small] = run_bytes(plan, registry, base_claims(small), folder, None)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_arrow_type_settles_to_the_same_bytes(plan, registry, expected, tmp_path,
                                                    variant):
    small, convert = VARIANTS[variant]
    table = convert(base_claims(small))
    assert table.schema != base_claims(small).schema  # the variant really changes a type
    for fmt in formats(table):
        for partitions in (None, 3):
            got = run_bytes(plan, registry, table, tmp_path, partitions, fmt)
            assert got == expected[small], (variant, fmt, partitions)
    plain = settle_reference(plan, base_claims(small), registry)
    reference = settle_reference(plan, table, registry)
    kernel = settle(plan, table, registry)
    assert reference.results.equals(plain.results)
    assert reference.rejects.equals(plain.rejects)
    assert kernel.results.equals(reference.results)
    assert kernel.rejects.equals(reference.rejects)


def test_duplicates_are_found_whatever_the_id_type(plan, registry, tmp_path):
    """The partitioned path's duplicate search across partitions, for every id type."""
    for kind in ("large_string", "string_view", "dictionary", "dictionary_large_string"):
        table = text_as(kind)(base_claims(False))
        write_claims(table, tmp_path / "in.parquet")
        s = run_settle(plan, tmp_path / "in.parquet", tmp_path / kind, registry=registry,
                       progress=False, partitions=5)
        assert s.totals.reasons["duplicate_claim_id"] == 5, kind
        assert s.totals.reasons["null_claim_id"] == 1 and s.totals.balanced


@pytest.mark.parametrize("parts", [None, 3])
@pytest.mark.parametrize("typ", [pa.decimal128(30, 2), pa.decimal128(38, 2),
                                 pa.decimal256(60, 2)])
def test_money_beyond_int64_fen_is_a_row_reject(plan, registry, tmp_path, typ, parts):
    t = money_as(lambda: typ)(base_claims(False))
    totals = t.column("total").to_pylist()
    huge = decimal.Decimal(10) ** 25
    totals[3] = huge
    totals[4] = -huge
    t = replace(t, "total", pa.array(totals, typ))
    write_claims(t, tmp_path / "in.parquet")
    s = run_settle(plan, tmp_path / "in.parquet", tmp_path / "o", registry=registry,
                   progress=False, partitions=parts)
    rejects = {r["row"]: r for r in pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()}
    for row in (3, 4):
        assert rejects[row]["reason"] == "amount_out_of_range"
        assert rejects[row]["claim_id"] == t.column("claim_id")[row].as_py()
        assert "total" in rejects[row]["message"]
    # the control totals count the rejected yuan exactly, beyond int64
    assert s.totals.balanced
    assert s.totals.input_fen == sum(int(v * 100) for v in totals if v is not None)


def test_a_decimal_sum_just_inside_int64_fen_is_kept(plan, registry):
    """92 233 720 368 547 758.07 yuan is int64 max fen: read exactly; one fen more is out."""
    t = money_as(lambda: pa.decimal128(38, 2))(base_claims(False)).slice(0, 3)
    edge = decimal.Decimal("92233720368547758.07")
    t = replace(t, "total", pa.array([edge, edge + decimal.Decimal("0.01"), -edge],
                                     pa.decimal128(38, 2)))
    prep = prepare(plan, t)
    reasons = {r[0]: r[2] for r in prep.rejects}
    assert reasons.get(1) == "amount_out_of_range"
    assert reasons.get(0) != "amount_out_of_range" and reasons.get(2) != "amount_out_of_range"


EXTREME_DAYS = {  # discharge dates beyond what Python's datetime.date holds
    "date32 year 10000": (pa.date32(), 2_932_897),
    "date32 before year 1": (pa.date32(), -719_163),
    "date32 max": (pa.date32(), 2**31 - 1),
    "date32 min": (pa.date32(), -(2**31)),
    "date64 max": (pa.date64(), 2**63 - 1),
    "date64 min": (pa.date64(), -(2**63)),
    "timestamp[s] max": (pa.timestamp("s"), 2**63 - 1),
    "timestamp[s] min": (pa.timestamp("s"), -(2**63)),
    "timestamp[ms, Asia/Shanghai] max": (pa.timestamp("ms", "Asia/Shanghai"), 2**63 - 1),
    "timestamp[us, UTC] min": (pa.timestamp("us", "UTC"), -(2**63)),
}


@pytest.mark.parametrize("parts", [None, 3])
@pytest.mark.parametrize("case", sorted(EXTREME_DAYS))
def test_a_date_beyond_python_dates_is_outside_the_policy_period(plan, registry, tmp_path,
                                                                 case, parts):
    typ, value = EXTREME_DAYS[case]
    t = base_claims(False)
    if not pa.types.is_date32(typ):
        t = dates_as(typ, getattr(typ, "tz", None))(t)
    storage = pa.int32() if pa.types.is_date32(typ) else pa.int64()
    raw = t.column("discharge_date").cast(storage).to_pylist()
    raw[10] = value
    t = replace(t, "discharge_date", pa.array(raw, storage).cast(typ))
    write_ipc(t, tmp_path / "in.arrow")  # Parquet would coerce s to ms, date64 to date32
    s = run_settle(plan, tmp_path / "in.arrow", tmp_path / "o", registry=registry,
                   progress=False, partitions=parts)
    rejects = {r["row"]: r for r in pq.read_table(tmp_path / "o" / "rejects.parquet").to_pylist()}
    assert rejects[10]["reason"] == "outside_policy_period"
    assert rejects[10]["claim_id"] == t.column("claim_id")[10].as_py()
    assert s.totals.balanced
    reference = settle_reference(plan, t, registry)
    assert 10 in reference.rejects.column("row").to_pylist()


@pytest.mark.parametrize("parts", [None, 3])
def test_an_admission_date_beyond_python_dates_settles(registry, tmp_path, parts):
    """Any date column a policy reads, not only discharge_date, is compared as days and never
    turned into a Python date: an admission in year 10000 or before year 1 settles."""
    from yibao.dsl.compiler import compile_text
    plan = compile_text('policy "p" {\n  effective 2024-01-01 to 2024-12-31\n}\n'
                        'layer basic {\n  applies when admit_date >= 2024-03-01\n'
                        '  base in_scope\n  ratio 50%\n}\n', "p.yb", registry=registry)
    t = base_claims(False).slice(0, 200)
    raw = t.column("admit_date").cast(pa.int32()).to_pylist()
    raw[3], raw[4] = 2_932_897, -719_163  # year 10000, before year 1
    t = replace(t, "admit_date", pa.array(raw, pa.int32()).cast(pa.date32()))
    t = dates_as(pa.date64())(t)
    write_ipc(t, tmp_path / "in.arrow")
    s = run_settle(plan, tmp_path / "in.arrow", tmp_path / "o", registry=registry,
                   progress=False, partitions=parts)
    assert s.totals.balanced
    results = pq.read_table(tmp_path / "o" / "claims.parquet").to_pylist()
    paid = {r["claim_id"]: r["basic"] for r in results}
    ids = t.column("claim_id").to_pylist()
    assert paid[ids[3]] > 0 or t.column("in_scope")[3].as_py() == 0  # admitted after March
    assert paid[ids[4]] == 0  # admitted before March (before year 1)
    kernel = settle(plan, t, registry)
    assert kernel.results.equals(settle_reference(plan, t, registry).results)


def test_polars_and_duckdb_batches_settle_like_plain_arrow(plan, registry, expected, tmp_path):
    """What the producers really hand over: Polars (string_view, dictionary<string_view,
    uint32>; its Parquet files: large_string) and DuckDB (decimal(38, 2) money) — through the
    in-memory API and through both run paths."""
    import duckdb
    import polars
    plain = base_claims(False)
    frame = polars.from_arrow(plain)
    assert pa.types.is_string_view(pa.table(frame).schema.field("claim_id").type)
    frame.write_parquet(tmp_path / "polars.parquet", row_group_size=400)
    con = duckdb.connect()
    con.register("claims", plain)
    money = ", ".join(f"CAST(CAST({m} AS DECIMAL(38, 2)) * 0.01 AS DECIMAL(38, 2)) AS {m}"
                      for m in MONEY)
    relation = con.sql(f"SELECT * REPLACE ({money}) FROM claims")
    assert relation.to_arrow_table().schema.field("total").type == pa.decimal128(38, 2)
    reference = settle_reference(plan, plain, registry)
    for producer in (frame, relation):
        kernel = settle(plan, producer, registry)
        assert kernel.results.equals(reference.results)
        assert kernel.rejects.equals(reference.rejects)
    pq.write_table(relation.to_arrow_table(), tmp_path / "duckdb.parquet", row_group_size=400)
    for name in ("polars", "duckdb"):
        for parts in (None, 3):
            out = tmp_path / f"{name}-{parts}"
            run_settle(plan, tmp_path / f"{name}.parquet", out, registry=registry,
                       progress=False, partitions=parts)
            assert {n: (out / n).read_bytes() for n in OUTPUTS} == expected[False], (name, parts)

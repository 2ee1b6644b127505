"""Per-claim results under the national settlement-list names (国家医疗保障信息平台 结算信息).

The names are those of the national platform's settlement output (``setlinfo`` of the
定点医药机构接口规范, transactions 2207/2304; amounts 数值型 16,2, i.e. yuan with two
decimals) and, for the hospital, of the settlement list (医疗保障基金结算清单):

- identifiers: ``setl_id`` 结算ID ← claim_id, ``psn_no`` 人员编号 ← person_id,
  ``fixmedins_code`` 定点医药机构编号 ← hospital_id, ``enddate`` 结束日期 ← discharge_date;
- ``medfee_sumamt`` 医疗费总额 = total (self_pay + Σ layers, exact by the settle invariant);
- each layer's payment under the fund field its ``national`` statement names
  (``hifp_pay`` 统筹基金 …); two layers naming one field are summed; a layer without one keeps
  its own name, so nothing is dropped or guessed;
- ``act_pay_dedc`` 实际支付起付线 = the deductible of the layer(s) filling ``hifp_pay``;
- ``fund_pay_sumamt`` 基金支付总额 = Σ every layer's payment;
- ``psn_part_amt`` 个人负担总金额 = self_pay.

Money goes from int64 fen to ``decimal128(16, 2)`` yuan exactly: the fen integer *is* the
decimal's unscaled value, so no float and no rounding is involved. A value outside
decimal(16,2) (|yuan| ≥ 10^14) is an error naming the claim.
"""
from __future__ import annotations

from .errors import YibaoError
from .lazy import lazy_module

# imported by the first conversion: the compiler reads FUND_FIELDS only (core/lazy.py)
np, pa, pc = lazy_module("numpy"), lazy_module("pyarrow"), lazy_module("pyarrow.compute")

YUAN_DIGITS = (16, 2)  # 数值型 16,2 of the national interface: ``YUAN``, decimal128(16, 2)
_LIMIT = 10 ** 16  # fen: decimal(16,2) holds at most 14 digits of yuan

# the fund fields a layer may fill (setlinfo), with their Chinese names
FUND_FIELDS = {
    "hifp_pay": "基本医疗保险统筹基金支出",
    "cvlserv_pay": "公务员医疗补助资金支出",
    "hifes_pay": "企业补充医疗保险基金支出",
    "hifmi_pay": "居民大病保险资金支出",
    "hifob_pay": "职工大额医疗费用补助基金支出",
    "hifdm_pay": "伤残人员医疗保障基金支出",
    "maf_pay": "医疗救助基金支出",
    "oth_pay": "其他支出",
    "acct_pay": "个人账户支出",
    "acct_mulaid_pay": "个人账户共济支付金额",
}
# the other columns written under national names, in output order
IDENTITY = (("setl_id", "claim_id", "结算ID"), ("psn_no", "person_id", "人员编号"),
            ("fixmedins_code", "hospital_id", "定点医药机构编号"),
            ("enddate", "discharge_date", "结束日期(出院日期)"))
TOTALS = {"medfee_sumamt": "医疗费总额", "act_pay_dedc": "实际支付起付线",
          "fund_pay_sumamt": "基金支付总额", "psn_part_amt": "个人负担总金额"}
BASIC_FUND = "hifp_pay"  # whose deductible is act_pay_dedc


class NationalNamesError(YibaoError, ValueError):
    """A result that cannot be written under the national names (an amount too large for
    decimal(16,2), a claim column missing)."""


def yuan(fen, claim_ids, column: str) -> pa.Array:
    """int64 fen as decimal(16,2) yuan, exactly (the fen integer is the unscaled value)."""
    values = np.asarray(pc.fill_null(fen, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    bad = np.flatnonzero(np.abs(values) >= _LIMIT)
    if bad.size:
        raise NationalNamesError(f"claim {claim_ids[int(bad[0])].as_py()!r}: {column} = "
                                 f"{int(values[bad[0]])} fen does not fit decimal(16,2) yuan")
    # int64 → decimal(19,0) (every int64 fits), then the same 128-bit integers read with
    # scale 2: fen become yuan without arithmetic; the bound above makes (16,2) safe
    wide = pa.array(values, pa.int64()).cast(pa.decimal128(19, 0))
    return wide.view(pa.decimal128(19, 2)).cast(pa.decimal128(*YUAN_DIGITS))


def national_table(policy, results: pa.Table) -> pa.Table:
    """``results`` (engine.settle's, any version mix, with the identity columns it carries)
    under the national names, one row per result row in the same order. Row by row, so a run
    converts each piece of its results as it writes it."""
    from .policy import Policy
    layers = _layers(Policy.of(policy))
    ids = results.column("claim_id").combine_chunks()
    columns = {out: _identity(results, src) for out, src, _ in IDENTITY}
    layer_fen = {name: _fen(results, name) for name in layers}
    self_pay = _fen(results, "self_pay")
    paid = sum(layer_fen.values(), np.zeros(results.num_rows, np.int64))
    amounts = {"medfee_sumamt": paid + self_pay}
    for field, names in _by_field(layers).items():
        amounts[field] = sum((layer_fen[n] for n in names), np.zeros(len(self_pay), np.int64))
    amounts["act_pay_dedc"] = sum((_fen(results, f"{n}_deductible")
                                   for n in _by_field(layers).get(BASIC_FUND, ())),
                                  np.zeros(len(self_pay), np.int64))
    amounts.update({"fund_pay_sumamt": paid, "psn_part_amt": self_pay})
    for name, field in layers.items():
        if not field:
            amounts[name] = layer_fen[name]  # unmapped: under its own name
    for name, fen in amounts.items():
        columns[name] = yuan(pa.array(fen), ids, name)
    for name in _others(results, layers):
        columns[name] = results.column(name)
    return pa.table(columns)


def _others(results: pa.Table, layers: dict) -> list:
    """The result columns that are not settlement amounts (provider payment: pool, group,
    points …; plugin stages; supervision's pending_review): kept after the national ones
    under yibao's names and units, so the national output drops nothing a run computed."""
    settled = {"claim_id", "self_pay", *(src for _, src, _ in IDENTITY), *layers,
               *(f"{name}_deductible" for name in layers)}
    return [name for name in results.column_names if name not in settled]


def _layers(policy) -> dict:
    """Layer name → national field ('' when it names none), over every version in order."""
    out = {}
    for plan in policy.versions:
        for layer in plan.layers:
            out.setdefault(layer.name, getattr(layer, "national", "") or "")
    return out


def _by_field(layers: dict) -> dict:
    found = {}
    for name, field in layers.items():
        if field:
            found.setdefault(field, []).append(name)
    return found


def _fen(results: pa.Table, name: str) -> np.ndarray:
    """A fen column as int64 (0 when absent: a layer of another version, or no deductible)."""
    if name not in results.column_names:
        return np.zeros(results.num_rows, np.int64)
    col = pc.fill_null(results.column(name), 0)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def _identity(results: pa.Table, name: str) -> pa.ChunkedArray:
    """An identity column the results carry (settlement.IDENTITY: the claims' own, already
    normalised, arrow_io.normal_table); a claim file without it cannot be written so."""
    if name not in results.column_names:
        raise NationalNamesError(f"the claims have no column {name!r}, which the national "
                                 f"names need")
    return results.column(name)


def __getattr__(name):
    """``YUAN``, the Arrow type of a national amount, made on first use (PEP 562)."""
    if name == "YUAN":
        return pa.decimal128(*YUAN_DIGITS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

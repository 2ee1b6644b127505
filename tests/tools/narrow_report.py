"""A diff report with amounts of billions of yuan and long names, to print at 80 columns.
A module of its own (no package-relative imports) so a subprocess can import it too."""
from __future__ import annotations

import pyarrow as pa

BIG = 385_172_781_234  # fen: 3,851,727,812.34 yuan, the amount the issue saw cut


def big_report():
    from yibao.core.diff import DiffReport
    layers = pa.table({"layer": ["basic_inpatient", "critical_illness_insurance"],
                       "label": ["城乡居民基本医保住院", "城乡居民大病保险二次补偿"],
                       "fund_a": [BIG, BIG // 3], "fund_b": [BIG + 12_345, BIG // 3 - 999],
                       "change": [12_345, -999]})
    group = lambda key: pa.table({key: [1], "claims": [1_000_000], "fund_a": [BIG],  # noqa
                                  "fund_b": [BIG + 1], "change": [1]})
    movers = pa.table({"claim_id": ["C000000001"], "person_id": ["P0000001"],
                       "tier": ["tier2"], "hospital_level": [3], "self_pay_a": [123_456_789],
                       "self_pay_b": [123_456_790], "change": [1]})
    return DiffReport("参考政策", "改后政策", 3_000_000, 0, 0,
                      {"fund_a": BIG, "fund_b": BIG + 11_346, "self_pay_a": 1, "self_pay_b": 2},
                      layers, group("tier"), group("hospital_level"), 1, 1, 0,
                      pa.table({"lo": [1], "hi": [2], "claims": [1]}), movers)

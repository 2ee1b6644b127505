"""Provider-payment CSVs (pools' points, fixed rates, alliances, hospital figures) are read as
the benefit tables are: UTF-8, or GBK/GB18030 as Excel on Chinese Windows saves "CSV"
(issue 15). Every CSV of Rizhao's folder — Chinese labels in `fixed_point_values.csv`,
`alliances.csv`, `hospital_spending.csv` — re-encoded to GB18030 compiles to the same policy."""
from __future__ import annotations

import shutil
from pathlib import Path

from yibao.core.policy import Policy
from yibao.dsl.compiler import compile_policy

CITY = Path(__file__).resolve().parents[2] / "city_configs" / "rizhao"


def _copy(root: Path, encoding: str) -> Path:
    folder = root / "rizhao"
    shutil.copytree(CITY, folder)
    for csv in folder.glob("*.csv"):
        csv.write_bytes(csv.read_text(encoding="utf-8").encode(encoding))
    return folder


def test_gbk_provider_csvs_compile_to_the_same_policy(tmp_path):
    utf8 = _copy(tmp_path / "a", "utf-8")
    gbk = _copy(tmp_path / "b", "gb18030")
    chinese = [p.name for p in gbk.glob("*.csv")
               if any(not ch.isascii() for ch in (utf8 / p.name).read_text(encoding="utf-8"))]
    assert "fixed_point_values.csv" in chinese and "alliances.csv" in chinese  # the point
    want = Policy.of(compile_policy(utf8)).to_json().replace(str(tmp_path / "a"), "ROOT")
    got = Policy.of(compile_policy(gbk)).to_json().replace(str(tmp_path / "b"), "ROOT")
    assert got == want

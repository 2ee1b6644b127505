"""Policy tables as city teams keep them (issue 15): CSV in GBK/GB18030 (Excel's default on
Chinese Windows) read by detection, .xlsx workbooks, and amounts written 30万, 3000元, 1.5万元
(exact), with errors naming the row and a hint naming the spellings that work."""
from __future__ import annotations

import pytest

from yibao.dsl.compiler import check_text

HEAD = 'policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
TABLE = HEAD + 'table d (hospital_level) -> money from "{name}"\n'
ROWS = [("hospital_level", "value"), ("1", "3000元"), ("2", "30万"), ("3", "1.5万元")]
WANT = {(1,): 300_000, (2,): 30_000_000, (3,): 1_500_000}  # fen


def rows_of(tmp_path, name):
    """(table rows in fen, diagnostics) of table d read from ``name``."""
    plan, diags = check_text(TABLE.replace("{name}", name), "t.yb", base_dir=tmp_path)
    errors = [d for d in diags if d.severity == "error"]
    if plan is None:
        return None, errors
    [table] = [t for t in plan.tables if t.name == "d"]
    return dict(table.rows), errors


def write_csv(path, rows, encoding="utf-8"):
    path.write_bytes("\n".join(",".join(r) for r in rows).encode(encoding) + b"\n")


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "gb18030", "utf-8-sig"])
def test_csv_in_utf8_or_gbk_is_read(tmp_path, encoding):
    write_csv(tmp_path / "d.csv", ROWS, encoding)
    got, errors = rows_of(tmp_path, "d.csv")
    assert errors == [] and got == WANT


def test_gbk_with_chinese_text_values(tmp_path):
    (tmp_path / "d.csv").write_bytes("hospital_level,value\n1,300元\n2,400元\n3,500元\n"
                                     .encode("gbk"))
    got, errors = rows_of(tmp_path, "d.csv")
    assert errors == [] and got == {(1,): 30_000, (2,): 40_000, (3,): 50_000}


def test_utf16_table_is_still_refused_naming_it(tmp_path):
    write_csv(tmp_path / "d.csv", ROWS, "utf-16")
    _, errors = rows_of(tmp_path, "d.csv")
    [diag] = errors
    assert diag.code == "E305" and "UTF-16" in diag.message


def test_amount_spelling_that_does_not_work_gets_the_hint(tmp_path):
    write_csv(tmp_path / "d.csv", ROWS[:2] + [("2", "三十万"), ("3", "1.5万元")])
    _, errors = rows_of(tmp_path, "d.csv")
    [diag] = errors
    assert diag.code == "E210" and "d.csv line 3" in diag.span.file
    assert "30万" in diag.hint and "3000元" in diag.hint


def test_chinese_amount_below_a_fen_is_refused(tmp_path):
    write_csv(tmp_path / "d.csv", ROWS[:3] + [("3", "1.2345678万")])
    _, errors = rows_of(tmp_path, "d.csv")
    [diag] = errors
    assert diag.code == "E213" and "d.csv line 4" in diag.span.file


def write_xlsx(path, rows):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(list(row))
    book.save(path)


def test_xlsx_table_is_read(tmp_path):
    write_xlsx(tmp_path / "d.xlsx", [("hospital_level", "value"), (1, 300), (2, "30万"),
                                     (3, "1.5万元")])
    got, errors = rows_of(tmp_path, "d.xlsx")
    assert errors == [] and got == WANT | {(1,): 30_000}


def test_xlsx_ratio_cells_are_exact(tmp_path):
    write_xlsx(tmp_path / "r.xlsx", [("hospital_level", "value"), (1, 0.85), (2, 0.8),
                                     (3, "72.5%")])
    text = HEAD + 'table r (hospital_level) -> ratio from "r.xlsx"\n'
    plan, diags = check_text(text, "t.yb", base_dir=tmp_path)
    assert [d for d in diags if d.severity == "error"] == []
    [table] = plan.tables
    assert dict(table.rows) == {(1,): 850_000, (2,): 800_000, (3,): 725_000}


def test_xlsx_error_names_the_sheet_row(tmp_path):
    write_xlsx(tmp_path / "d.xlsx", [("hospital_level", "value"), (1, 300), (2, "lots"),
                                     (3, 500)])
    _, errors = rows_of(tmp_path, "d.xlsx")
    [diag] = errors
    assert diag.code == "E210" and "d.xlsx row 3" in diag.span.file


def test_a_file_named_xlsx_that_is_not_a_workbook(tmp_path):
    pytest.importorskip("openpyxl")
    write_csv(tmp_path / "d.xlsx", ROWS)
    _, errors = rows_of(tmp_path, "d.xlsx")
    [diag] = errors
    assert diag.code == "E305" and "not an Excel workbook" in diag.message


@pytest.mark.parametrize("written,hint", [("30万", "write 300_000 yuan"),
                                          ("3000元", "write 3_000 yuan"),
                                          ("1.5万元", "write 15_000 yuan")])
def test_chinese_amount_in_a_policy_file_gets_the_spelling_that_works(written, hint):
    text = HEAD + f'layer a "x" {{\n  base in_scope\n  deductible {written}\n  ratio 80%\n}}\n'
    _, diags = check_text(text, "t.yb")
    [diag] = diags
    assert diag.code == "E101" and diag.hint.startswith(hint)
    assert "CSV and XLSX tables" in diag.hint

"""Provider tables may be Excel workbooks, as benefit tables may (issue 15): the one table
reader (``dsl/table_files.py``) reads a pool's points, fixed rates, hospital figures, an
alliance's persons and a decision table from the first sheet of an ``.xlsx`` exactly as from
the CSV. Every CSV of Rizhao's folder saved as a workbook compiles to the same provider
payment; a bad cell names its sheet row."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from yibao.core.plan import _encode
from yibao.dsl.compiler import check_text, compile_policy

openpyxl = pytest.importorskip("openpyxl")  # the xlsx extra (installed with the test extra)

CITY = Path(__file__).resolve().parents[2] / "city_configs" / "rizhao"


def _sheet_value(cell: str):
    """A cell as Excel holds what was typed: whole numbers as numbers, the rest as text."""
    return int(cell) if cell.isdigit() and not cell.startswith("0") else cell


def save_as_workbook(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    with path.open(encoding="utf-8", newline="") as f:
        for line in f:
            if line.lstrip().startswith("#"):  # a note: one cell, as typed in Excel
                sheet.append([line.strip()])
            else:
                sheet.append([_sheet_value(c) for c in next(csv.reader([line]))])
    out = path.with_suffix(".xlsx")
    book.save(out)
    return out


def _workbook_city(root: Path) -> Path:
    folder = root / "rizhao"
    shutil.copytree(CITY, folder)
    policy = folder / "policy.yb"
    text = policy.read_text(encoding="utf-8")
    for table in folder.glob("*.csv"):
        if f'"{table.name}"' in text:
            save_as_workbook(table)
            table.unlink()
            text = text.replace(f'"{table.name}"', f'"{table.stem}.xlsx"')
    policy.write_text(text, encoding="utf-8")
    return folder


def _provider_json(plan, folder: Path) -> str:
    text = str(_encode((plan.groupers, plan.provider)))
    return text.replace(str(folder), "ROOT").replace(".xlsx", ".csv")


def test_rizhao_with_workbooks_compiles_to_the_same_provider_payment(tmp_path):
    folder = _workbook_city(tmp_path)
    assert not list(folder.glob("*.csv"))  # every table the policy names is a workbook now
    assert _provider_json(compile_policy(folder), folder) == \
        _provider_json(compile_policy(CITY), CITY)


def test_a_bad_workbook_cell_names_its_sheet_row(tmp_path):
    folder = _workbook_city(tmp_path)
    book = openpyxl.load_workbook(folder / "drg_points.xlsx")
    book.active.cell(row=5, column=2, value="1.2.3")  # three notes, the header, AB19
    book.save(folder / "drg_points.xlsx")
    policy = folder / "policy.yb"
    from yibao.dsl.plugin_registry import registry_for
    _, diags = check_text(policy.read_text(encoding="utf-8"), "policy.yb", folder,
                          registry_for(policy))
    assert [(d.code, d.message.split(":")[0]) for d in diags if d.code == "E507"] == [
        ("E507", "drg_points.xlsx row 5")]

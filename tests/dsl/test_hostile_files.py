"""Hostile policy and table files (issue 12, items 5-7): each is a diagnostic with a code,
never a traceback or a hang — a policy or CSV in GBK/Big5/UTF-16, a FIFO, device or folder
named as a file, a NUL byte in a table path, CSV cells that are almost numbers, digits and
letters of other scripts, and a table whose completeness check would list 64 million rows."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yibao.dsl.compiler import check_text, compile_file
from yibao.dsl.errors import PolicyError

HEAD = 'policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
POLICY = HEAD + '# 起付线 800 元\nlayer a "基本医保" {\n  base in_scope\n  ratio 85%\n}\n'
ERRORS = Path(__file__).parent / "errors"


def codes(text, base_dir=None):
    return [d.code for d in check_text(text, "t.yb", base_dir=base_dir)[1]]


@pytest.mark.parametrize("encoding,named", [("gbk", "GBK/GB18030"), ("gb18030", "GBK/GB18030"),
                                            ("utf-16", "UTF-16"),
                                            # Big5 bytes mostly decode as GBK too: either name
                                            ("big5", "Big5|GBK/GB18030")])
def test_policy_not_utf8_names_file_and_encoding(tmp_path, encoding, named):
    path = tmp_path / "policy.yb"
    text = POLICY if encoding != "big5" else POLICY.replace("起付线", "起付線").replace(
        "基本医保", "基本醫保")
    path.write_bytes(text.encode(encoding))
    with pytest.raises(PolicyError) as info:
        compile_file(path)
    [diag] = info.value.diagnostics
    assert diag.code == "E005" and str(path) in diag.message
    assert any(n in diag.message for n in named.split("|"))
    assert diag.span.line >= 1


def test_yibao_check_on_a_gbk_policy_is_one_diagnostic_exit_1(tmp_path):
    """A policy file check can read no further is a finding of check (exit 1, docs/cli.md)."""
    path = tmp_path / "policy.yb"
    path.write_bytes(POLICY.encode("gbk"))
    done = subprocess.run([sys.executable, "-m", "yibao.dsl.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "error[E005]" in done.stderr and "GBK/GB18030" in done.stderr
    assert "Traceback" not in done.stderr


def test_table_csv_not_utf8(tmp_path):
    """GBK/GB18030 tables are read (tests/dsl/test_table_files.py); UTF-16 is still refused
    naming the encoding and the line."""
    (tmp_path / "d.csv").write_bytes("hospital_level,value\n1,300 yuan # 一级\n".encode("utf-16"))
    text = HEAD + 'table d (hospital_level) -> money from "d.csv"\n'
    _, diags = check_text(text, "t.yb", base_dir=tmp_path)
    [diag] = [d for d in diags if d.code == "E305"]
    assert "UTF-16" in diag.message and "line 1" in diag.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_table_file_that_is_not_a_regular_file_is_refused_without_reading(tmp_path, kind):
    name = "d.csv"
    if kind == "fifo":
        os.mkfifo(tmp_path / name)  # opening it would block until a writer comes
    elif kind == "folder":
        (tmp_path / name).mkdir()
    else:
        (tmp_path / name).symlink_to("/dev/zero")  # resolves outside the folder: E304
    text = HEAD + f'table d (hospital_level) -> money from "{name}"\n'
    start = time.monotonic()
    found = codes(text, tmp_path)
    assert time.monotonic() - start < 5
    assert found == (["E304"] if kind == "device" else ["E305"])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_policy_file_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "policy.yb")
    with pytest.raises(PolicyError) as info:
        compile_file(tmp_path / "policy.yb")
    assert info.value.codes == ["E005"] and "FIFO" in str(info.value)


def test_nul_byte_in_a_table_path(tmp_path):
    text = HEAD + 'table d (hospital_level) -> money from "d\x00.csv"\n'
    assert codes(text, tmp_path) == ["E304"]


@pytest.mark.parametrize("cell,hint", [("--5 yuan", "digits 0-9"), ("² yuan", "ASCII digits: 2"),
                                       ("３００ yuan", "ASCII digits: 300"), ("5-5", "digits")])
def test_csv_cells_that_are_almost_numbers(tmp_path, cell, hint):
    (tmp_path / "d.csv").write_text(f"hospital_level,value\n1,{cell}\n2,1 yuan\n3,2 yuan\n",
                                    encoding="utf-8")
    text = HEAD + 'table d (hospital_level) -> money from "d.csv"\n'
    [diag] = check_text(text, "t.yb", base_dir=tmp_path)[1]
    assert diag.code == "E104" and "d.csv line 2" in diag.span.file and hint in diag.hint


@pytest.mark.parametrize("number", ["３００_000", "٣٠٠", "300_０00"])
def test_digits_of_other_scripts_are_refused(number):
    text = HEAD + f"layer a {{\n  base in_scope\n  cap {number} yuan per claim\n}}\n"
    _, diags = check_text(text, "t.yb")
    assert [d.code for d in diags] == ["E104"] and "ASCII digits" in diags[0].hint


@pytest.mark.parametrize("name,code", [("bаsic", "E105"), ("ｂasic", "E105"),
                                       ("αbc", "E105")])
def test_confusable_names(name, code):
    text = HEAD + f"layer {name} {{\n  base in_scope\n}}\nlayer basic {{\n  base in_scope\n}}\n"
    assert codes(text)[:1] == [code]


def test_chinese_names_and_labels_keep_working():
    from yibao.dsl.compiler import compile_text
    plan = compile_text(HEAD + 'layer 住院 "基本医保住院" {\n  base in_scope\n  ratio 85%\n}\n'
                        'layer 大病_critical "大病保险" {\n  base in_scope - paid(住院)\n}\n')
    assert [l.name for l in plan.layers] == ["住院", "大病_critical"]


@pytest.mark.parametrize("literal", ["99999999999999999999999999 yuan", "9223372036854775807 fen",
                                     "10_000_000_000_001 yuan"])
def test_amounts_beyond_the_range_are_e215_at_compile_time(literal):
    text = HEAD + f"layer a {{\n  base in_scope\n  cap {literal} per claim\n}}\n"
    assert codes(text) == ["E215"]


def test_largest_amount_compiles():
    from yibao.dsl.compiler import compile_text
    plan = compile_text(HEAD + "layer a {\n  base in_scope\n  cap 10_000_000_000_000 yuan "
                        "per claim\n}\n")
    assert plan.layers[0].caps[0].amount.value == 10**15


def test_completeness_of_a_six_key_table_is_counted_not_listed():
    """Six keys of 20 values: 64 million combinations; the check takes time and memory in
    proportion to the rows present (the issue measured 11 s and 6.6 GB)."""
    text = (ERRORS / "E301_completeness_bomb.yb").read_text(encoding="utf-8")
    start = time.perf_counter()
    _, diags = check_text(text, "t.yb")
    elapsed = time.perf_counter() - start
    [diag] = diags
    assert diag.code == "E301" and "63,999,994 more" in diag.message
    assert elapsed < 0.5, elapsed


def test_pool_adjustment_beyond_the_range_fails_check_not_settle(tmp_path):
    """The issue's `adjust tcm 9223372036854775807 …` crashed settle with OverflowError."""
    import shutil
    city = Path(__file__).resolve().parents[2] / "city_configs" / "jinhua"
    shutil.copytree(city, tmp_path / "jinhua")
    policy = tmp_path / "jinhua" / "policy.yb"
    text = policy.read_text(encoding="utf-8")
    assert "adjust tcm_institution 1.1 when" in text
    policy.write_text(text.replace("adjust tcm_institution 1.1 when",
                                   "adjust tcm_institution 9223372036854775807 when"),
                      encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        compile_file(policy)
    assert info.value.codes == ["E215"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("kind", ["fifo", "utf16"])
def test_provider_csv_that_cannot_be_read_is_a_diagnostic(tmp_path, kind):
    """The provider part's CSVs (points, coefficients, review …) go through the same reader as
    the benefit tables: a FIFO is refused without being opened, a UTF-16 file is named as not
    UTF-8 (GBK is read since issue 15: tests/provider/test_table_encodings.py)."""
    import shutil
    city = tmp_path / "jinhua"
    shutil.copytree(Path(__file__).resolve().parents[2] / "city_configs" / "jinhua", city)
    points = city / "drg_points.csv"
    if kind == "fifo":
        points.unlink()
        os.mkfifo(points)
    else:
        points.write_bytes("group,points,avg_cost,label\nAA11,1.5,100 yuan,心脏移植\n"
                           .encode("utf-16"))
    done = subprocess.run([sys.executable, "-m", "yibao.dsl.cli", "check", str(city)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "error[E305]" in done.stderr, done.stderr
    assert ("not a file" in done.stderr) if kind == "fifo" else ("not UTF-8" in done.stderr)
    assert "Traceback" not in done.stderr

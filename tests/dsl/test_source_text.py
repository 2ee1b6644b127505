"""Source text as editors on Chinese Windows desktops write it: a UTF-8 BOM at the start
(Notepad) is skipped; full-width punctuation from a Chinese input method is E102 with a hint
naming the ASCII character to use."""
import pytest

from yibao.dsl.compiler import check_text, compile_file, compile_text
from yibao.dsl.errors import render
from yibao.dsl.parser import parse

POLICY = ('policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'
          "layer a {\n  base in_scope\n  ratio 85%\n}\n")


def test_leading_bom_is_skipped(tmp_path):
    path = tmp_path / "policy.yb"
    path.write_bytes(POLICY.encode("utf-8-sig"))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert compile_file(path) == compile_text(POLICY, str(path), tmp_path)
    assert parse("\ufeff" + POLICY, "t.yb") == parse(POLICY, "t.yb")


def test_bom_does_not_shift_columns_of_later_errors():
    text = "\ufeff" + POLICY.replace("ratio 85%", "ratio 85%%")
    _, diags = check_text(text, "t.yb")
    _, plain = check_text(POLICY.replace("ratio 85%", "ratio 85%%"), "t.yb")
    assert diags == plain and diags


def test_bom_only_at_the_start():
    _, diags = check_text(POLICY.replace("layer a", "\ufefflayer a"), "t.yb")
    assert [d.code for d in diags] == ["E102"]


HEAD = 'policy "t" {\n  region "test"\n  effective 2024-01-01 to 2024-12-31\n}\n'


@pytest.mark.parametrize("wide,plain,body", [
    ("％", "%", "layer a {\n  base in_scope\n  ratio 85％\n}\n"),
    ("，", ",", "layer a {\n  base min(in_scope， 100)\n}\n"),
    ("：", ":", "table r (hospital_level) -> ratio { 1：70%, 2: 60%, 3: 50% }\n"),
    ("（", "(", "layer a {\n  base min（in_scope, 100)\n}\n"),
    ("）", ")", "layer a {\n  base min(in_scope, 100）\n}\n"),
    ("｛", "{", "layer a ｛\n  base in_scope\n}\n"),
    ("｝", "}", "layer a {\n  base in_scope\n｝\n"),
    ("＝", "=", "layer a {\n  applies when setting ＝ inpatient\n  base in_scope\n}\n"),
])
def test_full_width_punctuation_hint(wide, plain, body):
    text = HEAD + body
    _, diags = check_text(text, "t.yb")
    assert [d.code for d in diags] == ["E102"]
    d = diags[0]
    assert d.hint == f"use the ASCII '{plain}' instead of the full-width '{wide}'"
    source, carets = render(d, text).splitlines()[1:3]
    assert source[carets.index("^")] == wide  # only ASCII before it: columns = characters
    assert not any(x.code == "E102" for x in check_text(text.replace(wide, plain), "t.yb")[1])


def test_other_characters_keep_the_expected_tokens_hint():
    _, diags = check_text(HEAD + "layer a {\n  base in_scope $\n}\n", "t.yb")
    assert [d.code for d in diags] == ["E102"]
    assert "full-width" not in (diags[0].hint or "")

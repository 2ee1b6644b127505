"""Input limits are checked before parsing, with a clear error instead of a RecursionError."""
import pytest

from yibao.dsl.compiler import compile_text
from yibao.dsl.errors import PolicyError

HEADER = 'policy "t" {\n  effective 2024-01-01 to 2024-12-31\n}\n'


def codes(text):
    with pytest.raises(PolicyError) as info:
        compile_text(text, "big.yb")
    return info.value.codes


def test_file_over_one_megabyte():
    assert codes(HEADER + "#" * 1_000_001) == ["E001"]


def test_nesting_limit_is_100_brackets():
    # the layer's own `{` counts: 1 + 99 parentheses is the deepest allowed
    ok = HEADER + "layer a {\n  base " + "(" * 99 + "in_scope" + ")" * 99 + "\n}\n"
    assert compile_text(ok).layers[0].base.name == "in_scope"
    assert codes(ok.replace("(in_scope)", "((in_scope))")) == ["E002"]


def test_deep_nesting_far_beyond_python_recursion():
    text = HEADER + "layer a {\n  base " + "(" * 5000 + "in_scope" + ")" * 5000 + "\n}\n"
    assert codes(text) == ["E002"]
    text = HEADER + "layer a {\n  base in_scope" + " + 1" * 20_000 + "\n}\n"
    assert codes(text) == ["E004"]
    text = HEADER + "layer a {\n  applies when " + "not " * 5000 + "low_income\n  base total\n}\n"
    assert codes(text) == ["E004"]


def test_too_many_rows():
    rows = "\n".join(f"  {i}: {i}" for i in range(10_001))
    text = HEADER + f"table t (los) -> money {{\n{rows}\n}}\n"
    assert codes(text) == ["E003"]


def test_ten_thousand_rows_are_fine():
    rows = "\n".join(f"  {i}: {i}" for i in range(9_990))
    text = HEADER + f"table t (los) -> money {{\n{rows}\n}}\nlayer a {{\n  base t[los]\n}}\n"
    assert len(compile_text(text).table("t").rows) == 9_990

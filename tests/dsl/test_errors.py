"""The error corpus: tests/dsl/errors/*.yb, each with the exact rendered diagnostics in the
.err beside it. A file named E201_… must produce E201; together the corpus and test_limits.py
cover every code in errors.CODES."""
from dataclasses import replace
from pathlib import Path

import pytest

from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.errors import CODES, PolicyError, render
from yibao.dsl.source import read_policy

ERRORS = Path(__file__).parent / "errors"
CASES = sorted(ERRORS.glob("*.yb"))
LIMIT_CODES = {"E001", "E003"}  # need megabyte inputs: tests/dsl/test_limits.py
# Provider-payment codes need CSV tables beside the policy: tests/provider/test_language.py;
# version codes need a folder of versions: tests/tools/test_versions.py.
ELSEWHERE = {"E501", "E502", "E503", "E504", "E505", "W506", "E507", "E508", "E509", "E510",
             "E511", "E513",
             "E601", "E602"}


def diagnostics(path: Path):
    """Read as `yibao check` reads (E005 for a file that is not UTF-8), then compile."""
    try:
        text = read_policy(path)
    except PolicyError as exc:
        return exc.source, None, [  # names the file as given: keep the golden path-free
            replace(d, message=d.message.replace(str(path), path.name),
                    span=replace(d.span, file=path.name)) for d in exc.diagnostics]
    plan, diags = check_text(text, path.name, base_dir=ERRORS)
    return text, plan, diags


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_rendered_errors(path, golden_text):
    text, plan, diags = diagnostics(path)
    assert diags, "no diagnostic"
    code = path.stem.split("_")[0]
    if code in CODES:
        assert code in {d.code for d in diags}
    rendered = "\n\n".join(render(d, text) for d in diags) + "\n"
    assert "__ANON" not in rendered
    golden_text(path.with_suffix(".err"), rendered)


def test_every_code_has_a_case():
    covered = {p.stem.split("_")[0] for p in CASES} | LIMIT_CODES | ELSEWHERE
    assert set(CODES) <= covered, sorted(set(CODES) - covered)


def test_several_errors_reported_at_once():
    _, _, diags = diagnostics(ERRORS / "multiple_errors.yb")
    assert [d.code for d in diags] == ["E206", "E201", "E211"] or len(diags) >= 3


def test_errors_raise_policy_error_warnings_do_not():
    text = (ERRORS / "E201_unknown_name.yb").read_text(encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        compile_text(text, "x.yb")
    assert info.value.codes == ["E201"]
    assert "did you mean 'hospital_level'?" in str(info.value)
    text = (ERRORS / "W407_contradiction.yb").read_text(encoding="utf-8")
    with pytest.warns(UserWarning, match="W407"):
        plan = compile_text(text, "x.yb")
    assert plan.layers[0].name == "a"

"""docs/architecture.md prints the reference city's policy after every compiler pass; the
print is generated (``--update-goldens`` rewrites it), so the document stays true."""
from __future__ import annotations

from pathlib import Path

from yibao.dsl.compiler import PASSES, trace_passes

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
POLICY = "city_configs/reference/policy.yb"
BEGIN, END = "<!-- passes:begin (generated: pytest --update-goldens) -->", "<!-- passes:end -->"


def render() -> str:
    """The section: each pass's name and what it recorded, then the lowered plan."""
    path = ROOT / POLICY
    parts = []
    for name, text in trace_passes(path.read_text(encoding="utf-8"), POLICY, path.parent):
        parts.append(f"#### after `{name}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def test_the_doc_prints_every_pass_of_the_reference_city(request):
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    want = render()
    if request.config.getoption("--update-goldens"):
        DOC.write_text(f"{head}{BEGIN}\n{want}{END}{tail}", encoding="utf-8")
        return
    assert rest.split(END)[0].strip() == want.strip(), \
        "docs/architecture.md is stale: run pytest tests/tools/test_architecture_doc.py " \
        "--update-goldens"


def test_every_pass_is_named_in_the_doc():
    doc = DOC.read_text(encoding="utf-8")
    for name, _ in PASSES:
        assert f"`{name}`" in doc.split(BEGIN)[0], f"docs/architecture.md does not describe {name}"

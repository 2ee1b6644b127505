"""`yibao fmt`: printing is idempotent, keeps every comment, and parse -> print -> parse
compiles to the same plan, for every policy in city_configs and in the test corpus."""
import dataclasses
from pathlib import Path

import pytest

from yibao.core.registry import KeyDecl, default_registry
from yibao.dsl.compiler import check_text
from yibao.dsl.errors import PolicyError
from yibao.dsl.parser import parse
from yibao.dsl.source import read_policy
from yibao.dsl.printer import format_policy

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
POLICIES = sorted([*REPO.glob("city_configs/**/*.yb"), *HERE.glob("valid/*.yb"),
                   *HERE.glob("errors/*.yb")])
# Error-corpus files that must not parse: their code is found before the AST exists (input
# limits, the file's bytes, syntax, literals and names checked while building the AST). Every
# other policy must parse, and a failure to parse it fails the test.
NOT_PARSING = ("E00", "E10", "E110", "E207")


def registry():
    reg = default_registry()
    reg.add_key(KeyDecl("family", "family_id", "household"))
    return reg


def without_sources(plan):
    """The plan minus what depends on layout: source lines and the file hash."""
    return dataclasses.replace(
        plan, meta=(),
        layers=tuple(dataclasses.replace(l, source="") for l in plan.layers),
        tables=tuple(dataclasses.replace(t, source="") for t in plan.tables))


def parses(path: Path) -> bool:
    return not path.name.startswith(NOT_PARSING) or path.name.startswith("E104_csv")


@pytest.mark.parametrize("path", [p for p in POLICIES if not parses(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_syntax_cases_do_not_parse(path):
    with pytest.raises(PolicyError):
        parse(read_policy(path), path.name)


@pytest.mark.parametrize("path", [p for p in POLICIES if parses(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_fmt_idempotent_and_same_plan(path):
    text = path.read_text(encoding="utf-8")
    tree = parse(text, path.name)
    once = format_policy(tree)
    twice = format_policy(parse(once, path.name))
    assert once == twice
    for comment in tree.comments:
        assert comment.text in once
    before, diags_before = check_text(text, path.name, path.parent, registry())
    after, diags_after = check_text(once, path.name, path.parent, registry())
    assert [d.code for d in diags_before] == [d.code for d in diags_after]
    if before is not None:
        assert without_sources(after) == without_sources(before)


def test_city_policies_are_kept_in_canonical_layout():
    for path in sorted((REPO / "city_configs").glob("*/policy.yb")):
        text = path.read_text(encoding="utf-8")
        assert format_policy(parse(text, "policy.yb")) == text, f"run: yibao fmt {path}"


def test_parentheses_only_where_needed():
    text = ('policy "p" { effective 2024-01-01 to 2024-12-31 }\n'
            "layer a {\n  base (in_scope - (self_first - 1)) * (50%)\n"
            "  applies when not (low_income or hospital_tcm) and (los > 1)\n}\n")
    out = format_policy(parse(text))
    assert "base (in_scope - (self_first - 1)) * 50%" in out
    assert "applies when not (low_income or hospital_tcm) and los > 1" in out

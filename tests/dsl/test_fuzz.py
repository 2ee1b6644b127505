"""Hypothesis fuzzing: random token soups and mutated valid policies must compile or raise
PolicyError, never any other exception. Inputs that once crashed are kept in regressions/."""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yibao.dsl.compiler import compile_text
from yibao.dsl.errors import PolicyError, render

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SEEDS = [p.read_text(encoding="utf-8") for p in
         sorted([*REPO.glob("city_configs/**/*.yb"), *HERE.glob("valid/*.yb")])]
TOKENS = ["policy", "region", "effective", "to", "year", "starts", "domain", "attribute", "table",
          "from", "layer", "applies", "when", "base", "deductible", "per", "claim", "continuing",
          "ratio", "by", "bands", "and", "above", "cap", "self_pay_limit", "if", "then", "else",
          "or", "not", "in", "paid", "true", "false", "money", "int", "bool", "text", "of",
          "yuan", "fen", "%", "{", "}", "(", ")", "[", "]", ":", ",", "->", "+", "-", "*", "=",
          "!=", "<", "<=", ">", ">=", "\n", "#c\n", "300", "1_000.50", "0.85", "85%",
          "2024-01-01", "07-01", '"x"', "tier", "setting", "in_scope", "person", "family",
          "low_income", "hospital_level", "inpatient", "a", "大病", "min", "max", "0", "-1"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def compiles_or_policy_error(text: str) -> None:
    try:
        compile_text(text, "fuzz.yb")
    except PolicyError as exc:
        assert exc.diagnostics
        for diag in exc.diagnostics:
            render(diag, text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup(text):
    compiles_or_policy_error(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_after_a_valid_header(text):
    compiles_or_policy_error('policy "p" { effective 2024-01-01 to 2024-12-31 }\n' + text)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + " " + draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            k = draw(st.integers(0, len(text)))
            text = text[:i] + text[k:k + 8] + text[j:]
    return text


@FUZZ
@given(mutated())
def test_mutated_policies(text):
    compiles_or_policy_error(text)


@pytest.mark.parametrize("path", sorted((HERE / "regressions").glob("*.yb")),
                         ids=lambda p: p.stem)
def test_regressions(path):
    compiles_or_policy_error(path.read_text(encoding="utf-8"))

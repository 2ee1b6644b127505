"""Compiling a policy parses each file once: the plugin declarations read before the registry
is built (plugin_registry.registry_for) and the compiler share the one AST."""
from __future__ import annotations

from pathlib import Path

from yibao.dsl import parser
from yibao.dsl.compiler import compile_policy

REPO = Path(__file__).resolve().parents[2]


def test_compile_policy_parses_the_file_once(monkeypatch):
    calls = []
    real = parser.to_ast
    monkeypatch.setattr(parser, "to_ast", lambda *a: (calls.append(a[1]), real(*a))[1])
    parser._parse.cache_clear()
    compile_policy(REPO / "city_configs" / "reference")  # no registry: declarations first
    assert len(calls) == 1, calls


def test_a_syntax_error_is_reported_every_time():
    """Errors are not cached away: each parse of a bad text raises."""
    import pytest
    from yibao.dsl.errors import PolicyError
    for _ in range(2):
        with pytest.raises(PolicyError):
            parser.parse("layer {", "bad.yb")

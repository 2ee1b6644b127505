"""The AST's ``@node`` records behave as the frozen dataclasses they replace (dsl/ast.py):
for every node class, a twin made with ``@dataclass(frozen=True)`` from the same fields has
the same repr, equality and hash, and both refuse assignment; construction errors are
TypeErrors, and ``dataclasses.fields``/``replace`` still work."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from yibao.dsl import ast

NODES = sorted((c for _, c in inspect.getmembers(ast, inspect.isclass)
                if issubclass(c, ast._Record) and c is not ast._Record and c._fields),
               key=lambda c: c.__name__)
SPAN = ast.Span("p.yb", 1, 2, 3, 4)


def twin(cls):
    """A frozen dataclass with ``cls``'s name, fields and defaults."""
    fields = [(n, object, dataclasses.field(default=d)) if d is not ast._REQUIRED else (n, object)
              for n, d in cls._field_defaults.items()]
    made = dataclasses.make_dataclass(cls.__name__, fields, frozen=True)
    made.__qualname__ = cls.__qualname__
    return made


def sample(cls, salt: int) -> tuple:
    return tuple(SPAN if n == "span" else (f"v{salt}", salt, None)[i % 3]
                 for i, n in enumerate(cls._fields))


def test_every_node_class_is_a_record():
    assert len(NODES) > 70
    assert all(dataclasses.is_dataclass(c) for c in NODES)


@pytest.mark.parametrize("cls", NODES, ids=lambda c: c.__name__)
def test_a_node_behaves_as_its_frozen_dataclass_twin(cls):
    other = twin(cls)
    a, b, c = (cls(*sample(cls, 1)), cls(*sample(cls, 1)), cls(*sample(cls, 2)))
    ta, tb, tc = (other(*sample(cls, 1)), other(*sample(cls, 1)), other(*sample(cls, 2)))
    assert repr(a) == repr(ta)
    assert (a == b, a == c, hash(a) == hash(b)) == (ta == tb, ta == tc, hash(ta) == hash(tb))
    assert hash(a) == hash(ta)
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(ta)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.span = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.span


def test_defaults_keywords_and_replace():
    n = ast.Number(SPAN, "12")
    assert n.unit is None and n == ast.Number(span=SPAN, text="12", unit=None)
    assert dataclasses.replace(n, unit="%") == ast.Number(SPAN, "12", "%")
    assert n != ast.Str(SPAN, "12") and n.__eq__(object()) is NotImplemented


@pytest.mark.parametrize("call", [lambda: ast.Number(SPAN), lambda: ast.Number(SPAN, "1", "%", 4),
                                  lambda: ast.Number(SPAN, "1", span=SPAN),
                                  lambda: ast.Number(SPAN, "1", colour="red")])
def test_a_wrong_call_is_a_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_a_mutable_default_is_refused():
    with pytest.raises(ValueError):
        @ast.node
        class Bad(ast.Node):
            items: list = []

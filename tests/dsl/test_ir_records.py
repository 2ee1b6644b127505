"""The IR's ``@record`` classes behave as the frozen dataclasses they replace (core/records.py):
for every record class of the plan, the trace, the provider plan, grouping, supervision, the
registry's and the plugins' declarations and the TCM tilt, a twin made with ``@dataclass(frozen=True)`` from the same fields
has the same repr, equality and hash (a ``compare=False`` field left out of both); records
refuse assignment, pickle (Spark pickles plans) and deep-copy to an equal record, and
``dataclasses.fields``/``replace`` and ``__post_init__`` still work."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle

import pytest

from yibao.core import plan, records, registry, trace
from yibao.core.grouping import plan as grouping_plan
from yibao.core.grouping import table as grouping_table
from yibao.core.points import plan as points_plan
from yibao.core.supervision import plan as supervision_plan
from yibao.plugins import decls
from yibao.plugins.tcm import points as tcm_points

MODULES = (plan, trace, points_plan, grouping_plan, grouping_table, supervision_plan, registry,
           decls, tcm_points)
RECORDS = sorted({c for m in MODULES for _, c in inspect.getmembers(m, inspect.isclass)
                  if issubclass(c, records.Record) and c._fields},
                 key=lambda c: (c.__module__, c.__qualname__))


def twin(cls):
    """A frozen dataclass with ``cls``'s name, fields, defaults and compare/repr flags."""
    fields = []
    for f in dataclasses.fields(cls):
        options = dict(compare=f.compare, repr=f.repr)
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        fields.append((f.name, object, dataclasses.field(**options)))
    made = dataclasses.make_dataclass(cls.__name__, fields, frozen=True)
    made.__qualname__ = cls.__qualname__
    return made


def sample(cls, salt: int) -> tuple:
    return tuple((f"v{salt}", salt, None, (salt, "x"))[i % 4] for i, _ in enumerate(cls._fields))


def built(cls, values: tuple):
    """An instance holding ``values`` as its fields, past ``__post_init__`` (whose checks the
    samples need not pass): what unpickling does too."""
    obj = cls.__new__(cls)
    obj.__dict__.update(zip(cls._fields, values))
    return obj


def test_every_ir_record_class_is_found():
    assert len(RECORDS) > 70
    assert all(dataclasses.is_dataclass(c) for c in RECORDS)
    assert not any("__dataclass_params__" in vars(c) and vars(c)["__dataclass_params__"].frozen
                   for c in RECORDS), "a class is still a generated frozen dataclass"


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_a_record_behaves_as_its_frozen_dataclass_twin(cls):
    other = twin(cls)
    a, b, c = built(cls, sample(cls, 1)), built(cls, sample(cls, 1)), built(cls, sample(cls, 2))
    ta, tb, tc = other(*sample(cls, 1)), other(*sample(cls, 1)), other(*sample(cls, 2))
    assert repr(a) == repr(ta)
    assert (a == b, a == c, hash(a) == hash(b)) == (ta == tb, ta == tc, hash(ta) == hash(tb))
    assert hash(a) == hash(ta)
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(ta)]
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(a, cls._fields[0], None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(a, cls._fields[0])


def test_a_field_left_out_of_comparison_is_still_shown():
    one = grouping_plan.DrgSplit("A", (), source="p.yb:1")
    other = grouping_plan.DrgSplit("A", (), source="p.yb:9")
    assert one == other and hash(one) == hash(other)
    assert "source='p.yb:1'" in repr(one)


def test_post_init_runs_on_every_call():
    with pytest.raises(ValueError, match="unknown type kind"):
        plan.Type("colour")
    with pytest.raises(ValueError, match="unknown type kind"):
        plan.Type(kind="colour", domain=None)
    money = plan.Type("money")
    with pytest.raises(ValueError, match="unknown type kind"):
        dataclasses.replace(money, kind="colour")


def test_defaults_keywords_replace_and_a_plan_that_pickles():
    key = plan.Key("person", "person_id")
    assert key == plan.Key(name="person", column="person_id", by=(), period="year")
    assert dataclasses.replace(key, period="month") == plan.Key("person", "person_id", (), "month")
    money = plan.Type("money")
    layer = plan.Layer("basic", "基本", plan.Const(plan.Type("bool"), 1),
                       plan.Column(money, "total"))
    assert pickle.loads(pickle.dumps(layer)) == layer
    assert plan.Plan.from_json(_tiny_plan(layer).to_json()) == _tiny_plan(layer)


def _tiny_plan(layer):
    return plan.Plan("p", "r", 0, 365, (), (), (layer,))


@pytest.mark.parametrize("call", [lambda: plan.Key("person"),
                                  lambda: plan.Key("a", "b", (), "year", "extra"),
                                  lambda: plan.Key("a", "b", name="c"),
                                  lambda: plan.Key("a", "b", colour="red")])
def test_a_wrong_call_is_a_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_a_factory_default_is_refused():
    with pytest.raises(TypeError, match="not a factory"):
        @records.record
        class Bad(records.Record):
            items: list = dataclasses.field(default_factory=list)

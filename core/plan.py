"""The plan: yibao's IR between the policy language and the kernel.

A plan is what a policy *means*, with every name resolved and every number in engine units:

- money is an ``int`` of fen (0.01 yuan);
- a ratio is an ``int`` of millionths (``RATIO_SCALE``): 85% is ``850_000``;
- a count or level is an ``int``; a flag is ``0``/``1``; a date is days since 1970-01-01;
- a value of a closed text domain (``tier``, ``setting``) is the index of the value in the domain.

Plans are frozen records (``records.py``: a frozen dataclass's behaviour), printable
(``describe()``) and JSON-serialisable with a version (``to_json`` / ``from_json``). Evaluators (the Cython kernel through ``lower.py`` and the plain
Python oracle ``reference.py``) take a plan and nothing else; they never see policy text.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import field
from typing import Any, Optional

from .errors import YibaoError
from .records import Record, record

# yibao.plan/2: ``Layer.national`` (the national settlement-list field a layer fills) and
# typed provider tests (``core.points.plan.Test.type``). A /1 plan reads as /2: both fields
# are new with defaults ("" and None), nothing else changed (docs/plan.md).
PLAN_VERSION = "yibao.plan/2"
READABLE_PLAN_VERSIONS = ("yibao.plan/1", PLAN_VERSION)
RATIO_SCALE = 1_000_000

# -- types -----------------------------------------------------------------------------------

MONEY, RATIO, INT, BOOL, TEXT, DATE = "money", "ratio", "int", "bool", "text", "date"
SCALARS = (MONEY, RATIO, INT, BOOL, TEXT, DATE)


@record
class Type(Record):
    """A value type. ``domain`` lists the allowed values of a closed ``text`` or ``int``
    attribute (a claim outside it is rejected); ``None`` means open."""
    kind: str
    domain: Optional[tuple] = None

    def __post_init__(self):
        if self.kind not in SCALARS:
            raise ValueError(f"unknown type kind {self.kind!r}")

    def __str__(self):
        if self.domain is None:
            return self.kind
        return f"{self.kind} of {{{', '.join(map(str, self.domain))}}}"


# -- expressions -----------------------------------------------------------------------------
# Every node carries its result type. Text values of a closed domain are domain indices.


@record
class Expr(Record):
    type: Type


@record
class Const(Expr):
    value: Any  # int in engine units (see module docstring)


@record
class Column(Expr):
    name: str


@record
class Binary(Expr):
    """``op`` is one of ``+ - * min max`` (numbers), ``== != < <= > >=`` (comparisons, bool
    result), ``and or`` (bools). ``money * ratio`` rounds half-up away from zero to the fen."""
    op: str
    left: Expr
    right: Expr


@record
class Not(Expr):
    operand: Expr


@record
class InSet(Expr):
    """True when ``operand`` is one of ``values`` (engine units, domain indices for text)."""
    operand: Expr
    values: tuple


@record
class Cond(Expr):
    test: Expr
    then: Expr
    orelse: Expr


@record
class Lookup(Expr):
    """The value of table ``table`` at the row whose keys equal ``args``."""
    table: str
    args: tuple


@record
class Call(Expr):
    """A function contributed by a plugin, evaluated vectorised over whole arrays."""
    function: str
    args: tuple


@record
class Paid(Expr):
    """What earlier layers paid on this claim; ``layers`` empty means all earlier layers."""
    layers: tuple


# -- declarations ----------------------------------------------------------------------------


@record
class ColumnDecl(Record):
    """A claim column the plan reads, with its type."""
    name: str
    type: Type


@record
class Table(Record):
    """A lookup table. ``rows`` maps key tuples (engine units) to a value. When every key has
    a closed domain the compiler has checked that the table is complete; otherwise a claim
    whose keys are missing is rejected (``missing_table_key``)."""
    name: str
    key_types: tuple
    value_type: Type
    rows: tuple  # ((key, ...), value)
    source: str = ""  # file:line where it was defined, for explanations


@record
class Key(Record):
    """An accumulator key: claims with equal key values share deductibles, caps, bands and
    self-pay limits within a policy year. ``column`` null falls back to ``person_id``.

    ``by`` refines the key by further claim columns (``per person and mtb_disease``: one
    accumulator per person and registered disease; the compiler lists these columns among
    the plan's columns, so a claim with a null there is rejected like any null it reads); ``period`` MONTH refines it by the calendar month of ``discharge_date``
    (``per person per month``: one accumulator per person and month). A refined key still
    restarts at the policy-year boundary."""
    name: str
    column: str
    by: tuple = ()  # further claim columns
    period: str = "year"  # YEAR or MONTH

    @property
    def refined(self) -> bool:
        return bool(self.by) or self.period != YEAR

    @property
    def scope_text(self) -> str:
        """How a policy writes the key: ``per person and mtb_disease per month``."""
        base = self.name.split("&")[0].split("/")[0]
        return f"per {' and '.join((base, *self.by))} per {self.period}"

    @property
    def coarse(self) -> "Key":
        """The key without its refinement (its groups contain the refined key's groups)."""
        return Key(self.name.split("&")[0].split("/")[0], self.column) if self.refined else self

    def refine(self, by: tuple = (), period: str = "year") -> "Key":
        """This key made finer by ``by`` columns and ``period``; its name says how, so
        two layers written with the same scope share one kind of accumulator row."""
        if not by and period == YEAR:
            return self
        name = self.name + "".join(f"&{c}" for c in by) + ("/month" if period == MONTH else "")
        return Key(name, self.column, tuple(by), period)


YEAR, MONTH = "year", "month"  # periods of an accumulator key

PERSON = Key("person", "person_id")

PER_CLAIM, PER_YEAR = "claim", "year"


@record
class Deductible(Record):
    """起付线. ``amount`` is the deductible D for this claim. ``scope`` PER_YEAR accumulates
    per ``key``; ``continuing`` (连续计算起付线) is a bool expression marking transfers, whose
    deductible is ``max(0, D - the deductible paid on the key's previous claim in this layer)``."""
    amount: Expr
    scope: str
    key: Key = PERSON
    continuing: Optional[Expr] = None


@record
class Band(Record):
    lo: int
    hi: Optional[int]  # None is unbounded
    rate: int  # RATIO_SCALE units


@record
class BandSet(Record):
    """``when COND { bands }`` inside ``bands``: the band rates of the claims where ``cond``
    holds (困难群众 rates of 大病保险). Bounds may differ from the default set's."""
    cond: Expr
    bands: tuple


@record
class Bands(Record):
    """分段: rates over the key's cumulative yearly amount after deductible. ``alts`` are
    BandSets; a claim is paid by the last one whose condition holds, else by ``bands``. The
    cumulative amount is the key's whatever set paid the earlier claims."""
    bands: tuple
    key: Key = PERSON
    alts: tuple = ()

    def chosen(self, index: int) -> tuple:
        """The bands of set ``index`` (0 the default, k the k-th alternative)."""
        return self.bands if index == 0 else self.alts[index - 1].bands


@record
class Cap(Record):
    """封顶线. ``name`` is set for a cap shared between layers (one accumulator)."""
    amount: Expr
    scope: str
    key: Key = PERSON
    name: Optional[str] = None


@record
class SelfPayLimit(Record):
    """兜底 / 自负封顶: pay what keeps the key's yearly kept burden at or below ``amount``."""
    amount: Expr
    key: Key = PERSON


@record
class Layer(Record):
    """One layer of benefits (基本医保, 大病保险, 医疗救助 ...). ``ratio`` is an Expr of type
    ratio, a Bands, or None (pays 100% of what is left after the deductible)."""
    name: str
    label: str
    applies: Expr
    base: Expr
    deductible: Optional[Deductible] = None
    ratio: Any = None
    caps: tuple = ()
    limit: Optional[SelfPayLimit] = None
    source: str = ""
    national: str = ""  # the national settlement-list field it fills (core/national.py), or ""


@record
class Plan(Record):
    name: str
    region: str
    effective_from: int  # days since epoch, inclusive
    effective_to: int  # inclusive
    columns: tuple
    tables: tuple
    layers: tuple
    year_start: tuple = (1, 1)  # month, day a policy year starts
    groupers: tuple = ()  # grouping steps (CHS-DRG, decision tables), each adding a column
    provider: Any = None  # provider payment by points (core.points.plan.PointsPlan) or None
    version: str = PLAN_VERSION
    meta: tuple = ()  # ((key, value), ...) free text: source files, hashes
    # fund supervision: core.supervision.plan.Supervision (the policy's flags) or None
    supervision: Any = None

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def column(self, name: str) -> ColumnDecl:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def keys(self) -> tuple:
        """Every accumulator key the plan uses, person first."""
        found = {PERSON.name: PERSON}
        for layer in self.layers:
            for part in (layer.deductible, layer.ratio, layer.limit, *layer.caps):
                key = getattr(part, "key", None)
                if isinstance(key, Key):
                    found.setdefault(key.name, key)
        return tuple(found.values())

    def shared_caps(self) -> dict:
        """name -> (first Cap, layers using it), in layer order."""
        found: dict = {}
        for layer in self.layers:
            for cap in layer.caps:
                if cap.name:
                    found.setdefault(cap.name, (cap, []))[1].append(layer.name)
        return found

    def describe(self) -> str:
        from .describe import describe_plan
        return describe_plan(self)

    def to_json(self) -> str:
        return json.dumps(_encode(self), ensure_ascii=False, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "Plan":
        from .supervision import plan as _supervision  # noqa: F401  registers its nodes
        return upgraded(_decode(versioned_json(text, READABLE_PLAN_VERSIONS, "plan")))


# -- JSON ------------------------------------------------------------------------------------


class IRVersionError(YibaoError, ValueError):
    """JSON of an IR root (a plan, a policy) written by another version of yibao."""


def versioned_json(text: str, expected, what: str, error=IRVersionError) -> dict:
    """The JSON object of an IR root; ``error`` unless its ``version`` is ``expected`` (or
    one of them, a tuple: the older ones this version still reads; otherwise the IR changed
    and decoding it as this version's nodes would be wrong, not merely old)."""
    data = json.loads(text)
    version = data.get("version")
    readable = expected if isinstance(expected, tuple) else (expected,)
    if version not in readable:
        raise error(f"{what} version {version!r} is not {readable[-1]!r}")
    return data


def upgraded(plan: "Plan") -> "Plan":
    """A plan read from an older readable version, stamped with this one (its new fields
    took their defaults when decoded)."""
    return plan if plan.version == PLAN_VERSION else dataclasses.replace(plan,
                                                                         version=PLAN_VERSION)

NODE_TYPES = {cls.__name__: cls for cls in (
    Type, Const, Column, Binary, Not, InSet, Cond, Lookup, Call, Paid, ColumnDecl, Table, Key,
    Deductible, Band, BandSet, Bands, Cap, SelfPayLimit, Layer, Plan)}


def register_node(cls):
    """Let a plugin add its own plan node class to JSON round-trips."""
    NODE_TYPES[cls.__name__] = cls
    return cls


def _encode(value):
    if dataclasses.is_dataclass(value):
        out = {"@": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(value):
    if isinstance(value, dict):
        cls = NODE_TYPES[value["@"]]
        kwargs = {k: _decode(v) for k, v in value.items() if k != "@"}
        return cls(**kwargs)
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def walk(expr):
    """Yield ``expr`` and every expression below it, depth first."""
    yield expr
    for f in dataclasses.fields(expr):
        child = getattr(expr, f.name)
        if isinstance(child, Expr):
            yield from walk(child)
        elif isinstance(child, tuple):
            for c in child:
                if isinstance(c, Expr):
                    yield from walk(c)


def layer_exprs(layer: Layer):
    """Every top-level expression of a layer."""
    yield layer.applies
    yield layer.base
    if layer.deductible:
        yield layer.deductible.amount
        if layer.deductible.continuing is not None:
            yield layer.deductible.continuing
    if isinstance(layer.ratio, Expr):
        yield layer.ratio
    if isinstance(layer.ratio, Bands):
        for alt in layer.ratio.alts:
            yield alt.cond
    for cap in layer.caps:
        yield cap.amount
    if layer.limit:
        yield layer.limit.amount

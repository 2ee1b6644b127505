"""The policy AST: what the text says, before any meaning is attached.

Frozen dataclasses; every node has a ``span`` (1-based line and column, end exclusive).
Passes never mutate nodes: annotations (resolved names, types) live in the compile context,
keyed by node identity, and a pass that changes the tree returns a new one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self):
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Node:
    span: Span


# -- expressions -----------------------------------------------------------------------------

class Expr(Node):
    pass


@dataclass(frozen=True)
class Number(Expr):
    """A numeric literal as written: ``text`` without underscores, ``unit`` one of None,
    'yuan', 'fen', '%'. Its engine value depends on the type its place gives it."""
    text: str
    unit: Optional[str] = None


@dataclass(frozen=True)
class Str(Expr):
    value: str


@dataclass(frozen=True)
class Bool(Expr):
    value: bool


@dataclass(frozen=True)
class Date(Expr):
    value: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Name(Expr):
    """A bare identifier: a column, or a word of a closed domain (``inpatient``)."""
    name: str


@dataclass(frozen=True)
class Lookup(Expr):
    table: Name
    args: tuple


@dataclass(frozen=True)
class Call(Expr):
    """``min``/``max`` or a plugin function."""
    func: Name
    args: tuple


@dataclass(frozen=True)
class Paid(Expr):
    """``paid(a, b)``; ``layers`` empty is bare ``paid`` (every earlier layer)."""
    layers: tuple


@dataclass(frozen=True)
class Unary(Expr):
    op: str  # '-' or 'not'
    operand: Expr


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * = != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InSet(Expr):
    operand: Expr
    values: tuple


@dataclass(frozen=True)
class IfElse(Expr):
    test: Expr
    then: Expr
    orelse: Expr


# -- declarations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Header(Node):
    name: str
    region: Optional[str]
    effective: Optional[tuple]  # (Date, Date)
    year_start: Optional[str]  # MM-DD


@dataclass(frozen=True)
class DomainDecl(Node):
    name: Name
    values: tuple  # Name | Str | Number


@dataclass(frozen=True)
class TypeSpec(Node):
    kind: str  # money ratio int bool text date
    domain: Optional[tuple] = None  # Name | Str | Number


@dataclass(frozen=True)
class AttributeDecl(Node):
    name: Name
    type: TypeSpec


@dataclass(frozen=True)
class Row(Node):
    keys: tuple  # literals
    value: Expr  # literal


@dataclass(frozen=True)
class TableDecl(Node):
    name: Name
    keys: tuple  # Name
    value_type: TypeSpec
    rows: tuple = ()
    csv: Optional[Str] = None  # `from "file.csv"`; check_tables loads it into rows


# -- layer statements ------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope(Node):
    """``per claim`` (key None) or ``per KEY [and COLUMN …] per year|month``."""
    key: Optional[Name] = None
    by: tuple = ()  # Name: columns refining the key (per person and mtb_disease)
    period: str = "year"  # year | month


@dataclass(frozen=True)
class Alt(Node):
    """``, AMOUNT when COND``."""
    amount: Expr
    cond: Expr


@dataclass(frozen=True)
class Applies(Node):
    cond: Expr


@dataclass(frozen=True)
class Base(Node):
    expr: Expr


@dataclass(frozen=True)
class Deductible(Node):
    amount: Expr
    scope: Optional[Scope]  # None: per claim (default)
    alts: tuple = ()
    continuing: Optional[Expr] = None
    prefix: bool = False  # written `deductible per claim AMOUNT`


@dataclass(frozen=True)
class Ratio(Node):
    expr: Expr


@dataclass(frozen=True)
class RatioBy(Node):
    column: Name
    rows: tuple  # Row


@dataclass(frozen=True)
class BandRow(Node):
    lo: Number
    hi: Optional[Number]  # None: `and above`
    rate: Number


@dataclass(frozen=True)
class BandsWhen(Node):
    """``when COND { bands }`` inside ``bands``: the rates of the claims where COND holds."""
    cond: Expr
    bands: tuple  # BandRow


@dataclass(frozen=True)
class Bands(Node):
    key: Name
    bands: tuple
    sets: tuple = ()  # BandsWhen, in order (later ones win)


@dataclass(frozen=True)
class Cap(Node):
    name: Optional[Name]
    amount: Expr
    scope: Scope
    alts: tuple = ()


@dataclass(frozen=True)
class CapRef(Node):
    name: Name


@dataclass(frozen=True)
class SelfPayLimit(Node):
    amount: Expr
    scope: Scope
    alts: tuple = ()


@dataclass(frozen=True)
class National(Node):
    """``national hifp_pay``: the national settlement-list field this layer's payment fills."""
    field: Name


@dataclass(frozen=True)
class LayerDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


# -- provider payment (groupers and pools) ---------------------------------------------------

@dataclass(frozen=True)
class DrgTables(Node):
    name: Name


@dataclass(frozen=True)
class GrouperBy(Node):
    """``by NAME``: the registered grouper plugin that groups (``Registry.groupers``)."""
    name: Name


@dataclass(frozen=True)
class MdcOrder(Node):
    names: tuple  # Name


@dataclass(frozen=True)
class DrgSplit(Node):
    cond: Expr
    suffix: Str


@dataclass(frozen=True)
class GrouperDecl(Node):
    """``grouper NAME "label" { … }`` (CHS-DRG) or ``grouper NAME from "file.csv"`` (a
    first-match decision table, optional ``default "GROUP"``)."""
    name: Name
    label: Optional[str]
    statements: tuple = ()
    csv: Optional[Str] = None
    default: Optional[Str] = None


@dataclass(frozen=True)
class GroupBy(Node):
    grouper: Name
    sources: tuple = ()  # GroupSourceRow, ...: several groupers on one point scale


@dataclass(frozen=True)
class GroupSourceRow(Node):
    """``drg when hospital_level = 3`` or ``dip otherwise`` (cond None) in ``group by``."""
    grouper: Name
    cond: Optional[object] = None


@dataclass(frozen=True)
class FixedPointValue(Node):
    """``fixed point value from "fixed.csv"``: hospitals on a fixed yuan per point (固定费率)."""
    csv: Str


@dataclass(frozen=True)
class Budget(Node):
    amount: Number
    insured: Optional[Number] = None  # `budget X per head for N insured`: X × N


@dataclass(frozen=True)
class BudgetFrom(Node):
    """``budget from "spending.csv" mean with G growth``: each hospital's budget is the mean
    of its previous years' fund spending × (1 + G); the pool budget is their sum."""
    csv: Str
    growth: Number


@dataclass(frozen=True)
class BasePoints(Node):
    csv: Str
    more: tuple = ()  # further Str: one table per grouper on one point scale


@dataclass(frozen=True)
class Coefficients(Node):
    column: Name
    rows: tuple = ()  # Row: key -> factor for every group
    csv: Optional[Str] = None  # per (key, group)


@dataclass(frozen=True)
class HighBandRow(Node):
    threshold: Number
    max_points: Optional[Number]  # None: `otherwise`


@dataclass(frozen=True)
class HighOutlier(Node):
    bands: tuple


@dataclass(frozen=True)
class LowOutlier(Node):
    threshold: Number


@dataclass(frozen=True)
class Incomplete(Node):
    column: Name


@dataclass(frozen=True)
class BedDay(Node):
    csv: Str


@dataclass(frozen=True)
class DayTiers(Node):
    bands: tuple  # BandRow, bounds in days


@dataclass(frozen=True)
class Readmission(Node):
    days: Number
    share: Optional[Number]  # None: halves


@dataclass(frozen=True)
class Adjust(Node):
    name: Name
    factor: Number
    cond: Expr


@dataclass(frozen=True)
class PointValueDecl(Node):
    kind: str  # budget_plus_paid | budget | baseline
    share: Optional[Number] = None
    value: Optional[Number] = None


@dataclass(frozen=True)
class Reserve(Node):
    share: Number


@dataclass(frozen=True)
class Sharing(Node):
    keep: Number
    bear: Number
    per_head: Optional[Number] = None
    insured: Optional[Number] = None


@dataclass(frozen=True)
class Capitation(Node):
    per_head: Number
    csv: Str


@dataclass(frozen=True)
class Prepayments(Node):
    """``prepayments from "prepayments.csv" [floor 85%]``: monthly prepayments per hospital."""
    csv: Str
    floor: Optional[Number] = None


@dataclass(frozen=True)
class SpecialReview(Node):
    """``special review from "review.csv"``: 特病单议, final points by claim_id."""
    csv: Str


@dataclass(frozen=True)
class AllianceResidents(Node):
    """``residents by alliance_id``: the claim column naming the person's 医共体."""
    column: Name


@dataclass(frozen=True)
class AllianceBudget(Node):
    """``budget 600 yuan per head from "alliances.csv"`` (alliance,persons)."""
    per_head: Number
    csv: Str


@dataclass(frozen=True)
class AlliancePools(Node):
    """``applies to inpatient_drg, township_outpatient``: the pools whose points it carries."""
    names: tuple  # Name, ...


@dataclass(frozen=True)
class AllianceDecl(Node):
    """``alliance name "label" { … }``: 医共体 package budgets over pools."""
    name: Name
    label: Optional[str]
    statements: tuple


@dataclass(frozen=True)
class PoolDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


# -- fund supervision (docs/supervision.md) ---------------------------------------------------

@dataclass(frozen=True)
class FlagReadmit(Node):
    """``readmission within N days at the same hospital`` / ``at another hospital``."""
    days: Number
    same_hospital: bool


@dataclass(frozen=True)
class FlagAboveMean(Node):
    """``los above 300% of the group mean`` / ``cost above …``."""
    measure: str  # los | cost
    factor: Number


@dataclass(frozen=True)
class FlagShortStay(Node):
    """``stay at most 2 days with weight below 50%``."""
    days: Number
    weight: Number


@dataclass(frozen=True)
class FlagGroups(Node):
    """``group in {"GZ13", …}``."""
    groups: tuple  # Name / Str literals


@dataclass(frozen=True)
class FlagCcShare(Node):
    """``cc share above 150% of the city[, at least 10 cases]``."""
    factor: Number
    min_cases: Optional[Number] = None


@dataclass(frozen=True)
class FlagSevereShare(Node):
    """``severe share below 50% of the level, weight at least 200%[, at least 20 cases]``."""
    factor: Number
    weight: Number
    min_cases: Optional[Number] = None


@dataclass(frozen=True)
class Severity(Node):
    word: Name


@dataclass(frozen=True)
class Effect(Node):
    kind: str  # review


FLAG_RULES = (FlagReadmit, FlagAboveMean, FlagShortStay, FlagGroups, FlagCcShare,
              FlagSevereShare)


@dataclass(frozen=True)
class FlagDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


@dataclass(frozen=True)
class Comment(Node):
    text: str  # including the leading '#'
    own_line: bool  # nothing but blanks before it on its line


@dataclass(frozen=True)
class PluginUse(Node):
    """``plugin "yibao-ageband" ">=1.0, <2"``: the policy uses the plugins of that
    distribution, at a version in that PEP 440 range (dsl/passes/check_plugins.py)."""
    distribution: Str
    versions: Str


@dataclass(frozen=True)
class AdjustParam(Node):
    """One figure of a plugin adjustment: ``name value`` (a literal: number, text, name,
    true/false) or ``name from "file.csv"`` (``csv`` true, ``value`` the file name)."""
    name: Name
    value: Expr
    csv: bool = False


@dataclass(frozen=True)
class AdjustmentDecl(Node):
    """``adjust by tcm_tilt { … }``: the point adjustment a plugin registered under that
    name (``Registry.adjustments``), applied to the policy's pools with these figures
    (dsl/passes/apply_adjustments.py)."""
    adjustment: Name
    params: tuple  # AdjustParam, in file order


@dataclass(frozen=True)
class PolicyFile(Node):
    statements: tuple
    comments: tuple = ()

    def header(self) -> Optional[Header]:
        return next((s for s in self.statements if isinstance(s, Header)), None)

    def layers(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, LayerDecl))

    def tables(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, TableDecl))

    def groupers(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, GrouperDecl))

    def pools(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, PoolDecl))

    def adjustments(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, AdjustmentDecl))

    def flags(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, FlagDecl))

    def alliances(self) -> tuple:
        return tuple(s for s in self.statements if isinstance(s, AllianceDecl))


def children(node):
    """The expression children of an expression node, in order."""
    if isinstance(node, (Lookup, Call)):
        return node.args
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, InSet):
        return (node.operand, *node.values)
    if isinstance(node, IfElse):
        return (node.test, node.then, node.orelse)
    return ()


def walk(expr):
    """Every expression node below ``expr`` (itself first), iteratively."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))

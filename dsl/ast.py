"""The policy AST: what the text says, before any meaning is attached.

Frozen records (``@node`` is ``core/records.record``: a frozen dataclass's behaviour without
its per-class code generation); every node has a ``span`` (1-based line and column, end
exclusive). Passes never mutate nodes: annotations (resolved names, types) live in the compile
context, keyed by node identity, and a pass that changes the tree returns a new one.
"""
from __future__ import annotations

from typing import Optional

from yibao.core.records import REQUIRED as _REQUIRED  # noqa: F401  (tests build twins with it)
from yibao.core.records import Record as _Record
from yibao.core.records import record as node


@node
class Span(_Record):
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self):
        return f"{self.file}:{self.line}"


@node
class Node(_Record):
    span: Span


# -- expressions -----------------------------------------------------------------------------

class Expr(Node):
    pass


@node
class Number(Expr):
    """A numeric literal as written: ``text`` without underscores, ``unit`` one of None,
    'yuan', 'fen', '%'. Its engine value depends on the type its place gives it."""
    text: str
    unit: Optional[str] = None


@node
class Str(Expr):
    value: str


@node
class Bool(Expr):
    value: bool


@node
class Date(Expr):
    value: str  # YYYY-MM-DD


@node
class Name(Expr):
    """A bare identifier: a column, or a word of a closed domain (``inpatient``)."""
    name: str


@node
class Lookup(Expr):
    table: Name
    args: tuple


@node
class Call(Expr):
    """``min``/``max`` or a plugin function."""
    func: Name
    args: tuple


@node
class Paid(Expr):
    """``paid(a, b)``; ``layers`` empty is bare ``paid`` (every earlier layer)."""
    layers: tuple


@node
class Unary(Expr):
    op: str  # '-' or 'not'
    operand: Expr


@node
class BinOp(Expr):
    op: str  # + - * = != < <= > >= and or
    left: Expr
    right: Expr


@node
class InSet(Expr):
    operand: Expr
    values: tuple


@node
class IfElse(Expr):
    test: Expr
    then: Expr
    orelse: Expr


# -- declarations ----------------------------------------------------------------------------

@node
class Header(Node):
    name: str
    region: Optional[str]
    effective: Optional[tuple]  # (Date, Date)
    year_start: Optional[str]  # MM-DD


@node
class DomainDecl(Node):
    name: Name
    values: tuple  # Name | Str | Number


@node
class TypeSpec(Node):
    kind: str  # money ratio int bool text date
    domain: Optional[tuple] = None  # Name | Str | Number


@node
class AttributeDecl(Node):
    name: Name
    type: TypeSpec


@node
class Row(Node):
    keys: tuple  # literals
    value: Expr  # literal


@node
class TableDecl(Node):
    name: Name
    keys: tuple  # Name
    value_type: TypeSpec
    rows: tuple = ()
    csv: Optional[Str] = None  # `from "file.csv"`; check_tables loads it into rows


# -- layer statements ------------------------------------------------------------------------

@node
class Scope(Node):
    """``per claim`` (key None) or ``per KEY [and COLUMN …] per year|month``."""
    key: Optional[Name] = None
    by: tuple = ()  # Name: columns refining the key (per person and mtb_disease)
    period: str = "year"  # year | month


@node
class Alt(Node):
    """``, AMOUNT when COND``."""
    amount: Expr
    cond: Expr


@node
class Applies(Node):
    cond: Expr


@node
class Base(Node):
    expr: Expr


@node
class Deductible(Node):
    amount: Expr
    scope: Optional[Scope]  # None: per claim (default)
    alts: tuple = ()
    continuing: Optional[Expr] = None
    prefix: bool = False  # written `deductible per claim AMOUNT`


@node
class Ratio(Node):
    expr: Expr


@node
class RatioBy(Node):
    column: Name
    rows: tuple  # Row


@node
class BandRow(Node):
    lo: Number
    hi: Optional[Number]  # None: `and above`
    rate: Number


@node
class BandsWhen(Node):
    """``when COND { bands }`` inside ``bands``: the rates of the claims where COND holds."""
    cond: Expr
    bands: tuple  # BandRow


@node
class Bands(Node):
    key: Name
    bands: tuple
    sets: tuple = ()  # BandsWhen, in order (later ones win)


@node
class Cap(Node):
    name: Optional[Name]
    amount: Expr
    scope: Scope
    alts: tuple = ()


@node
class CapRef(Node):
    name: Name


@node
class SelfPayLimit(Node):
    amount: Expr
    scope: Scope
    alts: tuple = ()


@node
class National(Node):
    """``national hifp_pay``: the national settlement-list field this layer's payment fills."""
    field: Name


@node
class LayerDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


# -- provider payment (groupers and pools) ---------------------------------------------------

@node
class DrgTables(Node):
    name: Name


@node
class GrouperBy(Node):
    """``by NAME``: the registered grouper plugin that groups (``Registry.groupers``)."""
    name: Name


@node
class MdcOrder(Node):
    names: tuple  # Name


@node
class DrgSplit(Node):
    cond: Expr
    suffix: Str


@node
class GrouperDecl(Node):
    """``grouper NAME "label" { … }`` (CHS-DRG) or ``grouper NAME from "file.csv"`` (a
    first-match decision table, optional ``default "GROUP"``)."""
    name: Name
    label: Optional[str]
    statements: tuple = ()
    csv: Optional[Str] = None
    default: Optional[Str] = None


@node
class GroupBy(Node):
    grouper: Name
    sources: tuple = ()  # GroupSourceRow, ...: several groupers on one point scale


@node
class GroupSourceRow(Node):
    """``drg when hospital_level = 3`` or ``dip otherwise`` (cond None) in ``group by``."""
    grouper: Name
    cond: Optional[object] = None


@node
class FixedPointValue(Node):
    """``fixed point value from "fixed.csv"``: hospitals on a fixed yuan per point (固定费率)."""
    csv: Str


@node
class Budget(Node):
    amount: Number
    insured: Optional[Number] = None  # `budget X per head for N insured`: X × N


@node
class BudgetFrom(Node):
    """``budget from "spending.csv" mean with G growth``: each hospital's budget is the mean
    of its previous years' fund spending × (1 + G); the pool budget is their sum."""
    csv: Str
    growth: Number


@node
class BasePoints(Node):
    csv: Str
    more: tuple = ()  # further Str: one table per grouper on one point scale


@node
class Coefficients(Node):
    column: Name
    rows: tuple = ()  # Row: key -> factor for every group
    csv: Optional[Str] = None  # per (key, group)


@node
class HighBandRow(Node):
    threshold: Number
    max_points: Optional[Number]  # None: `otherwise`


@node
class HighOutlier(Node):
    bands: tuple


@node
class LowOutlier(Node):
    threshold: Number


@node
class Incomplete(Node):
    column: Name


@node
class BedDay(Node):
    csv: Str


@node
class DayTiers(Node):
    bands: tuple  # BandRow, bounds in days


@node
class Readmission(Node):
    days: Number
    share: Optional[Number]  # None: halves


@node
class Adjust(Node):
    name: Name
    factor: Number
    cond: Expr


@node
class PointValueDecl(Node):
    kind: str  # budget_plus_paid | budget | baseline
    share: Optional[Number] = None
    value: Optional[Number] = None


@node
class Reserve(Node):
    share: Number


@node
class Sharing(Node):
    keep: Number
    bear: Number
    per_head: Optional[Number] = None
    insured: Optional[Number] = None


@node
class Capitation(Node):
    per_head: Number
    csv: Str


@node
class Prepayments(Node):
    """``prepayments from "prepayments.csv" [floor 85%]``: monthly prepayments per hospital."""
    csv: Str
    floor: Optional[Number] = None


@node
class SpecialReview(Node):
    """``special review from "review.csv"``: 特病单议, final points by claim_id."""
    csv: Str


@node
class AllianceResidents(Node):
    """``residents by alliance_id``: the claim column naming the person's 医共体."""
    column: Name


@node
class AllianceBudget(Node):
    """``budget 600 yuan per head from "alliances.csv"`` (alliance,persons)."""
    per_head: Number
    csv: Str


@node
class AlliancePools(Node):
    """``applies to inpatient_drg, township_outpatient``: the pools whose points it carries."""
    names: tuple  # Name, ...


@node
class AllianceDecl(Node):
    """``alliance name "label" { … }``: 医共体 package budgets over pools."""
    name: Name
    label: Optional[str]
    statements: tuple


@node
class PoolDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


# -- fund supervision (docs/supervision.md) ---------------------------------------------------

@node
class FlagReadmit(Node):
    """``readmission within N days at the same hospital`` / ``at another hospital``."""
    days: Number
    same_hospital: bool


@node
class FlagAboveMean(Node):
    """``los above 300% of the group mean`` / ``cost above …``."""
    measure: str  # los | cost
    factor: Number


@node
class FlagShortStay(Node):
    """``stay at most 2 days with weight below 50%``."""
    days: Number
    weight: Number


@node
class FlagGroups(Node):
    """``group in {"GZ13", …}``."""
    groups: tuple  # Name / Str literals


@node
class FlagCcShare(Node):
    """``cc share above 150% of the city[, at least 10 cases]``."""
    factor: Number
    min_cases: Optional[Number] = None


@node
class FlagSevereShare(Node):
    """``severe share below 50% of the level, weight at least 200%[, at least 20 cases]``."""
    factor: Number
    weight: Number
    min_cases: Optional[Number] = None


@node
class Severity(Node):
    word: Name


@node
class Effect(Node):
    kind: str  # review


FLAG_RULES = (FlagReadmit, FlagAboveMean, FlagShortStay, FlagGroups, FlagCcShare,
              FlagSevereShare)


@node
class FlagDecl(Node):
    name: Name
    label: Optional[str]
    statements: tuple


@node
class Comment(Node):
    text: str  # including the leading '#'
    own_line: bool  # nothing but blanks before it on its line


@node
class PluginUse(Node):
    """``plugin "yibao-ageband" ">=1.0, <2"``: the policy uses the plugins of that
    distribution, at a version in that PEP 440 range (dsl/passes/check_plugins.py)."""
    distribution: Str
    versions: Str


@node
class AdjustParam(Node):
    """One figure of a plugin adjustment: ``name value`` (a literal: number, text, name,
    true/false) or ``name from "file.csv"`` (``csv`` true, ``value`` the file name)."""
    name: Name
    value: Expr
    csv: bool = False


@node
class AdjustmentDecl(Node):
    """``adjust by tcm_tilt { … }``: the point adjustment a plugin registered under that
    name (``Registry.adjustments``), applied to the policy's pools with these figures
    (dsl/passes/apply_adjustments.py)."""
    adjustment: Name
    params: tuple  # AdjustParam, in file order


@node
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

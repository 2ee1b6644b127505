"""Plan nodes for provider payment by points (点数法), point-method.md §2–§3.

Units (engine units, as in ``yibao.core.plan``):

- points are fixed-point ``int`` with 4 decimals (``POINT_SCALE``): 12.5 points is ``125_000``;
- money is ``int`` fen; ratios and factors are ``int`` millionths (``RATIO_SCALE``);
- a point value held in advance (Shanghai baseline) is ``int`` micro-fen per point
  (``PV_SCALE``): 0.95 yuan per point is ``95_000_000``.

Every node is a frozen record (``core/records.py``) registered with ``register_node`` so a
``PointsPlan`` round-trips through ``to_json``/``from_json``. Tables are tuples of pairs, never
dicts, so the nodes stay hashable and their JSON stable. Nothing here evaluates anything: ``compute.py`` (the
vectorised evaluator) and ``reference.py`` (the per-claim oracle) read these nodes.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from yibao.core.plan import (BOOL, INT, MONEY, RATIO, RATIO_SCALE, TEXT, Type, _decode, _encode,
                             register_node)
from yibao.core.records import Record, record

POINT_SCALE = 10_000
PV_SCALE = 1_000_000
POINTS_PLAN_VERSION = "yibao.points/1"

TEST_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
TEST_KINDS = (TEXT, INT, MONEY, RATIO, BOOL)  # no dates: a provider test compares these


def _pct(ratio: int) -> str:
    return f"{ratio / RATIO_SCALE:.6g}"


def _pts(points: int) -> str:
    return f"{points / POINT_SCALE:.4f}"


@register_node
@record
class Test(Record):
    """``column op value`` over one claim column; ``value`` is a tuple for ``in``/``not in``.
    A null column value never passes (so ``!=`` on a null is false, as in SQL).

    ``type`` is the column's declared type (``core.plan.Type``: kind and closed domain), as
    every expression of the benefits IR carries its type; the compiler sets it and has
    checked ``value`` against it (a domain member, an amount in fen, a ratio in millionths).
    The value stays in the claim's own units — the word, not its domain index — because the
    provider evaluators read the claim columns as Arrow gives them, not the kernel's indices.
    ``None``: a test built by hand (a plugin, a test), typed by its value (``arrow_type``)."""
    __test__ = False  # not a pytest test class, despite the name
    column: str
    op: str
    value: Any
    type: Optional[Type] = None

    def __post_init__(self):
        if self.op not in TEST_OPS:
            raise ValueError(f"unknown test op {self.op!r}")
        if self.type is not None and self.type.kind not in TEST_KINDS:
            raise ValueError(f"a test cannot compare a {self.type.kind} column")

    @property
    def kind(self) -> str:
        """The compared column's kind: the declared one, else the value's."""
        if self.type is not None:
            return self.type.kind
        first = self.value[0] if isinstance(self.value, tuple) and self.value else self.value
        return BOOL if isinstance(first, bool) else INT if isinstance(first, int) else TEXT

    def describe(self) -> str:
        return f"{self.column} {self.op} {self.value!r}"


def describe_tests(tests: tuple) -> str:
    """A conjunction of tests; the empty conjunction is ``always``."""
    return " and ".join(t.describe() for t in tests) or "always"


@register_node
@record
class HighBand(Record):
    """High-outlier threshold for groups whose base points are ≤ ``b_max`` (``None``: above
    every earlier band). ``t_high`` is a ratio: 3 is ``3_000_000``."""
    b_max: Optional[int]
    t_high: int


@register_node
@record
class Outliers(Record):
    """高倍率 / 低倍率 thresholds on r = cost ÷ average cost. ``high`` bands are ordered by
    ``b_max`` ascending, the last one usually unbounded; no band means no high outliers.
    ``t_low`` 0 disables low outliers."""
    high: tuple = ()
    t_low: int = 0

    def t_high_for(self, base_points: int) -> Optional[int]:
        for band in self.high:
            if band.b_max is None or base_points <= band.b_max:
                return band.t_high
        return None

    def describe(self) -> str:
        bands = ", ".join(f"B ≤ {_pts(b.b_max)}: {_pct(b.t_high)}" if b.b_max is not None
                          else f"else {_pct(b.t_high)}" for b in self.high)
        return f"high r ≥ [{bands or 'none'}]; low r ≤ {_pct(self.t_low)}"


@register_node
@record
class DayTier(Record):
    """Days ``first``..``last`` (inclusive, 1-based; ``last`` None: no end) earn the per-day
    points × ``factor`` (ratio)."""
    first: int
    last: Optional[int]
    factor: int


@register_node
@record
class BedDay(Record):
    """阶梯床日: a claim whose group is in ``per_day`` (group -> points per day) earns
    round(per_day × Σ over tiers of days in tier × factor): one value over all tiers, rounded
    once (point-method.md §2); days beyond every tier earn 0."""
    per_day: tuple  # ((group, points), ...)
    tiers: tuple = (DayTier(1, None, RATIO_SCALE),)
    los_column: str = "los"


@register_node
@record
class Readmission(Record):
    """再住院: a stay earns its points × ``share`` when ANY other stay of the same person in
    the same pool and group is admitted 0..``days`` days (inclusive) after its discharge, at
    any hospital; in a chain every earlier link is halved. Stays without person, group or
    dates take no part; a stay under special review is not halved (but counts as a later
    stay)."""
    days: int
    share: int = RATIO_SCALE // 2
    person_column: str = "person_id"
    admit_column: str = "admit_date"
    discharge_column: str = "discharge_date"


@register_node
@record
class Adjustment(Record):
    """A multiplicative factor (ratio) for claims passing every test in ``when``, applied
    after the case class in declared order, each rounded half-up (TCM ×1.1, age ≥ 80 ×1.05)."""
    name: str
    factor: int
    when: tuple = ()


BUDGET_PLUS_PAID, BUDGET_ONLY, BASELINE = "budget_plus_paid", "budget", "baseline"
PV_KINDS = (BUDGET_PLUS_PAID, BUDGET_ONLY, BASELINE)


@register_node
@record
class PointValue(Record):
    """How a pool's point value PV (fen per point) is formed from the fund amount G (budget
    after reserve and sharing), the patients' payments P and the pool's Σ points:

    - ``budget_plus_paid`` (Zhejiang): PV = (G + P) / Σ; the points carry fund and patients'
      money, so fund due is value − patient-paid;
    - ``budget``: PV = G / Σ; the points carry fund money only, fund due is the value;
    - ``baseline`` (Shanghai): a share ``baseline_share`` s of every point is paid at the
      value ``baseline_value`` PV0 fixed in advance, the rest floats on the budget:
      PV = s·PV0 + (1 − s)·G / Σ (``include_paid`` adds P to G, and fund due is then
      value − patient-paid). The pool reports Σ value − what the floating form distributes
      as its budget deviation."""
    kind: str = BUDGET_PLUS_PAID
    baseline_value: int = 0  # PV_SCALE units (micro-fen per point)
    baseline_share: int = 0  # ratio
    include_paid: bool = False

    def __post_init__(self):
        if self.kind not in PV_KINDS:
            raise ValueError(f"unknown point value kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == BUDGET_PLUS_PAID:
            return "PV = (F + P) / Σ points"
        if self.kind == BUDGET_ONLY:
            return "PV = F / Σ points"
        g = "(F + P)" if self.include_paid else "F"
        return (f"PV = {_pct(self.baseline_share)} × {self.baseline_value / PV_SCALE:.6g} fen"
                f" + {_pct(RATIO_SCALE - self.baseline_share)} × {g} / Σ points")


@register_node
@record
class RiskSharing(Record):
    """结余留用 / 超支分担 against a target (the pool budget after reserve, or the control total
    ``per_head`` fen × ``insured`` persons when ``per_head`` is set). With A = the pool
    claims' fee-for-service fund cost, hospitals keep ``keep`` of a surplus (target − A > 0) and
    bear ``bear`` of an overrun: the fund amount is A + round(keep × surplus), or
    A − round(bear × overrun). Shared amounts are split over hospitals by points."""
    keep: int
    bear: int
    per_head: Optional[int] = None
    insured: int = 0

    def describe(self) -> str:
        target = (f"{self.per_head} fen × {self.insured} insured" if self.per_head is not None
                  else "budget")
        return f"keep {_pct(self.keep)} of surplus, bear {_pct(self.bear)} of overrun vs {target}"


@register_node
@record
class Capitation(Record):
    """人头包干: persons signed with an institution (claims whose ``signed_column`` is not null)
    carry ``per_head`` fen each to it (``signed`` lists (institution, persons)). Their claims
    still earn points, valued at the pool's PV, but are paid from the signed institution's
    capitation budget, not the pool budget; the institution keeps the balance (or bears the
    deficit). The pool PV is formed over the unsigned claims only."""
    per_head: int
    signed: tuple  # ((institution, persons), ...)
    signed_column: str = "signed_inst"


@register_node
@record
class GroupSource(Record):
    """One grouper a pool reads (several groupers on one point scale, Shanghai's DRG and DIP
    「1:1转化为服务点数」): a claim passing every test of ``when`` takes its group from
    ``column``; the empty ``when`` is ``otherwise``. The first source that applies wins; a
    claim no source applies to has no group (ungrouped)."""
    column: str
    when: tuple = ()

    def describe(self) -> str:
        return f"{self.column} when {describe_tests(self.when)}" if self.when \
            else f"{self.column} otherwise"


@register_node
@record
class FixedRate(Record):
    """固定费率: hospital ``hospital_id`` is paid its points × ``rate`` (``PV_SCALE`` units,
    micro-fen per point) decided in advance, not the floating point value. At the year-end
    clearing (年终清算) the fund makes up ``compensation`` (ratio) of the hospital's shortfall:
    what its valued claims cost (fund cost, plus patients' payments when the points carry
    them) less its points × rate, when positive (Rizhao: TCM hospitals cleared separately at
    a higher ratio). The pool's floating hospitals share what the budget has left."""
    hospital_id: str
    rate: int
    compensation: int = 0


@register_node
@record
class Pool(Record):
    """One budget pool (住院 DRG, 门诊 APG, 康复 bed-day …).

    A claim belongs to the pool when it passes every test in ``applies``. ``group_column``
    names the grouper's output (``drg``, ``apg``, ``dip``, ``rehab_class``). ``base_points``
    maps group -> B (points ×10^4); ``avg_cost`` group -> fen. ``coefficients`` maps
    (key, group) -> k (ratio), the key read from ``coefficient_by`` (``hospital_level`` or
    ``hospital_id``); a missing pair is 1 (a new group). A group in neither ``base_points``
    nor ``bed_day`` earns 0 points, class ``ungrouped``, unless ``review`` (特病单议, claim_id ->
    final points) lists it; an ungrouped claim stays out of the pool's P, A and the hospital's
    patient-paid and is counted as awaiting special review.

    ``hospital_budgets`` (Rizhao: 前两个年度统筹基金实际支出额的平均数 × (1 + 增长率)) makes every
    hospital its own budget: ``budget`` is then their sum, the reserve is taken from each
    hospital's budget, and the hospital's surplus or overrun against its own budget is shared
    with the pool's ``sharing`` keep/bear (no ``sharing``: the hospital is paid its budget).
    A hospital with claims and no budget row has budget 0. Its fund amount is
    G[h] = A[h] + shared[h] and its value V[h] = G[h] (+ P[h] for ``budget_plus_paid``), so
    points do not move money between hospitals; not combined with capitation, a per-head
    control total or a baseline point value.

    ``prepayments`` are the monthly prepayments (预付) of each hospital; settlement subtracts
    their sum (and the yearly ``prepaid``). A hospital-month whose prepayment is below
    ``prepay_floor`` × the month's due (Σ total − patient-paid of the hospital's pool claims
    whose ``month_column`` falls in that month, i.e. the fee-for-service fund amount) is a
    finding listed in the hospital row's ``prepay_below``. The check runs only when the pool
    has ``prepayments``.

    ``group_sources`` (several groupers on one point scale): the claim's group is read from
    the first source whose tests pass and written under ``group_column`` (the sources'
    columns joined by ``+``), so every rule below reads one group; base points list the
    groups of every source (their codes must not collide).

    ``fixed_rates`` (固定费率 / 浮动费率): each listed hospital is paid its points × its rate
    plus the compensation of its shortfall (``FixedRate``), and takes no part in the point
    value: the floating hospitals' fund amount is the pool's target (budget after reserve)
    less the fixed hospitals' fund due, formed and shared as the pool says over the floating
    hospitals' claims only (a negative remainder is an overrun of the floating hospitals).
    Under per-hospital budgets a fixed hospital has no budget. Not combined with
    capitation."""
    name: str
    budget: int
    group_column: str = "drg"
    applies: tuple = ()
    base_points: tuple = ()  # ((group, points), ...)
    avg_cost: tuple = ()  # ((group, fen), ...)
    coefficients: tuple = ()  # ((key, group, ratio), ...)
    coefficient_by: str = "hospital_level"
    outliers: Outliers = Outliers()
    incomplete_column: Optional[str] = None
    bed_day: Optional[BedDay] = None
    readmission: Optional[Readmission] = None
    review: tuple = ()  # ((claim_id, points), ...) 特病单议
    adjustments: tuple = ()
    point_value: PointValue = PointValue()
    reserve_share: int = 0  # 调剂金, ratio of the budget
    sharing: Optional[RiskSharing] = None
    capitation: Optional[Capitation] = None
    prepaid: tuple = ()  # ((hospital_id, fen), ...)
    hospital_budgets: tuple = ()  # ((hospital_id, fen), ...) 各定点医疗机构预算额
    prepayments: tuple = ()  # ((hospital_id, "YYYY-MM", fen), ...) 月度预付
    prepay_floor: int = 850_000  # ratio: a month's prepayment ≥ floor × the month's due
    month_column: str = "discharge_date"  # the date that places a claim in a month
    group_sources: tuple = ()  # GroupSource, ...: several groupers on one point scale
    fixed_rates: tuple = ()  # FixedRate, ...: hospitals on a fixed yuan per point

    def describe(self) -> str:
        lines = [f"pool {self.name}: budget {self.budget} fen, group by {self.group_column}",
                 f"  applies: {describe_tests(self.applies)}"]
        if self.group_sources:
            lines.append("  groups from: " + "; ".join(s.describe() for s in self.group_sources))
        lines += [f"  {len(self.base_points)} groups with base points, "
                  f"{len(self.coefficients)} coefficients by {self.coefficient_by}",
                  f"  outliers: {self.outliers.describe()}"]
        if self.incomplete_column:
            lines.append(f"  incomplete stay: {self.incomplete_column}")
        if self.bed_day:
            tiers = ", ".join(f"{t.first}-{t.last or ''} ×{_pct(t.factor)}"
                              for t in self.bed_day.tiers)
            lines.append(f"  bed-day: {len(self.bed_day.per_day)} groups, tiers {tiers}")
        if self.readmission:
            r = self.readmission
            lines.append(f"  readmission within {r.days} days: earlier stay ×{_pct(r.share)}")
        if self.review:
            lines.append(f"  special review: {len(self.review)} claims")
        for adj in self.adjustments:
            lines.append(f"  adjust {adj.name} ×{_pct(adj.factor)} when "
                         f"{describe_tests(adj.when)}")
        lines.append(f"  {self.point_value.describe()}; reserve {_pct(self.reserve_share)}")
        if self.sharing:
            lines.append(f"  sharing: {self.sharing.describe()}")
        if self.capitation:
            cap = self.capitation
            lines.append(f"  capitation {cap.per_head} fen/head, {len(cap.signed)} institutions")
        if self.hospital_budgets:
            lines.append(f"  per-hospital budgets: {len(self.hospital_budgets)} hospitals, "
                         f"each shares its own surplus or overrun")
        if self.prepaid:
            lines.append(f"  prepaid: {len(self.prepaid)} hospitals")
        for fx in self.fixed_rates:
            lines.append(f"  fixed rate {fx.hospital_id}: {fx.rate / PV_SCALE:.6g} fen/point, "
                         f"shortfall compensated {_pct(fx.compensation)}")
        if self.prepayments:
            lines.append(f"  monthly prepayments: {len(self.prepayments)} rows, floor "
                         f"{_pct(self.prepay_floor)} of the month's due by {self.month_column}")
        return "\n".join(lines)


@register_node
@record
class Alliance(Record):
    """医共体 package budgets (Rizhao's 一个框架: 总额控制、收支挂钩、结余留用、超支分担).

    A claim belongs to alliance ``a`` when its ``column`` (the person's 医共体) is ``a``,
    wherever it is treated. Alliance ``a``'s budget is ``per_head`` fen × its insured
    persons (``members``: (alliance, persons)); what its residents used is the fund value of
    their valued claims in the listed ``pools``: each pool's points × that pool's point value
    (its floating point value), less the patients' payments when the pool's points carry
    them, summed exactly and rounded once. The alliance keeps ``keep`` of a surplus (budget −
    used > 0) and bears ``bear`` of an overrun, paid to (or taken from) it at the year end on
    top of what the pools pay the treating hospitals. An alliance in ``members`` with no
    claims used nothing; a claim whose alliance is not in ``members`` has budget 0."""
    name: str
    column: str
    per_head: int
    members: tuple  # ((alliance, persons), ...)
    pools: tuple  # pool names
    keep: int
    bear: int

    def describe(self) -> str:
        return (f"alliance {self.name}: residents by {self.column}, {self.per_head} fen/head "
                f"for {len(self.members)} alliances over pools {', '.join(self.pools)}; keep "
                f"{_pct(self.keep)} of surplus, bear {_pct(self.bear)} of overrun")


@register_node
@record
class PointsPlan(Record):
    """The provider-payment part of a plan: its pools, in order, and the 医共体 alliances
    whose package budgets span them."""
    pools: tuple
    version: str = POINTS_PLAN_VERSION
    alliances: tuple = ()

    def pool(self, name: str) -> Pool:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def describe(self) -> str:
        return "\n".join([pool.describe() for pool in self.pools]
                         + [a.describe() for a in self.alliances])

    def to_json(self) -> str:
        return json.dumps(_encode(self), ensure_ascii=False, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "PointsPlan":
        data = json.loads(text)
        if data.get("version") != POINTS_PLAN_VERSION:
            raise ValueError(f"points plan version {data.get('version')!r} is not "
                             f"{POINTS_PLAN_VERSION!r}")
        return _decode(data)


# Threshold bands Zhejiang cities use (point-method.md §2): 3 when B ≤ 100, 2 to 200, 1.5 above.
ZHEJIANG_OUTLIERS = Outliers(
    high=(HighBand(100 * POINT_SCALE, 3 * RATIO_SCALE), HighBand(200 * POINT_SCALE, 2 * RATIO_SCALE),
          HighBand(None, 1_500_000)),
    t_low=400_000)
ZHEJIANG_DAY_TIERS = (DayTier(1, 30, RATIO_SCALE), DayTier(31, 60, 900_000),
                      DayTier(61, None, 800_000))

"""Plan nodes for fund supervision (医保基金监管): ``flag`` rules over a whole batch.

A policy's ``flag`` statements lower to one ``Supervision`` node on the plan
(``Plan.supervision``), printed by ``describe()`` (``yibao plan``) and round-tripped by the
plan JSON with its own version string (``SUPERVISION_VERSION``), as the provider part is.

Units are the engine's (core/plan.py): days are ``int``, factors and weights are ratios in
millionths (``RATIO_SCALE``): 150% is ``1_500_000``. Nothing here evaluates anything:
``compute.py`` (vectorised) and ``reference.py`` (the per-stay oracle) read these nodes; the
rules' meaning is stated once, in docs/supervision.md, and in each node's docstring.
"""
from __future__ import annotations

from dataclasses import field

from yibao.core.plan import RATIO_SCALE, register_node
from yibao.core.records import Record, record

SUPERVISION_VERSION = "yibao.supervision/1"
SEVERITIES = ("notice", "review", "serious")  # 提示, 审核, 重点核查
REVIEW = "review"  # the one payment effect: hold the fund's payment for review
CLAIM, HOSPITAL = "claim", "hospital"  # what a flag row names


def _pct(ratio: int) -> str:
    return f"{ratio * 100 / RATIO_SCALE:.6g}%"


@register_node
@record
class Readmit(Record):
    """分解住院 / 短期再入院: a stay admitted 0..``days`` days (inclusive) after the discharge
    of an earlier stay of the same person — at the same hospital (``same_hospital``) or at
    another one. Earlier means (admit, discharge, claim_id) is smaller. The later stay is
    flagged; the earlier ones are its related claims."""
    days: int
    same_hospital: bool = True

    @property
    def name(self) -> str:
        return "split_stay" if self.same_hospital else "readmission_elsewhere"

    def describe(self) -> str:
        where = "the same hospital" if self.same_hospital else "another hospital"
        return f"readmission within {self.days} days at {where}"


@register_node
@record
class AboveGroupMean(Record):
    """挂床/超长住院 (``measure`` ``los``) or 费用异常 (``cost``): a stay whose length of stay
    or total cost is above ``factor`` × the mean over the flag's stays of its group."""
    measure: str  # "los" | "cost"
    factor: int

    @property
    def name(self) -> str:
        return f"{self.measure}_outlier"

    def describe(self) -> str:
        return f"{self.measure} above {_pct(self.factor)} of the group mean"


@register_node
@record
class ShortStay(Record):
    """低标准入院: a stay of at most ``days`` days whose group's weight (RW) is below
    ``weight``."""
    days: int
    weight: int

    name = "low_standard_stay"

    def describe(self) -> str:
        return f"stay at most {self.days} days with weight below {_pct(self.weight)}"


@register_node
@record
class ListedGroups(Record):
    """低标准入院: a stay of a group the city lists (outpatient-manageable groups)."""
    groups: tuple

    name = "listed_group"

    def describe(self) -> str:
        return "group in {" + ", ".join(self.groups) + "}"


@register_node
@record
class CcShare(Record):
    """高套病组: per hospital and ADRG (the DRG's first three characters), the share of stays
    with MCC/CC (the DRG's fourth character 1 or 3) above ``factor`` × the city's share in
    that ADRG, for hospitals with at least ``min_cases`` stays in it."""
    factor: int
    min_cases: int = 1

    name = "cc_share"

    def describe(self) -> str:
        return f"cc share above {_pct(self.factor)} of the city, at least {self.min_cases} cases"


@register_node
@record
class SevereShare(Record):
    """推诿重患: a hospital's share of severe stays (group weight ≥ ``weight``) below
    ``factor`` × the share over the hospitals of its level, for hospitals with at least
    ``min_cases`` stays."""
    factor: int
    weight: int
    min_cases: int = 1

    name = "severe_share"

    def describe(self) -> str:
        return (f"severe share below {_pct(self.factor)} of the level, weight at least "
                f"{_pct(self.weight)}, at least {self.min_cases} cases")


CLAIM_RULES = (Readmit, AboveGroupMean, ShortStay, ListedGroups)
HOSPITAL_RULES = (CcShare, SevereShare)
GROUP_RULES = (AboveGroupMean, ShortStay, ListedGroups, CcShare, SevereShare)


@register_node
@record
class SupervisionFlag(Record):
    """One ``flag`` statement: its rule over the stays passing every test of ``applies``
    (``core.points.plan.Test``; none: every settled claim), the severity its rows carry,
    and its payment effect (``review`` or ``""`` for none)."""
    name: str
    label: str
    rule: object
    severity: str = "notice"
    applies: tuple = ()
    effect: str = ""
    source: str = field(default="", compare=False)  # file:line, provenance only

    @property
    def level(self) -> str:
        return HOSPITAL if isinstance(self.rule, HOSPITAL_RULES) else CLAIM

    def describe(self) -> str:
        from yibao.core.points.plan import describe_tests
        label = f" '{self.label}'" if self.label else ""
        effect = f"; effect {self.effect}" if self.effect else ""
        return (f"flag {self.name}{label}: {self.rule.describe()}; per {self.level}; "
                f"applies {describe_tests(self.applies)}; severity {self.severity}{effect}"
                + (f"  [{self.source}]" if self.source else ""))


@register_node
@record
class Supervision(Record):
    """The supervision part of a plan: its flags in declared order."""
    flags: tuple
    version: str = SUPERVISION_VERSION

    def __post_init__(self):
        if self.version != SUPERVISION_VERSION:
            raise ValueError(f"supervision version {self.version!r} is not "
                             f"{SUPERVISION_VERSION!r}")

    def describe(self) -> str:
        return "\n".join(["supervision:"] + [f"  {f.describe()}" for f in self.flags])

    @property
    def needs_groups(self) -> bool:
        return any(isinstance(f.rule, GROUP_RULES) for f in self.flags)

"""The ``tcm`` plugin: 日照's TCM tilt (中医倾斜), patient side and provider side.

Patient side, policy-language functions (exact ratios, half-up to a millionth):

- ``tcm_share(tcm_amount, in_scope) -> ratio``: the claim's TCM-service share, tcm_amount /
  in_scope with tcm_amount clipped to [0, in_scope]; 0 when in_scope <= 0.
- ``tcm_uplift(tcm_amount, in_scope, rate) -> ratio``: share × rate with one rounding, for
  ``ratio 68% + tcm_uplift(tcm_amount, in_scope, 10%)``.

A validator rejects claims whose ``tcm_amount`` is negative or above ``in_scope``
(``tcm_amount_out_of_range``) when the plan reads ``tcm_amount``.

Provider side, the ``tcm_tilt`` points adjustment (``points.TcmTilt`` / ``points.apply``).
"""
from __future__ import annotations

from yibao.core.lazy import lazy_module
from yibao.core.plan import MONEY, RATIO, Type
from yibao.core.registry import FunctionDecl, Validator

from ..builtin.functions import share_times_rate
from ..decls import AdjustmentDecl
from ..hookspecs import hookimpl
from . import points

__version__ = "0.1.0"
_M, _R = Type(MONEY), Type(RATIO)
FULL = 1_000_000  # 100% as a ratio (millionths)
np = lazy_module("numpy")  # imported by the first call, not at registration


def tcm_share(tcm_amount, in_scope, *, n):
    return share_times_rate(tcm_amount, in_scope, FULL)


def tcm_uplift(tcm_amount, in_scope, rate, *, n):
    return share_times_rate(tcm_amount, in_scope, rate)


def check_tcm_amount(plan, columns, raw, n):
    """Rows with tcm_amount < 0 or > in_scope, when the plan reads tcm_amount."""
    if "tcm_amount" not in columns or "in_scope" not in columns:
        return np.zeros(n, bool), []
    tcm, scope = columns["tcm_amount"], columns["in_scope"]
    return (tcm < 0) | (tcm > scope), "tcm_amount must be between 0 and in_scope"


def reads_tcm_amount(plan) -> bool:
    """Whether ``check_tcm_amount`` can reject a claim under ``plan``: it reads tcm_amount."""
    return "tcm_amount" in {c.name for c in plan.columns}


@hookimpl
def yibao_register_functions(registry):
    """tcm_share and tcm_uplift."""
    registry.add_function(FunctionDecl(
        "tcm_share", (_M, _M), _R,
        "tcm_share(tcm_amount, in_scope): the TCM share of in-scope costs (0 when in_scope is 0)",
        tcm_share))
    registry.add_function(FunctionDecl(
        "tcm_uplift", (_M, _M, _R), _R,
        "tcm_uplift(tcm_amount, in_scope, rate): rate × the TCM share, rounded once", tcm_uplift))


@hookimpl
def yibao_register_validators(registry):
    """tcm_amount within [0, in_scope]."""
    registry.add_validator(Validator("tcm_amount_in_range", "tcm_amount_out_of_range",
                                     check_tcm_amount, claim_columns=(),  # the plan's only
                                     acts_on=reads_tcm_amount))


@hookimpl
def yibao_register_adjustments(registry):
    """tcm_tilt: TCM groups, institution factor, separate clearing."""
    registry.add_adjustment(AdjustmentDecl(
        "tcm_tilt", points.apply, points.TcmTilt,
        "TCM DRG groups, a factor for TCM institutions, a separate year-end pool for them",
        figures=points.FIGURES))

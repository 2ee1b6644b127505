"""The builtin plugin: what every yibao run has, registered through the public hooks."""
from __future__ import annotations

from yibao.core.plan import MONEY, RATIO, Type
from yibao.core.registry import FunctionDecl, KeyDecl

from ..decls import GrouperDecl
from ..hookspecs import hookimpl
from .functions import ratio_of


def _ratio_of(part, whole, *, n):
    return ratio_of(part, whole)


def _chs_drg(claims, grouper=None):
    """CHS-DRG 1.1 over ``claims``; ``grouper`` (a policy's ``DrgGrouper``) names its table
    set and MDC order (None: the national tables, scheme order)."""
    from yibao.core.grouping import group_drg  # loads the national tables on first use
    if grouper is None:
        return group_drg(claims)
    from yibao.core.provider import drg_tables
    return group_drg(claims, drg_tables(grouper), grouper.mdc_order)


@hookimpl
def yibao_register_keys(registry):
    """The ``person`` key: claims of one ``person_id`` share a year's accumulators."""
    registry.add_key(KeyDecl("person", "person_id", "the insured person"))


@hookimpl
def yibao_register_functions(registry):
    """``ratio_of(part, whole)``: part / whole as an exact ratio."""
    registry.add_function(FunctionDecl(
        "ratio_of", (Type(MONEY), Type(MONEY)), Type(RATIO),
        "ratio_of(part, whole): part / whole rounded half-up to a millionth; 0 when whole <= 0",
        _ratio_of))


@hookimpl
def yibao_register_groupers(registry):
    """``chs_drg``: the national CHS-DRG 1.1 grouper (``grouping.drg.OUTPUT_SCHEMA``)."""
    registry.add_grouper(GrouperDecl(
        "chs_drg", _chs_drg, ("drg", "drg_status", "mdc", "adrg", "stopped_at_mdc",
                              "stopped_at_adrg"),
        "CHS-DRG 1.1 national grouper (yibao.core.grouping.group_drg)"))

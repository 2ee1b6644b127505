"""Resolve the provider-payment declarations' names (the first of the provider passes).

A grouper, pool or alliance defined twice is E202; pools and alliances share one namespace
(an alliance may not take a pool's name). The first declaration of a name is the one the
later passes check: ``ctx.provider_decls`` maps ``groupers``, ``pools`` and ``alliances`` to
``{name: declaration}`` in declared order. A repeated declaration is reported and then
ignored, so its tables are not read and its conditions not checked.
"""
from __future__ import annotations

from .. import ast
from ..errors import error
from . import Context


def run(policy: ast.PolicyFile, ctx: Context) -> ast.PolicyFile:
    groupers = _first(policy.groupers(), set(), ctx, lambda n: f"grouper '{n}' is defined twice")
    pool_names: set = set()
    pools = _first(policy.pools(), pool_names, ctx, lambda n: f"pool '{n}' is defined twice")
    alliances = _first(policy.alliances(), pool_names, ctx,
                       lambda n: f"'{n}' is already a pool or alliance")
    ctx.provider_decls = {"groupers": groupers, "pools": pools, "alliances": alliances}
    return policy


def _first(decls, seen: set, ctx: Context, twice) -> dict:
    """name -> the first declaration of each name not already in ``seen`` (E202 for the
    others); ``seen`` gains the names."""
    out = {}
    for decl in decls:
        name = decl.name.name
        if name in seen:
            ctx.report(error("E202", twice(name), decl.name.span))
            continue
        seen.add(name)
        out[name] = decl
    return out

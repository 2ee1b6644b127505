"""Every hook a yibao plugin can implement, in one module.

A plugin is a module (or object) with functions decorated ``@hookimpl`` and named like the specs
below. Each hook receives a ``registry`` to fill (a ``PluginRegistry``: the run's
``yibao.core.registry.Registry`` seen through the plugin's name, so every declaration it adds is
stamped with that name and any failure can name it). Hooks return nothing; the registry is
the only channel, so no hook uses ``firstresult`` — every implementation of every hook is
called, yibao's built-in plugin first, then the others in load order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # only for the annotations
    from .decls import PluginRegistry

PROJECT = "yibao"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Every hook name; tests assert each is documented here and in docs/plugins.md and tested.
HOOKS = ("yibao_register_functions", "yibao_register_keys", "yibao_register_validators",
         "yibao_register_stages", "yibao_register_groupers", "yibao_register_adjustments")


@hookspec  # firstresult: no (every plugin contributes)
def yibao_register_functions(registry: "PluginRegistry") -> None:
    """Add policy-language functions: ``registry.add_function(FunctionDecl(...))``."""


@hookspec  # firstresult: no
def yibao_register_keys(registry: "PluginRegistry") -> None:
    """Add accumulator keys (``per family``): ``registry.add_key(KeyDecl(...))``."""


@hookspec  # firstresult: no
def yibao_register_validators(registry: "PluginRegistry") -> None:
    """Add claim checks that reject rows with a reason: ``registry.add_validator(Validator(...))``."""


@hookspec  # firstresult: no
def yibao_register_stages(registry: "PluginRegistry") -> None:
    """Add post-layer steps adding result columns: ``registry.add_stage(Stage(...))``."""


@hookspec  # firstresult: no
def yibao_register_groupers(registry: "PluginRegistry") -> None:
    """Add case-mix groupers (table -> group columns): ``registry.add_grouper(GrouperDecl(...))``."""


@hookspec  # firstresult: no
def yibao_register_adjustments(registry: "PluginRegistry") -> None:
    """Add provider-side point adjustments (PointsPlan rewrites): ``registry.add_adjustment(AdjustmentDecl(...))``."""

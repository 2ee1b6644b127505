"""The registry a policy compiles and settles with when the caller passes none: yibao's own
plugins (builtin, family, tcm) and the third-party plugins the policy declares
(``plugin "distribution" "range"``), as the commands use it. No other installed package is
imported (docs/plugins.md)."""
from __future__ import annotations

from yibao.core.registry import Registry, default_registry


def registry_for(*policies, settles: bool = True) -> Registry:
    """The registry for the policy files or folders ``policies``; the bare default registry
    when the plugin system is not installed. ``settles=False``: for a command that only
    compiles, the declarations the compiler reads (functions, keys, groupers, adjustments;
    ``manager.COMPILER_HOOKS``), without the validators and stages a run adds. Raises
    PluginError when a declared plugin cannot be loaded."""
    try:
        from yibao.plugins.manager import COMPILER_HOOKS, build_registry, make_plugin_manager
    except ImportError:
        return default_registry()
    from .passes.check_plugins import policy_plugins
    declared = dict(d for policy in policies for d in policy_plugins(policy))
    # what a policy loads depends on what it declares only: other installed packages' entry
    # points are not read when it declares none (manager.OWN_ENTRY_POINTS)
    pm = make_plugin_manager(declared=declared.items(), read_installed=False)
    return build_registry(pm) if settles else build_registry(pm, COMPILER_HOOKS)

"""The registry a policy compiles and settles with when the caller passes none: yibao's own
plugins (builtin, family, tcm) and the third-party plugins the policy declares
(``plugin "distribution" "range"``), as the commands use it. No other installed package is
imported (docs/plugins.md)."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

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
    declared = declared_plugins(policies)
    # what a policy loads depends on what it declares only: other installed packages' entry
    # points are not read when it declares none (manager.OWN_ENTRY_POINTS)
    pm = make_plugin_manager(declared=declared.items(), read_installed=False)
    return build_registry(pm) if settles else build_registry(pm, COMPILER_HOOKS)


def declared_plugins(policies) -> dict:
    """distribution -> version range of every ``plugin`` line of the policy files or folders
    (``check_plugins.policy_plugins``). Files without ``plugin "`` declare none, and
    when no file has it nothing is parsed: the parser (Lark and its tables) is then imported
    only by a compile, which a cached policy does not need (dsl/policy_cache.py)."""
    if not any(_may_declare(policy) for policy in policies):
        return {}
    from .passes.check_plugins import policy_plugins
    return dict(d for policy in policies for d in policy_plugins(policy))


# ``plugin`` then a string, with only what grammar.lark ignores or ends a line between (WS,
# COMMENT, _NL): every declaration matches; a comment saying "the tcm plugin's …" does not
_DECLARATION = re.compile(rb'plugin(?:[ \t\f\r\n]|#[^\n]*)*"')


def _may_declare(policy) -> bool:
    """Whether a policy file (or a folder's ``*.yb``) may hold a ``plugin "…"`` declaration
    (``_DECLARATION``; the keyword is case-sensitive). Only regular files are opened (a FIFO
    would block), as policy_plugins does."""
    path = Path(policy)
    files = sorted(path.glob("*.yb")) if path.is_dir() else [path]
    for file in files:
        try:
            if stat.S_ISREG(os.stat(file).st_mode) and _DECLARATION.search(file.read_bytes()):
                return True
        except OSError:
            continue
    return False

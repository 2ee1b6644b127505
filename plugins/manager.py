"""The plugin manager factory and the registry it builds.

``make_plugin_manager`` registers yibao's own features (``builtin``: the ``person`` key, the
built-in functions and groupers) through the same hooks as everyone else, then the setuptools
entry points of group ``yibao.plugins`` (``family`` and ``tcm`` ship that way too), filtered by
an allowlist, then runs ``check_pending`` so a misspelt hook fails loudly.
``build_registry(pm)`` calls every hook and returns the filled ``Registry``. Every failure
inside a plugin (import, registration, a hook) is a ``PluginError`` naming the plugin.
"""
from __future__ import annotations

import logging
import os
from importlib import metadata
from typing import Iterable, Optional

import pluggy

from yibao.core import __version__ as yibao_version
from yibao.core.registry import Registry

from . import hookspecs
from .decls import PluginRegistry

ENTRY_POINT_GROUP = "yibao.plugins"
ALLOW_ENV = "YIBAO_PLUGINS_ALLOW"
BUILTIN = "builtin"
log = logging.getLogger("yibao.plugins")


class PluginError(RuntimeError):
    """A plugin failed to load, register or run a hook; ``plugin`` is its name."""

    def __init__(self, plugin: str, message: str):
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin


class YibaoPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers versions and what the allowlist kept out."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT)
        self.versions: dict = {}  # plugin name -> version string
        self.skipped: list = []  # (entry point name, reason), in discovery order
        self.allowlist: Optional[frozenset] = None


def parse_allowlist(value) -> Optional[frozenset]:
    """``None`` (no allowlist: load everything), or the set of allowed names from a
    comma-separated string or an iterable. An empty string or empty iterable allows none."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(v.strip() for v in value if v.strip())


def make_plugin_manager(allowlist=None, load_entry_points: bool = True,
                        plugins: Iterable = ()) -> YibaoPluginManager:
    """A manager with the builtin plugin, the allowed entry-point plugins and ``plugins``
    (extra ``(name, module_or_object)`` pairs, registered as given). ``allowlist`` (names, or a
    "a,b" string) defaults to env ``YIBAO_PLUGINS_ALLOW`` when set; an entry point not on a
    configured allowlist is not imported and is listed in ``pm.skipped``."""
    from .builtin import plugin as builtin_plugin
    pm = YibaoPluginManager()
    pm.add_hookspecs(hookspecs)
    pm.allowlist = parse_allowlist(allowlist if allowlist is not None
                                   else os.environ.get(ALLOW_ENV))
    _register(pm, BUILTIN, builtin_plugin, yibao_version)
    if load_entry_points:
        _load_entry_points(pm)
    for name, obj in plugins:
        _register(pm, name, obj, getattr(obj, "__version__", "unversioned"))
    _check_pending(pm)
    return pm


def _register(pm: YibaoPluginManager, name: str, obj, version: str) -> None:
    try:
        pm.register(obj, name=name)
    except Exception as exc:
        raise PluginError(name, f"cannot be registered: {exc}") from exc
    pm.versions[name] = version


def _load_entry_points(pm: YibaoPluginManager) -> None:
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if pm.allowlist is not None and ep.name not in pm.allowlist:
            pm.skipped.append((ep.name, f"not on the allowlist ({ALLOW_ENV})"))
            log.warning("yibao plugin %r not loaded: not on the allowlist", ep.name)
            continue
        if pm.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(ep.name, f"cannot be imported from {ep.value!r}: {exc}") from exc
        version = ep.dist.version if ep.dist is not None else "unknown"
        _register(pm, ep.name, obj, version)


def _check_pending(pm: YibaoPluginManager) -> None:
    """pluggy's check_pending, re-raised with the plugin's registered name."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(name, f"{exc} (hooks are: {', '.join(hookspecs.HOOKS)})") from exc


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every hook of every plugin (builtin first, then load order) on a fresh Registry."""
    registry = Registry()
    for hook in hookspecs.HOOKS:
        for impl in getattr(pm.hook, hook).get_hookimpls():
            try:
                impl.function(registry=PluginRegistry(registry, impl.plugin_name))
            except Exception as exc:
                raise PluginError(impl.plugin_name, f"hook {hook} failed: {exc}") from exc
    return registry


def plugin_info(pm: YibaoPluginManager) -> list:
    """(name, version, hooks implemented) for every registered plugin, builtin first."""
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = tuple(h.name for h in pm.get_hookcallers(plugin) or ())
        out.append((name, pm.versions.get(name, "unknown"), tuple(sorted(hooks))))
    return out

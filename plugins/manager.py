"""The plugin manager factory and the registry it builds.

``make_plugin_manager`` registers yibao's own features (``builtin``: the ``person`` key, the
built-in functions and groupers) through the same hooks as everyone else, then the setuptools
entry points of group ``yibao.plugins``: those of yibao's own distribution (``family`` and
``tcm`` ship that way) and those of the distributions the policy declares
(``plugin "name" "range"``, ``declared``), never any other installed package's — a package is
identified by its distribution, never by its entry point's name, so an entry point named like
one of yibao's cannot displace it. Then ``check_pending`` runs so a misspelt hook fails
loudly.
``build_registry(pm)`` calls every hook and returns the filled ``Registry``. Every failure
inside a plugin (import, registration, a hook) is a ``PluginError`` naming the plugin.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Optional

import pluggy

from yibao.core import __version__ as yibao_version
from yibao.core.registry import Registry, canonical_distribution

from . import hookspecs
from .decls import PluginRegistry
from yibao.core.errors import YibaoError

ENTRY_POINT_GROUP = "yibao.plugins"
ALLOW_ENV = "YIBAO_PLUGINS_ALLOW"
BUILTIN = "builtin"
LOGGER = "yibao.plugins"  # logging is imported only to say a plugin was kept out


class PluginError(YibaoError, RuntimeError):
    """A plugin failed to load, register or run a hook; ``plugin`` is its name."""

    def __init__(self, plugin: str, message: str):
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin


class YibaoPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers versions and what was kept out."""

    def __init__(self):
        super().__init__(hookspecs.PROJECT)
        self.versions: dict = {}  # plugin name -> version string
        self.distributions: dict = {}  # plugin name -> (distribution, version)
        self.skipped: list = []  # (entry point name, reason), in discovery order
        self.allowlist: Optional[frozenset] = None


def parse_allowlist(value) -> Optional[frozenset]:
    """``None`` (no allowlist), or the set of allowed names from a comma-separated string or an
    iterable: third-party distribution names, and entry-point names of yibao's own plugins
    (``family``, ``tcm``). An empty string or empty iterable allows no optional plugin."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(v.strip() for v in value if v.strip())


def make_plugin_manager(allowlist=None, load_entry_points: bool = True,
                        plugins: Iterable = (), declared: Iterable = (),
                        read_installed: bool = True) -> YibaoPluginManager:
    """A manager with the builtin plugin, yibao's own entry-point plugins, those of the
    ``declared`` distributions (``(distribution, PEP 440 range)`` pairs: a policy's
    ``plugin`` lines, ``policy_plugins``) and ``plugins`` (extra ``(name, object)`` pairs,
    registered as given). An installed entry point of any other distribution is not imported
    and is listed in ``pm.skipped``. ``allowlist`` (names, or a "a,b" string) defaults to env
    ``YIBAO_PLUGINS_ALLOW`` when set: it can keep yibao's own optional plugins out, and a
    declared distribution must be on it. ``PluginError`` for a declared distribution that is
    not installed, not allowed, at a version outside its range, or whose entry point has the
    name of another distribution's. ``read_installed=False`` (the commands' registry): when
    nothing is declared, yibao's own entry points are taken from ``OWN_ENTRY_POINTS`` instead
    of every installed distribution's metadata, so ``pm.skipped`` names no other package."""
    from .builtin import plugin as builtin_plugin
    pm = YibaoPluginManager()
    pm.add_hookspecs(hookspecs)
    pm.allowlist = parse_allowlist(allowlist if allowlist is not None
                                   else os.environ.get(ALLOW_ENV))
    _register(pm, BUILTIN, builtin_plugin, yibao_version, YIBAO_DIST)
    if load_entry_points:
        wanted = _declared(declared)
        points = group_entry_points() if wanted or read_installed else own_entry_points()
        _load_entry_points(pm, wanted, points)
    for name, obj in plugins:
        version = getattr(obj, "__version__", "unversioned")
        _register(pm, name, obj, version, name)
    _check_pending(pm)
    return pm


YIBAO_DIST = "yibao"


def _canonical(name: str) -> str:
    return canonical_distribution(name)


def _declared(declared) -> dict:
    """canonical distribution name -> (name as written, SpecifierSet)."""
    out = {}
    for dist, versions in declared:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet  # only when declared
        try:
            out[_canonical(dist)] = (dist, SpecifierSet(versions))
        except InvalidSpecifier as exc:
            raise PluginError(dist, f"{versions!r} is not a version range: {exc}") from exc
    return out


def _register(pm: YibaoPluginManager, name: str, obj, version: str, dist: str) -> None:
    try:
        pm.register(obj, name=name)
    except Exception as exc:
        raise PluginError(name, f"cannot be registered: {exc}") from exc
    pm.versions[name] = version
    pm.distributions[name] = (dist, version)


def _load_entry_points(pm: YibaoPluginManager, declared: dict, points: tuple) -> None:
    """Of ``points``, those of yibao's distribution and of the declared ones (module
    docstring)."""
    found = set()
    # yibao's own first: a name taken by them is theirs, whatever sorts before "yibao"
    own_first = sorted(points, key=lambda e: (_canonical(_dist_name(e)) != YIBAO_DIST,
                                              _dist_name(e), e.name))
    for ep in own_first:
        dist = _dist_name(ep)
        reason = _kept_out(pm, ep, dist, declared)
        if reason:
            pm.skipped.append((ep.name, reason))
            import logging
            logging.getLogger(LOGGER).info("yibao plugin %r (%s) not loaded: %s", ep.name, dist, reason)
            continue
        found.add(_canonical(dist))
        if pm.has_plugin(ep.name):
            _same_or_clash(pm, ep, dist)
            continue
        _check_version(ep, dist, declared)
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(ep.name, f"cannot be imported from {ep.value!r}: {exc}") from exc
        _register(pm, ep.name, obj, ep.dist.version if ep.dist else "unknown", dist)
    for name, (dist, versions) in declared.items():
        if name not in found:
            raise PluginError(dist, f"the policy declares it ({versions or 'any version'}) but "
                                    f"no installed distribution of that name has a "
                                    f"{ENTRY_POINT_GROUP!r} entry point: pip install '{dist}'")


# yibao's own entry points, as pyproject.toml declares them (tests/plugins/
# test_own_entry_points.py checks they are the installed distribution's). A policy that
# declares no plugin distribution loads only these, and reading them from every installed
# distribution's metadata (importing importlib.metadata, then scanning sys.path) was ~50 ms
# of each command's start-up.
OWN_ENTRY_POINTS = (("family", "yibao.plugins.family"), ("tcm", "yibao.plugins.tcm"))


class OwnEntryPoint:
    """One of ``OWN_ENTRY_POINTS``, with what the loader reads of an installed entry point
    (``name``, ``value``, ``dist.name``, ``dist.version``, ``load()``)."""

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value
        self.dist = OwnDistribution

    def load(self):
        import importlib
        return importlib.import_module(self.value)


class OwnDistribution:
    name = YIBAO_DIST
    version = yibao_version


def own_entry_points() -> tuple:
    return tuple(OwnEntryPoint(name, value) for name, value in OWN_ENTRY_POINTS)


_ENTRY_POINTS: dict = {}  # read_key() -> the group's entry points


def group_entry_points() -> tuple:
    """The installed entry points of group ``yibao.plugins``, read once per process while
    the folders of ``sys.path`` are unchanged: reading them opens every installed
    distribution's metadata, the largest part of building a registry, which the API and the
    studio do for every policy they compile. Installing or removing a package changes its
    folder's modification time, so it is seen at the next read."""
    from importlib import metadata
    key = _read_key()
    if key not in _ENTRY_POINTS:
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS[key] = tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))
    return _ENTRY_POINTS[key]


def _read_key() -> tuple:
    """What the entry points depend on: ``sys.path``, each folder's modification time, and
    the reading function (tests replace ``metadata.entry_points``)."""
    from importlib import metadata
    def mtime(folder):
        try:
            return os.stat(folder or ".").st_mtime_ns
        except OSError:
            return None
    return (metadata.entry_points, tuple((p, mtime(p)) for p in sys.path))


def _dist_name(ep) -> str:
    return ep.dist.name if ep.dist is not None else "unknown"


def _kept_out(pm, ep, dist: str, declared: dict):
    """Why the entry point is not loaded, or None. An undeclared package is never imported;
    a declared one missing from a configured allowlist is an error, not a silent skip."""
    own = _canonical(dist) == YIBAO_DIST
    if not own and _canonical(dist) not in declared:
        return f"distribution {dist!r} is not declared by the policy (plugin \"{dist}\" …)"
    if pm.allowlist is None:
        return None
    if own:
        return None if ep.name in pm.allowlist else f"not on the allowlist ({ALLOW_ENV})"
    if dist in pm.allowlist or _canonical(dist) in {_canonical(a) for a in pm.allowlist}:
        return None
    raise PluginError(dist, f"the policy declares it but {ALLOW_ENV} does not allow it")


def _same_or_clash(pm, ep, dist: str) -> None:
    """A second entry point of a loaded name: the same distribution seen twice on sys.path is
    skipped; another distribution's is refused (the name would be ambiguous)."""
    first = pm.distributions.get(ep.name, ("?", ""))[0]
    if _canonical(first) != _canonical(dist):
        raise PluginError(ep.name, f"entry point of distribution {dist!r} has the name of the "
                                   f"plugin of distribution {first!r}; which one provides it "
                                   "would be a guess: uninstall one")


def _check_version(ep, dist: str, declared: dict) -> None:
    wanted = declared.get(_canonical(dist))
    version = ep.dist.version if ep.dist is not None else None
    if wanted is not None and (version is None or
                               not wanted[1].contains(version, prereleases=True)):
        raise PluginError(dist, f"version {version} is installed but the policy declares "
                                f"'{wanted[1]}': pip install '{dist}{wanted[1]}'")


def _check_pending(pm: YibaoPluginManager) -> None:
    """pluggy's check_pending, re-raised with the plugin's registered name."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(name, f"{exc} (hooks are: {', '.join(hookspecs.HOOKS)})") from exc


# The hooks whose declarations the compiler reads. Validators and stages are read only by a
# run; a command that only compiles (`yibao check`) calls these, so it imports no plugin's
# run-time code (the family stage's pyarrow column types).
COMPILER_HOOKS = ("yibao_register_functions", "yibao_register_keys", "yibao_register_groupers",
                  "yibao_register_adjustments")


def build_registry(pm: pluggy.PluginManager, hooks: tuple = hookspecs.HOOKS) -> Registry:
    """Call ``hooks`` (default: every hook) of every plugin (builtin first, then load order)
    on a fresh Registry."""
    registry = Registry()
    registry.distributions.update(getattr(pm, "distributions", {}))
    for hook in (h for h in hookspecs.HOOKS if h in hooks):
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


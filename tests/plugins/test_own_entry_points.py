"""yibao's own plugins as the commands load them without reading the installed metadata
(``manager.OWN_ENTRY_POINTS``, ``make_plugin_manager(read_installed=False)``): the same entry
points, version and registry as the installed distribution's, and nothing else is read."""
from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from yibao.core import __version__ as yibao_version
from yibao.plugins import manager
from yibao.plugins.manager import build_registry, make_plugin_manager, plugin_info

REPO = Path(__file__).resolve().parents[2]


def test_own_entry_points_are_the_installed_and_declared_ones():
    installed = {(ep.name, ep.value) for ep in metadata.entry_points(group="yibao.plugins")
                 if ep.dist is not None and ep.dist.name == "yibao"}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "entry-points"]["yibao.plugins"]
    assert set(manager.OWN_ENTRY_POINTS) == installed == set(declared.items())
    assert metadata.version("yibao") == yibao_version


def test_without_reading_the_installed_metadata_the_registry_is_the_same(monkeypatch):
    monkeypatch.delenv("YIBAO_PLUGINS_ALLOW", raising=False)
    full = make_plugin_manager()
    monkeypatch.setattr(metadata, "entry_points", _refuse)
    own = make_plugin_manager(read_installed=False)
    assert plugin_info(own) == plugin_info(full)
    assert own.distributions == full.distributions
    assert _described(build_registry(own)) == _described(build_registry(full))


def test_the_allowlist_still_keeps_own_plugins_out(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _refuse)
    pm = make_plugin_manager(allowlist="tcm", read_installed=False)
    assert [n for n, *_ in plugin_info(pm)] == ["builtin", "tcm"]
    assert pm.skipped == [("family", "not on the allowlist (YIBAO_PLUGINS_ALLOW)")]


def test_a_declared_distribution_is_still_looked_up_in_the_installed_metadata(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _refuse)
    with pytest.raises(AssertionError, match="installed metadata read"):
        make_plugin_manager(declared=[("yibao-ageband", ">=1")], read_installed=False)


def _refuse(**_):
    raise AssertionError("installed metadata read")


def _described(registry) -> tuple:
    return (sorted(registry.functions), sorted(registry.keys), sorted(registry.groupers),
            sorted(registry.adjustments), [v.name for v in registry.validators],
            [s.name for s in registry.stages], registry.distributions)

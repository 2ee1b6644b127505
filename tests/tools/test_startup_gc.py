"""The garbage collector is paused while a command starts up (``_common.collections_paused``:
finding the commands, loading plugins, compiling) and on again for the run; a caller that had
it off keeps it off."""
from __future__ import annotations

import gc

import pytest

from yibao.dsl import cli
from yibao.dsl.commands import _common


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_on_again_after_even_on_error(collector_on):
    with _common.collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with _common.collections_paused():
            raise ValueError("compile failed")
    assert gc.isenabled()


def test_a_caller_that_had_it_off_keeps_it_off(collector_on):
    gc.disable()
    with _common.collections_paused():
        pass
    assert not gc.isenabled()


def test_a_command_compiles_paused_and_runs_with_the_collector_on(collector_on, monkeypatch):
    from yibao.dsl import plugin_registry
    seen = []
    real = plugin_registry.registry_for

    def spying_registry_for(*policies, **kwargs):
        seen.append(gc.isenabled())
        return real(*policies, **kwargs)

    monkeypatch.setattr(plugin_registry, "registry_for", spying_registry_for)
    assert cli.main(["plan", "reference"]) == 0
    assert seen == [False] and gc.isenabled()

"""``engine.settle`` in a caller's process turns numpy's huge-page advice off while it runs
and gives the caller's setting back when the last settle ends (core/pages.py); a setting the
user made through ``NUMPY_MADVISE_HUGEPAGE`` is left alone; results are the same either way."""
from __future__ import annotations

import sys
import threading

import pytest

from yibao.core import engine, pages

pytestmark = pytest.mark.skipif(pages.advice_switch() is None or
                                not sys.platform.startswith("linux"),
                                reason="numpy has a huge-page switch on Linux only")


def advised() -> bool:
    """Whether numpy advises huge pages now (read by switching, then switching back)."""
    switch = pages.advice_switch()
    now = switch(False)
    switch(now)
    return now


@pytest.fixture
def advice_on(monkeypatch):
    """numpy's default (advice on), with no NUMPY_MADVISE_HUGEPAGE; restored afterwards."""
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    before = pages.advice_switch()(True)
    yield
    pages.advice_switch()(before)


@pytest.fixture
def seen(monkeypatch) -> list:
    """Whether numpy advised huge pages inside each single-plan settle."""
    states, settle_plan = [], engine._settle_plan

    def recorded(*args, **kwargs):
        states.append(advised())
        return settle_plan(*args, **kwargs)
    monkeypatch.setattr(engine, "_settle_plan", recorded)
    return states


def test_settle_runs_with_small_pages_and_restores_the_advice(plan, claims, registry,
                                                              advice_on, seen):
    batch = engine.settle(plan, claims, registry)
    assert seen == [False]
    assert advised() is True
    assert batch.results.num_rows == claims.num_rows


def test_a_setting_the_user_made_is_left_alone(plan, claims, registry, advice_on, seen,
                                               monkeypatch):
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    with_advice = engine.settle(plan, claims, registry)
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
    without = engine.settle(plan, claims, registry)
    assert seen == [True, False]
    assert with_advice.results.equals(without.results)
    assert with_advice.rejects.equals(without.rejects)


def test_overlapping_settles_restore_the_advice_once_the_last_ends(plan, claims, registry,
                                                                    advice_on, monkeypatch):
    """Two settles on two threads, the first ending while the second still runs: the advice
    stays off until the second ends, then is the caller's again."""
    first_in, first_out, states = threading.Event(), threading.Event(), []
    settle_plan = engine._settle_plan

    def held(*args, **kwargs):
        if threading.current_thread().name == "second":
            first_in.wait(30)
            first_out.wait(30)  # the first settle has ended: the advice must still be off
            states.append(advised())
        else:
            first_in.set()
        return settle_plan(*args, **kwargs)
    monkeypatch.setattr(engine, "_settle_plan", held)
    second = threading.Thread(target=engine.settle, args=(plan, claims, registry),
                              name="second")
    second.start()
    engine.settle(plan, claims, registry)
    first_out.set()
    second.join(60)
    assert states == [False] and advised() is True

"""YIBAO_TIMELINE=1 (core/timeline.py, issue 14, w16): a run prints its stages with wall and
CPU seconds per thread to stderr; without it nothing is printed or kept."""
from __future__ import annotations

import re

from yibao.core import timeline
from yibao.core.runner import run_settle


def test_a_run_prints_its_stages_when_asked(plan, claims_file, tmp_path, registry,
                                            monkeypatch, capsys):
    monkeypatch.setenv("YIBAO_TIMELINE", "1")
    run_settle(plan, claims_file, tmp_path / "t", registry=registry, progress=False)
    err = capsys.readouterr().err
    assert "timeline: CPU before the run" in err and "timeline: run " in err
    stages = re.findall(r"^\s+-?\d+\.\d+\s+-?\d+\.\d+\s+\d+\.\d+ s wall\s+\d+\.\d+ s CPU\s+"
                        r"(\d+) flt\s+(\d+) MB\s+(\S+)\s+(.+)$", err, flags=re.M)
    names = {name for _, _, _, name in stages}
    assert {"read sources", "prepare", "settle piece", "finish (manifest, publish)"} <= names
    assert any(name.startswith("write row group") for name in names)
    assert timeline._events == []  # printed once, then dropped


def test_a_stage_counts_the_fresh_pages_its_thread_touched(monkeypatch):
    """Each stage carries its thread's minor faults (fresh pages touched, issue 14, w18) and
    the process's resident memory at its end: 64 MiB written for the first time inside a
    stage are at least 32 faults (2 MiB pages) and show in its resident bytes."""
    import numpy as np
    monkeypatch.setenv("YIBAO_TIMELINE", "1")
    monkeypatch.setattr(timeline, "_events", [])
    with timeline.stage("touch"):
        touched = np.ones(64 << 20, dtype=np.uint8)
    with timeline.stage("idle"):
        pass
    (_, _, _, _, _, faults, rss), (_, _, _, _, _, idle, _) = timeline._events
    assert faults >= 32 and idle < 32 and rss >= touched.nbytes


def test_nothing_is_kept_or_printed_by_default(plan, claims_file, tmp_path, registry,
                                               monkeypatch, capsys):
    monkeypatch.delenv("YIBAO_TIMELINE", raising=False)
    run_settle(plan, claims_file, tmp_path / "t", registry=registry, progress=False)
    assert "timeline" not in capsys.readouterr().err and timeline._events == []

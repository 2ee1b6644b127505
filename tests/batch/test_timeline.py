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
                        r"(\S+)\s+(.+)$", err, flags=re.M)
    names = {name for _, name in stages}
    assert {"read sources", "prepare", "settle piece", "finish (manifest, publish)"} <= names
    assert any(name.startswith("write row group") for name in names)
    assert timeline._events == []  # printed once, then dropped


def test_nothing_is_kept_or_printed_by_default(plan, claims_file, tmp_path, registry,
                                               monkeypatch, capsys):
    monkeypatch.delenv("YIBAO_TIMELINE", raising=False)
    run_settle(plan, claims_file, tmp_path / "t", registry=registry, progress=False)
    assert "timeline" not in capsys.readouterr().err and timeline._events == []

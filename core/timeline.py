"""Where a run's time goes: wall and CPU seconds per stage and per thread, printed to stderr
at the end of ``run_settle`` when ``YIBAO_TIMELINE`` is set (issue 14: on two cores the
question is which stage sits on the critical path and when a core idles; benchmarks/README.md
"w16" shows one). Off (the default) a stage costs one dictionary lookup and nothing is kept.

    YIBAO_TIMELINE=1 yibao settle city_configs/reference claims/ --out results/

prints one line per stage, in order of its start: start and end (wall seconds since the run
started), the thread that ran it and the CPU seconds that thread spent in it
(``time.thread_time``), then the process's CPU seconds before the run (start-up, compile) and
in it (``time.process_time``: every thread).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager

_events: list = []  # (thread, stage, wall start, wall end, thread CPU seconds)
_origin = [time.perf_counter(), time.process_time()]


def enabled() -> bool:
    return bool(os.environ.get("YIBAO_TIMELINE"))


def start() -> None:
    """A run starts: the timeline's origin (stages begun before it, such as the command's
    read-ahead, show negative times)."""
    _origin[:] = [time.perf_counter(), time.process_time()]


@contextmanager
def stage(name: str):
    """Time the block as stage ``name`` on the calling thread (when enabled)."""
    if not enabled():
        yield
        return
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        _events.append((threading.current_thread().name, name, wall, time.perf_counter(),
                        time.thread_time() - cpu))


def timed(name: str, fn):
    """``fn`` wrapped so that each call is timed as stage ``name`` (for work handed to a
    thread pool)."""
    def run(*args, **kwargs):
        with stage(name):
            return fn(*args, **kwargs)
    return run


def report(out=None) -> None:
    """Print the stages (module docstring) when enabled; a stage run several times on one
    thread (a chunk, a row group) is one line: its first start, last end, count, and the
    sums of its wall and CPU seconds."""
    if not enabled():
        return
    out = out or sys.stderr
    t0, cpu0 = _origin
    print(f"timeline: CPU before the run {cpu0:.3f} s (start-up, compile; all threads)",
          file=out)
    for thread, name, first, last, count, wall, cpu in _merged():
        times = f" x{count}" if count > 1 else ""
        print(f"  {first - t0:7.3f} {last - t0:7.3f}  {wall:6.3f} s wall {cpu:6.3f} s CPU  "
              f"{thread:<20} {name}{times}", file=out)
    print(f"timeline: run {time.perf_counter() - t0:.3f} s wall, "
          f"{time.process_time() - cpu0:.3f} s CPU (all threads)", file=out)
    _events.clear()


def _merged() -> list:
    """The events merged per (thread, stage), in order of first start."""
    merged: dict = {}
    for thread, name, start_, end, cpu in _events:
        m = merged.setdefault((thread, name), [thread, name, start_, end, 0, 0.0, 0.0])
        m[2], m[3] = min(m[2], start_), max(m[3], end)
        m[4] += 1
        m[5] += end - start_
        m[6] += cpu
    return sorted(merged.values(), key=lambda m: m[2])

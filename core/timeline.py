"""Where a run's time goes: wall and CPU seconds per stage and per thread, printed to stderr
at the end of ``run_settle`` when ``YIBAO_TIMELINE`` is set (issue 14: on two cores the
question is which stage sits on the critical path and when a core idles; benchmarks/README.md
"w16" shows one). Off (the default) a stage costs one dictionary lookup and nothing is kept.

    YIBAO_TIMELINE=1 yibao settle city_configs/reference claims/ --out results/

prints one line per stage, in order of its start: start and end (wall seconds since the run
started), the thread that ran it and the CPU seconds that thread spent in it
(``time.thread_time``), the minor page faults that thread took in it and the process's
resident memory when it last ended, then the process's CPU seconds before the run (start-up,
compile) and in it (``time.process_time``: every thread), with the process's faults and peak
resident memory.

Faults are fresh memory touched (issue 14, w18: on this VM every fresh page costs system
time, zeroing and often a fault in the host): a 4 KiB page is one fault, a transparent huge
page (numpy madvises arrays of 4 MiB or more) one fault for 2 MiB, so with
``NUMPY_MADVISE_HUGEPAGE=0`` faults × 4 KiB are the bytes a stage touched for the first time.
Counted per thread (``RUSAGE_THREAD``), so a stage's faults are its own, not its neighbours'.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
import time
from contextlib import contextmanager

_events: list = []  # (thread, stage, wall start, wall end, thread CPU seconds, thread faults,
#                     process resident bytes at the end)
_origin = [time.perf_counter(), time.process_time(), 0]
_PAGE = os.sysconf("SC_PAGE_SIZE")


def enabled() -> bool:
    return bool(os.environ.get("YIBAO_TIMELINE"))


def start() -> None:
    """A run starts: the timeline's origin (stages begun before it, such as the command's
    read-ahead, show negative times)."""
    _origin[:] = [time.perf_counter(), time.process_time(), _process_faults()]


@contextmanager
def stage(name: str):
    """Time the block as stage ``name`` on the calling thread (when enabled)."""
    if not enabled():
        yield
        return
    wall, cpu, faults = time.perf_counter(), time.thread_time(), _thread_faults()
    try:
        yield
    finally:
        _events.append((threading.current_thread().name, name, wall, time.perf_counter(),
                        time.thread_time() - cpu, _thread_faults() - faults, _resident()))


def _thread_faults() -> int:
    """Minor page faults of the calling thread so far (one fault per fresh page touched)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def _process_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _resident() -> int:
    """The process's resident bytes now (/proc/self/statm; 0 where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


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
    t0, cpu0, faults0 = _origin
    print(f"timeline: CPU before the run {cpu0:.3f} s (start-up, compile; all threads), "
          f"{faults0} faults", file=out)
    for thread, name, first, last, count, wall, cpu, faults, rss in _merged():
        times = f" x{count}" if count > 1 else ""
        print(f"  {first - t0:7.3f} {last - t0:7.3f}  {wall:6.3f} s wall {cpu:6.3f} s CPU "
              f"{faults:7d} flt {rss / 2**20:6.0f} MB  {thread:<20} {name}{times}", file=out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"timeline: run {time.perf_counter() - t0:.3f} s wall, "
          f"{time.process_time() - cpu0:.3f} s CPU (all threads), "
          f"{_process_faults() - faults0} faults, peak {peak:.0f} MB resident", file=out)
    _events.clear()


def _merged() -> list:
    """The events merged per (thread, stage), in order of first start; resident bytes of
    the one that ended last."""
    merged: dict = {}
    for thread, name, start_, end, cpu, faults, rss in _events:
        m = merged.setdefault((thread, name), [thread, name, start_, end, 0, 0.0, 0.0, 0, rss])
        m[2] = min(m[2], start_)
        if end >= m[3]:
            m[3], m[8] = end, rss
        m[4] += 1
        m[5] += end - start_
        m[6] += cpu
        m[7] += faults
    return sorted(merged.values(), key=lambda m: m[2])

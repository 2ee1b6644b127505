"""Helpers shared by the subcommands: loading a policy with the installed plugins, printing
diagnostics, reading claims."""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from yibao.core.registry import default_registry

from ..errors import PolicyError


def registry(*policies):
    """The registry of yibao's own plugins and of those the policy files or folders
    ``policies`` declare (``plugin "distribution" "range"``; no other installed package is imported), or
    the bare default registry when the plugin system is not available. Raises PluginError
    when a declared plugin cannot be loaded."""
    try:
        from yibao.plugins.manager import build_registry, make_plugin_manager
    except ImportError:
        return default_registry()
    from ..passes.check_plugins import policy_plugins
    declared = dict(d for policy in policies for d in policy_plugins(policy))
    return build_registry(make_plugin_manager(declared=declared.items()))


def load_policy(path, reg=None):
    """Compile a policy folder or file; on errors print them all and return None."""
    from ..compiler import compile_policy
    try:
        return compile_policy(path, registry=reg or registry())
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return None
    except FileNotFoundError as exc:
        print(f"yibao: no policy at {path}: {exc}", file=sys.stderr)
        return None


def read_claims(path) -> pa.Table:
    """Parquet file or folder of Parquet files, or an Arrow IPC file."""
    import pyarrow.dataset as ds
    import pyarrow.ipc as ipc
    path = Path(path)
    if path.suffix in (".arrow", ".ipc", ".feather"):
        with pa.memory_map(str(path)) as source:
            return ipc.open_file(source).read_all()
    return ds.dataset(str(path), format="parquet").to_table()


def console(stderr=False):
    from rich.console import Console
    return Console(stderr=stderr, highlight=False)


def all_rejected_hint(plan, settled: int, reasons: dict):
    """One line explaining a run in which every claim was rejected for the same reason, or
    None. For claims outside the policy period it names the period."""
    if settled or len(reasons) != 1:
        return None
    (reason, count), = reasons.items()
    if reason == "outside_policy_period":
        import datetime as dt
        day = lambda d: (dt.date(1970, 1, 1) + dt.timedelta(days=int(d))).isoformat()
        return (f"hint: all {count:,} claims are outside the policy period "
                f"{day(plan.effective_from)} – {day(plan.effective_to)}")
    return f"hint: all {count:,} claims were rejected: {reason}"

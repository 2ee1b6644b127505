"""Helpers shared by the subcommands: loading a policy with the installed plugins, printing
diagnostics, reading claims."""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from yibao.core.registry import default_registry

from ..errors import PolicyError


def registry(*policies):
    """``plugin_registry.registry_for`` the policies, a bundled city's name taken as its
    folder."""
    from ..plugin_registry import registry_for
    return registry_for(*(_resolved(p) for p in policies))


def _resolved(policy):
    """A bundled city's name as its folder; anything else as given (loading it later says
    what is wrong with it)."""
    from ._policies import PolicyNotFound, resolve_policy
    try:
        return resolve_policy(policy)
    except PolicyNotFound:
        return policy


def load_policy(path, reg=None):
    """Compile a policy folder or file, or a bundled city by name; on errors print them all
    and return None. PolicyNotFound when ``path`` names nothing."""
    from ..compiler import compile_policy
    from ._policies import resolve_policy
    where = resolve_policy(path)
    try:
        return compile_policy(where, registry=reg or registry())
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


PIPED_WIDTH = 200  # columns when output is not a terminal: wide enough for every table


def console(stderr=False):
    """A rich console. Piped into a file or another program it is PIPED_WIDTH wide (COLUMNS
    when that is wider), so no table is squeezed to 80 columns and no amount cut to
    `3,851,727,81…`; on a terminal it is the terminal's width (see amount_column)."""
    import os
    from rich.console import Console
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = max(PIPED_WIDTH, int(columns) if columns.isdigit() else 0)
    return Console(stderr=stderr, highlight=False, width=width)


def amount_column(table, header: str) -> None:
    """A right-aligned column of amounts or counts that is never cut: rich shrinks the text
    columns first, and if it must still shrink this one it folds the digits onto a second
    line instead of ending them with an ellipsis."""
    table.add_column(header, justify="right", no_wrap=True, overflow="fold")


def text_column(table, header: str) -> None:
    """A column of names or labels: when the table must shrink it wraps, and folds a long
    identifier onto the next line rather than cutting it with an ellipsis."""
    table.add_column(header, overflow="fold")


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

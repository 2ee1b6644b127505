"""Helpers shared by the subcommands: loading a policy with the installed plugins, printing
diagnostics, reading claims.

Every command's ``add_arguments`` imports this module, and the CLI builds the parser of every
command on each run, so it imports only the standard library at the top: pyarrow, the
compiler and the core are imported by the helper that uses them (docs/cli.md, start-up)."""
from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path


def registry(*policies, settles: bool = True):
    """``plugin_registry.registry_for`` the policies, a bundled city's name taken as its
    folder (``settles=False``: only what the compiler reads)."""
    from ..plugin_registry import registry_for
    with collections_paused():
        return registry_for(*(_resolved(p) for p in policies), settles=settles)


@contextlib.contextmanager
def collections_paused():
    """The garbage collector off while a command finds its options, loads its plugins and
    compiles its policy: start-up allocates ~50,000 objects that live until the process ends
    (modules, classes, parser tables, the AST) and almost no garbage, and the collector,
    run at every 700 new objects, ran ~110 times over them (10–25 ms of CPU measured, 5% of
    a compile). It is switched back on afterwards (never left off for a run, whose garbage
    must still be collected), and left alone when the caller had it off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
    from ..errors import PolicyError
    from ._policies import resolve_policy
    where = resolve_policy(path)
    try:
        with collections_paused():
            return compile_policy(where, registry=reg or registry())
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return None
    except FileNotFoundError as exc:
        print(f"yibao: no policy at {path}: {exc}", file=sys.stderr)
        return None


def add_cache_option(parser) -> None:
    """``--no-cache``: compile the policy even when the compiled-policy cache holds it
    (dsl/policy_cache.py; the commands pass ``cache=use_cache(args)`` to load_policy)."""
    parser.add_argument("--no-cache", action="store_true",
                        help="compile the policy, neither using nor writing the "
                             "compiled-policy cache (also: YIBAO_NO_CACHE=1)")


def use_cache(args) -> bool:
    """False when ``--no-cache`` was given. Arguments built in Python (the studio, scripts,
    tests calling a command's ``run``) may not have the option at all: they use the cache,
    as the command line does by default."""
    return not getattr(args, "no_cache", False)


def read_claims(path) -> "pa.Table":
    """Parquet file or folder of Parquet files, or an Arrow IPC file."""
    import pyarrow as pa
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


# -- one spelling for the policy and the claims -----------------------------------------------
#
# Every command that settles claims takes its policy and its claims as positional operands,
# `yibao settle POLICY CLAIMS… --out DIR`, as `check/plan/test/fmt` already take the policy.
# The flags of the previous release (`--policy P`, `--claims FILE`) are still read for one
# release, with a deprecation note on stderr; a count is `-n/--count` (generate, demo).

DEPRECATED = "deprecated: {old} will be removed in the next release; write {new}"


def deprecation_note(command: str, old: str, new: str) -> None:
    """One line on stderr: the old spelling still works, and which one replaces it."""
    print(f"yibao {command}: " + DEPRECATED.format(old=old, new=new), file=sys.stderr)


def add_policy_and_claims(parser, policies: int = 1, claims: str = "+") -> None:
    """Positional POLICY (or POLICY_A POLICY_B when ``policies`` is 2) then CLAIMS (``claims``:
    "1", "2" or "+" files), plus the hidden old flags. ``resolve_operands`` (called by the CLI
    after parsing) sets ``args.policy`` (a name, or a list of two) and ``args.claims`` (a
    path, or a list when several are allowed)."""
    import argparse
    names = ["POLICY"] if policies == 1 else ["POLICY_A", "POLICY_B"]
    shown = {"1": "CLAIMS", "2": "CLAIMS CLAIMS", "+": "CLAIMS [CLAIMS ...]"}[claims]
    parser.usage = f"%(prog)s {' '.join(names)} {shown} [options]"
    parser.add_argument("operands", nargs="*", metavar=" ".join(names + ["CLAIMS"]),
                        help=("the policy: a city folder, a policy file or a bundled city's "
                              "name" if policies == 1 else
                              "the current policy, then the changed one (each a folder, a "
                              "file or a bundled city's name)")
                        + "; then the claims: Parquet file(s) or folder(s), or an Arrow IPC file")
    parser.add_argument("--policy", dest="old_policy", action="append", default=None,
                        help=argparse.SUPPRESS)
    parser.add_argument("--claims", dest="old_claims", action="append", default=None,
                        help=argparse.SUPPRESS)
    parser.set_defaults(operand_shape=(policies, claims))


def resolve_operands(args, parser) -> None:
    """Split ``args.operands`` into ``args.policy`` and ``args.claims`` by the command's
    shape; an old ``--policy``/``--claims`` flag supplies its part (with a deprecation note)
    and the operands the rest. A wrong count is a usage error of this command (exit 2)."""
    shape = getattr(args, "operand_shape", None)
    if shape is None:
        return
    policies, claims = shape
    operands = list(args.operands)
    policy = _old_or_operands(args, operands, policies)
    found = operands  # what the policies left: the claims
    if args.old_claims:
        deprecation_note(args.command, "--claims FILE", "the claims as positional operands "
                         "after the policy")
        found = args.old_claims + operands
    want = {"1": (1, 1), "2": (2, 2), "+": (1, None)}[claims]
    if len(policy) != policies or len(found) < want[0] or (want[1] and len(found) > want[1]):
        parser.error(f"expected {parser.usage.replace('%(prog)s ', '').split(' [options]')[0]}"
                     f" (got {len(policy)} polic{'y' if len(policy) == 1 else 'ies'} and "
                     f"{len(found)} claims operand(s))")
    args.policy = policy[0] if policies == 1 else policy
    args.claims = found[0] if claims == "1" else found


def _old_or_operands(args, operands, count) -> list:
    """The policies from the old ``--policy`` flag (with a deprecation note), else the first
    ``count`` operands (removed from ``operands``)."""
    if args.old_policy:
        usage = args.command_parser.usage.replace("%(prog)s", f"yibao {args.command}")
        what = "the policy as the first operand" if count == 1 else \
            "the two policies as the first operands"
        deprecation_note(args.command, "--policy POLICY",
                         f"{what} ({usage.split(' [options]')[0]})")
        return list(args.old_policy)
    taken = operands[:count]
    del operands[:count]
    return taken


def add_count(parser, default: int, help: str) -> None:
    """``-n/--count N``; the old ``--claims N`` still read for a release (deprecation note)."""
    import argparse
    parser.add_argument("-n", "--count", type=int, default=None, help=f"{help} (default: "
                        f"{default:,})")
    parser.add_argument("--claims", dest="old_count", type=int, default=None,
                        help=argparse.SUPPRESS)
    parser.set_defaults(count_default=default)


def resolve_count(args) -> None:
    """``args.count`` from ``-n/--count``, else from the old ``--claims N`` (with a note),
    else the command's default."""
    if not hasattr(args, "count_default"):
        return
    if args.old_count is not None:
        deprecation_note(args.command, "--claims N", "-n/--count N")
        if args.count is None:
            args.count = args.old_count
    if args.count is None:
        args.count = args.count_default

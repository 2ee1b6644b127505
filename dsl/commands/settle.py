"""`yibao settle POLICY CLAIMS… --out results/`: settle claim files into a results folder.

Writes claims.parquet, rejects.parquet, summary.json and manifest.json (core/runner.py), and
for a policy with provider payment hospitals.parquet and pools.parquet, all published together
when the run is complete, in bounded memory when the input is larger than ``--memory-limit``.
Exit codes: 0 settled, 1 settled with rejected rows, 2 could not run (nothing is published
then; this includes another run holding the same ``--out``).
"""
from __future__ import annotations

import re
import sys

NAME = "settle"
HELP = "settle claim files (Parquet or Arrow IPC) under a policy into a results folder"

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_size(text: str) -> int:
    """Bytes from ``4G``, ``512M``, ``1.5GB`` or a plain number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*", text.upper())
    if not m:
        raise ValueError(f"memory size {text!r}: write e.g. 4G, 512M or 1500000000")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_arguments(parser):
    from ._common import add_cache_option, add_policy_and_claims
    # a city folder: every *.yb in it is a version, each claim settled under the one in force
    # on its discharge date
    add_policy_and_claims(parser, claims="+")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument("--memory-limit", type=memory_size, default=None,
                        help="settle partition by partition above this size, e.g. 4G "
                             "(default: half the machine's memory)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--partitions", type=positive_int, default=None,
                        help="force this many partitions (default: from the memory limit)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace results already in the output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--key-index", action="store_true",
                        help="also write the key index `yibao explain --run OUT` reads, so "
                             "explaining a claim reads only its person's rows (in-memory "
                             "runs; ≈ 80 bytes a claim in OUT)")
    parser.add_argument("--names", choices=("yibao", "national"), default="yibao",
                        help="claims.parquet column names: yibao's (layer names, int64 fen) or "
                             "the national settlement list's (setl_id, psn_no, hifp_pay …, "
                             "yuan as decimal(16,2); docs/outputs.md)")
    add_cache_option(parser)


def run(args) -> int:
    ahead = _read_ahead(args)  # first: the input decodes while the policy compiles
    try:
        return _run(args, ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _read_ahead(args):
    """core/read_ahead.py's reader of the claims, for a local run not forced into
    partitions (None otherwise, and with ``YIBAO_THREADS=1``)."""
    import os
    if (args.engine != "local" or args.partitions is not None
            or os.environ.get("YIBAO_THREADS", "2") == "1"):
        return None
    from yibao.core.read_ahead import ReadAhead
    from ._policies import policy_words
    return ReadAhead(_claims(args), args.memory_limit, policy_words(args.policy))


def _claims(args):
    return args.claims[0] if len(args.claims) == 1 else args.claims


def _run(args, ahead) -> int:
    from yibao.core.arrow_io import ClaimsError
    from yibao.core.manifest import OutputBusyError
    from yibao.core.partition import PartitionError
    from yibao.core.runner import BalanceError, InputError, run_settle
    from yibao.core.settlement import VersionError
    from yibao.plugins.manager import PluginError
    from ._common import console, registry, use_cache
    from ._policies import load_policy, resolve_policy
    try:
        reg = registry(args.policy)  # yibao's own plugins and those the policy declares
    except PluginError as exc:
        print(f"yibao settle: error: {exc}", file=sys.stderr)
        return 2
    # every *.yb of the folder is a version
    policy = load_policy(args.policy, reg, cache=use_cache(args))
    if policy is None:
        return 2
    try:
        summary = run_settle(policy, _claims(args), args.out, registry=reg,
                             memory_limit=args.memory_limit, engine=args.engine,
                             overwrite=args.overwrite, progress=not args.no_progress,
                             policy_path=resolve_policy(args.policy), partitions=args.partitions,
                             names=getattr(args, "names", "yibao"), read_ahead=ahead,
                             key_index=getattr(args, "key_index", False))
    except (InputError, ClaimsError, PartitionError, BalanceError, FileExistsError,
            OutputBusyError, ImportError, VersionError) as exc:
        print(f"yibao settle: error: {exc}", file=sys.stderr)
        return 2
    print_run(summary, console(), args.out)
    from ._common import all_rejected_hint
    import dataclasses
    span = dataclasses.replace(policy.first, effective_to=policy.last.effective_to)
    hint = all_rejected_hint(span, summary.totals.settled_rows, summary.totals.reasons)
    if hint:
        print(hint, file=sys.stderr)
    return summary.exit_code


def print_run(summary, out, folder) -> None:
    from .summary import print_summary
    t = summary.totals
    print_summary({"policy": summary.policy, "settled": t.settled_rows,
                   "rejected": t.rejected_rows, "layers": t.layers, "labels": summary.labels,
                   "self_pay": t.self_pay, "seconds": summary.seconds,
                   "input_rows": t.input_rows}, out)
    if t.reasons:
        out.print("rejected: " + ", ".join(f"{k} {v:,}" for k, v in t.reasons.items()))
    if summary.pools:  # provider payment: the year's settlement by pools
        hospitals = sum(p["hospitals"] for p in summary.pools.values())
        out.print(f"provider payment: {len(summary.pools)} pool(s), {hospitals} hospital "
                  f"row(s) in {folder}/hospitals.parquet, pools.parquet")
    if summary.supervision:  # flags: per rule, in flags.parquet
        counts = summary.supervision["flags"]
        each = ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"
        out.print(f"supervision: {sum(counts.values()):,} flag(s) ({each}) in "
                  f"{folder}/flags.parquet, hospital_indicators.parquet")
    out.print(f"{summary.mode} ({summary.engine}, {summary.partitions} partition(s)); "
              f"results in {folder}/")

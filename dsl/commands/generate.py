"""`yibao generate`: synthetic claims in the claim-record schema, deterministic per seed."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from yibao.core.errors import YibaoError

NAME = "generate"
HELP = "generate synthetic claims (Parquet), the same bytes for the same --seed"
CLAIMS_FILE = "claims.parquet"  # what `--out DIR` holds: DIR is then a claims operand

# `--out` names a folder on every command (settle, calibrate, generate). A name with one of
# these endings is a file the user meant to write, and Parquet under it would be mislabelled.
FILE_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".xlsx", ".xls", ".arrow", ".ipc",
                 ".feather", ".gz", ".zip", ".html"}


def add_arguments(parser):
    from ._common import add_count
    add_count(parser, 100_000, "number of claims")
    parser.add_argument("--out", required=True,
                        help=f"output folder: writes {CLAIMS_FILE} in it (the folder is then "
                             "the claims operand of settle, explain, diff)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-year", type=int, default=2024,
                        help="first year of discharge dates (default: 2024)")
    parser.add_argument("--years", type=int, default=1,
                        help="policy years covered from --start-year")


def output_file(out: str) -> Path:
    """The Parquet file ``--out`` stands for: ``out/claims.parquet``. The previous release
    took a file name; ``x.parquet`` is still written as that file (with a deprecation note),
    and any other file-like name (``x.csv``) is refused rather than filled with Parquet."""
    from ._common import deprecation_note
    path = Path(out)
    if path.suffix.lower() == ".parquet" and not path.is_dir():
        deprecation_note("generate", "--out FILE.parquet", f"--out FOLDER (writes "
                         f"FOLDER/{CLAIMS_FILE})")
        return path
    if path.is_file() or path.suffix.lower() in FILE_SUFFIXES:
        raise UsageRefused(f"--out names a folder (claims are written to FOLDER/{CLAIMS_FILE} "
                           f"as Parquet); {out} looks like a {path.suffix or 'plain'} file")
    path.mkdir(parents=True, exist_ok=True)
    return path / CLAIMS_FILE


class UsageRefused(YibaoError, ValueError):
    """An ``--out`` that cannot hold the claims: exit 2, one line."""


def run(args) -> int:
    from yibao.core.generate import generate_claims, write_claims
    if args.count < 0:
        print("yibao generate: error: -n/--count must be >= 0", file=sys.stderr)
        return 2
    start = time.perf_counter()
    if not 1900 <= args.start_year <= 9999 or args.years < 1:
        print("yibao generate: error: --start-year must be 1900..9999 and --years >= 1",
              file=sys.stderr)
        return 2
    try:
        target = output_file(args.out)
    except UsageRefused as exc:
        print(f"yibao generate: error: {exc}", file=sys.stderr)
        return 2
    table = generate_claims(args.count, seed=args.seed, start_year=args.start_year,
                            years=args.years)
    write_claims(table, target)
    print(f"wrote {table.num_rows:,} claims to {target} in {time.perf_counter() - start:.1f}s")
    return 0

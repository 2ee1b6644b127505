"""`yibao generate`: synthetic claims in the claim-record schema, deterministic per seed."""
from __future__ import annotations

import sys
import time

NAME = "generate"
HELP = "generate synthetic claims (Parquet), the same bytes for the same --seed"


def add_arguments(parser):
    parser.add_argument("--claims", type=int, default=100_000, help="number of claims")
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-year", type=int, default=2024,
                        help="first year of discharge dates (default: 2024)")
    parser.add_argument("--years", type=int, default=1,
                        help="policy years covered from --start-year")


def run(args) -> int:
    from yibao.core.generate import generate_claims, write_claims
    if args.claims < 0:
        print("yibao generate: error: --claims must be >= 0", file=sys.stderr)
        return 2
    start = time.perf_counter()
    if not 1900 <= args.start_year <= 9999 or args.years < 1:
        print("yibao generate: error: --start-year must be 1900..9999 and --years >= 1",
              file=sys.stderr)
        return 2
    table = generate_claims(args.claims, seed=args.seed, start_year=args.start_year,
                            years=args.years)
    write_claims(table, args.out)
    print(f"wrote {table.num_rows:,} claims to {args.out} in {time.perf_counter() - start:.1f}s")
    return 0

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
    parser.add_argument("--years", type=int, default=1, help="policy years covered from 2024")


def run(args) -> int:
    from yibao.core.generate import generate_claims, write_claims
    if args.claims < 0:
        print("yibao generate: --claims must be >= 0", file=sys.stderr)
        return 2
    start = time.perf_counter()
    table = generate_claims(args.claims, seed=args.seed, years=args.years)
    write_claims(table, args.out)
    print(f"wrote {table.num_rows:,} claims to {args.out} in {time.perf_counter() - start:.1f}s")
    return 0

#!/usr/bin/env bash
# Issue 14's whole target table from one run (benchmarks/table.py; ~10 min on 2 cores):
#   bash benchmarks/run_table.sh            # Markdown table on stdout, progress on stderr
# Sizes: YIBAO_TABLE_CLAIMS (2000000), YIBAO_TABLE_PROVIDER (1000000), YIBAO_TABLE_MEMORY
# (2000000); YIBAO_TABLE_ROUNDS (2) alternating rounds per pair, the best of each kept
# (YIBAO_TABLE_WHOLE_ROUNDS (4) for the whole-process and partitioned rows).
# One row or a few: YIBAO_TABLE_ROWS=whole_process,provider (JSON on stdout then).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" benchmarks/table.py "$@"

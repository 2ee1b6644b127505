"""The one base of every error yibao raises on purpose, and the exit code it carries.

A command catches ``YibaoError`` once, prints its message on one line and exits with
``exit_code``; anything else is an unexpected failure with a code of its own (dsl/cli.py).
Subclasses keep the built-in base they had (``ValueError``, ``LookupError`` …) as a second
parent, so ``except ValueError`` in a caller still works.

Exit codes (as linters use them, docs/cli.md):
  0 clean · 1 findings (policy errors, failed cases, rejected rows) · 2 usage error or could
  not run (bad input, busy output folder, unbalanced totals) · 70 an unexpected failure
  (EX_SOFTWARE of sysexits.h), the traceback only under YIBAO_DEBUG=1.
"""
from __future__ import annotations

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_CANNOT_RUN = 2
EXIT_UNEXPECTED = 70


class YibaoError(Exception):
    """An error a user can act on: the message says what is wrong and where."""
    exit_code: int = EXIT_CANNOT_RUN

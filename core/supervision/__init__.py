"""Fund supervision (医保基金监管): a policy's ``flag`` rules over a whole settled batch.

Entry points, one per evaluator, the same contract:

- ``evaluate(policy, claims, results)``: the vectorised evaluator (``compute.py``);
- ``evaluate(policy, claims, results, reference=True)``: the plain-Python oracle
  (``reference.py``, which imports nothing from ``compute.py``).

Both return a ``Supervised``: ``flags`` (one row per flag, ``stays.FLAG_SCHEMA``, sorted by
rule, hospital, group, claim), ``indicators`` (one row per hospital,
``stays.INDICATOR_SCHEMA``) and ``held`` (claim_id, pending_review: the fund payment a flag
with ``effect review`` holds). ``claims`` are the claims the results came from (any order, a
superset is fine); ``results`` are ``engine.settle`` / ``reference.settle`` results (the
provider payment's ``group`` column is the DRG the group rules read). Supervision runs after
settlement over the whole batch, so city figures are the batch's and flags never depend on
row order or partitioning. docs/supervision.md states every rule.
"""
from __future__ import annotations

from dataclasses import dataclass

from .plan import SUPERVISION_VERSION, SupervisionFlag, Supervision  # noqa: F401

# Names of ``stays`` (pyarrow, numpy) read from here on first use (PEP 562): the compiler's
# check_flags pass imports ``supervision.plan``, which runs this file, and compiling a policy
# needs no Arrow (docs/cli.md, start-up).
STAYS_NAMES = ("FLAG_SCHEMA", "INDICATOR_SCHEMA", "PENDING", "SupervisionError", "build_stays",
               "held_for_review", "stay_columns", "with_pending_review")


def __getattr__(name):
    if name not in STAYS_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import stays
    return getattr(stays, name)


@dataclass(frozen=True)
class Supervised:
    flags: pa.Table
    indicators: pa.Table
    held: pa.Table  # claim_id, pending_review (fen)

    def apply(self, results: pa.Table) -> pa.Table:
        """``results`` with the ``pending_review`` column (the review effect)."""
        from .stays import with_pending_review
        return with_pending_review(results, self.held)


def supervision_of(policy):
    """The supervision part the run evaluates: the earliest version's (as the provider
    payment's), or None."""
    from yibao.core.policy import Policy
    return getattr(Policy.of(policy).first, "supervision", None)


def evaluate(policy, claims: pa.Table, results: pa.Table, reference: bool = False,
             rows=None):
    """Supervised of one batch, or None when the policy has no flags. ``rows``: the claims
    row of each result when known (``BatchResult.rows``), which spares looking up every
    claim id (stays.build_stays)."""
    sup = supervision_of(policy)
    if sup is None or not sup.flags:
        return None
    from .stays import build_stays, held_for_review
    table = build_stays(sup, claims, results, rows)
    if reference:
        from .reference import evaluate as run
    else:
        from .compute import evaluate as run
    flags, indicators = run(sup, table)
    return Supervised(flags, indicators, held_for_review(table, flags))


def flag_counts(flags: pa.Table) -> dict:
    """rule -> number of flag rows, in rule order (summary.json, ``yibao demo``)."""
    import pyarrow.compute as pc
    if flags.num_rows == 0:
        return {}
    counts = pc.value_counts(flags.column("rule").combine_chunks())
    found = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    return {k: found[k] for k in sorted(found)}


def summary(supervised: "Supervised") -> dict:
    """The summary.json part: flags per rule, and what the review effect holds."""
    import pyarrow.compute as pc
    from .stays import PENDING
    held = supervised.held.column(PENDING)
    return {"flags": flag_counts(supervised.flags), "held_claims": supervised.held.num_rows,
            "pending_review": int(pc.sum(held).as_py() or 0) if len(held) else 0,
            "hospitals": supervised.indicators.num_rows}

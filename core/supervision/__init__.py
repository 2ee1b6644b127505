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

import pyarrow as pa
import pyarrow.compute as pc

from .plan import SUPERVISION_VERSION, SupervisionFlag, Supervision  # noqa: F401
from .stays import (FLAG_SCHEMA, INDICATOR_SCHEMA, PENDING, SupervisionError,  # noqa: F401
                    build_stays, held_for_review, stay_columns, with_pending_review)


@dataclass(frozen=True)
class Supervised:
    flags: pa.Table
    indicators: pa.Table
    held: pa.Table  # claim_id, pending_review (fen)

    def apply(self, results: pa.Table) -> pa.Table:
        """``results`` with the ``pending_review`` column (the review effect)."""
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
    table = build_stays(sup, claims, results, rows)
    if reference:
        from .reference import evaluate as run
    else:
        from .compute import evaluate as run
    flags, indicators = run(sup, table)
    return Supervised(flags, indicators, held_for_review(table, flags))


def flag_counts(flags: pa.Table) -> dict:
    """rule -> number of flag rows, in rule order (summary.json, ``yibao demo``)."""
    if flags.num_rows == 0:
        return {}
    counts = pc.value_counts(flags.column("rule").combine_chunks())
    found = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    return {k: found[k] for k in sorted(found)}


def summary(supervised: "Supervised") -> dict:
    """The summary.json part: flags per rule, and what the review effect holds."""
    held = supervised.held.column(PENDING)
    return {"flags": flag_counts(supervised.flags), "held_claims": supervised.held.num_rows,
            "pending_review": int(pc.sum(held).as_py() or 0) if len(held) else 0,
            "hospitals": supervised.indicators.num_rows}

"""Versions in force: several plans of one policy, each with its effective date range.

Each claim is settled under the version in force on its ``discharge_date`` (the settlement
date), so settling last year's claims under last year's rules gives last year's answers.

Accumulators and version changes. Deductibles, caps, bands and self-pay limits accumulate per
key per policy year. Versions normally change at a policy-year boundary; then no accumulator
can span two versions and each version's claims are settled as their own batch — exactly what
one batch under one policy would give. A version that starts *mid-year* is settled the same
way as long as no accumulator key (person, family …) has claims of one policy year under two
versions: their accumulators never meet, so the answer is again exact. When some key does
have such claims, its yearly accumulators would have to carry over from one version's rules
to the next, which the engine does not do; ``settle_versions`` refuses the batch with a
``VersionError`` naming the key, the year and the versions, rather than restart the key's
deductible and caps silently at the change.

Versions must tile time: sorted by ``effective_from``, each starts the day after the previous
ends. A gap or an overlap is a ``VersionError`` here (the compiler reports it with file:line,
``yibao.dsl.versions``). Claims outside every version are rejected ``outside_policy_period``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, as_table
from .describe import format_date
from .engine import BatchResult, settle_batch
from .lower import key_values, policy_years
from .plan import Plan


class VersionError(ValueError):
    """Versions that do not tile time, or a batch whose accumulators would span a mid-year
    version change."""


def version_problems(plans) -> list:
    """[(index of the later plan, "gap"|"overlap", message)] between consecutive versions
    (plans sorted by effective_from); empty when they tile time."""
    out = []
    for i in range(1, len(plans)):
        a, b = plans[i - 1], plans[i]
        if b.effective_from > a.effective_to + 1:
            out.append((i, "gap", f"no version is in force from "
                                  f"{format_date(a.effective_to + 1)} to "
                                  f"{format_date(b.effective_from - 1)}"))
        elif b.effective_from <= a.effective_to:
            out.append((i, "overlap", f"in force from {format_date(b.effective_from)}, but the "
                                      f"previous version runs to {format_date(a.effective_to)}"))
    return out


def check_versions(plans) -> tuple:
    """The plans sorted by effective_from; VersionError on a gap or an overlap."""
    plans = tuple(sorted(plans, key=lambda p: p.effective_from))
    if not plans:
        raise VersionError("no policy version")
    problems = version_problems(plans)
    if problems:
        raise VersionError("; ".join(f"{plans[i].name}: {msg}" for i, _, msg in problems))
    return plans


def version_index(plans, days: np.ndarray) -> np.ndarray:
    """Index of the version in force on each day (plans sorted, tiling); -1 outside all."""
    starts = np.array([p.effective_from for p in plans], dtype=np.int64)
    idx = np.searchsorted(starts, days, side="right") - 1
    ends = np.array([p.effective_to for p in plans], dtype=np.int64)
    ok = (idx >= 0) & (days <= ends[np.clip(idx, 0, None)])
    return np.where(ok, idx, -1)


def discharge_days(claims: pa.Table) -> np.ndarray:
    """discharge_date of every row as days since 1970-01-01 (int64; null -> int64 min)."""
    col = claims.column("discharge_date").combine_chunks()
    days = pc.cast(col, pa.int32()).to_numpy(zero_copy_only=False)
    return np.where(col.is_null().to_numpy(zero_copy_only=False), np.iinfo(np.int64).min,
                    np.nan_to_num(days)).astype(np.int64)


def spanning_keys(plans, claims: pa.Table, which: np.ndarray) -> list:
    """(key, value, policy year, [first, last version index]) for every key with claims of
    one policy year under two or more versions (vectorised: a group-by per key)."""
    years = np.full(len(which), -1, dtype=np.int64)
    days = discharge_days(claims)
    for i, plan in enumerate(plans):
        mask = which == i
        years[mask] = policy_years(days[mask], plan.year_start)
    found, keys = [], {k.name: k for p in plans for k in p.keys()}
    valid = which >= 0
    for key in keys.values():
        if key.column not in claims.column_names:
            continue
        t = pa.table({"v": key_values(claims, key), "y": pa.array(years),
                      "w": pa.array(which)}).filter(pa.array(valid))
        g = t.group_by(["v", "y"]).aggregate([("w", "count_distinct"), ("w", "min"),
                                              ("w", "max")])
        g = g.filter(pc.greater(g.column("w_count_distinct"), 1))
        found += [(key.name, r["v"], r["y"], [r["w_min"], r["w_max"]]) for r in g.to_pylist()]
    return found


def settle_versions(plans, claims, registry=None, context=None) -> BatchResult:
    """Settle each claim under the version in force on its discharge date (see the module
    docstring for accumulators). Results: each version's results in version order (each in
    settlement order), columns unified (a layer a version lacks is null); rejects carry the
    input row numbers of ``claims``."""
    plans = check_versions(plans)
    claims = as_table(claims)
    which = version_index(plans, discharge_days(claims))
    span = spanning_keys(plans, claims, which) if len(plans) > 1 else []
    if span:
        key, value, year, ws = span[0]
        raise VersionError(
            f"{len(span)} key(s) have claims of one policy year under two versions, e.g. "
            f"{key} {str(value).split(chr(31))[-1]!r} in {year} under "
            f"{' and '.join(repr(plans[w].name) for w in ws)}; a mid-year version change "
            "would have to carry yearly accumulators across rules — settle with one version "
            "for that year, or move the change to the policy-year boundary")
    results, rejects = [], [_outside(claims, which)]
    for i, plan in enumerate(plans):
        rows = np.flatnonzero(which == i)
        if not len(rows):
            continue
        batch = settle_batch(plan, claims.take(pa.array(rows)), registry, context)
        results.append(batch.results)
        rej = batch.rejects
        original = pa.array(rows[rej.column("row").to_numpy()] if rej.num_rows else [], pa.int64())
        rejects.append(rej.set_column(1, "row", original))
    return BatchResult(_concat(results, plans), _sorted_rejects(rejects), claims.num_rows)


def _outside(claims: pa.Table, which: np.ndarray) -> pa.Table:
    rows = np.flatnonzero(which < 0)
    ids = claims.column("claim_id").take(pa.array(rows, pa.int64())).to_pylist()
    return pa.table({"claim_id": pa.array(ids, pa.string()), "row": pa.array(rows, pa.int64()),
                     "reason": pa.array(["outside_policy_period"] * len(rows), pa.string()),
                     "message": pa.array(["discharge_date is outside every version of the "
                                          "policy"] * len(rows), pa.string())},
                    schema=REJECT_SCHEMA)


def _concat(results: list, plans) -> pa.Table:
    if not results:
        from .engine import result_schema
        return result_schema(plans[-1]).empty_table()
    return pa.concat_tables(results, promote_options="default")


def _sorted_rejects(parts: list) -> pa.Table:
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, sort_keys=[("row", "ascending")]))

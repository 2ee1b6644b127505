"""Versions in force: several plans of one policy, each with its effective date range.

Each claim is settled under the version in force on its ``discharge_date`` (the settlement
date), so settling last year's claims under last year's rules gives last year's answers.

Accumulators and version changes. Deductibles, caps, bands and self-pay limits accumulate per
key per policy year. Consecutive versions with the same layer *structure* (``structure``: the
same layers in the same order, the same deductible scopes and keys, caps, bands, self-pay
limits and paid() terms; amounts, ratios, tables and conditions may differ) are settled as ONE
kernel program: each claim's claim-only arrays (applies, base, deductible amount, ratio, cap
amounts, limit) are evaluated under the version in force on its discharge date and scattered
into one program whose accumulators are those of the earliest version, so a mid-year change
carries each key's deductible, caps, bands and kept burden across the change. Versions of
different structures are settled as separate batches; if some accumulator key (person,
family …) has claims of one policy year on both sides of such a change, its accumulators
would have to carry across incompatible rules, and ``settle_versions`` refuses the batch with
a ``VersionError`` naming the key, the year and the versions.

Versions must tile time: sorted by ``effective_from``, each starts the day after the previous
ends. A gap or an overlap is a ``VersionError`` here (the compiler reports it with file:line,
``yibao.dsl.versions``). Claims outside every version are rejected ``outside_policy_period``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, _message, as_table, rejects_table
from .describe import format_date
from .engine import (BatchResult, check_invariants, lower_batch, result_schema, run_stages,
                     settle_batch)
from .lower import Program, dense_ids, key_values, policy_years, split_base
from .plan import Bands, Plan


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


def structure(plan: Plan) -> tuple:
    """What the kernel program of a plan looks like apart from its claim-only arrays: layer
    names in order, deductible scope/key/continuing, ratio kind (bands with their boundaries
    and rates, which the kernel holds as constants), caps (scope, key, shared name), self-pay
    limit key, paid() terms of each base, accumulator keys and the policy-year start. Two
    versions with equal structures can be settled as one program."""
    index = {layer.name: i for i, layer in enumerate(plan.layers)}
    layers = []
    for i, layer in enumerate(plan.layers):
        earlier = [l.name for l in plan.layers[:i]]
        ded, r = layer.deductible, layer.ratio
        layers.append((
            layer.name, split_base(layer.base, index, earlier)[1],
            None if ded is None else (ded.scope, ded.key, ded.continuing is not None),
            ("bands", r) if isinstance(r, Bands) else ("ratio" if r is not None else None),
            tuple((c.scope, c.key, c.name) for c in layer.caps),
            None if layer.limit is None else layer.limit.key))
    return tuple(layers), plan.keys(), tuple(plan.year_start)


def structure_groups(plans) -> np.ndarray:
    """Group number of each version (plans sorted): consecutive versions with the same
    structure share a group and are settled as one program."""
    groups = np.zeros(len(plans), dtype=np.int64)
    for i in range(1, len(plans)):
        same = structure(plans[i]) == structure(plans[i - 1])
        groups[i] = groups[i - 1] + (0 if same else 1)
    return groups


def spanning_keys(plans, claims: pa.Table, which: np.ndarray, groups=None) -> list:
    """(key, value, policy year, [first, last version index]) for every key with claims of
    one policy year under two or more versions of different structure groups (``groups``:
    group of each version; default every version its own group). Vectorised: a group-by per
    key."""
    groups = np.arange(len(plans)) if groups is None else np.asarray(groups)
    years = np.full(len(which), -1, dtype=np.int64)
    days = discharge_days(claims)
    for i, plan in enumerate(plans):
        mask = which == i
        years[mask] = policy_years(days[mask], plan.year_start)
    found, keys = [], {k.name: k for p in plans for k in p.keys()}
    valid = which >= 0
    group = np.where(valid, groups[np.clip(which, 0, None)], -1)
    for key in keys.values():
        if key.column not in claims.column_names:
            continue
        t = pa.table({"v": key_values(claims, key), "y": pa.array(years),
                      "g": pa.array(group), "w": pa.array(which)}).filter(pa.array(valid))
        g = t.group_by(["v", "y"]).aggregate([("g", "count_distinct"), ("w", "min"),
                                              ("w", "max")])
        g = g.filter(pc.greater(g.column("g_count_distinct"), 1))
        found += [(key.name, r["v"], r["y"], [r["w_min"], r["w_max"]]) for r in g.to_pylist()]
    return found


def check_spans(plans, claims: pa.Table, which: np.ndarray) -> np.ndarray:
    """The structure group of each version; VersionError when a key has claims of one policy
    year under two versions of different structures."""
    groups = structure_groups(plans)
    span = spanning_keys(plans, claims, which, groups) if groups[-1] > 0 else []
    if span:
        key, value, year, ws = span[0]
        raise VersionError(
            f"{len(span)} key(s) have claims of one policy year under two versions, e.g. "
            f"{key} {str(value).split(chr(31))[-1]!r} in {year} under "
            f"{' and '.join(repr(plans[w].name) for w in ws)}, whose layers differ in "
            "structure (layers, deductible/cap/band/limit kinds or keys); the yearly "
            "accumulators cannot carry across that change — settle with one version for "
            "that year, keep the layer structure the same, or move the change to the "
            "policy-year boundary")
    return groups


def cross_version_duplicates(claims: pa.Table, which: np.ndarray) -> np.ndarray:
    """Mask of rows whose claim id also occurs under another version (each version's batch
    only sees its own duplicates)."""
    t = pa.table({"c": claims.column("claim_id"), "w": pa.array(which)})
    g = t.group_by("c").aggregate([("w", "count_distinct")])
    ids = g.column("c").filter(pc.greater(g.column("w_count_distinct"), 1))
    ids = ids.filter(pc.is_valid(ids))
    if len(ids) == 0:
        return np.zeros(claims.num_rows, dtype=bool)
    return np.asarray(pc.is_in(claims.column("claim_id"), value_set=ids)
                      .to_numpy(zero_copy_only=False), dtype=bool)


def settle_versions(plans, claims, registry=None, context=None) -> BatchResult:
    """Settle each claim under the version in force on its discharge date (see the module
    docstring for accumulators). Results: each structure group's results in version order
    (each in settlement order), columns the union in layer order (a layer a version lacks is
    null); rejects carry the input row numbers of ``claims``."""
    plans = check_versions(plans)
    claims = as_table(claims)
    which = version_index(plans, discharge_days(claims))
    groups = check_spans(plans, claims, which)
    dup = cross_version_duplicates(claims, which) if len(plans) > 1 else None
    results, rejects = [], [_outside(claims, which)]
    if dup is not None and dup.any():
        rejects.append(_duplicates(claims, np.flatnonzero(dup)))
        which = np.where(dup, -2, which)
    for g in range(int(groups[-1]) + 1):
        members = [i for i in range(len(plans)) if groups[i] == g]
        parts = [(plans[i], np.flatnonzero(which == i)) for i in members]
        parts = [(p, rows) for p, rows in parts if len(rows)]
        if not parts:
            continue
        if len(parts) == 1:
            plan, rows = parts[0]
            batch = settle_batch(plan, claims.take(pa.array(rows)), registry, context)
            res, rej = batch.results, _renumber(batch.rejects, rows)
        else:
            res, rej = settle_merged(parts, claims, registry, context)
        results.append(res)
        rejects.append(rej)
    return BatchResult(_concat(results, plans), _sorted_rejects(rejects), claims.num_rows)


def _renumber(rejects: pa.Table, rows: np.ndarray) -> pa.Table:
    local = rejects.column("row").to_numpy()
    return rejects.set_column(1, "row", pa.array(rows[local] if len(local) else [], pa.int64()))


# -- one program over several versions ---------------------------------------------------------

CLAIM_ARRAYS = ("applies", "base_claim", "ded_amount", "ded_continuing", "ratio",
                "limit_amount")


def settle_merged(parts, claims: pa.Table, registry=None, context=None) -> tuple:
    """(results in settlement order, rejects with input rows) of the claims of several
    versions of one structure, settled as one kernel program. ``parts`` is [(plan, input rows
    of its claims)] in version order; the first plan's program gives the accumulators, every
    version's claim-only arrays are evaluated on its own rows (engine.lower_batch) and
    concatenated: versions tile time in order, so the concatenation of each version's rows in
    settlement order is the settlement order of all of them."""
    from .registry import default_registry
    registry = registry or default_registry()
    lows = [(plan, lower_batch(plan, claims.take(pa.array(rows)), registry), rows)
            for plan, rows in parts]
    first = lows[0][0]
    raw = pa.concat_tables([low.prep.raw.take(pa.array(low.order)) for _, low, _ in lows])
    program = _merged_program(first, [low.program for _, low, _ in lows], raw)
    program.run(np.arange(program.n, dtype=np.int64))
    _stop_on_overflow(first, lows, program)
    results = _merged_results(first, lows, program)
    check_invariants(first, results)
    if registry.stages:
        results = run_stages(first, results, raw, registry, context)
    if any(p.provider is not None or p.groupers for p, _ in parts):
        results = _provider_columns(lows, results, raw)
    rejects = [_renumber(rejects_table(low.prep.rejects), rows) for _, low, rows in lows]
    return results, pa.concat_tables(rejects)


def _stop_on_overflow(plan: Plan, lows: list, program: Program) -> None:
    """A claim whose yearly accumulation leaves int64 across versions stops the run, naming
    it (settle_batch rejects such a claim; this merged program does not rebuild its rows)."""
    bad = np.flatnonzero(program.overflow)
    if len(bad) == 0:
        return
    from .engine import SettlementError
    from .money import out_of_range_message
    ids = pa.concat_arrays([low.prep.claim_id.take(pa.array(low.order)).cast(pa.string())
                            for _, low, _ in lows])
    t = int(bad[0])
    layer = plan.layers[int(program.overflow[t]) - 1].name
    raise SettlementError(f"claim {ids[t].as_py()!r}: {out_of_range_message(layer)}")


def _cat(arrays: list, n: int):
    """Concatenate per-version arrays (each over its version's rows)."""
    if arrays[0] is None:
        return None
    return np.ascontiguousarray(np.concatenate(arrays))


def _merged_program(plan: Plan, programs: list, raw: pa.Table) -> Program:
    n = sum(p.n for p in programs)
    template = programs[0]
    keys = [dense_ids(key_values(raw, key)) if n else (np.zeros(0, np.int64), 0)
            for key in plan.keys()]
    prog = Program(plan, n, key_ids=[np.ascontiguousarray(ids) for ids, _ in keys],
                   key_counts=[count for _, count in keys],
                   state_keys=list(template.state_keys),
                   state_offsets=list(template.state_offsets),
                   widths=None if template.widths is None else list(template.widths))
    prog.year = np.ascontiguousarray(np.concatenate([p.year for p in programs]))
    for j, spec in enumerate(template.layers):
        specs = [p.layers[j] for p in programs]
        d = dict(spec)
        for name in CLAIM_ARRAYS:
            d[name] = _cat([_full(s[name], p.n) for s, p in zip(specs, programs)], n)
        d["caps"] = [(kind, _cat([_full(s["caps"][c][1], p.n) for s, p in zip(specs, programs)],
                                 n), state, key)
                     for c, (kind, _, state, key) in enumerate(spec["caps"])]
        d["out_pay"] = np.zeros(n, dtype=np.int64)
        d["out_ded"] = None if spec["out_ded"] is None else np.zeros(n, dtype=np.int64)
        prog.layers.append(d)
    return prog


def _full(a, n: int):
    """A claim array over a version's ``n`` rows; lowering holds a constant as a one-element
    array (the kernel reads element 0 for every row), expanded here because the versions'
    constants differ."""
    if a is None:
        return None
    a = np.asarray(a)
    return np.broadcast_to(a.reshape(-1)[:1], (n,)) if a.ndim == 0 or len(a) == 1 else a


def _merged_results(plan: Plan, lows: list, program: Program) -> pa.Table:
    ids = pa.concat_arrays([low.prep.claim_id.take(pa.array(low.order)).cast(pa.string())
                            for _, low, _ in lows]) if program.n else pa.array([], pa.string())
    total = np.concatenate([np.asarray(low.prep.columns["total"])[low.order]
                            for _, low, _ in lows]).astype(np.int64)
    cols, paid = {"claim_id": ids}, np.zeros(program.n, dtype=np.int64)
    for layer, spec in zip(plan.layers, program.layers):
        paid += spec["out_pay"]
        cols[layer.name] = pa.array(spec["out_pay"])
        if spec["out_ded"] is not None:
            cols[f"{layer.name}_deductible"] = pa.array(spec["out_ded"])
    cols["self_pay"] = pa.array(total - paid)
    return pa.table(cols, schema=result_schema(plan))


def _provider_columns(lows: list, results: pa.Table, raw: pa.Table) -> pa.Table:
    """Provider payment (grouping, points) of each version's claims under its own plan."""
    from .provider import append_claim_columns
    pieces, at = [], 0
    for plan, low, _ in lows:
        n = low.prep.n
        pieces.append(append_claim_columns(plan, results.slice(at, n), raw.slice(at, n)))
        at += n
    return pa.concat_tables(pieces, promote_options="default")


def _outside(claims: pa.Table, which: np.ndarray) -> pa.Table:
    rows = np.flatnonzero(which < 0)
    ids = claims.column("claim_id").take(pa.array(rows, pa.int64())).to_pylist()
    return pa.table({"claim_id": pa.array(ids, pa.string()), "row": pa.array(rows, pa.int64()),
                     "reason": pa.array(["outside_policy_period"] * len(rows), pa.string()),
                     "message": pa.array(["discharge_date is outside every version of the "
                                          "policy"] * len(rows), pa.string())},
                    schema=REJECT_SCHEMA)


def _duplicates(claims: pa.Table, rows: np.ndarray) -> pa.Table:
    ids = claims.column("claim_id").take(pa.array(rows, pa.int64())).to_pylist()
    return pa.table({"claim_id": pa.array(ids, pa.string()), "row": pa.array(rows, pa.int64()),
                     "reason": pa.array(["duplicate_claim_id"] * len(rows), pa.string()),
                     "message": pa.array([_message("duplicate_claim_id", "claim_id", c)
                                          for c in ids], pa.string())}, schema=REJECT_SCHEMA)


def union_schema(plans) -> pa.Schema:
    """The result columns of several versions: claim_id, every layer's columns in layer order
    (a layer first seen in a later version goes after the layers it follows), self_pay."""
    names, types = [], {}
    for plan in plans:
        schema = result_schema(plan)
        at = 0
        for f in schema:
            if f.name in types:
                at = names.index(f.name) + 1
                continue
            names.insert(at, f.name)
            types[f.name] = f.type
            at += 1
    return pa.schema([pa.field(n, types[n]) for n in names])


def _concat(results: list, plans) -> pa.Table:
    schema = union_schema(plans)
    if not results:
        return schema.empty_table()
    table = pa.concat_tables(results, promote_options="default")
    for f in schema:
        if f.name not in table.column_names:  # a layer only versions without claims have
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names + [n for n in table.column_names if n not in schema.names])


def _sorted_rejects(parts: list) -> pa.Table:
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, sort_keys=[("row", "ascending")]))

"""What both backends of a settle share, owned by neither: the result schema, the settlement
invariants, plugin validators and stages, reject builders, and choosing the version of each
claim.

The kernel (core/engine.py) and the oracle (core/reference.py) each have one entry point,
``settle(policy, claims, registry)``; both call into this module for everything that is not
the arithmetic of a settlement, so the oracle checks the engine without importing it.

Versions in force. Each claim is settled under the version in force on its
``discharge_date`` (the settlement date). Versions must tile time: sorted by
``effective_from``, each starts the day after the previous ends; a gap or an overlap is a
``VersionError`` (the compiler reports it with file:line, ``yibao.dsl.versions``). Claims
outside every version are rejected ``outside_policy_period``; a claim id under two versions is
rejected ``duplicate_claim_id`` (each version's batch only sees its own duplicates).

Accumulators across a version change. Deductibles, caps, bands and self-pay limits accumulate
per key per policy year. Consecutive versions with the same layer *structure* (``structure``)
carry every key's accumulators across a mid-year change. If some key has claims of one policy
year under versions of different structures, its accumulators would have to carry across
incompatible rules, and the settle refuses the batch (``check_spans``, a ``VersionError``
naming the key, the year and the versions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow_io import REJECT_SCHEMA, ClaimsError, Prepared, _message, reject_more
from .claim_rules import null_checked, overpaid_message
from .errors import YibaoError
from .lower import key_values, policy_years, split_base
from .plan import Bands, Plan
from .policy import version_problems  # noqa: F401  (the IR's rule; re-exported)

# -- results and invariants --------------------------------------------------------------------


class SettlementError(ClaimsError):
    """The plan produced a result the settlement contract forbids (a claim paid more than its
    total): a policy bug, so the run stops rather than publish wrong money (exit code 2)."""


def check_invariants(plan: Plan, results: pa.Table) -> None:
    """benefits.md: for every claim Σ payments + self_pay = total with self_pay ≥ 0 (each
    payment is ≥ 0 and ≤ its base by construction). A policy whose bases add up to more than
    the total (e.g. ``base in_scope + total``) breaks it; name the first such claim."""
    if results.num_rows == 0:
        return
    self_pay = results.column("self_pay").to_numpy()
    bad = np.flatnonzero(self_pay < 0)
    if len(bad):
        i = int(bad[0])
        claim = results.column("claim_id")[i].as_py()
        raise SettlementError(overpaid_message(plan.name, len(bad), claim, int(self_pay[i])))


@dataclass
class BatchResult:
    results: pa.Table  # accepted claims, settlement order
    rejects: pa.Table  # rejected rows, input row order
    input_rows: int
    rows: object = None  # int64 ndarray, the input row of each result, when the path knows it


# What a settlement system joins the per-claim results on, after ``claim_id``: the person,
# the hospital (when the claims have one) and the discharge date (the settlement date), under
# the claims' own names and in their (normalised, arrow_io.normal_table) types.
IDENTITY = ("person_id", "hospital_id", "discharge_date")


def identity_fields(claims_schema: pa.Schema) -> list:
    """The identity fields the claims carry, in ``IDENTITY`` order; a column read as
    dictionary codes (``hospital_id``: arrow_io.CODED_COLUMNS) is text in the results, as it
    was before it was read so (its gather decodes it: engine._identity_in_order)."""
    return [_decoded_field(claims_schema.field(n)) for n in IDENTITY if n in claims_schema.names]


def _decoded_field(field: pa.Field) -> pa.Field:
    if pa.types.is_dictionary(field.type):
        return field.with_type(field.type.value_type)
    return field


def with_identity(results: pa.Table, claims_in_order: pa.Table) -> pa.Table:
    """``results`` with the identity columns of ``claims_in_order`` (row i: the claim of
    result row i) inserted after ``claim_id``. An empty batch gets the columns too, so every
    piece of a run has one schema."""
    for at, field in enumerate(identity_fields(claims_in_order.schema), start=1):
        column = claims_in_order.column(field.name)
        if column.type != field.type:  # still dictionary codes (the reference's own take)
            column = column.cast(field.type)
        results = results.add_column(at, field, column)
    return results


def result_schema(plan: Plan) -> pa.Schema:
    fields = [pa.field("claim_id", pa.string())]
    for layer in plan.layers:
        fields.append(pa.field(layer.name, pa.int64()))
        if layer.deductible is not None:
            fields.append(pa.field(f"{layer.name}_deductible", pa.int64()))
    fields.append(pa.field("self_pay", pa.int64()))
    return pa.schema(fields)


def required_columns(plans) -> set:
    """The result columns no row of a run under ``plans`` (its versions) ever has null, by
    the contract, never by the data: ``claim_id`` (a null id is rejected), the identity
    columns every version rejects a null of (``claim_rules.null_checked``: ``person_id``
    always, ``discharge_date`` as compiled policies always read it; ``hospital_id`` only
    where every version reads it, not as a key), and the money columns every version
    computes (a layer of only some versions is null for the claims of the others:
    ``concat_results``)."""
    plans = list(plans)
    computed = set.intersection(*(set(result_schema(p).names) for p in plans))
    checked = set.intersection(*(set(null_checked(p)) for p in plans))
    return computed | {"claim_id"} | (checked & set(IDENTITY))


def settled_file_schema(plans, schema: pa.Schema) -> pa.Schema:
    """``schema`` (a run's results) as claims.parquet stores it: ``required_columns`` not
    nullable (Parquet REQUIRED: no definition levels to write or read; issue 14, w20: 2M
    reference results, the writer's CPU 0.32 -> 0.275 s), every other column as it is
    (a plugin stage's, a provider payment's). A reader of files written before, where every
    column is OPTIONAL, reads them together with these (docs/outputs.md)."""
    required = required_columns(plans)
    return pa.schema([f.with_nullable(False) if f.name in required else f for f in schema],
                     metadata=schema.metadata)


class AsWritten:
    """A run's results as claims.parquet stores them under yibao's names: cast to
    ``settled_file_schema`` (worked out once per results schema)."""

    def __init__(self, plans):
        self.plans, self.schemas = list(plans), {}

    def __call__(self, results: pa.Table) -> pa.Table:
        schema = self.schemas.get(results.schema)
        if schema is None:
            schema = self.schemas[results.schema] = settled_file_schema(self.plans,
                                                                        results.schema)
        return results.cast(schema)


def run_validators(plan: Plan, prep: Prepared, registry) -> Prepared:
    """Plugin claim checks, in registration order; flagged rows go to the rejects."""
    for v in registry.validators:
        try:
            mask, messages = v.check(plan, prep.columns, prep.raw, prep.n)
        except Exception as exc:
            raise RuntimeError(f"plugin {v.plugin!r}: validator {v.name!r} failed: {exc}") from exc
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            if isinstance(messages, str):
                messages = [messages] * int(mask.sum())
            prep = reject_more(prep, mask, v.reason, list(messages))
    return prep


def run_stages(plan: Plan, results: pa.Table, claims: pa.Table, registry, context,
               reference=False) -> pa.Table:
    """Plugin stages after the layers: each adds its columns to the results."""
    for stage in registry.stages:
        fn = stage.reference if reference and stage.reference else stage.run
        try:
            added = fn(plan, results, claims, context or {})
        except Exception as exc:
            raise RuntimeError(f"plugin {stage.plugin!r}: stage {stage.name!r} failed: {exc}") \
                from exc
        if added is None:  # the run gave the stage nothing to do (e.g. no balances table)
            continue
        for name, typ in stage.columns:
            results = results.append_column(pa.field(name, typ), pa.array(added[name], typ))
    return results


def with_fen_total(claims: pa.Table, total_fen) -> pa.Table:
    """``claims`` with ``total`` replaced by the prepared int64 fen (same rows, same order):
    the provider part reads ``total`` from the claims, and given decimal yuan it would read
    yuan as fen (results never depend on the input's Arrow types)."""
    if "total" not in claims.column_names:
        return claims
    i = claims.schema.get_field_index("total")
    return claims.set_column(i, pa.field("total", pa.int64()),
                             pa.array(np.asarray(total_fen, dtype=np.int64), pa.int64()))


# -- versions in force -------------------------------------------------------------------------


class VersionError(YibaoError, ValueError):
    """Versions that do not tile time, or a batch whose accumulators would span a mid-year
    version change."""


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


@dataclass
class VersionChoice:
    """The version of every input row: ``which[i]`` is the index of the version row ``i`` is
    settled under, or negative when it is rejected here (``rejects``, input row numbers):
    -1 outside every version, -2 a claim id under two versions. ``groups`` is the structure
    group of each version (equal groups carry accumulators across)."""
    which: np.ndarray
    groups: np.ndarray
    rejects: list


def choose_versions(plans, claims: pa.Table) -> VersionChoice:
    """Choose the version of each claim of ``claims`` (plans sorted and tiling: a Policy's
    versions); VersionError when a key's policy year spans versions of different
    structures."""
    which = version_index(plans, discharge_days(claims))
    groups = check_spans(plans, claims, which)
    rejects = [outside_rejects(claims, which)]
    dup = cross_version_duplicates(claims, which) if len(plans) > 1 else None
    if dup is not None and dup.any():
        rejects.append(duplicate_rejects(claims, np.flatnonzero(dup)))
        which = np.where(dup, -2, which)
    return VersionChoice(which, groups, rejects)


# -- rejects -----------------------------------------------------------------------------------


def renumber_rejects(rejects: pa.Table, rows: np.ndarray) -> pa.Table:
    """``rejects`` of a batch of some input rows, their row numbers those of the input."""
    local = rejects.column("row").to_numpy()
    return rejects.set_column(1, "row", pa.array(rows[local] if len(local) else [], pa.int64()))


def outside_rejects(claims: pa.Table, which: np.ndarray) -> pa.Table:
    rows = np.flatnonzero(which < 0)
    ids = claims.column("claim_id").take(pa.array(rows, pa.int64())).to_pylist()
    return pa.table({"claim_id": pa.array(ids, pa.string()), "row": pa.array(rows, pa.int64()),
                     "reason": pa.array(["outside_policy_period"] * len(rows), pa.string()),
                     "message": pa.array(["discharge_date is outside every version of the "
                                          "policy"] * len(rows), pa.string())},
                    schema=REJECT_SCHEMA)


def duplicate_rejects(claims: pa.Table, rows: np.ndarray) -> pa.Table:
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


def concat_results(results: list, plans, claims_schema: pa.Schema) -> pa.Table:
    """The version groups' results as one table: claim_id, the identity columns
    (``claims_schema``'s, see IDENTITY), the union of the layer columns, then any other."""
    union = union_schema(plans)
    schema = pa.schema([union.field(0), *identity_fields(claims_schema), *list(union)[1:]])
    if not results:
        return schema.empty_table()
    table = pa.concat_tables(results, promote_options="default")
    for f in schema:
        if f.name not in table.column_names:  # a layer only versions without claims have
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names + [n for n in table.column_names if n not in schema.names])


def sorted_rejects(parts: list) -> pa.Table:
    table = pa.concat_tables(parts)
    return table.take(pc.sort_indices(table, sort_keys=[("row", "ascending")]))

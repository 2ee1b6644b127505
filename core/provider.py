"""Provider payment end to end: grouping, claim points and the year's settlement by pools.

A plan's provider part is ``Plan.groupers`` (grouping steps, each adding columns) and
``Plan.provider`` (a ``core.points.plan.PointsPlan``). This module runs them over claims:

- ``group_claims(plan, claims)``: the claims with every grouper's output columns (CHS-DRG by
  the nogil kernel, decision tables vectorised); ``group_claims_reference`` does the same with
  the per-claim oracles (``grouping.reference.group_claim``, ``table.group_claim_table``).
- ``claim_columns(plan, claims, reference=False)``: one row per claim in input order with
  ``pool``, ``group``, ``grouping_status``, ``case_class`` and ``points`` (×10^4); a claim in
  no pool has nulls there. Pools are first-match: a claim belongs to the first pool, in
  declared order, whose ``applies`` tests all pass.
- ``provider_partials`` / ``merge_partials`` / ``settle_partials``: per-pool, per-hospital sums
  from one partition of settled claims, their reduction, and the settlement
  (``core.points.settle``) once the global per-pool totals are known.
- ``settle_provider_year(plan, claims, results)``: all three at once for one in-memory batch.
- ``ProviderYear``: the partials of a run accumulated piece by piece (core/runner.py and
  core/spark.py write its ``settle()`` as hospitals.parquet and pools.parquet);
  ``partials_to_json`` / ``partials_from_json`` carry partials between processes.

Patient-paid (``psn_part_amt``, point-method.md §4) is the claim's ``self_pay`` from the
benefit layers; the fund's fee-for-service cost is total − self_pay.

Columns the provider part reads that the claims lack are taken as all null (a test on a null
never passes, a decision-table condition on a null never holds, nobody is signed for
capitation), so claims from a source without, say, ``adl_score`` still settle; their stays
are simply unmatched by rows that need it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .grouping import table as dtable
from .grouping.plan import (ALWAYS_READ, DRG_INPUTS, DrgGrouper, DrgSplit,  # noqa: F401
                            grouper_output)  # the grouper nodes, re-exported from their module
from ._texts import texts_at
from .lazy import lazy_module
from .plan import Plan, register_node  # noqa: F401
from .points import compute as points_compute
from .points import settle as points_settle
from .points.plan import Pool, PointsPlan, Test

# imported when first used: a decision-table policy settled on the kernel path needs neither
# CHS-DRG (its tables, kernel and oracle) nor the points oracle (and core/trace.py with it)
drg = lazy_module("yibao.core.grouping.drg")
drg_reference = lazy_module("yibao.core.grouping.reference")
drg_data = lazy_module("yibao.core.grouping.tables")
points_reference = lazy_module("yibao.core.points.reference")

PATIENT_PAID = "psn_part_amt"  # 个人负担 in the national settlement list

CLAIM_FIELDS = (("pool", pa.string()), ("group", pa.string()), ("grouping_status", pa.string()),
                ("grouping_stopped_at", pa.string()), ("case_class", pa.string()),
                ("points", pa.int64()))
CLAIM_SCHEMA = pa.schema(CLAIM_FIELDS)

# -- grouper plan nodes: core/grouping/plan.py (the compiler builds them without this module)


def status_column(grouper) -> str:
    return f"{grouper_output(grouper)}_status"


def stopped_at(mdc, adrg):
    """Where an ungrouped claim stopped, as one text: ``MDCP/PB1``, ``MDCP`` or null."""
    if mdc is None:
        return adrg
    return f"{mdc}/{adrg}" if adrg is not None else mdc


def _stopped_at_column(out: pa.Table) -> pa.Array:
    mdc, adrg = out.column("stopped_at_mdc"), out.column("stopped_at_adrg")
    joined = pc.binary_join_element_wise(mdc, adrg, "/")
    return pc.coalesce(joined, mdc, adrg).combine_chunks()


def drg_tables(grouper: DrgGrouper):
    if grouper.tables == drg_data.DATA_DIR.name:
        return drg_data.load_tables()
    return drg_data.load_tables(str(drg_data.DATA_DIR.parent / grouper.tables))


# -- columns ---------------------------------------------------------------------------------

def _test_type(test: Test):
    """The Arrow type a provider test reads its column as, from its kind (declared by the
    compiler, or its value's for a hand-built test)."""
    return {"bool": pa.bool_(), "text": pa.string()}.get(test.kind, pa.int64())


def _condition_type(cond):
    if isinstance(cond, (dtable.ProcAny, dtable.ProcAll, dtable.NoProcedure)):
        return pa.list_(pa.string())
    if isinstance(cond, dtable.IntBand):
        return pa.int64()
    if isinstance(cond, dtable.Flag):
        return pa.bool_()
    return pa.string()


def needed_columns(plan: Plan) -> dict:
    """name -> Arrow type of every claim column the provider part reads."""
    out = {"claim_id": pa.string(), "hospital_id": pa.string(), "total": pa.int64()}
    for g in plan.groupers:
        if isinstance(g, DrgGrouper):
            out.update({"principal_dx": pa.string(), "secondary_dx": pa.list_(pa.string()),
                        "procedures": pa.list_(pa.string())})
            out.update({c: pa.int64() for c in (*g.columns, *ALWAYS_READ)})
            for split in g.splits:
                out.update({t.column: _test_type(t) for conj in split.when for t in conj})
        else:
            for row in g.rows:
                out.update({c.column: _condition_type(c) for c in row.conditions})
    produced = {name for g in plan.groupers for name, _ in _outputs(g)}
    for pool in (plan.provider.pools if plan.provider else ()):
        tests = list(pool.applies) + [t for a in pool.adjustments for t in a.when] + [
            t for source in pool.group_sources for t in source.when]
        out.update({t.column: _test_type(t) for t in tests})
        out[pool.coefficient_by] = pa.string()
        if pool.incomplete_column:
            out[pool.incomplete_column] = pa.bool_()
        if pool.bed_day:
            out[pool.bed_day.los_column] = pa.int64()
        if pool.readmission:
            r = pool.readmission
            out.update({r.person_column: pa.string(), r.admit_column: pa.int64(),
                        r.discharge_column: pa.int64()})
        if pool.capitation:
            out[pool.capitation.signed_column] = pa.string()
        if getattr(pool, "prepayments", ()):
            out[pool.month_column] = pa.int64()
    for alliance in (plan.provider.alliances if plan.provider else ()):
        out[alliance.column] = pa.string()  # the resident's 医共体
    return {k: v for k, v in out.items() if k not in produced}


def _outputs(grouper) -> tuple:
    if isinstance(grouper, DrgGrouper):
        return grouper.output_columns()
    return grouper.columns()


def prepared(plan: Plan, claims: pa.Table, decode: bool = True) -> pa.Table:
    """The claims with dictionary columns decoded (unless ``decode`` is False: the kernel
    path tests and looks up a dictionary once per distinct value) and every provider column
    present (absent ones all null, see the module docstring)."""
    cols = {}
    for name in claims.column_names:
        cols[name] = _plain(claims.column(name)) if decode else claims.column(name)
    for name, typ in needed_columns(plan).items():
        if name not in cols:
            cols[name] = pa.nulls(claims.num_rows, typ)
    return pa.table(cols) if cols else claims


def _plain(col):
    """A dictionary column as its values' type; any other as it is."""
    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


# -- grouping --------------------------------------------------------------------------------

def _split_codes(grouper: DrgGrouper, claims: pa.Table, drg: pa.Array, mask_of) -> pa.Array:
    """The DRG codes with the first matching split's suffix appended (grouped claims only)."""
    if not grouper.splits:
        return drg
    suffix = np.full(claims.num_rows, "", dtype=object)
    todo = pc.is_valid(drg).to_numpy(zero_copy_only=False).copy()
    for split in grouper.splits:
        hit = np.zeros(claims.num_rows, bool)
        for conj in split.when:
            hit |= mask_of(claims, conj)
        hit &= todo
        suffix[hit] = split.suffix
        todo &= ~hit
    return pc.binary_join_element_wise(drg, pa.array(suffix, pa.string()), "")


def _with(claims: pa.Table, columns: dict) -> pa.Table:
    for name, values in columns.items():
        if name in claims.column_names:
            claims = claims.drop_columns([name])
        claims = claims.append_column(name, values)
    return claims


def drg_inputs(grouper: DrgGrouper, claims: pa.Table) -> pa.Table:
    """The grouping input ``grouper`` reads from ``claims`` (``_drg_inputs``), for tools that
    show a claim's grouping (``yibao explain``)."""
    return _drg_inputs(grouper, claims)


def _drg_inputs(grouper: DrgGrouper, claims: pa.Table) -> pa.Table:
    """The grouping input: codes, the demographic columns the policy declares, and age in
    days and birth weight whether declared or not (spec §1): the grouper says
    ``missing_age_days`` / ``missing_birth_weight`` when a newborn claim lacks them."""
    n = claims.num_rows
    cols = {c: _plain(claims.column(c)) for c in ("principal_dx", "secondary_dx", "procedures")}
    for c in DRG_INPUTS:
        read = c in grouper.columns or (c in ALWAYS_READ and c in claims.column_names)
        cols[c] = claims.column(c) if read else pa.nulls(n, pa.int32())
    return pa.table(cols)


def run_drg_grouper(g: DrgGrouper, inputs: pa.Table, groupers=None) -> pa.Table:
    """The grouping of ``inputs`` (``_drg_inputs``) by the grouper plugin the policy names
    (``g.by``), from the run's registry (``groupers``: ``Registry.groupers``). None — a bare
    API call without plugins — runs yibao's own CHS-DRG grouper, which is also what the
    builtin plugin registers as ``chs_drg``."""
    if groupers is not None and g.by in groupers:
        return groupers[g.by].run(inputs, g)
    if g.by != "chs_drg":
        from .errors import YibaoError
        raise YibaoError(f"grouper {g.name!r}: no loaded plugin registers the grouper "
                         f"{g.by!r}")
    return drg.group_drg(inputs, drg_tables(g), g.mdc_order)


def group_claims(plan: Plan, claims: pa.Table, groupers=None) -> pa.Table:
    """``prepared`` claims plus every grouper's output columns (kernel groupers), as text;
    ``groupers``: the run's ``Registry.groupers`` (``run_drg_grouper``)."""
    return dtable.decoded(_grouped(plan, claims, groupers))


def _grouped(plan: Plan, claims: pa.Table, groupers=None) -> pa.Table:
    """``group_claims`` as the kernel path reads it: the claims' dictionary columns kept and
    a decision table's group and status as dictionary arrays (``group_table_coded``), so
    pools, points and case classes work on integer codes and each text is built once per
    claim only in the results (``ClaimPieces.columns``)."""
    claims = prepared(plan, claims, decode=False)
    for g in plan.groupers:
        if isinstance(g, DrgGrouper):
            out = run_drg_grouper(g, _drg_inputs(g, claims), groupers)
            claims = _with_drg(g, claims, out, points_compute.test_mask)
        else:
            out = dtable.group_table_coded(g, claims)
            claims = _with(claims, {n: out.column(n) for n, _ in g.columns()})
    return _pool_groups(plan, claims)


def _pool_groups(plan: Plan, claims: pa.Table) -> pa.Table:
    """The grouped claims plus, for every pool reading several groupers, the group its first
    applying source gives (``Pool.group_sources``) under the pool's ``group_column``."""
    for pool in (plan.provider.pools if plan.provider else ()):
        claims = points_compute.with_pool_group(pool, claims)
    return claims


def _pool_groups_reference(plan: Plan, claims: pa.Table) -> pa.Table:
    """``_pool_groups`` by the points oracle, claim by claim."""
    for pool in (plan.provider.pools if plan.provider else ()):
        if pool.group_sources:
            rows = [points_reference.with_group(pool, c) for c in claims.to_pylist()]
            claims = _with(claims, {pool.group_column + sfx: pa.array(
                [r[pool.group_column + sfx] for r in rows], pa.string())
                for sfx in ("", "_status", "_stopped_at")})
    return claims


def _with_drg(g: DrgGrouper, claims: pa.Table, out: pa.Table, mask_of) -> pa.Table:
    """``claims`` plus grouper ``g``'s columns from its output ``out`` (OUTPUT_SCHEMA), the
    city splits applied."""
    drg = _split_codes(g, claims, out.column("drg").combine_chunks(), mask_of)
    names = [n for n, _ in g.output_columns()]
    return _with(claims, dict(zip(names, [
        drg, *(out.column(c) for c in ("drg_status", "mdc", "adrg")),
        _stopped_at_column(out)])))


def _reference_mask(claims: pa.Table, tests) -> np.ndarray:
    return np.array([points_reference.passes(c, tests) for c in claims.to_pylist()], bool)


def group_claims_reference(plan: Plan, claims: pa.Table, groupers=None) -> pa.Table:
    """``group_claims`` with the per-claim oracles (slow; for tests and the reference path).
    A grouper plugin other than yibao's own CHS-DRG has no oracle here: its run is used."""
    claims = prepared(plan, claims)
    for g in plan.groupers:
        if isinstance(g, DrgGrouper) and g.by != "chs_drg":
            out = run_drg_grouper(g, _drg_inputs(g, claims), groupers)
            claims = _with_drg(g, claims, out, _reference_mask)
        elif isinstance(g, DrgGrouper):
            rows = _drg_inputs(g, claims).to_pylist()
            res = [drg_reference.group_claim(r, drg_tables(g), g.mdc_order) for r in rows]
            drg = pa.array([r.drg for r in res], pa.string())
            drg = _split_codes(g, claims, drg, _reference_mask)
            names = [n for n, _ in g.output_columns()]
            claims = _with(claims, {
                names[0]: drg, names[1]: pa.array([r.status for r in res], pa.string()),
                names[2]: pa.array([r.mdc for r in res], pa.string()),
                names[3]: pa.array([r.adrg for r in res], pa.string()),
                names[4]: pa.array([stopped_at(r.stopped_at_mdc, r.stopped_at_adrg)
                                    for r in res], pa.string())})
        else:
            out = dtable.group_table_reference(g, claims)
            claims = _with(claims, {n: out.column(n) for n, _ in g.columns()})
    return _pool_groups_reference(plan, claims)


# -- claim points ----------------------------------------------------------------------------

def pool_index(plan: Plan, grouped: pa.Table) -> np.ndarray:
    """int64 per claim: the first pool whose applies hold, -1 for none."""
    idx = np.full(grouped.num_rows, -1, np.int64)
    for i, pool in enumerate(plan.provider.pools):
        hit = points_compute.test_mask(grouped, pool.applies) & (idx < 0)
        idx[hit] = i
    return idx


def _grouper_column(plan: Plan, pool: Pool, grouped: pa.Table, suffix: str):
    """The pool's grouper's ``<output>_<suffix>`` column; nulls when it writes none (a
    decision table has no stopping point)."""
    if pool.group_sources and f"{pool.group_column}_{suffix}" in grouped.column_names:
        return grouped.column(f"{pool.group_column}_{suffix}")  # the chosen source's
    for g in plan.groupers:
        name = f"{grouper_output(g)}_{suffix}"
        if grouper_output(g) == pool.group_column and name in grouped.column_names:
            return grouped.column(name)
    return pa.nulls(grouped.num_rows, pa.string())


def _score_pool(plan: Plan, pool: Pool, members: pa.Table, reference: bool,
                record=None) -> tuple:
    """(case_class, points) Arrow arrays for the members, in members' order. ``record``
    hears the points oracle's steps (``reference`` only: core/trace.py; None: nobody)."""
    if reference:
        heard = {} if record is None else {"record": record}
        rows = points_reference.claim_points(plan.provider, pool, members.to_pylist(), **heard)
        return (pa.array([r["case_class"] for r in rows], pa.string()),
                pa.array([r["points"] for r in rows], pa.int64()))
    _, _, code, points, _ = points_compute.score(plan.provider, pool, members, members=True)
    return _coded(points_compute.CASE_CLASSES, code), pa.array(points, pa.int64())


def claim_columns(plan: Plan, claims: pa.Table, reference: bool = False,
                  grouped: pa.Table | None = None, groupers=None,
                  order: np.ndarray | None = None, record=None) -> pa.Table:
    """Per-claim provider columns (``CLAIM_SCHEMA``), one row per input claim, input order:
    each pool's columns are computed over its members, then scattered to the members' rows
    by one ``take`` per column (a row in no pool: nulls). ``groupers``: the run's
    ``Registry.groupers``. ``order``: row k of the result is input claim ``order[k]``
    instead (the scatter and the reordering are one ``take``). ``record``: the reference
    settle's recorder, handed to the points oracle (``yibao explain`` hears it there)."""
    return claim_pieces(plan, claims, reference, grouped, groupers, record).columns(order)


class ClaimPieces:
    """The provider columns of ``n`` claims as computed, pool by pool (``claim_pieces``),
    not yet laid out in rows: ``pieces[name]`` holds each pool's column over its members,
    ``rows`` each pool's members (row numbers of the claims). Text columns stay codes into
    their few distinct values until ``columns`` lays them out, so the work that reads the
    claims can run before the order of the results is known (core/engine.py runs it beside
    the benefit settlement)."""

    def __init__(self, n: int, rows: list, pieces: dict):
        self.n, self.rows, self.pieces = n, rows, pieces
        self._joined: dict = {}  # column name -> the pools' pieces joined (``_joined``)

    def columns(self, order: np.ndarray | None = None) -> pa.Table:
        """The ``CLAIM_SCHEMA`` table: row k is claim k, or claim ``order[k]`` when given
        (any subset of the claims, in any order). Called once per stretch of a streamed
        run's order (core/engine.py ``_ProviderLayout``): what does not depend on ``order``
        (the pools' pieces joined, each claim's position in them) is made on the first call
        only."""
        if self.pieces is None:  # no provider part: every column null
            n = self.n if order is None else len(order)
            return CLAIM_SCHEMA.empty_table() if n == 0 else pa.table(
                {name: pa.nulls(n, typ) for name, typ in CLAIM_FIELDS}, schema=CLAIM_SCHEMA)
        source = self._sources(order)
        n = self.n if order is None else len(order)
        at = _Layout(source)
        return pa.table({name: _laid(at, self._values(name, typ), typ, n)
                         for name, typ in CLAIM_FIELDS}, schema=CLAIM_SCHEMA)

    def joined(self) -> "ClaimPieces":
        """Make now what ``columns`` makes on its first call whatever the order: each
        column's pieces joined (text as ``_Texts``) and each claim's position in them. The
        provider thread does it after the pieces (core/engine.py), usually before the order
        is known, so the first stretch laid out — which the writer's first row group waits
        for — does not (issue 14, p20: ~4 ms in process, ~0.015 s in a run)."""
        if self.pieces is None:
            return self
        for name, typ in CLAIM_FIELDS:
            self._values(name, typ)
        if not (len(self.rows) == 1 and len(self.rows[0]) == self.n) and \
                "position" not in self._joined:
            self._joined["position"] = _position_of(self.n, self.rows)
        return self

    def _values(self, name: str, typ):
        if name not in self._joined:
            joined = _joined(self.pieces[name], typ)
            self._joined[name] = _Texts(joined) if joined is not None and \
                pa.types.is_dictionary(joined.type) and typ == pa.string() else joined
        return self._joined[name]

    def _sources(self, order):
        """``_sources`` of ``order``, each claim's position in the pieces found once."""
        if order is None or (len(self.rows) == 1 and len(self.rows[0]) == self.n):
            return _sources(self.n, self.rows, order)
        if "position" not in self._joined:
            self._joined["position"] = _position_of(self.n, self.rows)
        return _positions(self._joined["position"][np.asarray(order)])


def claim_pieces(plan: Plan, claims: pa.Table, reference: bool = False,
                 grouped: pa.Table | None = None, groupers=None, record=None) -> ClaimPieces:
    """``claim_columns`` before the layout: the claims grouped, put in pools and scored
    (arguments as ``claim_columns``'s). Reads the claims only, never a payment."""
    n = claims.num_rows
    if plan.provider is None:
        return ClaimPieces(n, [], None)
    if grouped is None:
        grouped = (group_claims_reference if reference else _grouped)(plan, claims, groupers)
    idx = pool_index(plan, grouped)
    pieces = {name: [] for name, _ in CLAIM_FIELDS}
    rows = []
    scoring = grouped if reference else grouped.select(_scoring_columns(plan, grouped))
    for i, pool in enumerate(plan.provider.pools):
        at = np.nonzero(idx == i)[0]
        if not len(at):
            continue
        members = scoring if len(at) == n else scoring.take(pa.array(at))  # all: in order
        classes, points = _score_pool(plan, pool, members, reference, record)
        rows.append(at)
        pieces["pool"].append(_coded((pool.name,), np.zeros(len(at), np.int32)))
        pieces["group"].append(members.column(pool.group_column))
        pieces["grouping_status"].append(_grouper_column(plan, pool, members, "status"))
        pieces["grouping_stopped_at"].append(_grouper_column(plan, pool, members, "stopped_at"))
        pieces["case_class"].append(classes)
        pieces["points"].append(points)
    return ClaimPieces(n, rows, pieces)


def scored_alone(plan: Plan) -> bool:
    """Whether each claim's provider columns depend on that claim alone, so that those of
    some claims are those of the same claims scored among more: every grouper a decision
    table (yibao's own, row by row) and no pool counting readmissions (they read the
    person's other stays). A grouper plugin or CHS-DRG by a plugin's name is not assumed
    to be."""
    pools = plan.provider.pools if plan.provider else ()
    return not any(p.readmission for p in pools) and \
        all(isinstance(g, dtable.DecisionTable) for g in plan.groupers)


def _scoring_columns(plan: Plan, grouped: pa.Table) -> list:
    """The grouped claims' columns that scoring reads (``points_compute.claim_points``):
    the grouping inputs (code lists …) are not gathered per pool."""
    out = {"claim_id": None, "hospital_id": None, "total": None}
    for g in plan.groupers:
        out.update(dict.fromkeys(name for name, _ in _outputs(g)))
    for pool in plan.provider.pools:
        tests = list(pool.applies) + [t for a in pool.adjustments for t in a.when] + [
            t for source in pool.group_sources for t in source.when]
        out.update(dict.fromkeys(t.column for t in tests))
        out.update(dict.fromkeys(pool.group_column + sfx for sfx in ("", "_status",
                                                                      "_stopped_at")))
        out.update(dict.fromkeys(source.column + sfx for source in pool.group_sources
                                 for sfx in ("", "_status", "_stopped_at")))
        out.update(dict.fromkeys(c for c in (
            pool.coefficient_by, pool.incomplete_column,
            pool.bed_day.los_column if pool.bed_day else None,
            pool.capitation.signed_column if pool.capitation else None) if c))
        if pool.readmission:
            r = pool.readmission
            out.update(dict.fromkeys((r.person_column, r.admit_column, r.discharge_column)))
    return [c for c in out if c in grouped.column_names]


def _sources(n: int, rows: list, order=None):
    """Per output row, its position in the pools' pieces laid end to end, as Arrow indices
    (null: in no pool): the pieces hold the claims at the row numbers ``rows[k]``; with
    ``order``, output row k is claim ``order[k]``. None when output row k is piece row k
    (every claim in one pool, input order). Built once, shared by every provider column."""
    if len(rows) == 1 and len(rows[0]) == n:  # every claim in one pool: rows[0] is 0..n-1
        return None if order is None else pa.array(np.asarray(order, np.int64))
    source = _position_of(n, rows)
    return _positions(source if order is None else source[order])


def _position_of(n: int, rows: list) -> np.ndarray:
    """int64 per claim: its position in the pools' pieces laid end to end, -1 for none."""
    at = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    source = np.full(n, -1, dtype=np.int64)
    source[at] = np.arange(len(at), dtype=np.int64)
    return source


def _positions(source: np.ndarray) -> pa.Array:
    """Positions in the pieces as Arrow indices, -1 (in no pool) as null."""
    return pa.array(source, mask=source < 0)


def _joined(pieces: list, typ):
    """The pools' pieces of one column end to end (None: no pool has members). A text
    column as codes into the pieces' few distinct values (pool names, groups, statuses,
    case classes; a decision table's codes used as they come, never hashed)."""
    if not pieces:
        return None
    if pa.types.is_string(typ):
        coded = [_as_dictionary(piece) for piece in pieces]
        return coded[0] if len(coded) == 1 else \
            pa.chunked_array(coded).unify_dictionaries().combine_chunks()
    return pa.concat_arrays([_flat(piece).cast(typ) for piece in pieces])


def _laid(at: "_Layout", values, typ, n: int) -> pa.Array:
    """``values`` (``_joined``) gathered by ``at.source``: a text column's strings are built
    once per row, from the small dictionary (a gather of a million strings costs several
    times that), by ``_Texts`` in one pass when it can."""
    if values is None:
        return pa.nulls(n, typ)
    if isinstance(values, _Texts):
        laid = values.at(at)
        if laid is not None:
            return laid
        values = values.coded
    taken = values if at.source is None else values.take(at.source)
    return taken.cast(typ) if taken.type != typ else taken


class _Layout:
    """Where each output row's provider columns come from: ``source`` (``_sources``: Arrow
    indices into the pieces, null for a claim in no pool; None: piece row k) and, made on
    first use and shared by the text columns, the same as numpy positions (-1: none)."""

    def __init__(self, source):
        self.source, self._positions = source, None

    def positions(self) -> np.ndarray:
        if self._positions is None:
            source = self.source.fill_null(-1) if self.source.null_count else self.source
            self._positions = np.ascontiguousarray(
                source.to_numpy(zero_copy_only=False), np.int64)
        return self._positions


class _Texts:
    """A text column's pieces joined (``_joined``: codes into a few distinct strings),
    ready to be laid out by ``_texts.texts_at``: the distinct strings' offsets and bytes and
    each piece row's code (-1: null) as numpy arrays, made once for every stretch laid out.
    ``at`` gives the same strings and nulls as the dictionary array's take and cast (the
    written bytes do not change) in one gather of codes and one copy pass: the four text
    columns of 1M claims laid out in 2^17-row stretches took ~0.05 s of CPU instead of
    ~0.065 s (issue 14, p19)."""

    def __init__(self, coded: pa.DictionaryArray):
        self.coded = coded
        values = coded.dictionary
        self.codes = np.ascontiguousarray(
            coded.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int32)
        texts = [v.encode() for v in values.to_pylist()] if not values.null_count else []
        self.value_offsets = np.cumsum([0] + [len(t) for t in texts], dtype=np.int64)
        self.width = -(-max([len(t) for t in texts], default=0) // 8) * 8 or 8
        self.value_padded = np.frombuffer(b"".join(t.ljust(self.width, b"\0") for t in texts),
                                          np.uint8) if texts else np.zeros(0, np.uint8)
        # a null distinct value, a code outside them or a long value (an unusual decision
        # table's group) is left to Arrow (never made here)
        self.usable = not values.null_count and self.width <= MAX_TEXT_WIDTH and (
            not len(self.codes) or int(self.codes.max()) < len(values))
        self.value_offsets = self.value_offsets.astype(np.int32)
        # one value for every piece row (the pool's name when one pool holds every claim):
        # no gather of codes, only the rows in no pool to find
        self.constant = len(values) == 1 and bool(len(self.codes)) and self.codes.min() == 0

    def at(self, at: _Layout):
        """The strings of the pieces' rows at ``at`` (``_Layout``: null, no row; None, every
        row in order); None when ``_texts`` cannot build them (then Arrow does)."""
        if not self.usable:
            return None
        identity = at.source is None
        positions = _NO_POSITIONS if identity else at.positions()
        n = len(self.codes) if identity else len(positions)
        if not len(self.value_offsets) - 1:  # no value: every row null (a decision table's
            return pa.nulls(n, pa.string())  # stopping point), nothing to gather
        codes = self.codes
        if self.constant and (identity or not at.source.null_count):
            codes, positions, identity = np.zeros(n, np.int32), _NO_POSITIONS, True
        built = texts_at(self.value_offsets, self.value_padded, self.width, codes,
                         positions, identity)
        if built is None:
            return None
        valid, offsets, data, nulls = built
        return pa.Array.from_buffers(pa.string(), n, [valid, offsets, data], null_count=nulls)


_NO_POSITIONS = np.zeros(0, np.int64)  # ``texts_at`` with identity reads no positions
MAX_TEXT_WIDTH = 64  # bytes of the longest distinct value ``_texts`` lays out (padded)


def _as_dictionary(piece) -> pa.DictionaryArray:
    """A text piece as int32 codes into its distinct values (a dictionary of string): a
    dictionary piece (codes already: a decision table's groups, case classes) as it is, an
    all-null one (a decision table's stopping point) without hashing."""
    piece = _flat(piece)
    if not pa.types.is_dictionary(piece.type):
        if piece.null_count == len(piece):
            return pa.DictionaryArray.from_arrays(pa.nulls(len(piece), pa.int32()),
                                                  pa.array([], pa.string()))
        piece = pc.dictionary_encode(piece)
    if piece.type == _TEXT_CODES:
        return piece
    return pa.DictionaryArray.from_arrays(piece.indices.cast(pa.int32()),
                                          piece.dictionary.cast(pa.string()))


_TEXT_CODES = pa.dictionary(pa.int32(), pa.string())


def _coded(values: tuple, codes: np.ndarray) -> pa.DictionaryArray:
    """Per claim ``values[codes[i]]``, as codes into ``values`` (``_joined`` reads it)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()),
                                          pa.array(values, pa.string()))


def _flat(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.nulls(0, column.type)
    return column


def append_claim_columns(plan: Plan, results: pa.Table, claims_in_order: pa.Table,
                         reference: bool = False, groupers=None, record=None) -> pa.Table:
    """``results`` (one row per claim of ``claims_in_order``, same order) plus the provider
    columns; unchanged when the plan has no provider part. ``groupers``: the run's
    ``Registry.groupers`` (a policy's ``grouper … { by NAME }``). ``record``: see
    ``claim_columns``."""
    if plan.provider is None and not plan.groupers:
        return results
    extra = claim_columns(plan, claims_in_order, reference, groupers=groupers, record=record)
    for name, typ in CLAIM_FIELDS:
        results = results.append_column(pa.field(name, typ), extra.column(name))
    return results


def append_claim_columns_in_order(plan: Plan, results: pa.Table, claims: pa.Table,
                                  order: np.ndarray, groupers=None) -> pa.Table:
    """``append_claim_columns`` with ``claims`` in input order and ``order[k]`` the input row
    of result row k: the claims are grouped and scored where they are (grouping, points and
    readmissions do not depend on row order) and only the provider columns are gathered
    into settlement order, not the claims' code lists."""
    if plan.provider is None and not plan.groupers:
        return results
    return append_pieces(results, claim_pieces(plan, claims, groupers=groupers), order)


def append_pieces(results: pa.Table, pieces: ClaimPieces, order: np.ndarray) -> pa.Table:
    """``results`` plus the provider columns of ``pieces`` (``claim_pieces`` of the claims
    in input order) laid out so that result row k has those of claim ``order[k]``."""
    return append_columns(results, pieces.columns(np.asarray(order)))


def append_columns(results: pa.Table, columns: pa.Table) -> pa.Table:
    """``results`` plus the provider columns ``columns`` (``CLAIM_SCHEMA``, row for row)."""
    for name, typ in CLAIM_FIELDS:
        results = results.append_column(pa.field(name, typ), columns.column(name))
    return results


# -- the year's settlement -------------------------------------------------------------------

SUM_FIELDS = ("points", "points_pv", "paid", "paid_pv", "total", "cost_pv", "n", "pending_n",
              "pending_total")


def settlement_columns(plan: Plan) -> list:
    """The claim columns the year's settlement reads (``hospital_sums``, ``alliance_sums``):
    the rest (codes, procedure lists …) are never gathered into settlement order."""
    out = {"claim_id": None, "hospital_id": None, "total": None}
    for pool in plan.provider.pools:
        if pool.capitation:
            out[pool.capitation.signed_column] = None
        if getattr(pool, "prepayments", ()):
            out[pool.month_column] = None
    for alliance in plan.provider.alliances:
        out[alliance.column] = None
    return list(out)


def _settlement_input(plan: Plan, claims: pa.Table, results: pa.Table, narrow: bool = True,
                      rows=None):
    """(claims with psn_part_amt, scored rows) for the claims that are in a pool, row k of
    one the claim of row k of the other; ``narrow``: only ``settlement_columns``. ``rows``:
    the row of ``claims`` of each result row (``BatchResult.rows``), so no claim is looked
    up by its id; without it the claims are found by ``claim_id``."""
    if "points" not in results.column_names:
        results = append_claim_columns(plan, results, _in_result_order(claims, results, rows))
    in_pool = None if results.column("pool").null_count == 0 else pc.is_valid(
        results.column("pool"))
    scored = results if in_pool is None else results.filter(in_pool)
    if rows is not None:
        at = np.asarray(rows, dtype=np.int64)
        at = at if in_pool is None else at[in_pool.to_numpy(zero_copy_only=False)]
    else:
        at = pc.index_in(scored.column("claim_id"), value_set=claims.column("claim_id"))
    if narrow and rows is not None:
        rows = _settlement_rows(plan, claims, scored, at)
    elif narrow:
        wanted = [c for c in settlement_columns(plan) if c in claims.column_names]
        rows = prepared(plan, claims.select(wanted).take(at)).select(settlement_columns(plan))
    else:
        rows = prepared(plan, claims.take(at))
    rows = _with(rows, {PATIENT_PAID: scored.column("self_pay")})
    scored = pa.table({"claim_id": scored.column("claim_id"), "pool": scored.column("pool"),
                       "hospital_id": rows.column("hospital_id").cast(pa.string()),
                       "case_class": scored.column("case_class"),
                       "points": scored.column("points")})
    return rows, scored


def _settlement_rows(plan: Plan, claims: pa.Table, scored: pa.Table, at: np.ndarray):
    """``settlement_columns`` of the claims at positions ``at`` (row k: the claim of scored
    row k). The claim and hospital ids are the results' own (engine results carry them:
    no gather of strings), the total one integer gather; only the columns of capitation,
    monthly prepayments and alliances are taken from the claims."""
    own = [c for c in ("claim_id", "hospital_id") if c in scored.column_names]
    if "total" in claims.column_names:
        total = pa.array(points_compute.ints(claims, "total")[at], pa.int64(),
                         mask=_nulls_at(claims.column("total"), at))
    else:
        total = pa.nulls(len(at), pa.int64())
    rows = pa.table({**{name: scored.column(name) for name in own}, "total": total})
    taken = [c for c in settlement_columns(plan) if c not in rows.column_names
             and c in claims.column_names]
    if taken:
        rows = _with(rows, dict(zip(taken, claims.select(taken).take(pa.array(at)).columns)))
    return _present(plan, rows, settlement_columns(plan))


def _present(plan: Plan, rows: pa.Table, names: list) -> pa.Table:
    """The columns ``names`` of ``rows``, decoded, an absent one all null (``prepared`` for
    a few columns: no null column is made for every other column the plan reads)."""
    types = needed_columns(plan) if set(names) - set(rows.column_names) else {}
    return pa.table({name: _plain(rows.column(name)) if name in rows.column_names
                     else pa.nulls(rows.num_rows, types[name]) for name in names})


def _nulls_at(column: pa.ChunkedArray, at: np.ndarray):
    """The null mask of ``column`` at positions ``at``; None when it has no nulls."""
    if not column.null_count:
        return None
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)[at]


def _in_result_order(claims: pa.Table, results: pa.Table, rows=None) -> pa.Table:
    if rows is not None:
        return claims.take(pa.array(np.asarray(rows, dtype=np.int64)))
    return claims.take(pc.index_in(results.column("claim_id"),
                                   value_set=claims.column("claim_id")))


def provider_partials(plan: Plan, claims: pa.Table, results: pa.Table, rows=None) -> dict:
    """pool name -> (per-hospital sums, points per signed institution) of one partition:
    ``results`` are ``engine.settle`` results (with or without the provider columns) and
    ``claims`` the claims they came from (any order, a superset is fine); ``rows`` (if
    known): the row of ``claims`` of each result (``BatchResult.rows``)."""
    if plan.provider is None:
        return {}
    rows, scored = _settlement_input(plan, claims, results, rows=rows)
    out = {pool.name: points_compute.hospital_sums_aligned(pool, rows, scored, PATIENT_PAID,
                                                           None)
           for pool in plan.provider.pools}
    out.update(_alliance_partials(plan, rows, scored))
    return out


ALLIANCE_KEY = "alliance:"  # partials of a 医共体 declaration: pool names have no colon


def _alliance_partials(plan: Plan, rows: pa.Table, scored: pa.Table) -> dict:
    """"alliance:<name>" -> (per alliance × pool sums, {}), merged like a pool's partials."""
    return {ALLIANCE_KEY + a.name: (points_compute.alliance_sums_aligned(a, rows, scored,
                                                                         PATIENT_PAID),
                                    {})
            for a in plan.provider.alliances}


def merge_partials(a: dict, b: dict) -> dict:
    """The sums of two partitions' partials (every field is additive)."""
    out = {}
    for name in {**a, **b}:
        (ha, sa), (hb, sb) = a.get(name, ({}, {})), b.get(name, ({}, {}))
        per_h = {h: dict(r) for h, r in ha.items()}
        for h, r in hb.items():
            if h in per_h:  # every field but the hospital id is a sum (monthly dues too)
                for f, v in r.items():
                    if f != "h":
                        per_h[h][f] = per_h[h].get(f, 0) + v
            else:
                per_h[h] = dict(r)
        signed = dict(sa)
        for i, p in sb.items():
            signed[i] = signed.get(i, 0) + p
        out[name] = (per_h, signed)
    return out


def settle_partials(plan: Plan, partials: dict):
    """(hospitals, pools) tables (``core.points.settle`` schemas) from the reduced sums."""
    hospitals, pools = [], []
    for pool in (plan.provider.pools if plan.provider else ()):
        per_h, signed = partials.get(pool.name, ({}, {}))
        h_rows, p_row = points_settle.settle_pool(pool, per_h, signed)
        hospitals.extend(h_rows)
        pools.append(p_row)
    values = points_settle.pool_values(plan.provider.pools, pools) if plan.provider else {}
    for alliance in (plan.provider.alliances if plan.provider else ()):
        sums, _ = partials.get(ALLIANCE_KEY + alliance.name, ({}, {}))
        h_rows, p_row = points_settle.settle_alliance(alliance, sums, values)
        hospitals.extend(h_rows)
        pools.append(p_row)
    return (pa.Table.from_pylist(hospitals, schema=points_settle.HOSPITAL_SCHEMA),
            pa.Table.from_pylist(pools, schema=points_settle.POOL_SCHEMA))


def settle_provider_year(plan: Plan, claims: pa.Table, results: pa.Table):
    """(hospitals, pools) for one in-memory year of claims and their ``engine.settle`` results."""
    return settle_partials(plan, provider_partials(plan, claims, results))


def settle_provider_year_reference(plan: Plan, claims: pa.Table, results: pa.Table):
    """The same with the points oracle's settlement (lists of dicts, as it returns them)."""
    rows, scored = _settlement_input(plan, claims, results, narrow=False)
    return points_reference.settle(plan.provider, rows.to_pylist(), scored.to_pylist(),
                                   PATIENT_PAID)


class ProviderYear:
    """The provider year of a run, accumulated piece by piece: ``add`` the claims and the
    ``engine.settle`` results of each partition (every claim of a person in one piece, so
    readmissions are complete), then ``settle`` once. The sums are exact ints and the
    settlement sorts hospitals, so the tables are the same whatever the pieces. A plan
    without a provider part accumulates nothing and settles to empty tables."""

    def __init__(self, plan: Plan):
        self.plan, self.partials = plan, {}

    def add(self, claims: pa.Table, results: pa.Table, rows=None) -> None:
        """One partition's claims and results; ``rows``: the row of ``claims`` of each
        result when the settlement knows it (no lookup by claim id then)."""
        if self.plan.provider is not None and results.num_rows:
            self.merge(provider_partials(self.plan, claims, results, rows))

    def merge(self, partials: dict) -> None:
        self.partials = merge_partials(self.partials, partials)

    def settle(self):
        """(hospitals, pools) tables; empty with their schemas for no provider part."""
        return settle_partials(self.plan, self.partials)


def partials_to_json(partials: dict) -> str:
    """``provider_partials`` as JSON text (to move them between processes, e.g. Spark
    executors): per pool the hospital rows and the signed points as [key, value] pairs, so a
    null hospital or institution survives."""
    import json
    return json.dumps({name: {"h": [[h, r] for h, r in per_h.items()],
                              "s": [[i, p] for i, p in signed.items()]}
                       for name, (per_h, signed) in partials.items()}, ensure_ascii=False)


def partials_from_json(text: str) -> dict:
    """The inverse of ``partials_to_json``."""
    import json
    return {name: ({h: r for h, r in d["h"]}, {i: p for i, p in d["s"]})
            for name, d in json.loads(text).items()}

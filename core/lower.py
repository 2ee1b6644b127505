"""Lowering: a plan plus a prepared batch → the kernel's program (arrays and state slots).

- ``split_base`` turns a layer's base into its claim-only part plus ±paid(layer) terms (the
  compiler guarantees paid() only appears added or subtracted at the top of a base).
- Every claim-only expression is evaluated vectorised (vector.py).
- Accumulator keys become dense int ids (one id space per key kind), the policy year an int,
  and each accumulator (deductible consumed, band position, cap paid, kept burden, last
  deductible) a zeroed int64 array over the key's ids. Shared caps share one array.
- ``settlement_order`` sorts accepted claims by (discharge_date, claim_id): processing in that
  global order processes every key's claims in its own order, whatever the key. A run's
  bucket, given as ``lead``, comes first: (bucket, discharge_date, claim_id).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _ids, _kernel, _order
from .plan import (MONTH, PER_YEAR, Bands, Binary, Const, Expr, Key, Layer, Paid, Plan, Type,
                   INT, MONEY)
from .vector import Evaluator
from .errors import YibaoError

# The layer kinds are the kernel's own enums (``cpdef enum`` in _kernel.pxd, typed in
# _kernel.pyi): one definition, so the lowering cannot hand the loop a kind it reads otherwise.
DeductibleKind, RatioKind = _kernel.DeductibleKind, _kernel.RatioKind
DED_NONE, DED_PER_CLAIM, DED_PER_YEAR = (DeductibleKind.DED_NONE, DeductibleKind.DED_PER_CLAIM,
                                         DeductibleKind.DED_PER_YEAR)
RATIO_FULL, RATIO_PER_CLAIM, RATIO_BANDS = (RatioKind.RATIO_FULL, RatioKind.RATIO_PER_CLAIM,
                                            RatioKind.RATIO_BANDS)


class LoweringError(YibaoError, ValueError):
    """A plan the kernel cannot be built for (the message names the layer or function)."""


# -- base ------------------------------------------------------------------------------------

def split_base(base: Expr, layer_index: dict, earlier: list) -> tuple:
    """(claim-only expression, ((layer index, sign), ...)) with base = claim + Σ sign·paid."""
    terms = []

    def strip(e: Expr, sign: int) -> Expr:
        if isinstance(e, Paid):
            for name in (e.layers or earlier):
                terms.append((layer_index[name], sign))
            return Const(Type(MONEY), 0)
        if isinstance(e, Binary) and e.op in "+-":
            right_sign = sign if e.op == "+" else -sign
            return Binary(e.type, e.op, strip(e.left, sign), strip(e.right, right_sign))
        return e

    claim = strip(base, 1)
    return claim, tuple(terms)


# -- keys and years --------------------------------------------------------------------------

def key_values(raw: pa.Table, key: Key) -> pa.Array:
    """The grouping value of every row for ``key``; a null falls back to the person. A
    refined key (``Key.by``, ``Key.period``) appends its columns' values and the month."""
    person = raw.column("person_id").combine_chunks().cast(pa.string())
    if key.column == "person_id":
        values = person
    else:
        col = raw.column(key.column).combine_chunks().cast(pa.string())
        own = pc.binary_join_element_wise("k", col, "\x1f")
        fallback = pc.binary_join_element_wise("p", person, "\x1f")
        values = pc.if_else(pc.is_null(col), fallback, own)
    return _refined(raw, key, values) if key.refined else values


NULL_PART = "\u2205"  # a null refining value: a value of its own (reference._key_value)


def _refined(raw: pa.Table, key: Key, values: pa.Array) -> pa.Array:
    """``values`` joined with the key's ``by`` columns and, per month, the month number."""
    parts = [values]
    for column in key.by:
        col = raw.column(column).combine_chunks().cast(pa.string())
        parts.append(pc.fill_null(col, NULL_PART))
    if key.period == MONTH:
        parts.append(pa.array(month_numbers(_days(raw)).astype(str)))
    return pc.binary_join_element_wise(*parts, "\x1f")


def _days(raw: pa.Table) -> np.ndarray:
    col = raw.column("discharge_date").combine_chunks()
    days = pc.cast(col, pa.int32()).to_numpy(zero_copy_only=False)
    return np.nan_to_num(np.asarray(days, dtype=float), nan=0).astype(np.int64)


def month_numbers(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day number (the period of a ``per … per month`` key)."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def dense_ids(values: pa.Array) -> tuple:
    """(int64 id per row, number of distinct values); ids in order of first appearance. The
    numbering only places a key's accumulators in memory: results never depend on it."""
    return _ids.dense_ids(values)


def policy_years(days: np.ndarray, year_start=(1, 1)) -> np.ndarray:
    """Policy year (int32) of each discharge date (days since 1970-01-01, or datetime64): the
    calendar year, or the year in which the latest ``year_start`` (month, day) on or before
    the date falls. Computed once per day of the dates' span and looked up: a batch spans a
    year or two of days, and the date arithmetic per row cost several times the lookup."""
    days = np.asarray(days)
    day = days if days.dtype.kind in "iu" else days.astype("datetime64[D]").astype(np.int64)
    if len(day) == 0:
        return np.zeros(0, dtype=np.int32)
    first = int(day.min())
    span = int(day.max()) - first + 1
    if span > len(day):  # few dates far apart: each computed directly
        return _years_of(day, year_start)
    return _years_of(np.arange(first, first + span), year_start)[day - first]


def _years_of(days: np.ndarray, year_start) -> np.ndarray:
    dt = np.asarray(days, dtype="datetime64[D]")
    years = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    if tuple(year_start) != (1, 1):
        month = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
        day = (dt - dt.astype("datetime64[M]")).astype(np.int64) + 1
        before = (month < year_start[0]) | ((month == year_start[0]) & (day < year_start[1]))
        years = years - before
    return years.astype(np.int32)


def settlement_order(claim_id: pa.Array, days: np.ndarray, lead=None) -> np.ndarray:
    """Row indices sorted by (discharge_date, claim_id), or by (``lead``, discharge_date,
    claim_id) when ``lead`` (an int per row, e.g. a run's bucket) is given. Claim ids sort in
    byte order (Arrow's, Python's for str). Already-sorted input without a lead (common for
    extracts from a settlement system) is detected in O(n) and not sorted again. Otherwise the
    rows are sorted in C (core/_order.pyx): a radix sort on (lead, day) packed into one
    integer, then each day's claims by an 8-byte integer key of the id after the lead every id
    shares, by the ids' bytes where two keys are equal; a chunked column is read chunk by
    chunk where it is, never combined. Ids that are not Arrow strings without nulls (never
    the case for accepted claims) take Arrow's exact sort."""
    n = len(days)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    days = np.asarray(days)
    if days.dtype.kind not in "iu":
        days = days.astype(np.int64)
    if lead is None and _is_sorted(claim_id, days):
        return np.arange(n, dtype=np.int64)
    ids = _plain_ids(claim_id)
    groups = _packed_groups(days, lead)
    if ids is None or groups is None:
        return _exact_order(claim_id, days, lead)
    group, bits = groups
    return _order.sort_rows(ids, _order.common_prefix(ids), group, bits)


def _packed_groups(days: np.ndarray, lead) -> tuple:
    """(per row: (lead − min lead) · day span + (day − first day), how many low bits of it
    vary), so integer order is (lead, day) order: packed in C when days and lead are int32
    values (``_order.packed_groups``: uint16 when it fits 16 bits, no int64 temporaries),
    else here; None if it does not fit 63 bits."""
    packed = _order.packed_groups(days, lead)
    if packed is not None:
        return packed
    day = np.subtract(days, days.min(), dtype=np.int64)
    span = int(day.max()) + 1
    if lead is None:
        group, top = day.view(np.uint64), span  # day >= 0: the same bits, no copy
    else:
        lead = np.asarray(lead, dtype=np.int64)
        lead = lead - lead.min()
        top = (int(lead.max()) + 1) * span
        if top >= 1 << 63:
            return None
        group = lead.astype(np.uint64) * np.uint64(span) + day.astype(np.uint64)
    bits = (top - 1).bit_length()
    return (group.astype(np.uint16) if bits <= 16 else group), bits


def _plain_ids(claim_id):
    """The claim ids as string chunks without nulls (what the C sort reads, in place: an
    array or a chunked array as given), else None."""
    if claim_id.null_count:
        return None
    if pa.types.is_large_string(claim_id.type):
        try:  # chunk by chunk: each chunk's offsets must fit int32, not the whole column's
            return claim_id.cast(pa.string())
        except pa.ArrowInvalid:  # a chunk of more than 2 GiB of ids
            return None
    return claim_id if pa.types.is_string(claim_id.type) else None


def _exact_order(claim_id, days: np.ndarray, lead) -> np.ndarray:
    """Arrow's stable sort on (lead, day, claim id): the definition the C sort meets."""
    cols = {} if lead is None else {"l": pa.array(np.asarray(lead, dtype=np.int64))}
    cols.update(d=pa.array(days, pa.int64()), c=claim_id)
    idx = pc.sort_indices(pa.table(cols), sort_keys=[(k, "ascending") for k in cols])
    return np.ascontiguousarray(idx.to_numpy(), dtype=np.int64)


def _is_sorted(claim_id: pa.Array, days: np.ndarray) -> bool:
    if (days[1:] < days[:-1]).any():  # the common case, with a bool temporary, not np.diff's
        return False  # int64 one (allocations on threads side by side cost page faults)
    ties = np.flatnonzero(days[1:] == days[:-1])
    if len(ties) == 0:
        return True
    a = claim_id.take(pa.array(ties))
    b = claim_id.take(pa.array(ties + 1))
    return bool(pc.all(pc.less(a, b)).as_py())


# -- program ---------------------------------------------------------------------------------

@dataclass
class Program:
    """Everything the kernel reads and writes for one batch; keeps the arrays alive."""
    plan: Plan
    n: int
    layers: list = field(default_factory=list)  # dicts, see _kernel.fill_layer
    key_ids: list = field(default_factory=list)
    key_counts: list = field(default_factory=list)
    year: np.ndarray = None
    state_keys: list = field(default_factory=list)  # key kind of each accumulator
    state_offsets: list = field(default_factory=list)  # its slot in that kind's row
    widths: list = None  # slots per key id, per key kind (slot 0: policy-year stamp)
    # layer index + 1 of the first layer whose claim-only arithmetic leaves int64 (0: none);
    # such rows are never given to the kernel (see Lowerer.layer)
    claim_overflow: np.ndarray = None
    # filled by the kernel: layer index + 1 where the row's accumulation left int64 (its
    # accumulators were rolled back, its outputs are 0); 0 for a settled row
    overflow: np.ndarray = None

    def new_state(self, key_index: int) -> int:
        """A new zeroed accumulator of key kind ``key_index``; returns its index."""
        if self.widths is None:
            self.widths = [1] * len(self.key_counts)
        self.state_keys.append(key_index)
        self.state_offsets.append(self.widths[key_index])
        self.widths[key_index] += 1
        return len(self.state_keys) - 1

    def row_widths(self) -> np.ndarray:
        """Slots per key id of each key kind as laid out in memory: the accumulators
        (``widths``) padded to 1, 2, 4 or a multiple of 8 slots, so that in a block aligned to
        64 bytes no key's row straddles two cache lines (a claim's state is one line)."""
        widths = self.widths or [1] * len(self.key_counts)
        return np.array([_row_width(w) for w in widths], dtype=np.int64)

    def accumulator_rows(self) -> list:
        """One zeroed row of slots per key id and kind. The year stamp 0 reads 'no year yet':
        a fresh row is all zeros, exactly what the kernel makes of a row it restarts for a
        new policy year, so even a claim of year 0 would find it right. The block is zeroed
        here, in one pass (``_aligned_zeros``), not left to the kernel's first touch: a stamp
        per row was a slower pass, but untouched pages cost two faults each."""
        return [_aligned_zeros(count * int(width))
                for count, width in zip(self.key_counts, self.row_widths())]

    def run(self, order: np.ndarray) -> None:
        """Settle rows ``order`` with fresh accumulators."""
        self.run_rows(order, self.accumulator_rows())

    def run_rows(self, order: np.ndarray, blocks: list) -> None:
        """Settle rows ``order`` against accumulators ``blocks`` (from accumulator_rows(),
        possibly carried over from an earlier chunk of the same batch). A row whose
        accumulation would leave int64 is marked in ``overflow`` and leaves every accumulator
        as it found it, so the other rows settle as if it were not in the batch."""
        self.overflow = np.zeros(self.n, dtype=np.int32)
        _kernel.settle(np.ascontiguousarray(order, dtype=np.int64), self.layers, self.key_ids,
                       self.year, blocks, self.row_widths(), self.state_keys,
                       self.state_offsets, self.overflow)


CACHE_LINE = 64  # bytes


def _row_width(width: int) -> int:
    """``width`` slots rounded up to a power of two up to a cache line, then to whole lines."""
    line = CACHE_LINE // 8
    if width > line:
        return -(-width // line) * line
    return 1 << (width - 1).bit_length()


def _aligned_zeros(n: int) -> np.ndarray:
    """n zeroed int64 whose first element starts a cache line (numpy aligns large arrays
    to 16 bytes only). Written with zeros here rather than taken from ``np.zeros``: the
    kernel reads a row before it writes it, and a page of ``np.zeros`` (a fresh mapping)
    that is read first maps the shared zero page, then faults again at the first write
    (issue 14, w18: 2M claims, the run's accumulators, 4 KiB pages: 11.1–12.0k faults →
    7.6–8.3k, settle_chunk 0.13–0.16 → 0.11–0.14 s CPU)."""
    line = CACHE_LINE // 8
    buf = np.empty(n + line, dtype=np.int64)
    buf.fill(0)
    skip = (-buf.ctypes.data // 8) % line
    return buf[skip:skip + n]


def _compact(a) -> np.ndarray:
    """A constant (a stride-0 broadcast from vector.Evaluator.const) as one element, which
    the kernel reads for every row; anything else as it is."""
    a = np.asarray(a)
    if a.ndim == 1 and len(a) > 1 and a.strides[0] == 0:
        return a[:1].copy()
    return a


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(_compact(a), dtype=np.int64)


def _u8(a) -> np.ndarray:
    return np.ascontiguousarray(_compact(a), dtype=bool).view(np.uint8)


class Lowerer:
    """Builds a Program from a plan, evaluated arrays and key ids."""

    def __init__(self, plan: Plan, ev: Evaluator, keys: dict, n: int):
        self.plan, self.ev, self.n = plan, ev, n
        self.key_index = {name: i for i, name in enumerate(keys)}
        self.prog = Program(plan, n, key_ids=[keys[k][0] for k in keys],
                            key_counts=[keys[k][1] for k in keys])
        self.shared_caps: dict = {}
        self.over = None  # rows where the current layer's claim-only arithmetic leaves int64
        self.applies_over = None  # the same for its applies-when condition
        self.evaluated: dict = {}  # expression -> (values, overflow rows), see _eval

    def key(self, key: Key) -> int:
        return self.key_index[key.name]

    def lower(self) -> Program:
        index = {layer.name: i for i, layer in enumerate(self.plan.layers)}
        self.prog.claim_overflow = np.zeros(self.n, dtype=np.int32)
        for i, layer in enumerate(self.plan.layers):
            earlier = [l.name for l in self.plan.layers[:i]]
            self.over = None
            spec = self.layer(layer, index, earlier)
            self.prog.layers.append(spec)
            self._mark_overflow(i, spec)
        return self.prog

    def _eval(self, e: Expr):
        """The values of a claim-only expression; its overflow rows join ``self.over``. An
        expression met again (two layers' ``in_scope - self_first``) is the same array: one
        evaluation, and one stream of memory for the kernel instead of two."""
        try:
            if e not in self.evaluated:
                self.evaluated[e] = self.ev.checked(e)
            values, bad = self.evaluated[e]
        except TypeError:  # a node holding an unhashable value: evaluated where it stands
            values, bad = self.ev.checked(e)
        if bad is not None:
            self.over = bad if self.over is None else self.over | bad
        return values

    def _mark_overflow(self, i: int, spec: dict) -> None:
        """Record layer i for rows whose expressions leave int64 where the layer applies (as
        the reference evaluates them: only an applying layer's amounts are computed; a
        ``Cond`` counts the branch it takes), unless an earlier layer is already recorded."""
        if self.over is None and self.applies_over is None:
            return
        applies = np.broadcast_to(np.asarray(spec["applies"], dtype=bool), (self.n,))
        bad = np.zeros(self.n, dtype=bool) if self.over is None else self.over & applies
        if self.applies_over is not None:
            bad |= self.applies_over
        first = (self.prog.claim_overflow == 0) & bad
        self.prog.claim_overflow[first] = i + 1

    def layer(self, layer: Layer, index: dict, earlier: list) -> dict:
        claim, terms = split_base(layer.base, index, earlier)
        applies, self.applies_over = self.ev.checked(layer.applies)
        d = {"applies": _u8(applies), "base_claim": _i64(self._eval(claim)),
             "paid_terms": list(terms), "out_pay": np.zeros(self.n, dtype=np.int64)}
        d.update(self.deductible(layer))
        d.update(self.ratio(layer))
        d["caps"] = [self.cap(cap) for cap in layer.caps]
        d.update(self.limit(layer))
        return d

    def deductible(self, layer: Layer) -> dict:
        ded = layer.deductible
        out = {"ded_kind": DED_NONE, "ded_amount": None, "ded_continuing": None,
               "ded_state": -1, "last_ded_state": -1, "ded_key": 0, "out_ded": None}
        if ded is None:
            return out
        k = self.key(ded.key)
        out.update(ded_kind=DED_PER_YEAR if ded.scope == PER_YEAR else DED_PER_CLAIM,
                   ded_amount=_i64(self._eval(ded.amount)), ded_key=k,
                   out_ded=np.zeros(self.n, dtype=np.int64))
        if ded.scope == PER_YEAR:
            out["ded_state"] = self.prog.new_state(k)
        if ded.continuing is not None:
            out["ded_continuing"] = _u8(self._eval(ded.continuing))
            out["last_ded_state"] = self.prog.new_state(k)
        return out

    def ratio(self, layer: Layer) -> dict:
        r = layer.ratio
        out = {"ratio_kind": RATIO_FULL, "ratio": None, "bands": [], "band_state": -1,
               "band_key": 0, "band_first": [0, 0], "band_set": None}
        if isinstance(r, Bands):
            k = self.key(r.key)
            out.update(ratio_kind=RATIO_BANDS, band_key=k, band_state=self.prog.new_state(k))
            out.update(self.band_sets(r))
        elif r is not None and layer.limit is None:  # a self-pay limit takes precedence
            out.update(ratio_kind=RATIO_PER_CLAIM, ratio=_i64(self._eval(r)))
        return out

    def band_sets(self, r: Bands) -> dict:
        """Every band set flattened (the default first, then each ``when`` set), where each
        set starts, and per row the set that pays it (the last whose condition holds)."""
        flat, first = [], [0]
        for index in range(len(r.alts) + 1):
            flat += [(b.lo, -1 if b.hi is None else b.hi, b.rate) for b in r.chosen(index)]
            first.append(len(flat))
        chosen = None
        if r.alts:
            chosen = np.zeros(self.n, dtype=np.int64)
            for index, alt in enumerate(r.alts, start=1):
                holds = np.broadcast_to(np.asarray(self._eval(alt.cond), dtype=bool), (self.n,))
                chosen = np.where(holds, index, chosen)
            chosen = _i64(chosen)
        return {"bands": flat, "band_first": first, "band_set": chosen}

    def cap(self, cap) -> tuple:
        k = self.key(cap.key)
        amount = _i64(self._eval(cap.amount))
        if cap.scope != PER_YEAR:
            return (0, amount, -1, k)
        if cap.name:
            if cap.name not in self.shared_caps:
                self.shared_caps[cap.name] = self.prog.new_state(k)
            return (1, amount, self.shared_caps[cap.name], k)
        return (1, amount, self.prog.new_state(k), k)

    def limit(self, layer: Layer) -> dict:
        lim = layer.limit
        if lim is None:
            return {"limit_amount": None, "limit_state": -1, "limit_key": 0}
        k = self.key(lim.key)
        return {"limit_amount": _i64(self._eval(lim.amount)), "limit_state": self.prog.new_state(k),
                "limit_key": k}


def applying_lookups_missing(plan: Plan, ev: Evaluator) -> tuple:
    """(mask of rows whose applying layers miss a table row, table name per such row: ""
    for the others). When no row misses (the common case) the names are one "" seen by
    every row (read-only, no array of row objects: at 128K rows a chunk, making and freeing
    it was ≈ 0.02 s of a 2M run's chunk builds; issue 14, w18)."""
    missing = np.zeros(ev.n, dtype=bool)
    which = None
    from .plan import layer_exprs, Lookup, walk
    for layer in plan.layers:
        lookups = [e for top in layer_exprs(layer) for e in walk(top) if isinstance(e, Lookup)]
        if not lookups:
            continue
        applies, over = ev.checked(layer.applies)
        applies = np.asarray(applies, dtype=bool)
        if over is not None:  # an out-of-range condition is refused as such, not as a miss
            applies = applies & ~over
        for lk in lookups:
            ev.missing[:] = False
            ev(lk)
            new = ev.missing & applies & ~missing
            if new.any():
                if which is None:
                    which = np.full(ev.n, "", dtype=object)
                which[new] = lk.table
                missing |= new
    ev.missing[:] = False
    if which is None:
        which = np.broadcast_to(np.array("", dtype=object), (ev.n,))
    return missing, which

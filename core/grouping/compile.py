"""Compile loaded DRG tables into the integer arrays the kernel reads (``_drg.pxd``).

Codes become ids (their index in the sorted ``codes.json`` lists); each code set becomes
one bit, so "code in set" is one bit test on the code's row of a uint64 matrix.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from yibao.core.grouping.tables import DrgTables, load_tables, resolve_order

# Same order as the CondKind enum in _drg.pxd.
COND_KINDS = ("pdx_in", "anydx_in", "pproc_in", "anyproc_in", "pproc_or", "no_pproc_or",
              "sex_eq", "age_eq", "age_days_lt", "age_days_ge", "weight_lt", "weight_ge",
              "trauma_regions_ge")
_DX_SET_KINDS = {"pdx_in", "anydx_in"}
_PROC_SET_KINDS = {"pproc_in", "anyproc_in"}
OR_SET = "__or_procedures__"


def _bit_matrix(universe: list, sets: dict) -> tuple[np.ndarray, dict]:
    """uint64 [len(universe), words]: row = code id, bit = set number."""
    names = list(sets)
    index = {code: i for i, code in enumerate(universe)}
    words = max(1, (len(names) + 63) // 64)
    bits = np.zeros((len(universe), words), dtype=np.uint64)
    for b, name in enumerate(names):
        ids = np.fromiter((index[c] for c in sets[name]), dtype=np.int64)
        bits[ids, b >> 6] |= np.uint64(1 << (b & 63))
    return bits, {name: b for b, name in enumerate(names)}


def _code_table(universe: list, mapping: dict, missing: int) -> np.ndarray:
    out = np.full(len(universe), missing, dtype=np.int32)
    index = {code: i for i, code in enumerate(universe)}
    for code, value in mapping.items():
        out[index[code]] = value
    return out


class _RuleBuilder:
    """Flattens OR-of-AND rule lists into cond/rule/group offset arrays."""

    def __init__(self, dx_bit: dict, proc_bit: dict):
        self.dx_bit, self.proc_bit = dx_bit, proc_bit
        self.kind, self.arg, self.rule_start, self.group_start = [], [], [0], [0]

    def add_group(self, rules: list) -> int:
        for rule in rules:
            for kind, arg in rule:
                self.kind.append(COND_KINDS.index(kind))
                self.arg.append(self._arg(kind, arg))
            self.rule_start.append(len(self.kind))
        self.group_start.append(len(self.rule_start) - 1)
        return len(self.group_start) - 2

    def _arg(self, kind: str, arg) -> int:
        if kind in _DX_SET_KINDS:
            return self.dx_bit[arg]
        if kind in _PROC_SET_KINDS:
            return self.proc_bit[arg]
        return 0 if arg is None else int(arg)

    def arrays(self) -> dict:
        as32 = lambda v: np.asarray(v, dtype=np.int32)   # noqa: E731
        return {"cond_kind": as32(self.kind), "cond_arg": as32(self.arg),
                "rule_start": as32(self.rule_start), "group_start": as32(self.group_start)}


def _regions(t: DrgTables, dx_universe: list) -> np.ndarray:
    names = sorted({r for rs in t.trauma_regions.values() for r in rs})
    mapping = {dx: sum(1 << names.index(r) for r in rs) for dx, rs in t.trauma_regions.items()}
    out = np.zeros(len(dx_universe), dtype=np.uint32)
    index = {code: i for i, code in enumerate(dx_universe)}
    for dx, mask in mapping.items():
        out[index[dx]] = mask
    return out


def _pdx_groups(bits: np.ndarray, arrays: dict, groups) -> tuple[np.ndarray, np.ndarray]:
    """(possible, certain) bool [len(groups), n_dx]: what a principal dx alone says of a group.

    A rule is possible for a dx when all its ``pdx_in`` conditions hold, certain when it has
    no other condition; a group (OR of rules) is possible / certain when one rule is.
    """
    kind, arg = arrays["cond_kind"], arrays["cond_arg"]
    rs, gs = arrays["rule_start"], arrays["group_start"]
    n_dx, pdx_in = bits.shape[0], COND_KINDS.index("pdx_in")
    column = lambda b: ((bits[:, b >> 6] >> np.uint64(b & 63)) & np.uint64(1)).astype(bool)  # noqa: E731
    possible = np.zeros((len(groups), n_dx), dtype=bool)
    certain = np.zeros((len(groups), n_dx), dtype=bool)
    for row, g in enumerate(groups):
        for r in range(gs[g], gs[g + 1]):
            ok, only_pdx = np.ones(n_dx, dtype=bool), True
            for k in range(rs[r], rs[r + 1]):
                if kind[k] == pdx_in:
                    ok &= column(int(arg[k]))
                else:
                    only_pdx = False
            possible[row] |= ok
            if only_pdx:
                certain[row] |= ok
    return possible, certain


def _candidates(bits: np.ndarray, arrays: dict, mdc_group, mdc_adrg_start, adrg_order,
                adrg_group) -> dict:
    """Per principal dx, the MDC / ADRG walk with every step its dx rules out removed.

    The walk (city MDC order, each MDC's ADRGs in order) becomes items ``id << 2 | is_mdc << 1
    | certain``; a dx keeps an MDC when its entry group is possible for that dx and an ADRG
    when both its MDC and its own group are; ``certain`` marks a group that holds from the
    dx alone (no check needed). Dx with the same walk share one pattern: ``dx_pattern[dx]``
    indexes ``pattern_start`` (CSR into ``pattern_items``).
    """
    slots, slot_groups = [], []
    for m in range(len(mdc_group)):
        slots.append((m, 1, m))
        slot_groups.append(mdc_group[m])
        for a in adrg_order[mdc_adrg_start[m]:mdc_adrg_start[m + 1]]:
            slots.append((int(a), 0, m))
            slot_groups.append(adrg_group[a])
    possible, certain = _pdx_groups(bits, arrays, slot_groups)
    mdc_rows = [i for i, s in enumerate(slots) if s[1]]
    for i, (_, is_mdc, m) in enumerate(slots):
        if not is_mdc:
            possible[i] &= possible[mdc_rows[m]]
    state = (possible.astype(np.int8) + (possible & certain)).T   # [n_dx, n_slot]: 0 / 1 / 2
    state = np.ascontiguousarray(state)
    keys = state.view(np.dtype((np.void, state.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    items, starts = [], [0]
    for row in state[first]:
        for i in np.flatnonzero(row):
            sid, is_mdc, _ = slots[i]
            items.append(sid << 2 | is_mdc << 1 | int(row[i] == 2))
        starts.append(len(items))
    as32 = lambda v: np.asarray(v, dtype=np.int32)   # noqa: E731
    return {"dx_pattern": as32(inverse.ravel()), "pattern_start": as32(starts),
            "pattern_items": as32(items)}


def _compile(t: DrgTables, order: tuple) -> dict:
    dx_universe = sorted(t.diagnoses)
    proc_universe = sorted(t.procedures)
    dx_bits, dx_bit = _bit_matrix(dx_universe, t.dx_sets)
    proc_bits, proc_bit = _bit_matrix(proc_universe, {**t.proc_sets, OR_SET: t.or_procedures})
    rb = _RuleBuilder(dx_bit, proc_bit)
    adrg_names = list(t.scheme["adrg"])
    adrg_group = [rb.add_group(t.scheme["adrg"][a]["rules"]) for a in adrg_names]
    drg_names = list(t.scheme["drg"])
    adrg_drg = np.array([[drg_names.index(t.scheme["adrg"][a]["drgs"][t.split_suffix(a, s)])
                          for s in (0, 1, 2)] for a in adrg_names], dtype=np.int32)
    mdc_group, adrg_order, mdc_adrg_start = [], [], [0]
    for mdc in order:
        spec = t.scheme["mdc"][mdc]
        mdc_group.append(rb.add_group(spec["entry"]))
        adrg_order += [adrg_names.index(a) for a in spec["adrgs"]]
        mdc_adrg_start.append(len(adrg_order))
    as32 = lambda v: np.asarray(v, dtype=np.int32)   # noqa: E731
    rules = rb.arrays()
    dx_mcc = _code_table(dx_universe, t.mcc, -1)
    dx_cc = _code_table(dx_universe, t.cc, -1)
    return {
        "dx_universe": dx_universe, "proc_universe": proc_universe,
        "dx_bits": dx_bits, "proc_bits": proc_bits, "or_bit": proc_bit[OR_SET],
        "male_bit": dx_bit.get("MDCM", -1), "female_bit": dx_bit.get("MDCN", -1),
        "dx_mcc": dx_mcc, "dx_cc": dx_cc,
        "dx_cce": _code_table(dx_universe, t.cce, -2),
        "dx_regions": _regions(t, dx_universe),
        "dx_sev": np.ascontiguousarray(np.stack([dx_mcc, dx_cc], axis=1)),
        **rules,
        **_candidates(dx_bits, rules, mdc_group, mdc_adrg_start, adrg_order, adrg_group),
        "mdc_group": as32(mdc_group), "mdc_adrg_start": as32(mdc_adrg_start),
        "adrg_order": as32(adrg_order), "adrg_group": as32(adrg_group), "adrg_drg": adrg_drg,
        "mdc_names": list(order), "adrg_names": adrg_names, "drg_names": drg_names,
    }


@lru_cache(maxsize=16)
def _compiled(t: DrgTables, order: tuple) -> dict:
    return _compile(t, order)


def compile_tables(tables: DrgTables | None = None, mdc_order=None) -> dict:
    """Compiled arrays for the kernel (cached per tables object and MDC order)."""
    t = tables or load_tables()
    order = resolve_order(t, mdc_order)
    if not order:
        raise ValueError("mdc_order is empty")
    return _compiled(t, order)

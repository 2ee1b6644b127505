"""Compile loaded DRG tables into the integer arrays the kernel reads (``_drg.pxd``).

Codes become ids (their index in the sorted ``codes.json`` lists); each code set becomes
one bit, so "code in set" is one bit test on the code's row of a uint64 matrix.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from yibao.core.grouping import _drg
from yibao.core.grouping.stored import stored_or_built
from yibao.core.grouping.tables import DrgTables, load_tables, resolve_order

# Same order as the CondKind enum in _drg.pxd.
COND_KINDS = ("pdx_in", "anydx_in", "pproc_in", "anyproc_in", "pproc_or", "no_or_proc",
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
        if kind == "trauma_regions_ge" and arg != 2:
            raise ValueError(f"trauma_regions_ge {arg}: the kernel counts two codes in two "
                             "regions only")
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


def _programs(bits: np.ndarray, arrays: dict, mdc_group, mdc_adrg_start, adrg_order,
              adrg_group) -> dict:
    """Per principal dx, the MDC / ADRG walk with what the dx alone decides already decided.

    The walk is the city MDC order, each MDC followed by its ADRGs. For one dx a rule is
    *live* when all its ``pdx_in`` conditions hold (the others it can never satisfy); the
    dx keeps an MDC with at least one live entry rule, and an ADRG of a kept MDC with at
    least one live rule. Live rules are checked without their ``pdx_in`` conditions
    (``strip_*`` arrays: the rules' other conditions; none left means the rule holds).

    Dx with the same live rules share one program (``dx_program[dx]`` indexes
    ``program_start``, CSR into ``program``). A program is a run of items
    ``[id << 2 | is_mdc << 1, n, rule_1 .. rule_n]``, or ``[id << 2 | is_mdc << 1 | 1, bit]``
    when the item is one principal-procedure bit test (most surgical ADRGs); an MDC item is
    followed by one more word, the program position of the next MDC item (its ADRGs are
    skipped when it fails).
    """
    kind, arg = arrays["cond_kind"], arrays["cond_arg"]
    rs, gs = arrays["rule_start"], arrays["group_start"]
    n_dx, pdx_in = bits.shape[0], COND_KINDS.index("pdx_in")
    pproc_in = COND_KINDS.index("pproc_in")
    column = lambda b: ((bits[:, b >> 6] >> np.uint64(b & 63)) & np.uint64(1)).astype(bool)  # noqa: E731
    s_kind, s_arg, s_start = [], [], [0]
    live = []                                   # bool [n_dx] per rule
    for r in range(len(rs) - 1):
        ok = np.ones(n_dx, dtype=bool)
        for k in range(rs[r], rs[r + 1]):
            if kind[k] == pdx_in:
                ok &= column(int(arg[k]))
            else:
                s_kind.append(kind[k])
                s_arg.append(arg[k])
        s_start.append(len(s_kind))
        live.append(ok)
    # slots: (id, is_mdc, group) in walk order; columns: (slot, rule) pairs
    slots = []
    for m in range(len(mdc_group)):
        slots.append((m, 1, mdc_group[m]))
        slots += [(int(a), 0, adrg_group[a]) for a in adrg_order[mdc_adrg_start[m]:mdc_adrg_start[m + 1]]]
    pairs, rows = [], []
    for si, (_, _, g) in enumerate(slots):
        for r in range(gs[g], gs[g + 1]):
            pairs.append((si, r))
            rows.append(live[r])
    state = np.ascontiguousarray(np.array(rows, dtype=bool).T)        # [n_dx, n_pair]
    keys = np.packbits(state, axis=1)
    keys = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    program, starts = [], [0]
    for row in state[first]:
        by_slot: dict = {}
        for j in np.flatnonzero(row):
            by_slot.setdefault(pairs[j][0], []).append(pairs[j][1])
        mdc_open = None                          # position of the last MDC's skip word
        for si, (sid, is_mdc, _) in enumerate(slots):
            if is_mdc:
                if mdc_open is not None:
                    program[mdc_open] = len(program)
                mdc_open = None
            rules = by_slot.get(si)
            if rules is None or (not is_mdc and mdc_open is None):
                if is_mdc:
                    mdc_open = None
                continue
            if len(rules) == 1 and s_start[rules[0] + 1] - s_start[rules[0]] == 1 \
                    and s_kind[s_start[rules[0]]] == pproc_in:     # one principal-proc bit
                program += [sid << 2 | is_mdc << 1 | 1, s_arg[s_start[rules[0]]]]
            else:
                program += [sid << 2 | is_mdc << 1, len(rules), *rules]
            if is_mdc:
                program.append(-1)
                mdc_open = len(program) - 1
        if mdc_open is not None:
            program[mdc_open] = len(program)
        starts.append(len(program))
    as32 = lambda v: np.asarray(v, dtype=np.int32)   # noqa: E731
    return {"dx_program": as32(inverse.ravel()), "program_start": as32(starts),
            "program": as32(program), "strip_kind": as32(s_kind), "strip_arg": as32(s_arg),
            "strip_start": as32(s_start)}


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
        **_programs(dx_bits, rules, mdc_group, mdc_adrg_start, adrg_order, adrg_group),
        "mdc_group": as32(mdc_group), "mdc_adrg_start": as32(mdc_adrg_start),
        "adrg_order": as32(adrg_order), "adrg_group": as32(adrg_group), "adrg_drg": adrg_drg,
        "mdc_names": list(order), "adrg_names": adrg_names, "drg_names": drg_names,
    }


def compile_tables(tables: DrgTables | None = None, mdc_order=None) -> dict:
    """Compiled arrays for the kernel, with the code indexes ``_drg.lookup_codes`` probes:
    cached per tables object and MDC order in this process, and on disk for the tables of a
    converted folder (``stored.py``: keyed by the hashes of its files), so a run does not
    read and compile the 1.1 tables again. ValueError for an unknown MDC or an empty order."""
    t = tables or load_tables()
    return _compiled(t, None if mdc_order is None else tuple(mdc_order))


@lru_cache(maxsize=16)
def _compiled(t: DrgTables, mdc_order) -> dict:
    if t.folder is None:  # tables built in Python: nothing on disk names them
        return _built(t, mdc_order)
    return stored_or_built(t, mdc_order, lambda: _built(t, mdc_order))


def _built(t: DrgTables, mdc_order) -> dict:
    order = resolve_order(t, mdc_order)
    if not order:
        raise ValueError("mdc_order is empty")
    compiled = _compile(t, order)
    compiled["dx_index"] = _drg.build_code_index(compiled["dx_universe"])
    compiled["proc_index"] = _drg.build_code_index(compiled["proc_universe"])
    return compiled

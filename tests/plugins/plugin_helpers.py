"""Claim batches, registries and kernel-vs-reference runs shared by the plugin tests."""
from __future__ import annotations

import datetime as dt
import functools

import pyarrow as pa
from hypothesis import strategies as st

from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_text
from yibao.plugins.manager import build_registry, make_plugin_manager

SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("person_id", pa.string()), ("family_id", pa.string()),
    ("tier", pa.string()), ("low_income", pa.bool_()), ("setting", pa.string()),
    ("hospital_id", pa.string()), ("hospital_level", pa.int8()), ("hospital_tcm", pa.bool_()),
    ("admit_date", pa.date32()), ("discharge_date", pa.date32()), ("los", pa.int32()),
    ("total", pa.int64()), ("in_scope", pa.int64()), ("self_first", pa.int64()),
    ("tcm_amount", pa.int64()), ("age", pa.int16()),
])
DEFAULTS = {"family_id": None, "tier": "tier1", "low_income": False, "setting": "inpatient",
            "hospital_id": "h1", "hospital_level": 3, "hospital_tcm": False, "los": 3,
            "self_first": 0, "tcm_amount": 0, "age": 40}
HEADER = 'policy "t" {\n  effective 2024-01-01 to 2025-12-31\n}\n'


@functools.lru_cache(maxsize=None)
def shipped_registry():
    """builtin + family + tcm, whatever else is installed or allowed by the environment."""
    return build_registry(make_plugin_manager(allowlist="family,tcm"))


def compile_policy_text(body: str, registry=None):
    return compile_text(HEADER + body, "t.yb", registry=registry or shipped_registry())


def claims(*rows) -> pa.Table:
    """A claim table from partial dicts: ``day`` (date) sets admit and discharge dates."""
    full = []
    for i, r in enumerate(rows):
        r = {**DEFAULTS, **r}
        day = r.pop("day", dt.date(2024, 3, 1))
        r.setdefault("claim_id", f"c{i:03d}")
        r.setdefault("discharge_date", day)
        r.setdefault("admit_date", r["discharge_date"] - dt.timedelta(days=3))
        r.setdefault("in_scope", r.get("total", 0))
        full.append(r)
    return pa.Table.from_pylist(full, schema=SCHEMA)


@st.composite
def claim_rows(draw, max_size=30, persons=5):
    """Rows for ``claims``: a few persons in two households (or none), straddling a year."""
    n = draw(st.integers(0, max_size))
    rows = []
    for i in range(n):
        total = draw(st.one_of(st.integers(0, 5_000_000), st.integers(0, 50_000).map(lambda x: x * 10)))
        in_scope = draw(st.integers(0, total))
        rows.append({
            "claim_id": f"c{draw(st.integers(0, 10**6)):07d}_{i}",
            "person_id": f"p{draw(st.integers(0, persons - 1))}",
            "family_id": draw(st.sampled_from([None, "f0", "f1"])),
            "day": dt.date(2024, 12, 1) + dt.timedelta(days=draw(st.integers(0, 60))),
            "total": total, "in_scope": in_scope,
            "self_first": draw(st.one_of(st.just(0), st.integers(0, in_scope))),
            "tcm_amount": draw(st.integers(0, in_scope)),
            "age": draw(st.integers(0, 100)),
            "hospital_tcm": draw(st.booleans()),
        })
    return rows


def both(plan, table, registry=None, context=None):
    """(kernel results, reference results), asserting the rejects agree too."""
    registry = registry or shipped_registry()
    k = settle(plan, table, registry, context)
    r = settle_reference(plan, table, registry, context)
    assert k.rejects.equals(r.rejects)
    return k.results, r.results


def by_claim(results: pa.Table, column: str) -> dict:
    return dict(zip(results.column("claim_id").to_pylist(), results.column(column).to_pylist()))

"""The table named for each row a lookup misses (``lower.applying_lookups_missing``, the
chunk builds' check): the missed table per such row, "" for the others. When nothing misses
the names are one read-only "" for every row, not an array of row objects made and freed
per chunk (issue 14, w18: ≈ 0.02 s of a 2M run's chunk builds)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from yibao.core.arrow_io import prepare
from yibao.core.lower import applying_lookups_missing
from yibao.core.vector import Evaluator
from yibao.dsl.compiler import compile_policy
from claim_edits import shuffled_with_rejects as _claims  # tests/ is on the path


def _names(plan, registry, claims):
    prep = prepare(plan, claims)
    ev = Evaluator(plan, prep.columns, prep.n, registry)
    return applying_lookups_missing(plan, ev)


def test_no_miss_names_no_table_and_makes_no_row_objects(plan, registry):
    missing, which = _names(plan, registry, _claims(500, seed=3))
    assert not missing.any() and len(which) == len(missing)
    assert set(which.tolist()) == {""}
    assert which.strides == (0,) and not which.flags.writeable  # one "" seen by every row


POLICY = """
policy "by hospital" {
  region "test"
  effective 2024-01-01 to 2025-12-31
}
table by_hospital (hospital_id) -> ratio from "ratios.csv"
layer basic "B" {
  base total
  ratio by_hospital[hospital_id]
}
"""


def test_a_miss_names_its_table_on_its_rows_only(registry, tmp_path):
    """A table by hospital without a row for one hospital in three: exactly those
    hospitals' rows are named, with that table; every other row names none."""
    claims = _claims(500, seed=3)
    hospitals = sorted(set(claims.column("hospital_id").drop_null().to_pylist()))
    kept = [h for i, h in enumerate(hospitals) if i % 3]
    (tmp_path / "policy.yb").write_text(POLICY, encoding="utf-8")
    (tmp_path / "ratios.csv").write_text(
        "hospital_id,value\n" + "".join(f"{h},0.8\n" for h in kept), encoding="utf-8")
    plan = compile_policy(str(tmp_path), registry)
    prep = prepare(plan, claims)
    missing, which = _names(plan, registry, claims)
    unknown = ~np.isin(np.asarray(prep.raw.column("hospital_id").to_pylist(), dtype=object),
                       np.asarray(kept, dtype=object))
    assert unknown.any() and np.array_equal(missing, unknown) and which.flags.writeable
    assert set(which[missing].tolist()) == {"by_hospital"}
    assert set(which[~missing].tolist()) == {""}

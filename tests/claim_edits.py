"""Small edits of generated claims that several test folders share (tests/ is on the path,
tests/conftest.py): a column's values set at some rows, and a shuffled batch with the rejects
every run must keep out of the kernel."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from yibao.core.generate import generate_claims


def with_values(claims: pa.Table, name: str, at: dict) -> pa.Table:
    """``claims`` with column ``name`` set to ``at[row]`` at each row of ``at`` (its type kept)."""
    values = claims.column(name).to_pylist()
    for row, value in at.items():
        values[row] = value
    i = claims.schema.get_field_index(name)
    return claims.set_column(i, claims.schema.field(i), pa.array(values,
                                                                 claims.schema.field(i).type))


def shuffled_with_rejects(n: int, seed: int) -> pa.Table:
    """Generated claims in a shuffled row order, with a claim id used twice (both copies
    rejected), a null id and a negative total: rejects before the kernel."""
    claims = generate_claims(n, seed=seed)
    ids = claims.column("claim_id").to_pylist()
    ids[3], ids[n // 2] = ids[n - 2], None
    total = claims.column("total").to_pylist()
    total[7] = -5
    claims = claims.set_column(0, "claim_id", pa.array(ids, pa.string()))
    claims = claims.set_column(claims.schema.get_field_index("total"), "total",
                               pa.array(total, pa.int64()))
    return claims.take(pa.array(np.random.default_rng(seed).permutation(n)))


def hospital_ratio_policy(policy: str, claims: pa.Table) -> tuple:
    """(policy text, ratios.csv text): ``policy``'s flat ``ratio 80%`` read from a table by
    hospital that has no row for one hospital in ten of ``claims``, so their claims are
    rejected while the kernel runs (``missing_table_key``)."""
    hospitals = sorted(set(claims.column("hospital_id").to_pylist()))
    rows = "".join(f"{h},0.8\n" for i, h in enumerate(hospitals) if i % 10)
    text = policy.replace("  ratio 80%\n", "  ratio by_hospital[hospital_id]\n").replace(
        "layer basic", 'table by_hospital (hospital_id) -> ratio from "ratios.csv"\n\n'
        "layer basic")
    return text, "hospital_id,value\n" + rows

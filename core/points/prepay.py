"""Monthly prepayments (月度预付) given with a run instead of beside the policy.

``with_prepayments(plan, table)`` returns the plan with each pool's ``prepayments`` replaced by
the table's rows for that pool (pools the table does not name keep theirs). ``plan`` is a
``PointsPlan`` or a ``yibao.core.plan.Plan`` with a provider part. Table columns:

===========  ==========================================================
pool         the pool's name (may be omitted when the plan has one pool)
hospital_id  the hospital (``fixmedins_code`` in the outputs)
month        ``YYYY-MM``
prepaid      int fen prepaid for that hospital and month
===========  ==========================================================

Settlement subtracts Σ prepaid per hospital and lists, per hospital, the months whose
prepayment is below the pool's ``prepay_floor`` (85% unless the policy says otherwise) of the
month's fee-for-service fund amount (``prepay_below`` in hospitals.parquet).
"""
from __future__ import annotations

import dataclasses
import re

import pyarrow as pa

from .plan import PointsPlan

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def prepayment_rows(points: PointsPlan, table: pa.Table) -> dict:
    """pool name -> ((hospital_id, month, fen), ...), checked; ValueError names the bad row."""
    missing = {"hospital_id", "month", "prepaid"} - set(table.column_names)
    if missing:
        raise ValueError(f"prepayments need the columns {sorted(missing)}")
    names = [p.name for p in points.pools]
    if "pool" not in table.column_names and len(names) != 1:
        raise ValueError(f"prepayments need a 'pool' column: the plan has pools {names}")
    out = {}
    for n, row in enumerate(table.to_pylist(), 1):
        pool = row.get("pool", names[0])
        if pool not in names:
            raise ValueError(f"prepayments row {n}: unknown pool {pool!r} (pools: {names})")
        month, fen = str(row["month"] or ""), row["prepaid"]
        if not _MONTH.fullmatch(month):
            raise ValueError(f"prepayments row {n}: month {month!r} is not YYYY-MM")
        if row["hospital_id"] is None or not isinstance(fen, int) or fen < 0:
            raise ValueError(f"prepayments row {n}: needs a hospital_id and a prepaid ≥ 0 fen")
        out.setdefault(pool, []).append((str(row["hospital_id"]), month, fen))
    return {k: tuple(v) for k, v in out.items()}


def with_prepayments(plan, table: pa.Table):
    """The plan with the table's monthly prepayments (see the module doc)."""
    points = plan if isinstance(plan, PointsPlan) else plan.provider
    if points is None:
        raise ValueError("the plan has no provider payment pools to prepay")
    rows = prepayment_rows(points, table)
    pools = tuple(dataclasses.replace(p, prepayments=rows[p.name]) if p.name in rows else p
                  for p in points.pools)
    new = dataclasses.replace(points, pools=pools)
    return new if isinstance(plan, PointsPlan) else dataclasses.replace(plan, provider=new)

"""summary.json names every layer of the policy whatever the mode: a partitioned run that
settles no row (an empty input, every row rejected) listed ``"layers": {}`` where the
in-memory run lists each layer at 0 (found in the session-9 review; ``Totals.expect_layers``).
Results never depend on how the input is partitioned, and the summary is part of them."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core.generate import write_claims
from yibao.core.policy import Policy
from yibao.core.runner import iter_settle, run_settle


def _layers(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())["layers"]


def _every_row_rejected(claims: pa.Table) -> pa.Table:
    i = claims.schema.get_field_index("total")
    return claims.set_column(i, "total", pc.multiply(claims.column("total"), -1))


@pytest.mark.parametrize("rows", ["none", "all rejected"])
def test_layers_are_listed_in_every_mode(plan, registry, claims, tmp_path, rows):
    table = claims.slice(0, 0) if rows == "none" else _every_row_rejected(claims.slice(0, 500))
    path = tmp_path / "claims.parquet"
    write_claims(table, path)
    run_settle(plan, path, tmp_path / "m", registry=registry, progress=False)
    for partitions in (1, 3):
        run_settle(plan, path, tmp_path / f"p{partitions}", registry=registry,
                   progress=False, partitions=partitions)
        assert _layers(tmp_path / f"p{partitions}") == _layers(tmp_path / "m")
    assert _layers(tmp_path / "m") == {name: 0 for name in Policy.of(plan).layer_names()}
    summary = json.loads((tmp_path / "p3" / "summary.json").read_text())
    assert summary["rejected"]["rows"] == table.num_rows and summary["settled"]["rows"] == 0


def test_iter_settle_counts_every_layer_of_an_empty_stream(plan, registry, claims, tmp_path):
    from yibao.core.manifest import Totals
    totals = Totals()
    parts = list(iter_settle(plan, [claims.slice(0, 0)], tmp_path / "w", partitions=2,
                             registry=registry, totals=totals))
    assert sum(r.num_rows for r, _ in parts) == 0
    assert totals.layers == {name: 0 for name in Policy.of(plan).layer_names()}

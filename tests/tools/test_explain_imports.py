"""`yibao explain` imports what explaining the claim needs (issue 13): a policy without a
provider part or flags imports no provider payment, grouping or supervision runtime. A
structure test (a fresh process reports ``sys.modules``), not a timed one."""
from __future__ import annotations

import pyarrow.parquet as pq

from yibao.core.generate import generate_claims

from .conftest import CONFIGS
from .test_startup_modules import modules_of, under

PROVIDER_AND_SUPERVISION = ("yibao.core.provider", "yibao.core.grouping.table",
                            "yibao.core.grouping.reference", "yibao.core.points.reference",
                            "yibao.core.points.compute", "yibao.core.supervision.explain",
                            "yibao.core.supervision.run")


def test_explaining_under_a_policy_without_provider_part_imports_none_of_it(tmp_path):
    claims = generate_claims(200, seed=2)
    path = tmp_path / "c.parquet"
    pq.write_table(claims, path)
    code, loaded = modules_of("explain", str(CONFIGS / "reference"), str(path),
                              "--claim-id", claims.column("claim_id")[0].as_py())
    assert code == 0
    assert under(loaded, PROVIDER_AND_SUPERVISION) == []

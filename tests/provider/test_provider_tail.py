"""An in-memory run writes hospitals.parquet and pools.parquet as soon as the year's sums
are in, while the results writer still encodes claims.parquet, not after it (issue 14, p19:
they were on the run's tail); written once, with the same bytes and per-pool totals."""
from __future__ import annotations

import pytest

from yibao.core import runner
from yibao.core.generate import generate_claims, write_claims
from yibao.dsl.commands._common import registry as full_registry
from yibao.dsl.compiler import compile_policy


@pytest.fixture(scope="module")
def registry():
    return full_registry()


def test_provider_outputs_staged_before_waiting_for_the_results_writer(
        registry, tmp_path, monkeypatch):
    plan = compile_policy("city_configs/jinhua", registry=registry)
    write_claims(generate_claims(5_000), tmp_path / "in.parquet", row_group_size=2_000)
    seen, writes = [], []
    close, write = runner._ResultsOut.close, runner._write_provider

    def closing(self):
        seen.append(sorted(p.name for p in self.out.staging.iterdir()))
        close(self)

    def writing(*args):
        writes.append(1)
        return write(*args)
    monkeypatch.setattr(runner._ResultsOut, "close", closing)
    monkeypatch.setattr(runner, "_write_provider", writing)
    summary = runner.run_settle(plan, tmp_path / "in.parquet", tmp_path / "out",
                                registry=registry, progress=False)
    assert len(seen) == 1 and {"hospitals.parquet", "pools.parquet"} <= set(seen[0])
    assert writes == [1]  # once, its totals reused for summary.json
    assert summary.pools and set(summary.pools) == {p.name for p in plan.provider.pools}

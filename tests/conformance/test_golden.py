"""The golden batch of shared/golden, settled by the kernel and by the reference evaluator."""
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference

from .plans import reference_plan

LAYERS = ["basic_inpatient", "basic_outpatient", "critical", "assistance", "self_pay"]


def _by_id(table):
    return {cid: row for cid, row in zip(table.column("claim_id").to_pylist(),
                                          table.select(LAYERS).to_pylist())}


@pytest.mark.parametrize("evaluator", [settle, settle_reference], ids=["kernel", "reference"])
def test_golden_batch_to_the_fen(golden, evaluator):
    claims, expected = golden
    result = evaluator(reference_plan(), claims)
    assert result.rejects.num_rows == 0
    got, want = _by_id(result.results), _by_id(expected)
    assert got.keys() == want.keys()
    wrong = [cid for cid in want if got[cid] != want[cid]]
    assert not wrong, f"{len(wrong)} claims differ, e.g. {wrong[0]}: {got[wrong[0]]} != {want[wrong[0]]}"

"""An open text column compared with a text literal (``applies when hospital_id = "H03"``):
the compiler accepts it, and the kernel's evaluator raised ``ValueError`` turning the literal
into an integer (an internal error for the user; session 10 review). Kernel == reference."""
import pytest

from yibao.core.engine import settle
from yibao.core.generate import generate_claims
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_text

POLICY = '''policy "文本条件" {
  region "test"
  effective 2024-01-01 to 2025-12-31
}
layer basic "B" {
  applies when hospital_id OP "H03"
  base total
  ratio 50%
}
'''


@pytest.mark.parametrize("op", ["=", "!="])
def test_open_text_equals_a_literal_on_the_kernel_as_on_the_reference(op):
    plan = compile_text(POLICY.replace("OP", op))
    claims = generate_claims(2_000, seed=3)
    hospitals = set(claims.column("hospital_id").to_pylist())
    assert "H03" in hospitals and len(hospitals) > 1  # both branches are taken
    kernel, reference = settle(plan, claims), settle_reference(plan, claims)
    assert kernel.results.equals(reference.results)
    assert kernel.rejects.equals(reference.rejects)
    paid = [r["basic"] > 0 for r in kernel.results.to_pylist()]
    assert any(paid) and not all(paid)

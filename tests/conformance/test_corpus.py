"""Every case of the conformance corpus, on the kernel and on the reference evaluator."""
import pytest

from yibao.core.engine import settle
from yibao.core.reference import settle as settle_reference
from yibao.dsl.compiler import compile_text

from .corpus import claims_table, compile_doc, expected, fen, load_corpus

CASES = list(load_corpus())


@pytest.mark.parametrize("evaluator", [settle, settle_reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("stem,doc,case", CASES, ids=[f"{s}:{c['name']}" for s, _, c in CASES])
def test_corpus_case(stem, doc, case, evaluator, tmp_path):
    policy = compile_doc(stem, doc, tmp_path)
    out = evaluator(policy, claims_table(case["claims"]))
    got = {row["claim_id"]: row for row in out.results.to_pylist()}
    rejected = dict(zip(out.rejects.column("claim_id").to_pylist(),
                        out.rejects.column("reason").to_pylist()))
    assert rejected == case.get("rejects", {})
    for claim_id, want in case.get("expect", {}).items():
        assert claim_id in got, f"{claim_id} was not settled (rejects: {rejected})"
        for column, value in want.items():
            assert got[claim_id][column] == expected(column, value), (
                f"{claim_id}.{column}: got {got[claim_id][column]}, expected {value}")


def test_corpus_covers_versions_and_provider_payment():
    """Both backends run a policy of several versions and a provider pool (issue 13)."""
    assert any("versions" in doc for _, doc, _ in CASES)
    assert any("pool " in text for _, doc, _ in CASES
               for text in doc.get("versions", [doc.get("policy", "")]))


def test_corpus_covers_every_layer_feature():
    text = "\n".join(doc.get("policy", "") for _, doc, _ in CASES)
    for feature in ("per claim", "per person per year", "bands", "self_pay_limit",
                    "continuing when", "year starts", "cap basic", " when "):
        assert feature in text, f"no corpus case uses {feature!r}"


@pytest.mark.parametrize("stem,doc,case", CASES, ids=[f"{s}:{c['name']}" for s, _, c in CASES])
def test_decimal_yuan_input_settles_like_int64_fen(stem, doc, case, tmp_path):
    """Money given as decimal128(p, 2) yuan is the same money as int64 fen."""
    from decimal import Decimal

    import pyarrow as pa
    plan = compile_doc(stem, doc, tmp_path)
    fen_table = claims_table(case["claims"])
    yuan_table = fen_table
    for name in ("total", "in_scope", "self_first"):
        i = yuan_table.schema.get_field_index(name)
        as_decimal = pa.array([None if v is None else Decimal(v).scaleb(-2)
                               for v in fen_table.column(name).to_pylist()], pa.decimal128(14, 2))
        yuan_table = yuan_table.set_column(i, name, as_decimal)
    a, b = settle(plan, fen_table), settle(plan, yuan_table)
    assert a.results.equals(b.results)
    assert a.rejects.column("reason").equals(b.rejects.column("reason"))


@pytest.mark.parametrize("stem,doc,case", CASES, ids=[f"{s}:{c['name']}" for s, _, c in CASES])
def test_corpus_in_chunks_of_one_row(stem, doc, case, monkeypatch, tmp_path):
    """Accumulators carry across chunks; a row missing a table row is skipped, then rejected."""
    import yibao.core.engine as engine
    plan = compile_doc(stem, doc, tmp_path)
    table = claims_table(case["claims"])
    whole = settle(plan, table)
    monkeypatch.setattr(engine, "CHUNK_ROWS", 1)
    one = settle(plan, table)
    assert one.results.equals(whole.results) and one.rejects.equals(whole.rejects)

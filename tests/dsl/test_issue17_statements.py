"""Issue 17 item 6 in the language: accumulators refined by a column or by the month
(`per person and mtb_disease per year`, `per person per month`) and band sets for the poor
(`when COND { … }` inside `bands`) — parsed, checked, lowered, printed, formatted, and split
by person when a run is partitioned."""
import pytest

from yibao.core import plan as P
from yibao.core.partition import partition_key
from yibao.dsl.compiler import check_text, compile_text
from yibao.dsl.parser import parse
from yibao.dsl.printer import format_policy

HEAD = '''policy "t" {
  region "test"
  effective 2024-01-01 to 2024-12-31
}

attribute mtb_disease: text of {none, diabetes, uremia}
'''

POLICY = HEAD + '''
layer chronic "门慢" {
  applies when setting = outpatient
  base in_scope
  deductible 100 yuan per person and mtb_disease per month
  cap 1_000 yuan per person and mtb_disease per year
}

layer critical "大病" {
  base in_scope - paid(chronic)
  bands per person per year {
    0 to 10_000 yuan: 50%
    10_000 yuan and above: 60%
    when low_income {
      0 to 5_000 yuan: 60%
      5_000 yuan and above: 80%
    }
  }
  self_pay_limit 5_000 yuan per person per month
}
'''


def compiled(text=POLICY):
    return compile_text(text, "t.yb")


def test_a_refined_scope_lowers_to_a_refined_key():
    plan = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", ""))
    chronic = plan.layer("chronic")
    assert chronic.caps[0].key == P.Key("person&mtb_disease", "person_id", ("mtb_disease",))
    assert chronic.deductible.key.period == P.MONTH
    assert chronic.deductible.key.by == ("mtb_disease",)
    assert chronic.deductible.scope == P.PER_YEAR  # accumulated, over the refined key
    assert "mtb_disease" in {c.name for c in plan.columns}


def test_band_sets_lower_in_order_with_their_conditions():
    plan = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", ""))
    bands = plan.layer("critical").ratio
    assert [b.rate for b in bands.bands] == [500_000, 600_000]
    (alt,) = bands.alts
    assert isinstance(alt.cond, P.Column) and alt.cond.name == "low_income"
    assert [(b.lo, b.hi, b.rate) for b in alt.bands] == [(0, 500_000, 600_000),
                                                         (500_000, None, 800_000)]
    assert bands.chosen(1) == alt.bands and bands.chosen(0) == bands.bands


def test_plan_prints_scopes_and_band_sets_as_written():
    text = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n",
                                   "")).describe()
    assert "deductible per person and mtb_disease per month: 100.00" in text
    assert "cap per person and mtb_disease per year: 1,000.00" in text
    assert "  when low_income:\n" in text
    assert "      5,000.00 and above: 80%" in text


def test_plan_json_round_trips_refined_keys_and_band_sets():
    plan = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", ""))
    assert P.Plan.from_json(plan.to_json()) == plan


def test_fmt_keeps_the_new_statements():
    text = POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", "")
    once = format_policy(parse(text, "t.yb"))
    assert "deductible 100 yuan per person and mtb_disease per month" in once
    assert "    when low_income {\n      0 to 5_000 yuan: 60%" in once
    assert format_policy(parse(once, "t.yb")) == once
    assert compile_text(once, "t.yb") == compile_text(text, "t.yb")


def test_a_refined_key_is_split_by_its_plain_key():
    plan = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", ""))
    assert partition_key(plan) == P.PERSON


@pytest.mark.parametrize("line, code", [
    ("cap 10 yuan per person and nonesuch per year", "E201"),
    ("cap 10 yuan per person and total per year", "E414"),
    ("cap 10 yuan per nobody and mtb_disease per year", "E204"),
])
def test_a_bad_refinement_is_reported(line, code):
    text = HEAD + f"layer a {{\n  base in_scope\n  {line}\n}}\n"
    _, diags = check_text(text, "t.yb")
    assert code in {d.code for d in diags}


def test_a_band_set_condition_must_be_bool():
    text = POLICY.replace("when low_income {", "when in_scope {")
    _, diags = check_text(text, "t.yb")
    assert "E210" in {d.code for d in diags}


def test_a_band_set_rate_above_100_percent_is_e413():
    text = POLICY.replace("5_000 yuan and above: 80%", "5_000 yuan and above: 80")
    _, diags = check_text(text, "t.yb")
    assert "E413" in {d.code for d in diags}


def test_explain_names_the_band_set_and_the_refined_accumulator():
    import datetime

    import pyarrow as pa

    from yibao.core.explain import explain_claim, format_explanation
    plan = compiled(POLICY.replace("  self_pay_limit 5_000 yuan per person per month\n", ""))
    row = dict(claim_id="X", person_id="p1", family_id=None, tier="tier1", low_income=True,
               setting="outpatient", hospital_id="h", hospital_level=3, hospital_tcm=False,
               admit_date=datetime.date(2024, 3, 1), discharge_date=datetime.date(2024, 3, 9),
               los=1, total=2_000_000, in_scope=2_000_000, self_first=0,
               mtb_disease="diabetes")
    text = format_explanation(explain_claim(plan, pa.Table.from_pylist([row]), "X"))
    assert "for person p1 · diabetes · 2024-03" in text  # the deductible per disease and month
    assert "for person p1 · diabetes" in text  # the yearly cap per disease
    assert "(when low_income rates)" in text
    assert "band 1 [0.00, 5,000.00) 60%" in text


def test_yibao_test_coverage_tells_band_sets_apart(tmp_path, capsys):
    """A case of a poor person enters the poor set's first band, not the default set's."""
    from yibao.dsl.cli import main
    (tmp_path / "policy.yb").write_text(POLICY.replace(
        "  self_pay_limit 5_000 yuan per person per month\n", ""), encoding="utf-8")
    (tmp_path / "tests.yaml").write_text(
        "- name: poor\n"
        "  claims:\n"
        "    - {claim_id: X, person_id: p, low_income: true, setting: inpatient,\n"
        "       discharge_date: 2024-03-01, total: 3000, in_scope: 3000, self_first: 0,\n"
        "       mtb_disease: none}\n"
        "  expect:\n"
        "    X: {critical: 1800}\n", encoding="utf-8")
    assert main(["test", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "band 0.00 to 10,000.00: 50% never entered" in out
    assert "band when low_income: 0.00 to 5,000.00: 60% never entered" not in out
    assert "band when low_income: 5,000.00 and above: 80% never entered" in out

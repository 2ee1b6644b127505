"""``plan.scheme_mdcs`` reads the MDC names of a converted scheme by decoding scheme.json only
up to its ``mdc`` member (``plan.json_member``; issue 14 c18: `yibao check` of a DRG city
decoded 1.1 MB for 26 names). For an object without a repeated key (the converter writes
scheme.json from a dict) it must say exactly what ``json.loads(text)[key]`` says."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.grouping.plan import DRG_DATA, DEFAULT_TABLES, json_member, scheme_mdcs


def test_the_shipped_scheme_gives_every_mdc_in_its_order():
    scheme = json.loads((DRG_DATA / DEFAULT_TABLES / "scheme.json").read_text(encoding="utf-8"))
    assert scheme_mdcs(DEFAULT_TABLES) == tuple(scheme["mdc"]) and len(scheme["mdc"]) == 26


values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), values, max_size=6), st.text(max_size=6),
       st.sampled_from([None, 0, 2]), st.booleans())
def test_a_member_is_what_json_loads_gives(obj, key, indent, spaced):
    separators = (" , ", " : ") if spaced else None
    text = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=False)
    text = f" \n{text}\t\r\n" if spaced else text
    if key in obj:
        assert json_member(text, key) == obj[key]
    else:
        with pytest.raises(KeyError):
            json_member(text, key)


@pytest.mark.parametrize("text", ['{"a": 1, "mdc": [1,', '{"a": 1 "mdc": 2}', '[1, 2]', '',
                                  '{"a": 1,}', '{"a" 1}', '"mdc"'])
def test_text_that_is_no_json_object_fails_as_json_loads_does(text):
    with pytest.raises(Exception) as expected:
        json.loads(text)["mdc"]
    with pytest.raises(type(expected.value)):
        json_member(text, "mdc")


def test_the_members_after_the_one_asked_for_are_not_decoded():
    assert json_member('{"mdc": {"MDCA": 1}, "rest": [not json', "mdc") == {"MDCA": 1}

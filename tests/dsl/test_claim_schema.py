"""The claim record is written once (core/claims.py): the compiler's built-in columns, the
sample generator's schema and the policy test runner's columns are views of it."""
import pyarrow as pa

from yibao.core import claims, generate, policytest
from yibao.core.plan import BOOL, DATE, INT, MONEY, TEXT
from yibao.dsl.passes import BUILTIN_COLUMNS

ARROW_KINDS = {TEXT: (pa.types.is_string, pa.types.is_dictionary), BOOL: (pa.types.is_boolean,),
               INT: (pa.types.is_integer,), MONEY: (pa.types.is_int64,),
               DATE: (pa.types.is_date32,)}


def test_every_built_in_column_is_stored_with_a_matching_arrow_type():
    stored = {f.name: f.type for f in claims.STANDARD_SCHEMA}
    for name, t in BUILTIN_COLUMNS.items():
        assert any(ok(stored[name]) for ok in ARROW_KINDS[t.kind]), (name, stored[name])


def test_generator_and_test_runner_use_the_standard_record():
    n = len(claims.STANDARD_SCHEMA)
    assert pa.schema(list(generate.CLAIM_SCHEMA)[:n]) == claims.STANDARD_SCHEMA
    assert list(policytest.STANDARD.items()) == [(f.name, f.type) for f in claims.STANDARD_SCHEMA]
    assert BUILTIN_COLUMNS is claims.PLAN_TYPES

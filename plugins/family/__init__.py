"""The ``family`` plugin (金华 家庭型医疗保障 pilot; 家庭共济):

- the ``family`` accumulator key (column ``family_id``; a null falls back to the person), so a
  policy can write ``deductible 2_000 yuan per family per year`` or ``cap … per family per year``;
- a validator rejecting a blank ``family_id`` (``family_id_blank``) when the plan groups by
  family: an empty string would make every such claim one household;
- the ``family_mutual_aid`` stage (家庭共济, see ``mutual_aid``).
"""
from __future__ import annotations

from yibao.core.lazy import lazy_module
from yibao.core.registry import KeyDecl, Stage, Validator

from ..hookspecs import hookimpl

# imported by the first validation, not at registration: compiling needs no Arrow (core/lazy.py)
np, pa, pc = lazy_module("numpy"), lazy_module("pyarrow"), lazy_module("pyarrow.compute")

__version__ = "0.1.0"
FAMILY = KeyDecl("family", "family_id", "the household (家庭): claims of one family_id; "
                 "a null family_id falls back to the person")


def check_blank_family(plan, columns, raw: pa.Table, n: int):
    """Rows whose family_id is an empty or all-blank string, when the plan uses the key."""
    if FAMILY.name not in {k.name for k in plan.keys()} or "family_id" not in raw.column_names:
        return np.zeros(n, bool), []
    col = raw.column("family_id").cast(pa.string())
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), False)
    mask = np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    return mask, "family_id is blank; use null for a person without a household"


def uses_family(plan) -> bool:
    """Whether ``check_blank_family`` can reject a claim under ``plan``: it accumulates per
    family."""
    return FAMILY.name in {k.name for k in plan.keys()}


@hookimpl
def yibao_register_keys(registry):
    """The ``family`` key."""
    registry.add_key(FAMILY)


@hookimpl
def yibao_register_validators(registry):
    """Reject blank family ids when the plan accumulates per family."""
    # no claim column of its own: it reads family_id only under the family key, and a run
    # reads a key's column anyway (sources.read_columns), so a plan without the key does not
    # decode family_id for it (issue 14, w16: ~0.06 s of CPU of a 2M-claim run's reading)
    registry.add_validator(Validator("family_id_not_blank", "family_id_blank", check_blank_family,
                                     claim_columns=(), acts_on=uses_family))


@hookimpl
def yibao_register_stages(registry):
    """家庭共济: personal accounts pay bound family members' self-pay."""
    registry.add_stage(Stage("family_mutual_aid", run_mutual_aid, MUTUAL_AID_COLUMNS,
                             reference_mutual_aid, claim_columns=("person_id",),
                             acts_on=lambda context: context.get("balances") is not None))


# the stage's module (numpy, pyarrow, its Cython loop) is imported by a run that calls it,
# not by registering it: a command that settles no batch (check, explain --run) needs none
MUTUAL_AID_COLUMNS = (("acct_mulaid_pay", "int64"), ("balc", "int64"))  # Arrow type names


def run_mutual_aid(plan, results, claims, context):
    """mutual_aid.run (the vectorised stage)."""
    from . import mutual_aid
    return mutual_aid.run(plan, results, claims, context)


def reference_mutual_aid(plan, results, claims, context):
    """mutual_aid.reference (the plain-Python stage the conformance tests compare)."""
    from . import mutual_aid
    return mutual_aid.reference(plan, results, claims, context)

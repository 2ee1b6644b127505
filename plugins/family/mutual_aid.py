"""家庭共济 (family mutual aid): an employee's personal account (个人账户) pays the self-pay
of the family members bound to it, claim by claim in settlement order.

Inputs, through ``context`` (``engine.settle(..., context=...)``):

- ``context["balances"]``: a table with ``person_id`` (string, the account owner, unique) and
  ``balance`` (int64 fen, ≥ 0, not null): the opening balance of each account for this batch.
- ``context["bindings"]`` (optional): a table with ``person_id`` (string, a family member,
  unique) and ``bound_to`` (string, the owner whose account pays for them).

A claim draws on an account when its person owns one (the owner's own self-pay comes first:
a personal account is the owner's before it is the family's), otherwise on the account the
person is bound to when that owner has a balance row; otherwise it draws nothing.
Claims are taken in settlement order (discharge_date, claim_id) over all accounts; the balance
never goes below zero and is not reset at a year boundary (one opening balance per batch; to
settle several batches in a row feed each account's last ``balc`` forward).

Output columns: ``acct_mulaid_pay`` (int64 fen, what the account paid; 0 without an account)
and ``balc`` (int64 fen, the balance left after this claim; null without an account).
``self_pay`` is NOT changed: it stays the insured's share after the fund layers, and the
person's cash out-of-pocket is ``self_pay − acct_mulaid_pay``. Without ``balances`` in the
context every claim gets 0 and null (the stage is a no-op, not an error).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import MUTUAL_AID_COLUMNS
from ._mutual_aid import draw_accounts
from yibao.core.errors import YibaoError

COLUMNS = tuple((name, pa.type_for_alias(t)) for name, t in MUTUAL_AID_COLUMNS)  # the stage's


class MutualAidInputError(YibaoError, ValueError):
    """A balances table the mutual-aid stage cannot use (the message says which column)."""


def _column(table: pa.Table, name: str, what: str) -> pa.Array:
    if name not in table.column_names:
        raise MutualAidInputError(f"{what} table has no column {name!r}")
    col = table.column(name).combine_chunks()
    if col.null_count:
        raise MutualAidInputError(f"{what} column {name!r} has nulls")
    return col


def _unique(col: pa.Array, what: str) -> None:
    if len(pc.unique(col)) != len(col):
        counts = pc.value_counts(col)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise MutualAidInputError(f"{what} lists {dup!r} more than once")


def read_accounts(context: dict) -> tuple:
    """(owner ids: pa.StringArray, opening balances: int64 numpy, bindings or None),
    checked: unique owners, non-negative non-null balances, unique bound members."""
    balances = context.get("balances")
    if balances is None:
        return pa.array([], pa.string()), np.zeros(0, np.int64), None
    owners = _column(balances, "person_id", "balances").cast(pa.string())
    amount = _column(balances, "balance", "balances")
    if not pa.types.is_integer(amount.type):
        raise MutualAidInputError(f"balances column 'balance' must be int64 fen, not {amount.type}")
    amount = np.asarray(amount.to_numpy(), dtype=np.int64)
    if (amount < 0).any():
        raise MutualAidInputError("balances column 'balance' has a negative amount")
    _unique(owners, "balances")
    bindings = context.get("bindings")
    if bindings is not None:
        members = _column(bindings, "person_id", "bindings").cast(pa.string())
        _unique(members, "bindings")
        bindings = (members, _column(bindings, "bound_to", "bindings").cast(pa.string()))
    return owners, amount, bindings


def account_index(person: pa.Array, owners: pa.Array, bindings) -> np.ndarray:
    """Per claim the index of the account it draws on (into ``owners``), -1 for none."""
    own = pc.index_in(person, value_set=owners)
    if bindings is not None:
        members, bound_to = bindings
        row = pc.index_in(person, value_set=members)
        owner = pc.take(bound_to, row)  # null where not bound
        via = pc.index_in(owner, value_set=owners)
        own = pc.coalesce(own, via)
    return np.ascontiguousarray(pc.fill_null(own, -1).to_numpy(zero_copy_only=False),
                                dtype=np.int64)


def _outputs(pay: np.ndarray, left: np.ndarray, account: np.ndarray) -> dict:
    return {"acct_mulaid_pay": pay, "balc": np.ma.masked_array(left, mask=account < 0)}


def run(plan, results: pa.Table, claims: pa.Table, context: dict) -> dict:
    """The stage (Cython loop): results and claims are in settlement order. Without a
    balances table the run is not a mutual-aid run and no columns are added."""
    if context.get("balances") is None:
        return None
    owners, balance, bindings = read_accounts(context)
    person = claims.column("person_id").combine_chunks().cast(pa.string())
    account = account_index(person, owners, bindings)
    self_pay = np.ascontiguousarray(results.column("self_pay").to_numpy(), dtype=np.int64)
    pay = np.zeros(len(account), np.int64)
    left = np.zeros(len(account), np.int64)
    draw_accounts(account, self_pay, np.ascontiguousarray(balance.copy()), pay, left)
    return _outputs(pay, left, account)


def reference(plan, results: pa.Table, claims: pa.Table, context: dict) -> dict:
    """The same stage written claim by claim with dicts, from the module docstring."""
    balances = context.get("balances")
    if balances is None:
        return None
    left_of = {}
    if balances is not None:
        left_of = dict(zip(balances.column("person_id").to_pylist(),
                           balances.column("balance").to_pylist()))
    bound = {}
    if balances is not None and context.get("bindings") is not None:
        b = context["bindings"]
        bound = dict(zip(b.column("person_id").to_pylist(), b.column("bound_to").to_pylist()))
    pays, lefts = [], []
    for person, self_pay in zip(claims.column("person_id").to_pylist(),
                                results.column("self_pay").to_pylist()):
        owner = person if person in left_of else bound.get(person)
        if owner not in left_of:
            pays.append(0)
            lefts.append(None)
            continue
        pay = min(max(self_pay, 0), left_of[owner])
        left_of[owner] -= pay
        pays.append(pay)
        lefts.append(left_of[owner])
    return {"acct_mulaid_pay": pays, "balc": lefts}

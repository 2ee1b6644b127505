"""`yibao explain POLICY CLAIMS --claim-id X`: every step that settled one claim."""
from __future__ import annotations

import json

NAME = "explain"
HELP = "explain one claim: each layer's base, deductible, table row, rounding, caps and result"


def add_arguments(parser):
    from ._common import add_cache_option, add_policy_and_claims
    add_policy_and_claims(parser, claims="1")
    add_cache_option(parser)
    parser.add_argument("--claim-id", required=True, help="the claim to explain")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")
    parser.add_argument("--drg", action="store_true",
                        help="also show the CHS-DRG grouping path (MDC → ADRG → DRG)")
    parser.add_argument("--run", metavar="OUT",
                        help="the `yibao settle --out OUT --key-index` folder of these claims: "
                             "read the claim's key-mates from the key index settle wrote there "
                             "instead of scanning the claims (the same output; without a "
                             "current index, one note on stderr and the claims are scanned)")


def _version_for(plans, claims, claim_id):
    """The version in force on the claim's discharge date (the first one if not found)."""
    import pyarrow.compute as pc
    from yibao.core.settlement import discharge_days, version_index
    mine = claims.filter(pc.equal(claims.column("claim_id"), claim_id))
    if mine.num_rows == 0:
        return plans[0]
    which = int(version_index(plans, discharge_days(mine))[0])
    return plans[max(which, 0)]


def run(args) -> int:
    import os
    # explain does no linear algebra: the OpenBLAS thread pool numpy starts when first
    # imported is start-up cost only (measured: ≈ 0.04 s of explain's ≈ 0.4 s CPU)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if getattr(args, "run", None):
        index = _IndexRead(args)
        try:
            return _explain(args, index)
        finally:
            index.close()  # a policy that fails to compile returns before the thread is read
    from yibao.core.key_mates import ALWAYS, ClaimIds
    from ._policies import policy_words
    # read ahead in a thread while the policy compiles: the ids, the claim's key-mates by
    # person, and the columns the policy's text names at their rows
    ids = ClaimIds(args.claims, args.claim_id, [*ALWAYS, *policy_words(args.policy)])
    try:
        return _explain(args, ids)
    finally:
        ids.close()  # never leave the reading thread behind at exit


class _IndexRead:
    """``--run OUT``: the claim's key-mates from the key index of a settle run
    (core/key_index.py), looked up on a thread while the policy compiles: the index checked
    against the claims' files and the policy's, the claim located and the key group's rows
    read, in pure Python (no numpy, no pyarrow). ``rows`` gives them, ``table`` as Arrow
    (None from either: the index cannot serve, and one line on stderr says why)."""

    def __init__(self, args):
        import threading
        self.args, self.found, self.why, self.index = args, None, "", None
        self._thread = threading.Thread(target=self._read, name="yibao-key-index",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from yibao.core.claim_files import InputError, input_files
        from yibao.core.key_index import IndexUnusable, KeyIndex
        from ._policies import resolve_policy
        try:
            index = KeyIndex.open(self.args.run)
            self.why = index.unusable(input_files(self.args.claims),
                                      resolve_policy(self.args.policy))
            if not self.why:
                self.index = index
                self.found = index.held_rows(self.args.claim_id)
        except (IndexUnusable, InputError) as exc:
            self.why = str(exc)
        except Exception as exc:  # noqa: BLE001 (PolicyNotFound: compiling says what is
            self.why = f"it could not be read ({exc})"  # wrong; a bad index: scanned)

    def close(self) -> None:
        """Wait for the lookup thread (never left running at exit)."""
        self._thread.join()

    def rows(self, plans):
        """(``HeldRows`` of the key-mates, their input rows), or None (after a note on
        stderr) when the index cannot serve."""
        from yibao.core.key_mates import accumulator_keys
        self._thread.join()
        if not self.why and self.index.keys() != accumulator_keys(plans,
                                                                  self.index.columns()):
            self.why = "it groups the claims by other keys than the policy's"
        if self.why:
            self._note(self.why)
            return None
        return self.found

    def table(self, plans, found, columns):
        """The key-mates' table of ``columns`` (None: all) in the claims' row and column
        order, as ``read_key_mates`` reads it: the held rows as Arrow, with the ``columns``
        the index does not hold (every other column for ``--drg``: the diagnosis lists …)
        decoded from the claims at those rows only; None, after a note on stderr, for Arrow
        IPC claims (read whole anyway: the scan)."""
        from yibao.core.key_mates import with_columns_at_rows
        held, rows = found
        table = with_columns_at_rows(plans, self.args.claims, self.index.arrow_table(held),
                                     rows, columns)
        if table is None:
            self._note("it lacks columns the explanation reads, and the claims are Arrow IPC")
        return table

    def _note(self, why: str) -> None:
        import sys
        print(f"yibao explain: note: the key index of {self.args.run} is not used ({why});"
              " reading the claims", file=sys.stderr)


def _explain(args, ids) -> int:
    from yibao.core.explain import (explain_columns, explain_rows, format_explanation,
                                    rows_explainable)
    from yibao.core.key_mates import declared_columns
    from ._common import registry, use_cache
    from ._policies import load_policy
    reg = registry(args.policy)
    if not isinstance(ids, _IndexRead):
        ids.want(declared_columns(reg) or ())  # the plugins' columns (family_id …) too
    policy = load_policy(args.policy, reg, cache=use_cache(args))
    if policy is None:
        return 2
    plans = policy.versions
    # A claim that is not there or was rejected (ExplainError), a file that is not Parquet
    # or lacks a column (InputError, ClaimsError): one line `yibao explain: error: …` and
    # exit 2, from cli.main. Only the claim's person/family rows (and rows sharing their
    # ids) are read: exact, and the cost follows that person's claims and the file's ids,
    # not the file's money.
    columns = explain_columns(plans, reg, args.drg)
    found = ids.rows(plans) if isinstance(ids, _IndexRead) else None
    mates = None  # the key-mates as Arrow, when the key index served them
    if found is not None and rows_explainable(policy, found[0], reg, args.drg):
        # the key index's rows settled in plain Python: no numpy, no pyarrow (issue 13)
        plan, ex = plans[0], explain_rows(policy, found[0], args.claim_id, reg)
    else:
        plan, ex, mates = _explain_table(args, policy, reg, columns, ids, found)
    flag_text, flag_rows = _flags(args, policy, plan, reg, ids, found, mates)
    if args.json:
        extra = {"supervision": flag_rows} if flag_rows else {}
        print(json.dumps({**ex.to_dict(), **extra}, ensure_ascii=False, indent=1))
    else:
        print("\n".join([format_explanation(ex), *flag_text]))
    return 0


def _flags(args, policy, plan, reg, ids, found, mates) -> tuple:
    """(lines, rows) of the flags that concern the claim (``explain_flags``): ((), ()) for
    a plan without supervision. A flag compares the claim with the whole batch, so they are
    the settle run's own flags.parquet when the key index served (it vouches that the run
    settled these claims under this policy: ``run_flags``), else the whole claims file is
    settled and supervised again."""
    if getattr(plan, "supervision", None) is None:
        return [], []
    from yibao.core.supervision.explain import explain_flags, run_flags
    if found is not None and policy.single:  # (explain_flags settles under one plan)
        if mates is None:
            mates = ids.index.arrow_table(found[0])
        got = run_flags(plan, ids.index.folder.parent, args.claim_id, mates)
        if got is not None:
            return got
    return explain_flags(plan, args.claims, args.claim_id, reg)


def _explain_table(args, policy, reg, columns, ids, found) -> tuple:
    """(the plan in force, the explanation, the key-mates' table when the key index served
    them, else None) of the claim's key-mates read as an Arrow table: from the key index's
    rows (``found``) with the columns it lacks, else by scanning the claims
    (``read_key_mates``)."""
    from yibao.core.explain import explain_claim, read_key_mates
    plans = policy.versions
    claims = ids.table(plans, found, columns) if found is not None else None
    mates = claims
    if claims is None:
        claims = read_key_mates(plans, args.claims, args.claim_id, columns,
                                ids=None if isinstance(ids, _IndexRead) else ids)
    plan = _version_for(plans, claims, args.claim_id)
    # A plan with groupers shows the grouping path in its provider block (with the plan's
    # own tables, MDC order and splits); --drg adds the national grouper's path for plans
    # without one.
    drg = args.drg and not plan.groupers
    # the whole policy: each key-mate is settled under its own version, as `settle` does
    return plan, explain_claim(policy, claims, args.claim_id, reg, drg=drg), mates

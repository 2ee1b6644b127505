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
    from yibao.core.key_mates import ALWAYS, ClaimIds
    # read ahead in a thread while the policy compiles: the ids, the claim's key-mates by
    # person, and the columns the policy's text names at their rows
    ids = ClaimIds(args.claims, args.claim_id, [*ALWAYS, *_words_of(args.policy)])
    try:
        return _explain(args, ids)
    finally:
        ids.close()  # never leave the reading thread behind at exit


def _words_of(policy) -> list:
    """The words of the policy's source files: the claim columns its layers read are among
    them. A guess for reading ahead only (read_key_mates decodes whatever else the compiled
    policy needs); empty when the files cannot be read (compiling says why)."""
    import re
    from ._policies import resolve_policy
    try:
        where = resolve_policy(policy)
        files = sorted(where.rglob("*.yb")) if where.is_dir() else [where]
        return sorted({w for f in files
                       for w in re.findall(r"[A-Za-z_]\w*", f.read_text(encoding="utf-8"))})
    except (OSError, UnicodeError):  # PolicyNotFound too: compiling says what is wrong
        return []


def _explain(args, ids) -> int:
    from yibao.core.explain import (explain_claim, explain_columns, format_explanation,
                                    read_key_mates)
    from yibao.core.key_mates import declared_columns
    from ._common import registry
    from ._policies import load_policy
    reg = registry(args.policy)
    ids.want(declared_columns(reg) or ())  # the plugins' columns (family_id …) too
    policy = load_policy(args.policy, reg, cache=not args.no_cache)
    if policy is None:
        return 2
    plans = policy.versions
    # A claim that is not there or was rejected (ExplainError), a file that is not Parquet
    # or lacks a column (InputError, ClaimsError): one line `yibao explain: error: …` and
    # exit 2, from cli.main. Only the claim's person/family rows (and rows sharing their
    # ids) are read: exact, and the cost follows that person's claims and the file's ids,
    # not the file's money.
    claims = read_key_mates(plans, args.claims, args.claim_id,
                            explain_columns(plans, reg, args.drg), ids=ids)
    plan = _version_for(plans, claims, args.claim_id)
    # A plan with groupers shows the grouping path in its provider block (with the plan's
    # own tables, MDC order and splits); --drg adds the national grouper's path for plans
    # without one.
    drg = args.drg and not plan.groupers
    # the whole policy: each key-mate is settled under its own version, as `settle` does
    ex = explain_claim(policy, claims, args.claim_id, reg, drg=drg)
    flag_text, flag_rows = [], []
    if getattr(plan, "supervision", None) is not None:  # why it was flagged: the flags
        from yibao.core.supervision.explain import explain_flags  # compare it with the
        flag_text, flag_rows = explain_flags(plan, args.claims, args.claim_id, reg)  # batch
    if args.json:
        extra = {"supervision": flag_rows} if flag_rows else {}
        print(json.dumps({**ex.to_dict(), **extra}, ensure_ascii=False, indent=1))
    else:
        print("\n".join([format_explanation(ex), *flag_text]))
    return 0

"""Why a claim was flagged: the text ``yibao explain`` prints under the claim's settlement.

``flags_for(supervised, claim_id, hospital_id)`` picks the flag rows that concern one claim —
its own flags, flags whose related claims include it (the earlier stay of a split stay, the
MCC/CC stays behind an upcoding flag), and hospital flags on its hospital — and
``flag_lines`` words them, with the payment effect. The rows are the evaluators' own
(flags.parquet), so the explanation states exactly the values that tripped each rule.
"""
from __future__ import annotations

import pyarrow as pa

from yibao.core.describe import format_money, format_ratio

from .stays import PENDING


def flags_for(supervised, claim_id: str, hospital_id=None) -> list:
    """The flag rows (dicts) that concern the claim, in flags.parquet order."""
    return _concerning(supervised.flags, claim_id, hospital_id)


def _concerning(flags: pa.Table, claim_id: str, hospital_id) -> list:
    """``flags_for`` of a flags table: its rows whose claim is ``claim_id``, whose related
    claims include it, or that flag hospital ``hospital_id`` (a text: a flag's hospital id is
    text, so another type never matches), in table order. Picked by Arrow before any row
    becomes a dict: a 2M-claim run has tens of thousands of flags (0.14 s as dicts)."""
    import pyarrow.compute as pc
    if not flags.num_rows:
        return []
    own = pc.equal(flags.column("claim_id"), claim_id)
    related = flags.column("related").combine_chunks()
    hits = pc.equal(pc.list_flatten(related), claim_id)
    named = pc.list_parent_indices(related).filter(pc.fill_null(hits, False))
    mask = pc.or_(pc.fill_null(own, False),
                  pc.is_in(pa.array(range(flags.num_rows), pa.int64()),
                           value_set=named.cast(pa.int64())))
    if isinstance(hospital_id, str):
        theirs = pc.and_(pc.equal(flags.column("level"), "hospital"),
                         pc.equal(flags.column("hospital_id"), hospital_id))
        mask = pc.or_(mask, pc.fill_null(theirs, False))
    return flags.filter(mask).to_pylist()


def _pct(millionths) -> str:
    return format_ratio(millionths) if millionths is not None else "—"


def _reason(row: dict) -> str:
    kind, v, t, b, g = (row["kind"], row["value"], row["threshold"], row["basis"],
                        row["group"])
    related = ", ".join(row["related"] or ())
    if kind in ("split_stay", "readmission_elsewhere"):
        where = "the same hospital" if kind == "split_stay" else "another hospital"
        return (f"admitted {v} day(s) after the discharge of {related} at {where} "
                f"(within {t} days trips the rule)")
    if kind == "los_outlier":
        return (f"stayed {v} days; group {g}'s mean is {b} days, and more than {t} days "
                "trips the rule")
    if kind == "cost_outlier":
        return (f"cost {format_money(v)}; group {g}'s mean is {format_money(b)}, and more "
                f"than {format_money(t)} trips the rule")
    if kind == "low_standard_stay":
        return f"stayed {v} day(s) (at most {t}) in group {g} of weight {_pct(b)}"
    if kind == "listed_group":
        return f"group {g} is on the city's list of groups treated as outpatients"
    if kind == "cc_share":
        return (f"hospital {row['hospital_id']}: share of MCC/CC stays in ADRG {g} is "
                f"{_pct(v)}, above {_pct(t)} (the city's share is {_pct(b)}); its MCC/CC "
                f"stays: {related}")
    if kind == "severe_share":
        return (f"hospital {row['hospital_id']}: share of severe stays {_pct(v)}, below "
                f"{_pct(t)} (its level's share is {_pct(b)})")
    return kind


def flag_lines(rows: list, claim_id: str, held: pa.Table = None) -> list:
    """The explanation's supervision block (no lines when no flag concerns the claim)."""
    if not rows:
        return []
    lines = ["", "supervision (医保基金监管):"]
    for row in rows:
        label = f" '{row['label']}'" if row["label"] else ""
        whose = "" if row["claim_id"] == claim_id else (
            f" [on {row['claim_id']}]" if row["claim_id"] else " [hospital flag]")
        lines.append(f"  flag {row['rule']}{label}, severity {row['severity']}{whose}: "
                     f"{_reason(row)}")
        if row["effect"] and row["claim_id"] == claim_id:
            lines.append(f"    effect: the fund's payment of this claim, "
                         f"{format_money(_held(held, claim_id))}, is held as pending_review "
                         "until the claim is reviewed")
    return lines


def _held(held, claim_id) -> int:
    if held is None:
        return 0
    for row in held.to_pylist():
        if row["claim_id"] == claim_id:
            return row["pending_review"]
    return 0


def explain_flags(policy, claims_path, claim_id: str, registry=None) -> tuple:
    """(lines, rows) for ``yibao explain``: the whole claims file is settled by the kernel
    and supervised, because a flag compares a claim with the whole batch (its group's
    mean, the city's shares). ((), ()) for a policy without flags."""
    from yibao.core.engine import settle
    from yibao.core.runner import Source, input_files

    from . import evaluate, supervision_of
    if supervision_of(policy) is None:
        return [], []
    tables = [Source(f).read() for f in input_files(claims_path)]
    claims = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    batch = settle(policy, claims, registry)
    result = evaluate(policy, claims, batch.results, rows=batch.rows)  # rows: no id lookup
    import pyarrow.compute as pc
    mine = claims.filter(pc.equal(claims.column("claim_id"), claim_id))
    hospital = (mine.column("hospital_id")[0].as_py()
                if mine.num_rows and "hospital_id" in mine.column_names else None)
    rows = flags_for(result, claim_id, hospital)
    return flag_lines(rows, claim_id, result.held), rows


def run_flags(policy, folder, claim_id: str, mates: pa.Table):
    """``explain_flags`` read from the outputs of the settle run in ``folder`` (its
    ``current`` set) instead of settling and supervising the whole claims file again: the
    flag rows of flags.parquet, the claim's hospital from its key-mates (``mates``: its rows
    of the claims, as the key index read them) and, for a flag with an effect, its
    ``pending_review`` from claims.parquet. The caller vouches that the run settled these
    claims under this policy (a current key index: ``KeyIndex.unusable``) and that the
    policy has one version (``explain_flags`` settles every claim under the claim's plan).
    None when the run cannot say (no flags.parquet, a column missing, a claim id that is not
    text): the caller then runs ``explain_flags``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pathlib import Path

    from . import supervision_of
    if supervision_of(policy) is None:
        return [], []
    flags_path = Path(folder) / "flags.parquet"
    if not flags_path.is_file() or not pa.types.is_string(mates.schema.field("claim_id").type):
        return None
    mine = mates.filter(pc.equal(mates.column("claim_id"), claim_id))
    if not mine.num_rows or "hospital_id" not in mine.column_names:
        return None  # (the whole file may hold it: only the scan can tell)
    rows = _concerning(pq.read_table(flags_path), claim_id, mine.column("hospital_id")[0].as_py())
    held = None
    if any(row["effect"] and row["claim_id"] == claim_id for row in rows):
        held = _run_held(Path(folder) / "claims.parquet", claim_id)
        if held is None:
            return None
    return flag_lines(rows, claim_id, held), rows


def _run_held(results_path, claim_id: str):
    """The run's ``pending_review`` of the claim as a held table (``_held`` reads it); None
    when claims.parquet lacks the columns (national names, no effect flag in the run)."""
    import pyarrow.parquet as pq
    if not results_path.is_file():
        return None
    names = pq.ParquetFile(str(results_path)).schema_arrow.names
    if "claim_id" not in names or PENDING not in names:
        return None
    return pq.read_table(str(results_path), columns=["claim_id", PENDING],
                         filters=[("claim_id", "==", claim_id)])

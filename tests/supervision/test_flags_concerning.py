"""``flags_for`` picks the flag rows that concern a claim with Arrow (x18: at 2M claims a run
has tens of thousands of flags, and turning them all into dicts cost explain 0.14 s). It
must pick exactly the rows the plain definition picks, in table order: the claim's own,
those listing it as related, and hospital flags on its hospital — nulls anywhere, a related
list with nulls, a hospital id of another type (never equal to a flag's text)."""
from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from yibao.core.supervision.explain import flags_for
from yibao.core.supervision.stays import FLAG_SCHEMA

IDS = st.sampled_from(["C1", "C2", "C3", "C10"])
HOSPITALS = st.sampled_from(["H1", "H2"])


def _row(level, claim_id, hospital_id, related) -> dict:
    return {"rule": "r", "label": None, "kind": "split_stay", "severity": "review",
            "level": level, "claim_id": claim_id, "hospital_id": hospital_id, "group": None,
            "value": 1, "threshold": 2, "basis": None, "unit": "days", "related": related,
            "effect": None}


ROWS = st.builds(_row, st.sampled_from(["claim", "hospital", None]), st.none() | IDS,
                 st.none() | HOSPITALS, st.none() | st.lists(st.none() | IDS, max_size=3))


def plain(rows: list, claim_id, hospital_id) -> list:
    """The definition, row by row."""
    return [r for r in rows if r["claim_id"] == claim_id
            or claim_id in (r["related"] or ())
            or (r["level"] == "hospital" and hospital_id is not None
                and r["hospital_id"] == hospital_id)]


class _Supervised:
    def __init__(self, flags):
        self.flags = flags


@settings(max_examples=200, deadline=None)
@given(st.lists(ROWS, max_size=12), IDS, st.none() | HOSPITALS | st.just(1), st.integers(1, 4))
def test_flags_for_picks_the_rows_the_definition_picks(rows, claim_id, hospital_id, chunks):
    table = pa.Table.from_pylist(rows, schema=FLAG_SCHEMA)
    step = max(1, len(rows) // chunks)  # several chunks: a run's flags read back
    table = pa.concat_tables([table.slice(i, step) for i in range(0, len(rows), step)]
                             or [table])
    assert flags_for(_Supervised(table), claim_id, hospital_id) == plain(rows, claim_id,
                                                                          hospital_id)

"""The conformance corpus: YAML files of a policy text, claims and expected payments (yuan),
run on the kernel and on the reference evaluator alike.

File format::

    name: what the file covers
    policy: |            # policy text (the language of docs/language.md)
      ...
    versions: [|, |]     # instead of policy: the texts of several versions, each in force
                         # over its own `effective` range (one Policy of several Plans)
    files: {name: text}  # optional: CSV tables the policy reads (grouper, points)
    cases:
      - name: ...
        claims: [{claim_id: A, person_id: p, ...}, ...]   # unlisted fields take DEFAULTS
        expect: {A: {layer: yuan, ...}}                   # only the listed columns are checked
        rejects: {B: reason_code}                         # optional

In ``expect``, a number is yuan of a money column, ``null`` a column the claim's version
lacks, text is compared as it is; the columns in ``RAW`` are compared in engine units (points
in 1/10,000).
"""
from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import yaml

CORPUS = Path(__file__).parent / "corpus"

DEFAULTS = {
    "person_id": "p", "family_id": None, "tier": "tier1", "low_income": False,
    "setting": "inpatient", "hospital_id": "h1", "hospital_level": 3, "hospital_tcm": False,
    "admit_date": None, "discharge_date": "2024-06-01", "los": 1, "total": 0,
    "in_scope": None, "self_first": 0, "referral": False,
}
TYPES = {
    "claim_id": pa.string(), "grp": pa.string(), "person_id": pa.string(), "family_id": pa.string(),
    "tier": pa.string(), "low_income": pa.bool_(), "setting": pa.string(),
    "hospital_id": pa.string(), "hospital_level": pa.int8(), "hospital_tcm": pa.bool_(),
    "admit_date": pa.date32(), "discharge_date": pa.date32(), "los": pa.int32(),
    "total": pa.int64(), "in_scope": pa.int64(), "self_first": pa.int64(),
    "referral": pa.bool_(), "age": pa.int16(), "tcm_amount": pa.int64(),
    "mtb_disease": pa.string(), "care_days": pa.int32(),
}
MONEY = {"total", "in_scope", "self_first", "tcm_amount"}
RAW = {"points"}  # result columns that are not money: compared in engine units


def fen(yuan) -> int:
    value = Decimal(str(yuan)) * 100
    if value != value.to_integral_value():
        raise ValueError(f"{yuan} yuan is not a whole number of fen")
    return int(value)


def _date(value):
    return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(value)


def claims_table(claims: list) -> pa.Table:
    rows = []
    for claim in claims:
        row = {**DEFAULTS, **claim}
        if row["in_scope"] is None:
            row["in_scope"] = row["total"]
        row["discharge_date"] = _date(row["discharge_date"])
        row["admit_date"] = _date(row["admit_date"] or row["discharge_date"])
        for name in MONEY & row.keys():
            if row[name] is not None:
                row[name] = fen(row[name])
        rows.append(row)
    names = list(DEFAULTS) + ["claim_id"] + sorted({k for c in claims for k in c} - set(DEFAULTS)
                                                   - {"claim_id"})
    schema = pa.schema([(n, TYPES[n]) for n in names])
    return pa.Table.from_pylist(rows, schema=schema)


def expected(column: str, value):
    """The engine value an ``expect`` entry stands for (see the module docstring)."""
    if value is None or isinstance(value, str) or column in RAW:
        return value
    return fen(value)


def compile_doc(stem: str, doc: dict, folder: Path):
    """The Policy of a corpus file: its one ``policy`` or its ``versions``, with its
    ``files`` written to ``folder`` (where the policy's CSV tables are read)."""
    from yibao.core.policy import Policy
    from yibao.dsl.compiler import compile_text
    for name, text in (doc.get("files") or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    texts = doc["versions"] if "versions" in doc else [doc["policy"]]
    return Policy.of([compile_text(t, f"{stem}.yaml", folder) for t in texts])


def load_corpus():
    """(file stem, file dict, case dict) for every case of every corpus file."""
    for path in sorted(CORPUS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            yield path.stem, doc, case

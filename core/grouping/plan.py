"""The grouping steps of a plan (``Plan.groupers``) as plan nodes: the CHS-DRG grouper and its
city splits. Decision-table groupers are ``core.grouping.table.DecisionTable``.

This is IR, not runtime: the compiler builds these nodes, ``core/provider.py`` runs them.
``scheme_mdcs`` reads a converted table folder's MDC list as data (the compiler checks an
``mdc order`` against it) without loading the grouper's tables.
"""
from __future__ import annotations

import json
import re
from dataclasses import field
from pathlib import Path
from typing import Optional

from yibao.core.plan import register_node
from yibao.core.records import Record, record

DRG_DATA = Path(__file__).parent / "data"  # one folder per converted scheme
DEFAULT_TABLES = "chs_drg_11"


def known_tables(name: str) -> bool:
    """Whether ``name`` is a converted table folder under grouping/data."""
    return (DRG_DATA / name / "scheme.json").exists()


def scheme_mdcs(name: str) -> tuple:
    """The MDCs of the converted scheme ``name`` (``MDCA`` …), in the scheme's order."""
    text = (DRG_DATA / name / "scheme.json").read_text(encoding="utf-8")
    return tuple(json_member(text, "mdc"))


_BLANK = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


def json_member(text: str, key: str):
    """``json.loads(text)[key]`` for a JSON object, decoding the members before ``key`` one
    by one and none after it: scheme.json's ``mdc`` (4 kB) comes before its code sets, so
    `yibao check` of a city with a DRG grouper no longer decodes 1.1 MB (≈ 20 ms) for the
    MDC names. KeyError when the object has no ``key``; JSONDecodeError (a ValueError) for
    text that is not JSON up to the member. A key written twice gives its first value where
    ``json.loads`` keeps the last: the converter writes scheme.json from a dict, so never."""
    decoder = json.JSONDecoder()
    at = _BLANK.match(text, 0).end()
    if not text.startswith("{", at):
        return json.loads(text)[key]  # not an object: json says what it is
    at = _BLANK.match(text, at + 1).end()
    while text.startswith('"', at):
        name, at = decoder.raw_decode(text, at)
        at = _BLANK.match(text, at).end()
        if not text.startswith(":", at):
            break
        value, at = decoder.raw_decode(text, _BLANK.match(text, at + 1).end())
        if name == key:
            return value
        at = _BLANK.match(text, at).end()
        if not text.startswith(",", at):
            break
        at = _BLANK.match(text, at + 1).end()
    return json.loads(text)[key]  # no such member, or not JSON: json says which


@register_node
@record
class DrgSplit(Record):
    """A city split on top of the national DRG (Zhejiang: age < 17, ICU): a grouped claim
    passing any conjunction of ``when`` (a tuple of tuples of ``Test``) gets ``suffix``
    appended to its DRG code. The first matching split wins."""
    suffix: str
    when: tuple
    source: str = field(default="", compare=False)  # file:line, provenance only

    def describe(self) -> str:
        from yibao.core.points.plan import describe_tests
        cond = " or ".join(f"({describe_tests(c)})" for c in self.when)
        return f"split when {cond}: suffix {self.suffix!r}"


@register_node
@record
class DrgGrouper(Record):
    """The CHS-DRG grouper writing ``name`` (the DRG), ``{name}_status``, ``{name}_mdc`` and
    ``{name}_adrg`` (grouped claims only) and ``{name}_stopped_at`` (where an ungrouped claim
    stopped: ``MDCP`` or ``MDCP/PB1``; null for a grouped one). ``tables`` names a converted
    table folder under grouping/data; ``mdc_order`` None is the scheme's order; ``columns`` are the demographic columns the
    policy declares (sex, age …); age_days and birth_weight are read whether declared or
    not (``ALWAYS_READ``), undeclared sex / age are null."""
    name: str
    label: str = ""
    tables: str = "chs_drg_11"
    mdc_order: Optional[tuple] = None
    splits: tuple = ()
    columns: tuple = ("sex", "age")
    source: str = field(default="", compare=False)  # file:line, provenance only
    by: str = "chs_drg"  # the grouper plugin that groups (Registry.groupers; ``by NAME``)

    def output_columns(self) -> tuple:
        import pyarrow as pa  # here, not at the top: compiling a policy needs no Arrow
        return ((self.name, pa.string()), (f"{self.name}_status", pa.string()),
                (f"{self.name}_mdc", pa.string()), (f"{self.name}_adrg", pa.string()),
                (f"{self.name}_stopped_at", pa.string()))

    def describe(self) -> str:
        order = ", ".join(self.mdc_order) if self.mdc_order else "scheme order"
        by = "" if self.by == "chs_drg" else f" by plugin grouper {self.by}"
        lines = [f"grouper {self.name}: CHS-DRG tables {self.tables}, MDC order {order}, "
                 f"reads {', '.join(self.columns)}{by}"]
        lines += [f"  {s.describe()}" for s in self.splits]
        return "\n".join(lines)


DRG_INPUTS = ("sex", "age", "age_days", "birth_weight")
ALWAYS_READ = ("age_days", "birth_weight")   # reach the grouper declared or not (spec §1)


def grouper_output(grouper) -> str:
    """The column holding a grouper's group code."""
    return grouper.name if isinstance(grouper, DrgGrouper) else grouper.output

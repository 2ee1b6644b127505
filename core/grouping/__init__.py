"""Case-mix grouping (病例分组).

- CHS-DRG 1.1: ``DRG_INPUT_SCHEMA`` is the input (``inputs`` says which spellings of it are
  accepted); ``group_drg(table)`` groups an Arrow table with the nogil kernel;
  ``reference.group_claim`` is the slow per-claim oracle and ``reference.explain_drg`` shows
  the steps for one claim.
- Decision tables (APG, DIP, rehab classes): ``table.group_table`` (vectorised),
  ``table.group_table_reference`` (oracle), ``table_analysis.analyse`` (unreachable and
  overlapping rows), ``table.load_decision_table_csv``.
"""
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.inputs import DRG_INPUT_SCHEMA
from yibao.core.grouping.reference import explain_drg, group_claim
from yibao.core.grouping.table import (DecisionTable, group_table, group_table_reference,
                                       load_decision_table_csv)
from yibao.core.grouping.table_analysis import analyse
from yibao.core.grouping.tables import STATUSES, load_tables

__all__ = ["group_drg", "DRG_INPUT_SCHEMA", "group_claim", "explain_drg", "load_tables", "STATUSES",
           "DecisionTable", "group_table", "group_table_reference", "load_decision_table_csv",
           "analyse"]

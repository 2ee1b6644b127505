"""Case-mix grouping (病例分组).

- CHS-DRG 1.1: ``group_drg(table)`` groups an Arrow table with the nogil kernel;
  ``reference.group_claim`` is the slow per-claim oracle and ``reference.explain_drg`` shows
  the steps for one claim.
- Decision tables (APG, DIP, rehab classes): ``table.group_table`` (vectorised),
  ``table.group_table_reference`` (oracle), ``table_analysis.analyse`` (unreachable and
  overlapping rows), ``table.load_decision_table_csv``.
"""
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import explain_drg, group_claim
from yibao.core.grouping.table import (DecisionTable, group_table, group_table_reference,
                                       load_decision_table_csv)
from yibao.core.grouping.table_analysis import analyse
from yibao.core.grouping.tables import STATUSES, load_tables

__all__ = ["group_drg", "group_claim", "explain_drg", "load_tables", "STATUSES",
           "DecisionTable", "group_table", "group_table_reference", "load_decision_table_csv",
           "analyse"]

"""Case-mix grouping (病例分组): the national CHS-DRG 1.1 grouper.

``group_drg(table)`` groups an Arrow table with the nogil kernel; ``reference.group_claim``
is the slow per-claim oracle and ``reference.explain_drg`` shows the steps for one claim.
"""
from yibao.core.grouping.drg import group_drg
from yibao.core.grouping.reference import explain_drg, group_claim
from yibao.core.grouping.tables import STATUSES, load_tables

__all__ = ["group_drg", "group_claim", "explain_drg", "load_tables", "STATUSES"]

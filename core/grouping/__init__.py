"""Case-mix grouping (病例分组).

- CHS-DRG 1.1: ``DRG_INPUT_SCHEMA`` is the input (``inputs`` says which spellings of it are
  accepted); ``group_drg(table)`` groups an Arrow table with the nogil kernel;
  ``reference.group_claim`` is the slow per-claim oracle and ``reference.explain_drg`` shows
  the steps for one claim.
- Decision tables (APG, DIP, rehab classes): ``table.group_table`` (vectorised),
  ``table.group_table_reference`` (oracle), ``table_analysis.analyse`` (unreachable and
  overlapping rows), ``table.load_decision_table_csv``.
"""
# Each name is imported from its module on first use (PEP 562): the compiler imports
# ``grouping.plan``, which runs this file, and compiling a policy needs neither the kernels
# nor pyarrow (docs/cli.md, start-up).
_HOME = {"group_drg": "drg", "DRG_INPUT_SCHEMA": "inputs", "explain_drg": "reference",
         "group_claim": "reference", "DecisionTable": "table", "group_table": "table",
         "group_table_reference": "table", "load_decision_table_csv": "table",
         "analyse": "table_analysis", "STATUSES": "tables", "load_tables": "tables"}


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)


__all__ = ["group_drg", "DRG_INPUT_SCHEMA", "group_claim", "explain_drg", "load_tables", "STATUSES",
           "DecisionTable", "group_table", "group_table_reference", "load_decision_table_csv",
           "analyse"]

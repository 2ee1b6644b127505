import numpy as np

class Conditions:
    """Condition records, rows and the segment index of one table over one batch
    (built by ``table._TablePlan.compile``)."""
    def __init__(self, kind: np.ndarray, column: np.ndarray, span_ptr: np.ndarray,
                 span_lo: np.ndarray, span_hi: np.ndarray, int_lo: np.ndarray,
                 int_hi: np.ndarray, bound: np.ndarray, row_ptr: np.ndarray,
                 row_conds: np.ndarray, seg_ptr: np.ndarray, seg_rows: np.ndarray,
                 global_rows: np.ndarray, seg_of_rank: np.ndarray) -> None: ...

class Columns:
    """The batch's columns as the loop reads them (``table._TablePlan.columns``)."""
    def __init__(self, code_rank: np.ndarray, list_start: np.ndarray, list_end: np.ndarray,
                 list_rank: np.ndarray, ints: np.ndarray, int_valid: np.ndarray,
                 flags: np.ndarray, flag_valid: np.ndarray, index_rank: np.ndarray) -> None: ...

def first_rows(t: Conditions, c: Columns, n: int) -> np.ndarray:
    """int32 per claim: the first matching row, 1-based, 0 for none."""
    ...

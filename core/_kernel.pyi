"""Type stub of the settlement kernel (see _kernel.pxd for the contract)."""
import numpy as np

def settle(order: np.ndarray, layers: list[dict], key_ids: list[np.ndarray], year: np.ndarray,
           key_year: list[np.ndarray], state_arrays: list[np.ndarray],
           state_keys: list[int]) -> None:
    """Settle rows ``order`` (int64 row indices in settlement order) layer by layer, filling
    each layer dict's ``out_pay`` / ``out_ded`` arrays in place. Arrays are C-contiguous:
    key ids int64, years and key_year int32, states int64, applies/continuing uint8."""

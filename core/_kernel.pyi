"""Type stub of the settlement kernel (see _kernel.pxd for the contract)."""
import numpy as np

def settle(order: np.ndarray, layers: list[dict], key_ids: list[np.ndarray], year: np.ndarray,
           blocks: list[np.ndarray], widths: np.ndarray, state_keys: list[int],
           state_offsets: list[int], overflow: np.ndarray) -> None:
    """Settle rows ``order`` (int64 row indices in settlement order) layer by layer, filling
    each layer dict's ``out_pay`` / ``out_ded`` arrays in place. Arrays are C-contiguous:
    key ids int64, years int32, accumulator blocks int64 (``widths[k]`` slots per key id),
    applies/continuing uint8. ``overflow`` (int32, one per row) receives layer index + 1 for
    a row whose amounts would leave int64; that row is rolled back and its outputs are 0."""

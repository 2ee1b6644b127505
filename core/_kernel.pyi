"""Type stub of the settlement kernel (see _kernel.pxd for the contract)."""
from enum import IntEnum
from typing import Optional, TypedDict

import numpy as np


class DeductibleKind(IntEnum):
    """_kernel.pxd ``cpdef enum DeductibleKind`` (tests/conformance/test_kernel_spec.py)."""
    DED_NONE = 0
    DED_PER_CLAIM = 1
    DED_PER_YEAR = 2


class RatioKind(IntEnum):
    """_kernel.pxd ``cpdef enum RatioKind``."""
    RATIO_FULL = 0
    RATIO_PER_CLAIM = 1
    RATIO_BANDS = 2


class LayerSpec(TypedDict):
    """One layer as ``settle`` takes it: the fields of the .pxd struct ``LayerSpec`` that
    ``fill_layer`` reads (core/lower.py builds it). Arrays are C-contiguous; a one-element
    array is a constant for every row."""
    applies: np.ndarray  # uint8
    base_claim: np.ndarray  # int64 fen
    paid_terms: list  # [(earlier layer index, +1 | -1)]
    ded_kind: DeductibleKind
    ded_amount: Optional[np.ndarray]  # int64 fen
    ded_continuing: Optional[np.ndarray]  # uint8
    ded_state: int
    last_ded_state: int
    ratio_kind: RatioKind
    ratio: Optional[np.ndarray]  # int64 millionths (RATIO_PER_CLAIM)
    bands: list  # [(lo, hi or -1, rate)]: every band set's bands, one after another
    band_first: list  # set s is bands[band_first[s]:band_first[s + 1]] (`when` band sets)
    band_set: Optional[np.ndarray]  # int64, the set paying each row; None: set 0 everywhere
    band_state: int
    caps: list  # [(per_year 0|1, amount int64 array, state, key)]: state -1 exactly when
    #             per_year is 0 (``settle`` refuses a spec that says otherwise)
    limit_amount: Optional[np.ndarray]
    limit_state: int
    out_pay: np.ndarray  # int64, filled
    out_ded: Optional[np.ndarray]  # int64, filled


def settle(order: np.ndarray, layers: list[LayerSpec], key_ids: list[np.ndarray],
           year: np.ndarray, blocks: list[np.ndarray], widths: np.ndarray, state_keys: list[int],
           state_offsets: list[int], overflow: np.ndarray) -> None:
    """Settle rows ``order`` (int64 row indices in settlement order) layer by layer, filling
    each layer dict's ``out_pay`` / ``out_ded`` arrays in place. Arrays are C-contiguous:
    key ids int64, years int32, accumulator blocks int64 (``widths[k]`` slots per key id, slot 0
    the policy year, all zeros when fresh; every state's slot within its kind's row),
    applies/continuing uint8. ``overflow`` (int32, one per row) receives layer index + 1 for
    a row whose amounts would leave int64; that row is rolled back and its outputs are 0."""

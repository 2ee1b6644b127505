"""Type stub of core/_texts.pyx (text columns laid out from codes)."""
from typing import Optional

import numpy as np
import pyarrow as pa


def texts_at(value_offsets: np.ndarray, value_padded: np.ndarray, width: int, codes: np.ndarray,
             source: np.ndarray, identity: bool
             ) -> Optional[tuple[Optional[pa.Buffer], pa.Buffer, pa.Buffer, int]]: ...

"""yibao-ageband: ``age_band_uplift(age) -> ratio``, an elderly weighting (老年人倾斜) a policy
adds to a reimbursement ratio: ``ratio 70% + age_band_uplift(age)``.

Bands (ratio added from that age on): 60 → +2%, 70 → +5%, 80 → +8%; younger → 0.
"""
import numpy as np

from yibao.core.plan import INT, RATIO, Type
from yibao.core.registry import FunctionDecl
from yibao.plugins.hookspecs import hookimpl

__version__ = "1.0.0"

# (lowest age of the band, uplift in millionths), ascending
BANDS = ((60, 20_000), (70, 50_000), (80, 80_000))


def age_band_uplift(age, *, n):
    """Vectorised: one call per batch with the whole ``age`` column (int64 numpy)."""
    age = np.asarray(age, dtype=np.int64)
    lows = np.array([lo for lo, _ in BANDS], dtype=np.int64)
    rates = np.array([0] + [r for _, r in BANDS], dtype=np.int64)
    return rates[np.searchsorted(lows, age, side="right")]


@hookimpl
def yibao_register_functions(registry):
    registry.add_function(FunctionDecl(
        "age_band_uplift", (Type(INT),), Type(RATIO),
        "age_band_uplift(age): +2% from 60, +5% from 70, +8% from 80", age_band_uplift))

"""Vectorised arithmetic shared by built-in and shipped plugin functions (int64, exact)."""
from __future__ import annotations

from yibao.core.lazy import lazy_module
from yibao.core.plan import RATIO_SCALE

# imported by the first call: registering the functions, as `yibao check` does, needs no numpy
np = lazy_module("numpy")


def div_half_up(num, den) -> np.ndarray:
    """num / den element-wise, rounded half-up away from zero; 0 where den <= 0 (the empty
    whole: a share of nothing is no share). Exact int64 arithmetic, no float."""
    num = np.asarray(num, dtype=np.int64)
    den = np.asarray(den, dtype=np.int64)
    safe = np.where(den > 0, den, 1)
    q, r = np.divmod(np.abs(num), safe)
    q = q + (2 * r >= safe)
    return np.where(den > 0, np.where(num < 0, -q, q), 0)


def ratio_of(part, whole) -> np.ndarray:
    """part / whole as a ratio (RATIO_SCALE units), half-up; 0 when whole <= 0. Amounts up to
    9.2e12 fen (92 billion yuan) keep part × RATIO_SCALE inside int64."""
    return div_half_up(np.asarray(part, dtype=np.int64) * RATIO_SCALE, whole)


def share_times_rate(part, whole, rate) -> np.ndarray:
    """(part / whole) × rate as a ratio, one rounding (half-up) at the end; ``part`` is
    clipped to [0, whole] so the share is in [0, 1]; 0 when whole <= 0."""
    whole = np.asarray(whole, dtype=np.int64)
    part = np.clip(np.asarray(part, dtype=np.int64), 0, np.maximum(whole, 0))
    return div_half_up(part * np.asarray(rate, dtype=np.int64), whole)

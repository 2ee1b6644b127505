import numpy as np

OK: int
BAD_COST: int
BAD_POINTS: int
SUMS: tuple

def score_claims(group: np.ndarray, k: np.ndarray, cost: np.ndarray, incomplete: np.ndarray,
                 los: np.ndarray, readmit: np.ndarray, readmit_share: int,
                 is_review: np.ndarray, review_points: np.ndarray, adjusted: np.ndarray,
                 factors: np.ndarray, base: np.ndarray, has_base: np.ndarray, avg: np.ndarray,
                 t_high: np.ndarray, has_t: np.ndarray, per_day: np.ndarray,
                 is_bed: np.ndarray, t_low: int, tier_first: np.ndarray,
                 tier_last: np.ndarray, tier_factor: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, int, int]: ...
def hospital_sums(hospital: np.ndarray, n_hospitals: int, valued: np.ndarray,
                  signed: np.ndarray, points: np.ndarray, paid: np.ndarray,
                  total: np.ndarray, fund_cost: np.ndarray) -> tuple[np.ndarray, int]: ...

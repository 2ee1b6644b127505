"""largest_remainder in integers over a common denominator against the Fraction version it
replaced (kept here as the oracle): same split for any shares, mixed denominators, negative
totals, ties and empty input."""
from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from yibao.core.points.settle import largest_remainder, round_half_up


def fraction_split(shares: dict) -> dict:
    """The previous implementation, verbatim in its arithmetic."""
    total = sum(shares.values(), Fraction(0))
    sign = -1 if total < 0 else 1
    target = abs(round_half_up(total))
    exact = {k: abs(Fraction(v)) for k, v in shares.items()}
    out = {k: int(v) for k, v in exact.items()}
    order = sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))
    for k in order[:target - sum(out.values())]:
        out[k] += 1
    return {k: sign * v for k, v in out.items()}


SHARE = st.fractions(min_value=0, max_value=10**9, max_denominator=10**6)


@given(st.dictionaries(st.text("abcH0123", min_size=1, max_size=4), SHARE, max_size=40),
       st.booleans())
def test_integer_split_equals_the_fraction_split(shares, negative):
    if negative:
        shares = {k: -v for k, v in shares.items()}
    assert largest_remainder(shares) == fraction_split(shares)


def test_thousands_of_hospitals_on_one_point_value():
    pv = Fraction(254_341_395_200 * 10_000, 98_765_432_109)
    shares = {f"H{i:05d}": (i * 7_919 % 100_003) * pv / 10_000 for i in range(5_000)}
    got = largest_remainder(shares)
    assert got == fraction_split(shares)
    assert sum(got.values()) == round_half_up(sum(shares.values(), Fraction(0)))


@given(st.dictionaries(st.text("abcH0123", min_size=1, max_size=4),
                       st.integers(0, 10**12), max_size=40),
       st.integers(1, 10**9), st.integers(1, 10**6), st.booleans())
def test_split_over_a_known_denominator_equals_the_fraction_split(num, d, scale, negative):
    """settle.split_over takes every share as an int over one denominator, not in lowest
    terms (a pool's point value's numerator × points over its denominator × 10^4): scaled
    numerators and denominator give the same split as the Fractions."""
    from yibao.core.points.settle import split_over
    sign = -1 if negative else 1
    shares = {k: Fraction(sign * n, d) for k, n in num.items()}
    assert split_over({k: sign * n * scale for k, n in num.items()}, d * scale) == \
        fraction_split(shares)

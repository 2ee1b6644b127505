"""Money arithmetic rules shared by every evaluator: int64 fen, half-up away from zero, checked.

benefits.md: every amount is an int64 number of fen and a ratio is applied as
``round_half_up(amount × ratio)``. This module states the two rules once:

- ``round_half_up(num, den)``: num/den rounded half away from zero (−0.5 → −1, 0.5 → 1), exact
  for Python ints of any size. The vectorised path (vector.py) and the kernel (_kernel.pyx,
  ``yb_mul_ratio``) implement the same function for their own number types; Hypothesis
  properties hold them equal to this one (tests/conformance/test_money.py).
- No arithmetic wraps: a value outside ``[INT64_MIN, INT64_MAX]`` is never produced. A claim
  whose settlement would compute one is rejected with reason ``OUT_OF_RANGE`` and the message
  of ``out_of_range_message`` naming the layer (docs/reliability.md).
"""
from __future__ import annotations

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

OUT_OF_RANGE = "amount_out_of_range"  # reject reason code


class OutOfRange(ArithmeticError):
    """A value of a claim's settlement left int64 (raised by the reference evaluator)."""


def round_half_up(num: int, den: int) -> int:
    """num/den rounded half-up away from zero (den > 0), exact for ints of any size."""
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def fits_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def checked(value: int) -> int:
    """``value`` itself, or OutOfRange when it does not fit in int64."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise OutOfRange(value)
    return value


def out_of_range_message(layer: str) -> str:
    """The reject message of a claim whose arithmetic in ``layer`` leaves int64 (the same
    text on the kernel path and in the reference evaluator)."""
    return (f"an amount of layer {layer!r} leaves the int64 range of fen "
            f"(±9,223,372,036,854,775,807): the claim is not settled")

"""Specification tests for perpabm.exchange.exact: math.fsum in compiled code."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from perpabm.exchange.kernels import exact

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


def fsum(values: list[float]) -> float:
    """The exact sum of `values` through the kernels, correctly rounded."""
    partials, n = np.empty(exact.MAX_PARTIALS), 0
    for x in values:
        n = exact.add(partials, n, x)
    return exact.rounded(partials, n)


@given(st.lists(finite, max_size=30))
def test_fsum_is_math_fsum_bit_for_bit(values):
    assert fsum(values) == math.fsum(values)


@given(st.lists(finite, min_size=1, max_size=30))
def test_a_running_sum_rounds_to_math_fsum_after_every_addition(values):
    partials, n = np.empty(exact.MAX_PARTIALS), 0
    for k, x in enumerate(values):
        n = exact.add(partials, n, x)
        assert exact.rounded(partials, n) == math.fsum(values[: k + 1])


def test_adding_and_taking_away_leaves_no_residue():
    # 0.1 + 0.2 − 0.1 − 0.2 is 2.8e-17 in float arithmetic, 0 exactly.
    partials, n = np.empty(exact.MAX_PARTIALS), 0
    for x in (0.1, 0.2, -0.1, -0.2):
        n = exact.add(partials, n, x)
    assert exact.rounded(partials, n) == 0.0


def test_a_tie_rounds_half_to_even_across_partials():
    # 2**53 + 1 + 2**-60: the exact sum lies just above the tie 2**53 + 1, so it rounds
    # up to 2**53 + 2 (the lower partial breaks the tie), as math.fsum does.
    values = [2.0**53, 1.0, 2.0**-60]
    assert fsum(values) == math.fsum(values) == 2.0**53 + 2

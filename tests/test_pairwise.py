"""Specification tests for perpabm.exchange.pairwise: numpy's float64 sum in compiled code."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from perpabm.exchange.kernels.pairwise import BLOCK, numpy_sum, positive_sum

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)

# Compiled (or loaded from numba's cache) here, so that hypothesis' deadline times the
# sums and not the first call's compilation.
numpy_sum(np.zeros(1))
positive_sum(np.zeros(1), 1)


def same_float(x: float, y: float) -> bool:
    return x == y and np.signbit(x) == np.signbit(y)


@given(arrays(np.float64, st.integers(0, 3 * BLOCK + 17), elements=finite))
def test_numpy_sum_is_np_add_reduce_bit_for_bit(values):
    assert same_float(numpy_sum(values), float(np.add.reduce(values)))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 1000, 8192, 8193, 100_003])
def test_numpy_sum_matches_at_every_split_of_numpy_s_tree(n):
    # Magnitudes over 16 decades, so that a different association shows in the result.
    rng = np.random.default_rng(n)
    values = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, n)
    assert same_float(numpy_sum(values), float(np.add.reduce(values)))


def test_a_sum_of_negative_zeros_is_positive_zero_as_numpy_s():
    # numpy adds from its identity 0.0, and 0.0 + (−0.0) = 0.0.
    assert same_float(numpy_sum(-np.zeros(300)), 0.0)


@given(arrays(np.float64, st.integers(0, 600), elements=finite), st.integers(0, 600))
def test_positive_sum_is_numpy_s_sum_of_the_positive_ones(values, n):
    n = min(n, len(values))
    head = values[:n]
    assert same_float(positive_sum(values, n), float(np.add.reduce(head[head > 0])))

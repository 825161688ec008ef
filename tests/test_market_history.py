"""IndexHistory: the index as agents observe it — its path, trend and realised volatility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpabm.config.market import MINUTES_PER_YEAR
from perpabm.market import IndexHistory

MINUTE = 1.0 / MINUTES_PER_YEAR  # one-minute steps, in years


def recorded(prices: list[float] | np.ndarray, steps: int | None = None) -> IndexHistory:
    """A history that started at prices[0] and recorded the rest, one a step."""
    history = IndexHistory(prices[0], len(prices) - 1 if steps is None else steps, MINUTE)
    for price in prices[1:]:
        history.record(price)
    return history


def test_prices_are_the_start_and_each_step_recorded_so_far():
    history = recorded([100.0, 101.0, 99.0], steps=10)
    assert history.step == 2
    assert history.prices.tolist() == [100.0, 101.0, 99.0]


def test_prices_cannot_be_changed_through_the_view():
    history = recorded([100.0, 101.0])
    with pytest.raises(ValueError, match="read-only"):
        history.prices[0] = 1.0


def test_trend_is_the_sign_of_the_move_over_the_lookback():
    history = recorded([100.0, 103.0, 101.0, 102.0])
    assert history.trend(1) == 1.0  # 101 → 102
    assert history.trend(2) == -1.0  # 103 → 102
    assert history.trend(3) == 1.0  # 100 → 102


def test_trend_is_zero_when_the_index_is_where_it_was():
    assert recorded([100.0, 105.0, 100.0]).trend(2) == 0.0


def test_trend_looks_back_to_the_start_when_fewer_steps_have_passed():
    assert recorded([100.0, 99.0]).trend(30) == -1.0


def test_realised_volatility_is_nan_until_a_full_window_has_passed():
    history = recorded([100.0, 101.0, 100.0])
    assert math.isnan(history.realised_volatility(3))
    assert not math.isnan(history.realised_volatility(2))


def test_realised_volatility_is_numpys_annualised_std_of_the_window_bit_for_bit():
    prices = 100.0 * np.exp(np.cumsum(np.random.default_rng(3).normal(0.0, 1e-3, 400)))
    history = recorded(prices)
    for window in (2, 7, 30, 129, 300):
        returns = np.diff(np.log(prices[-window - 1:]))
        assert history.realised_volatility(window) == returns.std() * math.sqrt(MINUTE ** -1)


def test_realised_volatility_of_alternating_returns_annualises_their_size():
    # Log returns +0.001, −0.001, …: a standard deviation of 0.001 a minute, about
    # 0.001 × √525,600 ≈ 0.725 a year.
    logs = np.log(100.0) + 0.001 * (np.arange(31) % 2)
    history = recorded(np.exp(logs))
    assert history.realised_volatility(30) == pytest.approx(0.001 * math.sqrt(525_600))

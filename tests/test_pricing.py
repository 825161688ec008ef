"""Mark price and funding rules."""

from __future__ import annotations

import math

import pytest

from perpabm.exchange.pricing import ema_weight, funding_rate, mark_price


def test_index_rule_is_the_oracle():
    assert mark_price("index", 100.0, 0.01, 99.0, 103.0, 104.0) == 100.0


def test_index_ema_basis_rule_adds_the_smoothed_basis():
    # 100 · (1 + 0.002) = 100.2
    assert mark_price("index_ema_basis", 100.0, 0.002, 99.0, 103.0, 104.0) == pytest.approx(100.2)


def test_median_rule_takes_the_middle_of_fair_mid_and_last():
    # fair 100.2, mid (99 + 103)/2 = 101, last 104: the median is 101.
    assert mark_price("median", 100.0, 0.002, 99.0, 103.0, 104.0) == pytest.approx(101.0)


def test_median_rule_without_a_book_averages_fair_and_last():
    # fair 100, last 102: two values, their mean 101.
    assert mark_price("median", 100.0, 0.0, None, 103.0, 102.0) == pytest.approx(101.0)


def test_ema_weight_is_one_minus_exp_of_step_over_time_constant():
    assert ema_weight(1.0, 5.0) == pytest.approx(1 - math.exp(-0.2))


def test_funding_rate_is_the_premium_clamped_to_the_cap():
    assert funding_rate(0.001, 0.0075) == 0.001
    assert funding_rate(0.02, 0.0075) == 0.0075
    assert funding_rate(-0.02, 0.0075) == -0.0075

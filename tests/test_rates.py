"""Rates, not steps: a scenario's shares and chances per minute mean the same at any step
length (``perpabm.config.market.share_over``)."""

from __future__ import annotations

import pytest

from perpabm import PerpMarketModel
from perpabm.config.market import share_over

STEPS = [1 / 60, 0.25, 1.0, 5.0]  # a second, 15 seconds, a minute, five minutes


def test_share_over_the_docstrings_worked_example():
    # 5% a minute: 1 − 0.95^0.25 = 0.012742 over 15 s, 0.05 over a minute,
    # 1 − 0.95^4 = 1 − 0.81450625 = 0.18549375 over four.
    assert share_over(0.05, 0.25) == pytest.approx(0.0127415, abs=1e-7)
    assert share_over(0.05, 4.0) == pytest.approx(0.18549375, rel=1e-12)


def test_over_one_minute_the_share_is_the_rate_to_the_last_bit():
    for rate in (0.02, 0.05, 1 / 1440, 1 / 120, 0.3):
        assert share_over(rate, 1.0) == rate


@pytest.mark.parametrize("minutes", STEPS)
def test_a_share_a_minute_leaves_the_same_after_an_hour_at_any_step(minutes):
    # Unwinding 5% of what is left each minute leaves 0.95^60 = 4.607% after an hour,
    # whether in 3,600 one-second steps or 12 five-minute ones.
    steps = round(60 / minutes)
    left = (1.0 - share_over(0.05, minutes)) ** steps
    assert left == pytest.approx(0.95 ** 60, rel=1e-9)


@pytest.mark.parametrize("minutes", STEPS)
def test_an_arbitrageurs_limit_a_minute_is_the_same_an_hour_at_any_step(minutes):
    # 500,000 USD a minute at the index 100,000 is 5 BTC a minute and 300 an hour: a step
    # of `minutes` sells 5 · minutes into a bid 1% above the index.
    model = PerpMarketModel("default", rng=1, **{"traders.count": 10, "run.steps": 1,
                                                 "run.step_seconds": 60.0 * minutes})
    ex, index = model.exchange, model.index
    bidder = ex.open_account(1e12)
    ex.place_limit(bidder, 1_000.0, index * 1.01)
    arbitrageur = model.arbitrageurs[0]
    arbitrageur.trade()
    per_hour = -ex.position(arbitrageur.account) * index * round(60 / minutes)
    assert per_hour == pytest.approx(500_000.0 * 60, rel=1e-9)


TICKS = [1.0, 5.0, 20.0, 60.0, 300.0]  # the clock's ticks, seconds


@pytest.mark.parametrize("seconds", TICKS)
def test_traders_arrive_as_many_an_hour_at_any_tick(seconds):
    # 50 arrivals a day are 50 / 24 = 2.0833 an hour: a tick of `seconds` has a Poisson
    # mean of 50 · (seconds / 60) / 1440, and an hour holds 3,600 / seconds ticks.
    model = PerpMarketModel("default", rng=1, **{"traders.count": 10, "run.steps": 1,
                                                 "run.step_seconds": seconds})
    assert model.tick_minutes == pytest.approx(seconds / 60.0, rel=1e-12)
    per_hour = model.traders.arrival_rate(model.tick_minutes) * 3600.0 / seconds
    assert per_hour == pytest.approx(50.0 / 24.0, rel=1e-12)


@pytest.mark.parametrize("seconds", TICKS)
def test_a_trader_looks_for_an_entry_as_often_an_hour_at_any_tick(seconds):
    # 4 entries a day: a flat trader's chance a tick is 4 · (seconds / 60) / 1440, so it
    # expects 4 / 24 = 0.1667 looks an hour at any tick.
    model = PerpMarketModel("default", rng=1, **{"traders.count": 10, "run.steps": 1,
                                                 "run.step_seconds": seconds})
    chance = model.traders.entry_probability(model.tick_minutes)
    assert chance * 3600.0 / seconds == pytest.approx(4.0 / 24.0, rel=1e-12)


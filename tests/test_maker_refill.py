"""Makers refill their book at a rate (``makers.refill_seconds``), and their withdrawal
after ADL lasts a time (``makers.adl_withdraw_minutes``), not a count of requotes.

The case: the default scenario, one-minute steps, not yet stepped (the book is empty,
nothing trades but what a test sends). Maker M quotes its full ladder at model time 0;
a taker then sells into all of M's bids, sweeping that side empty. The requotes after it
are driven by hand, setting ``model.now`` (model time, in steps) and
``model.tick_minutes`` as a clock of that tick would, so that nothing trades between
them and the refill is all that changes the book.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpabm import ConfigError, PerpMarketModel, ScenarioConfig
from perpabm.agents import MarketMaker
from perpabm.agents.maker import ladder_for

SECONDS_PER_MINUTE = 60
SWEEP_LIMIT = 0.5  # fraction of the index: the sweep sells down to half of it, past every bid
REFILL_SECONDS = 30.0
ADL_AT = 100.0  # model time of the ADL in the withdrawal tests, in (one-minute) steps
WITHDRAW_MINUTES = 30.0


def swept_maker(refill_seconds: float, **settings: object) -> tuple[PerpMarketModel,
                                                                     MarketMaker]:
    """The module's case: a model with `refill_seconds` (and `settings`), and M, its
    first maker, quoted in full at time 0 and its bids then swept empty."""
    model = PerpMarketModel("default", rng=1, **{"traders.count": 10,
                                                 "makers.refill_seconds": refill_seconds,
                                                 **settings})
    maker = model.makers[0]
    book, ex = model.exchange.book, model.exchange
    maker.quote()
    bids, asks = book.open_quantity(maker.account)
    assert bids > 0.0 and asks > 0.0
    taker = ex.open_account(1e12)
    ex.market_order(taker, -2.0 * bids, limit_price=SWEEP_LIMIT * model.index)
    assert book.open_quantity(maker.account) == (0.0, asks)  # bids swept, asks untouched
    return model, maker


def full_depth(model: PerpMarketModel, maker: MarketMaker) -> tuple[float, float]:
    """(bids, asks), base units: the full ladder M would post now with no refill at all."""
    quantities = ladder_for(model, maker.account, maker.config)[0]
    return float(quantities[quantities > 0.0].sum()), float(-quantities[quantities < 0.0].sum())


def requote_at(model: PerpMarketModel, maker: MarketMaker, now: float,
               tick_minutes: float) -> tuple[float, float]:
    """M requotes at model time `now` in a tick of `tick_minutes`; returns the (bids,
    asks) resting after it, base units."""
    model.now, model.tick_minutes = now, tick_minutes
    maker.quote()
    return model.exchange.book.open_quantity(maker.account)


# ---------------------------------------------------------------------- the refill


def test_a_swept_side_posts_one_minus_e_to_the_minus_two_of_its_depth_a_minute_later():
    """refill_seconds 30, the bids swept empty (left 0), the next requote 60 s later:
    share = 0 + (1 − 0) · (1 − e^(−60/30)) = 1 − e^−2 = 0.8647 of the full ladder's
    bids in the same state."""
    model, maker = swept_maker(REFILL_SECONDS)
    full_bids, _ = full_depth(model, maker)
    bids, _ = requote_at(model, maker, now=1.0, tick_minutes=1.0)
    assert bids / full_bids == pytest.approx(1.0 - math.exp(-2.0), rel=1e-12)
    assert bids / full_bids == pytest.approx(0.8647, abs=1e-4)


def test_the_side_not_traded_against_is_posted_in_full():
    """The asks were not touched: left = 1 · (all of them still resting) = 1, and
    1 + (1 − 1) · (1 − e^−2) = 1: the full ladder's asks."""
    model, maker = swept_maker(REFILL_SECONDS)
    _, full_asks = full_depth(model, maker)
    _, asks = requote_at(model, maker, now=1.0, tick_minutes=1.0)
    assert maker.depth.share[1] == 1.0
    assert asks == pytest.approx(full_asks, rel=1e-12)


def test_a_minute_of_one_second_ticks_refills_as_much_as_one_minute_tick():
    """60 requotes 1 s apart with nothing traded between them: each leaves the share
    missing times e^(−1/30), so after the minute (e^(−1/30))^60 = e^−2 is missing — as
    after one requote 60 s on: 1 − e^−2 of the depth both ways, equal up to rounding."""
    fine, fine_maker = swept_maker(REFILL_SECONDS)
    coarse, coarse_maker = swept_maker(REFILL_SECONDS)
    tick_seconds = 1
    ticks = SECONDS_PER_MINUTE // tick_seconds
    for k in range(1, ticks + 1):
        fine_bids, _ = requote_at(fine, fine_maker, now=k * tick_seconds / SECONDS_PER_MINUTE,
                                  tick_minutes=tick_seconds / SECONDS_PER_MINUTE)
    coarse_bids, _ = requote_at(coarse, coarse_maker, now=1.0, tick_minutes=1.0)
    assert fine_maker.depth.share[0] == pytest.approx(1.0 - math.exp(-2.0), rel=1e-12)
    assert fine_maker.depth.share[0] == pytest.approx(coarse_maker.depth.share[0], rel=1e-12)
    assert fine_bids == pytest.approx(coarse_bids, rel=1e-12)


def test_no_refill_time_posts_full_depth_at_every_requote():
    """refill_seconds 0 (the default): the swept bids come back in full at the next
    requote, 1 s later — the ladder of ladder_for itself, as before refill_seconds."""
    model, maker = swept_maker(0.0)
    model.now, model.tick_minutes = 1.0 / SECONDS_PER_MINUTE, 1.0 / SECONDS_PER_MINUTE
    np.testing.assert_array_equal(maker.ladder(), ladder_for(model, maker.account,
                                                             maker.config))
    bids, asks = requote_at(model, maker, now=model.now, tick_minutes=model.tick_minutes)
    assert maker.depth.share == (1.0, 1.0)
    assert (bids, asks) == pytest.approx(full_depth(model, maker), rel=1e-12)


# ---------------------------------------------------------------------- withdrawal


@pytest.mark.parametrize(("tick_seconds", "withdrawn_requotes"), [(60, 30), (5, 360), (1, 1800)])
def test_the_withdrawal_after_adl_lasts_its_minutes_at_any_tick(tick_seconds: int,
                                                               withdrawn_requotes: int):
    """ADL at model time 100 tells a "withdraw" maker (30 minutes); it then requotes
    every `tick_seconds` (now = 100 + k · tick / 60, ticks set by hand). It quotes its
    withdrawn ladder at the requotes up to 130 and its own after: 30 minutes of model time
    at any tick — 30 · 60 / 60 = 30 requotes of 60 s (one-minute steps: as before the
    clock ticked), 30 · 60 / 5 = 360 of 5 s, 1,800 of 1 s."""
    model = PerpMarketModel("default", rng=1, **{
        "traders.count": 10, "makers.adl_response": "withdraw",
        "makers.adl_withdraw_minutes": WITHDRAW_MINUTES})
    maker = model.makers[0]
    cfg = maker.config
    model.now, model.tick_minutes = ADL_AT, tick_seconds / SECONDS_PER_MINUTE
    maker.deleveraged(1.0)
    withdrawn_ladder = ladder_for(model, maker.account, cfg, widen=cfg.adl_withdraw_spread,
                                  thin=cfg.adl_withdraw_depth)
    withdrawn = []
    for k in range(1, 2 * withdrawn_requotes + 1):  # an hour of requotes after the ADL
        model.now = ADL_AT + k * tick_seconds / SECONDS_PER_MINUTE
        withdrawn.append(np.array_equal(maker.ladder(), withdrawn_ladder))
    assert withdrawn == [True] * withdrawn_requotes + [False] * withdrawn_requotes
    assert withdrawn_requotes * tick_seconds == WITHDRAW_MINUTES * SECONDS_PER_MINUTE


# ---------------------------------------------------------------------- the check


@pytest.mark.parametrize(("value", "message"), [
    (-1.0, "makers.refill_seconds must be in [0, inf); got -1"),
    (math.inf, "makers.refill_seconds must be in [0, inf); got inf"),
    (math.nan, "makers.refill_seconds must be a number in [0, inf); got NaN"),
])
def test_a_refill_time_that_is_negative_or_not_finite_is_refused(value: float, message: str):
    with pytest.raises(ConfigError) as refused:
        ScenarioConfig().replace("makers.refill_seconds", value)
    assert str(refused.value) == message

"""Accounts with spare collateral (``traders.leverage_floor`` below 1): an account at 0.2x
and one at 20x on the same prices — liquidation prices, who is liquidated, and whom each
ranking rule would auto-deleverage first.

Rules of the cases: one maintenance rate m = 0.5%, no fees."""

from __future__ import annotations

import numpy as np
import pytest

from perpabm import Exchange, ExchangeConfig, PerpMarketModel, adl, mechanics
from perpabm.config import ScenarioConfig
from perpabm.errors import ConfigError

MMR = 0.005
RULES = ExchangeConfig(max_leverage=50.0, mm_tiers=((0.0, MMR),), taker_fee=0.0,
                       maker_fee=0.0, debug=True)


def test_the_liquidation_price_of_a_0_2x_long_is_below_zero_and_of_a_20x_long_is_95_48():
    # LP = (C − q·E) / (q·m − q) for a long of q at E with collateral C:
    #   20x: C = 1,000, 200 at 100: (1,000 − 20,000) / (1 − 200) = 95.477;
    #   0.2x: C = 100,000, 200 at 100: (100,000 − 20,000) / (1 − 200) = −402: never.
    prices = mechanics.liquidation_price([200.0, 200.0], 100.0, [1_000.0, 100_000.0], MMR)
    np.testing.assert_allclose(prices, [19_000 / 199, -80_000 / 199])


def test_on_the_same_fall_only_the_20x_account_is_liquidated():
    ex = Exchange(RULES, mark_price=100.0)
    retail, whale = ex.open_account(1_000.0), ex.open_account(100_000.0)
    shorts, maker = ex.open_account(1_000_000.0), ex.open_account(1_000_000.0)
    for long_ in (retail, whale):
        ex.fill(long_, shorts, 200.0, 100.0)
    ex.place_limit(maker, 200.0, 95.0)
    events = ex.update_mark(95.0)
    # At 95 the 20x long's equity is 1,000 − 200·5 = 0 < MM 200·95·0.005 = 95: it is
    # liquidated into the bid at 95; the 0.2x long's equity 99,000 is 1,042 times its MM.
    assert [(e.kind, e.account) for e in events] == [("liquidation", retail)]
    assert ex.position(retail) == 0.0
    assert ex.position(whale) == 200.0
    assert ex.equity(whale) == pytest.approx(99_000.0)


WINNERS = {  # two shorts at 100, marked at 90: (size, collateral)
    "whale": (-1_000.0, 500_000.0),  # 0.2x at entry; P&L 10,000, equity 510,000
    "retail": (-200.0, 1_000.0),  # 20x at entry; P&L 2,000, equity 3,000
}


@pytest.mark.parametrize(("rule", "first", "scores"), [
    # profit: 10,000 against 2,000.
    ("profit", "whale", (10_000.0, 2_000.0)),
    # size: notional 90,000 against 18,000.
    ("size", "whale", (90_000.0, 18_000.0)),
    # leverage: 90,000 / 510,000 = 0.176 against 18,000 / 3,000 = 6.
    ("leverage", "retail", (90_000 / 510_000, 6.0)),
    # PnL% is 10% for both: × leverage, 0.0176 against 0.6.
    ("pnl_leverage", "retail", (0.1 * 90_000 / 510_000, 0.6)),
    # (entry/mark)·(notional/equity), shorts' mirror: (100/90)·0.176 against (100/90)·6.
    ("hyperliquid", "retail", (100 / 90 * 90_000 / 510_000, 100 / 90 * 6.0)),
    # uPnL/collateral × MM/equity: 10,000/500,000 × 450/510,000 against 2,000/1,000 × 90/3,000.
    ("binance", "retail", (0.02 * 450 / 510_000, 2.0 * 90 / 3_000)),
])
def test_whom_each_rule_would_close_first_of_a_0_2x_and_a_6x_winner(rule, first, scores):
    size, collateral = (np.array(v) for v in zip(*WINNERS.values(), strict=True))
    got = adl.score(rule, size, 100.0, 90.0, collateral, MMR)
    np.testing.assert_allclose(got, scores)
    assert list(WINNERS)[int(np.argmax(got))] == first


def test_a_leverage_floor_below_1_draws_traders_with_spare_collateral():
    model = PerpMarketModel("default", rng=4, **{
        "traders.leverage_median": 0.2, "traders.leverage_sigma": 1.0,
        "traders.leverage_floor": 0.05, "traders.count": 200, "run.steps": 30})
    leverage = model.traders.leverage[model.traders.accounts]
    assert leverage.min() >= 0.05
    assert (leverage < 1.0).mean() > 0.9  # median 0.2, σ 1: P(L < 1) = Φ(ln 5) = 0.95
    model.run()
    ex = model.exchange
    held = [a for a in model.traders.accounts if ex.position(a) != 0.0]
    assert held, "nobody entered"
    for account in held:  # notional = equity at entry × its leverage < its collateral
        trader = model.traders[account]
        if trader.leverage < 1.0:
            assert abs(ex.position(account)) * ex.entry_price(account) < ex.collateral(account)


def test_the_default_floor_keeps_every_trader_at_1x_or_more():
    model = PerpMarketModel("default", rng=4, **{"traders.count": 200, "run.steps": 1})
    assert model.traders.leverage[model.traders.accounts].min() >= 1.0


@pytest.mark.parametrize("floor", [0.0, -0.5, float("nan"), "0.1"])
def test_a_bad_leverage_floor_is_refused_naming_it(floor):
    with pytest.raises(ConfigError, match=r"traders\.leverage_floor") as info:
        ScenarioConfig().replace("traders.leverage_floor", floor)
    assert "\n" not in str(info.value)


def test_a_floor_above_the_highest_leverage_is_refused():
    # leverage_cap 0.5 of max_leverage 20 is 10x at most: a floor of 12 cannot be met.
    config = ScenarioConfig().replace("traders.leverage_cap", 0.5)
    with pytest.raises(ConfigError, match=r"traders\.leverage_floor \(12\) must not exceed"):
        config.replace("traders.leverage_floor", 12.0)

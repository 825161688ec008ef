"""The agents' order arithmetic: what a trader sends to close, what a maker quotes."""

from __future__ import annotations

import numpy as np
from ledgers import ledger_of

from perpabm.agents.population import MAX_SLIPPAGE, MOMENTUM, NOISE, closing_orders, entry_orders


def test_closing_orders_trade_against_each_position_within_the_slippage_limit():
    size = np.array([0.0, 2.0, -3.0])  # by account
    orders = closing_orders(np.array([2, 1]), ledger_of(size), 100.0)
    # Account 2 is short 3: buy 3 up to 100·(1 + 0.02) = 102; account 1 sells 2 down to 98.
    assert MAX_SLIPPAGE == 0.02
    assert orders[0].tolist() == [3.0, -2.0]
    assert orders[1].tolist() == [100.0 * (1 + 0.02), 100.0 * (1 - 0.02)]


def test_entry_orders_size_each_flat_trader_at_its_leverage_and_side():
    # Accounts 0..3: 0 is long already, 1 noise (coin 0.7: sell), 2 momentum, 3 contrarian.
    size = np.array([1.0, 0.0, 0.0, 0.0])
    collateral = np.array([500.0, 1_000.0, 2_000.0, 100.0])
    leverage = np.array([5.0, 4.0, 2.0, 10.0])
    strategy = np.array([0, NOISE, MOMENTUM, 2], dtype=np.int8)
    takers, orders = entry_orders(np.array([0, 1, 2, 3]), ledger_of(size, collateral), 100.0,
                                  leverage, strategy, 1.0, np.array([0.1, 0.7, 0.2, 0.3]),
                                  np.array([10.0, 20.0, 30.0, 40.0]), 100.0, np.zeros(4))
    assert takers.tolist() == [1, 2, 3]
    # Equity × leverage / index: 1,000·4/100 = 40 sold, 2,000·2/100 = 40 bought with the
    # trend, 100·10/100 = 10 sold against it; limits 2% from the index on the side traded.
    assert orders[0].tolist() == [-40.0, 40.0, -10.0]
    assert orders[1].tolist() == [100.0 * (1 - 0.02), 100.0 * (1 + 0.02), 100.0 * (1 - 0.02)]
    assert orders[2].tolist() == [20.0, 30.0, 40.0]


def test_without_a_trend_every_trader_follows_its_coin():
    strategy = np.array([MOMENTUM, 2], dtype=np.int8)
    _, orders = entry_orders(np.array([0, 1]), ledger_of(np.zeros(2), np.full(2, 100.0)),
                             100.0, np.ones(2), strategy, 0.0, np.array([0.2, 0.9]),
                             np.ones(2), 100.0, np.zeros(2))
    assert np.sign(orders[0]).tolist() == [1.0, -1.0]


def test_a_trader_with_no_equity_sends_no_order():
    takers, _ = entry_orders(np.array([0]), ledger_of(np.zeros(1), np.array([-5.0])), 100.0,
                             np.ones(1), np.zeros(1, dtype=np.int8), 1.0, np.zeros(1),
                             np.ones(1), 100.0, np.zeros(1))
    assert len(takers) == 0


def test_a_maker_whose_equity_is_gone_quotes_nothing():
    from perpabm.agents.maker import ladder_for
    from perpabm.model import PerpMarketModel
    from perpabm.scenarios import load_scenario

    model = PerpMarketModel(load_scenario("calm").replace("traders.count", 10), rng=1)
    maker = model.makers[0]
    assert ladder_for(model, maker.account, maker.config).shape[1] > 0
    model.exchange.ledger.collateral[maker.account] = 0.0  # flat, so equity is 0
    assert ladder_for(model, maker.account, maker.config).shape == (2, 0)


def test_a_side_given_overrides_the_strategy():
    # Two momentum traders, trend +1: account 0 is given −1 (an ADL'd short re-entering)
    # and sells 100·1/100 = 1; account 1 is given 0 and follows the trend.
    strategy = np.array([MOMENTUM, MOMENTUM], dtype=np.int8)
    _, orders = entry_orders(np.array([0, 1]), ledger_of(np.zeros(2), np.full(2, 100.0)),
                             100.0, np.ones(2), strategy, 1.0, np.zeros(2), np.ones(2), 100.0,
                             np.array([-1.0, 0.0]))
    assert orders[0].tolist() == [-1.0, 1.0]

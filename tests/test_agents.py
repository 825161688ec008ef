"""The agents' order arithmetic: what a trader sends to close, what a maker quotes."""

from __future__ import annotations

import numpy as np

from perpabm.agents.trader import MAX_SLIPPAGE, closing_orders


def test_closing_orders_trade_against_each_position_within_the_slippage_limit():
    size = np.array([0.0, 2.0, -3.0])  # by account
    orders = closing_orders(np.array([2, 1]), size, 100.0)
    # Account 2 is short 3: buy 3 up to 100·(1 + 0.02) = 102; account 1 sells 2 down to 98.
    assert MAX_SLIPPAGE == 0.02
    assert orders[0].tolist() == [3.0, -2.0]
    assert orders[1].tolist() == [100.0 * (1 + 0.02), 100.0 * (1 - 0.02)]

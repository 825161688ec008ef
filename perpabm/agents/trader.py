"""Leveraged traders: heterogeneous capital and leverage; noise, momentum or contrarian."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np
from numba import njit
from numpy.typing import NDArray

from perpabm.config.scenario import STRATEGIES, TraderConfig
from perpabm.errors import MarginError

if TYPE_CHECKING:
    from perpabm.model import PerpMarketModel

MAX_SLIPPAGE = 0.02  # a trader's market order walks the book no further than this from the index


class LeveragedTrader(mesa.Agent):
    """A trader with one account, a strategy and a leverage it opens positions at.

    Account state (collateral, position) lives in the exchange; exit triggers
    (time, take-profit, stop-loss prices) live in the model's arrays so that a
    step checks them for all traders at once and calls only those that exit.
    """

    def __init__(self, model: PerpMarketModel, capital: float, leverage: float,
                 strategy: str) -> None:
        super().__init__(model)
        self.capital = capital
        self.leverage = leverage
        self.strategy = strategy
        self.account = model.exchange.open_account(capital)

    @classmethod
    def draw(
        cls, model: PerpMarketModel, n: int, rng: np.random.Generator
    ) -> list[LeveragedTrader]:
        """`n` new traders with parameters drawn from the model's TraderConfig."""
        cfg: TraderConfig = model.config.traders
        capital = cfg.capital_scale * (1.0 + rng.pareto(cfg.capital_tail, n))
        max_leverage = cfg.leverage_cap * model.config.exchange.max_leverage
        leverage = np.clip(cfg.leverage_median * np.exp(rng.normal(0.0, cfg.leverage_sigma, n)),
                           1.0, max_leverage)
        weights = np.asarray(cfg.strategy_mix) / sum(cfg.strategy_mix)
        strategy = rng.choice(len(STRATEGIES), size=n, p=weights)
        return [cls(model, float(c), float(lev), STRATEGIES[s])
                for c, lev, s in zip(capital, leverage, strategy, strict=True)]

    def side(self, rng: np.random.Generator) -> float:
        """+1 to buy, −1 to sell: a coin for noise traders, the recent trend for
        momentum traders, against it for contrarians (a coin when there is none)."""
        trend = self.model.trend()
        if self.strategy == "noise" or trend == 0.0:
            return 1.0 if rng.random() < 0.5 else -1.0
        return trend if self.strategy == "momentum" else -trend

    def open_position(self, rng: np.random.Generator) -> None:
        """Take a position of equity × leverage notional with a market order."""
        ex, model = self.model.exchange, self.model
        equity = ex.equity(self.account)
        if equity <= 0.0:
            return
        side = self.side(rng)
        index = model.index
        quantity = side * equity * self.leverage / index
        limit = index * (1.0 + side * MAX_SLIPPAGE)
        try:
            fills = ex.market_order(self.account, quantity, limit_price=limit)
        except MarginError:
            return
        if fills:
            model.set_exit_triggers(self.account, rng)

    @staticmethod
    def close_positions(model: PerpMarketModel, accounts: NDArray[np.int64]) -> None:
        """Close the whole positions of `accounts` (traders' ids, in order) with market
        orders, as far as the book allows within :data:`MAX_SLIPPAGE` of the index."""
        if len(accounts):
            orders = closing_orders(accounts, model.exchange.ledger.size, model.index)
            model.exchange.market_orders(accounts, orders[0], orders[1])


@njit(cache=True)
def closing_orders(accounts: NDArray[np.int64], size: NDArray[np.float64],
                   index: float) -> NDArray[np.float64]:
    """Market orders that close `accounts`' positions (`size`, base units, signed, by
    account): rows of quantities (−size) and limit prices (USD), :data:`MAX_SLIPPAGE`
    from the `index` on the side the order trades."""
    orders = np.empty((2, len(accounts)))
    for k in range(len(accounts)):
        held = size[accounts[k]]
        orders[0, k] = -held
        orders[1, k] = index * (1.0 - math.copysign(MAX_SLIPPAGE, held))
    return orders

"""Leveraged traders: heterogeneous capital and leverage; noise, momentum or contrarian."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np
from numpy.typing import NDArray

from perpabm.compiled import kernel
from perpabm.config.scenario import STRATEGIES, TraderConfig

if TYPE_CHECKING:
    from perpabm.model import PerpMarketModel

MAX_SLIPPAGE = 0.02  # a trader's market order walks the book no further than this from the index


class LeveragedTrader(mesa.Agent):
    """A trader with one account, a strategy and a leverage it opens positions at.

    Account state (collateral, position) lives in the exchange; exit triggers
    (time, take-profit, stop-loss prices) live in the model's arrays so that a
    step checks them for all traders at once. Traders act as batches: those whose
    exit fired close together (:meth:`close_positions`) and those drawn to look
    for an entry open together (:meth:`open_positions`), each batch one call of
    compiled order arithmetic and one :meth:`Exchange.market_orders` — a Python
    call per trader would cost more than the matching.
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

    @staticmethod
    def open_positions(model: PerpMarketModel, accounts: NDArray[np.int64],
                       leverage: NDArray[np.float64], strategy: NDArray[np.int8],
                       rng: np.random.Generator) -> None:
        """Traders `accounts` (ids, in the order drawn) look for an entry: each flat one
        with equity takes a position of equity × its `leverage` notional with a market
        order (:func:`entry_orders`), and those filled get exit triggers.

        Each draws a coin (its side, for a noise trader or when there is no trend) and
        a holding time from `rng` whether or not it trades, as two vectors: one call
        for all instead of one per trader. `leverage` and `strategy` (an index into
        STRATEGIES) are by account.
        """
        coins = rng.random(len(accounts))
        holds = rng.exponential(model.config.traders.holding_minutes / model.step_minutes,
                                len(accounts))
        ex = model.exchange
        led = ex.ledger
        takers, orders = entry_orders(accounts, led.size, led.collateral, led.entry_price,
                                      ex.mark_price, leverage, strategy, model.trend(), coins,
                                      holds, model.index)
        if len(takers):
            filled = ex.market_orders(takers, orders[0], orders[1])
            model.set_exit_triggers(takers, filled, orders[2])

    @staticmethod
    def close_positions(model: PerpMarketModel, accounts: NDArray[np.int64]) -> None:
        """Close the whole positions of `accounts` (traders' ids, in order) with market
        orders, as far as the book allows within :data:`MAX_SLIPPAGE` of the index."""
        if len(accounts):
            orders = closing_orders(accounts, model.exchange.ledger.size, model.index)
            model.exchange.market_orders(accounts, orders[0], orders[1])


@kernel
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


NOISE, MOMENTUM = STRATEGIES.index("noise"), STRATEGIES.index("momentum")


@kernel
def entry_orders(accounts: NDArray[np.int64], size: NDArray[np.float64],
                 collateral: NDArray[np.float64], entry: NDArray[np.float64], mark: float,
                 leverage: NDArray[np.float64], strategy: NDArray[np.int8], trend: float,
                 coins: NDArray[np.float64], holds: NDArray[np.float64],
                 index: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The market orders of traders `accounts` looking for an entry, and who sends them.

    A trader sends one if it is flat (`size`, base units, by account) with equity
    (`collateral` + size × (`mark` − `entry`), USD) above zero: equity × `leverage`
    notional at the `index`, up to :data:`MAX_SLIPPAGE` from it. Its side is +1 (buy)
    or −1: the sign of the `trend` for momentum traders, against it for contrarians,
    and its coin (< 0.5: buy) for noise traders or when the trend is 0.

    Returns (takers, orders): the accounts that send one and rows of their quantities
    (signed, base units), limit prices (USD) and holding times (their `holds`).
    """
    takers = np.empty(len(accounts), dtype=np.int64)
    orders = np.empty((3, len(accounts)))
    m = 0
    for k in range(len(accounts)):
        account = accounts[k]
        if size[account] != 0.0:
            continue
        equity = collateral[account] + size[account] * (mark - entry[account])
        if equity <= 0.0:
            continue
        if strategy[account] == NOISE or trend == 0.0:
            side = 1.0 if coins[k] < 0.5 else -1.0
        else:
            side = trend if strategy[account] == MOMENTUM else -trend
        takers[m] = account
        orders[0, m] = side * equity * leverage[account] / index
        orders[1, m] = index * (1.0 + side * MAX_SLIPPAGE)
        orders[2, m] = holds[k]
        m += 1
    return takers[:m], orders[:, :m]

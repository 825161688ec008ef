"""Market makers: a ladder of quotes around the index, thinning as volatility rises."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np
from numba import njit

from perpabm.config.scenario import MakerConfig

if TYPE_CHECKING:
    from perpabm.model import PerpMarketModel


def post_ladder(model: PerpMarketModel, account: int, config: MakerConfig) -> None:
    """Replace `account`'s quotes with a ladder around its fair value, as `config` says.

    Fair value is the index skewed against inventory; spread and depth follow
    realised volatility (liquidity withdraws in stress); depth on the side that
    adds to inventory thins as inventory nears its limit, and that side is not
    quoted at the limit.
    """
    ex = model.exchange
    index = model.index
    equity = ex.equity(account)
    if equity <= 0.0:
        ex.book.cancel_account(account)
        return
    limit = config.inventory_limit * equity * ex.config.max_leverage / index
    inventory = ex.position(account)
    sigma = model.realised_volatility(config.vol_window_minutes)
    stress = 1.0 + config.withdrawal * max(sigma / config.calm_volatility - 1.0, 0.0)
    fair = index * (1.0 - config.inventory_skew * inventory / limit)
    orders = ladder(fair, stress, config.depth / stress / index, inventory, limit,
                    config.half_spread, config.level_spacing, config.levels)
    # Levels that would cross another maker's quote, or that margin cannot cover, are
    # left out (Exchange.replace_quotes).
    ex.replace_quotes(account, orders[0], orders[1])


@njit(cache=True)
def ladder(fair: float, stress: float, base_quantity: float, inventory: float, limit: float,
           half_spread: float, spacing: float, levels: int) -> np.ndarray:
    """A ladder of `levels` bids then `levels` asks around `fair` (USD), nearest first:
    rows of quantities, signed (+ buy, − sell) in base units, and prices (USD).

    Level k sits (`half_spread` + k·`spacing`)·`stress` of `fair` away and holds
    `base_quantity` times the side's room: 1 when quoting reduces `inventory`, falling
    to 0 (the side not quoted) as inventory reaches `limit` (base units). A bid so far
    down in extreme stress that its price is not positive is not posted.
    """
    orders = np.empty((2, 2 * levels))  # one array back to Python: each costs a boxing
    n = 0
    for side in (1.0, -1.0):
        room = 1.0 - max(side * inventory, 0.0) / limit
        if room <= 0.0:
            continue
        quantity = side * base_quantity * room
        for level in range(levels):
            price = fair * (1.0 - side * (half_spread + level * spacing) * stress)
            if price > 0.0:
                orders[0, n] = quantity
                orders[1, n] = price
                n += 1
    return orders[:, :n]


class MarketMaker(mesa.Agent):
    """Quotes `levels` levels a side around its fair value, every step (:func:`post_ladder`).

    A maker has finite capital and can itself be liquidated.
    """

    def __init__(self, model: PerpMarketModel, config: MakerConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)

    def quote(self) -> None:
        """Replace all quotes with a fresh ladder."""
        post_ladder(self.model, self.account, self.config)

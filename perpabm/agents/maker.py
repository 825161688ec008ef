"""Market makers: a ladder of quotes around the index, thinning as volatility rises."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

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
    base_quantity = config.depth / stress / index
    half_spread, spacing = config.half_spread, config.level_spacing
    quantities, prices = [], []
    for side in (1.0, -1.0):
        room = 1.0 - max(side * inventory, 0.0) / limit  # 1 when reducing, 0 at the limit
        if room <= 0.0:
            continue
        quantity = side * base_quantity * room
        for level in range(config.levels):
            price = fair * (1.0 - side * (half_spread + level * spacing) * stress)
            if price > 0.0:  # a bid this far down in extreme stress is not posted
                quantities.append(quantity)
                prices.append(price)
    # Levels that would cross another maker's quote, or that margin cannot cover, are
    # left out (Exchange.replace_quotes).
    ex.replace_quotes(account, quantities, prices)


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

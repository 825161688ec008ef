"""Market makers: a ladder of quotes around the index, thinning as volatility rises."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from perpabm.config.scenario import MakerConfig
from perpabm.errors import MarginError

if TYPE_CHECKING:
    from perpabm.model import PerpMarketModel


class MarketMaker(mesa.Agent):
    """Quotes `levels` levels a side around its fair value, every step.

    Fair value is the index skewed against inventory; spread and depth follow
    realised volatility (liquidity withdraws in stress); a side is not quoted
    once inventory reaches the limit. A maker has finite capital and can itself
    be liquidated.
    """

    def __init__(self, model: PerpMarketModel, config: MakerConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)

    def stress(self) -> float:
        """1 + withdrawal · (σ/σ_calm − 1)⁺: how much wider and thinner quotes get."""
        sigma = self.model.realised_volatility(self.config.vol_window_minutes)
        excess = max(sigma / self.config.calm_volatility - 1.0, 0.0)
        return 1.0 + self.config.withdrawal * excess

    def quote(self) -> None:
        """Replace all quotes with a fresh ladder."""
        cfg, ex = self.config, self.model.exchange
        ex.book.cancel_account(self.account)
        index = self.model.index
        equity = ex.equity(self.account)
        if equity <= 0.0:
            return
        limit = cfg.inventory_limit * equity * ex.config.max_leverage / index
        inventory = ex.position(self.account)
        stress = self.stress()
        fair = index * (1.0 - cfg.inventory_skew * inventory / limit)
        quantity = cfg.depth / stress / index
        for level in range(cfg.levels):
            offset = (cfg.half_spread + level * cfg.level_spacing) * stress
            for side in (1.0, -1.0):
                if side * inventory >= limit:
                    continue
                price = fair * (1.0 - side * offset)
                try:
                    ex.place_limit(self.account, side * quantity, price, post_only=True)
                except (MarginError, ValueError):
                    continue  # out of margin, or the other side has moved through the price

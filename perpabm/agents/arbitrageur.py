"""Arbitrageurs: trade the perp toward the index when the basis pays for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from perpabm.config.scenario import ArbitrageurConfig
from perpabm.errors import MarginError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perpabm.agents.protocols import MarketModel


class Arbitrageur(mesa.Agent):
    """Sells the perp above index·(1 + threshold), buys it below index·(1 − threshold),
    up to `max_notional` a minute; its finite capital lets the perp decouple in thin books."""

    def __init__(self, model: MarketModel, config: ArbitrageurConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)

    def trade(self) -> None:
        """Trade the basis, if it pays: up to `max_notional` (USD a minute) times the
        tick's minutes at the index, limited to `threshold` from it (a refused order —
        margin — is no trade)."""
        ex, index, cfg = self.model.exchange, self.model.index, self.config
        bid, ask = ex.book.best_bid(), ex.book.best_ask()
        quantity = cfg.max_notional * self.model.tick_minutes / index
        try:
            if bid is not None and bid > index * (1.0 + cfg.threshold):
                ex.market_order(self.account, -quantity, limit_price=index * (1 + cfg.threshold))
            elif ask is not None and ask < index * (1.0 - cfg.threshold):
                ex.market_order(self.account, quantity, limit_price=index * (1 - cfg.threshold))
        except MarginError:
            pass

    @staticmethod
    def trade_all(arbitrageurs: Sequence[Arbitrageur]) -> None:
        """Each of `arbitrageurs` (perhaps none) trades in turn (:meth:`trade`)."""
        for arbitrageur in arbitrageurs:
            arbitrageur.trade()

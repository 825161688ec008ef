"""The backstop vault (HLP-like): takes over liquidations, then unwinds them into the book."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import mesa

from perpabm.agents.maker import quote_ladders
from perpabm.config.scenario import VaultConfig
from perpabm.errors import MarginError
from perpabm.exchange import BackstopOffer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perpabm.agents.protocols import MarketModel


class Vault(mesa.Agent):
    """Registers as the exchange's backstop; takes what fits under its cap; unwinds.

    The cap bounds the vault's position notional at ``cap`` × its equity. What its
    unwind sold or bought this step is :attr:`unwound_notional`: liquidation flow too,
    which the model counts in the step's net liquidation flow (spot impact).
    """

    def __init__(self, model: MarketModel, config: VaultConfig) -> None:
        super().__init__(model)
        self.config = config
        ex = model.exchange
        self.account = ex.open_account(config.capital, adl_exempt=config.adl_exempt)
        ex.register_backstop(self.account, self.take_over)
        # Quoting like the makers, with the vault's own depth and capital.
        self.maker_config = dataclasses.replace(
            model.config.makers, capital=config.capital, depth=config.quote_depth)
        self.unwound_notional = 0.0  # this step's, USD, signed: + bought, − sold

    def take_over(self, offer: BackstopOffer) -> float:
        """Quantity of `offer` the vault takes: all of it, or what keeps it under the cap."""
        ex = self.model.exchange
        equity = ex.equity(self.account)
        if equity <= 0.0:
            return 0.0
        position = ex.position(self.account)
        room = self.config.cap * equity / offer.mark_price
        if position * offer.size >= 0.0:  # adds to the vault's exposure
            room -= abs(position)
        else:  # first offsets its inventory, then may open the other way
            room += abs(position)
        return float(min(abs(offer.size), max(room, 0.0)))

    def unwind(self) -> None:
        """Sell `unwind_rate` of the inventory into the book, near the index, and record
        the notional traded as :attr:`unwound_notional` (0 if none)."""
        self.unwound_notional = 0.0
        ex, cfg = self.model.exchange, self.config
        position = ex.position(self.account)
        if position == 0.0 or cfg.unwind_rate == 0.0:
            return
        side = -1.0 if position > 0 else 1.0
        limit = self.model.index * (1.0 + side * cfg.unwind_slippage)
        try:
            fills = ex.market_order(self.account, side * abs(position) * cfg.unwind_rate,
                                    limit_price=limit)
        except MarginError:
            return
        # Unwinding taken-over positions is liquidation selling too, spread over time.
        self.unwound_notional = side * sum(f.quantity * f.price for f in fills)

    def quote(self) -> None:
        """Make markets like a maker, if the vault is configured to."""
        if self.config.quotes:
            quote_ladders(self.model, [(self.account, self.maker_config)])

    @property
    def equity(self) -> float:
        """The vault's equity at the mark, USD."""
        return self.model.exchange.equity(self.account)

    @staticmethod
    def unwind_all(vaults: Sequence[Vault]) -> None:
        """Each of `vaults` (the model's: none or one) unwinds (:meth:`unwind`)."""
        for vault in vaults:
            vault.unwind()

    @staticmethod
    def quote_all(vaults: Sequence[Vault]) -> None:
        """Each of `vaults` (none or one) quotes, if configured to (:meth:`quote`)."""
        for vault in vaults:
            vault.quote()

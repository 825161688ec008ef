"""Basis traders: a perp short on the exchange against a spot long held elsewhere.

The spot long is an external hedge: a position on an outside venue, bought at the index
and marked to it. It is the agent's own state (:attr:`BasisTrader.hedge`, a
:class:`~perpabm.agents.books.StrategyBook`), never an account of the exchange, so the
exchange's money and open interest are the perp's alone; its P&L is reported beside
them.

When ADL closes some of the perp short, the hedge is naked by that much, and the trader
responds at the next step as ``basis.adl_response`` says: sell the perp again
(``"reopen"``), sell that much of the hedge at the index (``"close_hedge"``, a spot sale
that ``market.spot_impact`` feeds back into the index), or hold (``"none"``).

Worked example: capital 1,000,000 at 1x with the index at 100 opens a perp short of
10,000 units and buys 10,000 spot at 100 (cash −1,000,000). ADL closes 4,000 of the
short. Under ``"close_hedge"`` it sells 4,000 spot at the next step's index, say 90:
hedge 6,000, cash −1,000,000 + 360,000 = −640,000, spot flow −360,000 USD; the hedge's
P&L at 90 is −640,000 + 6,000 · 90 = −100,000 (the 10 a unit it lost on all 10,000).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from perpabm.agents.books import StrategyBook
from perpabm.config.scenario import BasisConfig

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perpabm.agents.protocols import MarketModel

MAX_SLIPPAGE = 0.02  # a basis trader's perp order walks no further than this from the index
OPENED = 1.0 - 1e-9  # the share of its target short at which it has opened


class BasisTrader(mesa.Agent):
    """Holds a perp short on the exchange against a spot long held elsewhere (the module
    docstring): opens both at its first step, responds to ADL at the next."""

    def __init__(self, model: MarketModel, config: BasisConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)
        self.hedge = StrategyBook()
        """The spot held outside the exchange (base units, ≥ 0) and what it has cost and
        returned (USD)."""
        self.target = 0.0
        """The perp short it opens, base units: capital · leverage / the index at its first
        step (0 before)."""
        self.opened = False
        """Whether its short has reached :attr:`target` (until then it sells the rest each
        step, as the book allows)."""
        self.naked = 0.0
        """Base units of the hedge that ADL left unhedged this step, for the response at
        the next step (0: none)."""
        self.spot_flow = 0.0
        """This step's spot trades, USD (+ bought, − sold): its hedge sales."""

    @property
    def hedge_pnl(self) -> float:
        """The external hedge's P&L at the index, USD (not on the exchange)."""
        return self.hedge.pnl(self.model.index)

    def open(self) -> None:
        """Sell what is left of the perp short's :attr:`target` (capital · leverage of
        notional at the index of its first step), and buy the spot hedge for what fills,
        at the index; :attr:`opened` once the short has reached the target (to
        :data:`OPENED` of it)."""
        model, cfg = self.model, self.config
        index = model.index
        if self.target == 0.0:
            self.target = cfg.capital * cfg.leverage / index
        rest = self.target + min(model.exchange.position(self.account), 0.0)
        filled = model.exchange.market_orders(
            [self.account], np.array([-rest]), np.array([index * (1 - MAX_SLIPPAGE)]))
        self.hedge.trade(-float(filled[0]), index)  # the spot bought for the perp sold
        self.opened = -model.exchange.position(self.account) >= OPENED * self.target

    def deleveraged(self, change: float) -> None:
        """ADL changed its perp position by `change` (base units; + for a short bought
        back): that much of the hedge is naked until its response at the next step."""
        if change > 0.0:
            self.naked += change

    def respond(self) -> None:
        """The response to last step's ADL (``adl_response``), then nothing naked."""
        model, cfg = self.model, self.config
        naked, self.naked = min(self.naked, self.hedge.position), 0.0
        if naked <= 0.0:
            return
        index = model.index
        if cfg.adl_response == "reopen":
            model.exchange.market_orders([self.account], np.array([-naked]),
                                         np.array([index * (1 - MAX_SLIPPAGE)]))
        elif cfg.adl_response == "close_hedge":
            self.spot_flow += self.hedge.trade(-naked, index)

    def act(self) -> None:
        """This step's trades: its opening order until it has opened, else its response."""
        self.spot_flow = 0.0
        if not self.opened:
            self.open()
        else:
            self.respond()

    @staticmethod
    def act_all(traders: Sequence[BasisTrader]) -> float:
        """Each of `traders` acts (:meth:`act`); returns their spot flow, USD."""
        flow = 0.0
        for trader in traders:
            trader.act()
            flow += trader.spot_flow
        return flow

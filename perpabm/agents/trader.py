"""Leveraged traders: heterogeneous capital and leverage; noise, momentum or contrarian.

A :class:`LeveragedTrader` is the agent a user inspects; what it holds is stored once,
in its :class:`~perpabm.agents.population.TraderPopulation`'s arrays at its account
(see that module), and its properties read it there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from perpabm.config.scenario import STRATEGIES

if TYPE_CHECKING:
    from perpabm.agents.protocols import MarketModel, TraderArrays


class LeveragedTrader(mesa.Agent):
    """A trader with one account, a strategy and a leverage it opens positions at.

    Account state (collateral, position) lives in the exchange; the trader's
    parameters and exit triggers live in its population's arrays, by account, so
    that a step checks them for all traders at once. The properties below read
    them (nothing is copied onto the agent): change a value in the population's
    array and the agent reports the new one.

    Traders act as batches (:meth:`TraderPopulation.exit`,
    :meth:`TraderPopulation.enter`), not one Python call each: a call per trader
    would cost more than the matching. A subclass can add state and observations of
    its own; its orders are still the population's. A scenario names it
    (``config.with_agent("tagged", TaggedTrader, use_in="traders")``, which worker
    processes receive with the config), or ``PerpMarketModel(...,
    trader_class=TaggedTrader)`` builds one model with it. It is built as
    ``cls(model, population, account)``.
    """

    def __init__(self, model: MarketModel, population: TraderArrays, account: int) -> None:
        super().__init__(model)
        self.population = population
        self.account = account

    @property
    def capital(self) -> float:
        """The USD the trader arrived with (the leave rule compares collateral to it)."""
        return float(self.population.capital[self.account])

    @property
    def leverage(self) -> float:
        """Notional over equity of the positions it opens (≥ ``traders.leverage_floor``)."""
        return float(self.population.leverage[self.account])

    @property
    def strategy(self) -> str:
        """One of :data:`~perpabm.config.scenario.STRATEGIES`."""
        return STRATEGIES[self.population.strategy[self.account]]

    @property
    def exit_step(self) -> float:
        """The step at which its position's holding time runs out (∞ if none)."""
        return float(self.population.exit_step[self.account])

    @property
    def exit_above(self) -> float:
        """It closes once the index is at or above this (USD): a long's take-profit, a
        short's stop-loss; NaN if none."""
        return float(self.population.exit_above[self.account])

    @property
    def exit_below(self) -> float:
        """It closes once the index is at or below this (USD): a long's stop-loss, a
        short's take-profit; NaN if none."""
        return float(self.population.exit_below[self.account])

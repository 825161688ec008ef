"""What the agents read of the model they belong to, as structural types.

Agents do not import the model: they are handed it (a :class:`mesa.Model`) and read the
attributes below, as Mesa agents read their model's. :class:`MarketModel` names them so
that a test or another model can stand in; :class:`IndexObservations` is the market-side
record of the index they share (:class:`perpabm.market.IndexHistory` is one);
:class:`TraderArrays` is what a trader agent reads of its population
(:class:`perpabm.agents.population.TraderPopulation` is one).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from perpabm.config.scenario import ScenarioConfig
from perpabm.exchange import Exchange


class IndexObservations(Protocol):
    """The index's path so far, as several agents read it in one step."""

    def trend(self, lookback_steps: int) -> float:
        """Sign of the index move over the last `lookback_steps` steps (+1, −1 or 0)."""
        ...

    def realised_volatility(self, window_steps: int) -> float:
        """Annualised volatility of the last `window_steps` log returns; NaN until that
        many steps have passed."""
        ...


class MarketModel(Protocol):
    """The attributes of the model (a :class:`mesa.Model`) that agents read."""

    config: ScenarioConfig
    exchange: Exchange
    history: IndexObservations
    index: float  # the index now, USD
    step_index: int  # steps taken so far
    step_minutes: float  # one step, in minutes
    now: float  # model time, in steps: fractional within a step the clock divides into ticks
    tick_minutes: float  # the tick being run, in minutes (a step, or a part of one)
    rng: np.random.Generator  # the order flow: who acts


class TraderArrays(Protocol):
    """The per-account arrays a trader agent's properties read (the layout is in
    :mod:`perpabm.agents.population`)."""

    capital: NDArray[np.float64]
    leverage: NDArray[np.float64]
    strategy: NDArray[np.int8]
    exit_step: NDArray[np.float64]
    exit_above: NDArray[np.float64]
    exit_below: NDArray[np.float64]

"""MarketConfig: the exogenous index price process and scripted shocks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perpabm.config.checks import choice, in_range, ranges, whole
from perpabm.errors import ConfigError

INDEX_PROCESSES = ("gbm", "merton", "garch_t", "regime", "replay")
MINUTES_PER_YEAR = 365.0 * 24.0 * 60.0


@dataclass(frozen=True, slots=True)
class Shock:
    """A scripted move of the index: `change` (−0.15 = a 15% drop) spread evenly, in log
    terms, over `over_steps` steps starting at step `at_step`; layered on any process."""

    at_step: int
    change: float
    over_steps: int = 1

    def __post_init__(self) -> None:
        whole("market.shocks.at_step", self.at_step, 0)
        in_range("market.shocks.change", self.change, -1.0, math.inf,
                 low_open=True, high_open=True)
        whole("market.shocks.over_steps", self.over_steps, 1)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The exogenous index price: one process, plus scripted shocks and optional feedback.

    Rates are annualised (``volatility`` 0.5 = 50% a year), the step is
    ``step_minutes`` long. Processes:

    - ``"gbm"``: geometric Brownian motion with ``drift`` and ``volatility``;
    - ``"merton"``: GBM plus Poisson jumps, ``jump_intensity`` a day, log jump
      sizes normal(``jump_mean``, ``jump_std``) (Merton 1976);
    - ``"garch_t"``: GARCH(1,1) variance with ``garch_alpha``, ``garch_beta`` and
      Student-t innovations with ``t_dof`` degrees of freedom, scaled to unit
      variance, the constant set so the long-run volatility is ``volatility``
      (Bollerslev 1986, 1987);
    - ``"regime"``: a two-state Markov chain, calm at ``volatility`` and stressed
      at ``stressed_volatility``, switching with per-step probabilities
      ``calm_to_stressed`` and ``stressed_to_calm``;
    - ``"replay"``: the log returns of the prices in the CSV file ``replay``
      (column ``replay_column``), rescaled to start at ``start_price``.

    ``spot_impact`` feeds perp liquidation flow back into the index: each
    million USD of net liquidation selling moves the next index log price by
    −``spot_impact`` (0, the default, keeps the index exogenous).
    """

    process: str = "garch_t"
    start_price: float = 100_000.0
    step_minutes: float = 1.0
    drift: float = 0.0
    volatility: float = 0.5
    jump_intensity: float = 0.0
    jump_mean: float = -0.01
    jump_std: float = 0.02
    garch_alpha: float = 0.05
    garch_beta: float = 0.93
    t_dof: float = 4.0
    stressed_volatility: float = 2.0
    calm_to_stressed: float = 1.0 / 1440.0
    stressed_to_calm: float = 1.0 / 120.0
    replay: str | None = None
    replay_column: str = "price"
    shocks: tuple[Shock, ...] = ()
    spot_impact: float = 0.0

    def __post_init__(self) -> None:
        p = "market"
        set_ = object.__setattr__
        choice(f"{p}.process", self.process, INDEX_PROCESSES)
        ranges(self, p, (
            ("start_price", 0.0, math.inf, True, True),
            ("step_minutes", 0.0, math.inf, True, True),
            ("drift", -10.0, 10.0, False, False),
            ("volatility", 0.0, 20.0, True, False),
            ("jump_intensity", 0.0, 1e4, False, False),
            ("jump_mean", -5.0, 5.0, False, False),
            ("jump_std", 0.0, 5.0, False, False),
            ("garch_alpha", 0.0, 1.0, False, True),
            ("garch_beta", 0.0, 1.0, False, True),
            ("t_dof", 2.0, math.inf, True, False),
            ("stressed_volatility", 0.0, 20.0, True, False),
            ("calm_to_stressed", 0.0, 1.0, False, False),
            ("stressed_to_calm", 0.0, 1.0, False, False),
            ("spot_impact", 0.0, 1.0, False, False),
        ))
        if self.garch_alpha + self.garch_beta >= 1.0:
            raise ConfigError(
                f"{p}.garch_alpha + garch_beta must be < 1 for a finite long-run variance; "
                f"got {self.garch_alpha + self.garch_beta:g}"
            )
        if self.process == "replay" and not isinstance(self.replay, str):
            raise ConfigError(f"{p}.replay must name a CSV file of prices for process 'replay'")
        if not isinstance(self.replay_column, str):
            raise ConfigError(f"{p}.replay_column must be a column name; got "
                              f"{self.replay_column!r}")
        shocks = self.shocks
        if isinstance(shocks, Mapping | str) or not isinstance(shocks, Iterable):
            raise ConfigError(f"{p}.shocks must be a list of shocks; got {shocks!r}")
        set_(self, "shocks", tuple(
            s if isinstance(s, Shock) else _shock(f"{p}.shocks[{k}]", s)
            for k, s in enumerate(shocks)))

    @property
    def step_years(self) -> float:
        """One step in years, the unit of the annualised rates."""
        return self.step_minutes / MINUTES_PER_YEAR

    def replace(self, **changes: Any) -> MarketConfig:
        return dataclasses.replace(self, **changes)


def _shock(path: str, value: Any) -> Shock:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a table with at_step, change, over_steps; "
                          f"got {value!r}")
    names = {f.name for f in dataclasses.fields(Shock)}
    unknown = set(value) - names
    if unknown:
        raise ConfigError(f"{path}.{sorted(unknown)[0]} is not a shock setting "
                          f"(at_step, change, over_steps)")
    missing = [name for name in ("at_step", "change") if name not in value]
    if missing:
        raise ConfigError(f"{path}.{missing[0]} is required (at_step, change, over_steps)")
    return Shock(**value)

"""MarketConfig: the exogenous index price process and scripted shocks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perpabm.config.checks import choice, in_range, ranges, require, text
from perpabm.errors import ConfigError, closest

INDEX_PROCESSES = ("gbm", "merton", "garch_t", "regime", "replay")
SECONDS_PER_MINUTE = 60.0
MINUTES_PER_DAY = 24.0 * 60.0
MINUTES_PER_YEAR = 365.0 * MINUTES_PER_DAY


def share_over(rate_per_minute: float, minutes: float) -> float:
    """The share of a quantity that a process taking `rate_per_minute` of what is left
    each minute takes over `minutes` — or the chance that an event of that chance per
    minute happens within them: 1 − (1 − rate)^minutes. Every "per minute" share and
    chance of a scenario reaches a step through this, so it means the same at any step.

    Worked example: 5% a minute is 1 − 0.95^0.25 = 1.274% over a 15-second step, 5%
    over one minute (exactly the rate: the power would round it) and
    1 − 0.95^4 = 18.55% over four.
    """
    if minutes == 1.0:
        return rate_per_minute
    return 1.0 - (1.0 - rate_per_minute) ** minutes


@dataclass(frozen=True, slots=True)
class Shock:
    """A scripted move of the index, layered on any process, in minutes from the start of
    the path: a move by `change` spread evenly in log terms over `over_minutes`, then,
    with `rebound`, that share of the move given back over `rebound_minutes` — the shape
    of 2025-10-10 in many coins, a fall and a partial recovery within minutes. A step
    takes the part of each move that falls within its minutes, so the shock is the same
    at any step length."""

    at_minute: float
    """[minutes] When the move begins, from the start of the path: it moves the index
    over the minutes (at_minute, at_minute + over_minutes]; on one-minute steps, steps
    at_minute + 1 to at_minute + over_minutes of the series (numbered from 1)."""
    change: float
    """[fraction of the index] The index's relative move: −0.15 is a 15% drop (the index
    is multiplied by 1 + change). A shock cut off by the end of the run moves it only
    partly."""
    over_minutes: float = 1.0
    """[minutes] How long the move takes."""
    rebound: float = 0.0
    """[fraction of the move] The share of the move given back right after it: 0.5
    after a 20% fall brings the index to 1 − 0.2 · (1 − 0.5) = 0.9 of where it began
    (0: no rebound)."""
    rebound_minutes: float = 1.0
    """[minutes] How long the rebound takes."""

    def __post_init__(self) -> None:
        in_range("market.shocks.at_minute", self.at_minute, 0.0, math.inf, high_open=True)
        in_range("market.shocks.change", self.change, -1.0, math.inf,
                 low_open=True, high_open=True)
        in_range("market.shocks.over_minutes", self.over_minutes, 0.0, math.inf,
                 low_open=True, high_open=True)
        in_range("market.shocks.rebound", self.rebound, 0.0, 1.0)
        in_range("market.shocks.rebound_minutes", self.rebound_minutes, 0.0, math.inf,
                 low_open=True, high_open=True)

    @property
    def moves(self) -> tuple[tuple[float, float, float], ...]:
        """The shock's moves as (start minute, minutes, log move): the move, then the
        rebound if any. Worked example: −20% over 10 minutes at 60 with a rebound of
        0.5 over 20: (60, 10, ln 0.8 = −0.2231) and (70, 20, ln(0.9 / 0.8) = 0.1178)."""
        fall = (self.at_minute, self.over_minutes, math.log1p(self.change))
        if self.rebound == 0.0:
            return (fall,)
        after = 1.0 + self.change * (1.0 - self.rebound)
        back = math.log(after / (1.0 + self.change))
        return fall, (self.at_minute + self.over_minutes, self.rebound_minutes, back)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The exogenous index price: one process, plus scripted shocks and optional feedback.

    Processes (``process``):

    - ``"gbm"``: geometric Brownian motion with ``drift`` and ``volatility``;
    - ``"merton"``: GBM plus Poisson jumps, ``jump_intensity`` a day, log jump
      sizes normal(``jump_mean``, ``jump_std``) (Merton 1976);
    - ``"garch_t"``: GARCH(1,1) variance with ``garch_alpha``, ``garch_beta`` and
      Student-t innovations with ``t_dof`` degrees of freedom, scaled to unit
      variance, the constant set so the long-run volatility is ``volatility``
      (Bollerslev 1986, 1987);
    - ``"regime"``: a two-state Markov chain, calm at ``volatility`` and stressed
      at ``stressed_volatility``, switching with per-step probabilities
      ``calm_to_stressed`` and ``stressed_to_calm`` (Hamilton 1989);
    - ``"replay"``: the log returns of the prices in the CSV file ``replay``
      (column ``replay_column``), rescaled to start at ``start_price``.

    Rates are annualised (``volatility`` 0.5 = 50% a year); every process is drawn a
    minute at a time and refined to the clock's ticks (:mod:`perpabm.market.index`).
    ``spot_impact`` feeds perp liquidation flow back into the index (0, the default,
    keeps it exogenous).
    """

    process: str = "garch_t"
    """The index process: ``"gbm"`` (geometric Brownian motion), ``"merton"`` (with
    jumps), ``"garch_t"`` (GARCH(1,1), Student-t), ``"regime"`` (calm and stressed) or
    ``"replay"`` (recorded prices)."""
    start_price: float = 100_000.0
    """[USD] The index at the start, and the exchange's first mark."""
    drift: float = 0.0
    """[per year] Annualised drift μ of ``"gbm"`` and ``"merton"``: E[index] grows as
    exp(μ · years). The other processes have none."""
    volatility: float = 0.5
    """[annualised] σ: the diffusive volatility of ``"gbm"`` and ``"merton"``, the
    long-run volatility of ``"garch_t"``, the calm regime's of ``"regime"`` (0.5 = 50% a
    year); ``"replay"`` ignores it."""
    jump_intensity: float = 0.0
    """[jumps per day] Expected number of jumps a day of ``"merton"``."""
    jump_mean: float = -0.01
    """[log return] Mean of one log jump of ``"merton"``."""
    jump_std: float = 0.02
    """[log return] Standard deviation of one log jump of ``"merton"``."""
    garch_alpha: float = 0.05
    """[dimensionless] ARCH coefficient α of ``"garch_t"``: the weight of the last squared
    return in the next step's variance."""
    garch_beta: float = 0.93
    """[dimensionless] GARCH coefficient β of ``"garch_t"``: the weight of the last
    variance in the next (α + β is the variance's persistence)."""
    t_dof: float = 4.0
    """[degrees of freedom] ν of the Student-t innovations of ``"garch_t"``, scaled to unit
    variance (inf: normal)."""
    stressed_volatility: float = 2.0
    """[annualised] The stressed regime's volatility of ``"regime"``."""
    calm_to_stressed: float = 1.0 / 1440.0
    """[probability per minute] Chance that ``"regime"`` turns from calm to stressed
    within a minute (once a day on average): the chain is drawn a minute at a time."""
    stressed_to_calm: float = 1.0 / 120.0
    """[probability per minute] Chance that ``"regime"`` turns from stressed to calm
    within a minute (stress lasts two hours on average)."""
    replay: str | None = None
    """The CSV file of prices (with a header row), one a minute, that ``"replay"`` plays:
    its first log returns, one a minute of the run, so at least one price more than the
    run has minutes; between them the index is interpolated linearly in log price. A
    relative path is relative to the working directory."""
    replay_column: str = "price"
    """The column of the ``replay`` file that holds the prices."""
    shocks: tuple[Shock, ...] = ()
    """Scripted moves of the index, added to the process: ``[[market.shocks]]`` tables of
    at_minute, change and over_minutes, and optionally rebound and rebound_minutes;
    overlapping shocks add."""
    spot_impact: float = 0.0
    """[log index per million USD] Feedback of liquidation flow into the index: each step's
    log return gets spot_impact × the previous step's net liquidation flow (USD, +
    bought, − sold: liquidation orders, insurance-fund closes and the vault's unwind,
    and the spot trades of basis traders and hedged makers) / 1,000,000 (0: the index
    is exogenous)."""

    def __post_init__(self) -> None:
        p = "market"
        set_ = object.__setattr__
        choice(f"{p}.process", self.process, INDEX_PROCESSES)
        ranges(self, p, (
            ("start_price", 0.0, math.inf, True, True),
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
        persistence = self.garch_alpha + self.garch_beta
        for name in ("garch_alpha", "garch_beta"):
            require(f"{p}.{name}", "garch_alpha + garch_beta < 1", persistence < 1.0,
                    f"{p}.garch_alpha + garch_beta must be < 1 for a finite long-run "
                    f"variance; got {persistence:g}")
        text(f"{p}.replay", self.replay, absent=True)
        require(f"{p}.replay", 'required when process is "replay"',
                self.process != "replay" or self.replay is not None,
                f"{p}.replay must name a CSV file of prices for process 'replay'")
        text(f"{p}.replay_column", self.replay_column)
        shocks = self.shocks
        require(f"{p}.shocks", "a list of tables of at_minute, change and over_minutes "
                "(and rebound, rebound_minutes)",
                not isinstance(shocks, Mapping | str) and isinstance(shocks, Iterable),
                f"{p}.shocks must be a list of shocks; got {shocks!r}")
        set_(self, "shocks", tuple(
            s if isinstance(s, Shock) else _shock(f"{p}.shocks[{k}]", s)
            for k, s in enumerate(shocks)))

    def replace(self, **changes: Any) -> MarketConfig:
        return dataclasses.replace(self, **changes)


SHOCK_KEYS = "at_minute, change, over_minutes, rebound, rebound_minutes"
IN_MINUTES = {"at_step": "at_minute", "over_steps": "over_minutes"}
"""Step-counted names a shock table may carry, and the settings in minutes they mean."""


def _shock(path: str, value: Any) -> Shock:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a table with {SHOCK_KEYS}; got {value!r}")
    names = {f.name for f in dataclasses.fields(Shock)}
    unknown = set(value) - names
    if unknown:
        name = sorted(unknown)[0]
        hint = (f' (shocks are timed in minutes: "{IN_MINUTES[name]}")' if name in IN_MINUTES
                else closest(name, names))
        raise ConfigError(f"{path}.{name} is not a shock setting ({SHOCK_KEYS}){hint}")
    missing = [name for name in ("at_minute", "change") if name not in value]
    if missing:
        raise ConfigError(f"{path}.{missing[0]} is required ({SHOCK_KEYS})")
    return Shock(**value)

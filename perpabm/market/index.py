"""The exogenous index price: log-return processes, scripted shocks and replayed prices.

Conventions shared by every function here:

- A path of ``n_steps`` log returns ``r`` (shape ``(n_steps,)``, dimensionless) moves the
  index from price ``S[t]`` to ``S[t + 1] = S[t] * exp(r[t])``; :func:`index_path` returns
  the ``n_steps + 1`` prices ``S[0] = start_price, S[1], ...``.
- ``dt`` is one step in years; ``drift`` and every volatility are annualised (0.5 = 50% a
  year), jump intensities are per year, transition probabilities are per step.
- All randomness comes from the :class:`numpy.random.Generator` argument ``rng``; nothing
  here keeps state, so a path is a pure function of its arguments and the generator's
  state. Within one call the diffusive normals are drawn first, so switching Merton jumps
  off (intensity 0) reproduces the GBM path of the same generator.

Spot-impact feedback (``MarketConfig.spot_impact``) is applied by the model step by step,
not here.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perpabm.config.market import (
    MINUTES_PER_DAY,
    MINUTES_PER_YEAR,
    MarketConfig,
    Shock,
    share_over,
)
from perpabm.errors import ConfigError, closest

__all__ = [
    "DAYS_PER_YEAR",
    "garch_t_log_returns",
    "gbm_log_returns",
    "index_history",
    "index_log_returns",
    "index_path",
    "merton_log_returns",
    "regime_log_returns",
    "replay_log_returns",
    "shock_log_returns",
]

DAYS_PER_YEAR = MINUTES_PER_YEAR / MINUTES_PER_DAY
"""365: converts ``MarketConfig.jump_intensity`` (a day) to the per-year intensity."""


# --------------------------------------------------------------------------- argument checks


def _steps(n_steps: Any) -> int:
    try:
        n = operator.index(n_steps)
    except TypeError:
        raise ValueError(f"n_steps must be a whole number ≥ 0; got {n_steps!r}") from None
    if n < 0:
        raise ValueError(f"n_steps must be a whole number ≥ 0; got {n}")
    return n


def _at_least(name: str, value: float, low: float, *, strict: bool = False) -> float:
    value = float(value)
    if math.isnan(value) or (value <= low if strict else value < low):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} {low:g}; got {value!r}")
    return value


def _probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")
    return value


# --------------------------------------------------------------------------- processes


def gbm_log_returns(
    n_steps: int,
    dt: float,
    drift: float,
    volatility: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exact log returns of geometric Brownian motion.

    ``r[t] = (drift − volatility²/2)·dt + volatility·√dt·Z[t]`` with ``Z`` i.i.d. standard
    normal: the exact solution of ``dS = drift·S·dt + volatility·S·dW`` over one step
    (Black & Scholes 1973; e.g. Glasserman, *Monte Carlo Methods in Financial
    Engineering*, 2003, §3.2), so ``E[S[t]] = S[0]·exp(drift·t·dt)``.

    Parameters
    ----------
    n_steps : int
        Number of steps, ≥ 0.
    dt : float
        One step in years, > 0.
    drift, volatility : float
        Annualised drift μ and volatility σ ≥ 0.
    rng : numpy.random.Generator
        Draws ``n_steps`` standard normals.

    Returns
    -------
    ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless).
    """
    n = _steps(n_steps)
    dt = _at_least("dt", dt, 0.0, strict=True)
    volatility = _at_least("volatility", volatility, 0.0)
    z = rng.standard_normal(n)
    return (drift - 0.5 * volatility**2) * dt + volatility * math.sqrt(dt) * z


def merton_log_returns(
    n_steps: int,
    dt: float,
    drift: float,
    volatility: float,
    jump_intensity_per_year: float,
    jump_mean: float,
    jump_std: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Log returns of Merton's jump diffusion: GBM plus compound-Poisson log jumps.

    ``r[t] = (drift − volatility²/2 − λ·k)·dt + volatility·√dt·Z[t] + Σ_{i ≤ N[t]} Y_i``
    with ``N[t] ~ Poisson(λ·dt)`` jumps in the step, log jump sizes
    ``Y ~ Normal(jump_mean, jump_std²)`` and ``k = E[e^Y] − 1 = exp(jump_mean +
    jump_std²/2) − 1`` (Merton, "Option pricing when underlying stock returns are
    discontinuous", J. Financial Economics 3, 1976). The ``−λ·k`` term compensates the
    jumps, so the expected price still grows at ``drift``: ``E[S[t]] = S[0]·exp(drift·t·dt)``.
    The sum of ``N`` normal jumps is drawn exactly as ``N·jump_mean + jump_std·√N·Z'``.

    Parameters
    ----------
    n_steps : int
        Number of steps, ≥ 0.
    dt : float
        One step in years, > 0.
    drift, volatility : float
        Annualised drift μ and diffusive volatility σ ≥ 0.
    jump_intensity_per_year : float
        λ ≥ 0, expected jumps per year.
    jump_mean, jump_std : float
        Mean and standard deviation (≥ 0) of one log jump.
    rng : numpy.random.Generator
        Draws the diffusive normals first (as :func:`gbm_log_returns`), then the jump
        counts and jump-size normals.

    Returns
    -------
    ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless).
    """
    n = _steps(n_steps)
    dt = _at_least("dt", dt, 0.0, strict=True)
    intensity = _at_least("jump_intensity_per_year", jump_intensity_per_year, 0.0)
    jump_std = _at_least("jump_std", jump_std, 0.0)
    diffusion = gbm_log_returns(n, dt, drift, volatility, rng)
    jump_counts = rng.poisson(intensity * dt, n)
    jump_sizes = jump_counts * jump_mean + jump_std * np.sqrt(jump_counts) * rng.standard_normal(n)
    mean_relative_jump = math.expm1(jump_mean + 0.5 * jump_std**2)  # k = E[e^Y] − 1
    return diffusion - intensity * mean_relative_jump * dt + jump_sizes


def garch_t_log_returns(
    n_steps: int,
    dt: float,
    volatility: float,
    alpha: float,
    beta: float,
    dof: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Zero-mean GARCH(1,1) log returns with unit-variance Student-t innovations.

    ``r[t] = σ[t]·z[t]`` with ``σ²[t] = ω + α·r²[t−1] + β·σ²[t−1]`` (Bollerslev, J.
    Econometrics 31, 1986) and ``z = T·√((ν − 2)/ν)``, ``T ~ Student-t(ν)``, so
    ``Var z = 1`` (Bollerslev, Rev. Economics & Statistics 69, 1987). The constant
    ``ω = (1 − α − β)·σ̄²`` makes the per-step long-run variance ``σ̄² = volatility²·dt``,
    and the recursion starts there (``σ²[0] = σ̄²``), so ``E[r²[t]] = σ̄²`` at every step.
    ``ν = inf`` gives normal innovations.

    The recursion is computed as ``σ²[t+1] = ω + (α·z²[t] + β)·σ²[t]`` (the same, since
    ``r² = σ²·z²``): the coefficients are vectorised, the one unavoidable sequential
    multiply-add is a Python loop over a preallocated array (about 0.15 ms for 1,440
    steps). A closed form through cumulative products of the coefficients would avoid the
    loop but under/overflows on long paths and divides by zero when ``β = 0``.

    Parameters
    ----------
    n_steps : int
        Number of steps, ≥ 0.
    dt : float
        One step in years, > 0.
    volatility : float
        Annualised long-run volatility, ≥ 0.
    alpha, beta : float
        ARCH and GARCH coefficients, ≥ 0 with ``alpha + beta < 1``.
    dof : float
        Degrees of freedom ν > 2 of the Student-t innovations (``inf``: normal).
    rng : numpy.random.Generator
        Draws ``n_steps`` Student-t (or normal) variates.

    Returns
    -------
    ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless).
    """
    n = _steps(n_steps)
    dt = _at_least("dt", dt, 0.0, strict=True)
    volatility = _at_least("volatility", volatility, 0.0)
    alpha = _at_least("alpha", alpha, 0.0)
    beta = _at_least("beta", beta, 0.0)
    dof = _at_least("dof", dof, 2.0, strict=True)
    if alpha + beta >= 1.0:
        raise ValueError(f"alpha + beta must be < 1 for a finite long-run variance; "
                         f"got {alpha + beta:g}")
    if math.isinf(dof):
        innovations = rng.standard_normal(n)
    else:
        innovations = rng.standard_t(dof, n) * math.sqrt((dof - 2.0) / dof)
    long_run_variance = volatility**2 * dt
    omega = (1.0 - alpha - beta) * long_run_variance
    coefficients = (alpha * innovations * innovations + beta).tolist()
    variance = np.empty(n)
    if n:
        variance[0] = current = long_run_variance
        for t in range(1, n):
            current = omega + coefficients[t - 1] * current
            variance[t] = current
    return np.sqrt(variance) * innovations


def regime_log_returns(
    n_steps: int,
    dt: float,
    calm_volatility: float,
    stressed_volatility: float,
    calm_to_stressed: float,
    stressed_to_calm: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean normal log returns whose volatility follows a two-state Markov chain.

    The regime starts calm (``regime[0] = 0``); before each later step it switches
    calm → stressed with probability ``p = calm_to_stressed`` and stressed → calm with
    probability ``q = stressed_to_calm`` (a Markov-switching volatility model, Hamilton,
    Econometrica 57, 1989). The chain is simulated by its run lengths, which are geometric
    (``P(run = k) = (1 − p)^(k−1)·p`` for a calm run), so there is no loop over steps; in the
    long run the fraction of time stressed is ``p/(p + q)``. Then
    ``r[t] = vol[regime[t]]·√dt·Z[t]``.

    Parameters
    ----------
    n_steps : int
        Number of steps, ≥ 0.
    dt : float
        One step in years, > 0.
    calm_volatility, stressed_volatility : float
        Annualised volatilities (≥ 0) in the two regimes.
    calm_to_stressed, stressed_to_calm : float
        Per-step switching probabilities in [0, 1] (0: never leaves that regime).
    rng : numpy.random.Generator
        Draws ``n_steps`` standard normals, then the run lengths.

    Returns
    -------
    returns : ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless).
    regime : ndarray of int8, shape (n_steps,)
        0 where the step is calm, 1 where it is stressed.
    """
    n = _steps(n_steps)
    dt = _at_least("dt", dt, 0.0, strict=True)
    volatilities = np.array([_at_least("calm_volatility", calm_volatility, 0.0),
                             _at_least("stressed_volatility", stressed_volatility, 0.0)])
    p = _probability("calm_to_stressed", calm_to_stressed)
    q = _probability("stressed_to_calm", stressed_to_calm)
    z = rng.standard_normal(n)
    regime = _two_state_chain(n, p, q, rng)
    return volatilities[regime] * math.sqrt(dt) * z, regime


def _two_state_chain(n: int, p: float, q: float, rng: np.random.Generator) -> np.ndarray:
    """States (int8, shape (n,)) of a chain starting at 0, leaving 0 w.p. p and 1 w.p. q."""
    if n == 0:
        return np.zeros(0, dtype=np.int8)

    def run_lengths(probability: float, size: int) -> np.ndarray:
        if probability == 0.0:  # never leaves: one run to the horizon
            return np.full(size, n, dtype=np.int64)
        return np.minimum(rng.geometric(probability, size), n)  # a run ≥ n reaches the end

    # Expected steps per calm + stressed pair: 1/p + 1/q; draw pairs in batches until the
    # runs cover the horizon.
    pair_steps = (1.0 / p if p else n) + (1.0 / q if q else n)
    batch = int(min(n, n / pair_steps * 1.25)) + 8
    lengths: list[np.ndarray] = []
    covered = 0
    while covered < n:
        pairs = np.column_stack([run_lengths(p, batch), run_lengths(q, batch)]).ravel()
        lengths.append(pairs)
        covered += int(pairs.sum())
    runs = np.concatenate(lengths)
    runs = runs[: int(np.searchsorted(np.cumsum(runs), n)) + 1]  # the runs that reach step n
    states = np.resize(np.array([0, 1], dtype=np.int8), runs.size)  # calm, stressed, calm, …
    return np.repeat(states, runs)[:n]


# --------------------------------------------------------------------------- replay


def replay_log_returns(path_or_prices: Any, column: str = "price") -> np.ndarray:
    """Log returns ``log(P[t+1]/P[t])`` of a recorded price series.

    Parameters
    ----------
    path_or_prices : str, os.PathLike or array-like of float
        A local CSV file with a header row (read with :func:`pandas.read_csv`; UTF-8, an
        optional byte-order mark is ignored; URLs are not fetched), or the prices
        themselves as a 1-D array-like.
    column : str
        The CSV column holding the prices (ignored for an array-like).

    Returns
    -------
    ndarray of float64, shape (len(prices) − 1,)
        Log returns per row (dimensionless).

    Raises
    ------
    perpabm.ConfigError
        With a one-line message naming ``market.replay`` (or ``market.replay_column``) for
        a missing or unreadable file, an unknown column (suggesting the closest), a
        non-numeric, missing, infinite or non-positive price, or fewer than 2 prices.
    """
    if isinstance(path_or_prices, (str, os.PathLike)):
        prices, where = _read_price_column(Path(path_or_prices), column)
    else:
        try:
            prices = np.asarray(path_or_prices, dtype=float)
        except (TypeError, ValueError):
            raise ConfigError(f"market.replay prices must be numbers; got "
                              f"{_short(path_or_prices)}") from None
        if prices.ndim != 1:
            raise ConfigError(f"market.replay prices must be one-dimensional; got shape "
                              f"{prices.shape}")

        def where(i: int) -> str:
            return f"index {i}"

    _check_prices(prices, where)
    return np.diff(np.log(prices))


def _read_price_column(path: Path, column: str) -> tuple[np.ndarray, Any]:
    """The column as floats (NaN where missing or non-numeric) and a row describer."""
    if not path.exists():
        raise ConfigError(f"market.replay file not found: '{path}'")
    try:
        # Our own handle: pandas then never treats the name as a URL or guesses compression.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            table = pd.read_csv(handle)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"market.replay '{path}' is empty; expected a CSV with a header "
                          f"row") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        raise ConfigError(f"market.replay '{path}' could not be read as CSV: "
                          f"{_one_line(error)}") from None
    names = [str(name) for name in table.columns]
    if column not in table.columns:
        shown = ", ".join(f'"{name}"' for name in names[:10]) + (", …" if len(names) > 10 else "")
        raise ConfigError(f"market.replay_column {column!r} is not a column of '{path}' "
                          f"(columns: {shown}){closest(column, names)}")
    raw = table[column]  # pandas renames duplicated headers ("price.1"), so one column
    numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    not_numeric = np.flatnonzero(np.isnan(numeric) & raw.notna().to_numpy())
    if not_numeric.size:
        i = int(not_numeric[0])
        raise ConfigError(f"market.replay column {column!r} has a non-numeric price at "
                          f"line {i + 2} of '{path}': {_short(raw.iloc[i])}")

    def where(i: int) -> str:
        return f"line {i + 2} of '{path}'"  # line 1 is the header

    return numeric, where


def _check_prices(prices: np.ndarray, where: Any) -> None:
    missing = np.flatnonzero(np.isnan(prices))
    if missing.size:
        raise ConfigError(f"market.replay has a missing (NaN) price at {where(int(missing[0]))}")
    infinite = np.flatnonzero(np.isinf(prices))
    if infinite.size:
        i = int(infinite[0])
        raise ConfigError(f"market.replay prices must be finite; got {prices[i]:g} at {where(i)}")
    non_positive = np.flatnonzero(prices <= 0.0)
    if non_positive.size:
        i = int(non_positive[0])
        raise ConfigError(f"market.replay prices must be > 0; got {prices[i]:g} at {where(i)}")
    if prices.size < 2:
        raise ConfigError(f"market.replay needs at least 2 prices for one return; got "
                          f"{prices.size}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- shocks


def shock_log_returns(shocks: Iterable[Shock], n_steps: int,
                      step_minutes: float = 1.0) -> np.ndarray:
    """The deterministic log-return contribution of scripted shocks.

    Each move of a shock (:attr:`Shock.moves`: the move, then its rebound) of log size
    L over the minutes [a, a + d) adds L · (overlap of step k's minutes
    [k·step, (k + 1)·step) with them) / d to step k (0-based), so over its whole span
    it multiplies the price by exactly e^L, at any step length (the spreading "evenly,
    in log terms" of :class:`Shock`). Minutes past the horizon are dropped (a shock
    that does not fit moves the price only partly, one starting at or after the end
    not at all); overlapping shocks add.

    Worked example: −20% over 10 minutes at minute 60 on one-minute steps adds
    ln 0.8 / 10 = −0.02231 to steps 60 to 69 (0-based); on 4-minute steps, steps 15 and
    16 (minutes 60–68) take −0.02231 · 4 each and step 17 (minutes 68–72) −0.02231 · 2.

    Parameters
    ----------
    shocks : iterable of Shock
        Anything with :attr:`Shock.moves`.
    n_steps : int
        Horizon, ≥ 0.
    step_minutes : float
        Length of a step, minutes (> 0).

    Returns
    -------
    ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless; 0 where no shock acts).
    """
    n = _steps(n_steps)
    contribution = np.zeros(n)
    begins = np.arange(n) * step_minutes
    ends = begins + step_minutes
    for shock in shocks:  # a handful of shocks: a loop over shocks, not steps
        for start, minutes, log_move in shock.moves:
            overlap = np.minimum(ends, start + minutes) - np.maximum(begins, start)
            acting = overlap > 0.0
            contribution[acting] += log_move * overlap[acting] / minutes
    return contribution


# --------------------------------------------------------------------------- configured index


def index_log_returns(
    config: MarketConfig, n_steps: int, rng: np.random.Generator
) -> np.ndarray:
    """The configured index's log returns: the process of ``config.process`` plus shocks.

    The step ``dt`` is ``config.step_years``. ``"gbm"`` and ``"merton"`` use ``drift``;
    ``"garch_t"`` and ``"regime"`` are zero-mean and ignore it. ``"merton"`` converts
    ``jump_intensity`` from a day to a year (× :data:`DAYS_PER_YEAR`). ``"regime"`` is calm
    at ``volatility``; its regime path is not returned (call :func:`regime_log_returns` for
    it). ``"replay"`` takes the first ``n_steps`` returns of the CSV ``config.replay``
    (a relative path is relative to the working directory) and draws nothing from ``rng``.
    :func:`shock_log_returns` of ``config.shocks`` is added to every process.

    Parameters
    ----------
    config : MarketConfig
    n_steps : int
        Number of steps, ≥ 0.
    rng : numpy.random.Generator
        The index's own stream, one of the independent streams of a path's seed, so that
        paths differing only in venue rules share the index path.

    Returns
    -------
    ndarray of float64, shape (n_steps,)
        Log returns per step (dimensionless).

    Raises
    ------
    perpabm.ConfigError
        For ``"replay"``: an unusable CSV (see :func:`replay_log_returns`) or one with
        fewer than ``n_steps`` returns.
    """
    n = _steps(n_steps)
    dt = config.step_years
    match config.process:
        case "gbm":
            returns = gbm_log_returns(n, dt, config.drift, config.volatility, rng)
        case "merton":
            returns = merton_log_returns(
                n, dt, config.drift, config.volatility,
                config.jump_intensity * DAYS_PER_YEAR, config.jump_mean, config.jump_std, rng)
        case "garch_t":
            returns = garch_t_log_returns(n, dt, config.volatility, config.garch_alpha,
                                          config.garch_beta, config.t_dof, rng)
        case "regime":
            returns, _ = regime_log_returns(
                n, dt, config.volatility, config.stressed_volatility,
                share_over(config.calm_to_stressed, config.step_minutes),
                share_over(config.stressed_to_calm, config.step_minutes), rng)
        case "replay":
            recorded = replay_log_returns(config.replay, config.replay_column)
            if recorded.size < n:
                raise ConfigError(
                    f"market.replay '{config.replay}' has {recorded.size} steps of returns "
                    f"({recorded.size + 1} prices); {n} are needed")
            returns = recorded[:n]
        case other:  # MarketConfig validates the name; a hand-made object may not
            raise ConfigError(f"market.process {other!r} is not an index process")
    return returns + shock_log_returns(config.shocks, n, config.step_minutes)


def index_path(config: MarketConfig, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Index prices ``S[0] = config.start_price, S[t+1] = S[t]·exp(r[t])``.

    Parameters
    ----------
    config : MarketConfig
    n_steps : int
        Number of steps, ≥ 0.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of float64, shape (n_steps + 1,)
        Prices in the quote currency, ``config.start_price · exp(cumsum(r))`` after the
        start price, with ``r = index_log_returns(config, n_steps, rng)``.
    """
    log_returns = index_log_returns(config, n_steps, rng)
    cumulative = np.concatenate([[0.0], np.cumsum(log_returns)])
    return config.start_price * np.exp(cumulative)


def index_history(config: MarketConfig, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """The index over the `n_steps` steps before step 0, ending at the start price: prices
    at steps −n … 0 (``n_steps + 1`` of them), from `config`'s process without its
    shocks (a warm start's history, :mod:`perpabm.agents.warm`).

    With log returns r₀ … r₍ₙ₋₁₎ (r_k takes the price from step k − n to step k − n + 1),
    the price at step −n + i is ``start_price · exp(−Σ_{k ≥ i} r_k)``: 100 with returns
    (ln 1.1, ln 0.5) gives (100 / 0.55, 100 / 0.5, 100) = (181.8, 200, 100).
    """
    returns = index_log_returns(config.replace(shocks=()), n_steps, rng)
    after = np.concatenate([np.cumsum(returns[::-1])[::-1], [0.0]])  # Σ of the later returns
    return config.start_price * np.exp(-after)

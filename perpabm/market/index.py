"""The exogenous index price: log-return processes, scripted shocks and replayed prices.

Conventions shared by every function here:

- A path of ``n`` log returns ``r`` (shape ``(n,)``, dimensionless) moves the index from
  price ``S[t]`` to ``S[t + 1] = S[t] * exp(r[t])``; :func:`index_path` returns the
  ``n + 1`` prices ``S[0] = start_price, S[1], ...``.
- The configured index (:func:`minute_log_returns`, :func:`index_log_returns`) is drawn at
  its native resolution of :data:`NATIVE_MINUTES` = one minute, whatever the model's
  clock: ``dt`` is a minute in years (:data:`NATIVE_DT` = 1/525,600), ``drift`` and every
  volatility are annualised (0.5 = 50% a year), jump intensities are per year (per day in
  :class:`~perpabm.config.market.MarketConfig`), and GARCH's α and β and the regime
  chain's switching chances are per minute. GARCH is not temporally aggregable in
  closed form — a GARCH(1,1) at one clock is not a GARCH(1,1) at another (Drost &
  Nijman, "Temporal aggregation of GARCH processes", Econometrica 61, 1993) — so it is
  defined at one clock, the minute, and the other processes share that clock so that
  every parameter means the same at any tick.
- A finer tick, ``per_minute`` ticks of 60/per_minute seconds to the minute, is the
  minute path refined by a Brownian bridge pinned at the minute's ends
  (:func:`bridge_log_returns`), from its own generator ``bridge_rng``; a coarser step is
  the caller's sum of consecutive minutes. The minute path is drawn from ``rng`` the same
  way at every ``per_minute``, so one seed gives the same index at every whole minute
  whatever the tick (common random numbers across tick lengths); within a minute, two
  tick lengths see two different bridges between the same ends.
- The process functions (:func:`gbm_log_returns` … :func:`regime_log_returns`) are
  generic: they take their step ``dt`` (and a per-step switching chance) as arguments.
- All randomness comes from the :class:`numpy.random.Generator` arguments; nothing here
  keeps state, so a path is a pure function of its arguments and the generators' states.
  Within one call the diffusive normals are drawn first, so switching Merton jumps off
  (intensity 0) reproduces the GBM path of the same generator.

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
)
from perpabm.errors import ConfigError, closest

__all__ = [
    "DAYS_PER_YEAR",
    "NATIVE_DT",
    "NATIVE_MINUTES",
    "bridge_log_returns",
    "garch_t_log_returns",
    "gbm_log_returns",
    "index_history",
    "index_log_returns",
    "index_path",
    "merton_log_returns",
    "minute_log_returns",
    "regime_log_returns",
    "replay_log_returns",
    "shock_log_returns",
]

DAYS_PER_YEAR = MINUTES_PER_YEAR / MINUTES_PER_DAY
"""365: converts ``MarketConfig.jump_intensity`` (a day) to the per-year intensity."""

NATIVE_MINUTES = 1.0
"""[minutes] The resolution every configured index process is drawn at (gbm, merton,
garch_t, regime, replay): one return a minute, so GARCH's α and β and the regime chain's
switching chances mean per minute whatever the model's tick. GARCH is not temporally
aggregable in closed form (Drost & Nijman, Econometrica 61, 1993), so it is defined at
one clock, this one; finer ticks are interpolated (:func:`bridge_log_returns`), coarser
steps are sums of minutes."""

NATIVE_DT = NATIVE_MINUTES / MINUTES_PER_YEAR
"""[years] ``dt`` of one native minute: 1/525,600 = 1.903e-6 of a year."""


# --------------------------------------------------------------------------- argument checks


def _steps(n_steps: Any) -> int:
    return _whole("n_steps", n_steps, 0)


def _whole(name: str, value: Any, low: int) -> int:
    """`value` as an int ≥ `low`, or one ValueError naming `name` (a float such as 2.0 is
    refused: a count that arrives as a float was computed, and may have been rounded)."""
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a whole number ≥ {low}; got {value!r}") from None
    if n < low:
        raise ValueError(f"{name} must be a whole number ≥ {low}; got {n}")
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
    ``ν = inf`` gives normal innovations. The variances ``σ²[t]`` of a path are what
    :func:`minute_log_returns` returns beside its returns for ``"garch_t"``.

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
    return _garch_t(n_steps, dt, volatility, alpha, beta, dof, rng)[0]


def _garch_t(
    n_steps: int,
    dt: float,
    volatility: float,
    alpha: float,
    beta: float,
    dof: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`garch_t_log_returns` (the first array) and the conditional variances
    ``σ²[t]`` of its steps (the second, per step, dimensionless): the one definition of
    the recursion, so the variances belong to exactly the returns drawn."""
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
    return np.sqrt(variance) * innovations, variance


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


# --------------------------------------------------------------------------- ticks


def bridge_log_returns(
    log_returns: Any,
    variances: Any,
    per_minute: int,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Each minute's log return split into ``per_minute`` ticks by a Brownian bridge
    pinned at the minute's two ends.

    Over a minute whose diffusive part has conditional variance ``v`` (its
    :func:`minute_log_returns` variance), the ``k = per_minute`` ticks of a Brownian
    motion are ``y_j = √(v/k)·ε_j``, ``ε_j`` i.i.d. standard normal. For i.i.d. normals
    the deviations ``y_j − ȳ`` are independent of their sum, so the ticks conditioned on
    summing to the minute's return ``R`` are ::

        x_j = R/k + √(v/k)·(ε_j − ε̄),   ε̄ = (ε_1 + … + ε_k)/k,

    which sum to ``R`` (up to rounding) with ``E[x_j | R] = R/k``,
    ``Var(x_j | R) = (v/k)·(1 − 1/k)`` and ``Cov(x_i, x_j | R) = −v/k²`` (i ≠ j): the
    increments of a Brownian bridge (Glasserman, *Monte Carlo Methods in Financial
    Engineering*, 2003, §3.1). A minute of GBM, ``R ~ Normal(m, v)``, thus becomes ``k``
    i.i.d. ``Normal(m/k, v/k)`` ticks — GBM drawn at the tick directly; for any process
    the ticks' expected squared sum is the minute's ``E[R²]`` (realised variance does
    not depend on the tick). A Merton jump, part of its minute's ``R``, is spread along
    that minute by the bridge's mean ``R/k``. A GARCH minute is interpolated by the
    normal bridge of its own ``σ²[t]`` (GARCH has no closed form at a finer clock, Drost
    & Nijman 1993). Variance 0 (a replayed series) gives ``x_j = R/k``: linear
    interpolation in log price between the recorded minutes, no invented moves — finer
    ticks see no volatility the record does not have.

    Worked number: ``R = 0.003``, ``v = 4e-6`` (a minute's sd of 0.2%), ``k = 4`` and
    ``ε = (1, −1, 0.5, −0.5)`` (``ε̄ = 0``): ``√(v/k) = 0.001`` and the ticks are
    ``0.00075 + 0.001·ε = (0.00175, −0.00025, 0.00125, 0.00025)``, summing to 0.003; each
    has conditional sd ``√(1e-6 · 0.75) = 8.66e-4``.

    Parameters
    ----------
    log_returns : array-like of float, shape (n,)
        The minutes' log returns (dimensionless).
    variances : array-like of float, shape (n,)
        The conditional variance (≥ 0, finite) of each minute's diffusive part.
    per_minute : int
        Ticks a minute, a whole number ≥ 1 (ticks of 60/per_minute seconds).
    rng : numpy.random.Generator or None
        Draws ``n·per_minute`` standard normals, minute by minute; nothing (and may be
        None) when ``per_minute`` is 1.

    Returns
    -------
    ndarray of float64, shape (n·per_minute,)
        Log returns per tick; ticks ``k·m … k·m + k − 1`` make up minute ``m``. With
        ``per_minute`` 1, a copy of `log_returns`.

    Raises
    ------
    ValueError
        For a ``per_minute`` that is not a whole number ≥ 1, mismatched or
        non-one-dimensional arrays, a negative or non-finite variance, or no `rng` when
        ``per_minute`` > 1.
    """
    k = _whole("per_minute", per_minute, 1)
    returns = np.array(log_returns, dtype=float)  # a copy: the caller's array is not ours
    variances = np.asarray(variances, dtype=float)
    if returns.ndim != 1 or variances.shape != returns.shape:
        raise ValueError(f"log_returns and variances must be one-dimensional and of one "
                         f"length; got shapes {returns.shape} and {variances.shape}")
    if not (np.isfinite(variances).all() and (variances >= 0.0).all()):
        raise ValueError("variances must be finite and ≥ 0")
    if k == 1:
        return returns
    if rng is None:
        raise ValueError(f"a generator is needed to bridge a minute into {k} ticks")
    noise = rng.standard_normal((returns.size, k))
    noise -= noise.mean(axis=1, keepdims=True)  # ε_j − ε̄: sums to 0 over each minute
    ticks = returns[:, None] / k + np.sqrt(variances / k)[:, None] * noise
    return ticks.ravel()


# --------------------------------------------------------------------------- configured index


def minute_log_returns(
    config: MarketConfig, minutes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The configured process's log returns a minute apart, without shocks, and each
    minute's conditional variance of its diffusive part.

    ``dt`` is :data:`NATIVE_DT` (one minute). ``"gbm"`` and ``"merton"`` use ``drift``;
    ``"garch_t"`` and ``"regime"`` are zero-mean and ignore it. ``"merton"`` converts
    ``jump_intensity`` from a day to a year (× :data:`DAYS_PER_YEAR`). ``"regime"`` is
    calm at ``volatility`` and switches with the per-minute chances ``calm_to_stressed``
    and ``stressed_to_calm``; its regime path is not returned (call
    :func:`regime_log_returns` for it). ``"replay"`` takes the first ``minutes`` returns
    of the CSV ``config.replay``, read as one price a minute (a relative path is relative
    to the working directory), and draws nothing from ``rng``.

    The variances, what :func:`bridge_log_returns` spreads within a minute: ``"gbm"`` and
    ``"merton"`` ``volatility²·dt`` (Merton's diffusion only: a jump is part of the
    minute's return, not of its variance); ``"garch_t"`` the recursion's ``σ²[t]``;
    ``"regime"`` the minute's state's ``volatility²·dt``; ``"replay"`` 0. Worked number:
    ``volatility`` 0.5 gives ``0.25/525,600 = 4.76e-7`` a minute (a minute's sd of
    0.069%).

    Parameters
    ----------
    config : MarketConfig
    minutes : int
        Number of minutes, ≥ 0.
    rng : numpy.random.Generator
        The index's own stream; it draws exactly what the process function of the
        configured process draws for ``minutes`` steps of ``dt``.

    Returns
    -------
    returns : ndarray of float64, shape (minutes,)
        Log returns per minute (dimensionless).
    variances : ndarray of float64, shape (minutes,)
        Conditional variance of each minute's diffusive log return (dimensionless).

    Raises
    ------
    perpabm.ConfigError
        For ``"replay"``: an unusable CSV (see :func:`replay_log_returns`) or one with
        fewer than ``minutes`` returns.
    """
    n = _whole("minutes", minutes, 0)
    dt = NATIVE_DT
    match config.process:
        case "gbm":
            returns = gbm_log_returns(n, dt, config.drift, config.volatility, rng)
            variances = np.full(n, config.volatility**2 * dt)
        case "merton":
            returns = merton_log_returns(
                n, dt, config.drift, config.volatility,
                config.jump_intensity * DAYS_PER_YEAR, config.jump_mean, config.jump_std, rng)
            variances = np.full(n, config.volatility**2 * dt)
        case "garch_t":
            returns, variances = _garch_t(n, dt, config.volatility, config.garch_alpha,
                                          config.garch_beta, config.t_dof, rng)
        case "regime":
            returns, regime = regime_log_returns(
                n, dt, config.volatility, config.stressed_volatility,
                config.calm_to_stressed, config.stressed_to_calm, rng)
            volatilities = np.array([config.volatility, config.stressed_volatility])
            variances = volatilities[regime] ** 2 * dt
        case "replay":
            recorded = replay_log_returns(config.replay, config.replay_column)
            if recorded.size < n:
                raise ConfigError(
                    f"market.replay '{config.replay}' has {recorded.size} minutes of returns "
                    f"({recorded.size + 1} prices); {n} are needed")
            returns, variances = recorded[:n], np.zeros(n)
        case other:  # MarketConfig validates the name; a hand-made object may not
            raise ConfigError(f"market.process {other!r} is not an index process")
    return returns, variances


def index_log_returns(
    config: MarketConfig,
    minutes: int,
    rng: np.random.Generator,
    *,
    per_minute: int = 1,
    bridge_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The configured index's log returns at ticks of 60/``per_minute`` seconds: the
    process's minute path (:func:`minute_log_returns`), bridged to ``per_minute`` ticks a
    minute (:func:`bridge_log_returns`), plus the scripted shocks of ``config.shocks``
    at the tick (:func:`shock_log_returns` with steps of ``1/per_minute`` minutes,
    exact at any step: spread evenly in log terms).

    ``rng`` draws the minute path the same way at every ``per_minute``, and the bridge
    draws from its own ``bridge_rng``, so one seed gives the same index at every whole
    minute whatever the tick: the ``per_minute`` ticks ``per_minute·m …
    per_minute·(m + 1) − 1`` sum (up to rounding) to minute ``m``'s return at
    ``per_minute`` 1. A step longer than a minute is the caller's sum of consecutive
    minutes: ``r.reshape(-1, 4).sum(axis=1)`` for 4-minute steps (shocks included, a
    shock's part of a step being the sum of its parts of the step's minutes).

    Worked example: 1,440 minutes at ``per_minute`` 12 are 17,280 returns of 5 seconds;
    ticks 0 … 11 make up the first minute.

    Parameters
    ----------
    config : MarketConfig
    minutes : int
        Number of minutes, ≥ 0.
    rng : numpy.random.Generator
        The index's own stream, one of the independent streams of a path's seed, so that
        paths differing only in venue rules share the index path.
    per_minute : int
        Ticks a minute, a whole number ≥ 1 (1: one-minute returns, bit-identical to the
        minute path plus shocks).
    bridge_rng : numpy.random.Generator or None
        The bridge's own stream, required when ``per_minute`` > 1 (it draws
        ``minutes·per_minute`` standard normals, for ``"replay"`` too); untouched when
        ``per_minute`` is 1.

    Returns
    -------
    ndarray of float64, shape (minutes·per_minute,)
        Log returns per tick (dimensionless).

    Raises
    ------
    ValueError
        For a ``per_minute`` that is not a whole number ≥ 1, or ``per_minute`` > 1
        without ``bridge_rng``.
    perpabm.ConfigError
        For ``"replay"``: an unusable CSV (see :func:`replay_log_returns`) or one with
        fewer than ``minutes`` returns.
    """
    k = _ticks(per_minute, bridge_rng)  # before drawing: a bad argument costs no draws
    returns, variances = minute_log_returns(config, minutes, rng)
    ticks = bridge_log_returns(returns, variances, k, bridge_rng)
    return ticks + shock_log_returns(config.shocks, ticks.size, 1.0 / k)


def _ticks(per_minute: Any, bridge_rng: np.random.Generator | None) -> int:
    k = _whole("per_minute", per_minute, 1)
    if k > 1 and bridge_rng is None:
        raise ValueError(f"bridge_rng is required when per_minute > 1 (got per_minute {k})")
    return k


def index_path(
    config: MarketConfig,
    minutes: int,
    rng: np.random.Generator,
    *,
    per_minute: int = 1,
    bridge_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Index prices ``S[0] = config.start_price, S[t+1] = S[t]·exp(r[t])`` at ticks of
    60/``per_minute`` seconds.

    Parameters
    ----------
    config : MarketConfig
    minutes : int
        Number of minutes, ≥ 0.
    rng : numpy.random.Generator
    per_minute : int
        Ticks a minute, ≥ 1.
    bridge_rng : numpy.random.Generator or None
        Required when ``per_minute`` > 1 (see :func:`index_log_returns`).

    Returns
    -------
    ndarray of float64, shape (minutes·per_minute + 1,)
        Prices in the quote currency, ``config.start_price · exp(cumsum(r))`` after the
        start price, with ``r = index_log_returns(config, minutes, rng, per_minute=…,
        bridge_rng=…)``.
    """
    log_returns = index_log_returns(config, minutes, rng, per_minute=per_minute,
                                    bridge_rng=bridge_rng)
    cumulative = np.concatenate([[0.0], np.cumsum(log_returns)])
    return config.start_price * np.exp(cumulative)


def index_history(
    config: MarketConfig,
    minutes: int,
    rng: np.random.Generator,
    *,
    per_minute: int = 1,
    bridge_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """The index over the `minutes` minutes before time 0, ending at the start price:
    prices at ticks −n … 0 with ``n = minutes·per_minute`` (``n + 1`` of them, a minute
    apart at the default ``per_minute`` 1), from `config`'s process without its shocks
    (a warm start's history, :mod:`perpabm.agents.warm`).

    With log returns r₀ … r₍ₙ₋₁₎ (r_k takes the price from tick k − n to tick k − n + 1),
    the price at tick −n + i is ``start_price · exp(−Σ_{k ≥ i} r_k)``: 100 with returns
    (ln 1.1, ln 0.5) gives (100 / 0.55, 100 / 0.5, 100) = (181.8, 200, 100).
    `per_minute` and `bridge_rng` are those of :func:`index_log_returns`.
    """
    returns = index_log_returns(config.replace(shocks=()), minutes, rng,
                                per_minute=per_minute, bridge_rng=bridge_rng)
    after = np.concatenate([np.cumsum(returns[::-1])[::-1], [0.0]])  # Σ of the later returns
    return config.start_price * np.exp(-after)

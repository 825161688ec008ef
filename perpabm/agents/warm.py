"""A warm start: the positions a population holds at step 0, built over the days before
the path on the index's own history, so that entry prices — and profit per contract —
differ across the book as they do on a venue.

The history (:func:`perpabm.market.index_history`, which the model draws) is the index
process run for the warm-up before step 0 (no shocks), from the path's own stream,
ending at the start price. Each account
then lives the warm-up as it lives a path (:func:`warm_positions`): flat, it looks for
an entry each step with the population's probability; it opens at that step's price
on the side its strategy reads there (a momentum trader follows the trend over its
lookback, a contrarian goes against it, a noise trader tosses its coin); it holds for
a time of the population's mean (:func:`holding_times`), unless the index reaches its
take-profit, its stop-loss or its liquidation price first (:func:`first_exit`); then it
is flat again. What is open at step 0 is its warm position, with the entry price of
the step it opened at and the rest of its holding time.

Simplified: the capital an account lived the warm-up with is the capital it starts the
path with (the warm-up's realised P&L is not carried over), and its trades do not move
the history.

Worked example (:func:`first_exits`): prices (100, 102, 104, 99, 97) and a long opened at
step 0 with take-profit 103 and stop-loss 98 held for 10 steps leaves at step 2, the
first step at or above 103; with take-profit 110 it leaves at step 4 (97 ≤ 98); held for
1.5 steps only, at 1.5 (its time runs out first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perpabm import mechanics
from perpabm.compiled import kernel


def holding_times(rng: np.random.Generator, mean: float, tail: float | None,
                  n: int) -> NDArray[np.float64]:
    """`n` holding times of `mean` (steps) from `rng`: exponential, or with a Pareto
    `tail` index a > 1, ``mean·(a − 1)·X`` with X numpy's ``pareto(a)`` (Lomax), whose
    mean is the same and whose tail is heavier the smaller a is (P(T > t) falls as
    t^−a). A mean of 240 with a = 1.5 is 120·X: half the holdings end within 120·(2^(1/1.5)
    − 1) = 70.5 steps, and one in a hundred lasts past 120·(100^(1/1.5) − 1) = 2,465."""
    if tail is None:
        return rng.exponential(mean, n)
    return mean * (tail - 1.0) * rng.pareto(tail, n)


@kernel
def first_exits(prices: NDArray[np.float64], opened: NDArray[np.int64],
                until: NDArray[np.float64], above: NDArray[np.float64],
                below: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each position: the first step after its `opened` step at which `prices` are at
    or above its `above` or at or below its `below`, or its `until` (its holding time's
    end) if that comes first; ∞ if neither comes within `prices` (still open at their
    end)."""
    last = len(prices) - 1
    out = np.empty(len(opened))
    for i in range(len(opened)):
        out[i] = until[i] if until[i] <= last else np.inf
        k = opened[i] + 1
        while k <= last and k < until[i]:
            if prices[k] >= above[i] or prices[k] <= below[i]:
                out[i] = float(k)
                break
            k += 1
    return out


@dataclass(frozen=True)
class WarmPositions:
    """What a population holds at step 0 (the accounts that hold something)."""

    accounts: NDArray[np.int64]
    """Account ids."""
    sizes: NDArray[np.float64]
    """Signed positions, base units."""
    entries: NDArray[np.float64]
    """Entry prices, USD: the history's price at the step each opened."""
    remaining: NDArray[np.float64]
    """Steps of holding time left at step 0."""


def warm_positions(prices: NDArray[np.float64], accounts: NDArray[np.int64],
                   capital: NDArray[np.float64], leverage: NDArray[np.float64],
                   strategy: NDArray[np.int8], rng: np.random.Generator, *,
                   entry_probability: float, mean_holding_steps: float, lookback_steps: int,
                   take_profit: float, stop_loss: float, tiers: mechanics.Tiers,
                   momentum: int, noise: int,
                   holding_tail: float | None = None) -> WarmPositions:
    """Each of `accounts` lives the history `prices` (steps −n … 0) as the module
    docstring says; returns what is open at step 0.

    An account opens capital · leverage of notional at the entry price; its exits are
    its take-profit and stop-loss (fractions of the entry price) and its liquidation
    price under `tiers` with its capital as collateral. The accounts go through their
    cycles together: each cycle draws from `rng`, for every account still in the
    warm-up, the waits for an entry (geometric), then the coins, then the holding times
    (:func:`holding_times`, exponential or with `holding_tail`). `momentum` and `noise`
    are the strategy codes of those traders (the others are contrarians).
    """
    n_steps = len(prices) - 1
    n = len(accounts)
    sizes, entries, remaining = np.zeros(n), np.zeros(n), np.zeros(n)
    if n_steps <= 0 or entry_probability <= 0.0 or n == 0:
        return WarmPositions(accounts[:0], sizes[:0], entries[:0], remaining[:0])
    clock = np.zeros(n, dtype=np.int64)  # each account's step: flat from there on
    live = np.arange(n)
    while len(live):
        waits = rng.geometric(entry_probability, len(live))
        coins = rng.random(len(live))
        holds = holding_times(rng, mean_holding_steps, holding_tail, len(live))
        opened = clock[live] + waits - 1
        entering = opened < n_steps  # the others are flat at step 0
        live, opened = live[entering], opened[entering]
        coins, holds = coins[entering], holds[entering]
        trend = np.sign(prices[opened] - prices[np.maximum(opened - lookback_steps, 0)])
        kind = strategy[live]
        by_coin = (kind == noise) | (trend == 0.0)
        side = np.where(by_coin, np.where(coins < 0.5, 1.0, -1.0),
                        np.where(kind == momentum, trend, -trend))
        entry = prices[opened]
        size = side * capital[live] * leverage[live] / entry
        liquidation = np.asarray(mechanics.liquidation_price_tiered(size, entry,
                                                                    capital[live], tiers))
        long_ = side > 0
        above = np.where(long_, entry * (1.0 + take_profit),
                         np.minimum(entry * (1.0 + stop_loss), liquidation))
        below = np.where(long_, np.maximum(entry * (1.0 - stop_loss), liquidation),
                         entry * (1.0 - take_profit))
        until = opened + holds
        closed = first_exits(prices, opened, until, above, below)
        open_now = np.isinf(closed)
        held = live[open_now]
        sizes[held], entries[held] = size[open_now], entry[open_now]
        remaining[held] = until[open_now] - n_steps
        clock[live[~open_now]] = np.ceil(closed[~open_now]).astype(np.int64)
        live = live[~open_now]
    holding = sizes != 0.0
    return WarmPositions(accounts[holding], sizes[holding], entries[holding],
                         remaining[holding])


def balanced(positions: WarmPositions) -> WarmPositions:
    """`positions` with the side that holds more scaled down to the other's total, so that
    the longs and the shorts are equal and open interest balances; none if either side
    is empty. Longs (10, 30) and a short of −20: the longs become (5, 15)."""
    sizes = positions.sizes
    longs, shorts = sizes[sizes > 0].sum(), -sizes[sizes < 0].sum()
    if longs == 0.0 or shorts == 0.0:
        empty = np.zeros(0)
        return WarmPositions(np.zeros(0, dtype=np.int64), empty, empty, empty)
    scale = np.where(sizes > 0, min(1.0, shorts / longs), min(1.0, longs / shorts))
    return WarmPositions(positions.accounts, sizes * scale, positions.entries,
                         positions.remaining)

"""The floor: one path's per-step vector work as a bare numpy loop, with no agents.

:func:`floor_path` does, every step, what a model step does with arrays, and
nothing else — no Mesa agents, no Python objects per order or per trader, no
order book, no margin checks, no event log:

1. the index: the same pre-drawn log returns (``perpabm.market.index_log_returns``
   of the scenario), one multiplication, the trend over the traders' lookback;
2. traders and funds (the scenario's two populations of leveraged traders, as one
   accounts array, each account with its population's entry rate, holding time,
   take-profit and stop-loss): the exit-trigger scan over the accounts array; the
   sparse random draw of entrants, per population; their positions and the exiting
   ones' closes as array updates;
3. makers: realised volatility over their window, and every maker's ladder —
   prices and quantities of every level on both sides — as one array; best bid
   and ask;
4. the mark (median of fair price, mid and last) and the liquidation scan: the
   changed accounts' liquidation prices recomputed under the venue's margin
   tiers (the root of equity = maintenance margin per tier, the largest for a
   long, the smallest for a short: :func:`liquidation_prices`), then two
   comparisons per account;
5. funding at the venue's interval; the wiped-out scan;
6. the series row: depth within 1% of the mid from the ladder arrays, open
   interest, and the rest, written into a preallocated array.

Timed: wall-clock seconds (time.perf_counter) of :func:`floor_path` with the
scenario's sizes, median of ``floor_repeats`` runs, one core. Reported with the
model's time for the same path size from this run of the suite, and their ratio
(model / floor): how far the model is from this limit.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from bench_model import scenario_path_seconds
from common import Row, Settings, median, scenario_config

N_SERIES = 14  # the model's series columns


def tier_arrays(tiers: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Maintenance-margin rates and cumulative amounts of a tier table ((floor USD, mmr), …):
    MM(notional) = max_k(notional · mmr_k − cum_k)."""
    floors = np.array([t[0] for t in tiers])
    mmr = np.array([t[1] for t in tiers])
    cum = np.concatenate([[0.0], np.cumsum(np.diff(mmr) * floors[1:])])
    return mmr, cum


def liquidation_prices(size: np.ndarray, entry: np.ndarray, collateral: np.ndarray,
                       mmr: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Price where equity = tiered maintenance margin (USD), per account: per tier
    P_k = (S·E − C − cum_k) / (S − |S|·mmr_k), the largest for a long, the smallest for a
    short (NaN where flat)."""
    s = size[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = (s * entry[:, None] - collateral[:, None] - cum) / (s - np.abs(s) * mmr)
    return np.where(size > 0, roots.max(axis=1),
                    np.where(size < 0, roots.min(axis=1), np.nan))


def floor_path(config: Any, seed: int) -> np.ndarray:
    """One path of `config`'s per-step vector work in bare numpy; returns its series."""
    from perpabm.config.market import MINUTES_PER_YEAR
    from perpabm.market import index_log_returns

    market, traders, makers = config.market, config.traders, config.makers
    exchange = config.exchange
    steps, step = config.run.steps, config.run.step_minutes
    rng = np.random.default_rng(seed)
    returns = index_log_returns(market, steps, np.random.default_rng(seed + 1))
    groups = [g for g in (traders, config.funds) if g.count]
    counts = [g.count for g in groups]
    starts = np.cumsum([0, *counts[:-1]])
    n = sum(counts)
    mmr, cum = tier_arrays(exchange.mm_tiers)

    def each(values: list[float]) -> np.ndarray:
        """One value per account, its population's."""
        return np.repeat(np.asarray(values, dtype=float), counts)

    capital = np.concatenate([g.capital_scale * (1.0 + rng.pareto(g.capital_tail, g.count))
                              for g in groups])
    leverage = np.concatenate([
        np.clip(g.leverage_median * np.exp(rng.normal(0.0, g.leverage_sigma, g.count)),
                g.leverage_floor, g.leverage_cap * exchange.max_leverage) for g in groups])
    p_enters = [min(1.0, g.entries_per_day * step / 1440.0) for g in groups]
    holding = each([g.holding_minutes / step for g in groups])
    take_profit = each([g.take_profit for g in groups])
    stop_loss = each([g.stop_loss for g in groups])
    collateral = capital.copy()
    size, entry = np.zeros(n), np.zeros(n)
    exit_step, tp, sl = np.full(n, np.inf), np.full(n, np.nan), np.full(n, np.nan)
    long_lp, short_lp = np.full(n, -np.inf), np.full(n, np.inf)

    index = market.start_price
    history = np.empty(steps + 1)
    history[0] = index
    lookback = max(1, round(traders.lookback_minutes / step))
    window = max(2, round(makers.vol_window_minutes / step))
    arrivals_rate = traders.arrivals_per_day * step / 1440.0
    funding_every = max(1, round(exchange.funding_interval_minutes / step))
    ema_w = 1.0 - math.exp(-step / exchange.mark_ema_minutes)
    offsets = makers.half_spread + np.arange(makers.levels) * makers.level_spacing
    sides = np.array([1.0, -1.0])[None, :, None]
    inventory = np.zeros(makers.count)
    limit = makers.inventory_limit * makers.capital * exchange.max_leverage / index
    series = np.full((steps, N_SERIES), np.nan)
    ema_basis = premium = 0.0
    last = index
    fund = exchange.insurance_fund

    for t in range(steps):
        index *= math.exp(returns[t])
        history[t + 1] = index
        move = index - history[max(0, t + 1 - lookback)]
        trend = int(move > 0) - int(move < 0)

        long_, short = size > 0, size < 0
        hit = (long_ & ((index >= tp) | (index <= sl))) | (short & ((index <= tp) | (index >= sl)))
        due = np.flatnonzero((size != 0) & ((exit_step <= t + 1) | hit))
        collateral[due] += size[due] * (index - entry[due])
        size[due] = 0.0
        exit_step[due] = np.inf

        chosen = np.concatenate([start + rng.choice(count, size=rng.binomial(count, p),
                                                    replace=False)
                                 for start, count, p in zip(starts, counts, p_enters,
                                                            strict=True)])
        chosen = chosen[size[chosen] == 0.0]
        coin = np.where(rng.random(len(chosen)) < 0.5, 1.0, -1.0)
        side = coin if trend == 0 else np.full(len(chosen), float(trend))
        size[chosen] = side * collateral[chosen] * leverage[chosen] / index
        entry[chosen] = index
        exit_step[chosen] = t + 1 + rng.exponential(holding[chosen])
        tp[chosen] = index * (1.0 + side * take_profit[chosen])
        sl[chosen] = index * (1.0 - side * stop_loss[chosen])

        if t + 1 >= window:
            rets = np.diff(np.log(history[t + 1 - window: t + 2]))
            sigma = float(rets.std() * math.sqrt(MINUTES_PER_YEAR / step))
        else:
            sigma = makers.calm_volatility
        stress = 1.0 + makers.withdrawal * max(sigma / makers.calm_volatility - 1.0, 0.0)
        fair = index * (1.0 - makers.inventory_skew * inventory / limit)
        prices = fair[:, None, None] * (1.0 - sides * offsets[None, None, :] * stress)
        quantities = np.full(prices.shape, makers.depth / stress / index)
        bid, ask = float(prices[:, 0, 0].max()), float(prices[:, 1, 0].min())
        mid = 0.5 * (bid + ask)

        ema_basis += ema_w * (mid / index - 1.0 - ema_basis)
        mark = sorted((index * (1.0 + ema_basis), mid, last))[1]
        changed = np.concatenate([due, chosen])
        lp = liquidation_prices(size[changed], entry[changed], collateral[changed], mmr, cum)
        long_lp[changed] = np.where(size[changed] > 0, lp, -np.inf)
        short_lp[changed] = np.where(size[changed] < 0, lp, np.inf)
        near = np.flatnonzero((long_lp > mark * (1 - 1e-9)) | (short_lp < mark * (1 + 1e-9)))
        if len(near):
            collateral[near] = 0.0

        premium += mark / index - 1.0
        if (t + 1) % funding_every == 0:
            rate = max(-exchange.funding_cap, min(exchange.funding_cap, premium / funding_every))
            collateral -= rate * size * mark
            premium = 0.0
        wiped = np.flatnonzero((size == 0.0) & (collateral < 0.05 * capital))
        arrivals = rng.poisson(arrivals_rate)

        bid_depth = quantities[:, 0][prices[:, 0] >= mid * 0.99].sum()
        ask_depth = quantities[:, 1][prices[:, 1] <= mid * 1.01].sum()
        series[t] = (index, mark, last, bid, ask, bid_depth, ask_depth, size[long_].sum(),
                     fund, 0.0, 0.0, 0.0, 0.0, n - len(wiped) + arrivals)
    return series


def time_floor(config: Any, seed: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` runs of :func:`floor_path`."""
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        floor_path(config, seed + k)
        times.append(time.perf_counter() - start)
    return times


def floor(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """The floor's time per path, and the model's time over it, per trader count."""
    model_s = scenario_path_seconds(settings, ctx)
    cases = [(settings.traders, model_s, "default path")]
    for (traders, steps), seconds in ctx.get("scaling_seconds", {}).items():
        if steps == settings.steps and traders != settings.traders:
            cases.append((traders, seconds, "scaling"))
    rows = []
    for traders, model_seconds, source in cases:
        config = scenario_config(settings, traders=traders)
        times = time_floor(config, settings.seed, settings.floor_repeats)
        floor_s = median(times)
        ctx.setdefault("floor_seconds", {})[traders] = floor_s
        label = f"{traders:,} traders, {settings.steps:,} steps"
        rows.append(Row("floor", f"floor, {label}", floor_s, "s/path",
                        "floor_path: the step's vector work in bare numpy, no agents (see "
                        "bench_floor); in-process, one core", len(times),
                        details={"seconds": times, "ms_per_step":
                                 1e3 * floor_s / settings.steps}))
        rows.append(Row("floor", f"model / floor, {label}", model_seconds / floor_s, "ratio",
                        f"the model's s/path (this run's {source} figure) / the floor's"))
        print(f"  .. floor, {label}: {floor_s * 1e3:.1f} ms; model / floor "
              f"{model_seconds / floor_s:.1f}", flush=True)
    return rows

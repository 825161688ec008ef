"""Engine benchmarks: the exchange alone, without agents.

- **update_mark with no liquidation** over 10³…10⁶ accounts: the per-step cost
  of the liquidation scan. Microseconds per call, from ``timeit.repeat``
  (median of the repeats), one core. For comparison, the same scan done the
  direct way — equity and tiered maintenance margin of every account recomputed
  from the ledger with :mod:`perpabm.mechanics` — is timed alongside; the engine
  instead keeps each account's liquidation price and recomputes it only when the
  account changes.
- **place_limit** of resting (post-only) bids while a deep book is built:
  microseconds per call, the makers' per-quote cost.
- **book walk**: one ``update_mark`` that liquidates one long whose order walks
  and fills every one of ``book_orders`` resting bids (all between its
  bankruptcy price and the mark). Milliseconds per call.
- **ADL round**: one ``update_mark`` after a gap through a long's bankruptcy
  price with an empty book and an empty insurance fund, so that its whole
  position goes to ADL (binance preset: queue by PnL% × margin ratio) over
  ``adl_candidates`` short positions; once closing 1% of the short side, once
  all of it. Milliseconds per call.

The book-walk and ADL states are built once through the public API, with the
liquidation-price cache refreshed by a mark update that liquidates no one, and
deep-copied before every timed call (the copy is not timed).
"""

from __future__ import annotations

import copy
import statistics
import timeit
from typing import Any

import numpy as np
from common import Row, Settings, median, repeat_timed


def build_exchange(n_accounts: int, preset: str, seed: int = 0) -> Any:
    """`n_accounts` accounts in matched long/short pairs at 10x or less around price 100."""
    from perpabm import Exchange, ExchangeConfig

    ex = Exchange(ExchangeConfig.preset(preset), mark_price=100.0, capacity=n_accounts)
    rng = np.random.default_rng(seed)
    accounts = [ex.open_account(10_000.0) for _ in range(n_accounts)]
    for long_, short in zip(accounts[::2], accounts[1::2], strict=True):
        ex.fill(long_, short, float(rng.uniform(1.0, 10.0)), 100.0)
    return ex


def time_update_mark(ex: Any, calls: int, repeats: int, seed: int = 1) -> list[float]:
    """Seconds per call of update_mark over `repeats` batches of `calls` small moves."""
    prices = iter(100.0 + np.random.default_rng(seed).normal(0.0, 0.05, calls * (repeats + 1)))
    totals = timeit.repeat(lambda: ex.update_mark(float(next(prices))), number=calls,
                           repeat=repeats)
    assert len(ex.events) == 0, "the benchmark moves must not liquidate anyone"
    return [t / calls for t in totals]


def time_direct_scan(ex: Any, calls: int, repeats: int) -> list[float]:
    """Seconds per call of a full recomputation of equity < maintenance margin."""
    from perpabm import mechanics

    led, tiers = ex.ledger, ex.config.mm_tiers

    def scan() -> np.ndarray:
        mark = ex.mark_price
        equity = led.equity(mark)
        margin = mechanics.maintenance_margin(np.abs(led.view("size")) * mark, tiers)
        return np.flatnonzero((equity < margin) & (led.view("size") != 0.0))

    assert len(scan()) == 0
    return [t / calls for t in timeit.repeat(scan, number=calls, repeat=repeats)]


def update_mark_rows(settings: Settings, preset: str = "binance") -> list[Row]:
    """update_mark with no liquidation, µs per call, against the number of accounts."""
    from perpabm import ExchangeConfig

    tiers = len(ExchangeConfig.preset(preset).mm_tiers)
    rows = []
    for n in settings.engine_accounts:
        ex = build_exchange(n, preset)
        per_call = time_update_mark(ex, settings.engine_calls, settings.engine_repeats)
        direct = statistics.median(time_direct_scan(ex, max(settings.engine_calls // 10, 5),
                                                    settings.engine_repeats))
        value = median(per_call) * 1e6
        rows.append(Row(
            "engine", f"update_mark, {n:,} accounts", value, "µs/call",
            f"update_mark by a small move that liquidates no one ({preset}, {tiers} margin "
            f"tiers); median of {settings.engine_repeats} × {settings.engine_calls} calls",
            settings.engine_repeats,
            details={"accounts": n, "min_us": min(per_call) * 1e6, "max_us": max(per_call) * 1e6,
                     "direct_scan_us": direct * 1e6,
                     "direct_over_engine": direct * 1e6 / value}))
        print(f"  .. update_mark, {n:,} accounts: {value:.1f} µs "
              f"(direct scan {direct * 1e6:.1f} µs)", flush=True)
    return rows


def build_book_walk(orders: int, per_level: int = 10) -> tuple[Any, float, float]:
    """An exchange where one long's liquidation fills each of `orders` resting bids.

    The long holds `orders` units at 100 with 10 USD a unit (bankrupt at 90); a maker
    rests `orders` bids of one unit, `per_level` to a price level, between 90.005 and
    90.085; a mark of 90.09 (0.1% above bankruptcy, below the long's liquidation
    price) liquidates it. Returns (exchange, that mark, seconds per place_limit call).
    """
    from perpabm import Exchange, ExchangeConfig

    ex = Exchange(ExchangeConfig.preset("binance"), mark_price=100.0, capacity=8)
    maker = ex.open_account(1e9)
    long_ = ex.open_account(10.0 * orders)
    short = ex.open_account(1e9)
    ex.fill(long_, short, float(orders), 100.0)
    levels = -(-orders // per_level)
    prices = np.linspace(90.085, 90.005, levels)
    start = timeit.default_timer()
    for k in range(orders):
        ex.place_limit(maker, 1.0, float(prices[k // per_level]), post_only=True)
    per_place = (timeit.default_timer() - start) / orders
    ex.update_mark(100.0)  # refresh the liquidation-price cache; nobody is liquidated
    assert len(ex.events) == 0 and len(ex.book) == orders
    return ex, 90.09, per_place


def build_adl(candidates: int, share: float, seed: int = 0) -> tuple[Any, float]:
    """An exchange where a gap sends one long's whole position to ADL over `candidates` shorts.

    Shorts of 0.5–1.5 units at 100, 2x–20x; a well-funded holder is long against
    them and sells `share` of the long side to the liquidated long (10 USD a unit,
    bankrupt at 90). The book and the insurance fund are empty, so at a mark of
    85 nothing fills and the fund pays nothing: ADL closes the long's position
    against the shorts at its bankruptcy price. Returns (exchange, that mark).
    """
    from perpabm import Exchange, ExchangeConfig

    ex = Exchange(ExchangeConfig.preset("binance"), mark_price=100.0,
                  capacity=candidates + 8)
    rng = np.random.default_rng(seed)
    sizes = rng.uniform(0.5, 1.5, candidates)
    leverage = rng.uniform(2.0, 20.0, candidates)
    holder = ex.open_account(1e12)
    for size, lev in zip(sizes, leverage, strict=True):
        ex.fill(holder, ex.open_account(float(size * 100.0 / lev)), float(size), 100.0)
    quantity = ex.position(holder) * share  # all of it exactly when share is 1
    liquidated = ex.open_account(10.0 * quantity)
    ex.fill(liquidated, holder, quantity, 100.0)
    ex.update_mark(100.0)  # refresh the liquidation-price cache; nobody is liquidated
    assert len(ex.events) == 0 and len(ex.book) == 0 and ex.insurance_fund == 0.0
    return ex, 85.0


def book_walk_rows(settings: Settings) -> list[Row]:
    """place_limit µs per call, and one liquidation walking the whole deep book."""
    orders = settings.book_orders
    prepared, mark, per_place = build_book_walk(orders)
    fills: list[int] = []

    def walk(ex: Any) -> None:
        events = ex.update_mark(mark)
        fills.append(sum(e.kind == "liquidation" for e in events))

    times = repeat_timed(walk, settings.engine_case_repeats, lambda: copy.deepcopy(prepared))
    if set(fills) != {orders}:
        raise RuntimeError(f"the book walk filled {sorted(set(fills))} orders, not {orders}")
    value = median(times) * 1e3
    print(f"  .. book walk of {orders:,} orders: {value:.1f} ms", flush=True)
    return [
        Row("engine", f"place_limit, book of ≤ {orders:,} orders", per_place * 1e6, "µs/call",
            f"place_limit of a resting post-only bid (10 to a level) while {orders:,} are "
            f"placed; total time / orders", 1),
        Row("engine", f"book walk, {orders:,} resting orders", value, "ms/call",
            f"update_mark that liquidates one long through all {orders:,} resting bids "
            f"(binance preset); state deep-copied before each call, copy untimed",
            len(times), details={"seconds": times, "fills": orders,
                                 "us_per_fill": value * 1e3 / orders}),
    ]


def adl_rows(settings: Settings) -> list[Row]:
    """One ADL round over `adl_candidates` opposite positions, 1% and all of them closed."""
    n = settings.adl_candidates
    rows = []
    for share, label in ((0.01, "1% of the side closed"), (1.0, "whole side closed")):
        prepared, mark = build_adl(n, share)
        hits: list[int] = []

        def round_(ex: Any, mark: float = mark, hits: list[int] = hits) -> None:
            events = ex.update_mark(mark)
            hits.append(sum(e.kind == "adl" for e in events))

        times = repeat_timed(round_, settings.engine_case_repeats,
                             lambda prepared=prepared: copy.deepcopy(prepared))
        if min(hits) == 0:
            raise RuntimeError("the ADL benchmark state did not reach ADL")
        value = median(times) * 1e3
        print(f"  .. ADL round over {n:,} candidates, {label}: {value:.1f} ms "
              f"({hits[0]:,} closed)", flush=True)
        rows.append(Row(
            "engine", f"ADL round, {n:,} candidates, {label}", value, "ms/call",
            f"update_mark after a gap with an empty book and fund: one long's position "
            f"ADL'd against {n:,} shorts (binance queue), {hits[0]:,} of them closed; state "
            f"deep-copied before each call, copy untimed", len(times),
            details={"seconds": times, "candidates": n, "closed": hits[0], "share": share}))
    return rows


def engine(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """Every engine figure: the scan, order placement, a book walk and ADL rounds."""
    return [*update_mark_rows(settings), *book_walk_rows(settings), *adl_rows(settings)]

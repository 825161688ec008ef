"""Mark price and funding rate rules (pure functions of the prices the model observes)."""

from __future__ import annotations

import math


def ema_weight(step_minutes: float, ema_minutes: float) -> float:
    """Weight of the newest value in an exponential moving average with time constant
    `ema_minutes`, updated every `step_minutes`: 1 − exp(−step/ema)."""
    return 1.0 - math.exp(-step_minutes / ema_minutes)


def mark_price(
    rule: str,
    index: float,
    ema_basis: float,
    best_bid: float | None,
    best_ask: float | None,
    last_price: float | None,
) -> float:
    """The mark price in USD under `rule`.

    - ``"index"``: the oracle index (dYdX, Drift).
    - ``"index_ema_basis"``: index · (1 + EMA of the relative basis), BitMEX's fair price.
    - ``"median"``: median of that fair price, the book's mid and the last trade
      (Binance's mark; Hyperliquid's uses the same median with CEX mids). Prices
      the book does not have are left out; with none, the fair price is used.

    `ema_basis` is the EMA of (perp mid − index) / index.
    """
    fair = index * (1.0 + ema_basis)
    if rule == "index":
        return index
    if rule == "index_ema_basis":
        return fair
    candidates = [fair]
    if best_bid is not None and best_ask is not None:
        candidates.append(0.5 * (best_bid + best_ask))
    if last_price is not None:
        candidates.append(last_price)
    candidates.sort()
    n = len(candidates)
    return candidates[n // 2] if n % 2 else 0.5 * (candidates[n // 2 - 1] + candidates[n // 2])


def funding_rate(mean_premium: float, cap: float) -> float:
    """Funding rate for one interval: the mean premium (mark − index)/index over the
    interval, clamped to ±`cap` (Binance, Hyperliquid: premium index clamped)."""
    return max(-cap, min(cap, mean_premium))

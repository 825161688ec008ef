"""The engine's initial-margin rule, compiled so that the matching and quoting kernels
apply the very rule the engine's Python methods apply.

An account's risk is the worst position it could reach if all its resting orders on
one side filled: max(|size + buys|, |size − sells|) base units. An action that does not
raise it (a reducing trade, say) is allowed unless it would push equity at the mark
below zero (and below where it was); one that raises it needs equity ≥ the new worst
position's notional / max_leverage (its initial margin, USD).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def worst_position(size: float, buys: float, sells: float, delta: float = 0.0,
                   add_buys: float = 0.0, add_sells: float = 0.0) -> float:
    """|size| (base units) an account holding `size` with resting `buys` / `sells` could
    reach if its orders on one side all filled, after a trade of `delta` and new orders
    of `add_buys` / `add_sells`."""
    size = size + delta
    return max(abs(size + buys + add_buys), abs(size - sells - add_sells))


@njit(cache=True)
def within_margin(before: float, after: float, equity: float, equity_before: float,
                  required: float) -> bool:
    """The rule for an action that takes the worst position from `before` to `after`
    units and equity from `equity_before` to `equity` USD, where `required` is the
    initial margin of `after` (USD)."""
    if after <= before:
        return not (equity < 0.0 and equity < equity_before)
    return not equity < required


@njit(cache=True)
def check(size: float, entry: float, collateral: float, buys: float, sells: float,
          mark: float, max_leverage: float, delta: float, equity_change: float,
          add_buys: float, add_sells: float) -> tuple[bool, float, float, float]:
    """Whether an account (`size` base units at `entry` USD, `collateral` USD, resting
    `buys` / `sells`) keeps initial margin at `mark` after a trade of `delta`, an
    `equity_change` (USD) and new orders of `add_buys` / `add_sells`.

    Returns (allowed, worst position after, equity after, required margin after).
    """
    before = worst_position(size, buys, sells)
    after = worst_position(size, buys, sells, delta, add_buys, add_sells)
    equity_before = collateral + size * (mark - entry)
    equity = equity_before + equity_change
    required = after * mark / max_leverage
    return (within_margin(before, after, equity, equity_before, required), after, equity,
            required)

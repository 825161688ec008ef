"""The engine's initial-margin rule, compiled: the matching and quoting kernels apply the
very rule the engine's Python methods apply, by calling these.

An account's risk is the worst position it could reach if all its resting orders on
one side filled: max(|size + buys|, |size − sells|) base units. An action that does not
raise it (a reducing trade, say) is allowed unless it would push equity at the mark
below zero (and below where it was); one that raises it needs equity ≥ the new worst
position's notional / max_leverage (its initial margin, USD).

Example: 1,000 USD of collateral, flat, a bid for 1 at 100 resting, max leverage 20.
A new bid for 9 at 100 takes the worst position from 1 to 10 units, whose initial
margin at a mark of 100 is 10 · 100 / 20 = 50 USD ≤ 1,000: allowed.
"""

from __future__ import annotations

from perpabm.compiled import kernel
from perpabm.mechanics import equity_at


@kernel
def worst_position(size: float, buys: float, sells: float, delta: float = 0.0,
                   add_buys: float = 0.0, add_sells: float = 0.0) -> float:
    """|size| (base units) an account holding `size` with resting `buys` / `sells` could
    reach if its orders on one side all filled, after a trade of `delta` and new orders
    of `add_buys` / `add_sells`."""
    size = size + delta
    return max(abs(size + buys + add_buys), abs(size - sells - add_sells))


@kernel
def within_margin(before: float, after: float, equity: float, equity_before: float,
                  required: float) -> bool:
    """The rule for an action that takes the worst position from `before` to `after`
    units and equity from `equity_before` to `equity` USD, where `required` is the
    initial margin of `after` (USD)."""
    if after <= before:
        return not (equity < 0.0 and equity < equity_before)
    return not equity < required


@kernel
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
    equity_before = equity_at(collateral, size, entry, mark)
    equity = equity_before + equity_change
    required = after * mark / max_leverage
    return (within_margin(before, after, equity, equity_before, required), after, equity,
            required)


@kernel
def taker_equity_change(sign: float, filled: float, notional: float, mark: float,
                        taker_fee: float, rest: float, rest_price: float) -> float:
    """The change in a taker's equity at `mark` (USD) from buying (`sign` +1) or selling
    (−1) `filled` base units for `notional` USD and paying `taker_fee` on it, with `rest`
    units left resting at `rest_price`: a resting order priced through the mark loses
    that gap the moment it fills, so it counts as if it had.

    Buy 2 for 202 USD at a mark of 100 with a 0.1% fee: 2·100 − 202 − 0.202 = −2.202.
    """
    change = sign * (filled * mark - notional) - taker_fee * notional
    if rest:
        change -= rest * max(0.0, sign * (rest_price - mark))
    return change

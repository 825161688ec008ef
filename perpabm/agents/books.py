"""A position kept beside an exchange account: a strategy's share of an account (the
vault's), or a hedge held on an outside venue (a basis trader's, a hedged maker's)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class StrategyBook:
    """A position (base units) and the cash it has paid and received (USD), so that its P&L
    at a mark is ``cash + position · mark``.

    A fill of signed `quantity` at `price` adds the quantity and pays quantity · price;
    fees, collateral moved in and funding are cash. As a strategy's share of an account
    the book is virtual: the account holds one net position, and books of several
    strategies add up to it. As an outside hedge it is the whole position, marked to the
    index: bought 10 at 100, then sold 4 at 90, it holds 6 with cash −1,000 + 360 = −640,
    a P&L at 90 of −640 + 540 = −100.
    """

    position: float = 0.0
    cash: float = 0.0

    def trade(self, quantity: float, price: float) -> float:
        """A fill of signed `quantity` base units at `price` USD; returns the USD it
        traded, quantity · price (+ bought, − sold)."""
        self.position += quantity
        self.cash -= quantity * price
        return quantity * price

    def pnl(self, mark: float) -> float:
        """P&L at `mark` (USD)."""
        return self.cash + self.position * mark

"""Every account's collateral, position and flags, in arrays indexed by account id."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perpabm import mechanics
from perpabm.exchange.kernels import accounts
from perpabm.exchange.kernels.accounts import LedgerArrays


def position_after_fill(
    size: ArrayLike, entry_price: ArrayLike, quantity: ArrayLike, price: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Position, average entry price and realised P&L after trading `quantity` at `price`,
    for broadcast arrays: :func:`perpabm.exchange.kernels.accounts.position_after_fill`
    (the one rule, which the engine books every fill with) applied element by element.

    `size` and `quantity` are signed in base units (+ buy/long), prices in USD. Long 2
    at 100, sell 3 at 110 → short 1 at 110, realised 20 USD. Returns ``(new_size,
    new_entry_price, realized_pnl)``, each of the broadcast shape.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                   for a in (size, entry_price, quantity, price)))
    shape = arrays[0].shape
    flat = (np.ascontiguousarray(a).ravel() for a in arrays)
    return tuple(a.reshape(shape) for a in accounts.positions_after_fills(*flat))


_ROWS = ("collateral", "size", "entry_price", "long_lp", "short_lp", "is_open", "adl_exempt",
         "changed", "_deficits")  # the bundle's rows, held as views (Ledger._attach)


class Ledger:
    """Collateral, signed size, entry price and flags of every account, in arrays that grow.

    The state is the bundle of :mod:`perpabm.exchange.kernels.accounts` —
    :attr:`arrays`, laid out there — and every change to it goes through that
    module's kernels, called by the methods here and by the matching and quoting
    kernels alike. So the ledger always knows which accounts changed since the last
    scan and can keep each account's liquidation price current: an account is
    liquidatable exactly when the mark is at or past that price (below it for a
    long, above it for a short), because equity − maintenance margin is monotone in
    the mark (see :func:`perpabm.mechanics.liquidation_price_tiered`). A scan with no
    liquidation costs two comparisons per account.

    The rows of the bundle are also attributes (``collateral``, ``size``,
    ``entry_price``, ``is_open``, ``adl_exempt``, ``long_lp``, ``short_lp`` and the
    ``changed`` list), views to read; :meth:`view` gives their live part.
    """

    def __init__(self, mm_tiers: mechanics.Tiers, capacity: int = 1024) -> None:
        self.mm_tiers = mm_tiers
        self.floors, self.mmrs, self.cums = mechanics.tier_table(mm_tiers)
        self.n = 0
        self._attach(accounts.empty(max(int(capacity), 1)))

    def _attach(self, arrays: LedgerArrays) -> None:
        """Hold `arrays` as the state, with each row as a named view."""
        self.arrays = arrays
        values, flags, lists = arrays
        self.collateral = values[accounts.COLLATERAL]
        self.size = values[accounts.SIZE]
        self.entry_price = values[accounts.ENTRY_PRICE]
        self.long_lp = values[accounts.LONG_LP]
        self.short_lp = values[accounts.SHORT_LP]
        self.is_open = flags[accounts.IS_OPEN]
        self.adl_exempt = flags[accounts.ADL_EXEMPT]
        self.changed = lists[accounts.CHANGED]
        self._deficits = lists[accounts.DEFICITS]

    def __getstate__(self) -> dict[str, object]:
        """The state to copy or pickle: the bundle, not its row views (numpy copies a view
        as an array of its own, which the kernels would no longer write)."""
        return {name: value for name, value in vars(self).items() if name not in _ROWS}

    def __setstate__(self, state: dict[str, object]) -> None:
        arrays = state.pop("arrays")
        vars(self).update(state)
        self._attach(arrays)

    @property
    def capacity(self) -> int:
        """Accounts there is room for before the arrays grow."""
        return self.arrays[0].shape[1]

    def open(self, collateral: float, adl_exempt: bool = False) -> int:
        """A new account with `collateral` USD; returns its id."""
        if self.n == self.capacity:
            self._attach(accounts.grown(self.arrays, self.n, 2 * self.capacity))
        acct = self.n
        self.collateral[acct] = collateral
        self.is_open[acct] = True
        self.adl_exempt[acct] = adl_exempt
        self.n += 1
        return acct

    def view(self, name: str) -> NDArray:
        """The live part (first n entries) of one state row (read it; change via methods)."""
        return getattr(self, name)[: self.n]

    def snapshot(self) -> tuple[LedgerArrays, int]:
        """A copy of the state and the number of accounts, for :meth:`restore`."""
        values, flags, lists = self.arrays
        return (values.copy(), flags.copy(), lists.copy()), self.n

    def restore(self, snapshot: tuple[LedgerArrays, int]) -> None:
        """Put every account back as it was at :meth:`snapshot`: into the same arrays
        while they have its capacity (so whoever holds :attr:`arrays` or a row reads the
        restored state)."""
        arrays, self.n = snapshot
        if arrays[0].shape == self.arrays[0].shape:
            for current, saved in zip(self.arrays, arrays, strict=True):
                np.copyto(current, saved)
        else:  # grown since: its arrays were replaced anyway
            self._attach(tuple(saved.copy() for saved in arrays))

    # ------------------------------------------------------------------ changes

    def trade(self, acct: int, quantity: float, price: float, fee: float = 0.0) -> float:
        """Book a fill of signed `quantity` at `price` on one account, then credit it
        `fee` USD (negative: a fee paid); returns realised P&L."""
        return accounts.trade(self.arrays, int(acct), float(quantity), float(price), float(fee))

    def trade_many(self, accts: NDArray[np.int64], quantities: NDArray[np.float64],
                   price: float) -> None:
        """Book fills of signed `quantities` at one `price`, without fees, on distinct
        accounts."""
        accounts.trade_many(self.arrays, accts, quantities, float(price))

    def credit(self, acct: int, amount: float) -> None:
        """Add `amount` USD (negative: debit) to one account's collateral."""
        accounts.credit(self.arrays, int(acct), float(amount))

    def credit_many(self, accts: NDArray[np.int64], amounts: NDArray[np.float64]) -> None:
        """Add `amounts` USD to several distinct accounts' collateral."""
        accounts.credit_many(self.arrays, accts, amounts)

    def credit_all(self, amounts: NDArray[np.float64]) -> None:
        """Add `amounts` (one per account) to every account's collateral (funding: a
        flat account pays and receives nothing, so none is newly left in deficit)."""
        self.collateral[: self.n] += amounts
        self.changed[0] = accounts.EVERY_ACCOUNT

    def close(self, acct: int) -> float:
        """Close a flat account; returns the collateral paid out."""
        paid = float(self.collateral[acct])
        self.collateral[acct] = 0.0
        self.entry_price[acct] = 0.0
        self.is_open[acct] = False
        accounts.note_changed(self.arrays[2], int(acct))
        return paid

    # ------------------------------------------------------------------ deficits

    @property
    def has_deficits(self) -> bool:
        """Whether any account was left flat with negative collateral, to settle."""
        return self._deficits.item(0) != 0  # the list's count

    def deficit_accounts(self) -> list[int]:
        """The accounts left flat with negative collateral, ascending."""
        return accounts.deficit_accounts(self.arrays).tolist()

    def discard_deficit(self, acct: int) -> None:
        """Take `acct` off the accounts to settle."""
        accounts.discard_deficit(self.arrays, int(acct))

    def clear_deficits(self) -> None:
        """Nothing left to settle."""
        accounts.clear_deficits(self.arrays)

    # ------------------------------------------------------------------ margin

    def equity(self, mark_price: float) -> NDArray[np.float64]:
        """Equity of every account at `mark_price` (:func:`mechanics.equity_at`), USD."""
        n = self.n
        return mechanics.equity_at(self.collateral[:n], self.size[:n], self.entry_price[:n],
                                   mark_price)

    def near_liquidation(self, mark_price: float, rtol: float = 1e-9) -> NDArray[np.int64]:
        """Accounts within `rtol` of their liquidation price at `mark_price` (a superset
        of the liquidatable ones, to be confirmed exactly)."""
        return accounts.scan(self.arrays, self.mmrs, self.cums, self.n,
                             mark_price * (1 - rtol), mark_price * (1 + rtol))

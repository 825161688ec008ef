"""Account state as numpy arrays indexed by account id, and position accounting."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from perpabm import mechanics


def position_after_fill(
    size: ArrayLike, entry_price: ArrayLike, quantity: ArrayLike, price: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Position, average entry price and realised P&L after trading `quantity` at `price`.

    Parameters are broadcast arrays: `size` and `quantity` signed in base units
    (+ buy/long), prices in USD. Adding to a position (or opening one) averages
    the entry price; reducing realises ``closed · (price − entry)`` and keeps the
    entry; crossing zero realises the whole old position and opens the rest at
    `price`. A flat position has entry price 0.

    For every mark price P the account's equity ``collateral + size·(P − entry)``
    then changes by exactly ``quantity·(P − price)`` (up to rounding): the trade is
    marked to market and nothing else, which is what keeps money conserved.

    Returns ``(new_size, new_entry_price, realized_pnl)``.
    """
    size, entry, qty, price = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (size, entry_price, quantity, price))
    )
    new_size = size + qty
    adding = (size == 0.0) | (np.sign(size) == np.sign(qty))
    closed = np.where(adding, 0.0, np.sign(size) * np.minimum(np.abs(qty), np.abs(size)))
    realized = closed * (price - entry)
    with np.errstate(invalid="ignore", divide="ignore"):
        averaged = (size * entry + qty * price) / new_size
    flipped = ~adding & (np.abs(qty) > np.abs(size))
    new_entry = np.where(
        new_size == 0.0,
        0.0,
        np.where(size == 0.0, price, np.where(adding, averaged, np.where(flipped, price, entry))),
    )
    return new_size, new_entry, realized


@njit(cache=True)
def position_after_fill_scalar(size: float, entry: float, quantity: float,
                               price: float) -> tuple[float, float, float]:
    """:func:`position_after_fill` for one account in plain floats: the same operations
    in the same order, so the same IEEE results, without numpy's per-call overhead
    (compiled, so that the matching kernels book fills with it too)."""
    new_size = size + quantity
    adding = size == 0.0 or (quantity != 0.0 and (size > 0.0) == (quantity > 0.0))
    if adding:
        realized = 0.0 * (price - entry)
    else:
        closed = min(abs(quantity), abs(size))
        realized = (closed if size > 0.0 else -closed) * (price - entry)
    if new_size == 0.0:
        new_entry = 0.0
    elif size == 0.0:
        new_entry = price
    elif adding:
        new_entry = (size * entry + quantity * price) / new_size
    elif abs(quantity) > abs(size):
        new_entry = price
    else:
        new_entry = entry
    return new_size, new_entry, realized


NOT_AN_ACCOUNT, CLOSED_ACCOUNT = 1, 2  # check_accounts' problems


@njit(cache=True)
def check_accounts(accounts: NDArray[np.int64], is_open: NDArray[np.bool_],
                   n_accounts: int) -> tuple[int, int]:
    """The first of `accounts` that is not an open account, as (problem, its place), or
    (0, −1): :data:`NOT_AN_ACCOUNT` for an id outside 0..`n_accounts` − 1,
    :data:`CLOSED_ACCOUNT` where `is_open` is false."""
    for k in range(len(accounts)):
        if not 0 <= accounts[k] < n_accounts:
            return NOT_AN_ACCOUNT, k
        if not is_open[accounts[k]]:
            return CLOSED_ACCOUNT, k
    return 0, -1


@njit(cache=True)
def mark_changed(changed: NDArray[np.int64], acct: int) -> None:
    """Note that `acct` changed: `changed` holds the count in ``changed[0]`` and the
    accounts after it (an account may be listed twice); a count of −1 means every
    account, which is what a list with no room left turns into."""
    count = changed[0]
    if count < 0:
        return
    if count + 1 < len(changed):
        changed[count + 1] = acct
        changed[0] = count + 1
    else:
        changed[0] = -1


@njit(cache=True)
def _mark_all_changed(changed: NDArray[np.int64], accts: NDArray[np.int64]) -> None:
    """:func:`mark_changed` for each of `accts`."""
    for acct in accts:
        mark_changed(changed, acct)


@njit(cache=True)
def _refresh(acct: int, size: NDArray, entry: NDArray, collateral: NDArray, mmrs: NDArray,
             cums: NDArray, long_lp: NDArray, short_lp: NDArray) -> None:
    """Set `acct`'s liquidation price: a long's in `long_lp`, a short's in `short_lp`
    (−inf / +inf where the account has no such position), each the
    :func:`perpabm.mechanics.liquidation_price_from_table` of the account under the
    tier table (`mmrs`, `cums`): the largest tier root for a long, the smallest for a
    short."""
    s = size[acct]
    lp = mechanics.liquidation_root(s, entry[acct], collateral[acct], mmrs[0], cums[0])
    for tier in range(1, len(mmrs)):
        root = mechanics.liquidation_root(s, entry[acct], collateral[acct], mmrs[tier],
                                          cums[tier])
        lp = max(lp, root) if s > 0 else min(lp, root)
    long_lp[acct] = lp if s > 0 else -np.inf
    short_lp[acct] = lp if s < 0 else np.inf


@njit(cache=True)
def _scan(n: int, changed: NDArray[np.int64], size: NDArray, entry: NDArray,
          collateral: NDArray, mmrs: NDArray, cums: NDArray, long_lp: NDArray,
          short_lp: NDArray, above: float, below: float) -> NDArray[np.int64]:
    """Refresh the liquidation prices of the `changed` accounts (:func:`mark_changed`;
    the first `n` if all) and clear the list, then return the accounts whose long is
    liquidated above `above` or whose short below `below`."""
    if changed[0] < 0:
        for acct in range(n):
            _refresh(acct, size, entry, collateral, mmrs, cums, long_lp, short_lp)
    else:
        for i in range(1, changed[0] + 1):
            _refresh(changed[i], size, entry, collateral, mmrs, cums, long_lp, short_lp)
    changed[0] = 0
    # Counted without branches first (a loop the compiler vectorises): nobody is near
    # at almost every mark.
    hits = 0
    for acct in range(n):
        hits += (long_lp[acct] > above) | (short_lp[acct] < below)
    near = np.empty(hits, dtype=np.int64)
    k = 0
    for acct in range(n if hits else 0):
        if long_lp[acct] > above or short_lp[acct] < below:
            near[k] = acct
            k += 1
    return near


class Ledger:
    """Collateral, signed size, entry price and flags of every account, in growable arrays.

    Every change to an account goes through a method here, so that the ledger
    can keep each account's liquidation price current: an account is
    liquidatable exactly when the mark is at or past that price (below it for a
    long, above it for a short), because equity − maintenance margin is
    monotone in the mark (see :func:`perpabm.mechanics.liquidation_price_tiered`).
    Only accounts that changed since the last scan are recomputed, so a scan
    with no liquidation costs two comparisons per account.
    """

    _ARRAYS = ("collateral", "size", "entry_price", "is_open", "adl_exempt", "long_lp",
               "short_lp")

    def __init__(self, mm_tiers: tuple[tuple[float, float], ...], capacity: int = 1024) -> None:
        self.mm_tiers = mm_tiers
        _, self._mmrs, self._cums = mechanics.tier_table(mm_tiers)
        self.n = 0
        capacity = max(int(capacity), 1)
        self.collateral = np.zeros(capacity)
        self.size = np.zeros(capacity)
        self.entry_price = np.zeros(capacity)
        self.is_open = np.zeros(capacity, dtype=bool)
        self.adl_exempt = np.zeros(capacity, dtype=bool)
        # Liquidation prices: a long is liquidatable below long_lp, a short above
        # short_lp; −inf / +inf where the account has no such position.
        self.long_lp = np.full(capacity, -np.inf)
        self.short_lp = np.full(capacity, np.inf)
        # Accounts changed since the last scan, whose liquidation prices are stale: a
        # count, then the accounts (see mark_changed).
        self.changed = np.zeros(capacity + 1, dtype=np.int64)
        # Flat accounts whose collateral went negative: bankrupt with nothing to liquidate.
        self.flat_deficits: set[int] = set()

    def _grow(self) -> None:
        capacity = 2 * len(self.collateral)
        for name in self._ARRAYS:
            old = getattr(self, name)
            fill = {"long_lp": -np.inf, "short_lp": np.inf}.get(name, 0)
            new = np.full(capacity, fill, dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        changed = np.zeros(capacity + 1, dtype=np.int64)
        changed[: len(self.changed)] = self.changed
        self.changed = changed

    def open(self, collateral: float, adl_exempt: bool = False) -> int:
        """A new account with `collateral` USD; returns its id."""
        if self.n == len(self.collateral):
            self._grow()
        acct = self.n
        self.collateral[acct] = collateral
        self.is_open[acct] = True
        self.adl_exempt[acct] = adl_exempt
        self.n += 1
        return acct

    def view(self, name: str) -> NDArray:
        """The live part (first n entries) of one state array (read it; change via methods)."""
        return getattr(self, name)[: self.n]

    # ------------------------------------------------------------------ changes

    def trade(self, acct: int, quantity: float, price: float, fee: float = 0.0) -> float:
        """Apply a fill of signed `quantity` at `price` to one account, then credit it
        `fee` USD (negative: a fee paid); returns realised P&L."""
        new_size, new_entry, realized = position_after_fill_scalar(
            float(self.size[acct]), float(self.entry_price[acct]), float(quantity), float(price)
        )
        self.size[acct] = new_size
        self.entry_price[acct] = new_entry
        collateral = float(self.collateral[acct]) + realized
        if fee:
            collateral += fee
        self.collateral[acct] = collateral
        self._changed_to(acct, new_size, collateral)
        return realized

    def trade_many(self, accts: NDArray[np.intp], quantities: NDArray, prices: ArrayLike) -> None:
        """Apply fills to several distinct accounts at once."""
        new_size, new_entry, realized = position_after_fill(
            self.size[accts], self.entry_price[accts], quantities, prices
        )
        self.size[accts] = new_size
        self.entry_price[accts] = new_entry
        self.collateral[accts] += realized
        self._touch_many(accts)

    def credit(self, acct: int, amount: float) -> None:
        """Add `amount` USD (negative: debit) to one account's collateral."""
        self.collateral[acct] += amount
        self._touch(acct)

    def credit_many(self, accts: NDArray[np.intp], amounts: ArrayLike) -> None:
        """Add `amounts` USD to several distinct accounts' collateral."""
        self.collateral[accts] += amounts
        self._touch_many(accts)

    def credit_all(self, amounts: NDArray) -> None:
        """Add `amounts` (one per account) to every account's collateral (funding)."""
        self.collateral[: self.n] += amounts
        self.changed[0] = -1

    def close(self, acct: int) -> float:
        """Close a flat account; returns the collateral paid out."""
        paid = float(self.collateral[acct])
        self.collateral[acct] = 0.0
        self.entry_price[acct] = 0.0
        self.is_open[acct] = False
        mark_changed(self.changed, acct)
        return paid

    def _touch(self, acct: int) -> None:
        self._changed_to(acct, self.size[acct], self.collateral[acct])

    def _changed_to(self, acct: int, size: float, collateral: float) -> None:
        """Note that `acct` now holds `size` and `collateral` (flat with a deficit: to settle)."""
        mark_changed(self.changed, acct)
        if size == 0.0 and collateral < 0.0:
            self.flat_deficits.add(int(acct))

    def _touch_many(self, accts: NDArray[np.intp]) -> None:
        _mark_all_changed(self.changed, np.asarray(accts, dtype=np.int64))
        bankrupt = (self.size[accts] == 0.0) & (self.collateral[accts] < 0.0)
        self.flat_deficits.update(accts[bankrupt].tolist())

    # ------------------------------------------------------------------ margin

    def equity(self, mark_price: float) -> NDArray[np.float64]:
        """Equity of every account at `mark_price`: collateral + size·(mark − entry), USD."""
        n = self.n
        return self.collateral[:n] + self.size[:n] * (mark_price - self.entry_price[:n])

    def near_liquidation(self, mark_price: float, rtol: float = 1e-9) -> NDArray[np.intp]:
        """Accounts within `rtol` of their liquidation price at `mark_price` (a superset
        of the liquidatable ones, to be confirmed exactly)."""
        return _scan(self.n, self.changed, self.size, self.entry_price, self.collateral,
                     self._mmrs, self._cums, self.long_lp, self.short_lp,
                     mark_price * (1 - rtol), mark_price * (1 + rtol))

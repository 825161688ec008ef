"""The ledger's state as arrays, and the only code that writes them.

:class:`perpabm.exchange.ledger.Ledger` keeps every account in three arrays — the
*ledger bundle*, passed to kernels as one tuple ``(values, flags, lists)`` as the
book's arrays are — and changes them only through the kernels here, which the
matching and quoting kernels call too: booking a fill, crediting collateral, and
noting which accounts changed (so a mark refreshes only their liquidation prices)
and which were left flat in deficit (so the liquidator settles them).

Layout (``cap`` accounts of room; an account id is a column):

- ``values``, float64 ``(5, cap)``: rows :data:`COLLATERAL` (USD), :data:`SIZE`
  (base units, signed: + long), :data:`ENTRY_PRICE` (USD per unit; 0 when flat),
  :data:`LONG_LP` and :data:`SHORT_LP` (the cached liquidation price of a long, −inf
  where the account holds none, and of a short, +inf where none: a long is
  liquidatable at a mark at or below its price, a short at or above);
- ``flags``, bool ``(3, cap)``: rows :data:`IS_OPEN`, :data:`ADL_EXEMPT` and
  :data:`IN_DEFICIT` (listed in the deficit list);
- ``lists``, int64 ``(2, cap + 1)``: rows :data:`CHANGED` and :data:`DEFICITS`, each a
  count in column 0, then that many account ids. The changed list may hold an account
  twice; a count of −1 means every account (what a full list turns into). The deficit
  list holds each account once: those a fill or a credit left flat with negative
  collateral, to be settled.

Units throughout: money in USD, sizes in base units, prices in USD per base unit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from perpabm import mechanics
from perpabm.compiled import kernel
from perpabm.exchange.kernels.status import Status

COLLATERAL, SIZE, ENTRY_PRICE, LONG_LP, SHORT_LP = 0, 1, 2, 3, 4  # rows of values
IS_OPEN, ADL_EXEMPT, IN_DEFICIT = 0, 1, 2  # rows of flags
CHANGED, DEFICITS = 0, 1  # rows of lists
EVERY_ACCOUNT = -1  # a changed list's count once it has overflowed

type LedgerArrays = tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64]]
"""The ledger bundle ``(values, flags, lists)``."""


def empty(capacity: int) -> LedgerArrays:
    """The bundle of a ledger with no accounts and room for `capacity`."""
    values = np.zeros((5, capacity))
    values[LONG_LP] = -np.inf
    values[SHORT_LP] = np.inf
    return values, np.zeros((3, capacity), dtype=np.bool_), np.zeros((2, capacity + 1),
                                                                     dtype=np.int64)


def grown(ledger: LedgerArrays, n: int, capacity: int) -> LedgerArrays:
    """The bundle with room for `capacity` accounts: the first `n` accounts and both
    lists as they were, the new columns as :func:`empty` has them."""
    values, flags, lists = ledger
    new_values, new_flags, new_lists = empty(capacity)
    new_values[:, :n] = values[:, :n]
    new_flags[:, :n] = flags[:, :n]
    new_lists[:, : lists.shape[1]] = lists
    return new_values, new_flags, new_lists


# ---------------------------------------------------------------------- booking


@kernel
def position_after_fill(size: float, entry: float, quantity: float,
                        price: float) -> tuple[float, float, float]:
    """Position, average entry price and realised P&L after trading signed `quantity`
    at `price`: the one rule for booking a fill.

    Adding to a position (or opening one) averages the entry price; reducing realises
    ``closed · (price − entry)`` and keeps the entry; crossing zero realises the whole
    old position and opens the rest at `price`; a flat position has entry 0. For
    every mark P the equity ``collateral + size·(P − entry)`` then changes by exactly
    ``quantity·(P − price)`` up to rounding — the fill is marked to market and nothing
    else, which is what keeps money conserved.

    Long 2 at 100, sell 3 at 110: realised 2·(110 − 100) = 20 USD, then short 1 at
    110. Returns ``(new_size, new_entry_price, realised_pnl)``.
    """
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


@kernel
def positions_after_fills(size: NDArray[np.float64], entry: NDArray[np.float64],
                          quantity: NDArray[np.float64], price: NDArray[np.float64],
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                     NDArray[np.float64]]:
    """:func:`position_after_fill` of each entry of four flat arrays of one length."""
    n = len(size)
    new_size, new_entry, realized = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        new_size[i], new_entry[i], realized[i] = position_after_fill(
            size[i], entry[i], quantity[i], price[i])
    return new_size, new_entry, realized


@kernel
def book_fill(values: NDArray[np.float64], account: int, quantity: float, price: float,
              fee: float) -> float:
    """Book a fill of signed `quantity` at `price` on `account`, then credit it `fee`
    USD (negative: a fee paid); returns the realised P&L. Notes nothing: callers that
    book several fills note the accounts once all are booked (:func:`note_booked`)."""
    new_size, new_entry, realized = position_after_fill(
        values[SIZE, account], values[ENTRY_PRICE, account], quantity, price)
    values[SIZE, account] = new_size
    values[ENTRY_PRICE, account] = new_entry
    balance = values[COLLATERAL, account] + realized
    if fee:
        balance += fee
    values[COLLATERAL, account] = balance
    return realized


@kernel
def note_changed(lists: NDArray[np.int64], account: int) -> None:
    """List `account` as changed (its liquidation price is stale); a full list turns
    into :data:`EVERY_ACCOUNT`."""
    changed = lists[CHANGED]
    count = changed[0]
    if count < 0:
        return
    if count + 1 < len(changed):
        changed[count + 1] = account
        changed[0] = count + 1
    else:
        changed[0] = EVERY_ACCOUNT


@kernel
def note_booked(ledger: LedgerArrays, account: int) -> None:
    """After `account` was booked or credited: list it as changed, and in the deficit
    list if it is now flat with negative collateral (bankrupt with nothing left to
    liquidate: the liquidator settles it)."""
    values, flags, lists = ledger
    note_changed(lists, account)
    if values[SIZE, account] == 0.0 and values[COLLATERAL, account] < 0.0 and not flags[
            IN_DEFICIT, account]:
        flags[IN_DEFICIT, account] = True
        deficits = lists[DEFICITS]
        deficits[0] += 1
        deficits[deficits[0]] = account


@kernel
def trade(ledger: LedgerArrays, account: int, quantity: float, price: float,
          fee: float) -> float:
    """:func:`book_fill` and :func:`note_booked` for one account; the realised P&L."""
    realized = book_fill(ledger[0], account, quantity, price, fee)
    note_booked(ledger, account)
    return realized


@kernel
def trade_many(ledger: LedgerArrays, accounts: NDArray[np.int64],
               quantities: NDArray[np.float64], price: float) -> None:
    """Fills of signed `quantities` at one `price`, without fees, on distinct
    `accounts` (an ADL round's counterparties)."""
    for k in range(len(accounts)):
        book_fill(ledger[0], accounts[k], quantities[k], price, 0.0)
    for k in range(len(accounts)):
        note_booked(ledger, accounts[k])


@kernel
def credit(ledger: LedgerArrays, account: int, amount: float) -> None:
    """Add `amount` USD (negative: a debit) to `account`'s collateral."""
    ledger[0][COLLATERAL, account] += amount
    note_booked(ledger, account)


@kernel
def credit_many(ledger: LedgerArrays, accounts: NDArray[np.int64],
                amounts: NDArray[np.float64]) -> None:
    """Add `amounts` USD to the collateral of distinct `accounts`."""
    for k in range(len(accounts)):
        ledger[0][COLLATERAL, accounts[k]] += amounts[k]
    for k in range(len(accounts)):
        note_booked(ledger, accounts[k])


@kernel
def discard_deficit(ledger: LedgerArrays, account: int) -> None:
    """Take `account` off the deficit list (it is being settled)."""
    _, flags, lists = ledger
    if not flags[IN_DEFICIT, account]:
        return
    flags[IN_DEFICIT, account] = False
    deficits = lists[DEFICITS]
    count = deficits[0]
    at = 1
    while deficits[at] != account:
        at += 1
    for i in range(at, count):
        deficits[i] = deficits[i + 1]
    deficits[0] = count - 1


@kernel
def deficit_accounts(ledger: LedgerArrays) -> NDArray[np.int64]:
    """The deficit list's accounts in ascending order (a copy)."""
    deficits = ledger[2][DEFICITS]
    return np.sort(deficits[1: deficits[0] + 1])


@kernel
def clear_deficits(ledger: LedgerArrays) -> None:
    """Empty the deficit list."""
    _, flags, lists = ledger
    deficits = lists[DEFICITS]
    for i in range(1, deficits[0] + 1):
        flags[IN_DEFICIT, deficits[i]] = False
    deficits[0] = 0


@kernel
def check_accounts(flags: NDArray[np.bool_], n_accounts: int,
                   accounts: NDArray[np.int64]) -> tuple[Status, int]:
    """The first of `accounts` that is not an open account, as (status, its place):
    :attr:`Status.NOT_AN_ACCOUNT` for an id outside 0 … `n_accounts` − 1,
    :attr:`Status.CLOSED_ACCOUNT` for a closed one; (OK, −1) if all are open."""
    for k in range(len(accounts)):
        if not 0 <= accounts[k] < n_accounts:
            return Status.NOT_AN_ACCOUNT, k
        if not flags[IS_OPEN, accounts[k]]:
            return Status.CLOSED_ACCOUNT, k
    return Status.OK, -1


# ---------------------------------------------------------------------- liquidation prices


@kernel
def refresh(values: NDArray[np.float64], mmrs: NDArray[np.float64], cums: NDArray[np.float64],
            account: int) -> None:
    """Set `account`'s cached liquidation price under the tier table (`mmrs`, `cums`):
    the largest tier root (:func:`perpabm.mechanics.liquidation_root`) for a long, the
    smallest for a short — :func:`perpabm.mechanics.liquidation_price_from_table`."""
    s = values[SIZE, account]
    entry, collateral = values[ENTRY_PRICE, account], values[COLLATERAL, account]
    lp = mechanics.liquidation_root(s, entry, collateral, mmrs[0], cums[0])
    for tier in range(1, len(mmrs)):
        root = mechanics.liquidation_root(s, entry, collateral, mmrs[tier], cums[tier])
        lp = max(lp, root) if s > 0 else min(lp, root)
    values[LONG_LP, account] = lp if s > 0 else -np.inf
    values[SHORT_LP, account] = lp if s < 0 else np.inf


@kernel
def scan(ledger: LedgerArrays, mmrs: NDArray[np.float64], cums: NDArray[np.float64],
         n_accounts: int, above: float, below: float) -> NDArray[np.int64]:
    """Refresh the liquidation prices of the changed accounts (every one of the first
    `n_accounts` if the list overflowed) and empty the list; then return the accounts,
    ascending, whose long is liquidated above `above` or whose short below `below`."""
    values, _, lists = ledger
    changed = lists[CHANGED]
    if changed[0] < 0:
        for account in range(n_accounts):
            refresh(values, mmrs, cums, account)
    else:
        for i in range(1, changed[0] + 1):
            refresh(values, mmrs, cums, changed[i])
    changed[0] = 0
    long_lp, short_lp = values[LONG_LP], values[SHORT_LP]
    # Counted without branches first (a loop the compiler vectorises): nobody is near
    # at almost every mark.
    hits = 0
    for account in range(n_accounts):
        hits += (long_lp[account] > above) | (short_lp[account] < below)
    near = np.empty(hits, dtype=np.int64)
    k = 0
    for account in range(n_accounts if hits else 0):
        if long_lp[account] > above or short_lp[account] < below:
            near[k] = account
            k += 1
    return near

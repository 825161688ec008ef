"""A maker's requote as one compiled kernel: the crossing check, the initial-margin
rule (:mod:`~perpabm.exchange.kernels.margin`, order by order) and the swap of the
whole ladder in the book.

:meth:`perpabm.exchange.Exchange.replace_quotes_of` (and so ``replace_quotes``) calls
:func:`requote_many`, a :func:`requote` for each account in turn. The kernels take the
book and ledger bundles and the venue's ``market`` array, as the matching kernels do.
"""

from __future__ import annotations

import math

import numpy as np

from perpabm.compiled import kernel
from perpabm.exchange.kernels import accounts, exact, margin
from perpabm.exchange.kernels import book as arrays
from perpabm.exchange.kernels.accounts import COLLATERAL, ENTRY_PRICE, SIZE
from perpabm.exchange.kernels.market import MARK
from perpabm.exchange.kernels.status import Status


@kernel
def requote(book: arrays.BookArrays, ledger: accounts.LedgerArrays, market: np.ndarray,
            max_leverage: float, account: int, quantities: np.ndarray,
            prices: np.ndarray) -> np.ndarray:
    """Cancel `account`'s resting orders and post the ladder of `quantities` (base units,
    + buy, − sell) at `prices` (USD, each finite and > 0) as post-only orders, in the
    order given, with ids the book gives in turn.

    An order that would cross the book as it is without `account`'s orders, or whose
    initial margin the account cannot cover at the market's mark with all the orders
    posted before it (:func:`~perpabm.exchange.kernels.margin.check`), is skipped.
    Without a mark yet, each order is checked at its own price until the first posted
    order sets the mark to its price.

    Returns the posted orders' ids, −1 where skipped.
    """
    money, index, meta = book
    values = ledger[0]
    size, entry = values[SIZE, account], values[ENTRY_PRICE, account]
    collateral = values[COLLATERAL, account]
    n = len(quantities)
    ids = np.full(n, -1, dtype=np.int64)
    best_bid, best_ask = arrays.best_excluding(money, index, meta, account)
    if math.isnan(best_bid):
        best_bid = 0.0  # an empty side is one no price crosses
    if math.isnan(best_ask):
        best_ask = math.inf
    posted_ids = np.empty(n, dtype=np.int64)
    sides = np.empty(n, dtype=np.int64)
    posted_prices = np.empty(n)
    posted_quantities = np.empty(n)
    buys = np.empty(exact.MAX_PARTIALS)
    sells = np.empty(exact.MAX_PARTIALS)
    n_buys = n_sells = n_posted = 0
    resting_buys = resting_sells = 0.0  # exact sums of the orders posted so far
    for k in range(n):
        qty, price = quantities[k], prices[k]
        buy = qty > 0.0
        if buy:
            if price >= best_ask:  # would cross: not posted
                continue
        else:
            qty = -qty
            if price <= best_bid:
                continue
        # No mark yet: the order's own price, as place_limit.
        order_mark = price if math.isnan(market[MARK]) else market[MARK]
        gap = price - order_mark if buy else order_mark - price
        # A quote priced through the mark loses that gap the moment it fills.
        equity_change = -(qty * gap) if gap > 0.0 else 0.0
        if not margin.check(size, entry, collateral, resting_buys, resting_sells, order_mark,
                            max_leverage, 0.0, equity_change, qty if buy else 0.0,
                            0.0 if buy else qty)[0]:
            continue
        market[MARK] = order_mark  # the first posted order sets a missing mark
        meta[arrays.LAST_ORDER_ID] += 1
        ids[k] = posted_ids[n_posted] = meta[arrays.LAST_ORDER_ID]
        posted_prices[n_posted] = price
        posted_quantities[n_posted] = qty
        if buy:
            sides[n_posted] = arrays.BUY_SIDE
            n_buys = exact.add(buys, n_buys, qty)
            resting_buys = exact.rounded(buys, n_buys)
            best_bid = max(best_bid, price)
        else:
            sides[n_posted] = arrays.SELL_SIDE
            n_sells = exact.add(sells, n_sells, qty)
            resting_sells = exact.rounded(sells, n_sells)
            best_ask = min(best_ask, price)
        n_posted += 1
    arrays.replace_account(money, index, meta, account, posted_ids[:n_posted], sides[:n_posted],
                           posted_prices[:n_posted], posted_quantities[:n_posted])
    return ids


@kernel
def requote_many(book: arrays.BookArrays, ledger: accounts.LedgerArrays, market: np.ndarray,
                 max_leverage: float, n_accounts: int, accounts_: np.ndarray,
                 counts: np.ndarray, quantities: np.ndarray,
                 prices: np.ndarray) -> tuple[int, int, np.ndarray]:
    """:func:`requote` for each of `accounts_` in turn, its ladder the next `counts` of
    `quantities` and `prices`.

    Everything is checked before anything changes. Returns (status value, account
    number, ids): status OK, or an account that is not open
    (:func:`~perpabm.exchange.kernels.accounts.check_accounts`),
    :attr:`~Status.BAD_COUNTS` (a negative count, or counts that do not add up to the
    orders given), :attr:`~Status.BAD_QUANTITY` (a quantity not finite and non-zero) or
    :attr:`~Status.BAD_PRICE` (a price not finite and > 0); then the ids of all the
    orders in turn, −1 where skipped.
    """
    n = len(quantities)
    ids = np.full(n, -1, dtype=np.int64)
    status, j = accounts.check_accounts(ledger[1], n_accounts, accounts_)
    if status != Status.OK:
        return status.value, j, ids
    total = 0
    for j in range(len(accounts_)):
        if counts[j] < 0:
            return Status.BAD_COUNTS.value, j, ids
        total += counts[j]
    if total != n or len(prices) != n or len(counts) != len(accounts_):
        return Status.BAD_COUNTS.value, -1, ids
    for k in range(n):
        if not (math.isfinite(quantities[k]) and quantities[k] != 0.0):
            return Status.BAD_QUANTITY.value, -1, ids
        if not (math.isfinite(prices[k]) and prices[k] > 0.0):
            return Status.BAD_PRICE.value, -1, ids
    start = 0
    for j in range(len(accounts_)):
        end = start + counts[j]
        ids[start:end] = requote(book, ledger, market, max_leverage, accounts_[j],
                                 quantities[start:end], prices[start:end])
        start = end
    return Status.OK.value, -1, ids

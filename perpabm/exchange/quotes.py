"""A maker's requote as one compiled kernel: the crossing check, the initial-margin
rule (:mod:`perpabm.exchange.margin`) and the swap of the whole ladder in the book.

:meth:`perpabm.exchange.Exchange.replace_quotes_of` (and so ``replace_quotes``) calls
:func:`requote_many`, a :func:`requote` for each account in turn.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perpabm.exchange import book_arrays as arrays
from perpabm.exchange import exact
from perpabm.exchange.ledger import check_accounts
from perpabm.exchange.margin import within_margin

BAD_QUANTITY, BAD_PRICE, BAD_COUNTS = 3, 4, 5  # after the ledger's account problems 1, 2


@njit(cache=True)
def requote(money: np.ndarray, index: np.ndarray, meta: np.ndarray, account: int,
            quantities: np.ndarray, prices: np.ndarray, sizes: np.ndarray,
            entries: np.ndarray, collaterals: np.ndarray, mark: float, max_leverage: float,
            last_order_id: int) -> tuple[int, np.ndarray, float, int]:
    """Cancel `account`'s resting orders and post the ladder of `quantities` (base units,
    + buy, − sell) at `prices` (USD) as post-only orders, in the order given.

    An order that would cross the book as it is without `account`'s orders, or whose
    initial margin the account (its entry of the ledger's `sizes`, `entries` (USD) and
    `collaterals` (USD), indexed by account) cannot cover at
    the `mark` with all the orders posted before it, is skipped. A NaN `mark` (none yet)
    is each order's own price until the first posted order sets it.

    Returns (problem, ids, mark, last order id): problem is 0, or :data:`BAD_QUANTITY` /
    :data:`BAD_PRICE` when a quantity is not finite and non-zero or a price not finite
    and > 0 (nothing is changed then); ids are the posted orders' ids, −1 where skipped.
    """
    size, entry, collateral = sizes[account], entries[account], collaterals[account]
    n = len(quantities)
    ids = np.full(n, -1, dtype=np.int64)
    for k in range(n):
        if not (math.isfinite(quantities[k]) and quantities[k] != 0.0):
            return BAD_QUANTITY, ids, mark, last_order_id
    for k in range(n):
        if not (math.isfinite(prices[k]) and prices[k] > 0.0):
            return BAD_PRICE, ids, mark, last_order_id
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
    # |size| if all posted buys (sells) filled: the two sides of the worst position.
    long_reach = short_reach = abs(size)
    resting_buys = resting_sells = 0.0  # exact sums of the orders posted so far
    equity_before = math.nan if math.isnan(mark) else collateral + size * (mark - entry)
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
        if math.isnan(mark):  # no mark yet: the order's own price, as place_limit
            order_mark = price
            equity_before = collateral + size * (order_mark - entry)
        else:
            order_mark = mark
        before = max(long_reach, short_reach)
        if buy:
            reach = abs(size + resting_buys + qty)
            after = max(reach, short_reach)
            gap = price - order_mark
        else:
            reach = abs(size - resting_sells - qty)
            after = max(long_reach, reach)
            gap = order_mark - price
        equity = equity_before - qty * gap if gap > 0.0 else equity_before
        if not within_margin(before, after, equity, equity_before,
                             after * order_mark / max_leverage):
            continue
        mark = order_mark  # the first posted order sets a missing mark, as place_limit
        last_order_id += 1
        ids[k] = posted_ids[n_posted] = last_order_id
        posted_prices[n_posted] = price
        posted_quantities[n_posted] = qty
        if buy:
            sides[n_posted] = arrays.BUY_SIDE
            n_buys = exact.add(buys, n_buys, qty)
            resting_buys = exact.rounded(buys, n_buys)
            long_reach = abs(size + resting_buys)
            best_bid = max(best_bid, price)
        else:
            sides[n_posted] = arrays.SELL_SIDE
            n_sells = exact.add(sells, n_sells, qty)
            resting_sells = exact.rounded(sells, n_sells)
            short_reach = abs(size - resting_sells)
            best_ask = min(best_ask, price)
        n_posted += 1
    arrays.replace_account(money, index, meta, account, posted_ids[:n_posted], sides[:n_posted],
                           posted_prices[:n_posted], posted_quantities[:n_posted])
    return 0, ids, mark, last_order_id


@njit(cache=True)
def requote_many(money: np.ndarray, index: np.ndarray, meta: np.ndarray, accounts: np.ndarray,
                 counts: np.ndarray, quantities: np.ndarray, prices: np.ndarray,
                 sizes: np.ndarray, entries: np.ndarray, collaterals: np.ndarray,
                 is_open: np.ndarray, mark: float, max_leverage: float,
                 last_order_id: int) -> tuple[int, int, np.ndarray, float, int]:
    """:func:`requote` for each of `accounts` in turn, its ladder the next `counts` of
    `quantities` and `prices`; the ledger as there, with its `is_open`.

    Everything is checked before anything changes. Returns (problem, account number,
    ids, mark, last order id): problem 0, or an account that is not open
    (:func:`~perpabm.exchange.ledger.check_accounts`), :data:`BAD_COUNTS` (a negative
    count, or counts that do not add up to the orders given) or :data:`BAD_QUANTITY` /
    :data:`BAD_PRICE` as :func:`requote`; ids of all the orders in turn, −1 where
    skipped.
    """
    n = len(quantities)
    ids = np.full(n, -1, dtype=np.int64)
    problem, j = check_accounts(accounts, is_open, len(is_open))
    if problem:
        return problem, j, ids, mark, last_order_id
    total = 0
    for j in range(len(accounts)):
        if counts[j] < 0:
            return BAD_COUNTS, j, ids, mark, last_order_id
        total += counts[j]
    if total != n or len(prices) != n or len(counts) != len(accounts):
        return BAD_COUNTS, -1, ids, mark, last_order_id
    for k in range(n):
        if not (math.isfinite(quantities[k]) and quantities[k] != 0.0):
            return BAD_QUANTITY, -1, ids, mark, last_order_id
        if not (math.isfinite(prices[k]) and prices[k] > 0.0):
            return BAD_PRICE, -1, ids, mark, last_order_id
    start = 0
    for j in range(len(accounts)):
        end = start + counts[j]
        posted, mark, last_order_id = requote(
            money, index, meta, accounts[j], quantities[start:end], prices[start:end], sizes,
            entries, collaterals, mark, max_leverage, last_order_id)[1:]
        ids[start:end] = posted
        start = end
    return 0, -1, ids, mark, last_order_id

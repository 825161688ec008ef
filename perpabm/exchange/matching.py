"""Matching a taker against the book, compiled: the walk that skips makers who can no
longer pay for their fills, the booking of every fill and fee in the ledger, and a
whole market order in one call.

The engine's ``_plan`` and ``_execute`` (which limit orders and the liquidation
waterfall use) are :func:`plan` and :func:`execute`; :meth:`Exchange.market_order`
is :func:`market_order`, which does the same steps with the margin rule of
:mod:`perpabm.exchange.margin` in between. The ledger is passed as its three arrays
``size`` (base units, signed), ``entry`` (USD) and ``collateral`` (USD), indexed by
account; the book as :mod:`perpabm.exchange.book_arrays` lays it out.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from perpabm.exchange import book_arrays as arrays
from perpabm.exchange import exact, margin
from perpabm.exchange.ledger import check_accounts, mark_changed, position_after_fill_scalar

FILLED, NO_FILLS, BELOW_MARGIN = 0, 1, 2
BAD_QUANTITY, BAD_LIMIT_PRICE = 3, 4  # check_orders' problems, after the ledger's 1 and 2


@njit(cache=True)
def plan(money: np.ndarray, index: np.ndarray, meta: np.ndarray, size: np.ndarray,
         entry: np.ndarray, collateral: np.ndarray, taker_side: int, quantity: float,
         limit_price: float, exclude_account: int, mark: float,
         maker_fee: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The book's walk for a taker (:func:`book_arrays.plan_market`), skipping orders
    whose makers could not pay for their fills: a fill that would leave its maker below
    zero equity at the `mark` (NaN: none yet, the fill's own price) — a bid left above
    a falling mark, say. Venues cancel such orders; :func:`execute`'s callers do.

    Returns (slots, fill quantities, ids of the skipped orders). Nothing changes.
    """
    sign = 1.0 if taker_side == arrays.BUY_SIDE else -1.0
    stale = np.empty(meta[arrays.N_BUY + 1 - taker_side], dtype=np.int64)
    n_stale = 0
    while True:
        slots, taken = arrays.plan_market(money, index, meta, taker_side, quantity,
                                          limit_price, exclude_account, stale[:n_stale])
        n = len(slots)
        makers = index[arrays.ACCOUNT][slots]
        # Each fill's maker's equity change over its fills so far, USD, summed in fill
        # order (a stable sort keeps that order within a maker).
        change = np.empty(n)
        by_maker = np.argsort(makers, kind="mergesort")
        for i in range(n):
            k = by_maker[i]
            price = money[arrays.PRICE, slots[k]]
            fill_mark = price if math.isnan(mark) else mark
            same_maker = i > 0 and makers[by_maker[i - 1]] == makers[k]
            before = change[by_maker[i - 1]] if same_maker else 0.0
            # The maker trades −sign·quantity at the fill's price.
            change[k] = before + (-sign * taken[k] * (fill_mark - price)
                                  - maker_fee * taken[k] * price)
        paying = True
        for k in range(n):
            maker, price = makers[k], money[arrays.PRICE, slots[k]]
            fill_mark = price if math.isnan(mark) else mark
            equity = collateral[maker] + size[maker] * (fill_mark - entry[maker])
            if change[k] < 0.0 and equity + change[k] < 0.0:
                stale[n_stale] = index[arrays.ORDER_ID, slots[k]]
                n_stale += 1
                paying = False
                break
        if paying:
            return slots, taken, stale[:n_stale]


@njit(cache=True)
def _book_fill(size: np.ndarray, entry: np.ndarray, collateral: np.ndarray, account: int,
               quantity: float, price: float, fee: float) -> None:
    """``Ledger.trade``: a fill of signed `quantity` at `price`, then `fee` USD credited."""
    new_size, new_entry, realized = position_after_fill_scalar(
        size[account], entry[account], quantity, price)
    size[account] = new_size
    entry[account] = new_entry
    balance = collateral[account] + realized
    if fee:
        balance += fee
    collateral[account] = balance


@njit(cache=True)
def _exact_sums(quantities: np.ndarray, prices: np.ndarray) -> tuple[float, float]:
    """(Σ quantity, Σ quantity × price), each the correctly rounded exact sum."""
    partials = np.empty(exact.MAX_PARTIALS)
    n = 0
    for k in range(len(quantities)):
        n = exact.add(partials, n, quantities[k])
    filled = exact.rounded(partials, n)
    n = 0
    for k in range(len(quantities)):
        n = exact.add(partials, n, quantities[k] * prices[k])
    return filled, exact.rounded(partials, n)


@njit(cache=True)
def execute(money: np.ndarray, index: np.ndarray, meta: np.ndarray, size: np.ndarray,
            entry: np.ndarray, collateral: np.ndarray, changed: np.ndarray, account: int,
            sign: float, order_ids: np.ndarray, makers: np.ndarray, prices: np.ndarray,
            quantities: np.ndarray, taker_fee: float, maker_fee: float,
            dust: float) -> tuple[int, int, float, bool]:
    """Carry out fills (order id, maker, price USD, quantity): the book's orders shrink
    (:func:`book_arrays.apply`, which checks the plan first), each maker trades
    −sign·quantity at its price and pays `maker_fee` on the notional, and taker
    `account` trades sign·(Σ quantity) at the average price and pays `taker_fee`.

    The taker's side is one trade at the average price (the same mark-to-market as
    fill by fill); a total within rounding of the taker's whole position closes it
    exactly, so no dust is left. The accounts booked are listed in the ledger's
    `changed` (:func:`perpabm.exchange.ledger.mark_changed`).

    Returns (problem, fill number, notional USD, deficit): the problem and fill of
    :func:`book_arrays.apply` (nothing booked then), or (0, 0, Σ quantity × price,
    whether an account booked is now flat with negative collateral).
    """
    problem, k = arrays.apply(money, index, meta, order_ids, makers, prices, quantities, dust)
    if problem:
        return problem, k, 0.0, False
    filled, notional = _exact_sums(quantities, prices)
    for k in range(len(quantities)):
        _book_fill(size, entry, collateral, makers[k], -sign * quantities[k], prices[k],
                   -maker_fee * quantities[k] * prices[k])
    held = size[account]
    closes_all = held * sign < 0 and abs(filled - abs(held)) <= 1e-12 * abs(held)
    _book_fill(size, entry, collateral, account, -held if closes_all else sign * filled,
               notional / filled, -taker_fee * notional)
    deficit = False
    for k in range(len(makers) + 1):
        booked = makers[k] if k < len(makers) else account
        mark_changed(changed, booked)
        deficit |= size[booked] == 0.0 and collateral[booked] < 0.0
    return 0, 0, notional, deficit


@njit(cache=True)
def market_order(money: np.ndarray, index: np.ndarray, meta: np.ndarray, size: np.ndarray,
                 entry: np.ndarray, collateral: np.ndarray, changed: np.ndarray,
                 account: int, taker_side: int,
                 quantity: float, limit_price: float, mark: float, taker_fee: float,
                 maker_fee: float, max_leverage: float, dust: float):
    """Buy (`taker_side` BUY_SIDE) or sell `quantity` base units for `account` against the
    book, up to `limit_price` (USD; NaN for none), skipping its own orders: :func:`plan`,
    then the taker's initial margin at the `mark` (NaN: none yet, the first fill's price)
    with all its resting orders filled, then the skipped orders cancelled and
    :func:`execute`.

    Returns (outcome, ids, fills, notional, deficit): outcome is :data:`FILLED`,
    :data:`NO_FILLS` or :data:`BELOW_MARGIN` (nothing changed: the caller raises the
    engine's MarginError); the fills' order ids and makers (rows of `ids`) and prices
    and quantities (rows of `fills`); notional USD and deficit as :func:`execute` (0 and
    False unless filled).
    """
    slots, taken, stale = plan(money, index, meta, size, entry, collateral, taker_side,
                               quantity, limit_price, account, mark, maker_fee)
    # Two arrays back to Python rather than four: returning an array costs more than
    # filling it.
    ids = np.empty((2, len(slots)), dtype=np.int64)
    fills = np.empty((2, len(slots)))
    for k in range(len(slots)):
        ids[0, k] = index[arrays.ORDER_ID, slots[k]]
        ids[1, k] = index[arrays.ACCOUNT, slots[k]]
        fills[0, k] = money[arrays.PRICE, slots[k]]
        fills[1, k] = taken[k]
    order_ids, makers, prices = ids[0], ids[1], fills[0]
    if len(slots) == 0:
        return NO_FILLS, ids, fills, 0.0, False
    if math.isnan(mark):
        mark = prices[0]
    sign = 1.0 if taker_side == arrays.BUY_SIDE else -1.0
    filled, notional = _exact_sums(taken, prices)
    buys, sells = arrays.open_quantity(money, index, meta, account)
    allowed = margin.check(size[account], entry[account], collateral[account], buys, sells,
                           mark, max_leverage, sign * filled,
                           sign * (filled * mark - notional) - taker_fee * notional,
                           0.0, 0.0)[0]
    if not allowed:
        return BELOW_MARGIN, ids, fills, 0.0, False
    for order_id in stale:
        arrays.remove(money, index, meta, arrays.find(index, meta, order_id))
    deficit = execute(money, index, meta, size, entry, collateral, changed, account, sign,
                      order_ids, makers, prices, taken, taker_fee, maker_fee, dust)[3]
    return FILLED, ids, fills, notional, deficit


@njit(cache=True)
def check_orders(accounts: np.ndarray, quantities: np.ndarray, limit_prices: np.ndarray,
                 is_open: np.ndarray, n_accounts: int) -> tuple[int, int]:
    """The first problem with a batch of orders, as (problem, order number), or (0, −1):
    an account that is not open (:func:`~perpabm.exchange.ledger.check_accounts`), else
    :data:`BAD_QUANTITY` (not finite and non-zero) or :data:`BAD_LIMIT_PRICE` (not
    finite and > 0)."""
    problem, k = check_accounts(accounts, is_open, n_accounts)
    if problem:
        return problem, k
    for k in range(len(accounts)):
        if not (math.isfinite(quantities[k]) and quantities[k] != 0.0):
            return BAD_QUANTITY, k
        if not (math.isfinite(limit_prices[k]) and limit_prices[k] > 0.0):
            return BAD_LIMIT_PRICE, k
    return 0, -1


@njit(cache=True)
def market_orders(money: np.ndarray, index: np.ndarray, meta: np.ndarray, size: np.ndarray,
                  entry: np.ndarray, collateral: np.ndarray, changed: np.ndarray,
                  is_open: np.ndarray, n_accounts: int, accounts: np.ndarray,
                  quantities: np.ndarray, limit_prices: np.ndarray, mark: float,
                  fees_collected: float, taker_fee: float, maker_fee: float,
                  max_leverage: float, dust: float):
    """:func:`market_order` for each of `accounts` in turn: buy (quantity > 0) or sell
    signed `quantities` (base units) up to `limit_prices` (USD). An order the taker's
    initial margin cannot cover is skipped, nothing of it booked. The batch is checked
    first (:func:`check_orders`, with the ledger's `is_open` and `n_accounts`): if an
    order cannot be placed, none is.

    `mark` is NaN until there is one (the first fill's price sets it then), and
    `fees_collected` (USD) gains (`taker_fee` + `maker_fee`) × notional order by order,
    as the engine adds them.

    Returns (problem, order, filled, deficits, mark, fees collected, last price): the
    problem and order of :func:`check_orders` ((0, −1) if none); the signed quantity
    each order filled (0 where nothing did or it was skipped); the accounts an order
    left flat with negative collateral (to settle); the mark; the fees; the last
    fill's price (NaN if none).
    """
    n = len(accounts)
    filled = np.zeros(n)
    deficits = np.empty(0, dtype=np.int64)
    last_price = math.nan
    problem, order = check_orders(accounts, quantities, limit_prices, is_open, n_accounts)
    if problem:
        return problem, order, filled, deficits, mark, fees_collected, last_price
    for k in range(n):
        quantity = quantities[k]
        taker_side = arrays.BUY_SIDE if quantity > 0.0 else arrays.SELL_SIDE
        best = arrays.best(money, index, meta, 1 - taker_side)
        if math.isnan(best) or (best > limit_prices[k] if quantity > 0.0
                                else best < limit_prices[k]):
            continue  # nothing within reach: the usual fate of a crowd of takers
        outcome, ids, fills, notional, deficit = market_order(
            money, index, meta, size, entry, collateral, changed, accounts[k], taker_side,
            abs(quantity),
            limit_prices[k], mark, taker_fee, maker_fee, max_leverage, dust)
        if outcome != FILLED:
            continue
        if math.isnan(mark):
            mark = fills[0, 0]
        fees_collected += (taker_fee + maker_fee) * notional
        last_price = fills[0, -1]
        total = _exact_sums(fills[1], fills[0])[0]
        filled[k] = total if quantity > 0.0 else -total
        if deficit:  # rare: listed as the engine lists them, account by account
            booked = np.append(ids[1], accounts[k])
            flat = (size[booked] == 0.0) & (collateral[booked] < 0.0)
            deficits = np.append(deficits, booked[flat])
    return 0, -1, filled, deficits, mark, fees_collected, last_price

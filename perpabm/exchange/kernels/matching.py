"""Matching a taker against the book, compiled: the walk that skips makers who can no
longer pay for their fills, the booking of every fill and fee in the ledger, and a
whole market order — or a batch of them — in one call.

The clearing core's ``plan`` and ``execute`` (which limit orders and the liquidation
waterfall use) are :func:`plan` and :func:`execute`; :meth:`Exchange.market_order` is
:func:`market_order`, which does the same steps with the margin rule of
:mod:`~perpabm.exchange.kernels.margin` in between. The kernels take the book bundle
(:mod:`~perpabm.exchange.kernels.book`), the ledger bundle
(:mod:`~perpabm.exchange.kernels.accounts`, whose kernels book every fill) and the
venue's ``market`` array and ``terms`` (:mod:`~perpabm.exchange.kernels.market`).
"""

from __future__ import annotations

import math

import numpy as np

from perpabm.compiled import kernel
from perpabm.exchange.kernels import accounts, exact, margin
from perpabm.exchange.kernels import book as arrays
from perpabm.exchange.kernels.accounts import COLLATERAL, ENTRY_PRICE, SIZE
from perpabm.exchange.kernels.market import FEES, LAST_PRICE, MARK
from perpabm.exchange.kernels.status import Status
from perpabm.mechanics import REL_ROUNDING, equity_at


@kernel
def plan(book: arrays.BookArrays, ledger: accounts.LedgerArrays, taker_side: int,
         quantity: float, limit_price: float, exclude_account: int, mark: float,
         maker_fee: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The book's walk for a taker (:func:`~perpabm.exchange.kernels.book.plan_market`),
    skipping orders whose makers could not pay for their fills: a fill that would leave
    its maker below zero equity at the `mark` (NaN: none yet, the fill's own price) — a
    bid left above a falling mark, say. Venues cancel such orders; :func:`execute`'s
    callers do.

    Returns (slots, fill quantities, ids of the skipped orders). Nothing changes.
    """
    money, index, meta = book
    values = ledger[0]
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
            equity = equity_at(values[COLLATERAL, maker], values[SIZE, maker],
                               values[ENTRY_PRICE, maker], fill_mark)
            if change[k] < 0.0 and equity + change[k] < 0.0:
                stale[n_stale] = index[arrays.ORDER_ID, slots[k]]
                n_stale += 1
                paying = False
                break
        if paying:
            return slots, taken, stale[:n_stale]


@kernel
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


@kernel
def execute(book: arrays.BookArrays, ledger: accounts.LedgerArrays, market: np.ndarray,
            account: int, sign: float, order_ids: np.ndarray, makers: np.ndarray,
            prices: np.ndarray, quantities: np.ndarray, taker_fee: float,
            maker_fee: float) -> tuple[int, int, float]:
    """Carry out fills (order id, maker, price USD, quantity): the book's orders shrink
    (:func:`~perpabm.exchange.kernels.book.apply`, which checks the plan first), each maker trades
    −sign·quantity at its price and pays `maker_fee` on the notional, and taker
    `account` trades sign·(Σ quantity) at the average price and pays `taker_fee`; the
    `market`'s fees and last price follow.

    The taker's side is one trade at the average price (the same mark-to-market as
    fill by fill); a total within rounding (:data:`~perpabm.mechanics.REL_ROUNDING`)
    of the taker's whole position closes it exactly, so no dust is left. Every account
    booked is noted in the ledger (:func:`~perpabm.exchange.kernels.accounts.note_booked`).

    Returns (status value, fill number, notional USD): the status and fill of
    :func:`~perpabm.exchange.kernels.book.apply` (nothing booked then), or
    (OK, 0, Σ quantity × price).
    """
    status, k = arrays.apply(*book, order_ids, makers, prices, quantities, REL_ROUNDING)
    if status != Status.OK:
        return status.value, k, 0.0
    values = ledger[0]
    filled, notional = _exact_sums(quantities, prices)
    for k in range(len(quantities)):
        accounts.book_fill(values, makers[k], -sign * quantities[k], prices[k],
                           -maker_fee * quantities[k] * prices[k])
    held = values[SIZE, account]
    closes_all = held * sign < 0 and abs(filled - abs(held)) <= REL_ROUNDING * abs(held)
    accounts.book_fill(values, account, -held if closes_all else sign * filled,
                       notional / filled, -taker_fee * notional)
    for k in range(len(makers)):
        accounts.note_booked(ledger, makers[k])
    accounts.note_booked(ledger, account)
    market[FEES] += (taker_fee + maker_fee) * notional
    market[LAST_PRICE] = prices[-1]
    return Status.OK.value, 0, notional


@kernel
def market_order(book: arrays.BookArrays, ledger: accounts.LedgerArrays, market: np.ndarray,
                 terms: tuple[float, float, float], account: int, taker_side: int,
                 quantity: float, limit_price: float):
    """Buy (`taker_side` BUY_SIDE) or sell `quantity` base units for `account` against the
    book, up to `limit_price` (USD; NaN for none), skipping its own orders: :func:`plan`,
    then the taker's initial margin at the market's mark (none yet: the first fill's
    price, which then becomes the mark) with all its resting orders filled, then the
    skipped orders cancelled and :func:`execute`.

    Returns (status value, ids, fills, notional): status OK, :attr:`~Status.NO_FILLS` or
    :attr:`~Status.BELOW_MARGIN` (nothing changed: the caller raises the engine's
    MarginError); the fills' order ids and makers (rows of `ids`) and prices and
    quantities (rows of `fills`); the notional filled, USD (0 unless OK).
    """
    taker_fee, maker_fee, max_leverage = terms
    money, index, meta = book
    values = ledger[0]
    mark = market[MARK]
    slots, taken, stale = plan(book, ledger, taker_side, quantity, limit_price, account,
                               mark, maker_fee)
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
        return Status.NO_FILLS.value, ids, fills, 0.0
    if math.isnan(mark):
        mark = prices[0]
    sign = 1.0 if taker_side == arrays.BUY_SIDE else -1.0
    filled, notional = _exact_sums(taken, prices)
    buys, sells = arrays.open_quantity(money, index, meta, account)
    allowed = margin.check(values[SIZE, account], values[ENTRY_PRICE, account],
                           values[COLLATERAL, account], buys, sells, mark, max_leverage,
                           sign * filled,
                           margin.taker_equity_change(sign, filled, notional, mark,
                                                      taker_fee, 0.0, math.nan),
                           0.0, 0.0)[0]
    if not allowed:
        return Status.BELOW_MARGIN.value, ids, fills, 0.0
    market[MARK] = mark
    for order_id in stale:
        arrays.remove(money, index, meta, arrays.find(index, meta, order_id))
    notional = execute(book, ledger, market, account, sign, order_ids, makers, prices, taken,
                       taker_fee, maker_fee)[2]
    return Status.OK.value, ids, fills, notional


@kernel
def check_orders(flags: np.ndarray, n_accounts: int, accounts_: np.ndarray,
                 quantities: np.ndarray, limit_prices: np.ndarray) -> tuple[Status, int]:
    """The first problem with a batch of orders, as (status, order number), or (OK, −1):
    an account that is not open (:func:`~perpabm.exchange.kernels.accounts.check_accounts`),
    else :attr:`~Status.BAD_QUANTITY` (not finite and non-zero) or
    :attr:`~Status.BAD_PRICE` (a limit price not finite and > 0)."""
    status, k = accounts.check_accounts(flags, n_accounts, accounts_)
    if status != Status.OK:
        return status, k
    for k in range(len(accounts_)):
        if not (math.isfinite(quantities[k]) and quantities[k] != 0.0):
            return Status.BAD_QUANTITY, k
        if not (math.isfinite(limit_prices[k]) and limit_prices[k] > 0.0):
            return Status.BAD_PRICE, k
    return Status.OK, -1


@kernel
def market_orders(book: arrays.BookArrays, ledger: accounts.LedgerArrays, market: np.ndarray,
                  terms: tuple[float, float, float], n_accounts: int, accounts_: np.ndarray,
                  quantities: np.ndarray, limit_prices: np.ndarray) -> tuple[int, int, np.ndarray]:
    """:func:`market_order` for each of `accounts_` in turn: buy (quantity > 0) or sell
    signed `quantities` (base units) up to `limit_prices` (USD). An order the taker's
    initial margin cannot cover is skipped, nothing of it booked. The batch is checked
    first (:func:`check_orders`, against the first `n_accounts` of the ledger): if an
    order cannot be placed, none is.

    Returns (status value, order, filled): the status (as its int value) and order of
    :func:`check_orders`, and the signed quantity each order filled (0 where nothing
    did or it was skipped).
    """
    n = len(accounts_)
    filled = np.zeros(n)
    status, order = check_orders(ledger[1], n_accounts, accounts_, quantities, limit_prices)
    if status != Status.OK:
        return status.value, order, filled
    for k in range(n):
        quantity = quantities[k]
        taker_side = arrays.BUY_SIDE if quantity > 0.0 else arrays.SELL_SIDE
        best = arrays.best(*book, 1 - taker_side)
        if math.isnan(best) or (best > limit_prices[k] if quantity > 0.0
                                else best < limit_prices[k]):
            continue  # nothing within reach: the usual fate of a crowd of takers
        status, _, fills, _ = market_order(
            book, ledger, market, terms, accounts_[k], taker_side, abs(quantity),
            limit_prices[k])
        if status != Status.OK.value:
            continue
        total = _exact_sums(fills[1], fills[0])[0]
        filled[k] = total if quantity > 0.0 else -total
    return Status.OK.value, -1, filled

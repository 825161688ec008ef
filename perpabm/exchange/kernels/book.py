"""The order book's state as arrays, and the compiled kernels that read and change it.

:class:`perpabm.exchange.book.OrderBook` keeps its resting orders in three arrays
and does every search, insert and walk in these kernels, so that a maker's whole
requote or a taker's walk is one call into compiled code.

Layout (``cap`` order slots; a slot holds one resting order or is free):

- ``money``, float64 ``(2, cap)``: row :data:`PRICE` (USD per base unit) and row
  :data:`QUANTITY` (base units, remaining) of each slot;
- ``index``, int64 ``(8, cap)``: per slot its :data:`ORDER_ID`, :data:`ACCOUNT`,
  :data:`SIDE` (:data:`BUY_SIDE` / :data:`SELL_SIDE`) and :data:`SEQ` (arrival
  number: time priority); then four lists, each of ``meta``'s count long:
  :data:`FREE` (free slots), :data:`BY_ID` (resting slots by ascending order id),
  and :data:`QUEUE` + side (that side's slots in priority order: best price first,
  oldest first within a price);
- ``meta``, int64 ``(6,)``: the counts :data:`N_BUY`, :data:`N_SELL`,
  :data:`N_FREE`, :data:`N_LIVE`, the next arrival number :data:`NEXT_SEQ` and the
  last order id the book gave (:data:`LAST_ORDER_ID`: ids count up from 1).

The *book bundle* is the tuple ``(money, index, meta)``; the matching and quoting
kernels take it as one argument.

Callers make room first (``meta[N_FREE]`` at least the orders they add). Sums of
quantities are exact (``math.fsum``: :mod:`perpabm.exchange.exact`), so they do not
depend on the order orders are visited in.
"""

from __future__ import annotations

import math

import numpy as np

from perpabm.compiled import kernel
from perpabm.exchange.kernels import exact
from perpabm.exchange.kernels.status import Status

PRICE, QUANTITY = 0, 1
ORDER_ID, ACCOUNT, SIDE, SEQ, FREE, BY_ID, QUEUE = 0, 1, 2, 3, 4, 5, 6  # QUEUE + side
N_BUY, N_SELL, N_FREE, N_LIVE, NEXT_SEQ, LAST_ORDER_ID = 0, 1, 2, 3, 4, 5  # N_BUY + side
BUY_SIDE, SELL_SIDE = 0, 1
NO_ACCOUNT = np.iinfo(np.int64).min  # an account filter that matches no account

type BookArrays = tuple[np.ndarray, np.ndarray, np.ndarray]
"""The book bundle ``(money, index, meta)``."""


def empty(cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (money, index, meta) arrays of an empty book with `cap` free slots."""
    money = np.zeros((2, cap))
    index = np.zeros((8, cap), dtype=np.int64)
    index[FREE] = np.arange(cap - 1, -1, -1)  # slot 0 is taken first
    meta = np.zeros(6, dtype=np.int64)
    meta[N_FREE] = cap
    return money, index, meta


def grown(money: np.ndarray, index: np.ndarray, meta: np.ndarray,
          need: int) -> tuple[np.ndarray, np.ndarray]:
    """(money, index) with at least `need` free slots: the capacity doubled (or more),
    the resting orders where they were and the new slots free."""
    cap = money.shape[1]
    new_cap = max(2 * cap, cap + need - int(meta[N_FREE]))
    new_money = np.zeros((2, new_cap))
    new_money[:, :cap] = money
    new_index = np.zeros((8, new_cap), dtype=np.int64)
    new_index[:, :cap] = index
    n_free = int(meta[N_FREE])
    added = np.arange(new_cap - 1, cap - 1, -1)  # the new slots, under the old free ones
    new_index[FREE, :new_cap - cap + n_free] = np.concatenate([added, index[FREE, :n_free]])
    meta[N_FREE] = n_free + new_cap - cap
    return new_money, new_index


# ---------------------------------------------------------------------- lists


@kernel
def _level_edge(money: np.ndarray, queue: np.ndarray, n: int, side: int, price: float,
                after: bool) -> int:
    """Where the level at `price` begins in a side's queue of `n` slots (`after`: where
    it ends — the back of the level, where a new order at `price` joins)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        p = money[PRICE, queue[mid]]
        better = p > price if side == BUY_SIDE else p < price
        if better or (after and p == price):
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _queue_insert(money: np.ndarray, index: np.ndarray, meta: np.ndarray, slot: int) -> None:
    """Put `slot` at the back of its price level in its side's queue."""
    side = index[SIDE, slot]
    queue = index[QUEUE + side]
    n = meta[N_BUY + side]
    at = _level_edge(money, queue, n, side, money[PRICE, slot], True)
    for i in range(n, at, -1):
        queue[i] = queue[i - 1]
    queue[at] = slot
    meta[N_BUY + side] = n + 1


@kernel
def _queue_remove(money: np.ndarray, index: np.ndarray, meta: np.ndarray, slot: int) -> None:
    """Take `slot` out of its side's queue."""
    side = index[SIDE, slot]
    queue = index[QUEUE + side]
    n = meta[N_BUY + side]
    at = _level_edge(money, queue, n, side, money[PRICE, slot], False)
    while queue[at] != slot:
        at += 1
    for i in range(at, n - 1):
        queue[i] = queue[i + 1]
    meta[N_BUY + side] = n - 1


@kernel
def _id_position(index: np.ndarray, meta: np.ndarray, order_id: int) -> int:
    """Where `order_id` is (or would go) in the by-id list."""
    by_id = index[BY_ID]
    lo, hi = 0, meta[N_LIVE]
    while lo < hi:
        mid = (lo + hi) // 2
        if index[ORDER_ID, by_id[mid]] < order_id:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def find(index: np.ndarray, meta: np.ndarray, order_id: int) -> int:
    """The slot of resting order `order_id`, or −1."""
    i = _id_position(index, meta, order_id)
    if i < meta[N_LIVE] and index[ORDER_ID, index[BY_ID, i]] == order_id:
        return index[BY_ID, i]
    return -1


@kernel
def _rest(money: np.ndarray, index: np.ndarray, meta: np.ndarray, position: int,
          order_id: int, account: int, side: int, price: float, quantity: float) -> None:
    """Rest an order in a free slot; `position` is its place in the by-id list."""
    meta[N_FREE] -= 1
    slot = index[FREE, meta[N_FREE]]
    money[PRICE, slot] = price
    money[QUANTITY, slot] = quantity
    index[ORDER_ID, slot] = order_id
    index[ACCOUNT, slot] = account
    index[SIDE, slot] = side
    index[SEQ, slot] = meta[NEXT_SEQ]
    meta[NEXT_SEQ] += 1
    by_id = index[BY_ID]
    for i in range(meta[N_LIVE], position, -1):
        by_id[i] = by_id[i - 1]
    by_id[position] = slot
    meta[N_LIVE] += 1
    _queue_insert(money, index, meta, slot)


@kernel
def add(money: np.ndarray, index: np.ndarray, meta: np.ndarray, order_id: int, account: int,
        side: int, price: float, quantity: float) -> bool:
    """Rest an order at the back of its level; False (and no change) if `order_id` is
    already resting."""
    position = _id_position(index, meta, order_id)
    if position < meta[N_LIVE] and index[ORDER_ID, index[BY_ID, position]] == order_id:
        return False
    _rest(money, index, meta, position, order_id, account, side, price, quantity)
    return True


@kernel
def remove(money: np.ndarray, index: np.ndarray, meta: np.ndarray, slot: int) -> None:
    """Take the order in `slot` out of the book (its fields stay readable until the
    slot is reused)."""
    _queue_remove(money, index, meta, slot)
    i = _id_position(index, meta, index[ORDER_ID, slot])
    by_id = index[BY_ID]
    for j in range(i, meta[N_LIVE] - 1):
        by_id[j] = by_id[j + 1]
    meta[N_LIVE] -= 1
    index[FREE, meta[N_FREE]] = slot
    meta[N_FREE] += 1


@kernel
def _remove_slots(index: np.ndarray, meta: np.ndarray, slots: np.ndarray) -> None:
    """Take the orders in `slots` out of the book in one pass a list (a walk that
    empties many orders would otherwise shift the lists once an order)."""
    if len(slots) == 0:
        return
    for slot in slots:
        index[SEQ, slot] = -1
    _drop_marked(index, meta)


@kernel
def _drop_account(index: np.ndarray, meta: np.ndarray, account: int) -> None:
    """Take every resting order of `account` out of the book, in one pass a list."""
    by_id = index[BY_ID]
    for i in range(meta[N_LIVE]):
        if index[ACCOUNT, by_id[i]] == account:
            index[SEQ, by_id[i]] = -1
    _drop_marked(index, meta)


@kernel
def _drop_marked(index: np.ndarray, meta: np.ndarray) -> None:
    """Take out of the lists the orders marked with a negative arrival number, and free
    their slots (a slot gets a new arrival number when it is reused)."""
    for side in range(2):
        queue = index[QUEUE + side]
        kept = 0
        for i in range(meta[N_BUY + side]):
            if index[SEQ, queue[i]] >= 0:
                queue[kept] = queue[i]
                kept += 1
        meta[N_BUY + side] = kept
    by_id = index[BY_ID]
    kept = 0
    for i in range(meta[N_LIVE]):
        slot = by_id[i]
        if index[SEQ, slot] >= 0:
            by_id[kept] = slot
            kept += 1
        else:
            index[FREE, meta[N_FREE]] = slot
            meta[N_FREE] += 1
    meta[N_LIVE] = kept


@kernel
def replace_account(money: np.ndarray, index: np.ndarray, meta: np.ndarray, account: int,
                    order_ids: np.ndarray, sides: np.ndarray, prices: np.ndarray,
                    quantities: np.ndarray) -> None:
    """Cancel every resting order of `account` and rest the given orders in their place,
    in the order given, each at the back of its level (ids must not be resting)."""
    _drop_account(index, meta, account)
    for k in range(len(order_ids)):
        _rest(money, index, meta, _id_position(index, meta, order_ids[k]), order_ids[k],
              account, sides[k], prices[k], quantities[k])


# ---------------------------------------------------------------------- reading


@kernel
def account_slots(index: np.ndarray, meta: np.ndarray, account: int) -> np.ndarray:
    """The slots of `account`'s resting orders, in placement order."""
    by_id = index[BY_ID]
    slots = np.empty(meta[N_LIVE], dtype=np.int64)
    n = 0
    for i in range(meta[N_LIVE]):
        if index[ACCOUNT, by_id[i]] == account:
            slots[n] = by_id[i]
            n += 1
    slots = slots[:n]
    return slots[np.argsort(index[SEQ][slots], kind="mergesort")]


@kernel
def open_quantity(money: np.ndarray, index: np.ndarray, meta: np.ndarray,
                  account: int) -> tuple[float, float]:
    """Exact sums of `account`'s resting (buy, sell) quantities, base units."""
    buys = np.empty(exact.MAX_PARTIALS)
    sells = np.empty(exact.MAX_PARTIALS)
    n_buys = n_sells = 0
    by_id = index[BY_ID]
    for i in range(meta[N_LIVE]):
        slot = by_id[i]
        if index[ACCOUNT, slot] == account:
            if index[SIDE, slot] == BUY_SIDE:
                n_buys = exact.add(buys, n_buys, money[QUANTITY, slot])
            else:
                n_sells = exact.add(sells, n_sells, money[QUANTITY, slot])
    return exact.rounded(buys, n_buys), exact.rounded(sells, n_sells)


@kernel
def best(money: np.ndarray, index: np.ndarray, meta: np.ndarray, side: int) -> float:
    """`side`'s best price (USD): its first order's in priority; NaN if it has none."""
    return money[PRICE, index[QUEUE + side, 0]] if meta[N_BUY + side] else math.nan


@kernel
def best_excluding(money: np.ndarray, index: np.ndarray, meta: np.ndarray,
                   account: int) -> tuple[float, float]:
    """Best bid and best ask (USD; NaN for none) among other accounts' orders."""
    return (_first_price_excluding(money, index, meta, BUY_SIDE, account),
            _first_price_excluding(money, index, meta, SELL_SIDE, account))


@kernel
def _first_price_excluding(money: np.ndarray, index: np.ndarray, meta: np.ndarray, side: int,
                           account: int) -> float:
    queue = index[QUEUE + side]
    for i in range(meta[N_BUY + side]):
        if index[ACCOUNT, queue[i]] != account:
            return money[PRICE, queue[i]]
    return np.nan


@kernel
def volume_within(money: np.ndarray, index: np.ndarray, meta: np.ndarray, side: int,
                  price_limit: float) -> float:
    """Exact sum of `side`'s resting quantities at prices at least as good as
    `price_limit` for a taker (bids ≥ it, asks ≤ it), base units."""
    partials = np.empty(exact.MAX_PARTIALS)
    n = 0
    queue = index[QUEUE + side]
    for i in range(meta[N_BUY + side]):
        slot = queue[i]
        price = money[PRICE, slot]
        if (price < price_limit) if side == BUY_SIDE else (price > price_limit):
            break
        n = exact.add(partials, n, money[QUANTITY, slot])
    return exact.rounded(partials, n)


@kernel
def near_mid(money: np.ndarray, index: np.ndarray, meta: np.ndarray, band: float,
             fallback_mid: float) -> tuple[float, float, float, float]:
    """(best bid, best ask, bid volume, ask volume): the best prices (USD; NaN for an empty
    side) and each side's exact resting volume (base units) within `band` (a fraction) of
    the mid — the best prices' midpoint, or `fallback_mid` (USD) with a side empty."""
    bid, ask = best(money, index, meta, BUY_SIDE), best(money, index, meta, SELL_SIDE)
    mid = fallback_mid if math.isnan(bid) or math.isnan(ask) else 0.5 * (bid + ask)
    return (bid, ask, volume_within(money, index, meta, BUY_SIDE, mid * (1 - band)),
            volume_within(money, index, meta, SELL_SIDE, mid * (1 + band)))


@kernel
def depth(money: np.ndarray, index: np.ndarray, meta: np.ndarray, side: int,
          levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(prices, exact volumes) of `side`'s first `levels` price levels, best first."""
    queue = index[QUEUE + side]
    prices = np.empty(min(levels, meta[N_BUY + side]))
    volumes = np.empty(len(prices))
    partials = np.empty(exact.MAX_PARTIALS)
    n_levels = n = 0
    for i in range(meta[N_BUY + side]):
        price = money[PRICE, queue[i]]
        if n_levels == 0 or price != prices[n_levels - 1]:
            if n_levels > 0:
                volumes[n_levels - 1] = exact.rounded(partials, n)
            if n_levels == levels:
                return prices, volumes
            prices[n_levels] = price
            n_levels += 1
            n = 0
        n = exact.add(partials, n, money[QUANTITY, queue[i]])
    if n_levels > 0:
        volumes[n_levels - 1] = exact.rounded(partials, n)
    return prices[:n_levels], volumes[:n_levels]


# ---------------------------------------------------------------------- matching


@kernel
def plan_market(money: np.ndarray, index: np.ndarray, meta: np.ndarray, taker_side: int,
                quantity: float, limit_price: float, exclude_account: int,
                exclude_orders: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A taker's walk of the other side in priority order, without changing the book.

    Stops when `quantity` (base units) is met, the side runs out, or the next level
    is beyond `limit_price` (USD; NaN for none). Orders of `exclude_account` and the
    ids in `exclude_orders` neither fill nor block. Returns the filled slots and the
    fill quantities: each order's remaining quantity, and for the last one possibly
    the correctly rounded exact remainder of `quantity`.
    """
    side = 1 - taker_side
    queue = index[QUEUE + side]
    n_side = meta[N_BUY + side]
    slots = np.empty(n_side, dtype=np.int64)
    taken = np.empty(n_side)
    partials = np.empty(exact.MAX_PARTIALS)
    n_partials = exact.add(partials, 0, quantity)
    n = 0
    for i in range(n_side):
        slot = queue[i]
        price = money[PRICE, slot]
        if (price > limit_price) if taker_side == BUY_SIDE else (price < limit_price):
            break  # False for a NaN limit: no limit
        if index[ACCOUNT, slot] == exclude_account:
            continue
        skip = False
        for order_id in exclude_orders:
            if order_id == index[ORDER_ID, slot]:
                skip = True
        if skip:
            continue
        rem = exact.rounded(partials, n_partials)
        available = money[QUANTITY, slot]
        slots[n] = slot
        if available <= rem:
            taken[n] = available
            n += 1
            n_partials = exact.add(partials, n_partials, -available)
            if exact.rounded(partials, n_partials) <= 0.0:
                break
        else:
            taken[n] = rem
            n += 1
            break
    return slots[:n], taken[:n]


@kernel
def _taken(quantities: np.ndarray, next_fill: np.ndarray, k: int,
           partials: np.ndarray) -> float:
    """The exact total of fill `k` and the fills chained after it on the same order."""
    if next_fill[k] < 0:
        return quantities[k]
    n = 0
    while k >= 0:
        n = exact.add(partials, n, quantities[k])
        k = next_fill[k]
    return exact.rounded(partials, n)


@kernel
def apply(money: np.ndarray, index: np.ndarray, meta: np.ndarray, order_ids: np.ndarray,
          makers: np.ndarray, prices: np.ndarray, quantities: np.ndarray,
          dust: float) -> tuple[Status, int]:
    """Execute fills (order id, maker, price, quantity) on the book: reduce each order
    by its fills' exact total and remove the ones used up or left with at most `dust`
    of their quantity. Checks everything first and changes nothing unless all is well:
    returns (OK, 0), or (status, fill number) with status
    :attr:`~Status.STALE_MISSING`, :attr:`~Status.STALE_MISMATCH`,
    :attr:`~Status.BAD_FILL` or :attr:`~Status.OVERFILLED` (then the fill number is
    that order's first fill)."""
    k_fills = len(order_ids)
    slots = np.empty(k_fills, dtype=np.int64)
    for k in range(k_fills):
        slot = find(index, meta, order_ids[k])
        if slot < 0:
            return Status.STALE_MISSING, k
        if makers[k] != index[ACCOUNT, slot] or prices[k] != money[PRICE, slot]:
            return Status.STALE_MISMATCH, k
        q = quantities[k]
        if not (0.0 < q < math.inf):
            return Status.BAD_FILL, k
        slots[k] = slot
    # Fills on one order (only a hand-made plan has several) are chained in fill order.
    next_fill = np.full(k_fills, -1, dtype=np.int64)
    first = np.ones(k_fills, dtype=np.bool_)
    by_slot = np.argsort(slots, kind="mergesort")  # stable: fill order within an order
    for i in range(1, k_fills):
        if slots[by_slot[i]] == slots[by_slot[i - 1]]:
            next_fill[by_slot[i - 1]] = by_slot[i]
            first[by_slot[i]] = False
    partials = np.empty(exact.MAX_PARTIALS)
    for k in range(k_fills):
        if first[k] and _taken(quantities, next_fill, k, partials) > money[QUANTITY, slots[k]]:
            return Status.OVERFILLED, k
    removed = np.empty(k_fills, dtype=np.int64)
    n_removed = 0
    for k in range(k_fills):
        slot = slots[k]
        if not first[k]:
            continue
        old = money[QUANTITY, slot]
        if next_fill[k] < 0:
            new = old - quantities[k]
        else:
            n = exact.add(partials, 0, old)
            j = k
            while j >= 0:
                n = exact.add(partials, n, -quantities[j])
                j = next_fill[j]
            new = exact.rounded(partials, n)
        if new <= dust * old:
            removed[n_removed] = slot
            n_removed += 1
        else:
            money[QUANTITY, slot] = new
    _remove_slots(index, meta, removed[:n_removed])
    return Status.OK, 0

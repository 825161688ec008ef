"""L2 limit order book for one perpetual swap, with price-time priority.

The book only keeps resting orders and plans/applies matches against them. It knows
nothing about margin, balances or fees: the exchange engine matches a marketable order
with :meth:`OrderBook.plan_market` + :meth:`OrderBook.apply` and then rests whatever is
left with :meth:`OrderBook.add`.

Units: prices are USD per base unit (positive floats), quantities are base units
(positive floats). Sides are the strings ``"buy"`` (bids) and ``"sell"`` (asks).

Floating-point bookkeeping is exact: level volumes, per-account open quantities and
:meth:`OrderBook.volume_within` are the correctly rounded *exact* sums of the resting
orders' quantities (``math.fsum`` of those quantities, taken when asked for, so that
adds, cancels and fills cost no running sums and the figures never drift).

A price level is a plain list of its orders, oldest first: most levels hold one order,
and a list is the cheapest container to create, scan and drop.
"""

import math
import numbers
from bisect import bisect_left, bisect_right, insort
from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["BUY", "DUST_REL_TOL", "SELL", "Fill", "OrderBook"]

BUY = "buy"
SELL = "sell"

DUST_REL_TOL = 1e-12
"""When a fill leaves a maker order with at most this fraction of its pre-fill quantity
(floating-point dust such as 1e-17), :meth:`OrderBook.apply` removes the order instead of
leaving the dust resting."""


class Fill(NamedTuple):
    """One planned execution against a resting (maker) order.

    ``price`` is in USD per base unit, ``quantity`` in base units.
    """

    order_id: int
    maker: int
    price: float
    quantity: float


class _ExactSum:
    """Running sum of floats kept exactly (Shewchuk partials, as in ``math.fsum``).

    ``value`` is the correctly rounded exact sum of everything added so far, so adding
    ``x`` and later ``-x`` leaves no residue.
    """

    __slots__ = ("_partials", "value")

    def __init__(self) -> None:
        self._partials: list[float] = []
        self.value = 0.0

    def add(self, x: float) -> None:
        partials = self._partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]
        self.value = math.fsum(partials)


class _Order:
    __slots__ = ("account", "order_id", "price", "quantity", "side")

    def __init__(self, order_id: int, account: int, side: str, price: float, quantity: float):
        self.order_id = order_id
        self.account = account
        self.side = side
        self.price = price
        self.quantity = quantity


class _Account:
    """Resting orders of one account, by id in placement order, and its open quantities
    per side: exact running sums, set up the first time they are asked for (an account
    that only ever replaces whole ladders never pays for them) and kept from then on."""

    __slots__ = ("orders", "totals")

    def __init__(self) -> None:
        self.orders: dict[int, _Order] = {}
        self.totals: dict[str, _ExactSum] | None = None

    def open_quantities(self) -> tuple[float, float]:
        if self.totals is None:
            self.totals = {BUY: _ExactSum(), SELL: _ExactSum()}
            for order in self.orders.values():
                self.totals[order.side].add(order.quantity)
        return self.totals[BUY].value, self.totals[SELL].value


def _check_side(value: object, name: str = "side") -> str:
    if isinstance(value, str):
        if value == BUY:
            return BUY
        if value == SELL:
            return SELL
    raise ValueError(f"{name} must be 'buy' or 'sell', got {value!r}")


def _check_positive(name: str, value: object) -> float:
    if type(value) is float and 0.0 < value < math.inf:  # the common case, checked fast
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return result


def _check_int(name: str, value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _first_price_of_others(
    prices: Iterable[float], levels: dict[float, list[_Order]], account: int
) -> float | None:
    """The first of ``prices`` whose level holds an order of an account other than
    ``account``, or None."""
    for price in prices:
        for order in levels[price]:
            if order.account != account:
                return price
    return None


class OrderBook:
    """Limit order book of one perpetual: price levels with FIFO (time) priority.

    Per side it keeps a dict price -> level (the list of its orders, oldest first) and an
    ascending list of the level prices (best bid = last bid price, best ask = first ask
    price), plus an order-id index and a per-account index, so cancels, account cancels
    and open-quantity queries never scan the book. Empty levels are removed immediately.
    """

    __slots__ = ("_accounts", "_levels", "_orders", "_prices")

    def __init__(self) -> None:
        self._levels: dict[str, dict[float, list[_Order]]] = {BUY: {}, SELL: {}}
        self._prices: dict[str, list[float]] = {BUY: [], SELL: []}
        self._orders: dict[int, _Order] = {}
        self._accounts: dict[int, _Account] = {}

    # ------------------------------------------------------------------ resting orders

    def add(self, order_id: int, account: int, side: str, price: float, quantity: float) -> None:
        """Rest an order at the back of its price level (no matching is done here).

        ``price`` in USD per base unit, ``quantity`` in base units; both must be finite and
        > 0. Raises ValueError naming the offending field for a bad side, price, quantity,
        non-integer id/account, or an ``order_id`` that is already resting.
        """
        order_id = _check_int("order_id", order_id)
        account = _check_int("account", account)
        side = _check_side(side)
        price = _check_positive("price", price)
        quantity = _check_positive("quantity", quantity)
        if order_id in self._orders:
            raise ValueError(f"order_id {order_id} is already resting in the book")
        order = _Order(order_id, account, side, price, quantity)
        levels = self._levels[side]
        level = levels.get(price)
        if level is None:
            levels[price] = [order]
            insort(self._prices[side], price)
        else:
            level.append(order)
        self._orders[order_id] = order
        acct = self._accounts.get(account)
        if acct is None:
            acct = self._accounts[account] = _Account()
        acct.orders[order_id] = order
        if acct.totals is not None:
            acct.totals[side].add(quantity)

    def cancel(self, order_id: int) -> tuple[int, str, float, float]:
        """Remove a resting order; return (account, side, price USD, remaining quantity).

        Raises ValueError naming ``order_id`` if it is not resting in the book.
        """
        order = self._orders.get(order_id)
        if order is None:
            raise ValueError(f"order_id {order_id!r} is not resting in the book")
        self._remove(order)
        return order.account, order.side, order.price, order.quantity

    def cancel_account(self, account: int) -> list[tuple[int, str, float, float]]:
        """Cancel every resting order of ``account`` (e.g. on liquidation).

        Returns (order_id, side, price USD, remaining quantity) per cancelled order, in
        placement order; an account without resting orders gives ``[]``.
        """
        acct = self._accounts.get(account)
        if acct is None:
            return []
        cancelled = [(i, o.side, o.price, o.quantity) for i, o in acct.orders.items()]
        self._replace_account(account, ())
        return cancelled

    def _replace_account(
        self, account: int, orders: Sequence[tuple[int, str, float, float]]
    ) -> None:
        """Cancel every resting order of ``account`` and rest the already-checked
        (order_id, side, price, quantity) ``orders`` in their place, in the order given,
        each at the back of its level.

        The same as :meth:`cancel_account` and then :meth:`add` of each order, but each
        side's price list is brought up to date once, for all the levels that emptied or
        opened (a requoted ladder moves most of them).
        """
        levels_of, all_orders = self._levels, self._orders
        old = self._accounts.pop(account, None)
        cancelled = {} if old is None else old.orders
        moved = len(cancelled) + len(orders)
        if not moved:
            return
        # Each side's price list is brought up to date at the end: its level prices are
        # re-sorted (fast for the shallow books of a simulation) or, for a few orders in a
        # deep book, the prices they leave and take are bisected in or out one by one.
        touched = {side: [o.price for o in cancelled.values() if o.side == side]
                   for side, prices in self._prices.items() if 4 * moved < len(prices)}
        for order_id, order in cancelled.items():
            levels = levels_of[order.side]
            level = levels[order.price]
            if len(level) == 1:  # the order is the whole level
                del levels[order.price]
            else:
                level.remove(order)
            del all_orders[order_id]
        if orders:
            acct = self._accounts[account] = _Account()
            by_id = acct.orders
            spare = list(cancelled.values())
            for order_id, side, price, quantity in orders:
                if spare:  # reusing a cancelled order's record is cheaper than a new one
                    order = spare.pop()
                    order.order_id = order_id
                    order.side = side
                    order.price = price
                    order.quantity = quantity
                else:
                    order = _Order(order_id, account, side, price, quantity)
                levels = levels_of[side]
                level = levels.get(price)
                if level is None:
                    levels[price] = [order]
                else:
                    level.append(order)
                all_orders[order_id] = order
                by_id[order_id] = order
        for side, levels in levels_of.items():
            if side not in touched:
                self._prices[side] = sorted(levels)
                continue
            prices = self._prices[side]
            touched[side] += [order[2] for order in orders if order[1] == side]
            for price in touched[side]:  # its level may have emptied, opened, both or neither
                i = bisect_left(prices, price)
                listed = i < len(prices) and prices[i] == price
                if price in levels:
                    if not listed:
                        prices.insert(i, price)
                elif listed:
                    del prices[i]

    def open_quantity(self, account: int) -> tuple[float, float]:
        """Total resting (buy, sell) quantity of ``account`` in base units ((0, 0) if none)."""
        acct = self._accounts.get(account)
        if acct is None:
            return 0.0, 0.0
        return acct.open_quantities()

    def orders_of(self, account: int) -> list[int]:
        """Ids of the resting orders of ``account``, in placement order."""
        acct = self._accounts.get(account)
        return [] if acct is None else list(acct.orders)

    def __len__(self) -> int:
        """Number of resting orders."""
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        """Whether ``order_id`` is resting in the book."""
        return order_id in self._orders

    # ------------------------------------------------------------------ market data

    def best_bid(self) -> float | None:
        """Highest bid price (USD), or None if there are no bids."""
        prices = self._prices[BUY]
        return prices[-1] if prices else None

    def best_ask(self) -> float | None:
        """Lowest ask price (USD), or None if there are no asks."""
        prices = self._prices[SELL]
        return prices[0] if prices else None

    def _best_prices(self, exclude_account: int) -> tuple[float | None, float | None]:
        """Best bid and best ask (USD, None for an empty side) among the orders of accounts
        other than ``exclude_account``: the best prices once its orders are cancelled."""
        return (_first_price_of_others(reversed(self._prices[BUY]), self._levels[BUY],
                                       exclude_account),
                _first_price_of_others(self._prices[SELL], self._levels[SELL],
                                       exclude_account))

    def mid(self) -> float | None:
        """(best bid + best ask) / 2 in USD, or None if either side is empty."""
        bids, asks = self._prices[BUY], self._prices[SELL]
        if not bids or not asks:
            return None
        return 0.5 * (bids[-1] + asks[0])

    def depth(self, side: str, levels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prices USD, volumes base units) of ``side``, from the best level outward.

        ``levels`` limits the number of levels returned (None = all). Bids come out in
        descending price order, asks ascending.
        """
        side = _check_side(side)
        if levels is not None:
            levels = _check_int("levels", levels)
            if levels < 0:
                raise ValueError(f"levels must be >= 0 or None, got {levels!r}")
        prices = self._prices[side]
        n = len(prices) if levels is None else min(levels, len(prices))
        if side == BUY:
            selected = prices[len(prices) - n :][::-1]
        else:
            selected = prices[:n]
        book = self._levels[side]
        volumes = [math.fsum([o.quantity for o in book[p]]) for p in selected]
        return np.array(selected, dtype=float), np.array(volumes, dtype=float)

    def volume_within(self, side: str, price_limit: float) -> float:
        """Resting volume (base units) on ``side`` at prices at least as good as
        ``price_limit`` (USD) for a taker hitting that side: bids priced >= the limit,
        asks priced <= the limit. The result is the correctly rounded exact sum.
        """
        side = _check_side(side)
        price_limit = _check_positive("price_limit", price_limit)
        prices = self._prices[side]
        if side == BUY:
            selected = prices[bisect_left(prices, price_limit) :]
        else:
            selected = prices[: bisect_right(prices, price_limit)]
        book = self._levels[side]
        return math.fsum([o.quantity for p in selected for o in book[p]])

    # ------------------------------------------------------------------ matching

    def plan_market(
        self,
        taker_side: str,
        quantity: float,
        limit_price: float | None = None,
        exclude_account: int | None = None,
        exclude_orders: Collection[int] = (),
    ) -> list[Fill]:
        """Plan a taker order of ``quantity`` base units without mutating the book.

        A buy taker walks the asks upward, a sell taker walks the bids downward, in
        price-time priority, until ``quantity`` is met, the side runs out, or the next
        level is beyond ``limit_price`` (USD; a buy never pays more, a sell never receives
        less). Orders of ``exclude_account`` (self-trade prevention) and the order ids in
        ``exclude_orders`` are skipped: they neither fill nor block.

        A fully taken order is filled with exactly its remaining quantity; the last fill
        may be partial and then carries the correctly rounded exact remainder of the taker
        quantity, so ``math.fsum`` of the fill quantities equals ``min(quantity,
        available)`` (up to a last-place rounding tie in contrived cases).
        """
        taker_side = _check_side(taker_side, "taker_side")
        quantity = _check_positive("quantity", quantity)
        if limit_price is not None:
            limit_price = _check_positive("limit_price", limit_price)

        if taker_side == BUY:
            prices = self._prices[SELL]
            book = self._levels[SELL]
            walk = iter(prices)
        else:
            prices = self._prices[BUY]
            book = self._levels[BUY]
            walk = reversed(prices)

        remaining = _ExactSum()
        remaining.add(quantity)
        fills: list[Fill] = []
        for price in walk:
            if limit_price is not None and (
                price > limit_price if taker_side == BUY else price < limit_price
            ):
                break
            for order in book[price]:
                if (exclude_account is not None and order.account == exclude_account) or (
                    order.order_id in exclude_orders
                ):
                    continue
                rem = remaining.value
                if order.quantity <= rem:
                    fills.append(Fill(order.order_id, order.account, price, order.quantity))
                    remaining.add(-order.quantity)
                    if remaining.value <= 0.0:
                        return fills
                else:
                    fills.append(Fill(order.order_id, order.account, price, rem))
                    return fills
        return fills

    def apply(self, fills: Sequence[Fill]) -> None:
        """Execute a plan from :meth:`plan_market` on the unchanged book.

        Reduces each maker order by its fill quantity and removes orders that are used
        up (including ones left with floating-point dust of at most ``DUST_REL_TOL`` of
        their pre-fill quantity). Level volumes and account open quantities are updated
        and empty levels removed. Several fills on one order are allowed and summed.

        Raises RuntimeError, changing nothing, if the plan does not match the book: an
        order is gone, its maker account or price differs, a fill quantity is not finite
        and > 0, or the fills on an order exceed its remaining quantity.
        """
        per_order: dict[int, list[float]] = {}
        for k, fill in enumerate(fills):
            order = self._orders.get(fill.order_id)
            if order is None:
                raise RuntimeError(
                    f"stale plan: fill {k} order_id {fill.order_id!r} is not resting in the book"
                )
            if fill.maker != order.account or fill.price != order.price:
                raise RuntimeError(
                    f"stale plan: fill {k} order_id {fill.order_id} has maker/price "
                    f"{fill.maker!r}/{fill.price!r}, book has {order.account}/{order.price}"
                )
            q = fill.quantity
            if not (type(q) is float and 0.0 < q < math.inf) and (
                isinstance(q, bool)
                or not isinstance(q, numbers.Real)
                or not math.isfinite(q)
                or q <= 0
            ):
                raise RuntimeError(f"bad plan: fill {k} quantity must be finite and > 0, got {q!r}")
            per_order.setdefault(order.order_id, []).append(float(q))
        for order_id, qs in per_order.items():
            order = self._orders[order_id]
            taken = qs[0] if len(qs) == 1 else math.fsum(qs)
            if taken > order.quantity:
                raise RuntimeError(
                    f"stale plan: fills on order_id {order_id} total quantity {taken!r}, "
                    f"exceeding its remaining quantity {order.quantity!r}"
                )

        for order_id, qs in per_order.items():
            order = self._orders[order_id]
            old = order.quantity
            new = old - qs[0] if len(qs) == 1 else math.fsum([old, *(-q for q in qs)])
            if new <= DUST_REL_TOL * old:
                self._remove(order)
                continue
            order.quantity = new
            totals = self._accounts[order.account].totals
            if totals is not None:
                totals[order.side].add(-old)
                totals[order.side].add(new)

    # ------------------------------------------------------------------ internals

    def _remove(self, order: _Order) -> None:
        """Take ``order`` out of its level (deleting the level, and its price, if it
        empties), the id index and its account."""
        levels = self._levels[order.side]
        level = levels[order.price]
        if len(level) == 1:  # the order is the whole level
            del levels[order.price]
            prices = self._prices[order.side]
            del prices[bisect_left(prices, order.price)]
        elif level[0] is order:
            del level[0]
        else:
            level.remove(order)
        del self._orders[order.order_id]
        acct = self._accounts[order.account]
        del acct.orders[order.order_id]
        if not acct.orders:
            del self._accounts[order.account]
        elif acct.totals is not None:
            acct.totals[order.side].add(-order.quantity)

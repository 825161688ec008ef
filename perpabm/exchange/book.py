"""The limit order book of one perpetual swap: individual resting orders in price-time
priority.

The book keeps resting orders and matches against them; it knows nothing about
margin, balances or fees. The exchange's clearing core plans a taker's walk and
carries it out with the matching kernels (:mod:`perpabm.exchange.kernels.matching`),
which skip makers who can no longer pay and book the fills in the ledger; this class
is the readable wrapper a user or a test reads the book through, and its
:meth:`OrderBook.plan_market` / :meth:`OrderBook.apply` walk and apply a plan on the
book alone.

Units: prices are USD per base unit (positive floats), quantities are base units
(positive floats). Sides are the strings ``"buy"`` (bids) and ``"sell"`` (asks).

Floating-point bookkeeping is exact: level volumes, per-account open quantities and
:meth:`OrderBook.volume_within` are the correctly rounded *exact* sums of the resting
orders' quantities (``math.fsum`` of those quantities, taken when asked for, so that
adds, cancels and fills cost no running sums and the figures never drift).

The orders live in arrays (:mod:`perpabm.exchange.kernels.book` documents the
layout), each side kept in priority order, and every search, insert and walk is a
compiled kernel: a maker's requote or a taker's walk is one call, whatever the number
of orders it moves. The book also numbers the orders: ids count up from 1
(:meth:`OrderBook.new_order_id`).
"""

import math
import numbers
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np

from perpabm.exchange.kernels import book as arrays
from perpabm.exchange.kernels.status import Status
from perpabm.mechanics import REL_ROUNDING

__all__ = ["BUY", "DUST_REL_TOL", "SELL", "Fill", "OrderBook", "RestingOrder"]

BUY = "buy"
SELL = "sell"

DUST_REL_TOL = REL_ROUNDING
"""When a fill leaves a maker order with at most this fraction of its pre-fill quantity
(floating-point dust such as 1e-17), the order is removed instead of leaving the dust
resting (:data:`perpabm.mechanics.REL_ROUNDING`, the engine's one rounding tolerance)."""

_SIDE_CODE = {BUY: arrays.BUY_SIDE, SELL: arrays.SELL_SIDE}
_SIDES = (BUY, SELL)  # by side code
_INT64 = np.iinfo(np.int64)
_NO_ORDERS = np.empty(0, dtype=np.int64)
_NO_PRICES = np.empty(0)


class Fill(NamedTuple):
    """One planned execution against a resting (maker) order.

    ``price`` is in USD per base unit, ``quantity`` in base units.
    """

    order_id: int
    maker: int
    price: float
    quantity: float


class RestingOrder(NamedTuple):
    """A resting order as the book holds it: ``price`` USD per base unit, ``quantity``
    the base units still resting."""

    order_id: int
    account: int
    side: str
    price: float
    quantity: float


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
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    if not _INT64.min < value <= _INT64.max:
        raise ValueError(f"{name} must be an integer within int64, got {value!r}")
    return value


class OrderBook:
    """Limit order book of one perpetual: price levels with FIFO (time) priority.

    Each side is a queue of order slots in priority order (best price first, oldest
    first within a price), with an index of the resting orders by id; accounts' orders
    are found by scanning, which costs less than keeping an index for the few hundred
    orders of a simulated book. Empty levels do not exist: a level is its orders.
    """

    __slots__ = ("_index", "_meta", "_money")

    def __init__(self, capacity: int = 64) -> None:
        self._money, self._index, self._meta = arrays.empty(max(1, capacity))

    @property
    def arrays(self) -> arrays.BookArrays:
        """The book bundle as the kernels of :mod:`~perpabm.exchange.kernels.book` take it:
        (money, index, meta). For compiled callers; change it through kernels only."""
        return self._money, self._index, self._meta

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A copy of the book's state, for :meth:`restore`."""
        return self._money.copy(), self._index.copy(), self._meta.copy()

    def restore(self, snapshot: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Put the book back as it was at :meth:`snapshot`: into the same arrays while they
        have its size (so whoever holds :attr:`arrays` reads the book restored)."""
        money, index, meta = snapshot
        if money.shape == self._money.shape:
            np.copyto(self._money, money)
            np.copyto(self._index, index)
        else:  # grown since: its arrays were replaced anyway
            self._money, self._index = money.copy(), index.copy()
        np.copyto(self._meta, meta)

    def new_order_id(self) -> int:
        """The next order id (ids count up from 1, whoever posts the order)."""
        self._meta[arrays.LAST_ORDER_ID] += 1
        return int(self._meta[arrays.LAST_ORDER_ID])

    def reserve(self, n: int) -> None:
        """Make room for `n` more resting orders (the arrays grow by doubling)."""
        if self._meta[arrays.N_FREE] < n:
            self._money, self._index = arrays.grown(self._money, self._index, self._meta, n)

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
        self.reserve(1)
        if not arrays.add(self._money, self._index, self._meta, order_id, account,
                          _SIDE_CODE[side], price, quantity):
            raise ValueError(f"order_id {order_id} is already resting in the book")

    def cancel(self, order_id: int) -> tuple[int, str, float, float]:
        """Remove a resting order; return (account, side, price USD, remaining quantity).

        Raises ValueError naming ``order_id`` if it is not resting in the book.
        """
        slot = self._find(order_id)
        if slot < 0:
            raise ValueError(f"order_id {order_id!r} is not resting in the book")
        order = self._order(slot)
        arrays.remove(self._money, self._index, self._meta, slot)
        return order.account, order.side, order.price, order.quantity

    def cancel_account(self, account: int) -> list[tuple[int, str, float, float]]:
        """Cancel every resting order of ``account`` (e.g. on liquidation).

        Returns (order_id, side, price USD, remaining quantity) per cancelled order, in
        placement order; an account without resting orders gives ``[]``.
        """
        account = _check_int("account", account)
        cancelled = [(o.order_id, o.side, o.price, o.quantity)
                     for o in self.account_orders(account)]
        if cancelled:
            self.replace_account(account, _NO_ORDERS, _NO_ORDERS, _NO_PRICES, _NO_PRICES)
        return cancelled

    def replace_account(self, account: int, order_ids: np.ndarray, sides: np.ndarray,
                        prices: np.ndarray, quantities: np.ndarray) -> None:
        """Cancel every resting order of ``account`` and rest already-checked orders in
        their place, in the order given, each at the back of its level: the same as
        :meth:`cancel_account` and then :meth:`add` of each, in one call.

        ``order_ids`` (int64, not resting), ``sides`` (int64 side codes of
        :mod:`~perpabm.exchange.kernels.book`), ``prices`` USD and ``quantities`` base
        units (float64, finite and > 0) are arrays of one length.
        """
        self.reserve(len(order_ids))
        arrays.replace_account(self._money, self._index, self._meta, account, order_ids, sides,
                               prices, quantities)

    def open_quantity(self, account: int) -> tuple[float, float]:
        """Total resting (buy, sell) quantity of ``account`` in base units ((0, 0) if none)."""
        return arrays.open_quantity(self._money, self._index, self._meta, account)

    def orders_of(self, account: int) -> list[int]:
        """Ids of the resting orders of ``account``, in placement order."""
        slots = arrays.account_slots(self._index, self._meta, _check_int("account", account))
        return self._index[arrays.ORDER_ID, slots].tolist()

    def account_orders(self, account: int) -> list[RestingOrder]:
        """The resting orders of ``account``, in placement order."""
        slots = arrays.account_slots(self._index, self._meta, _check_int("account", account))
        return self._orders(slots)

    def orders(self, side: str) -> list[RestingOrder]:
        """The resting orders of ``side`` in priority order: best price first, oldest first
        within a price."""
        code = _SIDE_CODE[_check_side(side)]
        return self._orders(self._index[arrays.QUEUE + code, :self._meta[arrays.N_BUY + code]])

    def __len__(self) -> int:
        """Number of resting orders."""
        return int(self._meta[arrays.N_LIVE])

    def __contains__(self, order_id: object) -> bool:
        """Whether ``order_id`` is resting in the book."""
        return self._find(order_id) >= 0

    # ------------------------------------------------------------------ market data

    def best_bid(self) -> float | None:
        """Highest bid price (USD), or None if there are no bids."""
        if self._meta[arrays.N_BUY] == 0:
            return None
        return float(self._money[arrays.PRICE, self._index[arrays.QUEUE + arrays.BUY_SIDE, 0]])

    def best_ask(self) -> float | None:
        """Lowest ask price (USD), or None if there are no asks."""
        if self._meta[arrays.N_SELL] == 0:
            return None
        return float(self._money[arrays.PRICE, self._index[arrays.QUEUE + arrays.SELL_SIDE, 0]])

    def mid(self) -> float | None:
        """(best bid + best ask) / 2 in USD, or None if either side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return 0.5 * (bid + ask)

    def depth(self, side: str, levels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prices USD, volumes base units) of ``side``, from the best level outward.

        ``levels`` limits the number of levels returned (None = all). Bids come out in
        descending price order, asks ascending.
        """
        code = _SIDE_CODE[_check_side(side)]
        if levels is None:
            levels = int(self._meta[arrays.N_BUY + code])
        else:
            levels = _check_int("levels", levels)
            if levels < 0:
                raise ValueError(f"levels must be >= 0 or None, got {levels!r}")
        return arrays.depth(self._money, self._index, self._meta, code, levels)

    def volume_within(self, side: str, price_limit: float) -> float:
        """Resting volume (base units) on ``side`` at prices at least as good as
        ``price_limit`` (USD) for a taker hitting that side: bids priced >= the limit,
        asks priced <= the limit. The result is the correctly rounded exact sum.
        """
        code = _SIDE_CODE[_check_side(side)]
        price_limit = _check_positive("price_limit", price_limit)
        return arrays.volume_within(self._money, self._index, self._meta, code, price_limit)

    def near_mid(self, band: float, fallback_mid: float) -> tuple[float, float, float, float]:
        """(best bid, best ask, bid volume, ask volume): the best prices (USD; NaN for an
        empty side), and the resting volume (base units) on each side within `band` (a
        fraction) of the mid — the best prices' midpoint, or `fallback_mid` (USD) while a
        side is empty — as :meth:`volume_within` sums it."""
        band = _check_positive("band", band)
        fallback_mid = _check_positive("fallback_mid", fallback_mid)
        return arrays.near_mid(self._money, self._index, self._meta, band, fallback_mid)

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
        limit = math.nan if limit_price is None else _check_positive("limit_price", limit_price)
        exclude = (arrays.NO_ACCOUNT if exclude_account is None
                   else _check_int("exclude_account", exclude_account))
        excluded = (np.fromiter(exclude_orders, dtype=np.int64, count=len(exclude_orders))
                    if exclude_orders else _NO_ORDERS)
        slots, taken = arrays.plan_market(self._money, self._index, self._meta,
                                          _SIDE_CODE[taker_side], quantity, limit, exclude,
                                          excluded)
        return self.fills(slots, taken)

    def fills(self, slots: np.ndarray, quantities: np.ndarray) -> list[Fill]:
        """Fills of `quantities` (base units) against the orders resting in `slots` (as
        the matching kernels return them)."""
        index = self._index
        return list(map(Fill, index[arrays.ORDER_ID, slots].tolist(),
                        index[arrays.ACCOUNT, slots].tolist(),
                        self._money[arrays.PRICE, slots].tolist(), quantities.tolist()))

    def apply(self, fills: Sequence[Fill]) -> None:
        """Execute a plan from :meth:`plan_market` on the unchanged book.

        Reduces each maker order by its fill quantity and removes orders that are used
        up (including ones left with floating-point dust of at most ``DUST_REL_TOL`` of
        their pre-fill quantity). Empty levels vanish with their last order. Several
        fills on one order are allowed and summed.

        Raises RuntimeError, changing nothing, if the plan does not match the book: an
        order is gone, its maker account or price differs, a fill quantity is not finite
        and > 0, or the fills on an order exceed its remaining quantity.
        """
        if not fills:
            return
        status, k = arrays.apply(self._money, self._index, self._meta,
                                 *self.fill_arrays(fills), DUST_REL_TOL)
        if status:
            self.raise_for(Status(status), fills, k)

    @staticmethod
    def fill_arrays(fills: Sequence[Fill]) -> tuple[np.ndarray, ...]:
        """(order ids, makers, prices, quantities) of `fills` as arrays, for the matching
        kernels; RuntimeError if they are not numbers of the right kinds."""
        order_ids, makers, prices, quantities = zip(*fills, strict=True)
        for k, q in enumerate(quantities):
            if not (type(q) is float or (isinstance(q, numbers.Real)
                                         and not isinstance(q, bool))):
                raise RuntimeError(
                    f"bad plan: fill {k} quantity must be finite and > 0, got {q!r}")
        try:
            return (np.array(order_ids, dtype=np.int64), np.array(makers, dtype=np.int64),
                    np.array(prices, dtype=float), np.array(quantities, dtype=float))
        except (TypeError, ValueError, OverflowError) as exc:
            raise RuntimeError(f"stale plan: fills do not name resting orders ({exc})") from exc

    def raise_for(self, status: Status, fills: Sequence[Fill], k: int) -> None:
        """RuntimeError for what :func:`~perpabm.exchange.kernels.book.apply` found at fill
        `k` (`status`)."""
        fill = fills[k]
        if status == Status.STALE_MISSING:
            raise RuntimeError(
                f"stale plan: fill {k} order_id {fill.order_id!r} is not resting in the book")
        if status == Status.STALE_MISMATCH:
            order = self._order(self._find(fill.order_id))
            raise RuntimeError(
                f"stale plan: fill {k} order_id {fill.order_id} has maker/price "
                f"{fill.maker!r}/{fill.price!r}, book has {order.account}/{order.price}")
        if status == Status.BAD_FILL:
            raise RuntimeError(
                f"bad plan: fill {k} quantity must be finite and > 0, got {fill.quantity!r}")
        order = self._order(self._find(fill.order_id))
        taken = math.fsum(f.quantity for f in fills if f.order_id == fill.order_id)
        raise RuntimeError(
            f"stale plan: fills on order_id {fill.order_id} total quantity {taken!r}, "
            f"exceeding its remaining quantity {order.quantity!r}")

    # ------------------------------------------------------------------ internals

    def _find(self, order_id: object) -> int:
        """The slot of resting order `order_id`, or −1 (also for what is no order id)."""
        if isinstance(order_id, bool) or not isinstance(order_id, numbers.Integral):
            return -1
        if not _INT64.min <= int(order_id) <= _INT64.max:
            return -1
        return arrays.find(self._index, self._meta, int(order_id))

    def _order(self, slot: int) -> RestingOrder:
        return self._orders(np.array([slot]))[0]

    def _orders(self, slots: np.ndarray) -> list[RestingOrder]:
        index, money = self._index, self._money
        return list(map(RestingOrder, index[arrays.ORDER_ID, slots].tolist(),
                        index[arrays.ACCOUNT, slots].tolist(),
                        [_SIDES[code] for code in index[arrays.SIDE, slots].tolist()],
                        money[arrays.PRICE, slots].tolist(),
                        money[arrays.QUANTITY, slots].tolist()))

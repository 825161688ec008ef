"""The exchange: one perpetual's validated public API — accounts, orders, funding, the
venue's mark price and the liquidation waterfall.

:class:`Exchange` checks every argument, then acts on its clearing core
(:class:`~perpabm.exchange.clearing.Clearing`), which it shares with its
:class:`~perpabm.exchange.liquidation.Liquidator` and with nothing else.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from perpabm.config import ExchangeConfig
from perpabm.errors import MarginError
from perpabm.exchange import pricing
from perpabm.exchange.book import BUY, SELL, Fill, OrderBook
from perpabm.exchange.clearing import (
    CLOCK_TOLERANCE_SECONDS,
    INVARIANT_RTOL,
    BackstopHandler,
    Clearing,
    InvariantError,
)
from perpabm.exchange.events import Event, events_frame
from perpabm.exchange.insurance import InsuranceFund
from perpabm.exchange.kernels import matching, pairwise, quotes
from perpabm.exchange.kernels.book import BUY_SIDE, SELL_SIDE
from perpabm.exchange.kernels.margin import check, taker_equity_change, worst_position
from perpabm.exchange.kernels.market import LAST_PRICE, MARK
from perpabm.exchange.kernels.status import Status
from perpabm.exchange.ledger import Ledger
from perpabm.exchange.liquidation import Liquidator
from perpabm.mechanics import REL_ROUNDING

__all__ = ["Exchange", "InvariantError"]


def _finite_positive(field: str, value: float) -> float:
    if type(value) is float and 0.0 < value < math.inf:  # the common case, checked fast
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{field} must be a number; got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field} must be a finite number > 0; got {value!r}")
    return value


def _float_vector(field: str, values: ArrayLike) -> NDArray[np.float64]:
    """`values` as a flat float64 array (a flat float64 array as it is)."""
    if type(values) is np.ndarray and values.dtype == np.float64 and values.ndim == 1:
        return values
    try:
        return np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be numbers; got {values!r}") from None


def _int_vector(field: str, values: ArrayLike) -> NDArray[np.int64]:
    """`values` as a flat int64 array of whole numbers (a flat int64 array as it is)."""
    if type(values) is np.ndarray and values.dtype == np.int64 and values.ndim == 1:
        return values
    array = np.asarray(values)
    if array.ndim != 1 or (array.dtype.kind not in "iu" and len(array)):
        raise ValueError(f"{field} must be a flat array of whole numbers; got {values!r}")
    return array.astype(np.int64)


class Exchange:
    """One linear USD-margined perpetual with a conserved ledger.

    Account state (collateral, signed size, average entry price) lives in numpy
    arrays indexed by account id; margin checks and the liquidation scan are
    array operations over all accounts. The venue's price rules run in
    :meth:`update_index` (the mark from an oracle index by ``config.mark_rule``,
    then funding when due); a caller who sets the mark itself uses
    :meth:`update_mark`. Either runs the liquidation waterfall of
    ``config.waterfall`` to completion (see :class:`~perpabm.ExchangeConfig`).

    Money: deposits enter, withdrawals leave; in between, the sum of collateral,
    unrealised P&L, the insurance fund and collected fees never changes
    (:meth:`conservation_error`). Until the first :meth:`update_mark`, the mark
    is ``mark_price`` if given, else the first trade's price. Time is in units of
    ``time_unit_minutes`` minutes (the model's step).

    ``config.debug`` runs the same code and checks the invariants after every
    operation (after every order of a batch).
    """

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        mark_price: float | None = None,
        rng: np.random.Generator | int | None = None,
        capacity: int = 1024,
        time_unit_minutes: float = 1.0,
    ) -> None:
        if not isinstance(config, ExchangeConfig):
            raise TypeError(f"config must be an ExchangeConfig; got {type(config).__name__}")
        if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
            raise ValueError(f"capacity must be a whole number of accounts ≥ 1; got {capacity!r}")
        mark = None if mark_price is None else _finite_positive("mark_price", mark_price)
        self.time_unit_minutes = _finite_positive("time_unit_minutes", time_unit_minutes)
        self.core = Clearing(config, mark, np.random.default_rng(rng), int(capacity),
                             self.time_unit_minutes)
        self._liquidator = Liquidator(self.core)
        # The core's parts, the same objects: read them; change them through the methods
        # here. `rng` is the exchange's random stream (the "random" ADL rule draws from it).
        self.config: ExchangeConfig = config
        self.rng: np.random.Generator = self.core.rng
        self.ledger: Ledger = self.core.ledger
        self.book: OrderBook = self.core.book
        self.fund: InsuranceFund = self.core.fund
        # The venue's mark and funding rules (update_index): the EMA of the perp's basis,
        # the premium summed since the last funding, and when funding is next due.
        self._ema_basis = 0.0
        self._ema_weight = (math.nan, math.nan)  # (elapsed time, its EMA weight)
        self._premium_sum, self._premium_count = 0.0, 0
        self._funding_every = max(1, round(config.funding_interval_minutes
                                           / self.time_unit_minutes))
        self._funding_due = float(self._funding_every)
        # The time of the last mark update (None before the first): update_index makes no
        # new mark within config.mark_interval_seconds of it.
        self._mark_updated_at: float | None = None

    # ------------------------------------------------------------------ the core's figures

    @property
    def money_in(self) -> float:
        """Money that entered the exchange (deposits and the fund's start), USD."""
        return self.core.money_in

    @property
    def fees_collected(self) -> float:
        """Taker and maker fees on fills through the book, USD."""
        return self.core.fees_collected

    @property
    def time(self) -> float:
        """The time of the last mark update, in units of ``time_unit_minutes`` (an
        :meth:`update_index` call too soon for a new mark leaves it)."""
        return self.core.time

    @property
    def last_price(self) -> float | None:
        """The last price traded (USD), or None before the first trade."""
        return self.core.last_price

    @property
    def backstop_account(self) -> int | None:
        """The account registered as the backstop, if any."""
        return self.core.backstop_account

    # ------------------------------------------------------------------ accounts

    def open_account(self, collateral: float, *, adl_exempt: bool = False) -> int:
        """Open an account funded with `collateral` USD (≥ 0); returns its id.

        ``adl_exempt`` accounts (a venue's own vault, say) are auto-deleveraged
        only when no other opposite position is left.
        """
        collateral = self._amount("collateral", collateral, allow_zero=True)
        if not isinstance(adl_exempt, bool | np.bool_):
            raise ValueError(f"adl_exempt must be true or false; got {adl_exempt!r}")
        acct = self.ledger.open(collateral, adl_exempt=bool(adl_exempt))
        self.core.money_in += collateral
        self.core.after_operation()
        return acct

    def deposit(self, acct: int, amount: float) -> None:
        """Add `amount` USD of collateral to an account."""
        self._check_account(acct)
        amount = self._amount("amount", amount)
        self.ledger.credit(acct, amount)
        self.core.money_in += amount
        self.core.after_operation()

    def withdraw(self, acct: int, amount: float) -> None:
        """Take `amount` USD out; the account must keep its initial margin."""
        self._check_account(acct)
        amount = self._amount("amount", amount)
        if self.ledger.size[acct] == 0.0 and self.book.open_quantity(acct) == (0.0, 0.0):
            free = float(self.ledger.collateral[acct])
        else:
            free = self.equity(acct) - self.initial_margin(acct) - self._order_margin(acct)
        if amount > free:
            raise MarginError(
                f"withdraw amount {amount:g} exceeds account {acct}'s free margin {free:g}"
            )
        self.ledger.credit(acct, -amount)
        self.core.money_in -= amount
        self.core.after_operation()

    def close_account(self, acct: int) -> float:
        """Withdraw everything from a flat account with no orders and close it; returns USD paid."""
        self._check_account(acct)
        if self.ledger.size[acct] != 0.0:
            raise ValueError(f"account {acct} has an open position; close it before the account")
        self.book.cancel_account(acct)
        paid = self.ledger.close(acct)
        self.core.money_in -= paid
        self.core.after_operation()
        return paid

    def register_backstop(self, acct: int, handler: BackstopHandler) -> None:
        """Make `acct` the backstop: ``handler(offer)`` decides how much of each
        :class:`~perpabm.exchange.clearing.BackstopOffer` it takes, returning a real
        number in [0, |offer.size|] (base units). A handler that raises or returns
        anything else fails the mark update that called it, which is undone
        (:meth:`update_mark`)."""
        self._check_account(acct)
        if not callable(handler):
            raise ValueError("handler must be callable as handler(offer) -> quantity")
        self.core.backstop_account = acct
        self.core.backstop_handler = handler

    # ------------------------------------------------------------------ state

    @property
    def n_accounts(self) -> int:
        """Accounts opened so far (open or closed): ids are 0 … n_accounts − 1."""
        return self.ledger.n

    @property
    def mark_price(self) -> float | None:
        """The mark price (USD), or None before there is one."""
        return self.core.mark

    @property
    def insurance_fund(self) -> float:
        """The insurance fund's balance, USD: under ``fund_takeover``, its account's equity
        at the mark (its cash and the mark-to-market of the positions it holds)."""
        return self.fund.balance

    @property
    def insurance_fund_account(self) -> int | None:
        """The insurance fund's margin account (``fund_takeover``: account 0), or None."""
        return self.core.fund.account

    @property
    def insurance_fund_position(self) -> float:
        """The position the insurance fund holds (base units, signed; 0 if none)."""
        return self.core.fund.position

    def deposit_insurance_fund(self, amount: float) -> Event:
        """Add `amount` USD to the insurance fund from outside (the venue topping it up, as
        the model does under ``insurance_fund_ratio``): money in, like a deposit, logged
        as a "fund_deposit" event whose amount is `amount`, so that the events replay to
        the fund's balance. Returns the event."""
        amount = self._amount("amount", amount)
        core = self.core
        core.fund.pay(-amount, core.time)
        core.money_in += amount
        core.log("fund_deposit", -1, -1, 0.0, math.nan, math.nan, amount, liquidation=-1)
        core.after_operation()
        return core.events[-1]

    def unwind_insurance_fund(self, minutes: float | None = None) -> list[Event]:
        """The insurance fund offloads part of what it holds through the book
        (``fund_takeover``): 1 − (1 − ``fund_unwind_rate``)^t of it, t the `minutes` since
        the last unwind (default: one time unit), no further than
        ``fund_unwind_slippage`` from the mark, with no fee. The model calls it once a
        tick with the tick's minutes. Returns its "fund_unwind" events (none without a
        fund that holds positions)."""
        core = self.core
        start = len(core.events)
        minutes = self.time_unit_minutes if minutes is None else _finite_positive(
            "minutes", minutes)
        self._liquidator.unwind_fund(minutes)
        core.after_operation()
        return core.events[start:]

    def position(self, acct: int) -> float:
        """Signed position size of an account, base units."""
        self._check_account(acct, allow_closed=True)
        return float(self.ledger.size[acct])

    def entry_price(self, acct: int) -> float:
        self._check_account(acct, allow_closed=True)
        return float(self.ledger.entry_price[acct])

    def collateral(self, acct: int) -> float:
        """Collateral (deposits plus realised P&L, fees and funding), USD."""
        self._check_account(acct, allow_closed=True)
        return float(self.ledger.collateral[acct])

    def equity(self, acct: int) -> float:
        """Collateral plus unrealised P&L at the mark, USD."""
        self._check_account(acct, allow_closed=True)
        return self.core.equity(acct)

    def maintenance_margin(self, acct: int) -> float:
        """Maintenance margin of an account's position at the mark, USD."""
        return float(self.core.maintenance_margin(
            abs(self.position(acct)) * self.core.reference_price()))

    def initial_margin(self, acct: int) -> float:
        """Initial margin of an account's position at the mark, USD."""
        return abs(self.position(acct)) * self.core.reference_price() / self.config.max_leverage

    def bankruptcy_price(self, acct: int) -> float:
        """Price at which the account's equity is zero (NaN when flat), USD."""
        self._check_account(acct, allow_closed=True)
        return self.core.bankruptcy_price(acct)

    def accounts(self) -> pd.DataFrame:
        """A snapshot of every account: collateral, size, entry price, equity, margins, flags."""
        led = self.ledger
        mark = self.core.reference_price()
        equity = led.equity(mark)
        notional = np.abs(led.view("size")) * mark
        return pd.DataFrame({
            "collateral": led.view("collateral").copy(),
            "size": led.view("size").copy(),
            "entry_price": led.view("entry_price").copy(),
            "equity": equity,
            "maintenance_margin": self.core.maintenance_margin(notional),
            "is_open": led.view("is_open").copy(),
            "adl_exempt": led.view("adl_exempt").copy(),
        }).rename_axis("account")

    @property
    def events(self) -> pd.DataFrame:
        """Every liquidation, takeover, fund flow, ADL fill and funding round so far."""
        return events_frame(self.core.events)

    @property
    def event_log(self) -> tuple[Event, ...]:
        """The rows of :attr:`events` as :class:`Event` tuples, oldest first (a copy of
        the log, without building a DataFrame)."""
        return tuple(self.core.events)

    @property
    def bad_debt(self) -> float:
        """Deficits no stage could cover, left on flat accounts (USD, ≥ 0): the sum of
        the ``bad_debt`` events' amounts."""
        return self._liquidator.total_bad_debt

    @property
    def open_interest(self) -> float:
        """Sum of long sizes, base units (equal to the sum of short sizes)."""
        # numpy's sum of the longs, compiled: the same float, without the mask's arrays.
        return pairwise.positive_sum(self.ledger.size, self.ledger.n)

    # ------------------------------------------------------------------ invariants

    def conservation_error(self) -> float:
        """Money in the system minus money that entered it, USD (0 when conserved).

        In the system: all collateral, all unrealised P&L at the mark, the
        insurance fund and the fees collected.
        """
        return self.core.conservation_error()

    def open_interest_imbalance(self) -> float:
        """Sum of all signed sizes (long OI − short OI), base units (0 when balanced)."""
        return self.core.open_interest_imbalance()

    def check_invariants(self, rtol: float = INVARIANT_RTOL) -> None:
        """Raise InvariantError if money or open interest is not conserved to `rtol`."""
        self.core.check_invariants(rtol)

    # ------------------------------------------------------------------ trading

    def fill(self, buyer: int, seller: int, quantity: float, price: float) -> None:
        """A bilateral trade of `quantity` at `price`, with no fee.

        Each side that increases its exposure must keep its initial margin at
        the mark, or the trade is rejected with MarginError and nothing changes.
        """
        self._check_account(buyer, "buyer")
        self._check_account(seller, "seller")
        if buyer == seller:
            raise ValueError(f"buyer and seller must differ; both are account {buyer}")
        quantity = _finite_positive("quantity", quantity)
        price = _finite_positive("price", price)
        core = self.core
        mark = price if core.mark is None else core.mark
        for acct, delta in ((buyer, quantity), (seller, -quantity)):
            self._require_margin(acct, mark, f"trade of {delta:+g} at {price:g}", delta=delta,
                                 equity_change=delta * (mark - price))
        core.set_mark_if_unset(price)
        self.ledger.trade(buyer, quantity, price)
        self.ledger.trade(seller, -quantity, price)
        core.market[LAST_PRICE] = price
        core.after_operation()

    def market_order(
        self, acct: int, quantity: float, limit_price: float | None = None
    ) -> list[Fill]:
        """Buy (quantity > 0) or sell (< 0) against the book, best price first.

        Fills stop at `limit_price` (if given) or when the book runs out; own
        resting orders are skipped. The taker pays ``taker_fee``, makers
        ``maker_fee``, on filled notional. Rejected with MarginError, and
        nothing changes, if the result would breach initial margin.
        """
        self._check_account(acct)
        side, qty = self._side("quantity", quantity)
        if limit_price is not None:
            limit_price = _finite_positive("limit_price", limit_price)
        core, book = self.core, self.book
        best = book.best_ask() if side == BUY else book.best_bid()
        if best is None or (limit_price is not None and (
                best > limit_price if side == BUY else best < limit_price)):
            return []  # nothing within reach: the usual fate of a crowd of takers in a thin book
        status, ids, booked, _ = matching.market_order(
            book.arrays, self.ledger.arrays, core.market, core.terms, acct,
            BUY_SIDE if side == BUY else SELL_SIDE, qty,
            math.nan if limit_price is None else limit_price)
        if status == Status.NO_FILLS:
            return []
        order_ids, makers = ids.tolist()
        fills = list(map(Fill, order_ids, makers, *booked.tolist()))
        if status == Status.BELOW_MARGIN:
            mark = fills[0].price if core.mark is None else core.mark
            self._require_taker_margin(acct, side, fills, mark)  # raises the MarginError
            raise InvariantError(f"account {acct}: the matching kernel and the engine's "
                                 f"margin rule disagree on a market order")
        core.after_operation()
        return fills

    def market_orders(self, accounts: ArrayLike, quantities: ArrayLike,
                      limit_prices: ArrayLike) -> NDArray[np.float64]:
        """:meth:`market_order` for each of `accounts` in turn, in one call: buy
        (quantity > 0) or sell signed `quantities` (base units), each up to its
        `limit_prices` entry (USD).

        An order initial margin cannot cover is skipped, where :meth:`market_order`
        would raise MarginError for it, and the next goes on. Returns the signed
        quantity each order filled (0.0 where nothing did). All orders are checked
        before any is placed; with ``config.debug`` the same kernel places them one
        order at a time, with the invariants checked after each.
        """
        accounts, quantities, limit_prices = self._order_arrays(accounts, quantities,
                                                                limit_prices)
        self._refuse_fund_account(accounts)
        core, led = self.core, self.ledger
        if not self.config.debug:
            status, k, filled = matching.market_orders(
                self.book.arrays, led.arrays, core.market, core.terms, led.n, accounts,
                quantities, limit_prices)
            self._raise_for_order(status, k, accounts, quantities, limit_prices)
            return filled
        status, k = matching.check_orders(led.arrays[1], led.n, accounts, quantities,
                                          limit_prices)
        self._raise_for_order(status, k, accounts, quantities, limit_prices)
        filled = np.zeros(len(accounts))
        for k in range(len(accounts)):
            filled[k] = matching.market_orders(
                self.book.arrays, led.arrays, core.market, core.terms, led.n,
                accounts[k: k + 1], quantities[k: k + 1], limit_prices[k: k + 1])[2][0]
            core.after_operation()
        return filled

    @staticmethod
    def _order_arrays(accounts: ArrayLike, quantities: ArrayLike, limit_prices: ArrayLike
                      ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`market_orders`' arguments as int64 and float64 arrays of one length."""
        accounts = _int_vector("accounts", accounts)
        quantities = _float_vector("quantities", quantities)
        limit_prices = _float_vector("limit_prices", limit_prices)
        if not len(accounts) == len(quantities) == len(limit_prices):
            raise ValueError(f"accounts, quantities and limit_prices must have the same length; "
                             f"got {len(accounts)}, {len(quantities)} and {len(limit_prices)}")
        return accounts, quantities, limit_prices

    def _raise_for_order(self, status: int, k: int, accounts: NDArray[np.int64],
                         quantities: NDArray[np.float64],
                         limit_prices: NDArray[np.float64]) -> None:
        """The one-line error for order `k` of a batch that
        :func:`~perpabm.exchange.kernels.matching.check_orders` found a problem with
        (`status`; nothing if OK)."""
        if not status:
            return
        self._raise_for_account(status, k, accounts)
        if status == Status.BAD_QUANTITY:
            raise ValueError(f"quantities must be finite and non-zero (+ buy, − sell); "
                             f"got {quantities[k]} for order {k}")
        if status == Status.BAD_PRICE:
            raise ValueError(f"limit_prices must be finite numbers > 0; "
                             f"got {limit_prices[k]} for order {k}")

    def _raise_for_account(self, status: int, k: int, accounts: NDArray[np.int64]) -> None:
        """The one-line error for `accounts[k]` if
        :func:`~perpabm.exchange.kernels.accounts.check_accounts` found it is not an
        open account (`status`; nothing otherwise)."""
        if status == Status.NOT_AN_ACCOUNT:
            raise ValueError(f"accounts: {accounts[k]} is not an account "
                             f"(ids are 0..{self.ledger.n - 1})")
        if status == Status.CLOSED_ACCOUNT:
            raise ValueError(f"accounts: account {accounts[k]} is closed")

    def place_limit(
        self, acct: int, quantity: float, price: float, *, post_only: bool = False
    ) -> int | None:
        """Post a limit order to buy (quantity > 0) or sell (< 0) at `price`.

        A marketable order first trades against the book up to `price` as a
        taker (or is rejected if `post_only`); the rest rests. Returns the
        resting order's id, or None if nothing rests. Resting orders must be
        covered by initial margin at the mark as if they all filled.
        """
        self._check_account(acct)
        side, qty = self._side("quantity", quantity)
        price = _finite_positive("price", price)
        core, book = self.core, self.book
        best = book.best_ask() if side == BUY else book.best_bid()
        crosses = best is not None and (price >= best if side == BUY else price <= best)
        if crosses and post_only:
            raise ValueError(f"post_only order at {price:g} would cross the book at {best:g}")
        fills, stale = core.plan(side, qty, price, acct) if crosses else ([], [])
        rest = qty - math.fsum(f.quantity for f in fills)
        if rest <= REL_ROUNDING * qty:
            rest = 0.0
        mark = (fills[0].price if fills else price) if core.mark is None else core.mark
        self._require_taker_margin(acct, side, fills, mark, rest=rest, rest_price=price)
        core.set_mark_if_unset(mark)
        if fills:
            core.execute(acct, 1.0 if side == BUY else -1.0, fills, self.config.taker_fee, stale)
        order_id = None
        if rest > 0.0:
            order_id = book.new_order_id()
            book.add(order_id, acct, side, price, rest)
        core.after_operation()
        return order_id

    def replace_quotes(self, acct: int, quantities: ArrayLike,
                       prices: ArrayLike) -> list[int | None]:
        """Cancel all of `acct`'s resting orders, then post a ladder of post-only limit
        orders — buy (quantity > 0) or sell (< 0) `quantities` (base units) at `prices`
        (USD) — in the order given.

        Each order is what :meth:`place_limit` with ``post_only=True`` would do with
        it, in turn: an order that would cross the book, or that initial margin
        (with all the orders posted before it) cannot cover, is skipped instead of
        raising, as a market maker's requote leaves out a level it cannot post.
        Returns each order's id, None where it was skipped. Checked once for the
        whole ladder, so a maker's requote costs one call.
        """
        self._check_account(acct)
        quantities = _float_vector("quantities", quantities)
        prices = _float_vector("prices", prices)
        if len(quantities) != len(prices):
            raise ValueError(f"quantities and prices must have the same length; got "
                             f"{len(quantities)} and {len(prices)}")
        ids = self.replace_quotes_of(np.array([acct]), np.array([len(quantities)]),
                                     quantities, prices)
        return [None if i < 0 else i for i in ids.tolist()]

    def replace_quotes_of(self, accounts: ArrayLike, counts: ArrayLike, quantities: ArrayLike,
                          prices: ArrayLike) -> NDArray[np.int64]:
        """:meth:`replace_quotes` for each of `accounts` in turn, in one call: account k's
        ladder is the next ``counts[k]`` of `quantities` (base units, + buy, − sell) and
        `prices` (USD); a count of 0 cancels the account's quotes.

        All ladders are checked before any is posted. Returns every order's id in
        turn, −1 where it was skipped.
        """
        accounts = _int_vector("accounts", accounts)
        self._refuse_fund_account(accounts)
        counts = _int_vector("counts", counts)
        quantities = _float_vector("quantities", quantities)
        prices = _float_vector("prices", prices)
        core, led, book = self.core, self.ledger, self.book
        book.reserve(len(quantities))
        status, k, ids = quotes.requote_many(
            book.arrays, led.arrays, core.market, self.config.max_leverage, led.n, accounts,
            counts, quantities, prices)
        if status:
            self._raise_for_account(status, k, accounts)
            if status == Status.BAD_COUNTS:
                raise ValueError(f"counts must be one whole number ≥ 0 per account, adding up "
                                 f"to the {len(quantities)} quantities and prices; got {counts!r}")
            if status == Status.BAD_QUANTITY:
                raise ValueError("quantities must be finite and non-zero (+ buy, − sell)")
            if status == Status.BAD_PRICE:
                raise ValueError("prices must be finite numbers > 0")
        core.after_operation()
        return ids

    def cancel(self, order_id: int) -> float:
        """Cancel a resting order; returns the quantity that was still resting."""
        if isinstance(order_id, bool) or not isinstance(order_id, int | np.integer):
            raise ValueError(f"order_id must be an order id (int); got {order_id!r}")
        _, _, _, remaining = self.book.cancel(order_id)
        return remaining

    def apply_funding(self, rate: float) -> float:
        """Pay funding at `rate` (fraction of notional at the mark): longs pay shorts if > 0.

        Zero-sum: each position pays ``rate · size · mark``. Returns the total
        paid by longs (USD). A payment can leave an account below its maintenance
        margin — the insurance fund's own, when it holds positions, among them — so the
        waterfall then runs at the unchanged mark, as after any mark update (all or
        nothing, as :meth:`update_mark` says: if it fails, the payments stand).
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number; got {rate!r}")
        core = self.core
        mark = core.reference_price()
        size = self.ledger.view("size")
        payments = rate * size * mark
        self.ledger.credit_all(-payments)
        paid_by_longs = float(payments[size > 0].sum())
        core.log("funding", -1, -1, 0.0, mark, math.nan, paid_by_longs, liquidation=-1,
                 score=rate)
        self._liquidator.run(core.market.item(MARK))
        core.after_operation()
        return paid_by_longs

    # ------------------------------------------------------------------ mark and waterfall

    def update_mark(self, price: float, time: float | None = None) -> list[Event]:
        """Set the mark price and run the liquidation waterfall to completion.

        `time` defaults to the previous time plus one. Returns the events this
        call produced (also appended to :attr:`events`).

        All or nothing: if code the waterfall calls fails — the backstop handler
        raises or returns what is not a quantity in [0, |offer.size|], or a custom
        ADL rule raises or scores NaN — the exchange is put back as it was before
        this call (mark, time, accounts, book, fund, events, random stream) and the
        error propagates, with a note saying so. Its invariants hold, and the same
        update can be made again once the handler or rule is fixed. Whatever the
        handler or rule changed outside the exchange is not undone.
        """
        price = _finite_positive("price", price)
        core = self.core
        previous_time, previous_mark = core.time, core.market.item(MARK)
        core.time = self._next_time(time)
        core.market[MARK] = price
        start = len(core.events)
        try:
            self._liquidator.run(previous_mark)  # undoes its own changes if it raises
        except BaseException as exc:
            core.time, core.market[MARK] = previous_time, previous_mark
            exc.add_note(f"The exchange was restored to its state before the mark update "
                         f"to {price:g}: mark {self.mark_price}, time {core.time:g}.")
            raise
        self._mark_updated_at = core.time
        core.after_operation()
        return core.events[start:]

    def _next_time(self, time: float | None) -> float:
        """The time of an update: `time`, checked to be a finite number not before the
        last mark update's, or that time plus one unit if None."""
        core = self.core
        if time is None:
            return core.time + 1.0
        if type(time) is float and core.time <= time < math.inf:  # the model's, checked fast
            return time
        if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
            raise ValueError(f"time must be a finite number; got {time!r}")
        if time < core.time:
            raise ValueError(f"time must not go back: {time!r} is before {core.time:g}")
        return float(time)

    def _too_soon_for_a_mark(self, time: float | None) -> bool:
        """Whether an update at `time` comes less than ``config.mark_interval_seconds``
        after the last mark update (to :data:`CLOCK_TOLERANCE_SECONDS`): the venue has
        no new mark yet. Never before the first mark update, nor with no interval.

        Worked example: an interval of 3 s, time units of a minute, the last mark at
        12: an update at 12 + 2/60 is 2 s later, too soon; one at 12 + 3/60 is 3 s later
        (to rounding), the next mark."""
        interval = self.config.mark_interval_seconds
        if interval == 0.0 or self._mark_updated_at is None:
            return False
        elapsed = self.core.in_seconds(self._next_time(time) - self._mark_updated_at)
        return elapsed < interval - CLOCK_TOLERANCE_SECONDS

    def update_index(self, index: float, time: float | None = None) -> list[Event]:
        """Take the oracle's `index` (USD) and run the venue's price rules: the mark by
        ``config.mark_rule``, then :meth:`update_mark` (the liquidation waterfall), then
        funding when it is due.

        The mark (:func:`~perpabm.exchange.pricing.mark_price`) is the index, the index
        plus an EMA of the perp's basis (its book mid over the index, the EMA's time
        constant ``config.mark_ema_minutes``), or the median of that fair price, the mid
        and the last trade. Each call adds the premium mark / index − 1 to the funding
        interval's mean; every ``config.funding_interval_minutes`` (rounded to whole
        units of time, at least one) the mean premium, clamped to ±``config.funding_cap``,
        is paid (:meth:`apply_funding`). `time` is in units of ``time_unit_minutes``
        minutes and defaults to the previous time plus one. Returns the events of this
        call (the waterfall's, then the funding round's).

        The venue computes its mark on its own clock, every ``config.mark_interval_seconds``
        (Hyperliquid: every 3 s, as its validators publish the oracle price): a call less
        than that after the last mark update changes nothing — no mark, no waterfall, no
        premium sample, no funding — and returns no events, so that a model ticking
        faster than the venue does not liquidate on marks the venue never had. The next
        mark's basis EMA spans the time since the last mark; :attr:`time` stays the last
        mark's, and funding falls due on mark updates.

        All or nothing, as :meth:`update_mark`: if the waterfall fails, the basis EMA
        is put back too.
        """
        index = _finite_positive("index", index)
        if self._too_soon_for_a_mark(time):
            return []
        cfg, core = self.config, self.core
        previous_ema_basis = self._ema_basis
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            elapsed = (core.time + 1.0 if time is None else time) - core.time
            if elapsed != self._ema_weight[0]:
                self._ema_weight = (elapsed, pricing.ema_weight(
                    elapsed * self.time_unit_minutes, cfg.mark_ema_minutes))
            basis = 0.5 * (bid + ask) / index - 1.0
            self._ema_basis += self._ema_weight[1] * (basis - self._ema_basis)
        mark = pricing.mark_price(cfg.mark_rule, index, self._ema_basis, bid, ask,
                                  core.last_price)
        start = len(core.events)
        try:
            self.update_mark(mark, time)
        except BaseException:
            self._ema_basis = previous_ema_basis
            raise
        self._premium_sum += mark / index - 1.0
        self._premium_count += 1
        if core.time >= self._funding_due:
            self.apply_funding(pricing.funding_rate(self._premium_sum / self._premium_count,
                                                    cfg.funding_cap))
            self._premium_sum, self._premium_count = 0.0, 0
            self._funding_due = (math.floor(core.time / self._funding_every) + 1.0) * (
                self._funding_every)
        return core.events[start:]

    def liquidatable(self) -> NDArray[np.int64]:
        """Ids of accounts whose equity at the mark is below maintenance margin."""
        return self.core.liquidatable()

    # ------------------------------------------------------------------ checks

    def _amount(self, field: str, value: float, allow_zero: bool = False) -> float:
        if type(value) is float and 0.0 < value < math.inf:  # the common case, checked fast
            return value
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
            raise ValueError(f"{field} must be a number; got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            bound = "≥ 0" if allow_zero else "> 0"
            raise ValueError(f"{field} must be a finite number {bound}; got {value!r}")
        return value

    def _check_account(self, acct: int, field: str = "account", allow_closed: bool = False) -> None:
        if type(acct) is not int and (isinstance(acct, bool)
                                      or not isinstance(acct, int | np.integer)):
            raise ValueError(f"{field} must be an account id (int); got {acct!r}")
        if not 0 <= acct < self.ledger.n:
            raise ValueError(f"{field} {acct} is not an account (ids are 0..{self.ledger.n - 1})")
        if not allow_closed and not self.ledger.is_open[acct]:
            raise ValueError(f"{field} {acct} is closed")
        if not allow_closed and acct == self.core.fund.account:  # read it, do not act on it
            raise ValueError(f"{field} {acct} is the insurance fund's account, the venue's")

    def _refuse_fund_account(self, accounts: NDArray[np.int64]) -> None:
        """ValueError if a batch acts on the insurance fund's account (``fund_takeover``)."""
        fund = self.core.fund.account
        if fund is not None and bool((accounts == fund).any()):
            raise ValueError(f"accounts: {fund} is the insurance fund's account, the venue's")

    def _side(self, field: str, quantity: float) -> tuple[str, float]:
        if type(quantity) is not float and (isinstance(quantity, bool) or not isinstance(
            quantity, int | float | np.floating | np.integer
        )):
            raise ValueError(f"{field} must be a number; got {quantity!r}")
        quantity = float(quantity)
        if not math.isfinite(quantity) or quantity == 0:
            raise ValueError(f"{field} must be finite and non-zero (+ buy, − sell); got {quantity}")
        return (BUY, quantity) if quantity > 0 else (SELL, -quantity)

    # ------------------------------------------------------------------ the margin rule

    def _order_margin(self, acct: int) -> float:
        """Initial margin reserved for resting orders beyond the position's own."""
        size = float(self.ledger.size[acct])
        beyond = worst_position(size, *self.book.open_quantity(acct)) - abs(size)
        return beyond * self.core.reference_price() / self.config.max_leverage

    def _require_margin(
        self,
        acct: int,
        mark: float,
        action: str,
        *,
        delta: float = 0.0,
        equity_change: float = 0.0,
        add_buys: float = 0.0,
        add_sells: float = 0.0,
    ) -> None:
        """MarginError unless `acct` keeps initial margin after the action, or lowers its
        risk (:func:`~perpabm.exchange.kernels.margin.check`, the rule the kernels apply).

        Risk is the worst position the account could reach if all its resting
        orders on one side filled: max(|size + buys|, |size − sells|). An action
        that does not raise it (a reducing trade, say) is allowed unless it
        would push equity at `mark` below zero (a close far through the mark);
        otherwise equity after the action's `equity_change` must cover that
        worst position's notional / max_leverage.
        """
        led = self.ledger
        allowed, after, equity, required = check(
            led.size[acct], led.entry_price[acct], led.collateral[acct],
            *self.book.open_quantity(acct), float(mark), self.config.max_leverage,
            float(delta), float(equity_change), float(add_buys), float(add_sells))
        if allowed:
            return
        before = worst_position(led.size[acct], *self.book.open_quantity(acct))
        if after <= before:
            raise MarginError(
                f"account {acct}: {action} at mark {mark:g} would leave equity "
                f"{equity:.6g} USD < 0"
            )
        raise MarginError(
            f"account {acct}: {action} needs initial margin {required:.6g} USD at mark "
            f"{mark:g} with all its orders filled; equity would be {equity:.6g} USD "
            f"(max_leverage {self.config.max_leverage:g})"
        )

    def _require_taker_margin(
        self, acct: int, side: str, fills: list[Fill], mark: float,
        rest: float = 0.0, rest_price: float = math.nan,
    ) -> None:
        """Margin check for planned taker `fills` plus a `rest` to be left resting."""
        sign = 1.0 if side == BUY else -1.0
        filled = math.fsum([f.quantity for f in fills])
        notional = math.fsum([f.quantity * f.price for f in fills])
        equity_change = taker_equity_change(sign, filled, notional, float(mark),
                                            self.config.taker_fee, rest, rest_price)
        what = "order" if rest else "market order"
        self._require_margin(
            acct, mark, f"{what} of {sign * (filled + rest):+g}", delta=sign * filled,
            equity_change=equity_change, add_buys=rest if side == BUY else 0.0,
            add_sells=rest if side == SELL else 0.0,
        )

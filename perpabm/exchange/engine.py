"""The exchange: accounts, order book, fees, funding, mark price and the liquidation waterfall."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from perpabm import mechanics
from perpabm.config import ExchangeConfig
from perpabm.errors import MarginError
from perpabm.exchange import margin, matching, pairwise, pricing, quotes
from perpabm.exchange.book import BUY, DUST_REL_TOL, SELL, Fill, OrderBook
from perpabm.exchange.book_arrays import BUY_SIDE, SELL_SIDE
from perpabm.exchange.events import Event, events_frame
from perpabm.exchange.insurance import InsuranceFund
from perpabm.exchange.ledger import CLOSED_ACCOUNT, NOT_AN_ACCOUNT, Ledger


class BackstopOffer(NamedTuple):
    """A position offered to the backstop during a liquidation.

    ``size`` is the liquidated account's signed position (base units) that the
    backstop would take on with the same sign, at ``price`` (USD); ``equity`` and
    ``maintenance_margin`` are the liquidated account's, at ``mark_price``.
    """

    account: int
    size: float
    price: float
    mark_price: float
    equity: float
    maintenance_margin: float


BackstopHandler = Callable[[BackstopOffer], float]
"""Returns the quantity (base units, 0 ≤ q ≤ |offer.size|) the backstop takes over.
It is called inside :meth:`Exchange.update_mark` and must not trade itself."""


class InvariantError(AssertionError):
    """Money or open interest is not conserved: always a bug in the engine."""


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
    array operations over all accounts. The mark price is set by the caller with
    :meth:`update_mark`, which runs the liquidation waterfall of
    ``config.waterfall`` to completion (see :class:`~perpabm.ExchangeConfig`).

    Money: deposits enter, withdrawals leave; in between, the sum of collateral,
    unrealised P&L, the insurance fund and collected fees never changes
    (:meth:`conservation_error`). Until the first :meth:`update_mark`, the mark
    is ``mark_price`` if given, else the first trade's price.
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
        self.config = config
        self.time_unit_minutes = _finite_positive("time_unit_minutes", time_unit_minutes)
        self.rng = np.random.default_rng(rng)
        self.ledger = Ledger(config.mm_tiers, capacity)
        self.book = OrderBook()
        self.fund = InsuranceFund(
            config.insurance_fund, config.fund_drawdown_trigger, config.fund_drawdown_window
        )
        self.money_in = config.insurance_fund
        self.fees_collected = 0.0
        self.time = 0.0
        self.last_price: float | None = None
        self._mark = None if mark_price is None else _finite_positive("mark_price", mark_price)
        _, self._mmrs, self._cums = mechanics.tier_table(config.mm_tiers)
        self._events: list[Event] = []
        self._order_ids = 0
        self._episodes = 0
        # The venue's mark and funding rules (update_index): the EMA of the perp's basis,
        # the premium summed since the last funding, and when funding is next due.
        self._ema_basis = 0.0
        self._ema_weight = (math.nan, math.nan)  # (elapsed time, its EMA weight)
        self._premium_sum, self._premium_count = 0.0, 0
        self._funding_every = max(1, round(config.funding_interval_minutes
                                           / self.time_unit_minutes))
        self._funding_due = float(self._funding_every)
        self.backstop_account: int | None = None
        self._backstop_handler: BackstopHandler | None = None
        from perpabm.exchange.liquidation import Liquidator

        self._liquidator = Liquidator(self)

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
        self.money_in += collateral
        self._after_operation()
        return acct

    def deposit(self, acct: int, amount: float) -> None:
        """Add `amount` USD of collateral to an account."""
        self._check_account(acct)
        amount = self._amount("amount", amount)
        self.ledger.credit(acct, amount)
        self.money_in += amount
        self._after_operation()

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
        self.money_in -= amount
        self._after_operation()

    def close_account(self, acct: int) -> float:
        """Withdraw everything from a flat account with no orders and close it; returns USD paid."""
        self._check_account(acct)
        if self.ledger.size[acct] != 0.0:
            raise ValueError(f"account {acct} has an open position; close it before the account")
        self.book.cancel_account(acct)
        paid = self.ledger.close(acct)
        self.money_in -= paid
        self._after_operation()
        return paid

    def register_backstop(self, acct: int, handler: BackstopHandler) -> None:
        """Make `acct` the backstop: `handler` decides how much of each offer it takes."""
        self._check_account(acct)
        if not callable(handler):
            raise ValueError("handler must be callable as handler(offer) -> quantity")
        self.backstop_account = acct
        self._backstop_handler = handler

    # ------------------------------------------------------------------ state

    @property
    def n_accounts(self) -> int:
        return self.ledger.n

    @property
    def mark_price(self) -> float | None:
        return self._mark

    @property
    def insurance_fund(self) -> float:
        """The insurance fund's balance, USD."""
        return self.fund.balance

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
        led = self.ledger
        mark = self._reference_price()
        return float(led.collateral[acct] + led.size[acct] * (mark - led.entry_price[acct]))

    def maintenance_margin(self, acct: int) -> float:
        """Maintenance margin of an account's position at the mark, USD."""
        return float(self._mm(abs(self.position(acct)) * self._reference_price()))

    def initial_margin(self, acct: int) -> float:
        """Initial margin of an account's position at the mark, USD."""
        return abs(self.position(acct)) * self._reference_price() / self.config.max_leverage

    def bankruptcy_price(self, acct: int) -> float:
        """Price at which the account's equity is zero (NaN when flat), USD."""
        led = self.ledger
        return float(mechanics.bankruptcy_price(
            led.size[acct], led.entry_price[acct], led.collateral[acct]))

    def accounts(self) -> pd.DataFrame:
        """A snapshot of every account: collateral, size, entry price, equity, margins, flags."""
        led = self.ledger
        mark = self._reference_price()
        equity = led.equity(mark)
        notional = np.abs(led.view("size")) * mark
        return pd.DataFrame({
            "collateral": led.view("collateral").copy(),
            "size": led.view("size").copy(),
            "entry_price": led.view("entry_price").copy(),
            "equity": equity,
            "maintenance_margin": self._mm(notional),
            "is_open": led.view("is_open").copy(),
            "adl_exempt": led.view("adl_exempt").copy(),
        }).rename_axis("account")

    @property
    def events(self) -> pd.DataFrame:
        """Every liquidation, takeover, fund flow, ADL fill and funding round so far."""
        return events_frame(self._events)

    @property
    def event_log(self) -> tuple[Event, ...]:
        """The rows of :attr:`events` as :class:`Event` tuples, oldest first (a copy of
        the log, without building a DataFrame)."""
        return tuple(self._events)

    @property
    def bad_debt(self) -> float:
        """Deficits no stage could cover, left on flat accounts (USD, ≥ 0): the sum of
        the ``bad_debt`` events' amounts."""
        return float(sum(self._liquidator.bad_debt.values()))

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
        led = self.ledger
        mark = self._mark if self._mark is not None else 0.0
        held = (
            led.view("collateral").sum()
            + (led.view("size") * (mark - led.view("entry_price"))).sum()
            + self.fund.balance
            + self.fees_collected
        )
        return float(held - self.money_in)

    def open_interest_imbalance(self) -> float:
        """Sum of all signed sizes (long OI − short OI), base units (0 when balanced)."""
        return float(self.ledger.view("size").sum())

    def check_invariants(self, rtol: float = 1e-9) -> None:
        """Raise InvariantError if money or open interest is not conserved to `rtol`."""
        scale = max(abs(self.money_in), 1.0)
        error = self.conservation_error()
        if abs(error) > rtol * scale:
            raise InvariantError(
                f"money not conserved: error {error:.6g} USD on {self.money_in:.6g} USD in"
            )
        size = self.ledger.view("size")
        # Rounding leaves dust of order ε × the positions held, which outlives them when
        # they close; so the scale is at least the units all the money in buys at the
        # mark (a floor in the asset's own units: 1 unit of a 0.0001 USD coin is not 1 BTC).
        floor = abs(self.money_in) / self._mark if self._mark else 1.0
        oi_scale = max(float(np.abs(size).sum()), floor, 1e-300)
        imbalance = self.open_interest_imbalance()
        if abs(imbalance) > rtol * oi_scale:
            raise InvariantError(f"open interest unbalanced: long − short = {imbalance:.6g}")

    def _after_operation(self) -> None:
        if self.config.debug:
            self.check_invariants()

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
        mark = price if self._mark is None else self._mark
        for acct, delta in ((buyer, quantity), (seller, -quantity)):
            self._require_margin(acct, mark, f"trade of {delta:+g} at {price:g}", delta=delta,
                                 equity_change=delta * (mark - price))
        self._set_mark_if_unset(price)
        self.ledger.trade(buyer, quantity, price)
        self.ledger.trade(seller, -quantity, price)
        self.last_price = price
        self._after_operation()

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
        led, book, cfg = self.ledger, self.book, self.config
        best = book.best_ask() if side == BUY else book.best_bid()
        if best is None or (limit_price is not None and (
                best > limit_price if side == BUY else best < limit_price)):
            return []  # nothing within reach: the usual fate of a crowd of takers in a thin book
        outcome, ids, booked, notional, deficit = matching.market_order(
            *book.arrays, led.size, led.entry_price, led.collateral,
            led.changed, acct, BUY_SIDE if side == BUY else SELL_SIDE, qty,
            math.nan if limit_price is None else limit_price,
            math.nan if self._mark is None else self._mark, cfg.taker_fee, cfg.maker_fee,
            cfg.max_leverage, DUST_REL_TOL)
        if outcome == matching.NO_FILLS:
            return []
        order_ids, makers = ids.tolist()
        fills = list(map(Fill, order_ids, makers, *booked.tolist()))
        mark = fills[0].price if self._mark is None else self._mark
        if outcome == matching.BELOW_MARGIN:
            self._require_taker_margin(acct, side, fills, mark)  # raises the MarginError
            raise InvariantError(f"account {acct}: the matching kernel and the engine's "
                                 f"margin rule disagree on a market order")
        self._set_mark_if_unset(mark)
        self._booked(acct, makers, notional, cfg.taker_fee, fills[-1].price, deficit)
        self._after_operation()
        return fills

    def market_orders(self, accounts: ArrayLike, quantities: ArrayLike,
                      limit_prices: ArrayLike) -> NDArray[np.float64]:
        """:meth:`market_order` for each of `accounts` in turn, in one call: buy
        (quantity > 0) or sell signed `quantities` (base units), each up to its
        `limit_prices` entry (USD).

        An order initial margin cannot cover is skipped, where :meth:`market_order`
        would raise MarginError for it, and the next goes on. Returns the signed
        quantity each order filled (0.0 where nothing did). All orders are checked
        before any is placed; with ``config.debug`` they are placed one by one through
        :meth:`market_order`, so the invariants are checked after each.
        """
        accounts, quantities, limit_prices = self._order_arrays(accounts, quantities,
                                                                limit_prices)
        led, book, cfg = self.ledger, self.book, self.config
        if cfg.debug:
            self._raise_for_order(*matching.check_orders(accounts, quantities, limit_prices,
                                                         led.is_open, led.n), accounts,
                                  quantities, limit_prices)
            return np.array([self._filled(*order) for order in zip(
                accounts.tolist(), quantities.tolist(), limit_prices.tolist(), strict=True)])
        problem, k, filled, deficits, mark, fees, last_price = matching.market_orders(
            *book.arrays, led.size, led.entry_price, led.collateral, led.changed, led.is_open,
            led.n, accounts, quantities, limit_prices,
            math.nan if self._mark is None else self._mark, self.fees_collected, cfg.taker_fee,
            cfg.maker_fee, cfg.max_leverage, DUST_REL_TOL)
        self._raise_for_order(problem, k, accounts, quantities, limit_prices)
        self.fees_collected = fees
        if not math.isnan(last_price):
            self._set_mark_if_unset(mark)
            self.last_price = last_price
        if len(deficits):
            led.flat_deficits.update(deficits.tolist())
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

    def _raise_for_order(self, problem: int, k: int, accounts: NDArray[np.int64],
                         quantities: NDArray[np.float64],
                         limit_prices: NDArray[np.float64]) -> None:
        """The one-line error for order `k` of a batch that :func:`matching.check_orders`
        found a `problem` with (none if 0)."""
        self._raise_for_account(problem, k, accounts)
        if problem == matching.BAD_QUANTITY:
            raise ValueError(f"quantities must be finite and non-zero (+ buy, − sell); "
                             f"got {quantities[k]} for order {k}")
        if problem == matching.BAD_LIMIT_PRICE:
            raise ValueError(f"limit_prices must be finite numbers > 0; "
                             f"got {limit_prices[k]} for order {k}")

    def _raise_for_account(self, problem: int, k: int, accounts: NDArray[np.int64]) -> None:
        """The one-line error for `accounts[k]` if :func:`ledger.check_accounts` found a
        `problem` with it (nothing otherwise)."""
        if problem == NOT_AN_ACCOUNT:
            raise ValueError(f"accounts: {accounts[k]} is not an account "
                             f"(ids are 0..{self.ledger.n - 1})")
        if problem == CLOSED_ACCOUNT:
            raise ValueError(f"accounts: account {accounts[k]} is closed")

    def _filled(self, acct: int, quantity: float, limit_price: float) -> float:
        """The signed quantity a :meth:`market_order` filled; 0.0 if margin rejected it."""
        try:
            fills = self.market_order(acct, quantity, limit_price=limit_price)
        except MarginError:
            return 0.0
        return math.copysign(math.fsum(f.quantity for f in fills), quantity) if fills else 0.0

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
        best = self.book.best_ask() if side == BUY else self.book.best_bid()
        crosses = best is not None and (price >= best if side == BUY else price <= best)
        if crosses and post_only:
            raise ValueError(f"post_only order at {price:g} would cross the book at {best:g}")
        fills, stale = self._plan(side, qty, price, acct) if crosses else ([], [])
        rest = qty - math.fsum(f.quantity for f in fills)
        if rest <= 1e-12 * qty:
            rest = 0.0
        mark = (fills[0].price if fills else price) if self._mark is None else self._mark
        self._require_taker_margin(acct, side, fills, mark, rest=rest, rest_price=price)
        self._set_mark_if_unset(mark)
        if fills:
            self._execute(acct, 1.0 if side == BUY else -1.0, fills, self.config.taker_fee, stale)
        order_id = None
        if rest > 0.0:
            self._order_ids += 1
            order_id = self._order_ids
            self.book.add(order_id, acct, side, price, rest)
        self._after_operation()
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
        counts = _int_vector("counts", counts)
        quantities = _float_vector("quantities", quantities)
        prices = _float_vector("prices", prices)
        led, book = self.ledger, self.book
        book.reserve(len(quantities))
        problem, k, ids, mark, self._order_ids = quotes.requote_many(
            *book.arrays, accounts, counts, quantities, prices, led.size, led.entry_price,
            led.collateral, led.is_open[: led.n], math.nan if self._mark is None else self._mark,
            self.config.max_leverage, self._order_ids)
        self._raise_for_account(problem, k, accounts)
        if problem == quotes.BAD_COUNTS:
            raise ValueError(f"counts must be one whole number ≥ 0 per account, adding up to "
                             f"the {len(quantities)} quantities and prices; got {counts!r}")
        if problem == quotes.BAD_QUANTITY:
            raise ValueError("quantities must be finite and non-zero (+ buy, − sell)")
        if problem == quotes.BAD_PRICE:
            raise ValueError("prices must be finite numbers > 0")
        self._mark = None if math.isnan(mark) else mark
        self._after_operation()
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
        paid by longs (USD).
        """
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise ValueError(f"rate must be a finite number; got {rate!r}")
        mark = self._reference_price()
        size = self.ledger.view("size")
        payments = rate * size * mark
        self.ledger.credit_all(-payments)
        paid_by_longs = float(payments[size > 0].sum())
        self._log("funding", -1, -1, 0.0, mark, math.nan, paid_by_longs, liquidation=-1)
        self._after_operation()
        return paid_by_longs

    # ------------------------------------------------------------------ mark and waterfall

    def update_mark(self, price: float, time: float | None = None) -> list[Event]:
        """Set the mark price and run the liquidation waterfall to completion.

        `time` defaults to the previous time plus one. Returns the events this
        call produced (also appended to :attr:`events`).
        """
        price = _finite_positive("price", price)
        if time is not None:
            if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(
                time
            ):
                raise ValueError(f"time must be a finite number; got {time!r}")
            if time < self.time:
                raise ValueError(f"time must not go back: {time!r} is before {self.time:g}")
            self.time = float(time)
        else:
            self.time += 1.0
        self._mark = price
        start = len(self._events)
        self._liquidator.run()
        self._after_operation()
        return self._events[start:]

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
        """
        index = _finite_positive("index", index)
        cfg = self.config
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            elapsed = (self.time + 1.0 if time is None else time) - self.time
            if elapsed != self._ema_weight[0]:
                self._ema_weight = (elapsed, pricing.ema_weight(
                    elapsed * self.time_unit_minutes, cfg.mark_ema_minutes))
            basis = 0.5 * (bid + ask) / index - 1.0
            self._ema_basis += self._ema_weight[1] * (basis - self._ema_basis)
        mark = pricing.mark_price(cfg.mark_rule, index, self._ema_basis, bid, ask,
                                  self.last_price)
        start = len(self._events)
        self.update_mark(mark, time)
        self._premium_sum += mark / index - 1.0
        self._premium_count += 1
        if self.time >= self._funding_due:
            self.apply_funding(pricing.funding_rate(self._premium_sum / self._premium_count,
                                                    cfg.funding_cap))
            self._premium_sum, self._premium_count = 0.0, 0
            self._funding_due = (math.floor(self.time / self._funding_every) + 1.0) * (
                self._funding_every)
        return self._events[start:]

    def liquidatable(self) -> NDArray[np.intp]:
        """Ids of accounts whose equity at the mark is below maintenance margin."""
        led = self.ledger
        mark = self._reference_price()
        near = led.near_liquidation(mark)
        if len(near) == 0:
            return near
        size = led.size[near]
        equity = led.collateral[near] + size * (mark - led.entry_price[near])
        return near[(equity < self._mm(np.abs(size) * mark)) & (size != 0.0)]

    # ------------------------------------------------------------------ internals

    def _mm(self, notional: NDArray | float) -> NDArray | float:
        """Tiered maintenance margin: max_k(notional·mmr_k − cum_k), convex in notional."""
        if len(self._mmrs) == 1:
            return notional * self._mmrs[0]
        return np.max(np.multiply.outer(notional, self._mmrs) - self._cums, axis=-1)

    def _reference_price(self) -> float:
        if self._mark is None:
            raise ValueError("no mark price yet: call update_mark(price) or trade first")
        return self._mark

    def _set_mark_if_unset(self, price: float) -> None:
        if self._mark is None:
            self._mark = price

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

    def _side(self, field: str, quantity: float) -> tuple[str, float]:
        if type(quantity) is not float and (isinstance(quantity, bool) or not isinstance(
            quantity, int | float | np.floating | np.integer
        )):
            raise ValueError(f"{field} must be a number; got {quantity!r}")
        quantity = float(quantity)
        if not math.isfinite(quantity) or quantity == 0:
            raise ValueError(f"{field} must be finite and non-zero (+ buy, − sell); got {quantity}")
        return (BUY, quantity) if quantity > 0 else (SELL, -quantity)

    def _order_margin(self, acct: int) -> float:
        """Initial margin reserved for resting orders beyond the position's own."""
        size = float(self.ledger.size[acct])
        beyond = margin.worst_position(size, *self.book.open_quantity(acct)) - abs(size)
        return beyond * self._reference_price() / self.config.max_leverage

    def _plan(
        self, side: str, quantity: float, limit_price: float | None, exclude_account: int
    ) -> tuple[list[Fill], list[int]]:
        """The book's plan for a taker, skipping resting orders whose makers could not
        pay for their fills; returns (fills, ids of those stale orders).

        A stale order (a bid left above a falling mark, say) would leave its maker
        below zero equity at the mark. Venues cancel orders their owners can no
        longer margin: :meth:`_execute` cancels them when the plan is carried out.
        Nothing changes here.
        """
        led, book = self.ledger, self.book
        slots, taken, stale = matching.plan(
            *book.arrays, led.size, led.entry_price, led.collateral,
            BUY_SIDE if side == BUY else SELL_SIDE, quantity,
            math.nan if limit_price is None else limit_price, exclude_account,
            math.nan if self._mark is None else self._mark, self.config.maker_fee)
        return book.fills(slots, taken), stale.tolist()

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
        """MarginError unless `acct` keeps initial margin after the action, or lowers its risk.

        Risk is the worst position the account could reach if all its resting
        orders on one side filled: max(|size + buys|, |size − sells|). An action
        that does not raise it (a reducing trade, say) is allowed unless it
        would push equity at `mark` below zero (a close far through the mark);
        otherwise equity after the action's `equity_change` must cover that
        worst position's notional / max_leverage.
        """
        led = self.ledger
        allowed, after, equity, required = margin.check(
            led.size[acct], led.entry_price[acct], led.collateral[acct],
            *self.book.open_quantity(acct), float(mark), self.config.max_leverage,
            float(delta), float(equity_change), float(add_buys), float(add_sells))
        if allowed:
            return
        before = margin.worst_position(led.size[acct], *self.book.open_quantity(acct))
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
        equity_change = sign * (filled * mark - notional) - self.config.taker_fee * notional
        # A resting order priced through the mark loses that gap the moment it fills.
        equity_change -= rest * max(0.0, sign * (rest_price - mark)) if rest else 0.0
        what = "order" if rest else "market order"
        self._require_margin(
            acct, mark, f"{what} of {sign * (filled + rest):+g}", delta=sign * filled,
            equity_change=equity_change, add_buys=rest if side == BUY else 0.0,
            add_sells=rest if side == SELL else 0.0,
        )

    def _execute(
        self, acct: int, sign: float, fills: list[Fill], taker_fee: float,
        stale: list[int] = (),
    ) -> None:
        """Apply planned fills: taker `acct` trades sign·quantity with each maker.

        `stale` orders, skipped by the plan (see :meth:`_plan`), are cancelled first.

        The taker's side is booked as one trade at the fills' average price
        (the same mark-to-market as fill by fill); a total within rounding of
        the taker's whole position closes it exactly, so no dust is left.
        """
        for order_id in stale:
            self.book.cancel(order_id)
        if not fills:
            return
        led, book, cfg = self.ledger, self.book, self.config
        order_ids, makers, prices, quantities = book.fill_arrays(fills)
        problem, k, notional, deficit = matching.execute(
            *book.arrays, led.size, led.entry_price, led.collateral,
            led.changed, acct, sign, order_ids, makers, prices, quantities, taker_fee,
            cfg.maker_fee, DUST_REL_TOL)
        if problem:
            book.raise_for(problem, fills, k)
        self._booked(acct, makers.tolist(), notional, taker_fee, fills[-1].price, deficit)

    def _booked(self, acct: int, makers: list[int], notional: float, taker_fee: float,
                last_price: float, deficit: bool) -> None:
        """Book-keeping after fills of `notional` USD between taker `acct` and `makers`:
        accounts left flat with a deficit (if the kernel saw any) to settle, the fees,
        the last price."""
        led = self.ledger
        if deficit:
            for account in (*makers, acct):
                led._changed_to(account, led.size[account], led.collateral[account])
        self.fees_collected += (taker_fee + self.config.maker_fee) * notional
        self.last_price = last_price

    def _log(
        self,
        kind: str,
        account: int,
        counterparty: int,
        quantity: float,
        price: float,
        bankruptcy_price: float,
        amount: float,
        *,
        liquidation: int,
        score: float = math.nan,
        rank: int = -1,
        leverage: float = math.nan,
    ) -> None:
        self._events.append(Event(
            self.time, kind, liquidation, int(account), int(counterparty), float(quantity),
            float(price), float(bankruptcy_price), float(self._mark if self._mark else math.nan),
            float(amount), float(score), int(rank), self.fund.balance, float(leverage),
        ))

"""The clearing core: the state an exchange keeps and the few operations on it that both
its public API and its liquidation waterfall need.

:class:`~perpabm.exchange.engine.Exchange` (the validated, user-facing API) and
:class:`~perpabm.exchange.liquidation.Liquidator` (the waterfall) both stand on one
:class:`Clearing` and on nothing of each other. The core holds the ledger, the order
book, the insurance fund, the venue's running figures (mark, last price, fees), the
clock and the event log, and offers: reading an account's equity, margin and
bankruptcy price; planning a taker's walk of the book and carrying it out; moving
money between the fund and an account; logging an event; and the invariants. It
checks no arguments — its callers do — and makes no decision a venue's rules make.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from perpabm import adl, mechanics
from perpabm.config import ExchangeConfig
from perpabm.config.market import SECONDS_PER_MINUTE
from perpabm.exchange.book import BUY, Fill, OrderBook
from perpabm.exchange.events import Event
from perpabm.exchange.insurance import InsuranceFund
from perpabm.exchange.kernels import market as market_arrays
from perpabm.exchange.kernels import matching
from perpabm.exchange.kernels.accounts import LedgerArrays
from perpabm.exchange.kernels.book import BUY_SIDE, SELL_SIDE
from perpabm.exchange.kernels.market import FEES, LAST_PRICE, MARK
from perpabm.exchange.kernels.status import Status
from perpabm.exchange.ledger import Ledger

INVARIANT_RTOL = 1e-9
"""Rounding noise the invariants tolerate, relative to the money in (and to the open
interest): sums over thousands of accounts carry that much, a bug far more."""


CLOCK_TOLERANCE_SECONDS = 1e-9
"""How far apart two of the exchange's float times may be, in seconds, and still be the
same moment: a time built from ticks (12 + 17/60 of a one-minute unit) carries rounding
of about 1e-16 of a unit, 1e-14 s; the venue's intervals are seconds."""


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
"""Returns the quantity (base units, 0 ≤ q ≤ |offer.size|) the backstop takes over: a
real number (a float, an int or a numpy scalar; not a bool, a string or an array). It
is called while the waterfall runs and must not trade itself. If it raises, or returns
anything else (TypeError) or a quantity outside that range (ValueError), the mark
update that called it is undone and the error propagates
(:meth:`~perpabm.exchange.engine.Exchange.update_mark`)."""


class Snapshot(NamedTuple):
    """A copy of a clearing core's state (:meth:`Clearing.snapshot`), to put it back."""

    ledger: tuple[LedgerArrays, int]
    book: tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]
    fund: tuple[float, tuple[tuple[float, float], ...]]
    market: NDArray[np.float64]
    n_events: int
    episodes: int
    time: float
    money_in: float
    rng_state: dict[str, Any]


class InvariantError(AssertionError):
    """Money or open interest is not conserved: always a bug in the engine."""


class Clearing:
    """The state of one exchange and the operations its API and its waterfall share.

    Money: deposits enter (``money_in``), withdrawals leave; in between, the sum of
    collateral, unrealised P&L at the mark, the insurance fund and the fees collected
    never changes (:meth:`conservation_error`). Time is in units of
    `time_unit_minutes` minutes.
    """

    def __init__(self, config: ExchangeConfig, mark_price: float | None,
                 rng: np.random.Generator, capacity: int,
                 time_unit_minutes: float = 1.0) -> None:
        self.config = config
        self.rng = rng
        self.time_unit_minutes = time_unit_minutes
        self.adl_rule = adl.resolve_rule(config.adl_rule, config.adl_rules)
        self.ledger = Ledger(config.mm_tiers, capacity)
        self.book = OrderBook()
        # The venue's running figures, which the kernels update in place.
        self.market = market_arrays.empty(mark_price)
        # The fund's clock is the exchange's time unit; its window is set in minutes. A fund
        # that takes positions over holds its money in an account of the ledger (id 0).
        holds = config.fund_takeover
        self.fund = InsuranceFund(config.insurance_fund, config.fund_drawdown_trigger,
                                  config.fund_drawdown_window / time_unit_minutes,
                                  ledger=self.ledger if holds else None,
                                  market=self.market if holds else None)
        self.terms: market_arrays.Terms = (config.taker_fee, config.maker_fee,
                                           config.max_leverage)
        self.money_in = config.insurance_fund
        self.time = 0.0
        self.events: list[Event] = []
        self.episodes = 0  # liquidation episodes so far; each gets the next number
        self.backstop_account: int | None = None
        self.backstop_handler: BackstopHandler | None = None

    # ------------------------------------------------------------------ figures

    @property
    def mark(self) -> float | None:
        """The mark price (USD), or None before there is one."""
        mark = self.market.item(MARK)
        return None if mark != mark else mark  # NaN: none yet

    @property
    def last_price(self) -> float | None:
        """The last price traded in the book (USD), or None before the first trade."""
        price = self.market.item(LAST_PRICE)
        return None if price != price else price  # NaN: no trade yet

    @property
    def fees_collected(self) -> float:
        """Taker and maker fees on every fill through the book so far, USD."""
        return self.market.item(FEES)

    def reference_price(self) -> float:
        """The mark; ValueError before there is one."""
        mark = self.market.item(MARK)
        if mark != mark:  # NaN: none yet
            raise ValueError("no mark price yet: call update_mark(price) or trade first")
        return mark

    def set_mark_if_unset(self, price: float) -> None:
        """The first trade's price is the mark until the venue sets one."""
        if math.isnan(self.market[MARK]):
            self.market[MARK] = price

    def equity(self, acct: int) -> float:
        """Collateral plus unrealised P&L at the mark (:func:`mechanics.equity_at`), USD."""
        led = self.ledger
        return float(mechanics.equity_at(led.collateral[acct], led.size[acct],
                                         led.entry_price[acct], self.reference_price()))

    def maintenance_margin(self, notional: NDArray[np.float64] | float
                           ) -> NDArray[np.float64] | float:
        """Tiered maintenance margin of `notional` USD (:func:`mechanics.margin_from_table`
        under the venue's tiers), USD."""
        return mechanics.margin_from_table(notional, self.ledger.mmrs, self.ledger.cums)

    def bankruptcy_price(self, acct: int) -> float:
        """Price at which the account's equity is zero (NaN when flat), USD."""
        led = self.ledger
        return float(mechanics.bankruptcy_price(
            led.size[acct], led.entry_price[acct], led.collateral[acct]))

    def liquidatable(self) -> NDArray[np.int64]:
        """Ids of accounts whose equity at the mark is below maintenance margin."""
        led = self.ledger
        mark = self.reference_price()
        near = led.near_liquidation(mark)
        if len(near) == 0:
            return near
        size = led.size[near]
        equity = mechanics.equity_at(led.collateral[near], size, led.entry_price[near], mark)
        return near[(equity < self.maintenance_margin(np.abs(size) * mark)) & (size != 0.0)]

    def in_seconds(self, units: float) -> float:
        """A span of the exchange's time `units` in seconds: units × ``time_unit_minutes``
        × 60 (half a unit of one minute is 30 s)."""
        return units * self.time_unit_minutes * SECONDS_PER_MINUTE

    # ------------------------------------------------------------------ trading

    def plan(self, side: str, quantity: float, limit_price: float | None,
             exclude_account: int) -> tuple[list[Fill], list[int]]:
        """The book's plan for a taker, skipping resting orders whose makers could not
        pay for their fills; returns (fills, ids of those stale orders).

        A stale order (a bid left above a falling mark, say) would leave its maker
        below zero equity at the mark. Venues cancel orders their owners can no
        longer margin: :meth:`execute` cancels them when the plan is carried out.
        Nothing changes here.
        """
        slots, taken, stale = matching.plan(
            self.book.arrays, self.ledger.arrays, BUY_SIDE if side == BUY else SELL_SIDE,
            quantity, math.nan if limit_price is None else limit_price, exclude_account,
            self.market[MARK], self.config.maker_fee)
        return self.book.fills(slots, taken), stale.tolist()

    def execute(self, acct: int, sign: float, fills: Sequence[Fill], taker_fee: float,
                stale: Sequence[int] = ()) -> None:
        """Carry out planned fills: taker `acct` trades sign·quantity with each maker
        (:func:`~perpabm.exchange.kernels.matching.execute`), after the `stale` orders
        the plan skipped are cancelled."""
        for order_id in stale:
            self.book.cancel(order_id)
        if not fills:
            return
        order_ids, makers, prices, quantities = self.book.fill_arrays(fills)
        status, k, _ = matching.execute(
            self.book.arrays, self.ledger.arrays, self.market, acct, sign, order_ids, makers,
            prices, quantities, taker_fee, self.config.maker_fee)
        if status:
            self.book.raise_for(Status(status), fills, k)

    # ------------------------------------------------------------------ money

    def fund_transfer(self, acct: int, amount: float) -> None:
        """Move `amount` USD from the insurance fund to the account (negative: to the fund)."""
        if amount == 0.0:
            return
        self.fund.pay(amount, self.time)
        self.ledger.credit(acct, amount)

    # ------------------------------------------------------------------ events

    def new_episode(self) -> int:
        """The number of a new liquidation episode."""
        self.episodes += 1
        return self.episodes

    def log(self, kind: str, account: int, counterparty: int, quantity: float, price: float,
            bankruptcy_price: float, amount: float, *, liquidation: int,
            score: float = math.nan, rank: int = -1, leverage: float = math.nan) -> None:
        """Append an event (see :class:`~perpabm.exchange.events.Event`), stamped with the
        time, the mark and the fund's balance after it."""
        self.events.append(Event(
            self.time, kind, liquidation, int(account), int(counterparty), float(quantity),
            float(price), float(bankruptcy_price), self.market.item(MARK), float(amount),
            float(score), int(rank), self.fund.balance, float(leverage),
        ))

    # ------------------------------------------------------------------ invariants

    def conservation_error(self) -> float:
        """Money in the system minus money that entered it, USD (0 when conserved).

        In the system: all collateral, all unrealised P&L at the mark, the insurance
        fund's cash outside the ledger (a fund that holds positions keeps its money in an
        account of the ledger, counted with the others) and the fees collected.
        """
        led = self.ledger
        mark = self.mark if self.mark is not None else 0.0
        held = (
            led.view("collateral").sum()
            + mechanics.pnl_at(led.view("size"), led.view("entry_price"), mark).sum()
            + self.fund.cash
            + self.market[FEES]
        )
        return float(held - self.money_in)

    def open_interest_imbalance(self) -> float:
        """Sum of all signed sizes (long OI − short OI), base units (0 when balanced)."""
        return float(self.ledger.view("size").sum())

    def check_invariants(self, rtol: float = INVARIANT_RTOL) -> None:
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
        mark = self.mark
        floor = abs(self.money_in) / mark if mark else 1.0
        oi_scale = max(float(np.abs(size).sum()), floor, np.finfo(np.float64).tiny)
        imbalance = self.open_interest_imbalance()
        if abs(imbalance) > rtol * oi_scale:
            raise InvariantError(f"open interest unbalanced: long − short = {imbalance:.6g}")

    # ------------------------------------------------------------------ undoing

    def snapshot(self) -> Snapshot:
        """A copy of everything an operation may change: the accounts, the book, the
        fund, the venue's figures, the clock, the event log's length, the episode count
        and the random stream's position."""
        return Snapshot(self.ledger.snapshot(), self.book.snapshot(), self.fund.snapshot(),
                        self.market.copy(), len(self.events), self.episodes, self.time,
                        self.money_in, self.rng.bit_generator.state)

    def restore(self, snapshot: Snapshot) -> None:
        """Put the state back as it was at `snapshot`, in the same objects (whoever holds
        the ledger, the book or the fund reads the restored state); events logged since
        are dropped."""
        self.ledger.restore(snapshot.ledger)
        self.book.restore(snapshot.book)
        self.fund.restore(snapshot.fund)
        np.copyto(self.market, snapshot.market)
        del self.events[snapshot.n_events:]
        self.episodes = snapshot.episodes
        self.time = snapshot.time
        self.money_in = snapshot.money_in
        self.rng.bit_generator.state = snapshot.rng_state

    def after_operation(self) -> None:
        """In debug mode, the invariants after every operation."""
        if self.config.debug:
            self.check_invariants()

"""The backstop vault (HLP-like): takes over liquidations, then unwinds them into the book;
it may make markets too, in the same account, with its P&L split by strategy."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import mesa

from perpabm.agents.books import StrategyBook
from perpabm.agents.maker import DepthRefill, ladder_for, requote
from perpabm.config.market import share_over
from perpabm.config.scenario import VaultConfig
from perpabm.errors import MarginError
from perpabm.exchange import BackstopOffer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from perpabm.agents.protocols import MarketModel
    from perpabm.exchange import Event

STRATEGIES = ("liquidator", "market_making")
"""The vault's strategies, in the order its P&L is reported (:meth:`Vault.pnl_by_strategy`)."""
LIQUIDATOR_KINDS = frozenset({"backstop", "liquidation", "liquidation_fee", "insurance_fund",
                              "fund_takeover", "adl", "socialized_loss"})
"""Event kinds whose rows on the vault's own account (as the account liquidated, or as the
backstop taking over, or as an account auto-deleveraged) are the liquidator's."""


class Vault(mesa.Agent):
    """Registers as the exchange's backstop; takes what fits under its cap; unwinds.

    The cap bounds the position notional of the liquidator's account at ``cap`` × that
    account's equity, both as they are before a takeover (the collateral a takeover
    brings with it under ``backstop_takeover = "account"`` is not counted in advance).
    What its unwind sold or bought this step is :attr:`unwound_notional`: liquidation
    flow too, which the model counts in the step's net liquidation flow (spot impact).

    By default the vault runs its strategies in one account, as Hyperliquid's HLP
    ran market making and liquidations on shared collateral until 2025-03: the
    exchange liquidates and auto-deleverages that account like any other. Its P&L
    is split by strategy (:meth:`pnl_by_strategy`): the **liquidator** owns every
    trade the waterfall makes on the account — the positions taken over with the
    collateral they bring, the account's own liquidation fills and fees, its ADL
    fills on either side, fund payments and socialised-loss charges — and its unwind
    orders, with the funding on that book's position; **market making** is the
    rest: the quote fills, their fees, and the funding on the rest of the position.
    The two add up to the account's P&L by construction.

    With ``liquidator_share`` set, each strategy is an account of its own, as HLP's
    component vaults are since: :attr:`account` (the backstop, the liquidator's,
    with liquidator_share · capital) and :attr:`quote_account` (market making's,
    with the rest). Nothing moves between them, so the liquidator's account can go
    bankrupt and be auto-deleveraged while market making's is sound; each
    strategy's P&L is its account's.
    """

    def __init__(self, model: MarketModel, config: VaultConfig) -> None:
        super().__init__(model)
        self.config = config
        ex = model.exchange
        share = config.liquidator_share
        self.separate = share is not None
        """Whether the liquidator and market making are accounts of their own
        (``liquidator_share`` set)."""
        liquidator_capital = config.capital * (share if self.separate else 1.0)
        self.account = ex.open_account(liquidator_capital, adl_exempt=config.adl_exempt)
        """The liquidator's account: the backstop, and market making's too unless
        :attr:`separate`."""
        self.quote_account = (ex.open_account(config.capital - liquidator_capital,
                                              adl_exempt=config.adl_exempt)
                              if self.separate else self.account)
        """The account the vault quotes from: :attr:`account` unless :attr:`separate`."""
        self.accounts = (self.account, self.quote_account) if self.separate else (
            self.account,)
        """Every account the vault holds: its equity and position are their sums."""
        ex.register_backstop(self.account, self.take_over)
        self.start_equity = self.equity
        """The equity it opened with (USD): its P&L is measured from it."""
        self._start = {"liquidator": ex.equity(self.account),
                       "market_making": ex.equity(self.quote_account)}
        self.liquidator = StrategyBook()
        """The liquidator's share of a shared account (see the class docstring); unused
        when :attr:`separate`."""
        self._takes_collateral = ex.config.backstop_takeover == "account"
        self._seen = (0.0, self._cash())  # the account's (size, cash) at the last record
        self._unwound = StrategyBook()  # the unwind's fills since then
        # Quoting like the makers, with the vault's own depth and market making's capital.
        self.maker_config = dataclasses.replace(
            model.config.makers, capital=ex.equity(self.quote_account),
            depth=config.quote_depth)
        self.depth = DepthRefill(self.maker_config.refill_seconds)
        """Its quotes' refill after a sweep, at the makers' rate (``makers.refill_seconds``)."""
        self.unwound_notional = 0.0  # this step's, USD, signed: + bought, − sold

    def take_over(self, offer: BackstopOffer) -> float:
        """Quantity of `offer` the vault takes: all of it, or what keeps it under the cap."""
        ex = self.model.exchange
        equity = ex.equity(self.account)
        if equity <= 0.0:
            return 0.0
        position = ex.position(self.account)
        room = self.config.cap * equity / offer.mark_price
        if position * offer.size >= 0.0:  # adds to the vault's exposure
            room -= abs(position)
        else:  # first offsets its inventory, then may open the other way
            room += abs(position)
        return float(min(abs(offer.size), max(room, 0.0)))

    def unwind(self) -> None:
        """Sell the share of the inventory `unwind_rate` (per minute) comes to over one
        step into the book, near the index, and record the notional traded as
        :attr:`unwound_notional` (0 if none)."""
        self.unwound_notional = 0.0
        ex, cfg = self.model.exchange, self.config
        position = ex.position(self.account)
        if position == 0.0 or cfg.unwind_rate == 0.0:
            return
        side = -1.0 if position > 0 else 1.0
        limit = self.model.index * (1.0 + side * cfg.unwind_slippage)
        cash_before = self._cash()
        try:
            share = share_over(cfg.unwind_rate, self.model.tick_minutes)
            fills = ex.market_order(self.account, side * abs(position) * share,
                                    limit_price=limit)
        except MarginError:
            return
        # The unwind is the liquidator's: its fills and taker fee, read off the account.
        for book in (self.liquidator, self._unwound):
            book.position += ex.position(self.account) - position
            book.cash += self._cash() - cash_before
        # Unwinding taken-over positions is liquidation selling too, spread over time.
        self.unwound_notional = side * sum(f.quantity * f.price for f in fills)

    def quote(self) -> None:
        """Make markets like a maker, if the vault is configured to: its ladder refilled
        at the makers' rate after a sweep (``makers.refill_seconds``, :attr:`depth`)."""
        if not self.config.quotes:
            return
        model, account = self.model, self.quote_account
        requote(model, [(account, self.depth, lambda: self.depth.scale(
            ladder_for(model, account, self.maker_config)))])

    def record(self, events: Sequence[Event]) -> None:
        """Attribute what changed on the vault's account since the last call to its
        strategies, given `events` (those of one
        :meth:`~perpabm.exchange.Exchange.update_index`, in order): the liquidator's
        share goes to :attr:`liquidator`, the rest is market making's.

        First the quote fills: the account's change in position and cash since the last
        call, less the unwind, the rows below and the funding round, is what its
        resting orders filled. Their net, at its average price, exits the liquidator's
        position first — as far as it goes against it — as Hyperliquid's liquidator
        "exits these positions using a market-making algorithm"; the rest is market
        making's. Then the rows: a takeover adds the position at its price and, under
        ``backstop_takeover = "account"``, the collateral moved (the row's amount);
        rows where the vault's account is the one liquidated or auto-deleveraged are
        fills of the account's signed quantity (minus it where the vault is the
        counterparty: the losing side of ADL), and the amounts of fund and
        socialised-loss rows are cash. A funding round charges the liquidator's
        position at the round's rate: rate · mark a unit long (the row's ``score`` and
        ``price``), the same whatever the waterfall that runs after the round closes.

        Nothing to do when the strategies have accounts of their own (:attr:`separate`).
        """
        if self.separate:
            return  # each strategy's P&L is its own account's
        ex, book = self.model.exchange, self.liquidator
        rows = StrategyBook()  # the rows' effect on the account: all the liquidator's
        funding_per_unit = 0.0  # USD paid per unit long, summed over the rounds
        for e in events:
            if e.kind == "funding":
                funding_per_unit += e.score * e.price
            elif e.kind in LIQUIDATOR_KINDS:
                self._book_row(e, rows)
        size, cash = ex.position(self.account), self._cash()
        seen_size, seen_cash = self._seen
        quotes_size = size - seen_size - self._unwound.position - rows.position
        quotes_cash = (cash - seen_cash - self._unwound.cash - rows.cash
                       + funding_per_unit * size)
        if quotes_size * book.position < 0.0:  # the quotes filled against its position
            exits = min(abs(quotes_size), abs(book.position)) / abs(quotes_size)
            book.position += exits * quotes_size
            book.cash += exits * quotes_cash
        book.position += rows.position
        book.cash += rows.cash - funding_per_unit * book.position
        self._seen = (size, cash)
        self._unwound = StrategyBook()

    def _book_row(self, e: Event, book: StrategyBook) -> None:
        """Book one waterfall row's effect on the vault's account in `book`, if it has
        one (:meth:`record`)."""
        acct = self.account
        if e.kind == "backstop" and e.counterparty == acct:
            book.trade(-e.quantity, e.price)
            if self._takes_collateral:
                book.cash += e.amount
        elif e.kind == "adl" and e.counterparty == acct:
            book.trade(-e.quantity, e.price)  # the vault's own position, closed
        elif e.kind == "socialized_loss" and e.counterparty == acct:
            book.cash -= e.amount  # its deficit, paid by the others' charges
        elif e.account == acct:
            if e.quantity:
                book.trade(e.quantity, e.price)
            if e.kind in ("insurance_fund", "liquidation_fee"):
                book.cash -= e.amount  # paid to the fund (> 0) or by it (< 0)
            elif e.kind == "socialized_loss":
                book.cash += e.amount  # the charge (< 0)

    def pnl_by_strategy(self) -> dict[str, float]:
        """The vault's P&L at the mark (USD) by strategy (:data:`STRATEGIES`): the
        liquidator's book, and market making as the rest of the account's P&L; when
        :attr:`separate`, each account's P&L."""
        ex = self.model.exchange
        if self.separate:
            return {"liquidator": ex.equity(self.account) - self._start["liquidator"],
                    "market_making": (ex.equity(self.quote_account)
                                      - self._start["market_making"])}
        liquidator = self.liquidator.pnl(ex.mark_price)
        return {"liquidator": liquidator, "market_making": self.pnl - liquidator}

    @property
    def pnl(self) -> float:
        """The vault's P&L at the mark since it opened, USD."""
        return self.equity - self.start_equity

    @property
    def equity(self) -> float:
        """The vault's equity at the mark, USD, over its :attr:`accounts`."""
        ex = self.model.exchange
        return sum(ex.equity(account) for account in self.accounts)

    @property
    def position(self) -> float:
        """The vault's net position (base units, + long), over its :attr:`accounts`."""
        ex = self.model.exchange
        return sum(ex.position(account) for account in self.accounts)

    def _cash(self) -> float:
        """The account's cash in the sense of :class:`StrategyBook`: its collateral less
        its position at its entry price (USD), so that equity = cash + size · mark."""
        ex = self.model.exchange
        return ex.collateral(self.account) - ex.position(self.account) * ex.entry_price(
            self.account)

    @staticmethod
    def record_all(vaults: Sequence[Vault], events: Sequence[Event]) -> None:
        """Each of `vaults` (none or one) books the liquidator's `events` (:meth:`record`)."""
        for vault in vaults:
            vault.record(events)

    @staticmethod
    def unwind_all(vaults: Sequence[Vault]) -> None:
        """Each of `vaults` (the model's: none or one) unwinds (:meth:`unwind`)."""
        for vault in vaults:
            vault.unwind()

    @staticmethod
    def quote_all(vaults: Sequence[Vault]) -> None:
        """Each of `vaults` (none or one) quotes, if configured to (:meth:`quote`)."""
        for vault in vaults:
            vault.quote()

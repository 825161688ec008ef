"""The liquidation waterfall: book → backstop → insurance fund → ADL.

One :class:`Liquidator` works on one exchange's clearing core
(:class:`~perpabm.exchange.clearing.Clearing`) and on nothing else. Each stage takes
what is left of the liquidated position; what a stage cannot take passes to the
next. The rules per stage are documented on :class:`~perpabm.ExchangeConfig`. The
liquidator orchestrates: every piece of ADL arithmetic — ranking, the solvency cap,
the allocations, the socialised-loss split — is a pure function of
:mod:`perpabm.adl`.
"""

from __future__ import annotations

import math

import numpy as np

from perpabm import adl, mechanics
from perpabm.config.checks import is_number
from perpabm.config.market import share_over
from perpabm.exchange.book import BUY, SELL, Fill
from perpabm.exchange.clearing import (
    CLOCK_TOLERANCE_SECONDS,
    BackstopHandler,
    BackstopOffer,
    Clearing,
)
from perpabm.mechanics import REL_ROUNDING

MAX_PASSES = 1000
"""Passes over the liquidatable accounts within one mark update before the waterfall
is declared stuck (a bug): each pass closes something or defers an account."""

STAGES_WITHOUT_TRIGGER = frozenset({"insurance_fund"})
"""Stages that close whatever the book left at once, with no trigger of their own: they
wait while an account, just partially liquidated, waits for the next mark
(``liquidation_slice_cooldown_seconds``), and so does ADL under ``adl_trigger =
"unfilled"``; the backstop (``backstop_trigger``) and ADL under ``"negative_equity"`` act
whenever their triggers fire."""


def _quantity_taken(handler: BackstopHandler, returned: object, offered: float) -> float:
    """What a backstop `handler` returned for an offer of `offered` units, as a float:
    TypeError unless it is a real number (a bool, a string or an array is not one);
    ValueError unless it is in [0, offered] (so not NaN). Each names the handler and
    what it returned."""
    if type(returned) is float:  # the common case, checked fast
        taken = returned
    elif is_number(returned):
        taken = float(returned)
    else:
        raise TypeError(f"backstop handler {adl.code_label(handler)} returned {returned!r} "
                        f"({type(returned).__name__}); it must return a real number: the "
                        f"quantity it takes over, in [0, {offered:g}] base units")
    if not 0.0 <= taken <= offered:
        raise ValueError(f"backstop handler {adl.code_label(handler)} returned {returned!r}; "
                         f"it must return a quantity in [0, {offered:g}] base units (the "
                         f"offer's size)")
    return taken


class Liquidator:
    """Runs the configured waterfall on every liquidatable account after a mark update."""

    def __init__(self, core: Clearing) -> None:
        self.core = core
        self.cfg = core.config
        self.led = core.ledger
        self.episode = -1
        self.bad_debt: dict[int, float] = {}  # account → deficit logged as bad debt, USD
        self.previous_mark = core.mark  # the mark before the current update (USD)
        self._offered: set[int] = set()
        # Partial liquidations under a cooldown: account → the time (exchange units) its
        # cooldown ends; an account partially liquidated in this update waits for the
        # next mark (_waiting, per call).
        self._cooldown_units = self.cfg.liquidation_slice_cooldown_seconds / core.in_seconds(1.0)
        self._cooldown_until: dict[int, float] = {}
        self._waiting = False
        self._stages_that_wait = STAGES_WITHOUT_TRIGGER | (
            {"adl"} if self.cfg.adl_trigger == "unfilled" else set())
        self._stages = {
            "book": self.book_stage,
            "backstop": self.backstop_stage,
            "insurance_fund": self.insurance_fund_stage,
            "adl": self.adl_stage,
        }

    @property
    def total_bad_debt(self) -> float:
        """Deficits no stage could cover, left on flat accounts (USD, ≥ 0)."""
        return float(sum(self.bad_debt.values()))

    # ------------------------------------------------------------------ driver

    def run(self, previous_mark: float) -> None:
        """Liquidate until no account is below maintenance margin, or none can progress.

        Called once per mark update, with the mark before it (the price of
        ``adl_price = "previous_mark"``). Accounts are taken most-underwater first
        (lowest equity / MM). An account
        where no stage could do anything this mark (an empty book and a stage
        that waits) is deferred to the next mark.

        All or nothing: if anything the waterfall calls raises (a backstop handler, a
        custom ADL rule, or the checks of what they return), every change this run made
        is undone (:meth:`~perpabm.exchange.clearing.Clearing.restore`) before the error
        propagates.
        """
        self.previous_mark = previous_mark
        fund = self.core.fund
        fund_before = fund.snapshot()
        if fund.account is not None:  # its balance moves with the mark: a drawdown's peak
            fund.record(self.core.time)
        if self._cooldown_until:
            self._forget_expired()
        if not len(self.core.liquidatable()) and not self.led.has_deficits:
            return  # the usual mark: nothing to do
        cooldowns_before = dict(self._cooldown_until)
        before = self.core.snapshot(), dict(self.bad_debt), self.episode
        try:
            self._liquidate_all()
        except BaseException:
            snapshot, self.bad_debt, self.episode = before
            self.core.restore(snapshot)
            fund.restore(fund_before)
            self._cooldown_until = cooldowns_before
            raise

    def _liquidate_all(self) -> None:
        """:meth:`run`'s passes over the liquidatable accounts."""
        deferred: set[int] = set()
        self._offered = set()
        for _ in range(MAX_PASSES):
            queue = [a for a in self._by_urgency(self.core.liquidatable()) if a not in deferred]
            if not queue and not self._settle_flat_deficits():
                return
            for acct in queue:
                if self.led.size[acct] == 0.0 or not self._below_maintenance(acct):
                    continue
                if not self.liquidate(acct):
                    deferred.add(acct)
        raise RuntimeError(f"liquidation did not settle within {MAX_PASSES} passes")

    def _settle_flat_deficits(self) -> bool:
        """Settle accounts left flat with negative collateral (a maker filled through the
        mark, say): the fund pays, else the deficit is spread; True if any was settled."""
        led = self.led
        settled = False
        for acct in led.deficit_accounts():
            if led.size[acct] == 0.0 and led.collateral[acct] < -self._dust:
                self.episode = self.core.new_episode()
                self._settle_deficit(acct, math.nan)
                settled = True
        led.clear_deficits()
        return settled

    def liquidate(self, acct: int) -> bool:
        """Run the waterfall on one account; True if anything changed.

        An account partially liquidated in this update (one slice, under
        ``liquidation_slice_cooldown_seconds``) skips the stages that would close the rest
        at once (:data:`STAGES_WITHOUT_TRIGGER`, and ADL under ``adl_trigger =
        "unfilled"``): it waits for the next mark, when the book gets its whole position.
        """
        self.episode = self.core.new_episode()
        self.core.book.cancel_account(acct)
        start = self.led.size[acct]
        self._waiting = False
        for name in self.cfg.waterfall:
            if self.led.size[acct] == 0.0:
                break
            if self._waiting and name in self._stages_that_wait:
                continue
            self._stages[name](acct)
            if self.cfg.partial_liquidation and not self._below_maintenance(acct):
                break
        if self.led.size[acct] == 0.0:
            self._settle_flat(acct)
        return self.led.size[acct] != start

    def _forget_expired(self) -> None:
        """Forget the cooldowns that have ended: the next liquidation of that account is
        partial again."""
        now = self.core.time
        for acct in [a for a, until in self._cooldown_until.items()
                     if self.core.in_seconds(until - now) <= CLOCK_TOLERANCE_SECONDS]:
            del self._cooldown_until[acct]

    # ------------------------------------------------------------------ stages

    def book_stage(self, acct: int) -> None:
        """Send liquidation orders to the book, never worse than the bankruptcy price.

        A position whose notional at the mark is above ``liquidation_slice_min_notional``
        goes in slices of ``liquidation_slice_fraction`` of it: all in this call, or, with
        ``liquidation_slice_cooldown_seconds``, as the venue's partial liquidation
        (:meth:`_partial_liquidation`). Each stops once the book runs out within the
        bankruptcy price, and under ``partial_liquidation`` once the account is back above
        maintenance margin.
        """
        led, cfg = self.led, self.cfg
        if self._sliced_this_mark(acct):  # one slice a mark: it waits for the next
            self._waiting = True
            return
        size0 = led.size[acct]
        mark = self.core.mark
        sliced = abs(size0) * mark > cfg.liquidation_slice_min_notional
        slice_qty = abs(size0) * cfg.liquidation_slice_fraction if sliced else abs(size0)
        if sliced and self._cooldown_units > 0.0:
            if acct not in self._cooldown_until:
                self._partial_liquidation(acct, float(slice_qty))
                return
            slice_qty = abs(size0)  # within the cooldown: the whole position
        while led.size[acct] != 0.0:
            qty = min(slice_qty, abs(led.size[acct]))
            filled = self._liquidation_order(acct, qty)
            if cfg.partial_liquidation and not self._below_maintenance(acct):
                return
            if filled < qty * (1.0 - REL_ROUNDING):  # the book ran out within the limit
                return

    def _sliced_this_mark(self, acct: int) -> bool:
        """Whether `acct`'s cooldown began at this mark: a partial liquidation in this
        update (the same sum of floats gives the same end time)."""
        until = self._cooldown_until.get(acct)
        return until is not None and until == self.core.time + self._cooldown_units

    def _partial_liquidation(self, acct: int, quantity: float) -> None:
        """One slice of `quantity` to the book, and the account's cooldown begins: until
        it ends, its liquidation orders are for the whole position (Hyperliquid's
        "Liquidations" page: positions above 100k USDC send 20% as a market order; "after
        a block where any position of a user is partially liquidated, there is a cooldown
        period of 30 seconds", during which "all market liquidation orders for that user
        will be for the entire position"). If the slice filled and the account is still
        below maintenance margin, it waits for the next mark (:meth:`liquidate`); if the
        book ran out within the bankruptcy price, the next stages act on the rest.

        Worked example, a 30 s cooldown, a long of 100 below maintenance at time 0: 20 go
        to the book; at a mark 3 s later, still below, the 80 left go as one order. A
        model marking once a minute finds the cooldown over at its next mark and sends 20%
        again: coarser marks liquidate more slowly than the venue.
        """
        filled = self._liquidation_order(acct, quantity)
        self._cooldown_until[acct] = self.core.time + self._cooldown_units
        book_ran_out = filled < quantity * (1.0 - REL_ROUNDING)
        self._waiting = bool(self.led.size[acct] != 0.0 and not book_ran_out
                             and self._below_maintenance(acct))

    def backstop_stage(self, acct: int) -> None:
        """Offer the rest to the registered backstop once equity < trigger · MM.

        Under ``backstop_takeover = "position"`` the backstop takes the position at
        ``backstop_price``, bankrupt or not, and the row's amount is the account's
        equity at the mark. Under ``"account"`` only an account whose equity is not
        negative is offered anything: the backstop takes the position at the mark with
        the remaining collateral (:meth:`_take_over_account`), and the row's amount is
        the collateral moved.
        """
        core = self.core
        backstop = core.backstop_account
        if (core.backstop_handler is None or acct == backstop or acct in self._offered
                or acct == core.fund.account):
            return  # the fund's account is the venue's: not offered to the backstop
        if not self.led.is_open[backstop]:
            return
        equity, margin = core.equity(acct), self._maintenance_margin(acct)
        if equity >= self.cfg.backstop_trigger * margin:
            return
        whole_account = self.cfg.backstop_takeover == "account"
        if whole_account and equity < 0.0:
            return  # bankrupt: not the liquidator's to take; the next stage's (ADL)
        size = float(self.led.size[acct])
        bankrupt = core.bankruptcy_price(acct)
        at_mark = whole_account or (self.cfg.backstop_price == "mark" and equity >= 0.0)
        price = core.mark if at_mark else bankrupt
        offer = BackstopOffer(acct, size, price, core.mark, equity, margin)
        self._offered.add(acct)
        handler = core.backstop_handler
        taken = _quantity_taken(handler, handler(offer), abs(size))
        if taken == 0.0:
            return
        sign = math.copysign(1.0, size)
        moved = size if taken == abs(size) else sign * taken
        if whole_account:
            amount = self._take_over_account(acct, backstop, moved, price, equity)
        else:
            self.led.trade(acct, -moved, price)
            self.led.trade(backstop, moved, price)
            amount = equity
        core.log("backstop", acct, backstop, -moved, price, bankrupt, amount,
                 liquidation=self.episode)

    def _take_over_account(self, acct: int, backstop: int, moved: float, mark: float,
                           equity: float) -> float:
        """Move `moved` units of `acct`'s position to `backstop` at the `mark`, with the
        same share of `acct`'s `equity` (≥ 0) as collateral; returns the collateral moved.

        At the mark the position moves at no gain or loss to either side: `acct`'s
        collateral becomes its equity, which then moves too. The whole position takes
        all of it (the account is left flat with nothing: the maintenance margin is not
        returned, Hyperliquid's "Liquidations" page); a share f of it takes f · equity,
        leaving (1 − f) of both, so the account's equity over its margin is unchanged.
        """
        led = self.led
        whole = moved == float(led.size[acct])
        led.trade(acct, -moved, mark)
        led.trade(backstop, moved, mark)
        collateral = float(led.collateral[acct]) if whole else (
            equity * abs(moved) / (abs(moved) + abs(float(led.size[acct]))))
        led.credit(acct, -collateral)
        led.credit(backstop, collateral)
        return collateral

    def insurance_fund_stage(self, acct: int) -> None:
        """The fund closes the rest in the book past the bankruptcy price, paying the gap;
        under ``fund_takeover`` it takes the rest over instead (:meth:`_fund_takeover`).

        The walk goes no further than ``fund_max_slippage`` from the mark and no
        further than the fund can pay; it also pays any deficit the account has.
        """
        core, led = self.core, self.led
        if acct == core.fund.account:
            return  # the fund's own account: nothing to take over from itself
        if self.cfg.fund_takeover:
            self._fund_takeover(acct)
            return
        budget = core.fund.available(core.time)
        size = led.size[acct]
        if size != 0.0 and budget > 0.0:
            bankrupt = core.bankruptcy_price(acct)
            sell = size > 0
            side = SELL if sell else BUY
            mark = core.mark
            limit = mark * (1 - self.cfg.fund_max_slippage) if sell else mark * (
                1 + self.cfg.fund_max_slippage)
            plan, stale = core.plan(side, abs(size), limit, exclude_account=acct)
            for order_id in stale:
                core.book.cancel(order_id)
            plan = self._within_budget(plan, bankrupt, sell, budget)
            if plan:
                sign = -1.0 if sell else 1.0
                core.execute(acct, sign, plan, 0.0)
                for f in plan:
                    gap = (bankrupt - f.price) if sell else (f.price - bankrupt)
                    cost = max(gap, 0.0) * f.quantity
                    core.fund_transfer(acct, cost)
                    core.log("insurance_fund", acct, f.maker, sign * f.quantity, f.price,
                             bankrupt, -cost, liquidation=self.episode)
        if led.size[acct] == 0.0 and led.collateral[acct] < 0.0:
            self._fund_pays(acct, -led.collateral[acct])

    def _fund_takeover(self, acct: int) -> None:
        """The fund takes over what it can of the rest of `acct`'s position at its
        bankruptcy price B, into the fund's account (Binance FAQ 360033525371).

        At B the account is left with nothing (its equity at B is zero, for whatever
        share of the position moves), and the fund takes on, at the mark m, the equity
        ``q·(m − B)`` of the q units it takes (signed like the position): the account's
        remaining margin if it was not bankrupt, its deficit (< 0) if it was. The fund
        takes nothing once its drawdown trigger has fired, or while its equity is not
        above the maintenance margin of what it holds (:meth:`InsuranceFund.available`);
        otherwise at most what keeps its net notional at the mark within
        ``fund_max_position`` × its balance before the takeover (a position against what
        it holds first offsets it), and at most what its equity above maintenance margin
        pays for: the loss ``|m − B|`` per unit of a bankrupt position plus the
        maintenance margin of the unit at the highest rate the fund's notional can reach
        (so the takeover never leaves the fund's account liquidatable). What it does not
        take goes on to the next stage.
        """
        core, led, fund = self.core, self.led, self.core.fund
        available = fund.available(core.time)
        size = float(led.size[acct])
        bankrupt = core.bankruptcy_price(acct)
        if size == 0.0 or available <= 0.0 or not bankrupt > 0.0:
            return
        mark = core.mark
        held = fund.position
        room = self.cfg.fund_max_position * fund.balance / mark
        room += abs(held) if held * size < 0.0 else -abs(held)
        sign = math.copysign(1.0, size)
        loss_per_unit = max(sign * (bankrupt - mark), 0.0)
        largest = np.array([(abs(held) + max(room, 0.0)) * mark])
        top_rate, _ = mechanics.tier_in_table(largest, led.floors, led.mmrs, led.cums)
        affordable = available / (loss_per_unit + float(top_rate[0]) * mark)
        quantity = min(abs(size), max(room, 0.0), affordable)
        if quantity <= REL_ROUNDING * abs(size):
            return
        moved = size if quantity >= abs(size) * (1.0 - REL_ROUNDING) else sign * quantity
        led.trade(acct, -moved, bankrupt)
        led.trade(fund.account, moved, bankrupt)
        fund.record(core.time)
        core.log("fund_takeover", acct, fund.account, -moved, bankrupt, bankrupt,
                 moved * (mark - bankrupt), liquidation=self.episode)

    def unwind_fund(self, minutes: float) -> float:
        """The fund offloads 1 − (1 − ``fund_unwind_rate``)^t of what it holds through the
        book (t: `minutes`, since its last unwind), no further than ``fund_unwind_slippage``
        from the mark, with no taker fee (as every liquidation order); one "fund_unwind"
        row per fill. Returns the signed notional traded (USD, + bought, − sold)."""
        core, fund, cfg = self.core, self.core.fund, self.cfg
        if fund.account is None:
            return 0.0
        fund.record(core.time)
        held = fund.position
        if held == 0.0 or cfg.fund_unwind_rate == 0.0 or core.mark is None:
            return 0.0
        share = share_over(cfg.fund_unwind_rate, minutes)
        quantity = abs(held) if share >= 1.0 - REL_ROUNDING else abs(held) * share
        sell = held > 0.0
        mark = core.mark
        limit = mark * (1.0 - cfg.fund_unwind_slippage if sell else 1.0 + cfg.fund_unwind_slippage)
        plan, stale = core.plan(SELL if sell else BUY, quantity, limit,
                                exclude_account=fund.account)
        sign = -1.0 if sell else 1.0
        core.execute(fund.account, sign, plan, 0.0, stale)
        notional = 0.0
        for f in plan:
            core.log("fund_unwind", fund.account, f.maker, sign * f.quantity, f.price,
                     math.nan, sign * f.quantity * (mark - f.price), liquidation=-1)
            notional += sign * f.quantity * f.price
        return notional

    def adl_stage(self, acct: int) -> None:
        """Close the rest against opposite positions: queue, pro rata, in profit space or
        socialised loss, at the price ``adl_price`` names (:meth:`_adl_price`).

        Queue and pro rata: each counterparty is first closed only as far as its own
        equity can pay for the price it is closed at
        (:func:`perpabm.adl.close_solvent_first`); only if that is not enough are the
        counterparties closed beyond it, in the same order. In profit space
        (:data:`perpabm.adl.PROFIT_ALLOCATIONS`) the winners are closed as far as the
        policy's haircuts say (:func:`perpabm.adl.profit_space_closes`) and whatever
        they cannot pay for is closed at the mark, pro rata in size.

        Who pays the difference between the close price and the bankruptcy price B:
        closing the liquidated account's quantity Q at a price P leaves it with
        ``(P − B)·Q`` for a long (``(B − P)·Q`` for a short). At P = B that is 0: the
        winners pay its deficit through the price. Where it is positive (P better for
        the liquidated account than B, as a previous mark can be) the surplus is the
        account's, and once the account is flat it goes where ``surplus_to`` sends
        every liquidation's leftover margin (the account itself, or the insurance
        fund). Where it is negative (P worse than B, as the mark is for a bankrupt
        account) the residual deficit is paid by the insurance fund as far as it can,
        and the rest is bad debt (:meth:`_settle_deficit`). A counterparty left flat
        and in deficit is settled the same way.
        """
        cfg, led, core = self.cfg, self.led, self.core
        equity = core.equity(acct)
        if cfg.adl_trigger == "negative_equity" and equity >= 0.0:
            return
        size = float(led.size[acct])
        bankrupt = core.bankruptcy_price(acct)
        candidates = np.flatnonzero(led.view("size") * size < 0.0)
        if cfg.adl_allocation == "socialized_loss":
            self._socialize(acct, candidates, bankrupt)
            return
        mark = core.mark
        price = self._adl_price(bankrupt, equity)
        top = adl.top_winner(candidates, led.size[candidates], led.entry_price[candidates], mark)
        order, scores = self._adl_queue(candidates)
        quantities = np.abs(led.size[order])
        if cfg.adl_allocation in adl.PROFIT_ALLOCATIONS:  # the two parts of each close
            haircut, at_mark = self._profit_space(order, scores, abs(size), bankrupt, equity)
        else:
            solvent = np.minimum(adl.affordable(led.size[order], led.entry_price[order],
                                                led.collateral[order], mark, price), quantities)
            haircut = adl.close_solvent_first(cfg.adl_allocation, quantities, solvent,
                                              led.adl_exempt[order], abs(size))
            at_mark = np.zeros_like(haircut)
        closes = haircut + at_mark
        hit = closes > 0.0
        if not hit.any():
            return
        profit_space = cfg.adl_allocation in adl.PROFIT_ALLOCATIONS
        exhausted = bool(np.all(closes >= quantities * (1.0 - REL_ROUNDING) if profit_space
                                else closes == quantities))
        fills = [(order[hit & (part > 0.0)], part[hit & (part > 0.0)],
                  scores[hit & (part > 0.0)], np.flatnonzero(hit & (part > 0.0)) + 1, fill_price)
                 for part, fill_price in ((haircut, price), (at_mark, mark))]
        sign = math.copysign(1.0, size)
        rows = []
        for accounts, q, s, r, fill_price in fills:
            if len(accounts) == 0:
                continue
            profit, leverage = adl.profit_and_leverage(led.size[accounts],
                                                       led.entry_price[accounts],
                                                       led.collateral[accounts], mark, q)
            rows.append((accounts, q, s, r, profit, leverage, fill_price))
        for n, (accounts, q, _, _, _, _, fill_price) in enumerate(rows):
            led.trade_many(accounts, sign * q, fill_price)
            self._close_liquidated(acct, q.sum(), fill_price,
                                   exhausted and n == len(rows) - 1)
        for accounts, q, s, r, profit, leverage, fill_price in rows:
            for cp, qi, si, ri, pnl, lev in zip(accounts, q, s, r, profit, leverage,
                                                strict=True):
                core.log("adl", int(cp), acct, sign * qi, fill_price, bankrupt, pnl,
                         liquidation=self.episode, score=si, rank=int(ri), leverage=lev)
        self._log_top_winner(top, acct, bankrupt)
        if led.size[acct] == 0.0 and led.collateral[acct] < -self._dust:
            self._settle_deficit(acct, bankrupt)  # a residual deficit: fund, else bad debt
        hit_accounts = order[hit]
        for cp in hit_accounts[(led.size[hit_accounts] == 0.0)
                               & (led.collateral[hit_accounts] < -self._dust)]:
            self._settle_deficit(int(cp), bankrupt)

    def _adl_price(self, bankrupt: float, equity: float) -> float:
        """The price an ADL round closes at, by ``adl_price``: the bankruptcy price; the
        mark; the mark before this update (the current one before there was another);
        or the mark while the insurance fund can pay the whole deficit at it (OKX),
        else the bankruptcy price."""
        core, rule = self.core, self.cfg.adl_price
        if rule == "mark":
            return core.mark
        if rule == "previous_mark":
            return self.previous_mark
        if rule == "mark_while_fund_pays":
            deficit_at_mark = max(-equity, 0.0)
            return core.mark if core.fund.available(core.time) >= deficit_at_mark else bankrupt
        return bankrupt

    def _profit_space(self, order: np.ndarray, scores: np.ndarray, quantity: float,
                      bankrupt: float, equity: float) -> tuple[np.ndarray, np.ndarray]:
        """The closes of a profit-space allocation over the positions in ADL `order`:
        what each winner closes to pay its haircut of the deficit
        (:func:`perpabm.adl.profit_space_closes`), and the rest of `quantity`, which the
        winners cannot pay for, closed at the mark in proportion to what is left of
        every position (non-exempt first)."""
        led, core = self.led, self.core
        mark = core.mark
        size = led.size[order]
        profit_per_unit = mechanics.pnl_at(np.sign(size), led.entry_price[order], mark)
        leverage = None  # only the leverage-weighted allocation weighs by it
        if self.cfg.adl_allocation == "leverage_pro_rata":
            equity_now = mechanics.equity_at(led.collateral[order], size,
                                             led.entry_price[order], mark)
            leverage = np.asarray(mechanics.effective_leverage(size, mark, equity_now),
                                  dtype=float)
        eligible = ~led.adl_exempt[order] & (scores > -np.inf)
        quantities = np.abs(size)
        haircut = adl.profit_space_closes(
            self.cfg.adl_allocation, quantities, profit_per_unit, eligible,
            abs(mark - bankrupt), max(-equity, 0.0), leverage, self.cfg.adl_haircut_cap)
        rest = quantity - haircut.sum()
        at_mark = np.zeros_like(haircut)
        if rest > REL_ROUNDING * quantity:
            at_mark = adl.pro_rata_close(quantities - haircut, led.adl_exempt[order], rest)
            at_mark = np.where(haircut + at_mark >= quantities * (1.0 - REL_ROUNDING),
                               quantities - haircut, at_mark)
        return haircut, at_mark

    # ------------------------------------------------------------------ pieces

    def _adl_queue(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidates in ADL order with their scores (:func:`perpabm.adl.queue_order`)."""
        led, core = self.led, self.core
        size = led.size[candidates]
        mark = core.mark
        mmr, _ = mechanics.tier_in_table(np.abs(size) * mark, led.floors, led.mmrs, led.cums)
        scores = adl.score(core.adl_rule, size, led.entry_price[candidates], mark,
                           led.collateral[candidates], mmr, rng=core.rng)
        scores = np.asarray(scores, dtype=float)
        order = adl.queue_order(scores, led.adl_exempt[candidates], candidates)
        return candidates[order], scores[order]

    def _close_liquidated(self, acct: int, closed: float, price: float,
                          exhausted: bool = False) -> None:
        """The liquidated side of ADL fills adding up to `closed`; a sum within
        rounding of the whole position closes it exactly, leaving no dust.

        When the fills closed every opposite position (`exhausted`), the account takes
        the trade that leaves the sum of all positions (long OI − short OI) at zero
        after them: its whole position, give or take the rounding dust left elsewhere.
        A remainder of 10,000.05 − 10,000 (0.0499999999993) closed against a short of
        0.05 leaves it flat; a fund that took over 10.0000002467 of a short while long
        10 is left short 2.467e-7, and the account that closes the other 279,228.568
        against longs of 279,228.5679527 ends long those 2.467e-7, the fund's
        counterpart — where closing it exactly would leave the fund's dust with no
        opposite side."""
        if exhausted:
            self.led.trade(acct, -self.core.open_interest_imbalance(), price)
            return
        size = float(self.led.size[acct])
        whole = closed >= abs(size) * (1.0 - REL_ROUNDING)
        self.led.trade(acct, -size if whole else -math.copysign(closed, size), price)

    def _liquidation_order(self, acct: int, qty: float) -> float:
        """One liquidation order of `qty`, filled no worse than bankruptcy; returns the fill."""
        core, led = self.core, self.led
        size = led.size[acct]
        sell = size > 0
        bankrupt = core.bankruptcy_price(acct)
        if not bankrupt > 0.0:  # a short already bankrupt at any price: nothing fills
            return 0.0
        plan, stale = core.plan(SELL if sell else BUY, qty, bankrupt, exclude_account=acct)
        for order_id in stale:  # orders their makers cannot pay for: cancelled either way
            core.book.cancel(order_id)
        if not plan:
            return 0.0
        sign = -1.0 if sell else 1.0
        core.execute(acct, sign, plan, 0.0)
        notional = 0.0
        for f in plan:
            core.log("liquidation", acct, f.maker, sign * f.quantity, f.price, bankrupt, 0.0,
                     liquidation=self.episode)
            notional += f.quantity * f.price
        # The fee never takes the account's equity at the mark below zero.
        fee = min(self.cfg.liquidation_fee * notional, max(core.equity(acct), 0.0))
        if fee > 0.0 and acct != core.fund.account:  # the fund pays no fee to itself
            core.fund_transfer(acct, -fee)
            core.log("liquidation_fee", acct, -1, 0.0, math.nan, bankrupt, fee,
                     liquidation=self.episode)
        return sum(f.quantity for f in plan)

    def _within_budget(self, plan: list[Fill], bankrupt: float, sell: bool,
                       budget: float) -> list[Fill]:
        """The prefix of `plan` whose fills worse than bankruptcy the fund can pay for."""
        out = []
        for f in plan:
            gap = (bankrupt - f.price) if sell else (f.price - bankrupt)
            cost = max(gap, 0.0) * f.quantity
            if cost <= budget:
                out.append(f)
                budget -= cost
                continue
            affordable = budget / gap
            if affordable > 0.0:
                out.append(f._replace(quantity=affordable))
            break
        return out

    def _fund_pays(self, acct: int, amount: float) -> float:
        """The fund pays what it can of `amount` into the account; returns what it paid."""
        core = self.core
        paid = min(amount, core.fund.available(core.time))
        if paid <= self._dust or acct == core.fund.account:  # the fund cannot pay itself
            return 0.0
        core.fund_transfer(acct, paid)
        core.log("insurance_fund", acct, -1, 0.0, math.nan, math.nan, -paid,
                 liquidation=self.episode)
        return paid

    def _settle_flat(self, acct: int) -> None:
        """After a full close, the rest of the margin goes where the venue sends it."""
        if self.cfg.surplus_to != "insurance_fund" or acct == self.core.fund.account:
            return
        surplus = float(self.led.collateral[acct])
        if surplus > self._dust:
            self.core.fund_transfer(acct, -surplus)
            self.core.log("insurance_fund", acct, -1, 0.0, math.nan, math.nan, surplus,
                          liquidation=self.episode)

    def _log_top_winner(self, top: int, acct: int, bankrupt: float) -> None:
        """Log the round's top winner with the profit it keeps (PTSR's numerator)."""
        if top < 0:
            return
        led, core = self.led, self.core
        size = float(led.size[top])
        remaining = mechanics.pnl_at(size, led.entry_price[top], core.mark) if size else 0.0
        core.log("adl_top_winner", top, acct, 0.0, core.mark, bankrupt, remaining,
                 liquidation=self.episode)

    def _settle_deficit(self, acct: int, bankrupt: float) -> None:
        """A flat account left in deficit: the fund pays what it can; under socialised
        loss the rest is spread over open interest; what is still owed is bad debt
        (logged once; a later deepening is logged as the difference)."""
        self.led.discard_deficit(acct)
        deficit = -float(self.led.collateral[acct])
        deficit -= self._fund_pays(acct, deficit)
        if deficit > self._dust and self.cfg.adl_allocation == "socialized_loss":
            units = adl.open_units(self.led.view("size"), acct)
            if units.sum() > 0.0:
                self._spread_deficit(acct, deficit, bankrupt, units)
                return
        new_debt = deficit - self.bad_debt.get(acct, 0.0)
        if new_debt > self._dust:
            self.bad_debt[acct] = deficit
            self.core.log("bad_debt", acct, -1, 0.0, math.nan, bankrupt, -new_debt,
                          liquidation=self.episode)

    def _spread_deficit(self, acct: int, deficit: float, bankrupt: float,
                        units: np.ndarray) -> None:
        """Charge `deficit` to the accounts in proportion to `units`
        (:func:`perpabm.adl.socialized_charges`) and credit it to the bankrupt `acct`."""
        if units.sum() == 0.0:
            return
        per_unit, charged, charges = adl.socialized_charges(units, deficit)
        self.led.credit_many(charged, charges)
        self.led.credit(acct, deficit)
        for cp in charged:
            self.core.log("socialized_loss", int(cp), acct, 0.0, math.nan, bankrupt,
                          -per_unit * units[cp], liquidation=self.episode, score=per_unit)

    def _socialize(self, acct: int, candidates: np.ndarray, bankrupt: float) -> None:
        """Drift: close pro rata at the mark, fund pays what it can, the rest per open unit.

        δ = deficit / (|OI long| + |OI short|) is taken over the open interest at
        the bankruptcy, before the close, so the positions closed against the
        bankrupt one pay their share too (and a tiny remainder cannot inflate δ).
        """
        core, led = self.core, self.led
        size = float(led.size[acct])
        mark = core.mark
        quantities = np.abs(led.size[candidates])
        units_at_bankruptcy = adl.open_units(led.view("size"), acct)
        closes = adl.pro_rata_close(quantities, np.zeros(len(candidates), dtype=bool),
                                    abs(size))
        hit = closes > 0.0
        if not hit.any():
            return
        top = adl.top_winner(candidates, led.size[candidates], led.entry_price[candidates], mark)
        hit_accounts = candidates[hit]
        profit, leverage = adl.profit_and_leverage(led.size[hit_accounts],
                                                   led.entry_price[hit_accounts],
                                                   led.collateral[hit_accounts], mark,
                                                   closes[hit])
        sign = math.copysign(1.0, size)
        led.trade_many(hit_accounts, sign * closes[hit], mark)
        self._close_liquidated(acct, closes.sum(), mark, bool(np.all(closes == quantities)))
        for cp, q, pnl, lev in zip(hit_accounts, closes[hit], profit, leverage, strict=True):
            core.log("adl", int(cp), acct, sign * q, mark, bankrupt, pnl,
                     liquidation=self.episode, leverage=lev)
        self._log_top_winner(top, acct, bankrupt)
        deficit = max(-led.collateral[acct], 0.0) if led.size[acct] == 0.0 else 0.0
        deficit -= self._fund_pays(acct, deficit)
        if deficit > self._dust:
            self._spread_deficit(acct, deficit, bankrupt, units_at_bankruptcy)

    # ------------------------------------------------------------------ account figures

    @property
    def _dust(self) -> float:
        """Rounding noise in USD: amounts this small are not moved or logged."""
        return REL_ROUNDING * max(self.core.money_in, 1.0)

    def _maintenance_margin(self, acct: int) -> float:
        """`acct`'s tiered maintenance margin at the mark, USD."""
        return float(self.core.maintenance_margin(abs(float(self.led.size[acct]))
                                                  * self.core.reference_price()))

    def _below_maintenance(self, acct: int) -> bool:
        return self.led.size[acct] != 0.0 and (
            self.core.equity(acct) < self._maintenance_margin(acct))

    def _by_urgency(self, accounts: np.ndarray) -> list[int]:
        """Accounts ordered by equity / maintenance margin, lowest first (ties by id)."""
        if len(accounts) == 0:
            return []
        led = self.led
        mark = self.core.mark
        size = led.size[accounts]
        equity = mechanics.equity_at(led.collateral[accounts], size, led.entry_price[accounts],
                                     mark)
        ratio = equity / self.core.maintenance_margin(np.abs(size) * mark)
        return [int(a) for a in accounts[np.lexsort((accounts, ratio))]]

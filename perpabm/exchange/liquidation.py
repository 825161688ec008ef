"""The liquidation waterfall: book → backstop → insurance fund → ADL.

One :class:`Liquidator` belongs to one :class:`~perpabm.exchange.engine.Exchange`
and works on its ledger, book and fund directly. Each stage takes what is left
of the liquidated position; what a stage cannot take passes to the next. The
rules per stage are documented on :class:`~perpabm.ExchangeConfig`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from perpabm import adl, mechanics
from perpabm.exchange.book import BUY, SELL, Fill
from perpabm.exchange.engine import BackstopOffer

if TYPE_CHECKING:
    from perpabm.exchange.engine import Exchange

MAX_PASSES = 1000


class Liquidator:
    """Runs the configured waterfall on every liquidatable account after a mark update."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.cfg = exchange.config
        self.led = exchange.ledger
        self.episode = -1
        self.bad_debt: dict[int, float] = {}  # account → deficit logged as bad debt, USD
        self._stages = {
            "book": self.book_stage,
            "backstop": self.backstop_stage,
            "insurance_fund": self.insurance_fund_stage,
            "adl": self.adl_stage,
        }

    # ------------------------------------------------------------------ driver

    def run(self) -> None:
        """Liquidate until no account is below maintenance margin, or none can progress.

        Accounts are taken most-underwater first (lowest equity / MM). An account
        where no stage could do anything this mark (an empty book and a stage
        that waits) is deferred to the next mark.
        """
        if not len(self.ex.liquidatable()) and not self.led.flat_deficits:
            return  # the usual mark: nothing to do
        deferred: set[int] = set()
        self._offered: set[int] = set()
        for _ in range(MAX_PASSES):
            queue = [a for a in self._by_urgency(self.ex.liquidatable()) if a not in deferred]
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
        for acct in sorted(led.flat_deficits):
            if led.size[acct] == 0.0 and led.collateral[acct] < -self._dust:
                self.ex._episodes += 1
                self.episode = self.ex._episodes
                self._settle_deficit(acct, math.nan)
                settled = True
        led.flat_deficits.clear()
        return settled

    def liquidate(self, acct: int) -> bool:
        """Run the waterfall on one account; True if anything changed."""
        self.ex._episodes += 1
        self.episode = self.ex._episodes
        self.ex.book.cancel_account(acct)
        start = self.led.size[acct]
        for name in self.cfg.waterfall:
            if self.led.size[acct] == 0.0:
                break
            self._stages[name](acct)
            if self.cfg.partial_liquidation and not self._below_maintenance(acct):
                break
        if self.led.size[acct] == 0.0:
            self._settle_flat(acct)
        return self.led.size[acct] != start

    # ------------------------------------------------------------------ stages

    def book_stage(self, acct: int) -> None:
        """Send liquidation orders to the book, never worse than the bankruptcy price."""
        led, cfg = self.led, self.cfg
        size0 = led.size[acct]
        mark = self.ex.mark_price
        sliced = abs(size0) * mark > cfg.liquidation_slice_min_notional
        slice_qty = abs(size0) * cfg.liquidation_slice_fraction if sliced else abs(size0)
        while led.size[acct] != 0.0:
            qty = min(slice_qty, abs(led.size[acct]))
            filled = self._liquidation_order(acct, qty)
            if cfg.partial_liquidation and not self._below_maintenance(acct):
                return
            if filled < qty * (1.0 - 1e-12):  # the book ran out within the limit
                return

    def backstop_stage(self, acct: int) -> None:
        """Offer the rest to the registered backstop once equity < trigger · MM."""
        ex = self.ex
        if ex._backstop_handler is None or acct == ex.backstop_account or acct in self._offered:
            return
        if not ex.ledger.is_open[ex.backstop_account]:
            return
        equity, margin = self.ex.equity(acct), self.ex.maintenance_margin(acct)
        if equity >= self.cfg.backstop_trigger * margin:
            return
        size = float(self.led.size[acct])
        bankrupt = self.ex.bankruptcy_price(acct)
        at_mark = self.cfg.backstop_price == "mark" and equity >= 0.0
        price = ex.mark_price if at_mark else bankrupt
        offer = BackstopOffer(acct, size, price, ex.mark_price, equity, margin)
        self._offered.add(acct)
        taken = float(ex._backstop_handler(offer))
        if not (math.isfinite(taken) and 0.0 <= taken <= abs(size)):
            raise ValueError(
                f"backstop handler returned {taken!r}; it must be a quantity in [0, {abs(size):g}]"
            )
        if taken == 0.0:
            return
        sign = math.copysign(1.0, size)
        moved = size if taken == abs(size) else sign * taken
        self.led.trade(acct, -moved, price)
        self.led.trade(ex.backstop_account, moved, price)
        ex._log("backstop", acct, ex.backstop_account, -moved, price, bankrupt,
                equity, liquidation=self.episode)

    def insurance_fund_stage(self, acct: int) -> None:
        """The fund closes the rest in the book past the bankruptcy price, paying the gap.

        The walk goes no further than ``fund_max_slippage`` from the mark and no
        further than the fund can pay; it also pays any deficit the account has.
        """
        ex, led = self.ex, self.led
        budget = ex.fund.available(ex.time)
        size = led.size[acct]
        if size != 0.0 and budget > 0.0:
            bankrupt = self.ex.bankruptcy_price(acct)
            sell = size > 0
            side = SELL if sell else BUY
            mark = ex.mark_price
            limit = mark * (1 - self.cfg.fund_max_slippage) if sell else mark * (
                1 + self.cfg.fund_max_slippage)
            plan, stale = ex._plan(side, abs(size), limit, exclude_account=acct)
            for order_id in stale:
                ex.book.cancel(order_id)
            plan = self._within_budget(plan, bankrupt, sell, budget)
            if plan:
                sign = -1.0 if sell else 1.0
                ex._execute(acct, sign, plan, 0.0)
                for f in plan:
                    gap = (bankrupt - f.price) if sell else (f.price - bankrupt)
                    cost = max(gap, 0.0) * f.quantity
                    self._fund_transfer(acct, cost)
                    ex._log("insurance_fund", acct, f.maker, sign * f.quantity, f.price,
                            bankrupt, -cost, liquidation=self.episode)
        if led.size[acct] == 0.0 and led.collateral[acct] < 0.0:
            self._fund_pays(acct, -led.collateral[acct])

    def adl_stage(self, acct: int) -> None:
        """Close the rest against opposite positions: queue, pro rata or socialised loss.

        Each counterparty is first closed only as far as its own equity can pay
        for the price it is closed at (a solvent winner is never made bankrupt
        while solvent capacity is left); only if that is not enough are the
        counterparties closed beyond it, in the same order. A counterparty left
        flat and in deficit is then paid for by the fund, or else the deficit is
        settled by :meth:`_settle_deficit`.
        """
        cfg, led, ex = self.cfg, self.led, self.ex
        equity = self.ex.equity(acct)
        if cfg.adl_trigger == "negative_equity" and equity >= 0.0:
            return
        size = float(led.size[acct])
        bankrupt = self.ex.bankruptcy_price(acct)
        candidates = np.flatnonzero(led.view("size") * size < 0.0)
        if cfg.adl_allocation == "socialized_loss":
            self._socialize(acct, candidates, bankrupt)
            return
        # At the mark only while the fund can pay the gap to the bankruptcy price (OKX).
        deficit_at_mark = max(-equity, 0.0)
        at_mark = cfg.adl_price == "mark" and ex.fund.available(ex.time) >= deficit_at_mark
        price = ex.mark_price if at_mark else bankrupt
        top = self._top_winner(candidates)
        order, scores = self._adl_queue(candidates)
        quantities = np.abs(led.size[order])
        solvent = np.minimum(self._affordable(order, price), quantities)
        closes = self._allocate(solvent, led.adl_exempt[order], abs(size))
        shortfall = abs(size) - closes.sum()
        if shortfall > 1e-12 * abs(size):
            closes += self._allocate(quantities - closes, led.adl_exempt[order], shortfall)
            # Two passes can leave a position short of whole by rounding: no dust.
            closes = np.where(closes >= quantities * (1.0 - 1e-12), quantities, closes)
        hit = closes > 0.0
        if not hit.any():
            return
        exhausted = bool(np.all(closes == quantities))
        order, closes, scores = order[hit], closes[hit], scores[hit]
        ranks = np.flatnonzero(hit) + 1
        profit, leverage = self._profit_and_leverage(order, closes)
        sign = math.copysign(1.0, size)
        led.trade_many(order, sign * closes, price)
        self._close_liquidated(acct, closes.sum(), price, exhausted)
        for cp, q, s, r, pnl, lev in zip(order, closes, scores, ranks, profit, leverage,
                                         strict=True):
            ex._log("adl", int(cp), acct, sign * q, price, bankrupt, pnl,
                    liquidation=self.episode, score=s, rank=int(r), leverage=lev)
        self._log_top_winner(top, acct, bankrupt)
        if at_mark and led.size[acct] == 0.0 and led.collateral[acct] < 0.0:
            self._fund_pays(acct, -led.collateral[acct])
        for cp in order[(led.size[order] == 0.0) & (led.collateral[order] < -self._dust)]:
            self._settle_deficit(int(cp), bankrupt)

    # ------------------------------------------------------------------ pieces

    def _close_liquidated(self, acct: int, closed: float, price: float,
                          exhausted: bool = False) -> None:
        """The liquidated side of ADL fills adding up to `closed`; a sum within
        rounding of the whole position closes it exactly, leaving no dust. So does
        closing every opposite position (`exhausted`): with open interest balanced,
        what is left is the rounding dust of positions far larger than this one (a
        remainder of 10,000.05 − 10,000 against 0.05)."""
        size = float(self.led.size[acct])
        whole = exhausted or closed >= abs(size) * (1.0 - 1e-12)
        self.led.trade(acct, -size if whole else -math.copysign(closed, size), price)

    def _liquidation_order(self, acct: int, qty: float) -> float:
        """One liquidation order of `qty`, filled no worse than bankruptcy; returns the fill."""
        ex, led = self.ex, self.led
        size = led.size[acct]
        sell = size > 0
        bankrupt = self.ex.bankruptcy_price(acct)
        if not bankrupt > 0.0:  # a short already bankrupt at any price: nothing fills
            return 0.0
        plan, stale = ex._plan(SELL if sell else BUY, qty, bankrupt, exclude_account=acct)
        for order_id in stale:  # orders their makers cannot pay for: cancelled either way
            ex.book.cancel(order_id)
        if not plan:
            return 0.0
        sign = -1.0 if sell else 1.0
        ex._execute(acct, sign, plan, 0.0)
        notional = 0.0
        for f in plan:
            ex._log("liquidation", acct, f.maker, sign * f.quantity, f.price, bankrupt, 0.0,
                    liquidation=self.episode)
            notional += f.quantity * f.price
        # The fee never takes the account's equity at the mark below zero.
        fee = min(self.cfg.liquidation_fee * notional, max(self.ex.equity(acct), 0.0))
        if fee > 0.0:
            self._fund_transfer(acct, -fee)
            ex._log("liquidation_fee", acct, -1, 0.0, math.nan, bankrupt, fee,
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
        ex = self.ex
        paid = min(amount, ex.fund.available(ex.time))
        if paid <= self._dust:
            return 0.0
        self._fund_transfer(acct, paid)
        ex._log("insurance_fund", acct, -1, 0.0, math.nan, math.nan, -paid,
                liquidation=self.episode)
        return paid

    def _fund_transfer(self, acct: int, amount: float) -> None:
        """Move `amount` USD from the fund to the account (negative: to the fund)."""
        if amount == 0.0:
            return
        ex = self.ex
        ex.fund.balance -= amount
        self.led.credit(acct, amount)
        ex.fund.record(ex.time)

    def _settle_flat(self, acct: int) -> None:
        """After a full close, the rest of the margin goes where the venue sends it."""
        if self.cfg.surplus_to != "insurance_fund":
            return
        surplus = float(self.led.collateral[acct])
        if surplus > self._dust:
            self._fund_transfer(acct, -surplus)
            self.ex._log("insurance_fund", acct, -1, 0.0, math.nan, math.nan, surplus,
                         liquidation=self.episode)

    def _adl_queue(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidates in ADL order with their scores: exempt accounts last, then by score."""
        led, cfg = self.led, self.cfg
        size = led.size[candidates]
        mark = self.ex.mark_price
        mmr, _ = mechanics.tier_of(np.abs(size) * mark, cfg.mm_tiers)
        scores = adl.score(cfg.adl_rule, size, led.entry_price[candidates], mark,
                           led.collateral[candidates], mmr, rng=self.ex.rng)
        scores = np.asarray(scores, dtype=float)
        key_score = np.where(np.isnan(scores), -np.inf, scores)
        order = np.lexsort((candidates, -key_score, led.adl_exempt[candidates]))
        return candidates[order], scores[order]

    def _allocate(self, quantities: np.ndarray, exempt: np.ndarray, amount: float) -> np.ndarray:
        """Split `amount` over `quantities` (in ADL order) by the configured allocation."""
        if self.cfg.adl_allocation == "queue":
            return adl.queue_close(quantities, -np.arange(len(quantities), dtype=float), amount)
        return self._pro_rata(quantities, exempt, amount)

    def _profit_and_leverage(self, accounts: np.ndarray,
                             closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unrealised profit at the mark of the quantities about to be closed (USD), and
        each account's effective leverage, before the close."""
        led, mark = self.led, self.ex.mark_price
        size = led.size[accounts]
        per_unit = np.sign(size) * (mark - led.entry_price[accounts])
        equity = led.collateral[accounts] + size * (mark - led.entry_price[accounts])
        leverage = mechanics.effective_leverage(size, mark, equity)
        return closes * per_unit, np.asarray(leverage, dtype=float)

    def _top_winner(self, candidates: np.ndarray) -> int:
        """The candidate with the largest unrealised profit at the mark (lowest id on a
        tie), or −1 if none is in profit."""
        if len(candidates) == 0:
            return -1
        led = self.led
        profit = led.size[candidates] * (self.ex.mark_price - led.entry_price[candidates])
        best = int(np.argmax(profit))
        return int(candidates[best]) if profit[best] > 0.0 else -1

    def _log_top_winner(self, top: int, acct: int, bankrupt: float) -> None:
        """Log the round's top winner with the profit it keeps (PTSR's numerator)."""
        if top < 0:
            return
        led = self.led
        size = float(led.size[top])
        remaining = size * (self.ex.mark_price - led.entry_price[top]) if size else 0.0
        self.ex._log("adl_top_winner", top, acct, 0.0, self.ex.mark_price, bankrupt,
                     remaining, liquidation=self.episode)

    def _affordable(self, accounts: np.ndarray, price: float) -> np.ndarray:
        """Quantity each account can be closed at `price` before its equity at the mark
        turns negative (inf where closing there does not cost it anything)."""
        led = self.led
        mark = self.ex.mark_price
        size = led.size[accounts]
        # Closing q of a position of sign s at `price` changes equity by q·s·(price − mark).
        loss_per_unit = np.sign(size) * (mark - price)
        equity = led.collateral[accounts] + size * (mark - led.entry_price[accounts])
        with np.errstate(divide="ignore", invalid="ignore"):
            affordable = np.where(loss_per_unit > 0.0,
                                  np.maximum(equity, 0.0) / loss_per_unit, np.inf)
        return affordable

    def _settle_deficit(self, acct: int, bankrupt: float) -> None:
        """A flat account left in deficit: the fund pays what it can; under socialised
        loss the rest is spread over open interest; what is still owed is bad debt
        (logged once; a later deepening is logged as the difference)."""
        self.led.flat_deficits.discard(acct)
        deficit = -float(self.led.collateral[acct])
        deficit -= self._fund_pays(acct, deficit)
        if deficit > self._dust and self.cfg.adl_allocation == "socialized_loss":
            units = self._open_units(acct)
            if units.sum() > 0.0:
                self._spread_deficit(acct, deficit, bankrupt, units)
                return
        new_debt = deficit - self.bad_debt.get(acct, 0.0)
        if new_debt > self._dust:
            self.bad_debt[acct] = deficit
            self.ex._log("bad_debt", acct, -1, 0.0, math.nan, bankrupt, -new_debt,
                         liquidation=self.episode)

    def _open_units(self, exclude: int) -> np.ndarray:
        """|size| of every account but `exclude`; positions of rounding size count as 0."""
        units = np.abs(self.led.view("size")).copy()
        units[exclude] = 0.0
        units[units < 1e-12 * max(units.max(initial=0.0), 1e-300)] = 0.0
        return units

    def _spread_deficit(self, acct: int, deficit: float, bankrupt: float,
                        units: np.ndarray) -> None:
        """Charge `deficit` to the accounts in proportion to `units` (Drift's δ per unit
        of open interest, both sides) and credit it to the bankrupt `acct`."""
        led, ex = self.led, self.ex
        total = units.sum()
        if total == 0.0:
            return
        per_unit = deficit / total
        charged = np.flatnonzero(units)
        led.credit_many(charged, -per_unit * units[charged])
        led.credit(acct, deficit)
        for cp in charged:
            ex._log("socialized_loss", int(cp), acct, 0.0, math.nan, bankrupt,
                    -per_unit * units[cp], liquidation=self.episode, score=per_unit)

    @staticmethod
    def _pro_rata(quantities: np.ndarray, exempt: np.ndarray, amount: float) -> np.ndarray:
        """Close `amount` in proportion to size, from non-exempt positions first.

        The rounding remainder goes to the largest close, so the closes add up
        to min(amount, Σ quantities) and the books stay balanced.
        """
        closes = np.zeros_like(quantities)
        for group in (~exempt, exempt):
            available = quantities[group].sum()
            if amount <= 0.0 or available <= 0.0:
                continue
            if amount >= available * (1.0 - 1e-12):
                closes[group] = quantities[group]
            else:
                part = quantities[group] * (amount / available)
                largest = np.argmax(part)
                part[largest] = min(quantities[group][largest],
                                    part[largest] + amount - part.sum())
                closes[group] = part
            amount -= closes[group].sum()
        return closes

    def _socialize(self, acct: int, candidates: np.ndarray, bankrupt: float) -> None:
        """Drift: close pro rata at the mark, fund pays what it can, the rest per open unit.

        δ = deficit / (|OI long| + |OI short|) is taken over the open interest at
        the bankruptcy, before the close, so the positions closed against the
        bankrupt one pay their share too (and a tiny remainder cannot inflate δ).
        """
        ex, led = self.ex, self.led
        size = float(led.size[acct])
        mark = ex.mark_price
        quantities = np.abs(led.size[candidates])
        units_at_bankruptcy = self._open_units(acct)
        closes = self._pro_rata(quantities, np.zeros(len(candidates), dtype=bool), abs(size))
        hit = closes > 0.0
        if not hit.any():
            return
        top = self._top_winner(candidates)
        profit, leverage = self._profit_and_leverage(candidates[hit], closes[hit])
        sign = math.copysign(1.0, size)
        led.trade_many(candidates[hit], sign * closes[hit], mark)
        self._close_liquidated(acct, closes.sum(), mark, bool(np.all(closes == quantities)))
        for cp, q, pnl, lev in zip(candidates[hit], closes[hit], profit, leverage, strict=True):
            ex._log("adl", int(cp), acct, sign * q, mark, bankrupt, pnl,
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
        return 1e-12 * max(self.ex.money_in, 1.0)

    def _below_maintenance(self, acct: int) -> bool:
        return self.led.size[acct] != 0.0 and (
            self.ex.equity(acct) < self.ex.maintenance_margin(acct))

    def _by_urgency(self, accounts: np.ndarray) -> list[int]:
        """Accounts ordered by equity / maintenance margin, lowest first (ties by id)."""
        if len(accounts) == 0:
            return []
        led = self.led
        mark = self.ex.mark_price
        size = led.size[accounts]
        equity = led.collateral[accounts] + size * (mark - led.entry_price[accounts])
        ratio = equity / self.ex._mm(np.abs(size) * mark)
        return [int(a) for a in accounts[np.lexsort((accounts, ratio))]]

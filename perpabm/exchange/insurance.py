"""The insurance fund: a balance, the drawdown trigger of Bybit and OKX, and (Binance) a
margin account of its own that holds the positions it takes over."""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray

from perpabm import mechanics
from perpabm.exchange.kernels.market import MARK
from perpabm.exchange.ledger import Ledger


class InsuranceFund:
    """A USD balance that receives liquidation fees and surpluses and pays deficits.

    With ``drawdown_trigger`` set, the fund stops paying once its balance is
    that fraction below its peak over the last ``window`` time units, handing
    over to ADL early (Bybit: −30% against the 8-hour maximum; OKX: a 30% drop
    within 8 hours). The peak is a sliding-window maximum over the balances
    recorded at each change.

    Given a `ledger` (and the exchange's `market` figures, for the mark), the fund
    keeps its money in a margin account of that ledger, :attr:`account`, opened with
    the balance as collateral, so that it can hold positions (``fund_takeover``,
    Binance: "the Futures Insurance Funds will take over Bankrupt Positions"): its
    balance is then that account's equity at the mark — its cash and the
    mark-to-market of what it holds — and what it pays or receives is credited to
    that account. :attr:`cash` is the money held outside the ledger (all of it
    without an account, none with one), which the exchange's money count adds to
    the ledger's.
    """

    def __init__(
        self, balance: float, drawdown_trigger: float | None, window: float, time: float = 0.0,
        *, ledger: Ledger | None = None, market: NDArray[np.float64] | None = None,
    ) -> None:
        self.drawdown_trigger = drawdown_trigger
        self.window = window
        self.ledger = ledger
        self.market = market
        self.account: int | None = None
        """The fund's margin account in `ledger`, or None: a balance outside the ledger."""
        if ledger is None:
            self.cash = float(balance)
        else:
            self.account = ledger.open(float(balance), adl_exempt=True)
            self.cash = 0.0
        self._peaks: deque[tuple[float, float]] = deque([(time, self.balance)])

    @property
    def balance(self) -> float:
        """The fund's money, USD: its cash, or its account's equity at the mark."""
        if self.account is None:
            return self.cash
        led, acct = self.ledger, self.account
        size = float(led.size[acct])
        if size == 0.0:
            return float(led.collateral[acct])
        return float(mechanics.equity_at(led.collateral[acct], size, led.entry_price[acct],
                                         self.market[MARK]))

    @property
    def position(self) -> float:
        """The position the fund holds (base units, signed; 0 without an account)."""
        return 0.0 if self.account is None else float(self.ledger.size[self.account])

    def maintenance_margin(self) -> float:
        """The maintenance margin of what the fund holds at the mark (USD; 0 if nothing)."""
        size = self.position
        if size == 0.0:
            return 0.0
        notional = abs(size) * float(self.market[MARK])
        return float(mechanics.margin_from_table(notional, self.ledger.mmrs, self.ledger.cums))

    def snapshot(self) -> tuple[float, tuple[tuple[float, float], ...]]:
        """The cash and the recorded peaks, for :meth:`restore` (the account's state is
        the ledger's)."""
        return self.cash, tuple(self._peaks)

    def restore(self, snapshot: tuple[float, tuple[tuple[float, float], ...]]) -> None:
        """Put the cash and the peaks back as they were at :meth:`snapshot`."""
        self.cash, peaks = snapshot
        self._peaks = deque(peaks)

    def pay(self, amount: float, time: float) -> None:
        """Pay out `amount` USD (negative: receive it) at `time`."""
        if self.account is None:
            self.cash -= amount
        else:
            self.ledger.credit(self.account, -amount)
        self.record(time)

    def record(self, time: float) -> None:
        """Remember the current balance at `time` for the rolling peak."""
        balance = self.balance
        while self._peaks and self._peaks[-1][1] <= balance:
            self._peaks.pop()
        self._peaks.append((time, balance))

    def peak(self, time: float) -> float:
        """Highest recorded balance within the window ending at `time`."""
        while len(self._peaks) > 1 and self._peaks[0][0] < time - self.window:
            self._peaks.popleft()
        return max(self._peaks[0][1], self.balance)

    def triggered(self, time: float) -> bool:
        """True when the drawdown from the rolling peak has reached the trigger."""
        if self.drawdown_trigger is None:
            return False
        peak = self.peak(time)
        return peak > 0 and (peak - self.balance) / peak >= self.drawdown_trigger

    def available(self, time: float) -> float:
        """What the fund may pay now: its balance (less the maintenance margin of what it
        holds), or nothing once the trigger has fired."""
        if self.triggered(time):
            return 0.0
        if self.account is None:
            return max(self.balance, 0.0)
        return max(self.balance - self.maintenance_margin(), 0.0)

"""The insurance fund: a balance, and the drawdown trigger of Bybit and OKX."""

from __future__ import annotations

from collections import deque


class InsuranceFund:
    """A USD balance that receives liquidation fees and surpluses and pays deficits.

    With ``drawdown_trigger`` set, the fund stops paying once its balance is
    that fraction below its peak over the last ``window`` time units, handing
    over to ADL early (Bybit: −30% against the 8-hour maximum; OKX: a 30% drop
    within 8 hours). The peak is a sliding-window maximum over the balances
    recorded at each change.
    """

    def __init__(
        self, balance: float, drawdown_trigger: float | None, window: float, time: float = 0.0
    ) -> None:
        self.balance = float(balance)
        self.drawdown_trigger = drawdown_trigger
        self.window = window
        self._peaks: deque[tuple[float, float]] = deque([(time, self.balance)])

    def snapshot(self) -> tuple[float, tuple[tuple[float, float], ...]]:
        """The balance and the recorded peaks, for :meth:`restore`."""
        return self.balance, tuple(self._peaks)

    def restore(self, snapshot: tuple[float, tuple[tuple[float, float], ...]]) -> None:
        """Put the balance and the peaks back as they were at :meth:`snapshot`."""
        self.balance, peaks = snapshot
        self._peaks = deque(peaks)

    def pay(self, amount: float, time: float) -> None:
        """Pay out `amount` USD (negative: receive it) at `time`."""
        self.balance -= amount
        self.record(time)

    def record(self, time: float) -> None:
        """Remember the current balance at `time` for the rolling peak."""
        while self._peaks and self._peaks[-1][1] <= self.balance:
            self._peaks.pop()
        self._peaks.append((time, self.balance))

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
        """What the fund may pay now: its balance, or nothing once the trigger has fired."""
        return 0.0 if self.triggered(time) else max(self.balance, 0.0)

"""The index as the agents observe it: its path so far, its trend and realised volatility.

One :class:`IndexHistory` per path records the index at every step and answers what
several agents read of it in the same step — the trend over the traders' lookback, the
makers' realised volatility — from one array, computing each figure once a step.

Layout: ``prices[t]`` is the index (USD) after step ``t`` (``prices[0]`` the start
price), for ``t = 0 … step``; the array is allocated for the whole path up front.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from perpabm.compiled import kernel
from perpabm.exchange.kernels.pairwise import numpy_sum

__all__ = ["IndexHistory", "log_return_std"]


@kernel
def log_return_std(logs: NDArray[np.float64]) -> float:
    """Standard deviation of the differences of `logs` (log prices): the float
    ``np.diff(logs).std()`` gives, by the same steps — mean, squared deviations, mean —
    with numpy's sums (:func:`~perpabm.exchange.kernels.pairwise.numpy_sum`)."""
    returns = logs[1:] - logs[:-1]
    deviations = returns - numpy_sum(returns) / len(returns)
    return math.sqrt(numpy_sum(deviations * deviations) / len(returns))


class IndexHistory:
    """The index recorded step by step, for a path of at most `steps` steps.

    `step_years` is one step in years: realised volatility is annualised by
    √(1 / `step_years`) (one-minute steps: √525,600 ≈ 725).
    """

    def __init__(self, start_price: float, steps: int, step_years: float) -> None:
        self._prices = np.empty(steps + 1)
        self._prices[0] = start_price
        self.step = 0  # the last step recorded (0: only the start price)
        self._annualise = math.sqrt(step_years ** -1)  # a step's std to a year's
        # ((step, window), volatility): every maker asks the same in one step.
        self._volatility: tuple[tuple[int, int] | None, float] = (None, math.nan)

    def record(self, price: float) -> None:
        """The index after the next step, USD."""
        self.step += 1
        self._prices[self.step] = price

    @property
    def prices(self) -> NDArray[np.float64]:
        """The index after each step so far, the start price first (a read-only view)."""
        view = self._prices[: self.step + 1]
        view.flags.writeable = False
        return view

    def trend(self, lookback_steps: int) -> float:
        """Sign of the index move over the last `lookback_steps` steps (over all steps so
        far if fewer): +1.0 up, −1.0 down, 0.0 unchanged."""
        t = self.step
        move = float(self._prices[t]) - float(self._prices[max(0, t - lookback_steps)])
        return 1.0 if move > 0.0 else -1.0 if move < 0.0 else 0.0

    def realised_volatility(self, window_steps: int) -> float:
        """Annualised standard deviation of the last `window_steps` (≥ 2) log returns of the
        index, or NaN until that many steps have passed.

        Worked number: one-minute steps whose log returns alternate ±0.001 have a
        standard deviation of 0.001 a step, 0.001 × √525,600 ≈ 0.725 (72.5%) a year.
        """
        t = self.step
        if t < window_steps:
            return math.nan
        key = (t, window_steps)
        if self._volatility[0] != key:
            logs = np.log(self._prices[t - window_steps: t + 1])  # numpy's log, not libm's
            self._volatility = (key, log_return_std(logs) * self._annualise)
        return self._volatility[1]

"""The venue's running figures as one array the kernels update in place, and its terms.

- ``market``, float64 ``(3,)``: the :data:`MARK` price (USD; NaN until there is one —
  the first trade's price sets it then), the :data:`LAST_PRICE` traded (USD; NaN
  before the first trade) and the :data:`FEES` collected (USD, taker and maker fees
  on every fill through the book).
- ``terms``, a tuple of floats ``(taker_fee, maker_fee, max_leverage)``: fees as
  fractions of filled notional (a negative maker fee is a rebate), and the maximum
  leverage whose inverse is the initial-margin rate.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

MARK, LAST_PRICE, FEES = 0, 1, 2

type Terms = tuple[float, float, float]
"""``(taker_fee, maker_fee, max_leverage)``."""


def empty(mark: float | None) -> NDArray[np.float64]:
    """A market array with `mark` (None: no mark yet), no trade and no fees."""
    return np.array([math.nan if mark is None else mark, math.nan, 0.0])

"""Exact float sums for compiled code: ``math.fsum`` as numba kernels.

A sum is kept as *partials*: non-overlapping floats in increasing magnitude whose
exact (real-number) sum is the exact sum of everything added (Shewchuk, "Adaptive
Precision Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997).
:func:`rounded` rounds that exact sum to the nearest float, ties to even, by the
same steps as CPython's ``math.fsum`` (Modules/mathmodule.c, ``math_fsum``), so
that ``rounded`` of the partials of a list is ``math.fsum`` of the list, bit for
bit, for finite inputs whose sums do not overflow (quantities and prices do not).

The partials live in a caller's float64 array with their count beside it, so a
kernel keeps a running exact sum without allocating.
"""

from __future__ import annotations

import numpy as np

from perpabm.compiled import kernel

MAX_PARTIALS = 64
"""Room for the partials of any sum of finite float64s (at most ~40 are ever live)."""


@kernel
def add(partials: np.ndarray, n: int, x: float) -> int:
    """Add `x` to the exact sum held in ``partials[:n]``; returns the new count."""
    i = 0
    for j in range(n):
        y = partials[j]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            partials[i] = lo
            i += 1
        x = hi
    if x != 0.0:
        partials[i] = x
        i += 1
    return i


@kernel
def rounded(partials: np.ndarray, n: int) -> float:
    """The exact sum held in ``partials[:n]``, correctly rounded (half to even)."""
    if n == 0:
        return 0.0
    n -= 1
    hi = partials[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = partials[n]
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            break
    # Half-even rounding across partials: when the first inexact step left a tie
    # (lo) and the next partial lies the same way, round away from the tie.
    if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        if y == x - hi:
            hi = x
    return hi

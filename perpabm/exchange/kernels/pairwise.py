"""numpy's float64 sum, compiled: the value ``np.add.reduce`` returns, bit for bit, so
that a kernel can add up a figure the model once summed with numpy and get the same.

numpy sums a contiguous float64 array from its identity, 0.0, by pairwise summation:
blocks of at most 128 elements are added with eight interleaved accumulators, and
larger arrays are split in two at a multiple of eight (numpy's ``pairwise_sum`` in
``loops_utils.h.src``). ``tests/test_exact.py`` checks the equality on arrays of every
size class, with zeros of both signs and values of any magnitude.
"""

from __future__ import annotations

import numpy as np

from perpabm.compiled import kernel

BLOCK = 128  # numpy's PW_BLOCKSIZE


@kernel
def _block(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's sum of a block of ``n`` ≤ :data:`BLOCK` elements from ``a[lo]``: one by
    one under 8, else eight accumulators, combined as a tree, then the rest in turn."""
    if n < 8:
        total = 0.0
        for i in range(lo, lo + n):
            total += a[i]
        return total
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    end = lo + n - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        total += a[i]
        i += 1
    return total


@kernel
def _pairwise(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]``: a run longer than :data:`BLOCK` is
    the sum of its two halves (split at a multiple of 8), each summed the same way.

    The halves are walked with a stack rather than by recursion, which numba's cache
    does not reload safely.
    """
    if n <= BLOCK:
        return _block(a, lo, n)
    starts = np.empty(128, dtype=np.int64)  # a split halves a run: depth < 64
    lengths = np.empty(128, dtype=np.int64)
    split = np.zeros(128, dtype=np.bool_)
    sums = np.empty(128)
    starts[0], lengths[0], top, done = lo, n, 1, 0
    while top:
        k = top - 1
        if lengths[k] <= BLOCK:
            sums[done] = _block(a, starts[k], lengths[k])
            done += 1
            top -= 1
        elif split[k]:  # both halves summed, the first one below the second
            sums[done - 2] = sums[done - 2] + sums[done - 1]
            done -= 1
            top -= 1
        else:
            split[k] = True
            half = lengths[k] // 2
            half -= half % 8
            # The second half goes on the stack first, so the first is summed first.
            starts[top], lengths[top], split[top] = starts[k] + half, lengths[k] - half, False
            starts[top + 1], lengths[top + 1], split[top + 1] = starts[k], half, False
            top += 2
    return sums[0]


@kernel
def numpy_sum(a: np.ndarray) -> float:
    """``np.add.reduce(a)`` for a contiguous 1-d float64 array: the same float."""
    return 0.0 + _pairwise(a, 0, len(a))


@kernel
def positive_sum(a: np.ndarray, n: int) -> float:
    """``np.add.reduce(a[:n][a[:n] > 0])``: the sum of the positive ones of the first
    `n` elements, in order, as numpy adds them."""
    positive = np.empty(n)
    m = 0
    for i in range(n):
        if a[i] > 0.0:
            positive[m] = a[i]
            m += 1
    return 0.0 + _pairwise(positive, 0, m)

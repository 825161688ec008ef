"""Who ADL hit in a step, as the agents that respond to it read it.

The exchange logs one "adl" row per position it closes against a bankrupt one, with
``account`` the account closed and ``quantity`` the signed change to its position
(base units: + bought back, − sold). :func:`deleveraged` sums them per account.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from perpabm.exchange import Event


def deleveraged(events: Sequence[Event]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The accounts ADL closed positions of among `events` (their "adl" rows), in the
    order of their first hit, and the total signed change ADL made to each one's
    position (base units).

    Rows (account 4, −1.5), (account 9, +2), (account 4, −0.5) give accounts [4, 9]
    and changes [−2, +2]: account 4 was long and sold 2, account 9 short and bought 2.
    """
    rows = [(e.account, e.quantity) for e in events if e.kind == "adl"]
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0)
    accounts = np.array([account for account, _ in rows], dtype=np.int64)
    quantities = np.array([quantity for _, quantity in rows], dtype=np.float64)
    unique, first, inverse = np.unique(accounts, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=quantities, minlength=len(unique))
    by_first_hit = np.argsort(first, kind="stable")
    return unique[by_first_hit], totals[by_first_hit]

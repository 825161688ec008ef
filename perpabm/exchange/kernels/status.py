"""The status codes every kernel reports with, one enum for all of them.

A kernel that can refuse its input, or find a plan that no longer matches the book,
returns a :class:`Status` with, beside it, the place of the first offending item (an
order number, a fill number, an account number). Inside compiled code the members are
used as they are; a kernel called from Python returns ``status.value`` (a plain int:
boxing an enum member costs about 0.5 µs a call) and the Python wrapper turns a
non-zero code back into a :class:`Status` to word its one-line error.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """What a kernel found. ``OK`` is 0, so ``if code:`` tests for a problem."""

    OK = 0
    NOT_AN_ACCOUNT = 1  # an account id outside 0 … n_accounts − 1
    CLOSED_ACCOUNT = 2  # an account that has been closed
    BAD_QUANTITY = 3  # a quantity that is not finite and non-zero (+ buy, − sell)
    BAD_PRICE = 4  # a price or limit price that is not finite and > 0
    BAD_COUNTS = 5  # ladder counts that are negative or do not add up to the orders given
    STALE_MISSING = 6  # a planned fill's order is no longer resting
    STALE_MISMATCH = 7  # a planned fill's maker or price differs from the book's
    BAD_FILL = 8  # a planned fill's quantity is not finite and > 0
    OVERFILLED = 9  # the fills on one order exceed what is resting
    NO_FILLS = 10  # nothing within reach of a market order
    BELOW_MARGIN = 11  # the taker's initial margin would not cover the fills

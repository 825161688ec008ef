"""The exchange's event log: one row per liquidation fill, takeover, fund flow or ADL fill."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

EVENT_KINDS = (
    "liquidation",  # a liquidation order filled in the book
    "liquidation_fee",  # fee on liquidated notional, paid to the insurance fund
    "backstop",  # the backstop (vault) took over part of a position
    "insurance_fund",  # the fund paid (amount < 0) or received (amount > 0)
    "adl",  # an opposite position closed against the liquidated one
    "adl_top_winner",  # once per ADL round: the largest winner, and its profit left after it
    "socialized_loss",  # a deficit charged to an open position, per unit held
    "bad_debt",  # a deficit no stage could cover, left on a flat account (amount < 0)
    "funding",  # a funding payment round (amount = total paid by longs, score = rate)
    "fund_takeover",  # the insurance fund took over part of a position (fund_takeover)
    "fund_unwind",  # the insurance fund's unwind order filled in the book
    "fund_deposit",  # money added to the insurance fund from outside (amount > 0)
)


class Event(NamedTuple):
    """One event. Quantities are signed changes to ``account``'s position (base units);
    prices and amounts in USD; NaN where a field does not apply, −1 for no account.

    On "adl" rows, ``account`` is the winner closed and ``counterparty`` the liquidated
    account, the losing side of the fill (a model's events say what holds it in
    ``counterparty_type``: a trader's strategy, or the agent class, such as the vault
    whose account took a position over); ``quantity`` is the winner's change,
    ``price`` the price it was closed at (``adl_price``; under a profit-space
    allocation a winner's haircut is closed at that price and any rest at the mark, as
    two rows), ``bankruptcy_price`` the liquidated account's; ``amount`` is the
    unrealised profit at the mark of the quantity closed (what the ADL'd account was
    holding, USD), ``score`` and ``rank`` its place in the queue, and ``leverage``
    its effective leverage before the close. ``(price − mark_price)·quantity`` is
    what the winner paid through the price, ``(bankruptcy_price −
    mark_price)·quantity`` the liquidated account's deficit on the quantity
    (:func:`perpabm.analysis.adl_overshoot`).

    On "funding" rows, ``price`` is the mark the round paid at, ``score`` its rate
    (fraction of notional; > 0: longs pay) and ``amount`` the total longs paid (USD), so
    a long of one unit paid ``score · price``.

    On "fund_takeover" rows, ``account`` is the liquidated account, ``counterparty`` the
    insurance fund's (which takes the opposite change), ``price`` the bankruptcy price,
    and ``amount`` the equity at the mark the fund took on with the position: the
    account's remaining margin (> 0), or its deficit (< 0). On "fund_unwind" rows,
    ``account`` is the fund's, ``counterparty`` the maker, and ``amount`` what the fill
    gained against the mark, ``quantity·(mark_price − price)`` (USD; < 0: the unwind's
    slippage).

    On "adl_top_winner" rows (one per ADL round that had a winner in profit),
    ``account`` is the opposite position with the largest unrealised profit at
    the mark before the round, ``quantity`` is 0 (the row moves nothing; the
    round's "adl" rows say whether it was closed), and ``amount`` its unrealised
    profit at the mark left after the round (USD): the numerator of PTSR
    (Chitra 2025).
    """

    time: float
    kind: str
    liquidation: int  # id of the liquidation episode, −1 outside one
    account: int
    counterparty: int
    quantity: float
    price: float
    bankruptcy_price: float
    mark_price: float
    amount: float
    score: float
    rank: int
    insurance_fund: float  # fund balance after the event
    leverage: float = math.nan  # on "adl" rows: the ADL'd account's effective leverage


EVENT_COLUMNS = Event._fields

_DTYPES = {
    "time": "float64",
    "kind": "string",
    "liquidation": "int64",
    "account": "int64",
    "counterparty": "int64",
    "quantity": "float64",
    "price": "float64",
    "bankruptcy_price": "float64",
    "mark_price": "float64",
    "amount": "float64",
    "score": "float64",
    "rank": "int64",
    "insurance_fund": "float64",
    "leverage": "float64",
}
"""The dtype of each column of :func:`events_frame`."""


def event_columns(events: Sequence[Event]) -> dict[str, Any]:
    """The fields of `events` as typed columns: field name → one array of every event's
    value (a numpy array, or a pandas string array for ``kind``), in the order of
    :data:`EVENT_COLUMNS` and with the dtypes of :func:`events_frame`."""
    fields = zip(*events, strict=True) if events else ((),) * len(EVENT_COLUMNS)
    return {name: pd.array(values, dtype="string") if _DTYPES[name] == "string"
            else np.array(values, dtype=_DTYPES[name])
            for name, values in zip(EVENT_COLUMNS, fields, strict=True)}


def events_frame(events: Sequence[Event]) -> pd.DataFrame:
    """A typed DataFrame of `events` (an empty one keeps the columns and dtypes)."""
    return pd.DataFrame(event_columns(events))

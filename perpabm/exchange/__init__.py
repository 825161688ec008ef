"""The engine: ledger, order book, margin, liquidation waterfall, insurance fund, ADL, funding.

It knows nothing of Mesa; agents act on it only through :class:`Exchange`'s
public methods.
"""

from perpabm.exchange.book import BUY, SELL, Fill, OrderBook
from perpabm.exchange.engine import BackstopOffer, Exchange, InvariantError
from perpabm.exchange.events import EVENT_COLUMNS, EVENT_KINDS, Event

__all__ = [
    "BUY",
    "EVENT_COLUMNS",
    "EVENT_KINDS",
    "SELL",
    "BackstopOffer",
    "Event",
    "Exchange",
    "Fill",
    "InvariantError",
    "OrderBook",
]

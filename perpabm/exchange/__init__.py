"""The engine: ledger, order book, margin, liquidation waterfall, insurance fund, ADL,
funding and the venue's mark price.

It knows nothing of Mesa; agents act on it only through :class:`Exchange`'s public
methods. Layout: ``engine`` (the validated API) and ``liquidation`` (the waterfall)
both stand on ``clearing`` (the core: ledger, book, fund, events, mark); ``ledger``
and ``book`` wrap the compiled ``kernels``; ``insurance``, ``events`` and ``pricing``
hold the fund, the event rows and the mark and funding formulas.
"""

from perpabm.exchange.book import BUY, SELL, Fill, OrderBook
from perpabm.exchange.clearing import BackstopOffer, InvariantError
from perpabm.exchange.engine import Exchange
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

"""Venue presets: the liquidation and ADL rules of real exchanges, for one BTC perpetual.

Each function returns an :class:`~perpabm.config.ExchangeConfig`; its docstring says
what it models, from which venue documents, and what it simplifies
(``docs/venues.md`` sets the venues' rules out with their sources and worked
examples). Fee and tier numbers are the venues' published base-tier BTC figures at
the time of writing; check the venue before quoting them as current.

The presets are defined in :mod:`perpabm.config.exchange`, beside the class whose
:meth:`~perpabm.config.ExchangeConfig.preset` builds them; this is their public
module.
"""

from perpabm.config.exchange import PRESETS, binance, bitmex, drift, dydx, get, hyperliquid, names

__all__ = ["PRESETS", "binance", "bitmex", "drift", "dydx", "get", "hyperliquid", "names"]

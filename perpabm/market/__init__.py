"""The exogenous index price — stochastic processes, scripted shocks and replayed prices
(:mod:`perpabm.market.index`) — and the index as agents observe it
(:mod:`perpabm.market.history`). Spot-impact feedback is applied by the model, not here.
"""

from perpabm.market import index as _index
from perpabm.market.history import IndexHistory
from perpabm.market.index import *  # noqa: F403  (its __all__ is this package's)

__all__ = [*_index.__all__, "IndexHistory"]

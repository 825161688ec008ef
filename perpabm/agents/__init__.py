"""Mesa agents. They hold behaviour and parameters and act on the exchange only through
its public methods; their account state lives in the exchange. The leveraged traders'
parameters and exit triggers live in their :class:`TraderPopulation`'s arrays, which the
traders' properties read. Agents read their model's attributes (:class:`MarketModel`)
and never import it.

Custom agents: subclass :class:`LeveragedTrader` or :class:`MarketMaker`, register the
class in the scenario (``config.with_agent("mine", MyMaker, use_in="makers")``), and
the model builds it (:func:`trader_class`, :func:`maker_class`)."""

from perpabm.agents.arbitrageur import Arbitrageur
from perpabm.agents.basis import BasisTrader
from perpabm.agents.classes import maker_class, trader_class
from perpabm.agents.maker import MarketMaker
from perpabm.agents.population import TraderPopulation
from perpabm.agents.protocols import IndexObservations, MarketModel
from perpabm.agents.trader import LeveragedTrader
from perpabm.agents.vault import Vault

__all__ = ["Arbitrageur", "BasisTrader", "IndexObservations", "LeveragedTrader", "MarketMaker",
           "MarketModel", "TraderPopulation", "Vault", "maker_class", "trader_class"]

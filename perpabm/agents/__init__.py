"""Mesa agents. They hold behaviour and parameters and act on the exchange only through
its public methods; their account state lives in the exchange."""

from perpabm.agents.arbitrageur import Arbitrageur
from perpabm.agents.maker import MarketMaker
from perpabm.agents.trader import LeveragedTrader
from perpabm.agents.vault import Vault

__all__ = ["Arbitrageur", "LeveragedTrader", "MarketMaker", "Vault"]

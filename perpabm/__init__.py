"""perpabm: agent-based Monte Carlo of perpetual-swap exchanges.

When a perpetual-swap market breaks, who pays? The exchange engine liquidates
accounts through the order book, a backstop vault, an insurance fund and, as
the last resort, auto-deleveraging (ADL) of profitable opposite positions.
"""

from perpabm import adl, mechanics, presets
from perpabm.agents import LeveragedTrader, MarketMaker
from perpabm.config import ExchangeConfig, MarketConfig, ScenarioConfig, Shock
from perpabm.errors import ConfigError, MarginError, RunInterrupted, StorageError
from perpabm.exchange import BackstopOffer, Event, Exchange, InvariantError
from perpabm.model import PerpMarketModel
from perpabm.results import Results
from perpabm.runner import run_paths, sweep
from perpabm.scenarios import list_scenarios, load_scenario

__version__ = "0.1.0"

_LAZY = ("analysis", "plots", "report")  # scipy.stats, matplotlib: imported on first use


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"perpabm.{name}")
    raise AttributeError(f"module 'perpabm' has no attribute {name!r}")

__all__ = [
    "BackstopOffer",
    "ConfigError",
    "Event",
    "Exchange",
    "ExchangeConfig",
    "InvariantError",
    "LeveragedTrader",
    "MarginError",
    "MarketConfig",
    "MarketMaker",
    "PerpMarketModel",
    "Results",
    "RunInterrupted",
    "ScenarioConfig",
    "Shock",
    "StorageError",
    "__version__",
    "adl",
    "analysis",
    "list_scenarios",
    "load_scenario",
    "mechanics",
    "plots",
    "presets",
    "report",
    "run_paths",
    "sweep",
]

"""Parameters as frozen dataclasses, validated on construction.

Every invalid value raises :class:`perpabm.ConfigError` with a one-line message
that names the field (as a dotted path, e.g. ``exchange.max_leverage``) and the
allowed values. Change a config with :func:`dataclasses.replace` (or its
``replace`` method), which validates again. :mod:`perpabm.config.reference` documents
every setting (``docs/config.md``), from the docstrings beside the fields and from the
checks.
"""

from perpabm.config.exchange import ExchangeConfig
from perpabm.config.market import MarketConfig, Shock
from perpabm.config.scenario import (
    ArbitrageurConfig,
    BasisConfig,
    FundConfig,
    MakerConfig,
    RunConfig,
    ScenarioConfig,
    TraderConfig,
    VaultConfig,
)

__all__ = [
    "ArbitrageurConfig",
    "BasisConfig",
    "ExchangeConfig",
    "FundConfig",
    "MakerConfig",
    "MarketConfig",
    "RunConfig",
    "ScenarioConfig",
    "Shock",
    "TraderConfig",
    "VaultConfig",
]

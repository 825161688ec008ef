"""The exogenous index price: stochastic processes, scripted shocks and replayed prices.

See :mod:`perpabm.market.index`. Spot-impact feedback is applied by the model, not here.
"""

from perpabm.market.index import (
    DAYS_PER_YEAR,
    garch_t_log_returns,
    gbm_log_returns,
    index_log_returns,
    index_path,
    merton_log_returns,
    regime_log_returns,
    replay_log_returns,
    shock_log_returns,
)

__all__ = [
    "DAYS_PER_YEAR",
    "garch_t_log_returns",
    "gbm_log_returns",
    "index_log_returns",
    "index_path",
    "merton_log_returns",
    "regime_log_returns",
    "replay_log_returns",
    "shock_log_returns",
]

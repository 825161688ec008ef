"""Validation: the model's output held against what real markets show.

- :mod:`perpabm.validate.returns`: stylized facts of returns (heavy tails, no linear
  autocorrelation, volatility clustering), pure functions on arrays;
- :mod:`perpabm.validate.record`: a run's liquidations, ADL and vault outcomes against
  a published record of a real event (2025-10-10 on Hyperliquid), fact by fact, each
  with its source and the model's figure over paths.
"""

from perpabm.validate.record import (
    MEASURES,
    OCT10_2025,
    RECORDS,
    Fact,
    path_measures,
    record_table,
    validate_scenario,
)
from perpabm.validate.returns import (
    aggregate,
    autocorrelation,
    hill_exponent,
    hill_interval,
    stylized_facts,
)

__all__ = [
    "MEASURES",
    "OCT10_2025",
    "RECORDS",
    "Fact",
    "aggregate",
    "autocorrelation",
    "hill_exponent",
    "hill_interval",
    "path_measures",
    "record_table",
    "stylized_facts",
    "validate_scenario",
]

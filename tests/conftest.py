"""Shared fixtures and the hypothesis profiles of the suite.

``default`` (hypothesis' own settings) keeps the everyday suite fast; ``stress``
has ten times the examples and no time limits. Choose one with the environment
variable ``PERPABM_HYPOTHESIS_PROFILE``; ``make stress`` runs the property-based
tests under ``stress``. Property tests whose examples are costly take a fraction
of the profile's ``max_examples`` (``settings.default`` is the loaded profile).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from perpabm import ScenarioConfig, Shock, load_scenario

settings.register_profile("stress", max_examples=1_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PERPABM_HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def tiny() -> ScenarioConfig:
    """The crash scenario cut to 60 steps and 40 traders, its drop at step 20: paths
    of a few tens of milliseconds that liquidate, backstop and ADL."""
    config = load_scenario("crash").replace("traders.count", 40).replace("run.steps", 60)
    shock = config.market.shocks[0]
    return config.replace("market.shocks", (Shock(20, shock.change, 10),))

"""Hypothesis profiles for the suite.

``default`` (hypothesis' own settings) keeps the everyday suite fast; ``stress``
has ten times the examples and no time limits. Choose one with the environment
variable ``PERPABM_HYPOTHESIS_PROFILE``; ``make stress`` runs the property-based
tests under ``stress``. Property tests whose examples are costly take a fraction
of the profile's ``max_examples`` (``settings.default`` is the loaded profile).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("stress", max_examples=1_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PERPABM_HYPOTHESIS_PROFILE", "default"))

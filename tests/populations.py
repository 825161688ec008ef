"""Trader populations some tests' small markets need."""

LEVERED = {"traders.leverage_median": 10.0, "traders.leverage_sigma": 0.9}
"""Traders drawn at about 10x (σ 0.9 in logs, so some at 30x or more): the bundled
scenarios' traders, at about 5x, ride out a 15% drop, and a test that needs its small
market to reach liquidations and ADL sets this."""

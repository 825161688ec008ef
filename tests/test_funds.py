"""The ``funds`` section: large, lightly levered directional accounts, drawn and acting as
the leveraged traders do, from settings of their own, with their own account type and
random stream."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from perpabm import ConfigError, PerpMarketModel, ScenarioConfig
from perpabm.config import FundConfig
from perpabm.config.toml import dumps

FUNDS = {"funds.count": 40, "traders.count": 200, "run.steps": 60}


def test_no_funds_by_default():
    model = PerpMarketModel(ScenarioConfig().replace("run.steps", 1), rng=1)
    assert FundConfig().count == 0
    assert len(model.funds) == 0


def test_funds_are_their_own_account_type():
    model = PerpMarketModel("default", rng=1, **FUNDS)
    types = model.account_types
    assert (types[list(model.funds)] == "fund").all()
    assert not (types[list(model.traders)] == "fund").any()


def test_funds_are_drawn_from_their_own_settings():
    model = PerpMarketModel("default", rng=1, **FUNDS)
    accounts = model.funds.accounts
    config = model.config.funds
    # capital_scale · (1 + Lomax) ≥ capital_scale; leverage within [floor, cap · max].
    assert (model.funds.capital[accounts] >= config.capital_scale).all()
    leverage = model.funds.leverage[accounts]
    assert leverage.min() >= config.leverage_floor
    assert leverage.max() <= config.leverage_cap * model.config.exchange.max_leverage
    # Median 0.18, σ 1.9: P(L < 1) = Φ(ln(1/0.18)/1.9) = Φ(0.90) = 0.82; of 40, at least
    # half below 1x with near certainty.
    assert (leverage < 1.0).mean() > 0.5


def test_adding_funds_leaves_the_traders_draws_as_they_were():
    # The funds draw from a stream of their own: the traders' capital and leverage, drawn
    # first from theirs, are the same with and without them.
    without = PerpMarketModel("default", rng=9, **{**FUNDS, "funds.count": 0})
    with_funds = PerpMarketModel("default", rng=9, **FUNDS)
    accounts = without.traders.accounts
    np.testing.assert_array_equal(without.traders.capital[accounts],
                                  with_funds.traders.capital[accounts])
    np.testing.assert_array_equal(without.traders.leverage[accounts],
                                  with_funds.traders.leverage[accounts])


def test_funds_enter_and_hold_positions_with_spare_collateral():
    model = PerpMarketModel("default", rng=2, **{**FUNDS, "funds.entries_per_day": 1_000.0})
    model.run()
    ex = model.exchange
    held = [a for a in model.funds if ex.position(a) != 0.0]
    assert held, "no fund entered"
    spare = [a for a in held if model.funds[a].leverage < 1.0]
    for account in spare:  # notional at entry = equity × leverage < collateral
        assert abs(ex.position(account)) * ex.entry_price(account) < ex.collateral(account)
    ex.check_invariants()


def test_a_bad_fund_setting_names_the_funds_section():
    with pytest.raises(ConfigError, match=r"^funds\.leverage_sigma must be in \[0, 5\]"):
        ScenarioConfig().replace("funds.leverage_sigma", -1.0)
    with pytest.raises(ConfigError, match=r"funds\.leverage_floor \(50\) must not exceed"):
        ScenarioConfig().replace("funds.leverage_floor", 50.0)


def test_a_scenario_file_keeps_its_funds():
    config = ScenarioConfig().with_settings({"funds.count": 7, "funds.leverage_median": 0.3})
    text = dumps(config.to_dict())
    assert "[funds]" in text
    again = ScenarioConfig.from_dict(tomllib.loads(text))
    assert again.funds == config.funds

"""Agent classes of the user's: registered by name in a scenario (``agent_classes``),
named by ``traders.agent`` / ``makers.agent``, built by the model, written to TOML as
import paths and shipped with the config to worker processes."""

from __future__ import annotations

import dataclasses
import tomllib

import numpy as np
import pandas as pd
import pytest

from perpabm import ConfigError, PerpMarketModel, ScenarioConfig
from perpabm.agents import LeveragedTrader, MarketMaker
from perpabm.agents.maker import ladder_for
from perpabm.config.toml import dumps
from perpabm.runner import run_paths

MODULE = __name__  # the import path of the classes below is f"{MODULE}:{name}"


class TaggedTrader(LeveragedTrader):
    """A trader that remembers the step it arrived at (its orders are its population's)."""

    def __init__(self, model, population, account):
        super().__init__(model, population, account)
        self.arrived_at = model.step_index


class WideMaker(MarketMaker):
    """A maker quoting its ladder at twice its configured half spread."""

    def ladder(self) -> np.ndarray:
        wide = dataclasses.replace(self.config, half_spread=2 * self.config.half_spread)
        return ladder_for(self.model, self.account, wide)


def rank_by_size(size, entry_price, mark_price, collateral, mmr, rng):
    return np.abs(size)


# ---------------------------------------------------------------- the model builds them


def test_traders_named_in_the_scenario_are_of_that_class_and_trade_alike(tiny):
    config = tiny.with_agent("tagged", TaggedTrader, use_in="traders")
    assert config.traders.agent == "tagged"
    tagged, plain = PerpMarketModel(config, rng=2).run(), PerpMarketModel(tiny, rng=2).run()
    assert all(type(trader) is TaggedTrader for trader in tagged.traders.values())
    assert repr(tagged.summary()) == repr(plain.summary())


def test_makers_named_in_the_scenario_quote_their_own_ladder(tiny):
    config = tiny.with_agent("wide", WideMaker, use_in="makers")
    wide, plain = PerpMarketModel(config, rng=2), PerpMarketModel(tiny, rng=2)
    assert all(type(maker) is WideMaker for maker in wide.makers)
    touch = {}  # best ask − best bid after the first step's quotes, USD
    for name, model in (("wide", wide), ("plain", plain)):
        model.step()
        touch[name] = model.series["best_ask"].iloc[0] - model.series["best_bid"].iloc[0]
    assert touch["wide"] > touch["plain"] > 0


def test_the_default_classes_are_the_built_in_ones(tiny):
    model = PerpMarketModel(tiny, rng=2)
    assert (tiny.traders.agent, tiny.makers.agent) == ("leveraged", "maker")
    assert {type(m) for m in model.makers} == {MarketMaker}
    assert {type(t) for t in model.traders.values()} == {LeveragedTrader}


def test_a_class_named_by_its_import_path_is_imported_when_the_model_is_built(tiny):
    config = tiny.with_agent("tagged", f"{MODULE}:TaggedTrader", use_in="traders")
    model = PerpMarketModel(config, rng=2)
    assert all(type(trader) is TaggedTrader for trader in model.traders.values())


def test_agent_classes_travel_with_the_config_to_worker_processes(tiny):
    config = tiny.with_agent("wide", WideMaker, use_in="makers")
    serial = run_paths(config, n_paths=2, seed=5, n_jobs=1)
    parallel = run_paths(config, n_paths=2, seed=5, n_jobs=2)
    plain = run_paths(tiny, n_paths=2, seed=5, n_jobs=1)
    assert len(parallel.failures) == 0
    pd.testing.assert_frame_equal(serial.paths, parallel.paths, check_exact=True)
    assert not serial.paths.equals(plain.paths)  # the wide makers were what ran


# ---------------------------------------------------------------- files


def test_an_agent_class_is_written_as_its_import_path_and_read_back(tiny):
    config = tiny.with_agent("tagged", TaggedTrader, use_in="traders")
    assert config.to_dict()["agent_classes"] == {"tagged": f"{MODULE}:TaggedTrader"}
    text = dumps(config.to_dict())
    assert f'[agent_classes]\ntagged = "{MODULE}:TaggedTrader"' in text
    read = ScenarioConfig.from_dict(tomllib.loads(text))
    assert read.agent_classes == (("tagged", f"{MODULE}:TaggedTrader"),)
    assert read == config.replace("agent_classes", {"tagged": f"{MODULE}:TaggedTrader"})


def test_a_config_without_agent_classes_writes_no_table_of_them():
    assert "agent_classes" not in ScenarioConfig().to_dict()


# ---------------------------------------------------------------- the code a config runs


def test_custom_code_is_every_rule_and_agent_class_keyed_by_where_it_is_set(tiny):
    config = tiny.replace("exchange.adl_rules", {"by_size": rank_by_size})
    config = config.with_agent("tagged", f"{MODULE}:TaggedTrader").with_agent("wide", WideMaker)
    assert config.custom_code() == {"exchange.adl_rules.by_size": rank_by_size,
                                    "agent_classes.tagged": TaggedTrader,
                                    "agent_classes.wide": WideMaker}


def test_a_config_of_built_ins_runs_no_custom_code():
    assert ScenarioConfig().custom_code() == {}


# ---------------------------------------------------------------- bad input


def test_an_unknown_agent_name_is_a_one_line_error_naming_the_field_and_the_closest(tiny):
    config = tiny.with_agent("tagged", TaggedTrader)
    with pytest.raises(ConfigError, match=r"^traders\.agent must be one of \"leveraged\", "
                                          r"\"tagged\"; got 'taged' \(did you mean \"tagged\""):
        config.replace("traders.agent", "taged")


def test_a_class_of_the_wrong_base_is_an_error_naming_its_entry(tiny):
    config = tiny.with_agent("wide", WideMaker, use_in="traders")
    with pytest.raises(ConfigError, match=r"^agent_classes\['wide'\], named by traders\.agent, "
                                          r"must be a subclass of LeveragedTrader"):
        PerpMarketModel(config, rng=1)


def test_an_import_path_that_does_not_import_is_an_error_naming_its_entry(tiny):
    config = tiny.with_agent("gone", f"{MODULE}:NoSuchTrader", use_in="traders")
    with pytest.raises(ConfigError, match=r"^agent_classes\['gone'\]: cannot import"):
        PerpMarketModel(config, rng=1)
    with pytest.raises(ConfigError, match=r"^agent_classes\['gone'\]: cannot import"):
        config.custom_code()


def test_a_class_given_both_as_trader_class_and_in_the_scenario_is_refused(tiny):
    config = tiny.with_agent("tagged", TaggedTrader, use_in="traders")
    with pytest.raises(ConfigError, match=r"trader_class or as traders\.agent, not both"):
        PerpMarketModel(config, rng=1, trader_class=TaggedTrader)


@pytest.mark.parametrize(("classes", "match"), [
    ({"tagged": 3}, r"agent_classes\['tagged'\] must be a class or a 'package\.module:Class'"),
    ({"tagged": "test_agent_classes.TaggedTrader"}, r"agent_classes\['tagged'\] must be a class"),
    ({"leveraged": TaggedTrader}, r"'leveraged' is a built-in agent class"),
    ({"my trader": TaggedTrader}, r"agent_classes names must be letters, digits, _ and -"),
    ((("a", TaggedTrader), ("a", WideMaker)), r"agent_classes names a class twice"),
    ("tagged", r"agent_classes must map names to agent classes"),
    ((("a", TaggedTrader, 1),), r"agent_classes must map names to agent classes"),
])
def test_bad_agent_classes_are_one_line_errors_naming_the_field(classes, match):
    with pytest.raises(ConfigError, match=match) as info:
        ScenarioConfig(agent_classes=classes)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", [3, "", "my trader"])
def test_an_agent_setting_that_is_not_a_name_is_a_one_line_error(name):
    with pytest.raises(ConfigError, match=r"^traders\.agent must be letters, digits, _ and -"):
        ScenarioConfig().replace("traders.agent", name)


def test_use_in_must_be_an_agent_section():
    with pytest.raises(ConfigError, match=r'use_in must be one of "traders", "funds", "makers"'):
        ScenarioConfig().with_agent("tagged", TaggedTrader, use_in="trader")

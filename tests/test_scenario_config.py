"""ScenarioConfig: dotted paths, TOML round trips and one-line errors."""

from __future__ import annotations

import math
import tomllib

import pytest

from perpabm import ConfigError, ExchangeConfig, ScenarioConfig, load_scenario
from perpabm.config.scenario import TraderConfig


def test_replace_by_dotted_path_changes_one_field_and_validates():
    config = ScenarioConfig().replace("traders.count", 10_000)
    assert config.traders.count == 10_000
    assert config.get("traders.count") == 10_000
    assert config.makers == ScenarioConfig().makers


def test_replace_reaches_exchange_rules():
    config = ScenarioConfig().replace("exchange.adl_rule", "profit")
    assert config.exchange.adl_rule == "profit"


def test_a_dotted_path_reaches_an_entry_of_a_list_of_tables():
    config = load_scenario("oct10_2025")  # one shock: 15% over 10 minutes at 1,260
    changed = config.replace("market.shocks.0.change", -0.2)
    assert changed.market.shocks[0].change == -0.2
    assert changed.market.shocks[0].over_minutes == config.market.shocks[0].over_minutes
    assert changed.get("market.shocks.0.change") == -0.2
    assert config.with_settings({"market.shocks.0.over_minutes": 3.0}).get(
        "market.shocks.0.over_minutes") == 3.0


@pytest.mark.parametrize("path", ["market.shocks.1.change", "market.shocks.change",
                                  "market.shocks.x.change"])
def test_a_list_entry_out_of_range_or_unnamed_is_refused(path):
    with pytest.raises(ConfigError, match="shocks is a list of 1; name an entry 0 … 0"):
        load_scenario("oct10_2025").replace(path, -0.2)


def test_a_list_entry_checks_the_entrys_own_range():
    with pytest.raises(ConfigError, match=r"market\.shocks\.change"):
        load_scenario("oct10_2025").replace("market.shocks.0.change", -1.5)


def test_a_mistyped_path_suggests_the_closest_setting():
    with pytest.raises(ConfigError, match='did you mean "count"'):
        ScenarioConfig().replace("traders.cuont", 5)


def test_an_out_of_range_value_names_the_field():
    with pytest.raises(ConfigError, match=r"traders\.stop_loss"):
        ScenarioConfig().replace("traders.stop_loss", 1.5)


def test_strategy_mix_needs_three_non_negative_weights():
    with pytest.raises(ConfigError, match="strategy_mix"):
        TraderConfig(strategy_mix=(1.0, 0.0))


def test_strategy_mix_weights_must_be_finite():
    # An infinite weight would make the shares inf/inf: NaN probabilities.
    with pytest.raises(ConfigError, match=r"traders\.strategy_mix\[0\]"):
        TraderConfig(strategy_mix=(math.inf, 0.0, 0.0))


def test_dict_round_trip_is_exact_for_every_bundled_scenario():
    for name in ("default", "crash", "oct10_2025"):
        config = load_scenario(name)
        assert ScenarioConfig.from_dict(config.to_dict()) == config


def test_unknown_section_suggests_the_closest():
    with pytest.raises(ConfigError, match='did you mean "traders"'):
        ScenarioConfig.from_dict({"trader": {"count": 5}})


def test_unknown_scenario_name_suggests_the_closest():
    with pytest.raises(ConfigError, match='did you mean "crash"'):
        load_scenario("crsh")


def test_a_scenario_file_is_read_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[exchange]\npreset = "binance"\n[traders]\ncount = 7\n')
    config = load_scenario(path)
    assert (config.name, config.exchange.name, config.traders.count) == ("mine", "binance", 7)


def test_invalid_toml_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[traders\ncount = 7\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML") as info:
        load_scenario(path)
    assert "\n" not in str(info.value)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read scenario file"):
        load_scenario(tmp_path / "nope.toml")


def test_exchange_preset_replaces_the_exchange_section_with_the_venue_rules():
    config = load_scenario("default").replace("exchange.preset", "drift")
    assert config.exchange == ExchangeConfig.preset("drift")


def test_a_sweep_point_applies_its_preset_before_the_presets_settings():
    from perpabm.runner import point_config

    point = {"exchange.adl_rule": "profit", "exchange.preset": "binance"}
    config = point_config(load_scenario("default"), point)
    assert config.exchange == ExchangeConfig.preset("binance").replace(adl_rule="profit")


def test_a_custom_adl_rule_is_named_by_its_import_path_in_a_scenario_file():
    from perpabm import Exchange, ScenarioConfig
    from perpabm.config.toml import dumps

    path = "test_adl:collateral_rule"
    config = ScenarioConfig.from_dict(
        {"exchange": {"adl_rules": {"mine": path}, "adl_rule": "mine"}})
    assert config.exchange.adl_rules == (("mine", path),)
    assert f'mine = "{path}"' in dumps(config.to_dict())  # written back as it was read
    assert ScenarioConfig.from_dict(tomllib.loads(dumps(config.to_dict()))) == config
    assert Exchange(config.exchange).core.adl_rule.__name__ == "collateral_rule"


def test_a_custom_adl_rule_given_as_a_function_is_written_as_its_import_path():
    from perpabm import ScenarioConfig

    def mine(size, entry_price, mark_price, collateral, mmr, rng):
        return size

    config = ScenarioConfig().replace("exchange.adl_rules", {"mine": mine})
    assert config.to_dict()["exchange"]["adl_rules"] == {"mine": f"{__name__}:{mine.__qualname__}"}


def test_with_settings_applies_a_preset_first_and_the_other_settings_on_top():
    # Given after the fee in the mapping, the preset still goes first: otherwise it would
    # replace the exchange section and drop taker_fee = 0.001.
    config = ScenarioConfig().with_settings({"exchange.taker_fee": 0.001,
                                            "exchange.preset": "binance",
                                            "traders.count": 50})
    assert config.exchange.name == "binance"
    assert config.exchange.taker_fee == 0.001 and config.traders.count == 50


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5, float("nan"), "5%"])
def test_a_liquidator_share_outside_0_to_1_is_refused_naming_it(share):
    with pytest.raises(ConfigError, match=r"vault\.liquidator_share") as info:
        ScenarioConfig().replace("vault.liquidator_share", share)
    assert "\n" not in str(info.value)


def test_a_liquidator_share_of_1_is_refused_when_the_vault_quotes():
    # All the capital in the liquidator's account leaves market making's with none.
    with pytest.raises(ConfigError, match=r"vault\.liquidator_share = 1 leaves market making"):
        ScenarioConfig().replace("vault.quotes", True).replace("vault.liquidator_share", 1.0)
    quiet = ScenarioConfig().replace("vault.quotes", False).replace("vault.liquidator_share", 1.0)
    assert quiet.vault.liquidator_share == 1.0

"""The configuration reference: every setting documented beside its field, the allowed
values taken from the checks, docs/config.md generated from both, and a scenario's TOML
with a note above each key that reads back as the same scenario."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path

import pytest

from perpabm import ConfigError, ScenarioConfig
from perpabm.config import reference
from perpabm.config.checks import recording
from perpabm.config.market import Shock
from perpabm.config.scenario import TraderConfig
from perpabm.scenarios import list_scenarios, load_scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"


def documented_settings() -> tuple[reference.Setting, ...]:
    """The reference's settings; none while a field has no docstring (which
    test_every_config_field_has_a_docstring names), so that the file still collects."""
    try:
        return reference.settings()
    except ValueError:
        return ()


SETTINGS = documented_settings()
INTERVAL = re.compile(r"\bin ([\[(])([^,]+), ([^\])]+)([\])])")  # "in (0, 1]"
JUST_PAST = 1e-9  # how far past a closed bound a value outside is, relative to the bound


def build(path: str, value: object) -> object:
    """The config with the setting at `path` set to `value` (a shock's keys on a shock)."""
    if path.startswith("market.shocks."):
        return Shock(**{"at_minute": 0, "change": 0.0, path.rpartition(".")[2]: value})
    return ScenarioConfig().replace(path, value)


# ---------------------------------------------------------------------- documented


def test_docs_config_md_is_generated_from_the_code():
    committed = (DOCS / "config.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(), (
        f"docs/config.md is out of date; regenerate it with `{reference.REGENERATE}`")


def test_docs_readme_links_the_reference():
    assert "(config.md)" in (DOCS / "README.md").read_text(encoding="utf-8")


def test_every_config_field_has_a_docstring():
    assert reference.undocumented() == [], (
        "give each config field a docstring on the line after it: [unit] meaning")


def test_every_numeric_setting_states_its_unit():
    numeric = [s for s in SETTINGS if re.search(r"\b(int|float)\b", s.type)]
    assert [s.path for s in numeric if not s.unit] == []
    assert {"traders.count", "exchange.mm_tiers", "market.shocks.change"} <= {
        s.path for s in numeric}


def test_every_setting_states_the_values_its_checks_allow():
    assert [s.path for s in SETTINGS if not s.allowed] == []


def test_the_unit_is_the_bracketed_start_of_the_docstring():
    stop_loss = next(s for s in SETTINGS if s.path == "traders.stop_loss")
    assert stop_loss.unit == "fraction of entry price"
    assert stop_loss.meaning.startswith("A position is closed")


@dataclasses.dataclass
class PartlyDocumented:
    first: int = 1
    """[steps] Documented."""
    second: int = 2


def test_field_docs_are_the_strings_after_the_fields_and_only_those():
    assert reference.field_docs(PartlyDocumented) == {"first": "[steps] Documented."}


# ---------------------------------------------------------------------- enforced


def test_checks_record_the_constraint_they_apply_only_while_recording():
    with recording() as found:
        TraderConfig()
    assert found["traders.stop_loss"] == ["in (0, 1)"]
    assert "each in [0, inf)" in found["traders.strategy_mix"]  # an item's check, per item
    with recording() as again:
        pass
    TraderConfig()
    assert again == {}


def beyond_bounds() -> list:
    """(path, value) just outside each documented interval: an open bound itself, or
    past a closed finite one."""
    cases = []
    for s in SETTINGS:
        for opening, low, high, closing in INTERVAL.findall(s.allowed):
            low, high = float(low), float(high)
            if opening == "(":
                cases.append(pytest.param(s.path, low, id=f"{s.path}={low:g}"))
            elif math.isfinite(low):
                below = low - max(1.0, abs(low)) * JUST_PAST
                cases.append(pytest.param(s.path, below, id=f"{s.path}<{low:g}"))
            if closing == ")":
                cases.append(pytest.param(s.path, high, id=f"{s.path}={high:g}"))
            elif math.isfinite(high):
                above = high + max(1.0, abs(high)) * JUST_PAST
                cases.append(pytest.param(s.path, above, id=f"{s.path}>{high:g}"))
    return cases


@pytest.mark.parametrize(("path", "value"), beyond_bounds())
def test_a_value_outside_the_documented_interval_is_rejected(path, value):
    with pytest.raises(ConfigError, match=re.escape(path)):
        build(path, value)


def closed_bounds() -> list:
    """(path, value) at each closed finite bound of a setting with no other constraint."""
    cases = []
    for s in SETTINGS:
        found = INTERVAL.findall(s.allowed)
        if len(found) != 1 or ";" in s.allowed:
            continue
        opening, low, high, closing = found[0]
        for bound, closed in ((float(low), opening == "["), (float(high), closing == "]")):
            if closed and math.isfinite(bound):
                cases.append(pytest.param(s.path, bound, id=f"{s.path}={bound:g}"))
    return cases


@pytest.mark.parametrize(("path", "value"), closed_bounds())
def test_a_closed_bound_of_the_documented_interval_is_allowed(path, value):
    build(path, value)


def test_every_number_setting_states_an_interval():
    numbers = [s for s in SETTINGS if s.type in ("float", "float | None")]
    assert [s.path for s in numbers if not INTERVAL.search(s.allowed)] == []


# ---------------------------------------------------------------------- commented TOML


@pytest.mark.parametrize("name", list_scenarios())
def test_commented_toml_reads_back_as_the_same_scenario(name):
    config = load_scenario(name)
    assert ScenarioConfig.from_dict(tomllib.loads(reference.commented_toml(config))) == config


def test_commented_toml_reads_back_with_settings_the_defaults_leave_out():
    config = (ScenarioConfig()
              .replace("exchange.fund_drawdown_trigger", 0.3)
              .replace("exchange.adl_rules", {"largest": "perpabm.adl:score"})
              .replace("exchange.adl_rule", "largest")
              .replace("market.replay", "prices.csv")
              .replace("market.shocks", [Shock(10, -0.1, 5), Shock(20, 0.05)]))
    text = reference.commented_toml(config)
    assert ScenarioConfig.from_dict(tomllib.loads(text)) == config
    assert "fund_drawdown_trigger (not set)" not in text


def test_commented_toml_puts_a_note_above_every_key_and_section():
    lines = reference.commented_toml(load_scenario("crash")).splitlines()
    written = [k for k, line in enumerate(lines) if line and not line.startswith("#")]
    assert {"max_leverage = 40.0", "[[market.shocks]]", "at_minute = 600"} <= {
        lines[k] for k in written}
    assert [lines[k] for k in written if not lines[k - 1].startswith("#")] == []


def test_a_note_gives_meaning_unit_and_allowed_values():
    lines = reference.commented_toml(ScenarioConfig()).splitlines()
    key = lines.index("capital_scale = 5000.0")
    start = max(k for k in range(key) if not lines[k].startswith("#")) + 1
    note = " ".join(line.removeprefix("# ") for line in lines[start:key])
    assert note.startswith("The least starting capital: a trader's is capital_scale")
    assert note.endswith("Unit: USD. Allowed: in (0, inf).")


def test_a_setting_left_out_is_described_above_the_next_key():
    text = reference.commented_toml(ScenarioConfig())
    before_window = text.split("\nfund_drawdown_window = ")[0]
    assert "# fund_drawdown_trigger (not set): The insurance fund stops paying" in before_window

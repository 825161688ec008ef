"""Mesa's own tools on PerpMarketModel: its DataCollector of the summary figures, and
``mesa.batch_run`` building the model from keyword parameters."""

from __future__ import annotations

import warnings

import mesa
import numpy as np
import pytest

from perpabm import ConfigError, PerpMarketModel
from perpabm.model import SUMMARY_FIGURES
from perpabm.runner import path_seed

SEED = 5


def batch_run(parameters: dict, n_seeds: int, max_steps: int) -> list[dict]:
    """``mesa.batch_run`` in this process, on the seeds of paths 0 … n_seeds − 1 of SEED."""
    return mesa.batch_run(PerpMarketModel, parameters=parameters, number_processes=1,
                          rng=[path_seed(SEED, k) for k in range(n_seeds)],
                          max_steps=max_steps, display_progress=False)


def figures(row: dict) -> np.ndarray:
    return np.array([row[name] for name in SUMMARY_FIGURES])


def summary_of(config, seed) -> np.ndarray:
    return np.array(list(PerpMarketModel(config, rng=seed).run().summary().values()))


# ---------------------------------------------------------------- batch_run


def test_batch_run_gives_each_run_one_row_of_its_summary_figures(tiny):
    rows = batch_run({"config": tiny}, n_seeds=2, max_steps=tiny.run.steps)
    assert len(rows) == 2
    for k, row in enumerate(rows):
        assert row["Step"] == tiny.run.steps
        np.testing.assert_array_equal(figures(row), summary_of(tiny, path_seed(SEED, k)))


def test_batch_run_sweeps_a_setting_given_as_its_dotted_path(tiny):
    rows = batch_run({"config": tiny, "traders.count": [10, 30]}, n_seeds=1,
                     max_steps=tiny.run.steps)
    assert [row["traders.count"] for row in rows] == [10, 30]
    for row in rows:
        config = tiny.replace("traders.count", row["traders.count"])
        np.testing.assert_array_equal(figures(row), summary_of(config, path_seed(SEED, 0)))


def test_batch_run_takes_a_bundled_scenario_by_its_name():
    rows = batch_run({"config": "crash", "run.steps": 5, "traders.count": 10}, n_seeds=1,
                     max_steps=5)
    assert rows[0]["config"] == "crash"
    assert rows[0]["steps"] == 5.0


def test_a_path_stopped_before_its_last_step_warns_and_reports_the_steps_taken(tiny):
    with pytest.warns(RuntimeWarning, match=f"step 10 of {tiny.run.steps}: the path has not"):
        rows = batch_run({"config": tiny}, n_seeds=1, max_steps=10)
    assert rows[0]["steps"] == 10.0


# ---------------------------------------------------------------- keyword settings


def test_settings_given_as_dotted_keywords_change_the_config_preset_first(tiny):
    model = PerpMarketModel(tiny, rng=1, **{"traders.count": 12, "exchange.preset": "binance"})
    assert model.config == tiny.replace("exchange.preset", "binance").replace("traders.count", 12)


def test_an_unknown_keyword_is_a_one_line_type_error_naming_the_closest(tiny):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'rgn' \(did you mean "
                                        r"\"rng\"\?\); a setting is a dotted path"):
        PerpMarketModel(tiny, rgn=1)


def test_an_unknown_dotted_setting_is_a_config_error_naming_the_closest(tiny):
    with pytest.raises(ConfigError, match='did you mean "count"'):
        PerpMarketModel(tiny, rng=1, **{"traders.cuont": 3})


# ---------------------------------------------------------------- the DataCollector


def test_the_datacollector_read_after_the_run_holds_one_row_the_summary(tiny):
    model = PerpMarketModel(tiny, rng=3).run()
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame.columns) == list(model.summary())
    np.testing.assert_array_equal(frame.to_numpy(), [list(model.summary().values())])


def test_reading_the_datacollector_again_at_the_same_time_collects_no_new_row(tiny):
    model = PerpMarketModel(tiny, rng=3).run()
    model.datacollector  # noqa: B018 — the read collects
    assert len(model.datacollector.get_model_vars_dataframe()) == 1


def test_a_path_whose_datacollector_is_never_read_never_computes_its_summary(tiny,
                                                                            monkeypatch):
    calls = []
    monkeypatch.setattr(PerpMarketModel, "summary", lambda self: calls.append(1))
    PerpMarketModel(tiny, rng=3).run()
    assert calls == []


def test_one_collection_computes_the_summary_once(tiny, monkeypatch):
    model = PerpMarketModel(tiny, rng=3).run()
    summary, calls = PerpMarketModel.summary, []
    monkeypatch.setattr(PerpMarketModel, "summary",
                        lambda self: calls.append(1) or summary(self))
    model.collect()
    assert calls == [1]


def test_the_model_stops_running_after_its_last_step(tiny):
    model = PerpMarketModel(tiny, rng=3)
    for _ in range(tiny.run.steps - 1):
        model.step()
    assert model.running
    model.step()
    assert not model.running


def test_summary_before_any_step_is_that_of_the_starting_state(tiny):
    model = PerpMarketModel(tiny, rng=3)
    summary = model.summary()
    assert summary["steps"] == 0.0
    assert summary["vault_min_equity"] == model.vault.equity == tiny.vault.capital


def test_a_datacollector_of_ones_own_replaces_it_and_is_not_collected_for_one(tiny):
    model = PerpMarketModel(tiny, rng=3)
    own = mesa.DataCollector(model_reporters={"index": "index"})
    model.datacollector = own
    model.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not finished" warning: it is not collected
        assert model.datacollector is own
    own.collect(model)
    assert own.get_model_vars_dataframe()["index"].tolist() == [model.index]

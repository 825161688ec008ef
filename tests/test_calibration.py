"""Specification tests for perpabm.calibration: the objective's terms, and a synthetic
check — the fit recovers a parameter from figures the model itself produced."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perpabm import Shock, load_scenario, run_paths
from perpabm.calibration import MAX_TERM, calibrate, objective_terms
from perpabm.validate import Fact, record_table

LN_100_SQUARED = math.log(100.0) ** 2  # 21.2


def fact(measure: str, low: float, high: float) -> Fact:
    return Fact(measure, measure, "—", low, high, "a test")


def terms(**medians: float) -> pd.Series:
    facts = {"adl_duration_seconds": fact("adl_duration_seconds", 652.6, 652.6),
             "adl_median_leverage": fact("adl_median_leverage", 0.18, 0.20),
             "adl_to_liquidated": fact("adl_to_liquidated", 0.382, 0.617),
             "vault_return": fact("vault_return", 0.075, 0.146),
             "bad_debt_share": fact("bad_debt_share", 0.0, 0.0)}
    chosen = tuple(facts[name] for name in medians)
    return objective_terms(pd.Series(medians, dtype=float), chosen)


def test_a_term_is_the_squared_log_ratio_to_the_nearer_end():
    # ln(652.6 / 240)² = 1.0003² ; ln(3.27 / 0.20)² = 2.7936²
    got = terms(adl_duration_seconds=240.0, adl_median_leverage=3.27)
    assert got["adl_duration_seconds"] == pytest.approx(math.log(652.6 / 240.0) ** 2)
    assert got["adl_median_leverage"] == pytest.approx(math.log(3.27 / 0.20) ** 2)
    assert got["adl_median_leverage"] == pytest.approx(7.80, abs=0.01)


def test_a_figure_inside_the_records_range_costs_nothing():
    assert terms(adl_to_liquidated=0.6)["adl_to_liquidated"] == 0.0


def test_twice_too_large_and_half_as_large_cost_the_same():
    high = terms(adl_duration_seconds=2 * 652.6)["adl_duration_seconds"]
    low = terms(adl_duration_seconds=652.6 / 2)["adl_duration_seconds"]
    assert high == pytest.approx(low) == pytest.approx(math.log(2.0) ** 2)


@pytest.mark.parametrize("median", [math.nan, -0.01, 0.0, 0.075 / 200])
def test_missing_wrong_sign_or_a_factor_100_off_counts_as_100(median):
    assert terms(vault_return=median)["vault_return"] == pytest.approx(LN_100_SQUARED)
    assert MAX_TERM == pytest.approx(LN_100_SQUARED)


def test_a_record_of_zero_counts_the_gap_in_tenths_of_a_percent():
    # (0.0005 / 0.001)² = 0.25; 0 meets it; 0.5 counts at most 21.2
    assert terms(bad_debt_share=0.0005)["bad_debt_share"] == pytest.approx(0.25)
    assert terms(bad_debt_share=0.0)["bad_debt_share"] == 0.0
    assert terms(bad_debt_share=0.5)["bad_debt_share"] == pytest.approx(LN_100_SQUARED)


# A market small enough to fit in seconds: 100 traders, 30 one-minute steps, a drop at
# minute 5. Nobody is liquidated, and the vault's market making loses about in
# proportion to the drop, so its return identifies the drop's size.
SMALL = (load_scenario("oct10_2025").replace("traders.count", 100)
         .replace("run.steps", 30).replace("market.shocks", (Shock(5, -0.15, 10),)))
TRUE_CHANGE = -0.12
RECOVERY_TOLERANCE = 0.02  # of the drop's size, in a range 0.25 wide


@pytest.mark.slow
def test_calibration_recovers_a_drop_from_data_the_model_made():
    truth = SMALL.replace("market.shocks.0.change", TRUE_CHANGE)
    probe = (fact("vault_return", 0.0, 0.0),)
    observed = record_table(run_paths(truth, 4, seed=11, n_jobs=1), truth, probe)
    median = float(observed.loc[0, "model"])
    record = (fact("vault_return", median, median),)
    # other seeds than the "data": the fit cannot match the draws, only the parameter
    fit = calibrate(SMALL, {"market.shocks.0.change": (-0.3, -0.05)}, record, n_paths=4,
                    seed=5, popsize=6, maxiter=4, n_jobs=1)
    assert fit.parameters["market.shocks.0.change"] == pytest.approx(
        TRUE_CHANGE, abs=RECOVERY_TOLERANCE)
    assert fit.objective < 0.01  # the vault's return within 10% of the data's
    assert len(fit.history) == 6 * (4 + 1)
    assert fit.config.get("market.shocks.0.change") == fit.parameters[
        "market.shocks.0.change"]


@pytest.mark.slow
def test_every_candidate_runs_on_the_fits_seeds_and_the_fit_is_reproducible():
    # common random numbers: a candidate's figure is that of run_paths at its parameter
    # with the fit's seed, so J is a function of the parameters alone
    record = (fact("vault_return", 0.01, 0.01),)
    fit = calibrate(SMALL, {"market.shocks.0.change": (-0.3, -0.05)}, record, n_paths=2,
                    seed=5, popsize=3, maxiter=1, n_jobs=1)
    for row in fit.history.head(2).itertuples():
        change = row._3  # the parameter's column, after evaluation, generation
        alone = SMALL.replace("market.shocks.0.change", change)
        median = record_table(run_paths(alone, 2, seed=5, n_jobs=1), alone, record)
        assert row.model_vault_return == median.loc[0, "model"]
    again = calibrate(SMALL, {"market.shocks.0.change": (-0.3, -0.05)}, record, n_paths=2,
                      seed=5, popsize=3, maxiter=1, n_jobs=1)
    pd.testing.assert_frame_equal(fit.history, again.history)


def test_bad_parameter_ranges_are_named():
    with pytest.raises(ValueError, match=r"parameters\['vault\.cap'\] must be a"):
        calibrate(SMALL, {"vault.cap": (3.0, 1.0)}, (fact("vault_return", 0, 0),))
    with pytest.raises(ValueError, match="at least one"):
        calibrate(SMALL, {}, (fact("vault_return", 0, 0),))


def test_one_fact_a_measure():
    twice = (fact("vault_return", 0.0, 0.0), fact("vault_return", 0.1, 0.1))
    with pytest.raises(ValueError, match="one fact a measure"):
        calibrate(SMALL, {"vault.cap": (1.0, 3.0)}, twice)


def test_the_bundled_calibrated_scenario_is_the_experiments_fit():
    # experiments/calibration/run.py writes it; `make figures` copies it into the package
    root = Path(__file__).parents[1]
    written = root / "experiments" / "calibration" / "oct10_2025_calibrated.toml"
    bundled = root / "perpabm" / "scenarios" / "oct10_2025_calibrated.toml"
    assert bundled.read_text() == written.read_text()
    assert load_scenario("oct10_2025_calibrated").run.clock == "adaptive"


@pytest.mark.slow
def test_each_candidate_is_measured_with_its_own_config():
    # the vault's return is its P&L over its own capital: a candidate's capital, not the
    # starting scenario's
    record = (fact("vault_return", 0.01, 0.01),)
    fit = calibrate(SMALL, {"vault.capital": (1e6, 2e7)}, record, n_paths=2, seed=5,
                    popsize=2, maxiter=0, n_jobs=1)
    for capital, figure in zip(fit.history["vault.capital"],
                               fit.history["model_vault_return"], strict=True):
        alone = SMALL.replace("vault.capital", capital)
        paths = run_paths(alone, 2, seed=5, n_jobs=1).paths
        assert figure == pytest.approx(float(np.median(paths["vault_pnl"] / capital)))

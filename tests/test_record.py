"""Specification tests for perpabm.validate.record: a run held against a published record.

The measures and the table are checked on a hand-made results set of three paths whose
arithmetic is written out below; one test runs the bundled record end to end.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from perpabm import load_scenario
from perpabm.cli import main
from perpabm.results import Results
from perpabm.validate import (
    MEASURES,
    OCT10_2025,
    RECORDS,
    Fact,
    path_measures,
    record_table,
    validate_scenario,
)

CONFIG = load_scenario("oct10_2025")  # one-minute steps, a vault of 10M USD
NAN = math.nan


def _adl(path: int, time: float, liquidation: int, amount: float, quantity: float,
         price: float, mark: float, leverage: float, losing: str) -> dict:
    return {"point": 0, "path": path, "time": time, "kind": "adl",
            "liquidation": liquidation, "account": 10 + path, "counterparty": 1,
            "quantity": quantity, "price": price, "bankruptcy_price": price,
            "mark_price": mark, "amount": amount, "leverage": leverage,
            "account_type": "noise", "counterparty_type": losing}


def hand_made() -> Results:
    """Three paths (point 0):

    - path 0: first ADL 60 s after the cascade began; 2M USD liquidated in the book,
      3M taken over, 1.5M closed by ADL; the vault ends 0.4M up; two ADL fills, at
      steps 1,262 and 1,273, in episodes 1 and 2, closing shorts of 1 and 3 units at
      110 with the mark at 100 — covering (110 − 100)·1 = 10 and (110 − 100)·3 = 30 of
      deficit — and closing 50 and 30 of profit; leverage 0.1 and 2.0; the losing sides
      the vault's liquidator and a trader;
    - path 1: ADL 120 s after; 1M liquidated, nothing taken over, 2M by ADL; the vault
      0.1M down; 10,000 USD of bad debt; one fill at step 1,266 selling 2 units of a
      long at 90 with the mark at 100 — covering (90 − 100)·(−2) = 20 — at a loss of
      5, leverage 0.3, against the vault's market-making account;
    - path 2: no ADL; 0.5M liquidated and 0.5M taken over; the vault 0.2M up.
    """
    paths = pd.DataFrame({
        "point": [0, 0, 0], "path": [0, 1, 2],
        "first_adl_delay_seconds": [60.0, 120.0, NAN],
        "liquidated_notional": [2e6, 1e6, 5e5], "backstop_notional": [3e6, 0.0, 5e5],
        "adl_notional": [1.5e6, 2e6, 0.0], "adl_fired": [1.0, 1.0, 0.0],
        "vault_pnl": [4e5, -1e5, 2e5], "bad_debt": [0.0, 1e4, 0.0],
    })
    events = pd.DataFrame([
        _adl(0, 1262.0, 1, 50.0, 1.0, 110.0, 100.0, 0.1, "vault_liquidator"),
        _adl(0, 1273.0, 2, 30.0, 3.0, 110.0, 100.0, 2.0, "noise"),
        _adl(1, 1266.0, 3, -5.0, -2.0, 90.0, 100.0, 0.3, "vault_market_making"),
        {"point": 0, "path": 2, "time": 1200.0, "kind": "liquidation", "liquidation": 4,
         "account": 7, "counterparty": -1, "quantity": 1.0, "price": 100.0,
         "bankruptcy_price": 95.0, "mark_price": 100.0, "amount": 0.0, "leverage": NAN,
         "account_type": "noise", "counterparty_type": None},
    ])
    return Results(paths=paths, events=events, series=pd.DataFrame())


@pytest.fixture(scope="module")
def measures() -> pd.DataFrame:
    return path_measures(hand_made(), CONFIG).set_index("path")


def test_adl_fired_is_one_or_zero_a_path(measures):
    assert measures["adl_fired"].tolist() == [1.0, 1.0, 0.0]


def test_delay_is_the_paths_cascade_delay(measures):
    assert measures["adl_delay_seconds"].tolist()[:2] == [60.0, 120.0]
    assert math.isnan(measures.loc[2, "adl_delay_seconds"])


def test_duration_is_first_to_last_fill_in_seconds(measures):
    # (1,273 − 1,262) steps · 60 s; one fill: 0; no ADL: NaN
    assert measures.loc[0, "adl_duration_seconds"] == 660.0
    assert measures.loc[1, "adl_duration_seconds"] == 0.0
    assert math.isnan(measures.loc[2, "adl_duration_seconds"])


def test_adl_to_liquidated_counts_book_and_takeovers(measures):
    # 1.5 / (2 + 3) = 0.3; 2 / (1 + 0) = 2; no ADL: NaN
    assert measures.loc[0, "adl_to_liquidated"] == pytest.approx(0.3)
    assert measures.loc[1, "adl_to_liquidated"] == pytest.approx(2.0)
    assert math.isnan(measures.loc[2, "adl_to_liquidated"])


def test_in_profit_is_the_share_of_fills_closing_profit(measures):
    assert measures.loc[0, "adl_in_profit"] == 1.0  # +50, +30
    assert measures.loc[1, "adl_in_profit"] == 0.0  # −5


def test_median_leverage_over_the_paths_fills(measures):
    assert measures.loc[0, "adl_median_leverage"] == pytest.approx((0.1 + 2.0) / 2)
    assert measures.loc[1, "adl_median_leverage"] == pytest.approx(0.3)


def test_vault_losing_share_weighs_fills_by_notional(measures):
    # path 0: 1·110 against the liquidator, 3·110 against a trader: 110 / 440 (by
    # count it would be 1 / 2); path 1: all of it against the vault's market making
    assert measures.loc[0, "vault_losing_share"] == 0.25
    assert measures.loc[1, "vault_losing_share"] == 1.0


def test_vault_return_is_pnl_over_its_capital(measures):
    # 0.4M, −0.1M, 0.2M over 10M
    np.testing.assert_allclose(measures["vault_return"], [0.04, -0.01, 0.02])


def test_overshoot_ratio_sums_the_paths_episodes(measures):
    # path 0: ((50 − 10) + (30 − 30)) / (10 + 30) = 1; path 1: (−5 − 20) / 20 = −1.25
    assert measures.loc[0, "overshoot_ratio"] == pytest.approx(1.0)
    assert measures.loc[1, "overshoot_ratio"] == pytest.approx(-1.25)
    assert math.isnan(measures.loc[2, "overshoot_ratio"])


def test_bad_debt_share_is_over_the_liquidated_notional(measures):
    # 0 / 5M; 10,000 / 1M; 0 / 1M
    np.testing.assert_allclose(measures["bad_debt_share"], [0.0, 0.01, 0.0])


def test_every_measure_is_a_column_in_path_order():
    frame = path_measures(hand_made(), CONFIG)
    assert list(frame.columns) == ["point", "path", *MEASURES]
    assert frame["path"].tolist() == [0, 1, 2]


def test_an_unknown_measure_is_named():
    with pytest.raises(ValueError, match="'delay' is not one of"):
        path_measures(hand_made(), CONFIG, ("delay",))


def test_table_median_and_band_over_the_paths_that_give_the_figure():
    # delays 60 and 120 (path 2 has none): median 90; 5th percentile 60 + 0.05·60 = 63,
    # 95th 60 + 0.95·60 = 117; the record 62 lies below the band, a range 50–63 meets it
    facts = (Fact("adl_delay_seconds", "delay", "s", 62.0, 62.0, "a replay"),
             Fact("adl_delay_seconds", "delay, two sources", "s", 50.0, 63.0, "two"))
    table = record_table(hand_made(), CONFIG, facts)
    assert table["paths"].tolist() == [2, 2]
    assert table["model"].tolist() == [90.0, 90.0]
    np.testing.assert_allclose(table["model_low"], [63.0, 63.0])
    np.testing.assert_allclose(table["model_high"], [117.0, 117.0])
    assert table["matches"].tolist() == [False, True]
    assert table["record"].tolist() == ["62", "50–63"]


def test_a_yes_no_fact_takes_the_share_of_paths():
    # ADL on paths 0 and 1 of three: mean 2/3; the band over (0, 1, 1): 5th percentile
    # 0 + 0.1·(1 − 0) = 0.1 (position 0.05·2 = 0.1), 95th 1; the record 1 lies in it
    facts = (Fact("adl_fired", "ADL fired", "share of paths", 1.0, 1.0, "the day",
                  statistic="mean"),)
    table = record_table(hand_made(), CONFIG, facts)
    assert table.loc[0, "statistic"] == "mean"
    assert table.loc[0, "model"] == pytest.approx(2 / 3)
    assert table.loc[0, "model_low"] == pytest.approx(0.1)
    assert table.loc[0, "model_high"] == 1.0
    assert table.loc[0, "matches"]


def test_table_band_width_is_a_parameter():
    # band 0.5: 25th and 75th percentiles of (60, 120): 75 and 105
    facts = (Fact("adl_delay_seconds", "delay", "s", 62.0, 62.0, "a replay"),)
    table = record_table(hand_made(), CONFIG, facts, band=0.5)
    assert (table.loc[0, "model_low"], table.loc[0, "model_high"]) == (75.0, 105.0)


def test_a_fact_no_path_gives_is_not_matched_either_way():
    results = hand_made()
    results.paths = results.paths[results.paths["path"] == 2]
    results.events = results.events[results.events["path"] == 2]
    table = record_table(results, CONFIG, (Fact("overshoot_ratio", "o", "ratio", 3.0, 3.4,
                                                "a paper"),))
    assert table.loc[0, "paths"] == 0 and math.isnan(table.loc[0, "model"])
    assert table.loc[0, "matches"] is pd.NA


def test_a_fact_checks_its_measure_and_its_range():
    with pytest.raises(ValueError, match=r"Fact\.measure must be one of"):
        Fact("delay", "d", "s", 1.0, 1.0, "x")
    with pytest.raises(ValueError, match="low must be ≤ high"):
        Fact("adl_delay_seconds", "d", "s", 2.0, 1.0, "x")
    with pytest.raises(ValueError, match=r"Fact\.statistic must be one of"):
        Fact("adl_delay_seconds", "d", "s", 1.0, 1.0, "x", statistic="mode")


def test_the_bundled_record_names_a_source_for_every_fact():
    assert RECORDS["oct10_2025"] is OCT10_2025
    assert len(OCT10_2025) == len(MEASURES)
    assert {f.measure for f in OCT10_2025} == set(MEASURES)
    assert all(f.source and f.description and f.unit for f in OCT10_2025)


@pytest.mark.slow
def test_validate_scenario_runs_and_tables_every_fact():
    config = load_scenario("oct10_2025").replace("traders.count", 200)
    table, results = validate_scenario(config, 2, seed=3, n_jobs=1)
    assert len(results.paths) == 2
    assert len(table) == len(OCT10_2025)
    measured = path_measures(results, config)
    for fact, row in zip(OCT10_2025, table.itertuples(), strict=True):
        values = measured[fact.measure].dropna()
        assert row.paths == len(values)
        statistic = np.mean if fact.statistic == "mean" else np.median
        if len(values):
            assert row.model == pytest.approx(float(statistic(values)))


def test_cli_refuses_an_unknown_record_in_one_line(capsys):
    code = main(["validate", "oct10_2025", "--paths", "1", "--record", "oct11", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "record must be one of" in err[0]


@pytest.mark.slow
def test_cli_prints_every_fact_and_its_numbered_source(capsys):
    code = main(["validate", "oct10_2025", "--paths", "1", "--jobs", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 paths (seed 0)" in out
    for number, fact in enumerate(OCT10_2025, start=1):
        assert fact.description in out
        assert f"  {number}. {fact.source}" in out

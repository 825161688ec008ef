"""Statistics checked against known answers on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from perpabm import analysis


def bernoulli_paths(p: float, n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"adl_fired": (rng.random(n) < p).astype(float),
                         "steps": 1440.0, "adl_fills": 0.0})


def test_wilson_interval_covers_p_at_about_the_nominal_rate():
    # 400 samples of 200 Bernoulli(0.1) paths: a 95% interval should miss about 20 times;
    # the binomial sd of the miss count is √(400·0.05·0.95) ≈ 4.4, so allow 0.95 − 3 sd.
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        row = analysis.adl_frequency(bernoulli_paths(0.1, 200, rng)).iloc[0]
        covered += row["low"] <= 0.1 <= row["high"]
    assert covered / 400 >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / 400)


def test_clopper_pearson_matches_the_beta_quantiles():
    paths = pd.DataFrame({"adl_fired": [1.0] * 3 + [0.0] * 17})
    row = analysis.adl_frequency(paths, method="exact").iloc[0]
    # Clopper–Pearson for 3 of 20: Beta(3, 18) at 2.5% and Beta(4, 17) at 97.5%.
    assert row["low"] == pytest.approx(stats.beta.ppf(0.025, 3, 18))
    assert row["high"] == pytest.approx(stats.beta.ppf(0.975, 4, 17))


def test_frequency_is_grouped_by_the_swept_column():
    paths = pd.DataFrame({"rule": ["a", "a", "b", "b"], "adl_fired": [1.0, 0.0, 1.0, 1.0]})
    table = analysis.adl_frequency(paths, by="rule")
    assert table["share"].tolist() == [0.5, 1.0] and table["rule"].tolist() == ["a", "b"]


def test_poisson_interval_for_zero_events_is_zero_to_three_point_seven():
    # Garwood, 95%: for k = 0 the upper end is χ²(0.975; 2)/2 = −ln(0.025) ≈ 3.689.
    assert analysis.poisson_interval(0) == (0.0, pytest.approx(-math.log(0.025)))


def test_adl_rate_is_events_per_path_day():
    paths = pd.DataFrame({"adl_fills": [3.0, 1.0], "steps": [1440.0, 1440.0]})
    row = analysis.adl_rate(paths).iloc[0]
    assert row["rate"] == 2.0  # 4 events over 2 path-days
    assert row["low"] < 2.0 < row["high"]


def test_var_and_es_of_a_normal_sample():
    # N(0, 1): VaR95 = 1.645, ES95 = φ(1.645)/0.05 = 2.063; sd of each estimate over
    # 200,000 draws is below 0.01, so 0.03 is three of them.
    x = np.random.default_rng(2).standard_normal(200_000)
    assert analysis.value_at_risk(x, 0.95) == pytest.approx(1.645, abs=0.03)
    assert analysis.expected_shortfall(x, 0.95) == pytest.approx(
        stats.norm.pdf(1.645) / 0.05, abs=0.03)


def test_vault_pnl_table_has_intervals_around_the_estimates():
    rng = np.random.default_rng(3)
    paths = pd.DataFrame({"vault_pnl": rng.normal(1_000.0, 5_000.0, 400)})
    row = analysis.vault_pnl(paths, n_resamples=500).iloc[0]
    assert row["mean_low"] < row["mean"] < row["mean_high"]
    assert row["mean_low"] < 1_000.0 < row["mean_high"]
    assert row["es95"] > row["var95"] > 0
    # P(loss) of N(1000, 5000) is Φ(−0.2) ≈ 0.42.
    assert row["p_loss_low"] < stats.norm.cdf(-0.2) < row["p_loss_high"]


def test_max_drawdown_is_the_largest_fall_from_a_peak():
    assert analysis.max_drawdown([100, 120, 90, 130, 117]) == pytest.approx(0.25)  # 120 → 90


def test_mcnemar_counts_discordant_pairs():
    a = [1, 1, 0, 0, 1, 0]
    b = [1, 0, 1, 1, 1, 1]
    result = analysis.mcnemar(a, b)
    assert (result["only_a"], result["only_b"]) == (1, 3)
    assert result["pvalue"] == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)


def test_paired_difference_uses_the_same_paths():
    paths = pd.DataFrame({"cap": [0, 0, 0, 1, 1, 1], "path": [0, 1, 2, 0, 1, 2],
                          "vault_pnl": [1.0, 2.0, 3.0, 2.0, 4.0, 6.0]})
    table = analysis.paired_difference(paths, "vault_pnl", "cap", 0, 1)
    assert len(table) == 1
    # Differences per path: 2 − 1, 4 − 2, 6 − 3 = 1, 2, 3; their mean is 2.
    assert table["pairs"].iloc[0] == 3 and table["mean_difference"].iloc[0] == pytest.approx(2.0)


def rules_by_caps() -> pd.DataFrame:
    """A 2 rules × 2 caps sweep of 3 paths, as Results.paths carries it (dotted factors).
    ADL notional at cap 1.5 is the cap-0 figure less 10 under "profit", less 40 under
    "leverage"."""
    rows = []
    for rule, cut in (("profit", 10.0), ("leverage", 40.0)):
        for cap in (0.0, 1.5):
            for path in range(3):
                base = 100.0 * (path + 1)
                rows.append({"exchange.adl_rule": rule, "vault.cap": cap, "path": path,
                             "adl_notional": base - (cut if cap else 0.0)})
    return pd.DataFrame(rows)


def test_paired_difference_pairs_within_each_combination_of_the_other_factors():
    table = analysis.paired_difference(rules_by_caps(), "adl_notional", by="vault.cap",
                                       a=0.0, b=1.5)
    by_rule = table.set_index("exchange.adl_rule")
    assert sorted(by_rule.index) == ["leverage", "profit"]
    assert by_rule.loc["profit", "pairs"] == 3 and by_rule.loc["leverage", "pairs"] == 3
    assert by_rule.loc["profit", "mean_difference"] == pytest.approx(-10.0)
    assert by_rule.loc["leverage", "mean_difference"] == pytest.approx(-40.0)


def test_paired_difference_holds_renamed_factors_fixed_when_named():
    paths = rules_by_caps().rename(columns={"exchange.adl_rule": "rule", "vault.cap": "cap"})
    with pytest.raises(ValueError, match=r"several rows for path 0 at cap = 0\.0.*within="):
        analysis.paired_difference(paths, "adl_notional", by="cap", a=0.0, b=1.5)
    table = analysis.paired_difference(paths, "adl_notional", by="cap", a=0.0, b=1.5,
                                       within="rule")
    assert table.set_index("rule")["mean_difference"].to_dict() == {
        "leverage": pytest.approx(-40.0), "profit": pytest.approx(-10.0)}


def test_paired_difference_names_a_value_that_was_not_run():
    with pytest.raises(ValueError, match=r"b = 4\.0 is not a value of 'vault.cap'"):
        analysis.paired_difference(rules_by_caps(), "adl_notional", "vault.cap", 0.0, 4.0)


def test_paired_difference_of_yes_no_outcomes_carries_mcnemar_per_combination():
    paths = rules_by_caps().assign(adl_fired=lambda f: (f["adl_notional"] > 250).astype(float))
    table = analysis.paired_difference(paths, "adl_fired", "vault.cap", 0.0, 1.5)
    # Only path 2 (notional 300) fires at cap 0; at cap 1.5 it drops to 290 ("profit",
    # still fires) or 260 ("leverage", still fires): no discordant pair in either rule.
    assert table["mcnemar_only_a"].tolist() == [0, 0]
    assert table["mcnemar_pvalue"].tolist() == [1.0, 1.0]


def test_gini_is_zero_for_equal_and_n_minus_one_over_n_for_one_holder():
    assert analysis.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert analysis.gini([0, 0, 0, 8]) == pytest.approx(3 / 4)


def test_lorenz_curve_of_equal_amounts_is_the_diagonal():
    x, y = analysis.lorenz_curve([2, 2, 2, 2])
    np.testing.assert_allclose(x, y)


def test_top_share_is_the_largest_amounts_share():
    assert analysis.top_share([1, 2, 7]) == pytest.approx(0.7)


def test_overshoot_is_profit_closed_minus_deficit_covered():
    # One episode, two winners closed at the bankruptcy price 90 with the mark at 88:
    # A closes 60 (profit closed 720), C closes 40 (480); the deficit they cover is
    # (90 − 88)·100 = 200, so the overshoot is 1,200 − 200 = 1,000.
    events = pd.DataFrame({
        "kind": ["adl", "adl"], "liquidation": [1, 1], "account": [1, 2],
        "quantity": [60.0, 40.0], "price": [90.0, 90.0], "mark_price": [88.0, 88.0],
        "amount": [720.0, 480.0], "leverage": [2.75, 0.17]})
    row = analysis.adl_overshoot(events).iloc[0]
    assert (row["profit_closed"], row["deficit_covered"], row["overshoot"]) == (
        pytest.approx(1_200.0), pytest.approx(200.0), pytest.approx(1_000.0))
    haircuts = analysis.adl_haircuts(events)
    assert haircuts["cost_vs_mark"].tolist() == [pytest.approx(120.0), pytest.approx(80.0)]


def test_ptsr_is_the_top_winners_remaining_profit_over_the_deficit_covered():
    # The episode above covers a deficit of 200; its top winner keeps 600 of profit
    # after the round, so it could have paid the deficit 600 / 200 = 3 times over.
    events = pd.DataFrame({
        "kind": ["adl", "adl", "adl_top_winner"], "liquidation": [1, 1, 1],
        "account": [1, 2, 2], "quantity": [60.0, 40.0, 0.0], "price": [90.0, 90.0, 88.0],
        "mark_price": [88.0, 88.0, 88.0], "amount": [720.0, 480.0, 600.0],
        "leverage": [2.75, 0.17, float("nan")]})
    row = analysis.adl_overshoot(events).iloc[0]
    assert row["top_winner_remaining"] == pytest.approx(600.0)
    assert row["ptsr"] == pytest.approx(3.0)


def test_ptsr_is_undefined_when_adl_at_the_mark_covers_no_deficit():
    events = pd.DataFrame({
        "kind": ["adl", "adl_top_winner"], "liquidation": [1, 1], "account": [1, 1],
        "quantity": [10.0, 0.0], "price": [88.0, 88.0], "mark_price": [88.0, 88.0],
        "amount": [120.0, 0.0], "leverage": [2.0, float("nan")]})
    assert math.isnan(analysis.adl_overshoot(events)["ptsr"].iloc[0])


def test_leverage_buckets_are_closed_below_and_open_above():
    buckets = analysis.leverage_bucket([0.5, 1.0, 4.99, 5.0, 19.0, 20.0, 250.0])
    assert buckets.astype(str).tolist() == ["0–1x", "1–2x", "2–5x", "5–10x", "10–20x",
                                            "≥20x", "≥20x"]


def adl_fills(path: list[int], account_type: list[str], leverage: list[float],
              amount: list[float]) -> pd.DataFrame:
    n = len(path)
    return pd.DataFrame({
        "point": [0] * n, "path": path, "kind": ["adl"] * n, "account": list(range(n)),
        "account_type": account_type, "leverage": leverage, "amount": amount,
        "quantity": [-1.0] * n})


def test_adl_by_group_splits_profit_closed_by_trader_type_and_leverage():
    # Noise traders lose 300 + 100 of 600 closed; the momentum trader 200.
    events = adl_fills([0, 0, 1], ["noise", "momentum", "noise"], [1.5, 8.0, 3.0],
                       [300.0, 200.0, 100.0])
    by_type = analysis.adl_by_group(events, by="account_type").set_index("account_type")
    assert by_type.loc["noise", "share"] == pytest.approx(400 / 600)
    assert by_type.loc["momentum", "share"] == pytest.approx(200 / 600)
    assert (by_type.loc["noise", "fills"], by_type.loc["noise", "accounts"]) == (2, 2)
    by_bucket = analysis.adl_by_group(events, by="leverage_bucket")
    assert by_bucket["leverage_bucket"].astype(str).tolist() == ["1–2x", "2–5x", "5–10x"]
    assert by_bucket["profit_closed"].tolist() == [300.0, 100.0, 200.0]


def test_adl_by_group_shares_sum_to_one_and_their_intervals_hold_them():
    rng = np.random.default_rng(6)
    n = 200
    events = adl_fills(rng.integers(0, 40, n).tolist(),
                       rng.choice(["noise", "momentum", "contrarian"], n).tolist(),
                       rng.uniform(1, 20, n).tolist(), rng.exponential(100.0, n).tolist())
    table = analysis.adl_by_group(events, by="account_type")
    assert table["share"].sum() == pytest.approx(1.0)
    assert ((table["low"] <= table["share"]) & (table["share"] <= table["high"])).all()


def test_haircuts_keep_the_account_type_for_splits():
    events = adl_fills([0, 0, 0], ["noise", "noise", "maker"], [2.0, 2.0, 0.5],
                       [10.0, 30.0, 60.0]).assign(account=[7, 7, 9], price=90.0,
                                                  mark_price=88.0)
    haircuts = analysis.adl_haircuts(events).set_index("account")
    # Account 7 (noise) was closed twice: 10 + 30 = 40 of profit; account 9 is a maker.
    assert haircuts.loc[7, "profit_closed"] == 40.0
    assert haircuts["account_type"].tolist() == ["noise", "maker"]


def test_paths_needed_follows_the_normal_formula():
    x = np.random.default_rng(4).normal(0, 10, 1_000)
    sd = x.std(ddof=1)
    # (1.96 · sd / 0.5)² rounded up.
    assert analysis.paths_needed(x, 0.5) == math.ceil((stats.norm.ppf(0.975) * sd / 0.5) ** 2)


def test_standard_error_falls_as_one_over_root_n():
    curve = analysis.standard_error_curve(np.random.default_rng(5).normal(size=400), [4, 16])
    assert curve["standard_error"].iloc[0] / curve["standard_error"].iloc[1] == pytest.approx(2)


# ---------------------------------------------------------------- groups without values


def test_vault_pnl_of_a_venue_without_a_vault_is_a_row_with_no_paths(recwarn):
    paths = pd.DataFrame({"exchange.preset": ["hyperliquid"] * 4 + ["binance"] * 4,
                          "vault_pnl": [-1.0, 2.0, 3.0, -4.0] + [math.nan] * 4})
    table = analysis.vault_pnl(paths, by="exchange.preset").set_index("exchange.preset")
    assert table.loc["binance", "paths"] == 0
    assert table.loc["binance", ["mean", "p_loss", "var95", "es95"]].isna().all()
    assert table.loc["hyperliquid", "paths"] == 4
    assert table.loc["hyperliquid", "mean"] == pytest.approx(0.0)  # (−1 + 2 + 3 − 4) / 4
    assert not recwarn.list


def test_vault_pnl_of_no_paths_is_one_row_with_no_paths(recwarn):
    table = analysis.vault_pnl(pd.DataFrame({"vault_pnl": []}))
    assert table["paths"].tolist() == [0] and math.isnan(table["mean"].iloc[0])
    assert not recwarn.list


def test_grouped_tables_of_no_paths_keep_their_columns():
    empty = pd.DataFrame({"vault.cap": [], "adl_fired": [], "vault_pnl": [], "steps": [],
                          "adl_fills": [], "first_adl_step": []})
    for table in (analysis.adl_frequency(empty, by="vault.cap"),
                  analysis.adl_rate(empty, by="vault.cap"),
                  analysis.time_to_first_adl(empty, by="vault.cap"),
                  analysis.vault_pnl(empty, by="vault.cap")):
        assert len(table) == 0 and table.columns[0] == "vault.cap" and "paths" in table


def test_adl_frequency_of_a_group_without_outcomes_is_a_row_with_no_paths():
    paths = pd.DataFrame({"rule": ["a", "a", "b"], "adl_fired": [1.0, 0.0, math.nan]})
    row = analysis.adl_frequency(paths, by="rule").set_index("rule").loc["b"]
    assert row["paths"] == 0 and math.isnan(row["share"]) and math.isnan(row["low"])


def test_adl_by_group_without_adl_is_an_empty_table_with_its_columns():
    events = adl_fills([0], ["noise"], [2.0], [10.0]).assign(kind="liquidation")
    table = analysis.adl_by_group(events, by="account_type")
    assert len(table) == 0 and list(table.columns[:2]) == ["point", "account_type"]


# ---------------------------------------------------------------- names checked


PATHS_WITH_CAP = pd.DataFrame({"vault.cap": [0.0, 1.0], "path": [0, 0], "adl_fired": [1.0, 0.0],
                               "steps": [1440.0] * 2, "adl_fills": [1.0, 0.0],
                               "first_adl_step": [3.0, math.nan], "vault_pnl": [0.0, 5.0]})


@pytest.mark.parametrize("call", [
    lambda p: analysis.adl_frequency(p, by="vault.capp"),
    lambda p: analysis.adl_rate(p, by=["vault.capp"]),
    lambda p: analysis.time_to_first_adl(p, by="vault.capp"),
    lambda p: analysis.vault_pnl(p, by="vault.capp"),
    lambda p: analysis.paired_difference(p, "adl_fired", "vault.capp", 0.0, 1.0),
    lambda p: analysis.paired_difference(p, "adl_fired", "path", 0, 0, within="vault.capp"),
], ids=["adl_frequency", "adl_rate", "time_to_first_adl", "vault_pnl", "paired_by",
        "paired_within"])
def test_a_misspelt_by_column_is_named_with_the_closest_column(call):
    hint = r"""paths has no column 'vault.capp' \(did you mean "vault.cap"\?\)"""
    with pytest.raises(ValueError, match=hint):
        call(PATHS_WITH_CAP)


@pytest.mark.parametrize("metric, call", [
    ("adl_fired", analysis.adl_frequency), ("steps", analysis.adl_rate),
    ("first_adl_step", analysis.time_to_first_adl), ("vault_pnl", analysis.vault_pnl)])
def test_a_missing_metric_column_is_named(metric, call):
    with pytest.raises(ValueError, match=f"paths has no column '{metric}'"):
        call(PATHS_WITH_CAP.drop(columns=metric))


def test_a_missing_event_column_is_named():
    with pytest.raises(ValueError, match="events has no column 'account_typ'"):
        analysis.adl_by_group(adl_fills([0], ["noise"], [2.0], [1.0]), by="account_typ")


# ---------------------------------------------------------------- small samples


def test_p_loss_of_eight_losing_paths_has_a_wilson_interval():
    row = analysis.vault_pnl(pd.DataFrame({"vault_pnl": -np.arange(1.0, 9.0)})).iloc[0]
    assert row["p_loss"] == 1.0
    # Wilson for 8 of 8: low = n / (n + z²) = 8 / (8 + 1.96²) ≈ 0.676, high = 1.
    z = stats.norm.ppf(0.975)
    assert row["p_loss_low"] == pytest.approx(8 / (8 + z ** 2))
    assert row["p_loss_high"] == pytest.approx(1.0)


def test_bootstrap_intervals_are_undefined_for_equal_values_or_few_paths():
    equal = analysis.vault_pnl(pd.DataFrame({"vault_pnl": np.zeros(50)})).iloc[0]
    assert equal["mean"] == 0.0 and math.isnan(equal["mean_low"]) and math.isnan(
        equal["mean_high"])
    few = np.random.default_rng(7).normal(size=analysis.MIN_BOOTSTRAP_PATHS - 1)
    row = analysis.vault_pnl(pd.DataFrame({"vault_pnl": few})).iloc[0]
    assert math.isnan(row["mean_low"]) and math.isnan(row["mean_high"])


def test_var_and_es_need_enough_paths_beyond_the_quantile():
    # MIN_TAIL_PATHS = 5: at 95% that is n·0.05 ≥ 5, n ≥ 100; at 99%, n ≥ 500.
    assert analysis.MIN_TAIL_PATHS == 5
    x = np.random.default_rng(8).normal(size=100)
    row = analysis.vault_pnl(pd.DataFrame({"vault_pnl": x})).iloc[0]
    assert (row["tail_paths95"], row["tail_paths99"]) == (5, 1)
    assert row["var95"] == pytest.approx(-np.quantile(x, 0.05))
    assert math.isnan(row["var99"]) and math.isnan(row["es99"])
    short = analysis.vault_pnl(pd.DataFrame({"vault_pnl": x[:99]})).iloc[0]
    assert short["tail_paths95"] == 4  # ⌊99 · 0.05⌋
    assert short[["var95", "es95", "q05", "q95"]].isna().all()
    eight = analysis.vault_pnl(pd.DataFrame({"vault_pnl": x[:8]})).iloc[0]
    assert eight["tail_paths99"] == 0 and math.isnan(eight["var99"])


def test_var_interval_from_order_statistics_covers_the_normal_quantile():
    # N(0, 1), 2,000 paths: VaR95 = 1.645 lies in the distribution-free 95% interval.
    x = np.random.default_rng(9).standard_normal(2_000)
    row = analysis.vault_pnl(pd.DataFrame({"vault_pnl": x}), n_resamples=200).iloc[0]
    assert row["var95_low"] < stats.norm.ppf(0.95) < row["var95_high"]
    assert row["var95_low"] < row["var95"] < row["var95_high"]


def test_paired_difference_interval_is_undefined_when_every_difference_is_equal():
    paths = pd.DataFrame({"cap": [0] * 12 + [1] * 12, "path": list(range(12)) * 2,
                          "x": [1.0] * 12 + [3.0] * 12})
    row = analysis.paired_difference(paths, "x", "cap", 0, 1).iloc[0]
    assert row["mean_difference"] == 2.0 and math.isnan(row["low"]) and math.isnan(row["high"])


def test_adl_by_group_keeps_leverage_buckets_in_leverage_order():
    events = adl_fills([0, 0, 1], ["noise"] * 3, [15.0, 1.5, 3.0], [1.0, 2.0, 3.0])
    table = analysis.adl_by_group(events, by="leverage_bucket")
    pivot = table.pivot(index="point", columns="leverage_bucket", values="share")
    assert [str(c) for c in pivot.columns] == ["1–2x", "2–5x", "10–20x"]  # not "10–20x" first


def test_adl_share_by_path_splits_each_paths_profit_closed_by_group():
    # path 0: 300 USD from a fund, 100 from a noise trader → 300/400 = 0.75 and 0.25;
    # path 1: 50 from the fund alone → 1 and 0; the liquidation row is not ADL.
    events = pd.DataFrame({"kind": ["adl", "adl", "adl", "liquidation"],
                           "path": [0, 0, 1, 0], "amount": [300.0, 100.0, 50.0, 9.0],
                           "leverage": [0.5, 8.0, 0.5, 1.0],
                           "account_type": ["fund", "noise", "fund", "noise"]})
    shares = analysis.adl_share_by_path(events)
    assert shares["path"].tolist() == [0, 1]
    assert shares["share_fund"].tolist() == [0.75, 1.0]
    assert shares["share_noise"].tolist() == [0.25, 0.0]


def test_adl_share_by_path_can_split_by_leverage_bucket():
    # leverage 0.5 falls in [0, 1), 8 in [5, 10): the same shares as by type above.
    events = pd.DataFrame({"kind": ["adl", "adl"], "path": [0, 0], "amount": [300.0, 100.0],
                           "leverage": [0.5, 8.0]})
    shares = analysis.adl_share_by_path(events, by="leverage_bucket")
    assert shares[["share_0–1x", "share_5–10x"]].iloc[0].tolist() == [0.75, 0.25]


def test_leverage_snapshot_weights_by_count_and_by_notional():
    # 1,000 at 2,000 equity (0.5x), 4,000 at 1,000 (4x), 5,000 at 500 (10x); a flat
    # account does not count. Quartiles of (0.5, 4, 10): 0.5 + 0.5·3.5 = 2.25, 4,
    # 4 + 0.5·6 = 7; notional shares 1,000/10,000, 4,000/10,000, 5,000/10,000.
    accounts = pd.DataFrame({"notional": [1000.0, 4000.0, 5000.0, 0.0],
                             "leverage": [1000 / 2000, 4000 / 1000, 5000 / 500, 0.0]})
    row = analysis.leverage_snapshot(accounts).iloc[0]
    assert row["accounts"] == 3 and row["notional"] == 10000.0
    assert [row["leverage_q25"], row["leverage_median"], row["leverage_q75"]] == [2.25, 4.0,
                                                                                  7.0]
    assert [row["notional_0–3x"], row["notional_3–7x"], row["notional_≥7x"]] == [0.1, 0.4,
                                                                                   0.5]


def test_leverage_snapshot_counts_an_account_without_equity_as_most_levered():
    # equity −50 with a position: mechanics.effective_leverage says +inf
    accounts = pd.DataFrame({"notional": [1000.0, 3000.0], "leverage": [math.inf, 0.3],
                             "account_type": ["noise", "fund"]})
    table = analysis.leverage_snapshot(accounts, by="account_type").set_index("account_type")
    assert table.loc["noise", "leverage_median"] == math.inf
    assert table.loc["noise", "notional_≥7x"] == 1.0
    assert table.loc["fund", "notional_0–3x"] == 1.0


def test_leverage_bucket_puts_infinite_leverage_in_the_open_top_bucket():
    # An account with no equity left (leverage +inf) is in [20, ∞), not missing.
    buckets = analysis.leverage_bucket([0.5, 25.0, math.inf])
    assert buckets.astype(str).tolist() == ["0–1x", "≥20x", "≥20x"]


def _vault_series(equity: list[float], position: list[float], mark: list[float],
                  path: int = 0) -> pd.DataFrame:
    steps = range(1, len(equity) + 1)
    return pd.DataFrame({"path": path, "step": steps, "vault_equity": equity,
                         "vault_position": position, "mark": mark})


def test_vault_pnl_split_separates_the_carry_of_the_position_held_at_the_step():
    # Starts with 10M; at step 2 it has 10.1M, long 20 at a mark of 100,000; it ends at
    # step 3 with 9.8M at a mark of 85,000: P&L −200k.
    series = _vault_series([10.05e6, 10.1e6, 9.8e6], [5.0, 20.0, 0.0],
                           [101_000.0, 100_000.0, 85_000.0])
    paths = pd.DataFrame({"path": [0], "steps": [3], "vault_pnl": [-200_000.0]})
    split = analysis.vault_pnl_split(paths, series, step=2).iloc[0]
    assert split["vault_pnl_before"] == pytest.approx(100_000.0)  # 10.1M − (9.8M + 200k)
    assert split["vault_pnl_carry"] == pytest.approx(-300_000.0)  # 20 · (85,000 − 100,000)
    assert split["vault_pnl_after"] == pytest.approx(0.0)  # −200k − 100k + 300k


def test_vault_pnl_split_adds_up_to_the_vault_pnl_on_every_path():
    series = pd.concat([_vault_series([1.0e6, 1.2e6, 1.1e6], [-3.0, 4.0, 1.0],
                                      [50.0, 60.0, 55.0], path=0),
                        _vault_series([1.0e6, 0.9e6, 0.95e6], [2.0, 2.0, 2.0],
                                      [50.0, 40.0, 45.0], path=1)])
    paths = pd.DataFrame({"path": [0, 1], "steps": [3, 3],
                          "vault_pnl": [100_000.0, -50_000.0]})
    split = analysis.vault_pnl_split(paths, series, step=1)
    parts = split[["vault_pnl_before", "vault_pnl_carry", "vault_pnl_after"]].sum(axis=1)
    assert parts.to_numpy() == pytest.approx(split["vault_pnl"].to_numpy())
    # path 1: before 1.0M − (0.95M + 50k) = 0, carry 2 · (45 − 50) = −10
    assert split.loc[1, ["vault_pnl_before", "vault_pnl_carry"]].tolist() == pytest.approx(
        [0.0, -10.0])


def test_vault_pnl_split_refuses_a_series_without_the_step():
    series = _vault_series([1.0e6, 1.1e6], [0.0, 1.0], [50.0, 55.0]).iloc[[1]]  # step 2
    paths = pd.DataFrame({"path": [0], "steps": [2], "vault_pnl": [100_000.0]})
    with pytest.raises(ValueError, match="no row at the step"):
        analysis.vault_pnl_split(paths, series, step=1)


def test_overshoot_by_path_sums_episodes_and_gives_zero_without_adl():
    # path 0: episodes closing 50 and 30 of profit, covering (110 − 100)·1 = 10 and
    # (110 − 100)·3 = 30 of deficit: 80, 40, overshoot 40; path 1 has no ADL: 0, 0, 0
    def adl(liquidation, amount, quantity):
        return {"point": 0, "path": 0, "kind": "adl", "liquidation": liquidation,
                "account": 5, "amount": amount, "quantity": quantity, "price": 110.0,
                "mark_price": 100.0}

    events = pd.DataFrame([adl(1, 50.0, 1.0), adl(2, 30.0, 3.0)])
    paths = pd.DataFrame({"point": [0, 0], "path": [0, 1]})
    table = analysis.adl_overshoot_by_path(paths, events)
    assert table[["point", "path"]].values.tolist() == [[0, 0], [0, 1]]
    assert table.loc[0, ["profit_closed", "deficit_covered", "overshoot"]].tolist() == [
        80.0, 40.0, 40.0]
    assert table.loc[1, ["profit_closed", "deficit_covered", "overshoot"]].tolist() == [
        0.0, 0.0, 0.0]
    empty = analysis.adl_overshoot_by_path(paths, pd.DataFrame())
    assert empty["overshoot"].tolist() == [0.0, 0.0]

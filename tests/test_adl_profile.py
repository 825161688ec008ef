"""analysis.adl_profile: who was auto-deleveraged, in the figures a replay of a real event
gives (leverage quantiles, the share in profit, concentration of the notional)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from perpabm import analysis


def adl_rows(rows, path=0, point=None):
    """"adl" rows from (account, quantity, price, leverage, amount, account_type)."""
    frame = pd.DataFrame(rows, columns=["account", "quantity", "price", "leverage", "amount",
                                        "account_type"])
    frame.insert(0, "kind", "adl")
    frame.insert(0, "path", path)
    if point is not None:
        frame.insert(0, "point", point)
    return frame


WORKED = [(1, 10.0, 100.0, 0.5, 100.0, "whale"),
          (2, 25.0, 100.0, 2.0, 500.0, "noise"),
          (2, 5.0, 100.0, 4.0, -50.0, "noise")]


def test_the_docstrings_worked_example():
    row = analysis.adl_profile(adl_rows(WORKED)).iloc[0]
    assert (row["paths_with_adl"], row["accounts"], row["fills"]) == (1, 2, 3)
    assert row["leverage_median"] == 2.0
    assert row["fills_in_profit"] == pytest.approx(2 / 3)
    assert row["accounts_in_profit"] == 1.0  # account 2: 500 − 50 = 450 > 0
    # Gini of (1,000, 3,000) = (3 − 2·5,000/4,000)/2 = 0.25; the top account 3/4.
    assert row["gini_notional"] == pytest.approx(0.25)
    assert row["top1pct_notional_share"] == pytest.approx(0.75)


def test_by_account_type_splits_the_rows():
    table = analysis.adl_profile(adl_rows(WORKED), by="account_type").set_index("account_type")
    assert table.loc["whale", "leverage_median"] == 0.5
    assert table.loc["noise", "fills"] == 2
    assert table.loc["noise", "fills_in_profit"] == 0.5


def test_concentration_is_the_median_over_paths():
    # Path 0: notionals (1,000, 3,000), Gini 0.25; path 1: one account, Gini 0; path 2:
    # (1,000, 1,000), Gini 0. The median of (0.25, 0, 0) is 0.
    events = pd.concat([adl_rows(WORKED, path=0),
                        adl_rows([(7, 1.0, 100.0, 1.0, 5.0, "noise")], path=1),
                        adl_rows([(3, 10.0, 100.0, 1.0, 5.0, "noise"),
                                  (4, 10.0, 100.0, 1.0, 5.0, "noise")], path=2)])
    row = analysis.adl_profile(events).iloc[0]
    assert row["paths_with_adl"] == 3 and row["accounts"] == 5
    assert row["gini_notional"] == 0.0


def test_points_are_kept_apart():
    events = pd.concat([adl_rows(WORKED, point=0), adl_rows(WORKED[:1], point=1)])
    table = analysis.adl_profile(events)
    assert list(table["point"]) == [0, 1]
    assert list(table["fills"]) == [3, 1]


def test_events_without_adl_give_no_rows():
    events = adl_rows(WORKED).assign(kind="liquidation")
    assert analysis.adl_profile(events).empty


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="leverage"):
        analysis.adl_profile(adl_rows(WORKED).drop(columns="leverage"))


def test_the_top_share_takes_one_percent_of_the_accounts():
    # 200 accounts of 1 unit and one of 99 at price 1: the top 1% of 201 is 2 accounts,
    # 99 + 1 = 100 of 299.
    rows = [(k, 1.0, 1.0, 1.0, 1.0, "noise") for k in range(200)]
    rows.append((999, 99.0, 1.0, 1.0, 1.0, "whale"))
    row = analysis.adl_profile(adl_rows(rows)).iloc[0]
    assert row["top1pct_notional_share"] == pytest.approx(100 / 299)
    assert not math.isnan(row["gini_notional"])

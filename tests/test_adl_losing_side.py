"""Which kind of account was the losing side of each ADL fill."""

from __future__ import annotations

import pandas as pd
import pytest
from populations import LEVERED

from perpabm import PerpMarketModel, Shock, analysis, load_scenario
from perpabm.model import ACCOUNT_TYPES


def test_adl_rows_name_the_liquidated_account_and_what_holds_it():
    # A short Hyperliquid crash with no vault capacity reaches ADL on seed 2 (its traders
    # drawn at about 10x).
    config = (load_scenario("oct10_2025").with_settings(LEVERED).replace("traders.count", 60)
              .replace("run.steps", 80).replace("market.shocks", (Shock(30, -0.15, 10),))
              .replace("vault.cap", 0.0))
    model = PerpMarketModel(config, rng=2).run()
    events = model.events
    adl = events[events["kind"] == "adl"]
    assert len(adl) > 0, "the case must reach ADL"
    vault_accounts = {vault.account for vault in model.vaults}
    for row in adl.itertuples():
        liquidated = int(row.counterparty)
        # A trader's type is its strategy, kept after it leaves (model.ACCOUNT_TYPES
        # begins with the strategies, so the population's codes index it).
        expected = ("vault_liquidator" if liquidated in vault_accounts
                    else "fund" if liquidated in model.funds
                    else ACCOUNT_TYPES[model.traders.strategy[liquidated]])
        assert row.counterparty_type == expected
    table = analysis.adl_losing_side(events)
    assert table["fills"].sum() == len(adl)
    assert table["fills_share"].sum() == pytest.approx(1.0)


def test_losing_side_shares_count_fills_and_notional_per_type():
    # Three fills: two against the vault (10 and 30 units at 100), one against a noise
    # trader (20 at 100): the vault has 2/3 of the fills and 4,000/6,000 of the notional.
    events = pd.DataFrame({
        "kind": ["adl", "adl", "adl", "liquidation"],
        "quantity": [10.0, -30.0, 20.0, 5.0], "price": [100.0] * 4,
        "counterparty_type": pd.array(["vault_liquidator", "vault_liquidator", "noise",
                                       "maker"], dtype="string")})
    table = analysis.adl_losing_side(events).set_index("losing_side")
    assert table.loc["vault_liquidator", "fills"] == 2
    assert table.loc["vault_liquidator", "fills_share"] == pytest.approx(2 / 3)
    assert table.loc["vault_liquidator", "notional"] == pytest.approx(4_000.0)
    assert table.loc["noise", "notional_share"] == pytest.approx(2_000.0 / 6_000.0)


def test_losing_side_of_events_without_adl_is_an_empty_table():
    events = pd.DataFrame({"kind": ["liquidation"], "quantity": [1.0], "price": [1.0],
                           "counterparty_type": pd.array(["maker"], dtype="string")})
    assert len(analysis.adl_losing_side(events)) == 0

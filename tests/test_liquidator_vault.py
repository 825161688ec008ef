"""The liquidator vault (``backstop_takeover = "account"``) on hand-derived examples.

Setup unless a test says otherwise: mark 100, no trading fees, one tier with mmr
0.5%, waterfall book → backstop → ADL with the backstop's trigger at 2/3 of
maintenance margin and ADL on negative equity (Hyperliquid's rules), and an empty
book. The liquidated account L has 1,000 USD and is long 100 at 100 (10x): its
bankruptcy price is 100 − 1,000/100 = 90. S is short the other side with 20,000
USD; the vault V has 100,000 USD and takes whatever it is offered.
"""

from __future__ import annotations

import mesa
import pandas as pd
import pytest

from perpabm import Exchange, ExchangeConfig, PerpMarketModel, analysis
from perpabm.agents import Vault
from perpabm.config import ScenarioConfig, VaultConfig
from perpabm.exchange import BackstopOffer

LIQUIDATOR = ExchangeConfig(
    max_leverage=50.0,
    mm_tiers=((0.0, 0.005),),
    taker_fee=0.0,
    maker_fee=0.0,
    waterfall=("book", "backstop", "adl"),
    surplus_to="account",
    backstop_trigger=2 / 3,
    backstop_takeover="account",
    adl_trigger="negative_equity",
    adl_rule="profit",  # ranks by unrealised P&L: easy to work out by hand
    debug=True,
)


def liquidator_case(config: ExchangeConfig = LIQUIDATOR, vault_capital: float = 100_000.0,
                    take: float | None = None, shorts: tuple[float, ...] = (100.0,)):
    """L long 100 at 100 (1,000 USD) against shorts of `shorts` units at 100 (20,000 USD
    each); V (`vault_capital`) registered as backstop, taking `take` units of each offer
    (None: all of it). Returns the exchange, V, L, the shorts and the offers made."""
    ex = Exchange(config, mark_price=100.0)
    liquidated = ex.open_account(1_000.0)
    short_accounts = []
    for units in shorts:
        short = ex.open_account(20_000.0)
        ex.fill(liquidated, short, units, 100.0)
        short_accounts.append(short)
    vault = ex.open_account(vault_capital)
    offers: list[BackstopOffer] = []

    def handler(offer: BackstopOffer) -> float:
        offers.append(offer)
        return abs(offer.size) if take is None else take

    ex.register_backstop(vault, handler)
    return ex, vault, liquidated, short_accounts, offers


def money(ex: Exchange, accounts) -> float:
    """Σ equity at the mark of `accounts`, USD."""
    return sum(ex.equity(a) for a in accounts)


def test_takeover_moves_the_position_and_the_remaining_collateral_to_the_liquidator():
    ex, vault, liquidated, (short,), _ = liquidator_case()
    everyone = (vault, liquidated, short)
    ex.update_mark(90.2)
    # Before, at mark 90.2:
    #   L: long 100 at 100, collateral 1,000; equity 1,000 + 100·(90.2 − 100) = 20,
    #      below 2/3 · MM = 2/3 · (100·90.2·0.005 = 45.1) = 30.07, and ≥ 0.
    #   V: flat, collateral 100,000.   S: equity 20,000 + 100·(100 − 90.2) = 20,980.
    # After: V holds long 100 at the mark, 90.2, with L's 20 as collateral; L is left
    # flat with nothing (its maintenance margin is not returned).
    assert ex.position(liquidated) == 0.0
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.position(vault) == 100.0
    assert ex.entry_price(vault) == pytest.approx(90.2)
    assert ex.collateral(vault) == pytest.approx(100_020.0)
    assert ex.equity(vault) == pytest.approx(100_020.0)
    # Conservation: 20 + 100,000 + 20,980 = 0 + 100,020 + 20,980 = 121,000.
    assert money(ex, everyone) == pytest.approx(121_000.0)
    ex.check_invariants()


def test_takeover_row_records_the_mark_and_the_collateral_moved():
    ex, vault, liquidated, _, offers = liquidator_case()
    events = ex.update_mark(90.2)
    # One row: L's position −100 at the mark 90.2, bankruptcy price 90, amount the 20
    # USD of collateral that moved; the offer was made at the mark, with L's equity 20.
    assert [(e.kind, e.account, e.counterparty, e.quantity) for e in events] == [
        ("backstop", liquidated, vault, -100.0)]
    assert events[0].price == pytest.approx(90.2)
    assert events[0].bankruptcy_price == pytest.approx(90.0)
    assert events[0].amount == pytest.approx(20.0)
    assert offers[0].price == pytest.approx(90.2) and offers[0].equity == pytest.approx(20.0)


def test_partial_takeover_moves_the_same_share_of_position_and_equity():
    ex, vault, liquidated, _, _ = liquidator_case(take=60.0)
    ex.update_mark(90.2)
    # V takes 60 of 100 (f = 0.6) at 90.2 with 0.6 · 20 = 12 USD of collateral.
    # L keeps 40 at entry 100 and 1,000 − 60·9.8 (realised) − 12 = 400 of collateral:
    # equity 400 + 40·(90.2 − 100) = 8 = 0.4 · 20.
    assert ex.position(vault) == pytest.approx(60.0)
    assert ex.collateral(vault) == pytest.approx(100_012.0)
    assert ex.position(liquidated) == pytest.approx(40.0)
    assert ex.collateral(liquidated) == pytest.approx(400.0)
    assert ex.equity(liquidated) == pytest.approx(8.0)
    ex.check_invariants()


def test_no_takeover_while_equity_is_at_or_above_the_trigger():
    ex, vault, liquidated, _, offers = liquidator_case()
    # Mark 90.4: equity 1,000 − 960 = 40 ≥ 2/3 · 45.2 = 30.13, and ≥ 0: nothing moves.
    assert ex.update_mark(90.4) == []
    assert offers == [] and ex.position(liquidated) == 100.0


def test_a_bankrupt_account_is_not_taken_over_but_goes_to_adl():
    ex, vault, liquidated, (short,), offers = liquidator_case()
    events = ex.update_mark(89.5)
    # Equity 1,000 + 100·(89.5 − 100) = −50 < 0: no offer to the liquidator. ADL
    # closes S's 100 against L at L's bankruptcy price 90: S realises 100·(100 − 90)
    # = 1,000 and gives up 100·(90 − 89.5) = 50 below the mark — L's deficit.
    assert offers == []
    assert "backstop" not in [e.kind for e in events]
    adl = [e for e in events if e.kind == "adl"]
    assert [(e.account, e.counterparty, e.quantity) for e in adl] == [(short, liquidated, 100.0)]
    assert adl[0].price == pytest.approx(90.0)
    assert ex.position(vault) == 0.0 and ex.equity(vault) == 100_000.0
    assert ex.position(liquidated) == 0.0
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.collateral(short) == pytest.approx(21_000.0)
    ex.check_invariants()


def test_the_position_takeover_takes_a_bankrupt_account_and_pays_its_deficit():
    # The contrast: under backstop_takeover = "position" (at the bankruptcy price) the
    # vault takes the bankrupt L at 90 and is worth 100,000 + 100·(89.5 − 90) = 99,950.
    ex, vault, liquidated, _, offers = liquidator_case(
        LIQUIDATOR.replace(backstop_takeover="position"))
    ex.update_mark(89.5)
    assert len(offers) == 1 and ex.position(vault) == 100.0
    assert ex.equity(vault) == pytest.approx(99_950.0)


def test_the_liquidators_own_negative_equity_triggers_adl_with_it_as_the_losing_side():
    ex, vault, liquidated, (first, second), _ = liquidator_case(vault_capital=100.0,
                                                                shorts=(60.0, 40.0))
    ex.update_mark(90.2)
    # V takes L's long 100 at 90.2 with 20 USD: collateral 120, equity 120 ≥ MM 45.1.
    assert ex.position(vault) == 100.0 and ex.collateral(vault) == pytest.approx(120.0)
    events = ex.update_mark(88.9)
    # V's equity 120 + 100·(88.9 − 90.2) = −10 < 0 (MM 44.45); the book is empty and the
    # backstop does not take itself over, so ADL closes V's 100 at V's bankruptcy price
    # 90.2 − 120/100 = 89.0 against the shorts ranked by unrealised P&L:
    #   first:  60·(100 − 88.9) = 666 → rank 1, closed 60 at 89.0 (realises 60·11 = 660);
    #   second: 40·(100 − 88.9) = 444 → rank 2, closed 40 at 89.0 (realises 40·11 = 440).
    # They give up 100·(89.0 − 88.9) = 10 below the mark: V's deficit.
    adl = [e for e in events if e.kind == "adl"]
    assert [(e.account, e.counterparty, e.quantity, e.rank) for e in adl] == [
        (first, vault, 60.0, 1), (second, vault, 40.0, 2)]
    assert [e.price for e in adl] == pytest.approx([89.0, 89.0])
    assert ex.position(vault) == 0.0
    assert ex.collateral(vault) == pytest.approx(0.0, abs=1e-9)
    assert ex.collateral(first) == pytest.approx(20_660.0)
    assert ex.collateral(second) == pytest.approx(20_440.0)
    ex.check_invariants()


# ---------------------------------------------------------------- the vault agent's P&L


def test_vault_pnl_by_strategy_adds_up_to_its_pnl_on_oct10():
    model = PerpMarketModel("oct10_2025", rng=3, **{
        "exchange.backstop_takeover": "account", "vault.quotes": True, "traders.count": 200,
        "run.steps": 1_300})
    model.run()
    summary = model.summary()
    assert summary["backstop_notional"] > 0.0  # the liquidator had something to do
    assert summary["vault_pnl_liquidator"] + summary["vault_pnl_market_making"] == (
        pytest.approx(summary["vault_pnl"], abs=1e-6 * model.config.vault.capital))
    series = model.series
    assert series["vault_pnl_liquidator"].iloc[-1] == pytest.approx(
        summary["vault_pnl_liquidator"])


def test_vault_series_holds_its_net_position_and_splits_its_pnl_at_a_step():
    model = PerpMarketModel("oct10_2025", rng=3, **{"traders.count": 200,
                                                     "run.steps": 1_300})
    model.run()
    ex, vault, series = model.exchange, model.vault, model.series
    assert vault.separate  # oct10_2025's liquidator has an account of its own
    held = ex.position(vault.account) + ex.position(vault.quote_account)
    assert held != 0.0
    assert series["vault_position"].iloc[-1] == held
    paths = pd.DataFrame([model.summary()]).assign(path=0)
    split = analysis.vault_pnl_split(paths, series.reset_index().assign(path=0),
                                     step=1_260).iloc[0]
    # what it had made by step 1,260: its equity then less the capital it started with
    assert split["vault_pnl_before"] == pytest.approx(
        series.loc[1_260, "vault_equity"] - model.config.vault.capital)
    assert split["vault_pnl_carry"] == pytest.approx(
        series.loc[1_260, "vault_position"]
        * (series["mark"].iloc[-1] - series.loc[1_260, "mark"]))


class VaultHost(mesa.Model):
    """What the Vault agent reads of its model: the exchange and the config."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__()
        self.exchange = exchange
        self.config = ScenarioConfig()
        self.index = 100.0


def test_quote_fills_against_the_takeover_exit_the_liquidators_position_first():
    ex = Exchange(LIQUIDATOR, mark_price=100.0)
    liquidated, short, buyer = (ex.open_account(c) for c in (1_000.0, 20_000.0, 50_000.0))
    ex.fill(liquidated, short, 100.0, 100.0)
    vault = Vault(VaultHost(ex), VaultConfig(capital=100_000.0, cap=1_000.0, unwind_rate=0.0))
    vault.record(ex.update_mark(90.2))
    # The takeover: long 100 at 90.2 with 20 USD of collateral. Liquidator's book:
    # position 100, cash −100·90.2 + 20 = −9,000; P&L at 90.2 = −9,000 + 9,020 = 20.
    assert vault.pnl_by_strategy() == pytest.approx({"liquidator": 20.0, "market_making": 0.0})
    ex.place_limit(vault.account, -30.0, 91.0)
    ex.market_order(buyer, 30.0)
    vault.record(ex.update_mark(91.0))
    # Its quote sold 30 at 91, against the liquidator's long: all 30 exit it. Book:
    # position 70, cash −9,000 + 2,730 = −6,270; P&L at 91 = −6,270 + 6,370 = 100, the
    # whole of the vault's: equity 100,020 + 30·0.8 + 70·0.8 = 100,100.
    assert vault.liquidator.position == pytest.approx(70.0)
    assert vault.pnl_by_strategy() == pytest.approx({"liquidator": 100.0, "market_making": 0.0})
    ex.place_limit(vault.account, -100.0, 92.0)
    ex.market_order(buyer, 100.0)
    vault.record(ex.update_mark(92.0))
    # It sold 100 at 92: 70 exit the liquidator's long (cash −6,270 + 6,440 = 170, flat:
    # P&L 170); the other 30 are market making's short at 92, worth 0 at mark 92.
    assert vault.liquidator.position == pytest.approx(0.0, abs=1e-9)
    assert ex.position(vault.account) == pytest.approx(-30.0)
    assert vault.pnl_by_strategy() == pytest.approx({"liquidator": 170.0, "market_making": 0.0},
                                                    abs=1e-6)
    assert vault.pnl == pytest.approx(170.0)


# ---------------------------------------------------------------- the liquidator as its own vault


def test_a_liquidator_share_opens_two_accounts_that_split_the_capital():
    ex = Exchange(LIQUIDATOR, mark_price=100.0)
    vault = Vault(VaultHost(ex), VaultConfig(capital=1_000_000.0, liquidator_share=0.05))
    # 5% of 1,000,000 = 50,000 for the liquidator; the other 950,000 for market making.
    assert vault.account != vault.quote_account
    assert ex.collateral(vault.account) == pytest.approx(50_000.0)
    assert ex.collateral(vault.quote_account) == pytest.approx(950_000.0)
    assert vault.equity == pytest.approx(1_000_000.0)
    assert vault.maker_config.capital == pytest.approx(950_000.0)


def test_without_a_liquidator_share_one_account_holds_both_strategies():
    ex = Exchange(LIQUIDATOR, mark_price=100.0)
    vault = Vault(VaultHost(ex), VaultConfig(capital=1_000_000.0))
    assert vault.quote_account == vault.account
    assert ex.collateral(vault.account) == pytest.approx(1_000_000.0)


def test_the_liquidators_own_account_goes_to_adl_while_market_makings_is_untouched():
    ex = Exchange(LIQUIDATOR, mark_price=100.0)
    liquidated = ex.open_account(1_000.0)
    first, second = ex.open_account(20_000.0), ex.open_account(20_000.0)
    ex.fill(liquidated, first, 60.0, 100.0)
    ex.fill(liquidated, second, 40.0, 100.0)
    vault = Vault(VaultHost(ex), VaultConfig(capital=1_000.0, cap=1_000.0, unwind_rate=0.0,
                                             liquidator_share=0.1))
    # The liquidator's account has 0.1 · 1,000 = 100 USD, market making's 900.
    ex.update_mark(90.2)
    # L's equity 1,000 − 100·9.8 = 20 < 2/3 · MM (2/3 · 45.1 = 30.07): the liquidator
    # takes the long 100 at 90.2 with the 20 USD left: collateral 120.
    assert ex.position(vault.account) == 100.0
    assert ex.collateral(vault.account) == pytest.approx(120.0)
    events = ex.update_mark(88.9)
    # The liquidator's equity 120 + 100·(88.9 − 90.2) = −10 < 0: ADL closes its 100 at
    # its bankruptcy price 90.2 − 120/100 = 89.0 against the shorts, first (P&L 666)
    # then second (444); the 900 of market making's account are not touched: with one
    # account, the 1,000 of capital would have kept the position open.
    adl = [e for e in events if e.kind == "adl"]
    assert [(e.account, e.counterparty, e.quantity) for e in adl] == [
        (first, vault.account, 60.0), (second, vault.account, 40.0)]
    assert [e.price for e in adl] == pytest.approx([89.0, 89.0])
    assert ex.collateral(vault.quote_account) == pytest.approx(900.0)
    # Each strategy's P&L is its account's: the liquidator −100 (all of its 100), market
    # making 0; together the vault's.
    assert vault.pnl_by_strategy() == pytest.approx({"liquidator": -100.0,
                                                     "market_making": 0.0}, abs=1e-9)
    assert vault.pnl == pytest.approx(-100.0, abs=1e-9)
    ex.check_invariants()


def test_the_events_name_the_vaults_two_accounts_by_strategy():
    model = PerpMarketModel("oct10_2025", rng=3, **{
        "vault.liquidator_share": 0.05, "vault.quotes": True, "traders.count": 50,
        "run.steps": 3})
    model.run()
    types = model.account_types
    assert types[model.vault.account] == "vault_liquidator"
    assert types[model.vault.quote_account] == "vault_market_making"


def test_vault_pnl_by_strategy_with_a_liquidator_share_is_each_accounts_pnl_on_oct10():
    model = PerpMarketModel("oct10_2025", rng=3, **{
        "exchange.backstop_takeover": "account", "vault.quotes": True,
        "vault.liquidator_share": 0.05, "traders.count": 200, "run.steps": 1_300})
    model.run()
    summary, ex, vault = model.summary(), model.exchange, model.vault
    assert summary["backstop_notional"] > 0.0
    assert summary["vault_pnl_liquidator"] == pytest.approx(
        ex.equity(vault.account) - 0.05 * model.config.vault.capital)
    assert summary["vault_pnl_market_making"] == pytest.approx(
        ex.equity(vault.quote_account) - 0.95 * model.config.vault.capital)
    assert summary["vault_pnl_liquidator"] + summary["vault_pnl_market_making"] == (
        pytest.approx(summary["vault_pnl"]))

"""PerpMarketModel: invariants every step, reproducible seeds, common random numbers,
and the scenarios doing what they say."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from populations import LEVERED

from perpabm import ExchangeConfig, presets
from perpabm.config.market import Shock
from perpabm.model import PerpMarketModel, seed_streams
from perpabm.scenarios import list_scenarios, load_scenario


def short(name: str, steps: int = 90, traders: int = 150, shock_at: int = 30, **exchange):
    """A bundled scenario cut to `steps` steps and `traders` traders, its shocks moved to
    step `shock_at` so they still happen, with the exchange checking invariants after
    every call."""
    config = load_scenario(name)
    shocks = tuple(dataclasses.replace(s, at_minute=shock_at) for s in config.market.shocks)
    config = config.replace("market.shocks", shocks).replace("traders.count", traders)
    config = config.replace("run.steps", steps).replace("run.debug", True)
    if exchange:
        config = config.replace(exchange=config.exchange.replace(**exchange))
    return config


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("venue", presets.names())
@pytest.mark.parametrize("scenario", sorted(list_scenarios()))
def test_money_and_open_interest_are_conserved_every_step(scenario, venue):
    """Debug mode makes the exchange assert both invariants after every operation;
    here they are also checked after every step, on two seeds."""
    config = short(scenario)
    config = config.replace(exchange=ExchangeConfig.preset(venue).replace(debug=True))
    for seed in (1, 2):
        model = PerpMarketModel(config, rng=seed)
        for _ in range(config.run.steps):
            model.step()
            ex = model.exchange
            assert abs(ex.conservation_error()) <= 1e-9 * ex.money_in
            assert abs(ex.open_interest_imbalance()) <= 1e-9 * max(2 * ex.open_interest, 1.0)


# ---------------------------------------------------------------- seeds


def test_same_seed_gives_identical_summary_events_and_series():
    config = short("crash")
    first, second = (PerpMarketModel(config, rng=7).run() for _ in range(2))
    assert first.summary() == pytest.approx(second.summary(), nan_ok=True)
    pd.testing.assert_frame_equal(first.events, second.events)
    pd.testing.assert_frame_equal(first.series, second.series)


def test_different_seeds_give_different_paths():
    config = short("crash")
    a, b = PerpMarketModel(config, rng=7).run(), PerpMarketModel(config, rng=8).run()
    assert not np.array_equal(a.series["index"], b.series["index"])


def test_seed_streams_do_not_depend_on_how_often_they_are_asked_for():
    seq = np.random.SeedSequence(42)
    first, second = seed_streams(seq), seed_streams(seq)
    assert [s.generate_state(2).tolist() for s in first.values()] == [
        s.generate_state(2).tolist() for s in second.values()]
    assert len({tuple(s.generate_state(2)) for s in first.values()}) == len(first)


def test_changing_only_the_adl_rule_keeps_the_index_path():
    """Common random numbers: the exogenous index depends on the index stream alone."""
    base = short("oct10_2025", steps=60)
    rules = {}
    for rule in ("profit", "leverage"):
        config = base.replace(exchange=base.exchange.replace(adl_rule=rule))
        rules[rule] = PerpMarketModel(config, rng=3).run().series["index"].to_numpy()
    np.testing.assert_array_equal(rules["profit"], rules["leverage"])


def test_a_generator_is_refused_as_seed_because_paths_need_child_streams():
    with pytest.raises(TypeError, match="SeedSequence"):
        PerpMarketModel(short("calm"), rng=np.random.default_rng(1))


# ---------------------------------------------------------------- the step


def test_only_a_sparse_draw_of_traders_acts_each_step(monkeypatch):
    from perpabm.agents import TraderPopulation

    drawn = []
    original = TraderPopulation.open_positions

    def spy(population, accounts, sides=None):
        drawn.append(accounts.tolist())
        return original(population, accounts, sides)

    monkeypatch.setattr(TraderPopulation, "open_positions", spy)
    config = short("calm", steps=30, traders=500)
    PerpMarketModel(config, rng=1).run()
    # 4 entries a day per trader: p = 4/1440 a minute, so 500·30·4/1440 ≈ 41.7 traders
    # drawn in 30 steps (binomial sd ≈ 6.4), not 500 a step: within 4 sd of the mean,
    # and no trader twice in one step.
    assert 41.7 - 4 * 6.4 < sum(map(len, drawn)) < 41.7 + 4 * 6.4
    assert all(len(set(accounts)) == len(accounts) for accounts in drawn)


def test_series_has_one_row_per_recorded_step():
    config = short("calm", steps=40).replace("run.record_every", 10)
    series = PerpMarketModel(config, rng=1).run().series
    assert series.index.tolist() == [10, 20, 30, 40]
    assert {"index", "mark", "open_interest", "adl_notional", "vault_equity"} <= set(series)


def test_a_scripted_shock_moves_the_index_by_its_size():
    config = short("calm", steps=40).replace("market.shocks", (Shock(20, -0.2, 5),))
    flat = short("calm", steps=40)
    shocked = PerpMarketModel(config, rng=5).run().series["index"]
    plain = PerpMarketModel(flat, rng=5).run().series["index"]
    # Same draws, plus log(0.8) spread over steps 20..24: the ratio is 0.8 from step 25 on.
    assert shocked.loc[25] / plain.loc[25] == pytest.approx(0.8)
    assert shocked.loc[19] == plain.loc[19]


# ---------------------------------------------------------------- scenarios


def test_every_bundled_scenario_loads_and_says_what_it_is():
    for name, description in list_scenarios().items():
        config = load_scenario(name)
        assert config.name == name and len(description) > 20


def test_the_default_scenario_is_the_documented_size():
    config = load_scenario("default")
    assert (config.traders.count, config.makers.count, config.arbitrageur.count) == (1000, 3, 1)
    assert config.vault.enabled and config.run.steps == 1440 and config.run.step_seconds == 60


def test_crash_liquidates_and_the_vault_takes_over():
    config = short("crash", steps=160, traders=500, shock_at=100)
    summary = PerpMarketModel(config, rng=1).run().summary()
    assert summary["liquidation_episodes"] > 0
    assert summary["backstop_notional"] > 0


def test_oct10_with_no_vault_room_ends_in_adl():
    config = short("oct10_2025", steps=120, traders=300).replace("vault.cap", 0.0)
    summary = PerpMarketModel(config, rng=1).run().summary()
    assert summary["adl_fired"] == 1.0 and summary["backstop_notional"] == 0.0


def test_calm_never_reaches_adl():
    """The calm scenario as bundled (1,000 traders, a full day), 20 seeds: no ADL."""
    config = load_scenario("calm")
    fired = [PerpMarketModel(config, rng=seed).run().summary()["adl_fired"]
             for seed in range(20)]
    assert sum(fired) == 0


def test_without_vault_room_adl_comes_more_often_and_sooner():
    """oct10_2025 around its drop, 60 seeds, the vault's cap at 0 against 5 × equity, with
    a vault that takes positions over at the bankruptcy price — bankrupt accounts too —
    from one account holding all its capital (so that its room is what stands between a
    liquidation and ADL; under the preset's account takeover, a bankrupt account goes to
    ADL whatever the vault's room).

    Paired by seed (same index path and order flow): ADL fires on at least as many
    seeds without room, strictly more often in the discordant pairs (a one-sided
    sign test on them, p < 0.01), and where both fire, never later without room.
    """
    from scipy.stats import binomtest

    base = short("oct10_2025", steps=80, traders=300).with_settings({
        "run.debug": False, "exchange.backstop_takeover": "position",
        "exchange.adl_price": "bankruptcy", "vault.liquidator_share": None,
        "vault.quotes": False})
    outcomes = {}
    for cap in (0.0, 5.0):
        config = base.replace("vault.cap", cap)
        outcomes[cap] = [PerpMarketModel(config, rng=seed).run().summary()
                         for seed in range(60)]
    none, large = outcomes[0.0], outcomes[5.0]
    only_none = sum(a["adl_fired"] > b["adl_fired"] for a, b in zip(none, large, strict=True))
    only_large = sum(a["adl_fired"] < b["adl_fired"] for a, b in zip(none, large, strict=True))
    assert only_none > only_large
    assert binomtest(only_none, only_none + only_large, 0.5, alternative="greater").pvalue < 0.01
    both = [(a["first_adl_step"], b["first_adl_step"]) for a, b in zip(none, large, strict=True)
            if a["adl_fired"] and b["adl_fired"]]
    assert all(a <= b for a, b in both)


def test_the_adl_rule_changes_who_is_deleveraged():
    """Same seeds, same market: ranking by profit hits accounts with more unrealised
    profit, ranking by leverage hits more leveraged ones (oct10_2025 around its drop,
    no vault room, 20 seeds pooled)."""
    base = short("oct10_2025", steps=80, traders=300).with_settings(LEVERED)
    base = base.replace("run.debug", False)
    base = base.replace("vault.cap", 0.0)
    pooled = {}
    for rule in ("profit", "leverage"):
        config = base.replace("exchange.adl_rule", rule)
        frames = [PerpMarketModel(config, rng=seed).run().events for seed in range(20)]
        adl = pd.concat(frames).query("kind == 'adl'")
        assert len(adl) > 50
        pooled[rule] = adl
    profit = {rule: adl["amount"].mean() for rule, adl in pooled.items()}
    leverage = {rule: adl["leverage"].replace(np.inf, np.nan).mean()
                for rule, adl in pooled.items()}
    assert profit["profit"] > profit["leverage"]
    assert leverage["leverage"] > leverage["profit"]


def test_spot_impact_feeds_liquidation_selling_back_into_the_index():
    """With spot_impact > 0, net liquidation flow in the book moves the next index away
    from the exogenous path, which it follows exactly until the first liquidation."""
    base = short("volatile", steps=600, traders=1000).replace("run.debug", False)
    base = base.replace("market.spot_impact", 0.0)
    exogenous = PerpMarketModel(base, rng=1).run()
    fed_back = PerpMarketModel(base.replace("market.spot_impact", 0.01), rng=1).run()
    assert exogenous.summary()["liquidated_notional"] > 0
    first = exogenous.events.query("kind == 'liquidation'")["time"].min()
    ratio = fed_back.series["index"] / exogenous.series["index"]
    assert ratio.loc[:first].eq(1.0).all()  # identical until the first liquidation
    assert not ratio.eq(1.0).all()


def test_agents_are_registered_with_the_model_by_type():
    from perpabm.agents import Arbitrageur, BasisTrader, LeveragedTrader, MarketMaker, Vault

    model = PerpMarketModel(short("default", steps=5, traders=50), rng=1)
    by_type = model.agents_by_type
    # the default scenario's 100 funds are leveraged traders of their own account type
    assert len(by_type[LeveragedTrader]) == 50 + 100
    assert len(by_type[MarketMaker]) == 3 and len(by_type[Arbitrageur]) == 1
    assert len(by_type[BasisTrader]) == 5
    assert len(by_type[Vault]) == 1


def test_wiped_out_traders_leave_and_new_ones_arrive():
    from perpabm.agents import LeveragedTrader

    config = short("crash", steps=200, traders=1000, shock_at=150).with_settings(LEVERED)
    config = config.replace("traders.arrivals_per_day", 1440.0).replace("run.debug", False)
    model = PerpMarketModel(config, rng=1).run()
    # One arrival a minute on average: about 200 in 200 steps (Poisson sd ≈ 14).
    left = model.summary()["traders_left"]
    assert left > 0
    funds = len(model.funds)  # leveraged traders too, in a population of their own
    arrived = len(model.agents_by_type[LeveragedTrader]) - funds - 1000 + left
    assert arrived == pytest.approx(200, abs=4 * 14)


@pytest.mark.parametrize("scenario", ["crash", "oct10_2025"])
def test_stress_scenarios_liquidate_back_stop_and_often_reach_adl(scenario):
    """As bundled, on 8 seeds: liquidations and vault takeovers on every one, and ADL on
    a clear share of them (at least a quarter; both fire ADL on about half of 12 seeds)."""
    summaries = [PerpMarketModel(load_scenario(scenario), rng=seed).run().summary()
                 for seed in range(8)]
    assert all(s["liquidation_episodes"] > 0 for s in summaries)
    assert all(s["backstop_notional"] > 0 for s in summaries)
    assert sum(s["adl_fired"] for s in summaries) >= 2


def test_leverage_fattens_the_tails_of_perp_returns():
    """Thurner–Farmer–Geanakoplos in the volatile scenario: with 10x median leverage,
    forced selling feeds back into prices and the Hill tail exponent of 1-minute mark
    returns is lower (fatter tails) than with 2x on the same seeds.

    16 seeds × 1,439 returns pooled, top 2%: k ≈ 460 order statistics, so each
    estimate's standard error is about α/√k ≈ 0.09; the gap must exceed twice the
    combined standard error. (Binance's fund takes over what the book cannot absorb and
    offloads it slowly, which softens the feedback: 8 seeds no longer resolve it.)
    """
    from perpabm.validate import hill_exponent

    estimates = {}
    for leverage in (10.0, 2.0):
        config = load_scenario("volatile").replace("traders.leverage_median", leverage)
        returns = []
        for seed in range(16):
            mark = PerpMarketModel(config, rng=seed).run().series["mark"].to_numpy()
            returns.append(np.diff(np.log(mark)))
        pooled = np.concatenate(returns)
        k = int(0.02 * len(pooled))
        alpha = hill_exponent(pooled, tail=0.02)
        estimates[leverage] = (alpha, alpha / np.sqrt(k))
    (high, se_high), (low, se_low) = estimates[10.0], estimates[2.0]
    assert low - high > 2 * np.hypot(se_high, se_low)


def test_the_vault_records_the_notional_its_unwind_sold():
    model = PerpMarketModel(short("default", steps=10, traders=50), rng=1)
    model.step()  # the makers quote
    vault, other = model.vault, model.exchange.open_account(1e8)
    model.exchange.fill(vault.account, other, 10.0, model.index)  # the vault long 10
    vault.unwind()
    # unwind_rate 5% of 10 sold, within unwind_slippage 0.5% of the index: −0.5 × index.
    sold = 0.05 * 10.0 * model.index
    assert -sold <= vault.unwound_notional <= -sold * (1 - 0.005)
    model.exchange.fill(other, vault.account, model.exchange.position(vault.account),
                        model.index)  # flat again
    vault.unwind()
    assert vault.unwound_notional == 0.0


def test_the_vaults_unwind_rate_is_per_minute():
    # Five-minute steps at 5% a minute: one unwind sells 1 − 0.95⁵ = 22.62% of the 10,
    # within unwind_slippage 0.5% of the index.
    config = short("default", steps=10, traders=50).replace("run.step_seconds", 300.0)
    model = PerpMarketModel(config, rng=1)
    model.step()  # the makers quote
    vault, other = model.vault, model.exchange.open_account(1e8)
    model.exchange.fill(vault.account, other, 10.0, model.index)  # the vault long 10
    vault.unwind()
    sold = (1 - 0.95 ** 5) * 10.0 * model.index
    assert -sold <= vault.unwound_notional <= -sold * (1 - 0.005)


def test_the_vaults_unwind_is_liquidation_flow_that_moves_the_next_index():
    """With spot impact 0.01 per $1M, a step in which only the vault's unwind sold moves
    the next index by exp(0.01 × flow / 1e6) against the same path without it."""
    config = short("default", steps=10, traders=50).replace("market.spot_impact", 0.01)
    plain, unwinding = (PerpMarketModel(config, rng=1) for _ in range(2))
    for model in (plain, unwinding):
        model.step()  # the makers quote
        other = model.exchange.open_account(1e8)
    unwinding.exchange.fill(unwinding.vault.account, other, 10.0, unwinding.index)
    for model in (plain, unwinding):
        model.step()
    assert not unwinding.events["kind"].isin(["liquidation", "insurance_fund"]).any()
    flow = unwinding.vault.unwound_notional
    assert flow < 0.0
    for model in (plain, unwinding):
        model.step()
    ratio = unwinding.history.prices[3] / plain.history.prices[3]
    assert ratio == pytest.approx(math.exp(0.01 * flow / 1e6), rel=1e-12)


def test_a_quoting_vault_makes_markets_too():
    config = short("default", steps=10, traders=50).replace("vault.quotes", True)
    model = PerpMarketModel(config, rng=1)
    model.step()
    assert len(model.exchange.book.orders_of(model.vault.account)) > 0
    quiet = PerpMarketModel(short("default", steps=10, traders=50), rng=1)
    quiet.step()
    assert quiet.exchange.book.orders_of(quiet.vault.account) == []


def test_makers_thin_the_side_that_adds_to_their_inventory():
    from perpabm.agents import MarketMaker

    model = PerpMarketModel(short("default", steps=10, traders=50), rng=1)
    maker = model.agents_by_type[MarketMaker][0]
    other = model.exchange.open_account(1e8)
    model.exchange.fill(other, maker.account, 100.0, model.index)  # maker short 100
    maker.quote()
    book = model.exchange.book
    buys, sells = book.open_quantity(maker.account)
    assert buys > sells  # buying reduces its short: full depth; selling adds: thinner


def test_events_say_what_holds_each_account():
    model = PerpMarketModel(load_scenario("crash"), rng=3).run()
    events = model.events
    makers = {m.account for m in model.makers}
    liquidations = events[events["kind"] == "liquidation"]
    # Liquidation orders fill against the makers' quotes.
    assert set(liquidations["counterparty"]) <= makers
    assert (liquidations["counterparty_type"] == "maker").all()
    traders = events[events["account"].isin(list(model.traders))]
    expected = [model.traders[a].strategy for a in traders["account"]]
    assert traders["account_type"].tolist() == expected
    assert events.loc[events["kind"] == "funding", "account_type"].isna().all()


def test_keyed_events_lead_with_the_keys_and_each_events_number():
    model = PerpMarketModel(short("crash"), rng=3).run()
    events = model.events
    keyed = model.keyed_events(point=2, path=5)
    assert list(keyed.columns) == ["point", "path", "event", *events.columns]
    assert (keyed["point"] == 2).all() and (keyed["path"] == 5).all()
    assert keyed["event"].tolist() == list(range(len(events)))
    assert keyed[["point", "path", "event"]].dtypes.eq("int64").all()
    pd.testing.assert_frame_equal(keyed[events.columns], events, check_exact=True)
    with pytest.raises(ValueError, match="event"):
        model.keyed_events(event=1)


@pytest.mark.parametrize("case", ["backstop", "adl", "quiet"])
def test_summary_event_figures_are_those_of_the_events_frame(case):
    """The summary counts and sums the event log directly; the same figures from the
    events frame by pandas, bit for bit (sums pairwise, NaN as 0; NaN ignored)."""
    config = {
        "backstop": lambda: short("crash", steps=160, traders=500, shock_at=100),
        "adl": lambda: short("oct10_2025", steps=120, traders=300).replace("vault.cap", 0.0),
        "quiet": lambda: short("calm", steps=120),
    }[case]()
    model = PerpMarketModel(config, rng=1).run()
    events = model.exchange.events
    kinds = events["kind"]
    adl, liquidations = events[kinds == "adl"], events[kinds == "liquidation"]
    backstop = events[kinds == "backstop"]
    expected = {
        "liquidation_episodes": float(events.loc[kinds != "funding", "liquidation"]
                                      .replace(-1, np.nan).nunique()),
        "liquidated_notional": float((liquidations["quantity"].abs()
                                      * liquidations["price"]).sum()),
        "backstop_notional": float((backstop["quantity"].abs() * backstop["price"]).sum()),
        "adl_fired": float(len(adl) > 0),
        "adl_fills": float(len(adl)),
        "adl_notional": float((adl["quantity"].abs() * adl["price"]).sum()),
        "adl_accounts": float(adl["account"].nunique()),
        "first_adl_step": float(adl["time"].min()) if len(adl) else np.nan,
    }
    if len(adl):  # the cascade: liquidation-episode events back from the first ADL, ≤ 5 min
        first = adl["time"].min()   # apart (one-minute steps: 5 steps)
        times = sorted(events.loc[(events["liquidation"] >= 0) & (kinds != "adl")
                                  & (events["time"] <= first), "time"], reverse=True)
        start = first
        for time in times:
            if start - time > 5:
                break
            start = time
        expected["first_adl_delay_seconds"] = float(60.0 * (first - start))
    summary = model.summary()
    assert repr({name: summary[name] for name in expected}) == repr(expected)


def test_cascade_delay_the_docstrings_worked_example():
    from perpabm.model import cascade_delay

    # Liquidations at 3, 100, 103, 106; ADL at 108; gap 5: 108 − 100 = 8 (3 is 97 back).
    assert cascade_delay([106.0, 3.0, 100.0, 103.0], 108.0, 5.0) == 8.0
    # A liquidation after the ADL is not its cascade's; none before it: 0.
    assert cascade_delay([109.0], 108.0, 5.0) == 0.0
    assert math.isnan(cascade_delay([1.0], math.nan, 5.0))



def test_the_account_snapshot_is_each_accounts_notional_equity_and_leverage():
    model = PerpMarketModel(short("default", steps=30, traders=50), rng=1)
    model.run_for(20)
    snapshot = model.account_snapshot()
    ex, mark = model.exchange, model.exchange.mark_price
    for account in (0, int(model.traders.accounts[0]), int(model.funds.accounts[0])):
        row = snapshot.loc[account]
        assert row["notional"] == abs(ex.position(account)) * mark
        assert row["equity"] == pytest.approx(ex.equity(account), rel=1e-12)
        # effective leverage: |size · mark| / equity, 0 when flat
        assert row["leverage"] == pytest.approx(row["notional"] / row["equity"], rel=1e-12)
    assert snapshot.loc[int(model.funds.accounts[0]), "account_type"] == "fund"

"""The trader population: one array per figure by account, agents that read them (and
hold no copy), the kernels that scan them, and the phases traders act in."""

from __future__ import annotations

import dataclasses
import math

import mesa
import numpy as np
import pandas as pd
import pytest
from ledgers import ledger_of

from perpabm.agents import LeveragedTrader, TraderPopulation
from perpabm.agents.population import (
    LEAVE_BELOW,
    draw_distinct,
    due_exits,
    leavers,
    set_exit_triggers,
)
from perpabm.config.scenario import STRATEGIES
from perpabm.exchange.kernels import accounts
from perpabm.model import PerpMarketModel
from perpabm.scenarios import load_scenario

TRIGGER_FIELDS = {"capital", "leverage", "strategy", "exit_step", "exit_above", "exit_below"}


def small(scenario: str = "default", steps: int = 60, traders: int = 100):
    """A bundled scenario cut to `steps` steps and `traders` traders."""
    config = load_scenario(scenario).replace("traders.count", traders)
    return config.replace("run.steps", steps)


def renewing(steps: int = 200):
    """The crash scenario, its drop at step 150, with one arrival a minute on average:
    traders leave after the drop and about `steps` arrive."""
    config = load_scenario("crash").replace("traders.count", 1000).replace("run.steps", steps)
    config = config.replace("market.shocks", tuple(
        dataclasses.replace(shock, at_minute=150) for shock in config.market.shocks))
    return config.replace("traders.arrivals_per_day", 1440.0)


# ---------------------------------------------------------------- agents read the arrays


def test_each_trader_reads_its_parameters_at_its_account():
    model = PerpMarketModel(small(), rng=1)
    population = model.traders
    for account, trader in population.items():
        assert trader.account == account and trader.population is population
        assert trader.capital == population.capital[account]
        assert trader.leverage == population.leverage[account]
        assert trader.strategy == STRATEGIES[population.strategy[account]]


def test_a_trader_holds_no_copy_of_what_the_arrays_hold():
    model = PerpMarketModel(small(), rng=1)
    population = model.traders
    trader = next(iter(population.values()))
    assert not TRIGGER_FIELDS & set(vars(trader))
    population.leverage[trader.account] = 7.5
    population.strategy[trader.account] = STRATEGIES.index("contrarian")
    population.exit_above[trader.account] = 123.0
    assert (trader.leverage, trader.strategy, trader.exit_above) == (7.5, "contrarian", 123.0)


def test_a_new_trader_has_no_exit_triggers():
    model = PerpMarketModel(small(), rng=1)
    trader = next(iter(model.traders.values()))
    assert trader.exit_step == math.inf
    assert math.isnan(trader.exit_above) and math.isnan(trader.exit_below)


def test_a_trader_in_a_position_reports_the_exit_triggers_of_its_entry():
    """Take-profit 5% and stop-loss 3% of the entry price, on the side of the position."""
    config = small(steps=120, traders=300)
    tp, sl = config.traders.take_profit, config.traders.stop_loss
    model = PerpMarketModel(config, rng=1).run()
    exchange = model.exchange
    holding = [t for t in model.traders.values()
               if t.exit_step < math.inf and exchange.position(t.account) != 0.0]
    assert len(holding) > 5
    for trader in holding:
        entry, long = exchange.entry_price(trader.account), exchange.position(trader.account) > 0
        assert trader.exit_step > model.step_index
        expected = (entry * (1 + tp), entry * (1 - sl)) if long else (
            entry * (1 + sl), entry * (1 - tp))
        assert (trader.exit_above, trader.exit_below) == expected


# ---------------------------------------------------------------- the mapping and its arrays


def test_the_population_maps_each_trader_account_to_its_agent():
    model = PerpMarketModel(small(traders=50), rng=1)
    population = model.traders
    assert len(population) == 50
    assert list(population) == population.accounts.tolist()
    # the funds are leveraged traders too, in a population of their own
    assert (set(population.values()) | set(model.funds.values())
            == set(model.agents_by_type[LeveragedTrader]))
    assert population.accounts.tolist() == np.flatnonzero(population.is_trader).tolist()


def test_the_arrays_are_indexed_by_account_and_hold_no_trader_at_other_accounts():
    model = PerpMarketModel(small(traders=20), rng=1)
    population = model.traders
    others = [agent.account for agent in (*model.makers, *model.arbitrageurs, *model.vaults)]
    assert not population.is_trader[others].any()
    assert (population.strategy[others] == -1).all()
    assert (population.capital[others] == 0.0).all()
    assert (population.leverage[others] == 0.0).all()


def test_the_arrays_grow_with_the_accounts_of_arriving_traders():
    config = small(steps=120, traders=20).replace("traders.arrivals_per_day", 1440.0 * 5)
    model = PerpMarketModel(config, rng=1).run()
    population = model.traders
    # About 5 arrivals a step for 120 steps: many more accounts than the first 20 traders.
    assert len(population) > 300
    newest = max(population)
    assert len(population.capital) > newest
    capital = population.capital[population.accounts]
    assert (capital >= config.traders.capital_scale).all()  # scale × (1 + Pareto) ≥ scale


def test_a_trader_who_leaves_is_gone_but_its_events_keep_its_strategy():
    model = PerpMarketModel(renewing(), rng=1).run()
    population = model.traders
    gone = np.flatnonzero((population.strategy >= 0) & ~population.is_trader)
    assert len(gone) == population.left > 0
    assert not set(gone.tolist()) & set(population)
    assert not set(gone.tolist()) & {t.account for t in model.agents_by_type[LeveragedTrader]}
    events = model.events
    theirs = events[events["account"].isin(gone.tolist())]
    assert len(theirs) > 0
    expected = [STRATEGIES[population.strategy[a]] for a in theirs["account"]]
    assert theirs["account_type"].tolist() == expected


# ---------------------------------------------------------------- subclasses


class TaggedTrader(LeveragedTrader):
    """A trader that remembers the step it arrived at and reports its largest notional."""

    def __init__(self, model, population, account):
        super().__init__(model, population, account)
        self.arrived_at = model.step_index

    @property
    def entry_notional(self) -> float:
        return self.capital * self.leverage


def test_a_subclass_of_leveraged_trader_is_every_trader_and_changes_no_result():
    config = renewing()
    plain = PerpMarketModel(config, rng=2).run()
    tagged = PerpMarketModel(config, rng=2, trader_class=TaggedTrader).run()
    traders = list(tagged.traders.values())
    assert all(type(t) is TaggedTrader for t in traders)
    assert any(t.arrived_at > 0 for t in traders)  # arrivals are of the class too
    assert all(t.entry_notional == t.capital * t.leverage for t in traders)
    assert repr(tagged.summary()) == repr(plain.summary())
    pd.testing.assert_frame_equal(tagged.events, plain.events, check_exact=True)
    pd.testing.assert_frame_equal(tagged.series, plain.series, check_exact=True)


@pytest.mark.parametrize("agent_class", [object, mesa.Agent, "LeveragedTrader"])
def test_the_agent_class_must_be_leveraged_trader_or_a_subclass(agent_class):
    model = PerpMarketModel(small(traders=1), rng=1)
    with pytest.raises(TypeError, match="agent_class"):
        TraderPopulation(model, np.random.default_rng(1), agent_class=agent_class)


# ---------------------------------------------------------------- kernels


def test_set_exit_triggers_puts_take_profit_and_stop_loss_on_the_side_of_the_position():
    # Account 0 long at 100, account 1 short at 100, account 2's order did not fill.
    size, entry = np.array([1.0, -1.0, 0.0]), np.full(3, 100.0)
    exit_step, above, below = np.full(3, np.inf), np.full(3, np.nan), np.full(3, np.nan)
    set_exit_triggers(np.array([0, 1, 2]), np.array([1.0, -1.0, 0.0]),
                      np.array([30.0, 40.0, 50.0]), 10.0, ledger_of(size, entry=entry), 0.05,
                      0.03, (exit_step, above, below))
    # The long exits above 105 (profit) or below 97 (loss); the short above 103 (loss)
    # or below 95 (profit); each after its holding time, from step 10.
    assert above[:2] == pytest.approx([105.0, 103.0])
    assert below[:2] == pytest.approx([97.0, 95.0])
    assert exit_step.tolist() == [40.0, 50.0, math.inf]
    assert math.isnan(above[2]) and math.isnan(below[2])


def exit_arrays(n: int = 3):
    """Exit triggers, a ledger and trader flags of `n` accounts: all long 1 with no
    triggers, all traders; the ledger's sizes are its first row (`size`)."""
    ledger = ledger_of(np.ones(n))
    return (np.full(n, np.inf), np.full(n, np.nan), np.full(n, np.nan),
            ledger[0][accounts.SIZE], np.ones(n, dtype=bool), ledger)


def test_a_trader_whose_holding_time_ran_out_exits_and_uses_it_up():
    exit_step, above, below, size, is_trader, ledger = exit_arrays()
    exit_step[:] = [5.0, 6.0, 7.0]
    due = due_exits(3, 6.0, 100.0, (exit_step, above, below), ledger, is_trader)
    assert due.tolist() == [0, 1]
    assert exit_step.tolist() == [math.inf, math.inf, 7.0]


def test_a_trader_exits_once_the_index_reaches_an_exit_price():
    exit_step, above, below, size, is_trader, ledger = exit_arrays()
    above[:] = [100.0, 101.0, 110.0]
    below[:] = [90.0, 90.0, 100.0]
    # Index 100: account 0 at its upper price, account 2 at its lower one.
    assert due_exits(3, 0.0, 100.0, (exit_step, above, below), ledger, is_trader).tolist() == [0, 2]


def test_a_flat_account_whose_trigger_fired_has_its_triggers_cleared_and_does_not_exit():
    exit_step, above, below, size, is_trader, ledger = exit_arrays(2)
    exit_step[:], above[:], below[:] = 1.0, 105.0, 95.0
    size[0] = 0.0  # closed by a liquidation, say
    assert due_exits(2, 1.0, 100.0, (exit_step, above, below), ledger, is_trader).tolist() == [1]
    assert exit_step[0] == math.inf and math.isnan(above[0]) and math.isnan(below[0])


def test_an_account_without_a_trader_never_exits():
    exit_step, above, below, size, is_trader, ledger = exit_arrays(2)
    exit_step[:] = 1.0
    is_trader[0] = False
    assert due_exits(2, 1.0, 100.0, (exit_step, above, below), ledger, is_trader).tolist() == [1]


def test_flat_traders_with_less_than_five_percent_of_their_capital_leave():
    # Capital 5,000: collateral 249 leaves, 250 (exactly 5%) stays, 249 in a position
    # stays, and so does an account without a trader.
    assert LEAVE_BELOW == 0.05
    is_trader = np.array([True, True, True, False])
    size = np.array([0.0, 0.0, 1.0, 0.0])
    collateral = np.array([249.0, 250.0, 249.0, 0.0])
    capital = np.full(4, 5_000.0)
    assert leavers(4, is_trader, ledger_of(size, collateral), capital).tolist() == [0]


def test_draw_distinct_keeps_draw_order_and_skips_a_member_drawn_twice():
    population = np.arange(100, 110)
    # Uniforms pick member ⌊u·10⌋: 0, 0 (again: skipped), 9, 5.
    picked = draw_distinct(np.array([104]), population, np.array([0.0, 0.05, 0.99, 0.51]))
    assert picked.tolist() == [104, 100, 109, 105]


def test_draw_distinct_picks_every_member_equally_often():
    from scipy.stats import chisquare

    rng = np.random.default_rng(11)
    counts = np.zeros(10)
    for _ in range(20_000):
        chosen = draw_distinct(np.empty(0, dtype=np.int64), np.arange(10), rng.random(3))
        counts[chosen[:1]] += 1  # the first pick of a draw: uniform over the population
    assert chisquare(counts).pvalue > 1e-4

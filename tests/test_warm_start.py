"""A warm start (``traders.warm_start_days``, ``funds.warm_start_days``): the positions the
accounts hold at step 0 after living the days before the path on the index's own
history, opened at the prices they entered at."""

from __future__ import annotations

import numpy as np
import pytest

from perpabm import ConfigError, PerpMarketModel, ScenarioConfig, mechanics
from perpabm.agents.warm import WarmPositions, balanced, first_exits, warm_positions
from perpabm.config import MarketConfig
from perpabm.market import index_history, index_log_returns

WARM = {"traders.warm_start_days": 7.0, "traders.count": 300, "run.steps": 30}


def test_the_docstrings_first_exits():
    # Prices (100, 102, 104, 99, 97), a long opened at step 0 with take-profit 103 and
    # stop-loss 98: held 10 steps it leaves at 2 (104 ≥ 103); with take-profit 110 at 4
    # (97 ≤ 98); held 1.5 steps, at 1.5; never crossing within the prices: ∞.
    prices = np.array([100.0, 102.0, 104.0, 99.0, 97.0])
    got = first_exits(prices, np.array([0, 0, 0, 0]), np.array([10.0, 10.0, 1.5, 10.0]),
                      np.array([103.0, 110.0, 103.0, 200.0]), np.array([98.0, 98.0, 98.0, 1.0]))
    np.testing.assert_array_equal(got, [2.0, 4.0, 1.5, np.inf])


def test_the_history_ends_at_the_start_price_and_moves_by_the_process_returns():
    market = MarketConfig(process="gbm", volatility=0.5, start_price=100.0)
    history = index_history(market, 500, np.random.default_rng(3))
    assert len(history) == 501 and history[-1] == 100.0
    returns = np.diff(np.log(history))
    np.testing.assert_allclose(returns, index_log_returns(market, 500,
                                                          np.random.default_rng(3)),
                               atol=1e-12)


def test_balanced_scales_the_larger_side_down():
    # Longs (10, 30) and a short of −20: the longs become (5, 15).
    book = WarmPositions(np.array([1, 2, 3]), np.array([10.0, 30.0, -20.0]),
                         np.array([100.0, 101.0, 99.0]), np.array([5.0, 6.0, 7.0]))
    np.testing.assert_allclose(balanced(book).sizes, [5.0, 15.0, -20.0])


def test_warm_positions_are_open_at_their_entry_price_and_crossed_nothing_since():
    rng = np.random.default_rng(1)
    market = MarketConfig(process="garch_t", volatility=0.8, start_price=100.0)
    prices = index_history(market, 5_000, rng)
    n = 400
    capital, leverage = np.full(n, 1_000.0), rng.uniform(1.0, 20.0, n)
    strategy = rng.integers(0, 3, n).astype(np.int8)
    tiers = ((0.0, 0.0125),)
    book = warm_positions(prices, np.arange(n), capital, leverage, strategy,
                          np.random.default_rng(2), entry_probability=0.01,
                          mean_holding_steps=240.0, lookback_steps=30, take_profit=0.05,
                          stop_loss=0.03, tiers=tiers, momentum=1, noise=0)
    assert 0 < len(book.accounts) < n
    assert (book.remaining > 0).all()
    for account, size, entry in zip(book.accounts, book.sizes, book.entries, strict=True):
        opened = np.flatnonzero(prices == entry)
        assert len(opened), "the entry price is a price of the history"
        since = prices[opened[0] + 1:]
        # Opened at capital · leverage of notional.
        assert abs(size) * entry == pytest.approx(capital[account] * leverage[account])
        liquidation = float(mechanics.liquidation_price_tiered(size, entry, 1_000.0, tiers))
        if size > 0:  # nothing crossed: take-profit, stop-loss, liquidation
            assert since.max(initial=0.0) < entry * 1.05
            assert since.min(initial=np.inf) > max(entry * 0.97, liquidation)
        else:
            assert since.min(initial=np.inf) > entry * 0.95
            assert since.max(initial=0.0) < min(entry * 1.03, liquidation)


def test_a_model_starts_from_the_warm_book():
    model = PerpMarketModel("oct10_2025", rng=1, **WARM)
    ex = model.exchange
    accounts = model.traders.accounts
    sizes = np.array([ex.position(a) for a in accounts])
    held = sizes != 0.0
    assert held.sum() > 0.1 * len(accounts)
    entries = np.array([ex.entry_price(a) for a in accounts])[held]
    assert np.isin(entries, model.warm_history).all()  # each its history's price
    assert entries.std() > 0.0  # entered at different prices
    # The book balances: longs = shorts = the open interest; money is conserved.
    assert sizes[sizes > 0].sum() == pytest.approx(-sizes[sizes < 0].sum(), rel=1e-12)
    assert ex.open_interest == pytest.approx(sizes[sizes > 0].sum(), rel=1e-12)
    ex.check_invariants()
    # Its exits are set: a holding time left, take-profit and stop-loss from the entry.
    held_accounts = accounts[held]
    assert np.isfinite(model.traders.exit_step[held_accounts]).all()
    model.run()
    ex.check_invariants()


def test_the_warm_book_is_seeded_and_shared_by_configs_of_one_market():
    a = PerpMarketModel("oct10_2025", rng=5, **WARM)
    b = PerpMarketModel("oct10_2025", rng=5, **WARM)
    c = PerpMarketModel("oct10_2025", rng=5, **{**WARM, "exchange.adl_rule": "profit"})
    np.testing.assert_array_equal(a.warm_history, b.warm_history)
    np.testing.assert_array_equal(a.warm_history, c.warm_history)
    positions = [[m.exchange.position(x) for x in m.traders.accounts] for m in (a, b, c)]
    assert positions[0] == positions[1] == positions[2]


def test_no_warm_start_by_default():
    model = PerpMarketModel("oct10_2025", rng=1, **{"traders.count": 50, "run.steps": 1})
    assert model.warm_history is None
    assert model.exchange.open_interest == 0.0


def test_funds_can_start_warm_too():
    model = PerpMarketModel("oct10_2025", rng=2, **{
        **WARM, "traders.warm_start_days": 0.0, "funds.count": 60,
        "funds.warm_start_days": 30.0, "funds.entries_per_day": 4.0})
    held = [a for a in model.funds.accounts if model.exchange.position(a) != 0.0]
    assert held
    assert all(model.account_types[a] == "fund" for a in held)


@pytest.mark.parametrize("days", [-1.0, 400.0, float("nan")])
def test_a_bad_warm_start_is_refused_naming_it(days):
    with pytest.raises(ConfigError, match=r"traders\.warm_start_days"):
        ScenarioConfig().replace("traders.warm_start_days", days)


def test_a_replayed_index_has_no_history_to_start_from():
    config = ScenarioConfig().replace("market.replay", "prices.csv").replace(
        "market.process", "replay")
    with pytest.raises(ConfigError, match=r"traders\.warm_start_days needs an index process"):
        config.replace("traders.warm_start_days", 3.0)


def test_the_bundled_history_scenario_starts_traders_and_funds_warm():
    model = PerpMarketModel("oct10_2025_history", rng=3, **{"traders.count": 200,
                                                            "run.steps": 20})
    ex = model.exchange
    for population in (model.traders, model.funds):
        held = [a for a in population.accounts if ex.position(a) != 0.0]
        assert held, "nobody holds a warm position"
        assert np.isfinite(population.exit_step[held]).all()
    # The funds hold for a week: their entries spread over the two weeks' prices.
    fund_entries = [ex.entry_price(a) for a in model.funds.accounts if ex.position(a) != 0.0]
    assert np.std(fund_entries) > np.std([ex.entry_price(a) for a in model.traders.accounts
                                          if ex.position(a) != 0.0])
    ex.check_invariants()


# ---------------------------------------------------------------- heavy-tailed holding times


def test_holding_times_keep_their_mean_with_a_heavy_tail():
    from perpabm.agents.warm import holding_times

    exponential = holding_times(np.random.default_rng(1), 240.0, None, 400_000)
    heavy = holding_times(np.random.default_rng(1), 240.0, 2.5, 400_000)
    # Both of mean 240 (Lomax a = 2.5: 240 · 1.5 · E[X] = 240 · 1.5 / 1.5); the Lomax's
    # median 240 · 1.5 · (2^(1/2.5) − 1) = 115 is below the exponential's 240 · ln 2 = 166,
    # and its 99.9th percentile 360 · (1000^(1/2.5) − 1) = 5,351 above 240 · ln 1000 = 1,658.
    assert exponential.mean() == pytest.approx(240.0, rel=0.01)
    assert heavy.mean() == pytest.approx(240.0, rel=0.05)
    assert np.median(heavy) == pytest.approx(360.0 * (2 ** 0.4 - 1), rel=0.02)
    assert np.quantile(heavy, 0.999) > 2 * np.quantile(exponential, 0.999)


def test_a_heavy_tail_spreads_the_warm_books_entries():
    # Exits by holding time alone (take-profit and stop-loss out of reach), so that the
    # tail decides how long ago the positions open at step 0 were entered.
    by_time = {**WARM, "traders.take_profit": 10.0, "traders.stop_loss": 0.99}

    def entry_spread(tail):
        model = PerpMarketModel("oct10_2025", rng=4, **{**by_time, "traders.holding_tail": tail})
        ex = model.exchange
        entries = [ex.entry_price(a) for a in model.traders.accounts if ex.position(a) != 0.0]
        return np.std(entries)
    # The same mean holding, most positions shorter and a few held for days: a position
    # open at a given moment is most likely a long one (its age has mean E[T²] / 2E[T],
    # unbounded for a tail index of 2 or less), so the book's entries span more of the
    # week's prices.
    assert entry_spread(1.2) > entry_spread(None)


@pytest.mark.parametrize("tail", [1.0, 0.5, -2.0, 50.0, float("nan")])
def test_a_holding_tail_of_one_or_less_is_refused(tail):
    with pytest.raises(ConfigError, match=r"traders\.holding_tail"):
        ScenarioConfig().replace("traders.holding_tail", tail)

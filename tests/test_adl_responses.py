"""Agents that respond to being auto-deleveraged: a maker re-hedges or withdraws its
quotes, a trader re-enters.

Common setup (:func:`adl_at_step_2`): index 100, flat but for a scripted 20% drop at
step 2; no fees; mark = index; waterfall book then ADL; two makers, one trader who
never enters by itself, no arbitrageur, no vault. Before the first step L (1,000 USD)
buys 100 at 100 from the account that is to be hit (10x: bankruptcy price
100 − 1,000/100 = 90). At step 2 the index and mark fall to 80: L's equity is
1,000 + 100·(80 − 100) = −1,000; the makers bid ~80, below 90, so the book stage
fills nothing and ADL closes the short's 100 at 90, its only short. The account hit
thus changes its position by +100.
"""

from __future__ import annotations

import numpy as np
import pytest

from perpabm import ExchangeConfig
from perpabm.agents.deleveraging import deleveraged
from perpabm.agents.maker import REHEDGE_SLIPPAGE, ladder_for
from perpabm.config.market import MarketConfig, Shock
from perpabm.config.scenario import (
    ArbitrageurConfig,
    MakerConfig,
    RunConfig,
    ScenarioConfig,
    TraderConfig,
    VaultConfig,
)
from perpabm.errors import ConfigError
from perpabm.exchange import Event
from perpabm.model import PerpMarketModel

START, DROP = 100.0, -0.2
QUANTITY = 100.0


def adl_at_step_2(hit: str, *, steps: int = 6, makers: dict | None = None,
                  reentry: float = 0.0) -> tuple[PerpMarketModel, int]:
    """The common setup; `hit` is "maker" (maker 0 is short) or "trader". Returns the
    model, not yet stepped, and the account that ADL will hit."""
    config = ScenarioConfig(
        exchange=ExchangeConfig(taker_fee=0.0, maker_fee=0.0, waterfall=("book", "adl"),
                                mark_rule="index", debug=True),
        market=MarketConfig(process="gbm", start_price=START, volatility=1e-12,
                            shocks=(Shock(at_minute=1, change=DROP),)),
        traders=TraderConfig(count=1, entries_per_day=0.0, arrivals_per_day=0.0,
                             adl_reentry_probability=reentry, leverage_sigma=0.0),
        makers=MakerConfig(count=2, **(makers or {})),
        arbitrageur=ArbitrageurConfig(count=0),
        vault=VaultConfig(enabled=False),
        run=RunConfig(steps=steps, debug=True),
    )
    model = PerpMarketModel(config, rng=1)
    target = model.makers[0].account if hit == "maker" else next(iter(model.traders))
    liquidated = model.exchange.open_account(1_000.0)
    model.exchange.fill(liquidated, target, QUANTITY, START)
    return model, target


def run_to(model: PerpMarketModel, step: int) -> None:
    while model.step_index < step:
        model.step()


def adl_rows(model: PerpMarketModel):
    events = model.events
    return events[events["kind"] == "adl"]


def test_the_setup_closes_the_short_by_adl_at_step_2():
    model, target = adl_at_step_2("maker")
    run_to(model, 2)
    rows = adl_rows(model)
    assert rows["account"].tolist() == [target]
    assert rows["quantity"].tolist() == [QUANTITY]
    assert rows["price"].tolist() == [pytest.approx(90.0)]
    assert model.exchange.position(target) == 0.0


def test_deleveraged_sums_each_accounts_adl_rows_in_order_of_first_hit():
    def row(account, quantity, kind="adl"):
        return Event(0.0, kind, 0, account, 1, quantity, 90.0, 90.0, 80.0, 0.0, 0.0, 1, 0.0)

    accounts, changes = deleveraged([row(4, -1.5), row(9, 2.0), row(7, 5.0, "liquidation"),
                                     row(4, -0.5)])
    # account 4: −1.5 − 0.5 = −2; account 9: +2; the liquidation row is not ADL
    assert accounts.tolist() == [4, 9]
    assert changes.tolist() == [-2.0, 2.0]


# ---------------------------------------------------------------- makers


def test_a_rehedging_maker_trades_back_through_the_book_at_the_next_step():
    model, maker = adl_at_step_2("maker", makers={"adl_response": "rehedge",
                                                  "adl_rehedge_share": 0.5})
    other = model.makers[1].account
    run_to(model, 2)
    best_bid = max(o.price for o in model.exchange.book.account_orders(other)
                   if o.side == "buy")
    run_to(model, 3)
    # Short 100, ADL bought 100 back (+100, flat); it sells 0.5·100 = 50 at step 3,
    # into maker 1's best bid of step 2 (its own quotes are skipped), within 2% of 80.
    assert model.exchange.position(maker) == pytest.approx(-0.5 * QUANTITY)
    assert model.exchange.position(other) == pytest.approx(0.5 * QUANTITY)
    assert model.exchange.last_price == pytest.approx(best_bid)
    assert best_bid >= START * (1 + DROP) * (1 - REHEDGE_SLIPPAGE)
    assert model.makers[0].rehedge == 0.0


def test_a_maker_that_does_not_respond_stays_flat_after_adl():
    model, maker = adl_at_step_2("maker")
    run_to(model, 4)
    assert model.exchange.position(maker) == 0.0


def test_a_withdrawing_maker_quotes_wider_and_thinner_for_the_configured_time():
    settings = {"adl_response": "withdraw", "adl_withdraw_minutes": 2.0,
                "adl_withdraw_spread": 2.0, "adl_withdraw_depth": 0.25}
    model, maker = adl_at_step_2("maker", makers=settings)
    agent = model.makers[0]
    run_to(model, 2)
    # Hit at step 2; 2 minutes of one-minute steps = 2 requotes: steps 3 and 4.
    assert agent.withdrawn_until == 4
    for step, withdrawn in ((3, True), (4, True), (5, False)):
        run_to(model, step)
        usual = ladder_for(model, maker, agent.config)
        posted = model.exchange.book.account_orders(maker)
        quantities = np.array([o.quantity if o.side == "buy" else -o.quantity for o in posted])
        prices = np.array([o.price for o in posted])
        # flat: fair value = index; withdrawn, each level sits 2× as far from it and
        # holds 0.25 of the usual quantity
        widen, thin = (2.0, 0.25) if withdrawn else (1.0, 1.0)
        np.testing.assert_allclose(quantities, thin * usual[0], rtol=1e-12)
        np.testing.assert_allclose(prices - model.index, widen * (usual[1] - model.index),
                                   rtol=1e-9)


def test_a_maker_withdrawn_to_no_depth_quotes_nothing():
    model, maker = adl_at_step_2("maker", makers={"adl_response": "withdraw",
                                                  "adl_withdraw_depth": 0.0})
    run_to(model, 3)
    assert model.exchange.book.account_orders(maker) == []


# ---------------------------------------------------------------- traders


def test_a_trader_adl_left_flat_reenters_at_the_next_step_with_probability_one():
    model, trader = adl_at_step_2("trader", reentry=1.0)
    run_to(model, 2)
    assert model.exchange.position(trader) == 0.0
    equity = model.exchange.equity(trader)
    run_to(model, 3)
    # It was short: it sells again, equity × its leverage (5, sigma 0) / index 80 units,
    # as far as the makers' bids within 2% of the index fill it.
    position = model.exchange.position(trader)
    assert position < 0.0
    assert -position == pytest.approx(equity * 5.0 / 80.0, rel=1e-9)


def test_a_trader_adl_left_flat_never_reenters_with_probability_zero():
    model, trader = adl_at_step_2("trader", reentry=0.0)
    run_to(model, 6)
    assert model.exchange.position(trader) == 0.0


def test_defaults_do_not_respond_to_adl():
    config = ScenarioConfig()
    assert config.traders.adl_reentry_probability == 0.0
    assert config.makers.adl_response == "none"


@pytest.mark.parametrize("section, setting, value", [
    (MakerConfig, "adl_response", "hedge"),
    (MakerConfig, "adl_withdraw_spread", 0.5),
    (MakerConfig, "adl_withdraw_minutes", 0.0),
    (TraderConfig, "adl_reentry_probability", 1.5),
])
def test_bad_adl_response_settings_are_named(section, setting, value):
    prefix = "makers" if section is MakerConfig else "traders"
    with pytest.raises(ConfigError, match=rf"^{prefix}\.{setting}"):
        section(**{setting: value})

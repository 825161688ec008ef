"""Makers that hedge on an outside venue (``makers.hedged``): each step the hedge is
brought to −inventory plus what ADL left naked, and a maker answers ADL by re-opening its
perp leg, closing the naked hedge, withdrawing its quotes, or holding.

The case: rules of one maintenance rate (0.5%), no fees, an empty fund. Maker M
(100,000 USD) is short 10 at 100 against L, long 10 at 100 with 100 USD (bankrupt at 90);
M's hedge is +10 spot, bought at 100. At a mark of 88 L's equity is 100 − 120 = −20, the
book is empty, and ADL buys M's short back at 90: M's inventory is 0 and its hedge of 10
is naked.
"""

from __future__ import annotations

import math

import mesa
import pytest

from perpabm import ConfigError, Exchange, PerpMarketModel, ScenarioConfig
from perpabm.agents import MarketMaker
from perpabm.agents.deleveraging import deleveraged
from perpabm.config import MakerConfig
from tests.test_waterfall import BASE


class Host(mesa.Model):
    """What a maker reads of its model here: the exchange, the index, the step, the time."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__()
        self.exchange = exchange
        self.index = 100.0
        self.step_index = 0
        self.step_minutes = 1.0
        self.now = 0.0  # model time, in steps
        self.tick_minutes = 1.0  # one tick a step


def deleveraged_maker(response: str):
    """The module's case up to the ADL, told to the maker; returns the host and M."""
    ex = Exchange(BASE, mark_price=100.0)
    host = Host(ex)
    maker = MarketMaker(host, MakerConfig(capital=100_000.0, hedged=True,
                                          adl_response=response))
    long_ = ex.open_account(100.0)
    ex.fill(long_, maker.account, 10.0, 100.0)
    maker.hedge_now()  # −(−10) + 0 = 10 spot bought at 100
    assert (maker.hedge.position, maker.hedge.cash, maker.spot_flow) == (10.0, -1_000.0, 1_000.0)
    accounts, changes = deleveraged(ex.update_mark(88.0))
    assert accounts.tolist() == [maker.account] and changes.tolist() == [10.0]
    maker.deleveraged(10.0)
    host.index, host.step_index, host.now = 88.0, 1, 1.0
    return host, maker


def test_adl_leaves_the_hedge_naked_and_holding_keeps_it():
    host, maker = deleveraged_maker("none")
    assert host.exchange.position(maker.account) == 0.0
    maker.hedge_now()
    # Target −0 + 10 = 10: nothing traded; the hedge's P&L at 88 is −1,000 + 880 = −120.
    assert (maker.hedge.position, maker.spot_flow) == (10.0, 0.0)
    assert maker.hedge_pnl == pytest.approx(-120.0)


def test_close_hedge_sells_the_naked_spot():
    host, maker = deleveraged_maker("close_hedge")
    maker.hedge_now()
    # Naked set to 0, target −0 + 0 = 0: sells 10 at 88 (spot flow −880), cash −120.
    assert maker.hedge.position == 0.0
    assert maker.spot_flow == pytest.approx(-880.0)
    assert maker.hedge_pnl == pytest.approx(-120.0)


def test_rehedge_reopens_the_perp_leg_and_the_hedge_stands():
    host, maker = deleveraged_maker("rehedge")
    ex = host.exchange
    buyer = ex.open_account(100_000.0)
    ex.place_limit(buyer, 10.0, 88.0)
    MarketMaker.rehedge_all(host, [maker])  # sells 10 perp at 88: short again
    assert ex.position(maker.account) == -10.0
    assert maker.naked == 0.0  # +10 naked, −10 re-opened
    maker.hedge_now()  # target −(−10) + 0 = 10: nothing to trade
    assert (maker.hedge.position, maker.spot_flow) == (10.0, 0.0)


def test_withdraw_holds_the_hedge_and_quotes_thinner():
    host, maker = deleveraged_maker("withdraw")
    maker.hedge_now()
    assert maker.hedge.position == 10.0  # still naked
    assert maker.withdrawn_until >= host.now


def test_an_unhedged_maker_has_no_hedge():
    ex = Exchange(BASE, mark_price=100.0)
    maker = MarketMaker(Host(ex), MakerConfig(capital=100_000.0))
    other = ex.open_account(100_000.0)
    ex.fill(other, maker.account, 10.0, 100.0)
    maker.hedge_now()
    assert (maker.hedge.position, maker.hedge_pnl, maker.spot_flow) == (0.0, 0.0, 0.0)


def test_close_hedge_needs_a_hedge():
    with pytest.raises(ConfigError, match=r'makers\.adl_response = "close_hedge" needs a '
                                          r"hedge"):
        ScenarioConfig().replace("makers.adl_response", "close_hedge")
    hedged = ScenarioConfig().replace("makers.hedged", True)
    assert hedged.replace("makers.adl_response", "close_hedge").makers.hedged


def test_in_a_model_the_hedge_offsets_the_inventory_and_is_reported():
    model = PerpMarketModel("oct10_2025", rng=2, **{"makers.hedged": True,
                                                    "traders.count": 200, "run.steps": 30})
    model.run()
    for maker in model.makers:  # hedged at its last act: −inventory then, plus naked
        assert maker.hedge.position != 0.0
    assert model.summary()["maker_hedge_pnl"] == pytest.approx(
        sum(m.hedge_pnl for m in model.makers))
    assert model.exchange.conservation_error() == pytest.approx(0.0, abs=1e-6)


def test_without_hedged_makers_the_hedge_pnl_is_missing():
    model = PerpMarketModel("default", rng=1, **{"traders.count": 20, "run.steps": 2,
                                                  "makers.hedged": False})
    assert math.isnan(model.summary()["maker_hedge_pnl"])

"""Basis traders: a perp short against a spot long held outside the exchange. When ADL
closes the short, the hedge is naked, and the trader reopens the short, sells the hedge,
or holds, as ``basis.adl_response`` says.

The case: rules of one maintenance rate (0.5%), no fees, an empty fund. B (10,000 USD,
1x, index 100) sells 100 perp into L's bid at 100 and buys 100 spot at 100 (hedge cash
−10,000). L is long 100 at 100 with 1,000 USD (10x), bankrupt at 90. At a mark of 88 L's
equity is 1,000 − 1,200 = −200; the book is empty, so ADL closes B's short — the only one
— at L's bankruptcy price 90: B realises 100·(100 − 90) = 1,000, 200 less than at the mark.
"""

from __future__ import annotations

import math

import mesa
import numpy as np
import pytest

from perpabm import ConfigError, Exchange, PerpMarketModel, ScenarioConfig
from perpabm.agents import BasisTrader
from perpabm.agents.deleveraging import deleveraged
from perpabm.config import BasisConfig
from tests.test_waterfall import BASE


class Host(mesa.Model):
    """What a basis trader reads of its model: the exchange and the index."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__()
        self.exchange = exchange
        self.index = 100.0


def deleveraged_basis_trader(response: str):
    """The module's case up to the ADL; returns the host, B and L."""
    ex = Exchange(BASE, mark_price=100.0)
    host = Host(ex)
    basis = BasisTrader(host, BasisConfig(count=1, capital=10_000.0, adl_response=response))
    long_ = ex.open_account(1_000.0)
    ex.place_limit(long_, 100.0, 100.0)
    basis.act()  # opens: sells 100 perp at 100, buys 100 spot at 100
    assert basis.opened and ex.position(basis.account) == -100.0
    assert (basis.hedge.position, basis.hedge.cash) == (100.0, -10_000.0)
    accounts, changes = deleveraged(ex.update_mark(88.0))
    assert accounts.tolist() == [basis.account] and changes.tolist() == [100.0]
    basis.deleveraged(float(changes[0]))
    host.index = 88.0
    return host, basis, long_


def test_adl_closes_the_short_and_leaves_the_hedge_naked():
    host, basis, _ = deleveraged_basis_trader("none")
    ex = host.exchange
    assert ex.position(basis.account) == 0.0
    assert ex.collateral(basis.account) == pytest.approx(11_000.0)  # 10,000 + 100·10
    assert basis.naked == 100.0
    # The hedge's P&L at 88: −10,000 + 100·88 = −1,200; with the perp's +1,000, B is
    # down 200, what ADL at 90 cost it against the mark.
    assert basis.hedge_pnl == pytest.approx(-1_200.0)


def test_close_hedge_sells_the_naked_spot_at_the_index():
    host, basis, _ = deleveraged_basis_trader("close_hedge")
    basis.act()
    # Sells 100 spot at 88: hedge 0, cash −10,000 + 8,800 = −1,200, a spot sale of 8,800.
    assert basis.hedge.position == 0.0
    assert basis.hedge.cash == pytest.approx(-1_200.0)
    assert basis.spot_flow == pytest.approx(-8_800.0)
    host.index = 80.0
    assert basis.hedge_pnl == pytest.approx(-1_200.0)  # flat: the index no longer moves it


def test_reopen_sells_the_perp_again():
    host, basis, _ = deleveraged_basis_trader("reopen")
    ex = host.exchange
    buyer = ex.open_account(100_000.0)
    ex.place_limit(buyer, 100.0, 88.0)
    basis.act()
    # Short 100 again, at 88; the hedge stays 100 and the spot is untouched.
    assert ex.position(basis.account) == -100.0
    assert ex.entry_price(basis.account) == 88.0
    assert basis.hedge.position == 100.0 and basis.spot_flow == 0.0


def test_none_holds_the_naked_hedge():
    host, basis, _ = deleveraged_basis_trader("none")
    basis.act()
    assert basis.hedge.position == 100.0 and host.exchange.position(basis.account) == 0.0
    host.index = 80.0
    assert basis.hedge_pnl == pytest.approx(-2_000.0)  # −10,000 + 100·80


def test_it_opens_once_the_book_has_bids():
    ex = Exchange(BASE, mark_price=100.0)
    host = Host(ex)
    basis = BasisTrader(host, BasisConfig(count=1, capital=10_000.0))
    basis.act()  # an empty book: nothing fills, it tries again at the next step
    assert not basis.opened and basis.hedge.position == 0.0
    buyer = ex.open_account(100_000.0)
    ex.place_limit(buyer, 60.0, 100.0)
    basis.act()  # 60 of its 100
    assert not basis.opened and basis.hedge.position == 60.0
    ex.place_limit(buyer, 40.0, 99.0)
    basis.act()  # the other 40
    assert basis.opened and ex.position(basis.account) == -100.0
    assert basis.hedge.position == 100.0
    assert basis.hedge.cash == pytest.approx(-10_000.0)  # bought at the index, 100


def test_in_a_model_basis_traders_are_their_own_account_type_and_report_the_hedge():
    model = PerpMarketModel("oct10_2025", rng=1, **{"basis.count": 3, "traders.count": 200,
                                                    "run.steps": 40})
    model.run()
    types = model.account_types
    assert (types[[b.account for b in model.basis_traders]] == "basis").all()
    assert all(b.opened for b in model.basis_traders)
    hedge = sum(b.hedge_pnl for b in model.basis_traders)
    assert model.summary()["basis_hedge_pnl"] == pytest.approx(hedge)
    # The hedge is outside the exchange: its money is counted, and conserved, without it.
    assert model.exchange.conservation_error() == pytest.approx(0.0, abs=1e-6)


def test_without_basis_traders_the_hedge_pnl_is_missing():
    model = PerpMarketModel("default", rng=1, **{"traders.count": 20, "run.steps": 2,
                                                  "basis.count": 0})
    assert math.isnan(model.summary()["basis_hedge_pnl"])
    assert model.basis_traders == []


@pytest.mark.parametrize(("path", "value"), [("basis.count", -1), ("basis.capital", 0.0),
                                             ("basis.leverage", 0.0), ("basis.leverage", np.nan),
                                             ("basis.adl_response", "reopn")])
def test_bad_basis_settings_are_refused_naming_them(path, value):
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")) as info:
        ScenarioConfig().replace(path, value)
    assert "\n" not in str(info.value)

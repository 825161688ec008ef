"""When code the waterfall calls fails — a backstop handler that raises or returns what
is not a quantity, an ADL rule that scores NaN — the error surfaces and the mark update
that called it is undone: the exchange is as it was before the call, and its
invariants hold.

Common setup unless a test says otherwise: mark 100, no fees, one tier with mmr 0.5%.
L has 1,000 USD and is long 100 at 100 (bankruptcy price 90) against S, short 100
with 20,000 USD; V (100,000 USD) is the registered backstop. At mark 89, L's equity is
1,000 + 100·(89 − 100) = −100 < 0: the book is empty, so the backstop is offered L's
position, and what it declines goes to ADL against S.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from perpabm import Exchange, ExchangeConfig
from perpabm.exchange import BackstopOffer

CONFIG = ExchangeConfig(
    max_leverage=50.0,
    mm_tiers=((0.0, 0.005),),
    taker_fee=0.0,
    maker_fee=0.0,
    liquidation_fee=0.0,
    waterfall=("book", "backstop", "adl"),
    backstop_trigger=1.0,
    adl_trigger="negative_equity",
    surplus_to="account",
)


def takes_all(offer: BackstopOffer) -> float:
    return abs(offer.size)


def vault_offline(offer: BackstopOffer) -> float:
    raise RuntimeError("vault offline")


def with_backstop(handler, config: ExchangeConfig = CONFIG) -> tuple[Exchange, dict[str, int]]:
    """The common setup with `handler` as V's: accounts M (maker), L, S and V."""
    ex = Exchange(config, mark_price=100.0)
    ids = {"M": ex.open_account(1_000_000.0), "L": ex.open_account(1_000.0),
           "S": ex.open_account(20_000.0), "V": ex.open_account(100_000.0)}
    ex.fill(ids["L"], ids["S"], 100.0, 100.0)
    ex.register_backstop(ids["V"], handler)
    return ex, ids


def state(ex: Exchange) -> tuple:
    """Everything a mark update may change, to compare before and after."""
    return (ex.mark_price, ex.time, ex.insurance_fund, ex.fees_collected, ex.last_price,
            ex.bad_debt, ex.accounts(), ex.events, ex.book.best_bid(), ex.book.best_ask())


def assert_same_state(actual: tuple, expected: tuple) -> None:
    for got, want in zip(actual, expected, strict=True):
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        else:
            assert got == want


# ---------------------------------------------------------------- a handler that raises


def test_a_backstop_handler_s_exception_surfaces_and_the_mark_update_is_undone():
    ex, ids = with_backstop(vault_offline)
    before = state(ex)
    with pytest.raises(RuntimeError, match=r"^vault offline") as info:
        ex.update_mark(89.0)
    assert any("restored" in note for note in info.value.__notes__)
    # Not half-updated: the mark is 100 again and L (equity 0 at 100) is still open.
    assert_same_state(state(ex), before)
    assert ex.mark_price == 100.0 and ex.time == 0.0
    assert ex.position(ids["L"]) == 100.0
    ex.check_invariants()


def test_an_undone_update_also_undoes_the_liquidations_before_the_failure():
    # L2 (990 USD, long 100 at 100, bankruptcy 90.1) at mark 90.4: equity 30, MM 45.2,
    # ratio 0.66, before L's 40/45.2 = 0.88. L2 sells its 100 to M's bid at 90.2 ≥ 90.1;
    # then L finds the book empty and is offered to V, whose handler raises.
    ex, ids = with_backstop(vault_offline)
    second = ex.open_account(990.0)
    ex.fill(second, ids["S"], 100.0, 100.0)
    ex.place_limit(ids["M"], 100.0, 90.2)
    before = state(ex)
    with pytest.raises(RuntimeError, match=r"^vault offline"):
        ex.update_mark(90.4)
    assert_same_state(state(ex), before)
    assert ex.position(second) == 100.0 and ex.position(ids["M"]) == 0.0
    assert ex.book.best_bid() == 90.2
    ex.check_invariants()


def test_after_an_undone_update_the_same_update_runs_as_if_it_never_failed():
    ex, ids = with_backstop(vault_offline)
    with pytest.raises(RuntimeError):
        ex.update_mark(89.0)
    ex.register_backstop(ids["V"], takes_all)
    twin, _ = with_backstop(takes_all)
    assert [e.kind for e in ex.update_mark(89.0)] == ["backstop"]
    twin.update_mark(89.0)
    assert_same_state(state(ex), state(twin))
    ex.check_invariants()


def test_update_index_is_undone_with_its_mark_rule_s_running_average():
    # The basis EMA moves with each update_index; a failed one must not move it.
    config = CONFIG.replace(mark_rule="index_ema_basis", mark_ema_minutes=5.0)
    ex, ids = with_backstop(vault_offline, config)
    twin, twin_ids = with_backstop(takes_all, config)
    for exchange, maker in ((ex, ids["M"]), (twin, twin_ids["M"])):
        exchange.place_limit(maker, 1.0, 80.0)
        exchange.place_limit(maker, -1.0, 120.0)
    before = state(ex)
    with pytest.raises(RuntimeError, match=r"^vault offline"):
        ex.update_index(85.0)
    assert_same_state(state(ex), before)
    ex.register_backstop(ids["V"], takes_all)
    ex.update_index(85.0)
    twin.update_index(85.0)
    assert_same_state(state(ex), state(twin))
    ex.check_invariants()


# ---------------------------------------------------------------- what a handler returns


@pytest.mark.parametrize("returned", [
    pytest.param("1", id="a string"),
    pytest.param(True, id="a bool"),
    pytest.param(None, id="None"),
    pytest.param(np.array(50.0), id="an array"),
    pytest.param([50.0], id="a list"),
    pytest.param(50 + 0j, id="complex"),
])
def test_a_backstop_handler_returning_no_number_is_a_type_error_and_the_update_is_undone(
        returned):
    def odd_vault(offer: BackstopOffer) -> float:
        return returned

    ex, ids = with_backstop(odd_vault)
    before = state(ex)
    with pytest.raises(TypeError, match=rf"^backstop handler .*odd_vault returned "
                                        rf"{re.escape(repr(returned))} "
                                        rf"\({type(returned).__name__}\); it must return"):
        ex.update_mark(89.0)
    assert_same_state(state(ex), before)
    ex.check_invariants()


@pytest.mark.parametrize("returned", [-1.0, math.nan, math.inf, 100.5])
def test_a_backstop_handler_returning_a_quantity_outside_the_offer_is_a_value_error(returned):
    # The offer is L's 100: a quantity must be in [0, 100].
    def greedy_vault(offer: BackstopOffer) -> float:
        return returned

    ex, ids = with_backstop(greedy_vault)
    before = state(ex)
    with pytest.raises(ValueError, match=rf"^backstop handler .*greedy_vault returned "
                                         rf"{returned!r}; it must return a quantity in "
                                         rf"\[0, 100\]"):
        ex.update_mark(89.0)
    assert_same_state(state(ex), before)
    ex.check_invariants()


@pytest.mark.parametrize("returned", [40, np.int64(40), np.float64(40.0), 40.0])
def test_a_backstop_handler_may_return_any_real_number(returned):
    ex, ids = with_backstop(lambda offer: returned)
    ex.update_mark(89.0)
    # V takes 40 of L's 100; ADL closes the other 60 against S.
    assert ex.position(ids["V"]) == 40.0
    assert ex.position(ids["L"]) == 0.0 and ex.position(ids["S"]) == pytest.approx(-40.0)
    ex.check_invariants()


# ---------------------------------------------------------------- an ADL rule that fails


def nan_rule(size, entry_price, mark_price, collateral, mmr, rng):
    return np.full(size.shape, np.nan)


def test_an_adl_rule_scoring_nan_fails_the_update_naming_the_rule_and_undoes_it():
    config = CONFIG.replace(waterfall=("book", "adl"), adl_rule="mine",
                            adl_rules={"mine": nan_rule})
    ex, ids = with_backstop(takes_all, config)
    before = state(ex)
    with pytest.raises(ValueError, match=r"^ADL rule test_waterfall_failures:nan_rule "
                                         r"returned NaN for 1 of 1 live positions"):
        ex.update_mark(89.0)
    assert_same_state(state(ex), before)
    assert ex.position(ids["L"]) == 100.0
    ex.check_invariants()

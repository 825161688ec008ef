"""Specification tests for perpabm.exchange.ledger: the cached liquidation prices."""

import numpy as np
import pytest

from perpabm import mechanics
from perpabm.exchange.ledger import Ledger

ONE_TIER = ((0.0, 0.01),)


def long_and_short(capacity: int = 8) -> Ledger:
    """A long of 1 at 100 and a short of 1 at 100, each with 10 USD of collateral.

    With mmr 1%, equity = maintenance margin at the long's 10 + (P − 100) = 0.01·P,
    P = 90 / 0.99 = 90.9090…, and at the short's 10 + (100 − P) = 0.01·P,
    P = 110 / 1.01 = 108.9108….
    """
    ledger = Ledger(ONE_TIER, capacity=capacity)
    long_, short = ledger.open(10.0), ledger.open(10.0)
    ledger.trade(long_, 1.0, 100.0)
    ledger.trade(short, -1.0, 100.0)
    return ledger


def test_the_scan_finds_exactly_the_accounts_past_their_liquidation_price():
    ledger = long_and_short()
    assert ledger.near_liquidation(100.0).tolist() == []
    assert ledger.near_liquidation(90.0).tolist() == [0]  # below the long's 90.909…
    assert ledger.near_liquidation(109.0).tolist() == [1]  # above the short's 108.910…
    assert ledger.long_lp[0] == pytest.approx(90.0 / 0.99)
    assert ledger.short_lp[1] == pytest.approx(110.0 / 1.01)


def test_a_change_after_a_scan_is_seen_by_the_next_scan():
    ledger = long_and_short()
    assert ledger.near_liquidation(95.0).tolist() == []
    # 5 USD less collateral: 5 + (P − 100) = 0.01·P, P = 95 / 0.99 = 95.9595… > 95.
    ledger.credit(0, -5.0)
    assert ledger.near_liquidation(95.0).tolist() == [0]


def test_more_changes_than_the_list_holds_refresh_every_account():
    # Capacity 2: the changed list holds 2 accounts; six trades overflow it, and the
    # scan then refreshes every account rather than losing one.
    ledger = long_and_short(capacity=2)
    for _ in range(3):
        ledger.trade(0, 1.0, 100.0)
        ledger.trade(1, -1.0, 100.0)
    assert ledger.changed[0] == -1
    ledger.near_liquidation(100.0)
    expected = mechanics.liquidation_price_from_table(
        ledger.size[:2], ledger.entry_price[:2], ledger.collateral[:2],
        np.array([0.01]), np.array([0.0]))
    # 4 long at 100 on 10 USD: 10 + 4(P − 100) = 0.04·P, P = 390 / 3.96 = 98.4848….
    assert expected[0] == pytest.approx(390.0 / 3.96)
    assert ledger.long_lp[0] == expected[0]
    assert ledger.short_lp[1] == expected[1]
    assert ledger.changed[0] == 0  # the list is empty again

"""ADL allocation in profit space (Chitra, arXiv 2512.01112): the policies as pure
functions on the paper's worked example, and as engine allocations on hand-derived
cases.

A profit-space haircut is executed on the book as a partial close at the bankruptcy
price: a winner closed by q there instead of the mark gives up q·gap of its profit,
gap = |mark − bankruptcy price|, so a haircut of H USD is a close of H / gap.
"""

from __future__ import annotations

import numpy as np
import pytest

from perpabm import Exchange, adl, analysis
from perpabm.adl import haircuts, overshoot, profit_space_closes
from tests.test_waterfall import BASE

pytestmark = pytest.mark.filterwarnings("error")

# ---------------------------------------------------------------- the worked example
#
# Profits w = (8, 4, 0.5, 0, 0) USD and a budget of 7.5 USD. As positions: quantities
# (8, 4, 0.5, 1, 1) with profit per unit u = (1, 1, 1, 0, −1) and a gap of 1 USD per
# unit, so a haircut of H USD closes H units and never reaches a cap (gap/u = 1).

PROFITS = np.array([8.0, 4.0, 0.5, 0.0, 0.0])
BUDGET = 7.5
QUANTITIES = np.array([8.0, 4.0, 0.5, 1.0, 1.0])
PER_UNIT = np.array([1.0, 1.0, 1.0, 0.0, -1.0])
ALL = np.ones(5, dtype=bool)
QUEUE = [1, 0, 2, 3, 4]  # the queue takes the second winner first, then the first


def test_wealth_pro_rata_takes_the_same_share_of_every_winners_profit():
    # U = 8 + 4 + 0.5 = 12.5, h = 7.5 / 12.5 = 0.6: takes 4.8, 2.4 and 0.3.
    h = haircuts(PROFITS, BUDGET, "pro_rata")
    np.testing.assert_allclose(h * PROFITS, [4.8, 2.4, 0.3, 0, 0])
    closes = profit_space_closes("wealth_pro_rata", QUANTITIES, PER_UNIT, ALL, 1.0, BUDGET)
    np.testing.assert_allclose(closes, [4.8, 2.4, 0.3, 0, 0])
    # Zero overshoot: 4.8 + 2.4 + 0.3 = 7.5 taken for a budget of 7.5.
    assert overshoot(closes * PER_UNIT, BUDGET) == pytest.approx(0.0, abs=1e-12)


def test_the_smart_queue_takes_4_from_the_second_and_3_5_from_the_first():
    # In queue order the profits are (4, 8, 0.5, 0, 0): all 4 of the second winner, then
    # 7.5 − 4 = 3.5 of the first's 8, nothing of the third.
    h = haircuts(PROFITS, BUDGET, "queue", scores=[2.0, 3.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(h * PROFITS, [3.5, 4.0, 0, 0, 0])
    closes = profit_space_closes("smart_queue", QUANTITIES[QUEUE], PER_UNIT[QUEUE], ALL,
                                 1.0, BUDGET)
    np.testing.assert_allclose(closes, [4.0, 3.5, 0, 0, 0])
    assert overshoot(closes * PER_UNIT[QUEUE], BUDGET) == pytest.approx(0.0, abs=1e-12)


def test_leverage_pro_rata_on_the_worked_example():
    # Leverage 1, 2 and 4: h_i = min(λ·lev_i, 1). λ·(8·1 + 4·2 + 0.5·4) = 18λ = 7.5 gives
    # λ = 0.4167 and 4·0.4167 > 1, so the third is capped at h = 1 (takes 0.5) and
    # 0.5 + λ·(8·1 + 4·2) = 7.5 → λ = 7/16: h = (0.4375, 0.875, 1), takes 3.5, 3.5, 0.5.
    leverage = np.array([1.0, 2.0, 4.0, 0.0, 0.0])
    h = haircuts(PROFITS, BUDGET, "leverage_pro_rata", scores=leverage)
    np.testing.assert_allclose(h[:3], [0.4375, 0.875, 1.0])
    closes = profit_space_closes("leverage_pro_rata", QUANTITIES, PER_UNIT, ALL, 1.0, BUDGET,
                                 leverage=leverage)
    np.testing.assert_allclose(closes, [3.5, 3.5, 0.5, 0, 0])


def test_capped_pro_rata_on_the_worked_example_leaves_what_the_caps_forbid():
    # Cap 0.5: pro rata would take 0.6 of each, so every winner is at 0.5: 4, 2 and 0.25,
    # 6.25 in all; 7.5 − 6.25 = 1.25 of the budget is not covered (overshoot −1.25).
    h = haircuts(PROFITS, BUDGET, "capped_pro_rata", caps=0.5)
    np.testing.assert_allclose(h * PROFITS, [4.0, 2.0, 0.25, 0, 0])
    closes = profit_space_closes("capped_pro_rata", QUANTITIES, PER_UNIT, ALL, 1.0, BUDGET,
                                 cap=0.5)
    np.testing.assert_allclose(closes, [4.0, 2.0, 0.25, 0, 0])
    assert overshoot(closes * PER_UNIT, BUDGET) == pytest.approx(-1.25)


def test_a_winner_pays_at_most_what_its_whole_position_pays_at_the_gap():
    # Profit per unit 4 but gap 1: closing all 2 units pays 2·1 = 2 of its profit of 8,
    # so its haircut is capped at 2/8 = 0.25 and the other winner (u = 1) pays the rest:
    # budget 3 → the first closes all 2 (pays 2), the second 1 unit (pays 1).
    closes = profit_space_closes("wealth_pro_rata", np.array([2.0, 4.0]),
                                 np.array([4.0, 1.0]), np.ones(2, dtype=bool), 1.0, 3.0)
    np.testing.assert_allclose(closes, [2.0, 1.0])


def test_ineligible_and_losing_positions_give_up_nothing():
    closes = profit_space_closes("wealth_pro_rata", np.array([1.0, 1.0, 1.0]),
                                 np.array([2.0, 2.0, -1.0]),
                                 np.array([False, True, True]), 1.0, 1.0)
    np.testing.assert_allclose(closes, [0.0, 1.0, 0.0])


def test_profit_space_closes_reject_an_unknown_allocation():
    with pytest.raises(ValueError, match=r"^allocation must be one of .*'smart_queue'"):
        profit_space_closes("smart queue", QUANTITIES, PER_UNIT, ALL, 1.0, 1.0)


# ---------------------------------------------------------------- in the engine
#
# L is long 100 at 100 with 1,000 USD (bankruptcy price 90) against A, short 100 at 100
# with 7,600 USD. D is short 100 at 92 with 4,000 USD against B (long, 100,000 USD).
# At mark 88 nothing is in the book: L's equity is 1,000 − 1,200 = −200, the gap is
# 90 − 88 = 2 per unit and the deficit 200 = 100·2.
#   A: profit per unit 12, w = 1,200, equity 8,800, leverage 100·88/8,800 = 1,
#      cap 2·100/1,200 = 1/6 of its profit (its whole position pays 200).
#   D: profit per unit 4, w = 400, equity 4,400, leverage 2, cap 2·100/400 = 1/2.
# The queue (pnl_leverage) ranks A (0.12·1 = 0.12) before D (4/92·2 = 0.087).


def profit_setup(config):
    ex = Exchange(config, mark_price=100.0)
    liquidated, a, d, b = (ex.open_account(c) for c in (1_000.0, 7_600.0, 4_000.0, 100_000.0))
    ex.fill(liquidated, a, 100.0, 100.0)
    ex.fill(b, d, 100.0, 92.0)
    return ex, liquidated, a, d


def adl_rows(ex):
    rows = ex.events[ex.events["kind"] == "adl"]
    return [(int(r.account), pytest.approx(r.quantity), r.price) for r in rows.itertuples()]


def test_wealth_pro_rata_in_the_engine():
    ex, liquidated, a, d = profit_setup(BASE.replace(adl_allocation="wealth_pro_rata"))
    ex.update_mark(88.0)
    # h = 200 / (1,200 + 400) = 1/8 (below both caps): A gives up 150, D 50, closing
    # 150/2 = 75 and 50/2 = 25 at 90; 75 + 25 = 100, all of L's position.
    assert adl_rows(ex) == [(a, 75.0, 90.0), (d, 25.0, 90.0)]
    # Each loses its haircut against the mark: A 8,800 → 7,600 + 75·10 + 25·12 = 8,650,
    # D 4,400 → 4,000 + 25·2 + 75·4 = 4,350; L ends at 0.
    assert ex.equity(a) == pytest.approx(8_650.0)
    assert ex.equity(d) == pytest.approx(4_350.0)
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    # Profit closed 75·12 + 25·4 = 1,000, deficit covered 200, overshoot 800.
    row = analysis.adl_overshoot(ex.events).iloc[0]
    assert (row["profit_closed"], row["deficit_covered"], row["overshoot"]) == (
        pytest.approx(1_000.0), pytest.approx(200.0), pytest.approx(800.0))


def test_leverage_pro_rata_in_the_engine():
    ex, liquidated, a, d = profit_setup(BASE.replace(adl_allocation="leverage_pro_rata"))
    ex.update_mark(88.0)
    # h_i = λ·leverage_i: λ·(1·1,200 + 2·400) = 2,000λ = 200 → λ = 0.1: A gives up
    # 0.1·1,200 = 120 (closes 60), D 0.2·400 = 80 (closes 40).
    assert adl_rows(ex) == [(a, 60.0, 90.0), (d, 40.0, 90.0)]
    assert ex.equity(a) == pytest.approx(8_800.0 - 120.0)
    assert ex.equity(d) == pytest.approx(4_400.0 - 80.0)
    # Profit closed 60·12 + 40·4 = 880; overshoot 880 − 200 = 680.
    assert analysis.adl_overshoot(ex.events)["overshoot"].iloc[0] == pytest.approx(680.0)


def test_capped_pro_rata_in_the_engine_leaves_the_rest_to_the_fund_or_bad_debt():
    config = BASE.replace(adl_allocation="capped_pro_rata", adl_haircut_cap=0.05)
    ex, liquidated, a, d = profit_setup(config)
    ex.update_mark(88.0)
    # Pro rata would take 1/8 > 0.05: each winner gives up 5% of its profit, A 60
    # (closes 30 at 90), D 20 (closes 10 at 90) — 80 of the 200. The other 60 units
    # close at the mark 88, in proportion to what is left, A 70 and D 90:
    # A 60·70/160 = 26.25, D 60·90/160 = 33.75.
    assert adl_rows(ex) == [(a, 30.0, 90.0), (d, 10.0, 90.0), (a, 26.25, 88.0),
                            (d, 33.75, 88.0)]
    # L: 1,000 + 40·(90 − 100) + 60·(88 − 100) = −120; no fund, so 120 of bad debt.
    assert ex.collateral(liquidated) == pytest.approx(-120.0)
    assert ex.bad_debt == pytest.approx(120.0)
    row = analysis.adl_overshoot(ex.events).iloc[0]
    # Covered 80 of the deficit 200: −120 left to the liquidated side (the bad debt).
    assert (row["deficit_covered"], row["deficit"], row["to_liquidated"]) == (
        pytest.approx(80.0), pytest.approx(200.0), pytest.approx(-120.0))


def smart_setup(config):
    """As profit_setup, but D is short 100 at 89 with 2,000 USD: profit per unit 1 at 88,
    w = 100, less than its whole position would pay at the gap (100·2 = 200)."""
    ex = Exchange(config, mark_price=100.0)
    liquidated, a, d, b = (ex.open_account(c) for c in (1_000.0, 7_600.0, 2_000.0, 100_000.0))
    ex.fill(liquidated, a, 100.0, 100.0)
    ex.fill(b, d, 100.0, 89.0)
    return ex, liquidated, a, d


def test_the_smart_queue_in_the_engine_stops_at_each_winners_profit():
    # Ranked by leverage, D (8,800 / 2,100 = 4.2) comes before A (1). D gives up its whole
    # profit, 100, by closing 100/2 = 50 at 90; A gives up the other 100, closing 50.
    config = BASE.replace(adl_allocation="smart_queue", adl_rule="leverage")
    ex, liquidated, a, d = smart_setup(config)
    ex.update_mark(88.0)
    assert adl_rows(ex) == [(d, 50.0, 90.0), (a, 50.0, 90.0)]
    # D keeps its principal: 2,000 + 50·(89 − 90) = 1,950 and 50 short at 89 worth 50.
    assert ex.equity(d) == pytest.approx(2_000.0)
    assert ex.equity(a) == pytest.approx(8_800.0 - 100.0)
    # Profit closed 50·1 + 50·12 = 650, overshoot 650 − 200 = 450.
    assert analysis.adl_overshoot(ex.events)["overshoot"].iloc[0] == pytest.approx(450.0)


def test_the_venues_queue_on_the_same_case_takes_principal():
    # The queue over contracts closes all of D's 100 at 90: D pays 200 against the mark,
    # its profit of 100 and 100 of its principal (equity 2,000 + 100 → 1,900).
    config = BASE.replace(adl_allocation="queue", adl_rule="leverage")
    ex, liquidated, a, d = smart_setup(config)
    ex.update_mark(88.0)
    assert adl_rows(ex) == [(d, 100.0, 90.0)]
    assert ex.equity(d) == pytest.approx(1_900.0)
    # Profit closed 100·1 = 100 for 200 covered: an overshoot of −100.
    assert analysis.adl_overshoot(ex.events)["overshoot"].iloc[0] == pytest.approx(-100.0)


@pytest.mark.parametrize("allocation", adl.PROFIT_ALLOCATIONS)
def test_profit_space_at_the_mark_closes_the_same_quantities_and_leaves_the_deficit(
        allocation):
    # adl_price decides who bears the gap, the allocation whom is closed: at the mark
    # the wealth pro rata split (75, 25) is the same and L's 200 is bad debt.
    config = BASE.replace(adl_allocation=allocation, adl_price="mark")
    ex, liquidated, a, d = profit_setup(config)
    ex.update_mark(88.0)
    assert ex.position(liquidated) == 0.0
    assert ex.bad_debt == pytest.approx(200.0)
    if allocation == "wealth_pro_rata":
        assert adl_rows(ex) == [(a, 75.0, 88.0), (d, 25.0, 88.0)]


def test_profit_space_at_the_previous_mark_closes_the_same_quantities_at_that_price():
    # The policy sets the quantities, adl_price the price: wealth pro rata still closes
    # A 75 and D 25, now at the previous mark 100 (the mark before the update to 88).
    config = BASE.replace(adl_allocation="wealth_pro_rata", adl_price="previous_mark")
    ex, liquidated, a, d = profit_setup(config)
    ex.update_mark(88.0)
    assert adl_rows(ex) == [(a, 75.0, 100.0), (d, 25.0, 100.0)]
    # Each gives up 12 a unit against the mark instead of 2: its haircut × 12 / 2.
    # A: 8,800 − 75·12 = 7,900 (haircut 150 × 6 = 900); D: 4,400 − 25·12 = 4,100
    # (50 × 6 = 300). L, closed at 100 instead of its bankruptcy price 90, is left
    # 100·10 = 1,000, which goes to the fund (surplus_to): 900 + 300 = 200 of deficit
    # and 1,000 of surplus.
    assert ex.equity(a) == pytest.approx(7_900.0)
    assert ex.equity(d) == pytest.approx(4_100.0)
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.insurance_fund == pytest.approx(1_000.0)
    ex.check_invariants()


def test_the_venues_queue_on_the_profit_case_closes_the_first_winner_whole():
    # A ranks first (0.12 against D's 0.087) and its whole 100 closes at 90: profit
    # closed 100·12 = 1,200 for the 200 covered, an overshoot of 1,000 (wealth pro rata
    # closes 1,000 of profit on the same case, an overshoot of 800).
    ex, liquidated, a, d = profit_setup(BASE)
    ex.update_mark(88.0)
    assert adl_rows(ex) == [(a, 100.0, 90.0)]
    row = analysis.adl_overshoot(ex.events).iloc[0]
    assert (row["profit_closed"], row["overshoot"]) == (pytest.approx(1_200.0),
                                                        pytest.approx(1_000.0))


def test_leverage_pro_rata_needs_the_leverage():
    with pytest.raises(ValueError, match=r"^leverage is required"):
        profit_space_closes("leverage_pro_rata", QUANTITIES, PER_UNIT, ALL, 1.0, 1.0)

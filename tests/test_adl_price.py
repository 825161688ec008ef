"""Who pays the difference between the ADL price and the bankruptcy price, per
``adl_price``, on one hand-derived case.

The case (``queue_setup`` of test_waterfall): L is long 100 at 100 with 1,000 USD, so
its bankruptcy price is B = 100 − 1,000/100 = 90. Against it A is short 60 (1,200
USD) and C short 40 of its 90 (45,000 USD); B holds C's other 50 long. No book, so at
mark 88 nothing fills and ADL closes L's 100 against the shorts, A's 60 first (it
ranks first) and then 40 of C. At 88 L's equity is 1,000 + 100·(88 − 100) = −200: a
deficit of 200. Closing at a price P moves (P − 88) per unit from the winners to L
against the mark, and leaves L with 1,000 + 100·(P − 100) = 100·(P − 90): a surplus
if P > B, a residual deficit if P < B.
"""

from __future__ import annotations

import pytest

from perpabm import analysis
from tests.test_waterfall import BASE, queue_setup

pytestmark = pytest.mark.filterwarnings("error")


def total_money(ex) -> float:
    """Every account's equity at the mark plus the fund: conserved by every operation."""
    accounts = ex.accounts()
    return float(accounts["equity"].sum() + ex.insurance_fund)


def run_case(config, marks=(88.0,)):
    ex, liquidated, a, c, b = queue_setup(config)
    before = total_money(ex)
    for mark in marks:
        ex.update_mark(mark)
    assert total_money(ex) == pytest.approx(before)  # nothing made or lost
    ex.check_invariants()
    return ex, liquidated, a, c


def bad_debt_logged(ex) -> float:
    return float(-ex.events.loc[ex.events["kind"] == "bad_debt", "amount"].sum())


def test_at_the_bankruptcy_price_the_winners_pay_the_whole_deficit():
    ex, liquidated, a, c = run_case(BASE.replace(adl_price="bankruptcy", insurance_fund=150.0))
    # P = 90: the winners pay (90 − 88) = 2 per unit against the mark:
    # A 60·2 = 120, C 40·2 = 80, together L's deficit of 200. L ends at 100·(90 − 90) = 0.
    assert ex.collateral(a) == pytest.approx(1_200.0 + 60 * (100 - 90))  # 1,800
    assert ex.collateral(c) == pytest.approx(45_000.0 + 40 * (100 - 90))  # 45,400
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.insurance_fund == pytest.approx(150.0)  # untouched
    assert bad_debt_logged(ex) == 0.0


def test_at_the_mark_the_fund_pays_the_deficit_as_far_as_it_can_and_the_rest_is_bad_debt():
    ex, liquidated, a, c = run_case(BASE.replace(adl_price="mark", insurance_fund=150.0))
    # P = 88: the winners pay nothing against the mark; they realise their whole profit:
    # A 1,200 + 60·12 = 1,920, C 45,000 + 40·12 = 45,480. L is left at 100·(88 − 90) =
    # −200: the fund pays its 150 and the remaining 50 is bad debt, on L's flat account.
    assert ex.collateral(a) == pytest.approx(1_920.0)
    assert ex.collateral(c) == pytest.approx(45_480.0)
    assert ex.insurance_fund == pytest.approx(0.0, abs=1e-9)
    assert bad_debt_logged(ex) == pytest.approx(50.0)
    assert ex.bad_debt == pytest.approx(50.0)
    assert ex.collateral(liquidated) == pytest.approx(-50.0)


def test_at_the_mark_is_the_mark_whatever_the_fund_holds():
    # The same with an empty fund: still at 88 (A realises 720), and all 200 is bad debt.
    ex, liquidated, a, c = run_case(BASE.replace(adl_price="mark"))
    assert ex.collateral(a) == pytest.approx(1_920.0)
    assert bad_debt_logged(ex) == pytest.approx(200.0)


def test_at_the_previous_mark_the_winners_pay_the_surplus_to_the_liquidated_side():
    # Marks 95 then 88. At 95 L is not liquidated: equity 1,000 − 500 = 500 ≥ MM
    # 100·95·0.005 = 47.5. At 88 ADL closes at the previous mark, P = 95.
    config = BASE.replace(adl_price="previous_mark", surplus_to="account")
    ex, liquidated, a, c = run_case(config, marks=(95.0, 88.0))
    # The winners pay (95 − 88) = 7 per unit against the mark: A 60·7 = 420, C 40·7 = 280,
    # 700 in all; A ends 1,200 + 60·(100 − 95) = 1,500 and C 45,000 + 40·5 = 45,200.
    assert ex.collateral(a) == pytest.approx(1_500.0)
    assert ex.collateral(c) == pytest.approx(45_200.0)
    # L is left with 100·(95 − 90) = 500: its deficit of 200 covered and a surplus of
    # 500, which stays with the account (surplus_to = "account").
    assert ex.collateral(liquidated) == pytest.approx(500.0)
    assert ex.insurance_fund == 0.0
    adl = ex.events[ex.events["kind"] == "adl"]
    assert adl["price"].tolist() == [95.0, 95.0]


def test_at_the_previous_mark_a_surplus_goes_to_the_fund_where_the_venue_sends_it():
    config = BASE.replace(adl_price="previous_mark", surplus_to="insurance_fund")
    ex, liquidated, a, c = run_case(config, marks=(95.0, 88.0))
    # As above, but L's 500 goes to the fund once L is flat.
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.insurance_fund == pytest.approx(500.0)


def test_the_previous_mark_of_the_first_update_is_the_opening_mark():
    ex, liquidated, a, c = run_case(BASE.replace(adl_price="previous_mark",
                                                 surplus_to="account"))
    # The exchange opened at 100, so P = 100: the winners give back all 12 per unit of
    # their profit (A ends at its 1,200) and L keeps its 1,000.
    assert ex.collateral(a) == pytest.approx(1_200.0)
    assert ex.collateral(liquidated) == pytest.approx(1_000.0)


@pytest.mark.parametrize(("fund", "price", "fund_after"), [(1_000.0, 88.0, 800.0),
                                                           (150.0, 90.0, 150.0)])
def test_at_the_mark_while_the_fund_pays_the_whole_deficit_else_at_bankruptcy(
        fund, price, fund_after):
    # Fund 1,000 ≥ 200: at the mark, and the fund pays the 200. Fund 150 < 200: at 90.
    ex, liquidated, a, c = run_case(BASE.replace(adl_price="mark_while_fund_pays",
                                                 insurance_fund=fund))
    assert ex.events.loc[ex.events["kind"] == "adl", "price"].tolist() == [price, price]
    assert ex.insurance_fund == pytest.approx(fund_after)
    assert bad_debt_logged(ex) == 0.0


@pytest.mark.parametrize(("adl_price", "marks", "covered", "deficit", "to_liquidated"), [
    ("bankruptcy", (88.0,), 200.0, 200.0, 0.0),
    ("mark", (88.0,), 0.0, 200.0, -200.0),
    ("previous_mark", (95.0, 88.0), 700.0, 200.0, 500.0),
])
def test_the_overshoot_table_says_who_bore_the_difference(adl_price, marks, covered,
                                                         deficit, to_liquidated):
    ex, *_ = run_case(BASE.replace(adl_price=adl_price, surplus_to="account"), marks=marks)
    row = analysis.adl_overshoot(ex.events).iloc[0]
    # Profit closed at 88: (100 − 88)·100 = 1,200 whatever the price.
    assert row["profit_closed"] == pytest.approx(1_200.0)
    assert (row["deficit_covered"], row["deficit"], row["to_liquidated"]) == (
        pytest.approx(covered), pytest.approx(deficit), pytest.approx(to_liquidated))
    assert row["overshoot"] == pytest.approx(1_200.0 - covered)


def test_a_failed_update_leaves_the_previous_mark_as_it_was():
    # A ranking rule that fails once: the update to 88 is undone, and its retry still
    # closes at the previous mark 95 (not at 88, the mark of the failed attempt).
    calls = []

    def fails_once(size, entry_price, mark_price, collateral, mmr, rng):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("rule failed")
        return -entry_price

    config = BASE.replace(adl_price="previous_mark", surplus_to="account", adl_rule="once",
                          adl_rules={"once": fails_once})
    ex, liquidated, a, c, _ = queue_setup(config)
    ex.update_mark(95.0)
    with pytest.raises(RuntimeError, match="rule failed"):
        ex.update_mark(88.0)
    ex.update_mark(88.0)
    assert ex.events.loc[ex.events["kind"] == "adl", "price"].tolist() == [95.0, 95.0]


def test_winners_closed_at_a_better_price_than_the_mark_covered_no_deficit():
    # adl_trigger "unfilled" at mark 90.4: L still has equity 1,000 − 960 = 40 and is
    # closed at its bankruptcy price 90, below the mark, so the shorts buy back cheaper
    # than the mark and gain 0.4 per unit: 100·(90 − 90.4) = −40 paid through the price
    # (L's 40 of equity went to them), not a deficit of 40 covered.
    ex, *_ = run_case(BASE, marks=(90.4,))
    row = analysis.adl_overshoot(ex.events).iloc[0]
    assert row["deficit_covered"] == pytest.approx(-40.0)
    assert row["deficit"] == pytest.approx(-40.0)  # a negative deficit: equity left
    assert row["to_liquidated"] == pytest.approx(0.0, abs=1e-9)
    assert row["overshoot"] == pytest.approx(100 * (100 - 90.4) + 40.0)

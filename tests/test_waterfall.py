"""The liquidation waterfall, stage by stage, on hand-derived examples.

Common setup unless a test says otherwise: mark 100, no trading fees, one tier
with mmr 0.5%. The liquidated account L has 1,000 USD and is long 100 at 100
(10x), so its bankruptcy price is 100 − 1,000/100 = 90 and its liquidation
price is (1,000 − 100·100)/(100·0.005 − 100) = 90.452. At mark 90.4 its equity
is 1,000 + 100·(90.4 − 100) = 40 and its maintenance margin 100·90.4·0.005 = 45.2.
"""

from __future__ import annotations

import pytest

from perpabm import Exchange, ExchangeConfig

BASE = ExchangeConfig(
    max_leverage=50.0,
    mm_tiers=((0.0, 0.005),),
    taker_fee=0.0,
    maker_fee=0.0,
    liquidation_fee=0.0,
    waterfall=("book", "insurance_fund", "adl"),
    surplus_to="insurance_fund",
    debug=True,
)


def long_vs_short(config: ExchangeConfig, short_collateral: float = 20_000.0):
    """Exchange with maker M (1M USD), L long 100 at 100 (1,000 USD), S short against it."""
    ex = Exchange(config, mark_price=100.0)
    maker = ex.open_account(1_000_000.0)
    liquidated = ex.open_account(1_000.0)
    short = ex.open_account(short_collateral)
    ex.fill(liquidated, short, 100.0, 100.0)
    return ex, maker, liquidated, short


def kinds(events) -> list[str]:
    return [e.kind for e in events]


# ---------------------------------------------------------------- trigger


def test_no_liquidation_while_equity_covers_maintenance_margin():
    ex, _, liquidated, _ = long_vs_short(BASE)
    # At 90.5 equity is 1,000 − 950 = 50 ≥ MM 100·90.5·0.005 = 45.25.
    assert ex.update_mark(90.5) == []
    assert ex.position(liquidated) == 100.0


def test_liquidation_uses_the_mark_not_the_last_trade():
    ex, maker, liquidated, short = long_vs_short(BASE)
    other = ex.open_account(10_000.0)
    ex.place_limit(maker, 1.0, 80.0)
    ex.market_order(other, -1.0)  # a trade at 80 does not move the mark
    assert ex.last_price == 80.0
    assert ex.liquidatable().tolist() == []
    ex.update_mark(90.4)
    assert ex.position(liquidated) == 0.0


# ---------------------------------------------------------------- book stage


def test_book_fill_above_bankruptcy_price_sends_fee_and_surplus_to_the_fund():
    config = BASE.replace(liquidation_fee=0.01)
    ex, maker, liquidated, _ = long_vs_short(config)
    ex.place_limit(maker, 100.0, 91.0)
    events = ex.update_mark(90.4)
    # Sold 100 at 91: realised 100·(91 − 100) = −900, collateral 100.
    # Fee 1%·100·91 = 91 (≤ equity 100); the remaining 9 is surplus to the fund.
    assert kinds(events) == ["liquidation", "liquidation_fee", "insurance_fund"]
    assert events[0].price == 91.0 and events[0].quantity == -100.0
    assert events[0].bankruptcy_price == pytest.approx(90.0)
    assert events[1].amount == pytest.approx(91.0)
    assert events[2].amount == pytest.approx(9.0)
    assert ex.insurance_fund == pytest.approx(100.0)
    assert ex.position(liquidated) == 0.0 and ex.collateral(liquidated) == 0.0
    assert ex.position(maker) == 100.0


def test_liquidation_fee_never_takes_equity_below_zero():
    config = BASE.replace(liquidation_fee=0.01)
    ex, maker, liquidated, _ = long_vs_short(config)
    ex.place_limit(maker, 100.0, 90.2)
    ex.update_mark(90.4)
    # Sold at 90.2: collateral 1,000 − 980 = 20; the fee 1%·9,020 = 90.2 is capped at 20.
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.insurance_fund == pytest.approx(20.0)


def test_surplus_stays_with_the_account_when_the_venue_says_so():
    config = BASE.replace(surplus_to="account")
    ex, maker, liquidated, _ = long_vs_short(config)
    ex.place_limit(maker, 100.0, 91.0)
    ex.update_mark(90.4)
    # Realised −900: the account keeps 1,000 − 900 = 100.
    assert ex.collateral(liquidated) == pytest.approx(100.0)
    assert ex.insurance_fund == 0.0


def test_book_stage_never_fills_worse_than_the_bankruptcy_price():
    ex, maker, liquidated, short = long_vs_short(BASE)  # fund 0, so no fund stage help
    ex.place_limit(maker, 40.0, 90.2)
    ex.place_limit(maker, 60.0, 89.0)
    events = ex.update_mark(90.4)
    liquidations = [e for e in events if e.kind == "liquidation"]
    assert [(e.quantity, e.price) for e in liquidations] == [(-40.0, 90.2)]
    assert all(e.price >= e.bankruptcy_price for e in liquidations)


def test_sliced_liquidation_stops_once_margin_is_restored():
    # Positions above 5,000 USD notional go in 20% slices; partial: stop when MM is met.
    config = BASE.replace(partial_liquidation=True, liquidation_slice_fraction=0.2,
                          liquidation_slice_min_notional=5_000.0)
    ex, maker, liquidated, _ = long_vs_short(config)
    ex.place_limit(maker, 100.0, 90.45)
    ex.update_mark(90.4)
    # One slice of 20 at 90.45: collateral 1,000 + 20·(90.45 − 100) = 809; 80 left.
    # Equity 809 + 80·(90.4 − 100) = 41 ≥ MM 80·90.4·0.005 = 36.16: stop.
    assert ex.position(liquidated) == pytest.approx(80.0)
    assert ex.collateral(liquidated) == pytest.approx(809.0)
    assert ex.liquidatable().tolist() == []


def test_a_short_is_liquidated_by_buying_no_higher_than_its_bankruptcy_price():
    # Mirror of the long: S short 100 at 100 with 1,000 USD, bankruptcy price 110.
    ex = Exchange(BASE.replace(liquidation_fee=0.01), mark_price=100.0)
    maker = ex.open_account(1_000_000.0)
    short = ex.open_account(1_000.0)
    long_ = ex.open_account(20_000.0)
    ex.fill(long_, short, 100.0, 100.0)
    ex.place_limit(maker, -100.0, 109.0)
    ex.place_limit(maker, -50.0, 110.5)
    events = ex.update_mark(109.6)
    # Equity 1,000 − 960 = 40 < MM 100·109.6·0.005 = 54.8. Bought 100 at 109 (≤ 110):
    # realised −900, collateral 100; fee 1%·10,900 = 109 capped at 100; fund +100.
    assert kinds(events) == ["liquidation", "liquidation_fee"]
    assert events[0].quantity == 100.0 and events[0].price == 109.0
    assert ex.insurance_fund == pytest.approx(100.0)
    assert ex.position(maker) == -100.0


# ---------------------------------------------------------------- backstop stage


HL_LIKE = BASE.replace(waterfall=("book", "backstop", "adl"), backstop_trigger=2 / 3,
                       adl_trigger="negative_equity", surplus_to="account")


def with_vault(config: ExchangeConfig, capacity: float):
    """long_vs_short plus a vault V (100k USD) that takes over up to `capacity` units in all."""
    ex, maker, liquidated, short = long_vs_short(config)
    vault = ex.open_account(100_000.0)
    ex.register_backstop(
        vault, lambda offer: min(abs(offer.size), max(capacity - abs(ex.position(vault)), 0.0))
    )
    return ex, vault, liquidated, short


def test_backstop_waits_until_equity_falls_below_its_trigger():
    ex, vault, liquidated, _ = with_vault(HL_LIKE, capacity=1_000.0)
    # Mark 90.4: equity 40 ≥ 2/3·45.2 = 30.13, and equity ≥ 0 so ADL waits too.
    assert ex.update_mark(90.4) == []
    assert ex.position(liquidated) == 100.0


def test_backstop_takes_the_position_and_its_margin_at_the_bankruptcy_price():
    ex, vault, liquidated, _ = with_vault(HL_LIKE, capacity=1_000.0)
    events = ex.update_mark(90.2)
    # Equity 1,000 − 980 = 20 < 2/3·(100·90.2·0.005 = 45.1) = 30.07: the vault takes
    # all 100 at 90; at mark 90.2 that is worth 100·0.2 = 20 — the margin it keeps.
    assert kinds(events) == ["backstop"]
    assert events[0].price == pytest.approx(90.0) and events[0].quantity == -100.0
    assert ex.position(vault) == 100.0
    assert ex.equity(vault) == pytest.approx(100_020.0)
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)


def test_what_the_backstop_refuses_goes_to_adl_once_equity_is_negative():
    ex, vault, liquidated, short = with_vault(HL_LIKE, capacity=60.0)
    ex.update_mark(90.2)
    # The vault took 60 at 90; the other 40 have equity 40·(90.2 − 90) = 8 ≥ 0: waiting.
    assert ex.position(vault) == 60.0 and ex.position(liquidated) == pytest.approx(40.0)
    events = ex.update_mark(89.5)
    # Equity 40·(89.5 − 90) = −20 < 0; the vault is full, so the short S is ADL'd
    # for 40 at 90, paying the deficit: 40·(90 − 89.5) = 20 below the mark.
    adl = [e for e in events if e.kind == "adl"]
    assert [(e.account, e.quantity, e.price) for e in adl] == [(short, 40.0, pytest.approx(90.0))]
    assert ex.position(liquidated) == 0.0
    assert ex.position(short) == pytest.approx(-60.0)


# ---------------------------------------------------------------- insurance fund stage


def test_fund_closes_past_the_bankruptcy_price_and_pays_the_gap():
    config = BASE.replace(insurance_fund=1_000.0, liquidation_fee=0.01)
    ex, maker, liquidated, _ = long_vs_short(config)
    ex.place_limit(maker, 40.0, 90.2)
    ex.place_limit(maker, 60.0, 89.0)
    events = ex.update_mark(90.4)
    # Book: 40 at 90.2, collateral 1,000 + 40·(90.2 − 100) = 608; fee 1%·3,608 = 36.08
    # capped at equity 608 + 60·(90.4 − 100) = 32 → collateral 576, bankruptcy
    # 100 − 576/60 = 90.4. Fund: 60 at 89 costs (90.4 − 89)·60 = 84.
    assert kinds(events) == ["liquidation", "liquidation_fee", "insurance_fund"]
    assert events[1].amount == pytest.approx(32.0)
    assert events[2].price == 89.0 and events[2].amount == pytest.approx(-84.0)
    assert ex.insurance_fund == pytest.approx(1_000.0 + 32.0 - 84.0)
    assert ex.position(liquidated) == 0.0
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)


def test_fund_walk_stops_at_what_the_fund_can_pay():
    config = BASE.replace(insurance_fund=42.0)
    ex, maker, liquidated, short = long_vs_short(config)
    ex.place_limit(maker, 100.0, 89.0)
    ex.update_mark(88.5)
    # Bankruptcy 90; each unit at 89 costs the fund 1: 42 units, then ADL takes 58.
    assert ex.position(maker) == pytest.approx(42.0)
    assert ex.insurance_fund == pytest.approx(0.0, abs=1e-9)
    assert ex.position(short) == pytest.approx(-42.0)
    assert ex.position(liquidated) == 0.0


def test_fund_does_not_walk_beyond_its_slippage_band():
    config = BASE.replace(insurance_fund=10_000.0, fund_max_slippage=0.01)
    ex, maker, liquidated, short = long_vs_short(config)
    ex.place_limit(maker, 100.0, 89.0)
    ex.update_mark(90.4)
    # 89 is 1.55% below the mark 90.4, outside the 1% band: ADL closes all 100.
    assert ex.position(maker) == 0.0
    assert ex.position(short) == 0.0


def test_fund_drawdown_trigger_hands_over_to_adl_early():
    config = BASE.replace(insurance_fund=100.0, fund_drawdown_trigger=0.3)
    ex, maker, liquidated, short = long_vs_short(config)
    second = ex.open_account(1_000.0)
    ex.fill(second, short, 100.0, 100.0)
    ex.place_limit(maker, 200.0, 89.6)
    ex.update_mark(89.5)
    # Both longs are bankrupt at 90 and the bid 89.6 is past it by 0.4. The first
    # (account L) costs the fund 0.4·100 = 40: balance 60, 40% below its peak 100 ≥ 30%,
    # so the fund stops and the second long is ADL'd against S instead.
    assert ex.insurance_fund == pytest.approx(60.0)
    assert ex.position(maker) == pytest.approx(100.0)
    assert ex.position(second) == 0.0
    assert ex.position(short) == pytest.approx(-100.0)


def test_fund_drawdown_window_is_in_minutes_whatever_the_time_unit():
    # A window of 60 minutes on an exchange whose time unit is 30 minutes: 2 units.
    config = BASE.replace(insurance_fund=100.0, fund_drawdown_trigger=0.3,
                          fund_drawdown_window=60.0)
    ex = Exchange(config, mark_price=100.0, time_unit_minutes=30.0)
    ex.fund.pay(40.0, time=1.0)  # balance 60 at unit 1, 40% below the peak of 100 at unit 0
    assert ex.fund.triggered(1.0)
    # At unit 3 (90 minutes after the peak) the peak has left the 60-minute window; the
    # highest balance within it is 60, so there is no drawdown.
    assert not ex.fund.triggered(3.0)


# ---------------------------------------------------------------- ADL stage


def queue_setup(config: ExchangeConfig):
    """L long 100 (1,000 USD) against A short 60 (1,200 USD, 5x) and C short 40 of 90
    (45,000 USD, 0.2x); B long 50 (100,000 USD) holds C's other 50."""
    ex = Exchange(config, mark_price=100.0)
    liquidated = ex.open_account(1_000.0)
    a = ex.open_account(1_200.0)
    c = ex.open_account(45_000.0)
    b = ex.open_account(100_000.0)
    ex.fill(liquidated, a, 60.0, 100.0)
    ex.fill(liquidated, c, 40.0, 100.0)
    ex.fill(b, c, 50.0, 100.0)
    return ex, liquidated, a, c, b


def test_adl_queue_closes_highest_score_first_at_the_bankruptcy_price():
    ex, liquidated, a, c, b = queue_setup(BASE)
    events = ex.update_mark(88.0)
    # Gap to 88: L's equity is 1,000 − 1,200 = −200. pnl_leverage scores at 88:
    # A: PnL% 0.12 × leverage 60·88/(1,200 + 720) = 2.75 → 0.33;
    # C: 0.12 × 90·88/(45,000 + 1,080) = 0.1719 → 0.0206. A first (all 60), then 40 of C.
    adl = [e for e in events if e.kind == "adl"]
    assert [(e.account, e.quantity, e.rank) for e in adl] == [(a, 60.0, 1), (c, 40.0, 2)]
    assert adl[0].score == pytest.approx(0.12 * 2.75)
    assert all(e.price == pytest.approx(90.0) for e in adl)
    # Winners pay the deficit: closing at 90 instead of the mark 88 costs
    # A 60·2 = 120 and C 40·2 = 80, in all the 200 that L was short of.
    assert ex.equity(a) == pytest.approx(1_200.0 + 60 * (100 - 90))
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.position(c) == pytest.approx(-50.0)
    assert ex.position(b) == 50.0


def test_adl_pro_rata_closes_in_proportion_to_size():
    ex, liquidated, a, c, _ = queue_setup(BASE.replace(adl_allocation="pro_rata"))
    ex.update_mark(88.0)
    # 100 to close over shorts of 60 and 90: A closes 100·60/150 = 40, C 100·90/150 = 60.
    assert ex.position(a) == pytest.approx(-20.0)
    assert ex.position(c) == pytest.approx(-30.0)


def test_adl_round_logs_the_top_winner_with_the_profit_it_keeps():
    ex, liquidated, a, c, _ = queue_setup(BASE)
    events = ex.update_mark(88.0)
    # At 88 A's profit is 60·12 = 720 and C's 90·12 = 1,080: C is the top winner.
    # The queue closes 40 of C (A first), so C keeps 50·12 = 600 at the mark.
    (top,) = [e for e in events if e.kind == "adl_top_winner"]
    assert (top.account, top.counterparty, top.quantity) == (c, liquidated, 0.0)
    assert top.amount == pytest.approx(600.0)


def test_pro_rata_leaves_the_top_winner_its_untouched_share():
    ex, liquidated, a, c, _ = queue_setup(BASE.replace(adl_allocation="pro_rata"))
    events = ex.update_mark(88.0)
    # C (top winner, 1,080 of profit at 88) is closed 60 of 90 and keeps 30·12 = 360.
    (top,) = [e for e in events if e.kind == "adl_top_winner"]
    assert top.account == c and top.amount == pytest.approx(360.0)


def test_adl_at_the_mark_while_the_fund_pays_the_gap():
    config = BASE.replace(adl_price="mark", insurance_fund=1_000.0)
    ex, liquidated, a, c, _ = queue_setup(config)
    ex.update_mark(88.0)
    # The fund can pay L's deficit of 200, so A is closed at the mark 88:
    # A realises 60·(100 − 88) = 720.
    assert ex.collateral(a) == pytest.approx(1_200.0 + 720.0)
    assert ex.insurance_fund == pytest.approx(800.0)


def test_adl_at_the_mark_while_the_fund_pays_falls_back_when_it_cannot():
    config = BASE.replace(adl_price="mark_while_fund_pays", insurance_fund=100.0)
    ex, liquidated, a, c, _ = queue_setup(config)
    ex.update_mark(88.0)
    # Fund 100 < deficit 200: A is closed at 90, realising 60·(100 − 90) = 600.
    assert ex.collateral(a) == pytest.approx(1_800.0)
    assert ex.insurance_fund == 100.0


def test_adl_exempt_accounts_are_deleveraged_last():
    ex = Exchange(BASE, mark_price=100.0)
    liquidated = ex.open_account(1_000.0)
    vault = ex.open_account(1_200.0, adl_exempt=True)
    c = ex.open_account(45_000.0)
    ex.fill(liquidated, vault, 60.0, 100.0)
    ex.fill(liquidated, c, 40.0, 100.0)
    ex.update_mark(88.0)
    # The vault would rank first (score 0.33 vs 0.0206) but is exempt: C's 40 go first,
    # then the vault covers the remaining 60 as the last resort.
    adl = ex.events[ex.events["kind"] == "adl"]
    assert adl["account"].tolist() == [c, vault]


def test_socialized_loss_spreads_the_deficit_over_every_other_open_unit():
    config = BASE.replace(adl_allocation="socialized_loss", adl_price="mark")
    ex, liquidated, a, c, b = queue_setup(config)
    ex.update_mark(88.0)
    # L's 100 close pro rata at the mark: A 40, C 60. L is left with 1,000 − 1,200 = −200.
    # The other open units at the bankruptcy: A 60 + C 90 + B 50 = 200, so δ = 200/200 = 1
    # per unit: A pays 60, C 90, B 50, and L ends at 0.
    social = ex.events[ex.events["kind"] == "socialized_loss"].set_index("account")["amount"]
    assert social.to_dict() == {a: pytest.approx(-60.0), c: pytest.approx(-90.0),
                                b: pytest.approx(-50.0)}
    assert ex.collateral(liquidated) == pytest.approx(0.0, abs=1e-9)
    assert ex.collateral(b) == pytest.approx(100_000.0 - 50.0)


def test_adl_trigger_unfilled_closes_the_rest_even_with_positive_equity():
    ex, liquidated, a, c, _ = queue_setup(BASE)
    ex.update_mark(90.4)
    # No book, no fund: L (equity 40) is closed at its bankruptcy price 90 against A.
    assert ex.position(liquidated) == 0.0
    assert ex.collateral(a) == pytest.approx(1_200.0 + 60 * (100 - 90))


def thin_winner_setup(with_other_long: bool):
    """L long 100 (1,000 USD) against D short 10 and X short 90 (100,000 USD), all at 100.

    D's collateral is then drained from 20 to −110, moved to X — a loss booked
    elsewhere, as a deferred liquidation can leave. With `with_other_long`, B
    (100,000 USD) is long 10 more against X.
    """
    ex = Exchange(BASE, mark_price=100.0)
    liquidated, d, x = (ex.open_account(c) for c in (1_000.0, 20.0, 100_000.0))
    ex.fill(liquidated, d, 10.0, 100.0)
    ex.fill(liquidated, x, 90.0, 100.0)
    b = None
    if with_other_long:
        b = ex.open_account(100_000.0)
        ex.fill(b, x, 10.0, 100.0)
    ex.ledger.credit(d, -130.0)
    ex.ledger.credit(x, 130.0)
    return ex, liquidated, d, x, b


def test_adl_closes_a_winner_only_as_far_as_its_equity_pays_first():
    ex, liquidated, d, x, b = thin_winner_setup(with_other_long=True)
    events = ex.update_mark(85.0)
    # L: equity 1,000 − 1,500 = −500, bankrupt at 90; no book, no fund. Queue at 85:
    # D 0.15 × 850/(−110 + 150) = 3.19 before X 0.15 × 7,650/101,480 = 0.011.
    # Closing at 90 costs D 5 per unit against the mark and D's equity is 40, so D
    # gives 40/5 = 8 and X the other 92 — D is not made bankrupt.
    adl = [e for e in events if e.kind == "adl"]
    first = [(e.account, e.quantity) for e in adl if e.counterparty == liquidated]
    assert first == [(d, pytest.approx(8.0)), (x, pytest.approx(92.0))]
    # D is left short 2 with equity 0: below maintenance margin, so it is liquidated
    # in turn at its bankruptcy price 100 − 30/2 = 85 against the long B.
    second = [(e.account, e.quantity, e.price) for e in adl if e.counterparty == d]
    assert second == [(b, pytest.approx(-2.0), pytest.approx(85.0))]
    assert (ex.accounts()["equity"] >= -1e-9).all()
    assert "bad_debt" not in set(ex.events["kind"])


def test_a_deficit_no_stage_can_cover_is_logged_as_bad_debt():
    ex, liquidated, d, x, _ = thin_winner_setup(with_other_long=False)
    events = ex.update_mark(85.0)
    # Solvent capacity is D 8 + X 90 = 98 < 100, so D's last 2 are closed beyond its
    # equity: D ends flat at −110 + 10·(100 − 90) = −10. The fund is empty and this
    # preset does not socialise losses: 10 USD of bad debt, on D.
    adl = [(e.account, e.quantity) for e in events if e.kind == "adl"]
    assert adl == [(d, pytest.approx(10.0)), (x, pytest.approx(90.0))]
    bad = [(e.account, e.amount) for e in events if e.kind == "bad_debt"]
    assert bad == [(d, pytest.approx(-10.0))]
    assert ex.collateral(d) == pytest.approx(-10.0)
    assert ex.conservation_error() == pytest.approx(0.0, abs=1e-9)


def test_a_funding_round_that_leaves_an_account_below_maintenance_runs_the_waterfall():
    # L long 100 at mark 100: MM = 100 · 100 · 0.005 = 50 USD. At a rate of 0.096 L pays
    # 0.096 · 100 · 100 = 960 of its 1,000, leaving equity 40 < 50: liquidated at once.
    # Its bankruptcy price is 100 − 40/100 = 99.6, above M's bid of 100 at 99.5, so the
    # fund sells there and pays the gap, 100 · (99.6 − 99.5) = 10 USD.
    ex, maker, liquidated, short = long_vs_short(BASE.replace(insurance_fund=100.0))
    ex.place_limit(maker, 100.0, 99.5)
    paid = ex.apply_funding(0.096)
    assert paid == pytest.approx(960.0)
    assert ex.position(liquidated) == 0.0
    fund = ex.events[ex.events["kind"] == "insurance_fund"].iloc[0]
    assert (fund["quantity"], fund["price"]) == (-100.0, 99.5)
    assert fund["amount"] == pytest.approx(-10.0)
    assert ex.insurance_fund == pytest.approx(90.0)
    assert ex.conservation_error() == pytest.approx(0.0, abs=1e-9)

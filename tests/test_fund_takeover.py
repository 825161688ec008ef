"""The insurance fund that takes positions over (``fund_takeover``, Binance FAQ 360033525371):
a bankrupt position moves at its bankruptcy price into the fund's own margin account, up to
``fund_max_position`` × the fund's balance of net notional; the rest goes to ADL; the fund
offloads what it holds through the book; its drawdown trigger stops takeovers.

Every case: Binance's rules (maintenance margin 0.4% below 50,000 USD of notional), an empty
book unless a maker is placed, mark 100 at the start. A long of 10 at 100 with 100 USD of
collateral is bankrupt at B = 100 − 100 / 10 = 90.
"""

from __future__ import annotations

import math

import pytest

from perpabm import Exchange, ExchangeConfig, PerpMarketModel, load_scenario, presets

MARK0 = 100.0


def exchange(fund: float, **changes) -> Exchange:
    config = ExchangeConfig.preset("binance").replace(insurance_fund=fund, fund_takeover=True,
                                                      debug=True, **changes)
    return Exchange(config, mark_price=MARK0, rng=0)


def long_against_short(ex: Exchange, collateral: float = 100.0, quantity: float = 10.0
                       ) -> tuple[int, int]:
    """A long of `quantity` at 100 with `collateral`, against a short with 10,000 USD."""
    long_, short = ex.open_account(collateral), ex.open_account(10_000.0)
    ex.fill(long_, short, quantity, MARK0)
    return long_, short


def test_binance_alone_of_the_presets_holds_a_fund_account():
    # FAQ 360033525371: "the Futures Insurance Funds will take over Bankrupt Positions".
    for name in presets.names():
        config = ExchangeConfig.preset(name)
        assert config.fund_takeover is (name == "binance")
        holds = Exchange(config, mark_price=MARK0).insurance_fund_account is not None
        assert holds is (name == "binance")


def test_the_fund_takes_a_bankrupt_position_over_at_its_bankruptcy_price():
    """Fund 10,000; the long (B = 90) at a mark of 85 has equity 100 − 150 = −50, and no
    bid. Room: 1.0 × 10,000 / 85 = 117.6 units; the fund takes all 10 at 90, into its
    account (account 0): collateral 10,000, long 10 at 90, equity at 85
    10,000 + 10·(85 − 90) = 9,950: it has paid the deficit of 50 in mark-to-market. The
    long is left flat with 100 + 10·(90 − 100) = 0. Money: 10,000 + 100 + 10,000 = 20,100
    in; collateral 10,000 + 0 + 10,000, unrealised −50 (fund) + 150 (short) = 20,100."""
    ex = exchange(10_000.0)
    fund = ex.insurance_fund_account
    long_, short = long_against_short(ex)
    assert fund == 0 and ex.collateral(fund) == 10_000.0 and ex.money_in == 20_100.0
    events = ex.update_mark(85.0)
    [row] = events
    assert (row.kind, row.account, row.counterparty, row.quantity, row.price) == (
        "fund_takeover", long_, fund, -10.0, 90.0)
    assert row.amount == -50.0  # 10 · (85 − 90): the deficit the fund took on
    assert ex.position(fund) == 10.0 and ex.entry_price(fund) == 90.0
    assert ex.collateral(fund) == 10_000.0 and ex.insurance_fund == 9_950.0
    assert ex.position(long_) == 0.0 and ex.collateral(long_) == 0.0
    assert ex.equity(short) == 10_150.0
    assert not [e for e in ex.event_log if e.kind == "adl"]
    assert ex.conservation_error() == 0.0
    ex.check_invariants()


def test_a_solvent_account_s_margin_goes_to_the_fund_with_the_position():
    """The long with 300 USD (B = 70) at a mark of 70.2 is below maintenance (equity
    300 − 298 = 2 < 0.004 · 702 = 2.808): the fund takes it at 70 and gains its equity,
    10 · (70.2 − 70) = 2 USD at the mark."""
    ex = exchange(10_000.0)
    long_, _ = long_against_short(ex, collateral=300.0)
    [row] = ex.update_mark(70.2)
    assert (row.kind, row.price) == ("fund_takeover", 70.0)
    assert row.amount == pytest.approx(2.0)
    assert ex.insurance_fund == pytest.approx(10_002.0)
    ex.check_invariants()


def test_beyond_the_maximum_net_notional_the_rest_goes_to_adl():
    """Fund 500: room 1.0 × 500 / 85 = 5.882352941176471 units (the loss it can pay for,
    500 / (5 + 0.004 · 85) = 93.6 units, is larger). The fund takes 5.8824 at 90, the
    other 10 − 5.8824 = 4.1176 is ADL'd against the short at 90. Fund:
    500 + 5.8824 · (85 − 90) = 470.59."""
    ex = exchange(500.0)
    fund = ex.insurance_fund_account
    long_, short = long_against_short(ex)
    events = ex.update_mark(85.0)
    taken = 500.0 / 85.0
    assert [e.kind for e in events] == ["fund_takeover", "adl", "adl_top_winner"]
    assert events[0].quantity == pytest.approx(-taken)
    assert events[1].account == short and events[1].price == 90.0
    assert events[1].quantity == pytest.approx(10.0 - taken)
    assert ex.position(fund) == pytest.approx(taken)
    assert ex.insurance_fund == pytest.approx(500.0 - 5.0 * taken)  # 470.588...
    assert ex.position(long_) == 0.0
    ex.check_invariants()


def test_a_smaller_maximum_takes_a_smaller_share():
    """fund_max_position 0.5: room 0.5 × 10,000 / 85 = 58.8 units, still above the 10."""
    ex = exchange(10_000.0, fund_max_position=0.5)
    long_against_short(ex)
    assert [e.kind for e in ex.update_mark(85.0)] == ["fund_takeover"]
    ex = exchange(170.0, fund_max_position=0.5)  # room 0.5 · 170 / 85 = 1 unit
    long_against_short(ex)
    events = ex.update_mark(85.0)
    assert events[0].kind == "fund_takeover" and events[0].quantity == pytest.approx(-1.0)
    assert sum(e.quantity for e in events if e.kind == "adl") == pytest.approx(9.0)


def fund_long_ten_into_a_bid(unwind_rate: float):
    """An exchange whose fund (10,000 USD) has taken over a long of 10 at 90 (mark 85),
    with a maker bidding 100 at 84.9; returns (exchange, the fund's account, the maker)."""
    ex = exchange(10_000.0, fund_unwind_rate=unwind_rate)
    long_against_short(ex)
    ex.update_mark(85.0)
    maker = ex.open_account(100_000.0)
    ex.place_limit(maker, 100.0, 84.9)
    return ex, ex.insurance_fund_account, maker


def test_the_fund_unwinds_through_the_book_step_by_step():
    """fund_unwind_rate 0.1 a minute, one-minute units: the fund (long 10 at 90, mark 85)
    sells 1 − 0.9 = 10% of what it holds per call into a bid of 100 at 84.9 (within
    0.5% of the mark: 85 · 0.995 = 84.575): 1.0, then 0.9 of the 9 left, leaving 8.1.
    Each fill costs (85 − 84.9) per unit against the mark: the fund's balance goes
    9,950 → 9,949.9 → 9,949.81. A bid at 84 is beyond the limit and never hit."""
    ex, fund, maker = fund_long_ten_into_a_bid(unwind_rate=0.1)
    far = ex.open_account(100_000.0)
    ex.place_limit(far, 100.0, 84.0)
    [first] = ex.unwind_insurance_fund()
    assert (first.kind, first.account, first.counterparty) == ("fund_unwind", fund, maker)
    assert (first.quantity, first.price) == (pytest.approx(-1.0), 84.9)
    assert first.amount == pytest.approx(-0.1)
    assert ex.position(fund) == pytest.approx(9.0)
    assert ex.insurance_fund == pytest.approx(9_949.9)
    [second] = ex.unwind_insurance_fund()
    assert second.quantity == pytest.approx(-0.9)
    assert ex.position(fund) == pytest.approx(8.1)
    assert ex.insurance_fund == pytest.approx(9_949.81)
    assert ex.position(far) == 0.0
    ex.check_invariants()


def test_the_unwind_rate_is_per_minute():
    """Five-minute units at 0.1 a minute: one call sells 1 − 0.9⁵ = 40.951% of the 10."""
    config = ExchangeConfig.preset("binance").replace(
        insurance_fund=10_000.0, fund_takeover=True, fund_unwind_rate=0.1, debug=True)
    ex = Exchange(config, mark_price=MARK0, rng=0, time_unit_minutes=5.0)
    long_against_short(ex)
    ex.update_mark(85.0)
    ex.place_limit(ex.open_account(100_000.0), 100.0, 84.9)
    ex.unwind_insurance_fund()
    assert ex.insurance_fund_position == pytest.approx(10.0 * 0.9**5)


def test_the_drawdown_trigger_stops_takeovers():
    """Fund 1,000, trigger 30%. The first long (B = 90) is taken over at a mark of 85
    (fund 1,000 − 50 = 950). A second long of 1 at 100 with 30 USD (B = 70) is
    liquidated at a mark of 59, where the fund, long 10 at 90, is worth
    1,000 + 10·(59 − 90) = 690: 31% below its peak of 1,000 ≥ 30%, so it takes nothing
    and the second long is ADL'd against the short at its bankruptcy price 70. Without
    the trigger the fund takes it over (room 690 / 59 − 10 = 1.69 units ≥ 1)."""
    results = {}
    for trigger in (0.3, None):
        ex = exchange(1_000.0, fund_drawdown_trigger=trigger)
        fund = ex.insurance_fund_account
        _, short = long_against_short(ex)
        ex.update_mark(85.0)
        assert ex.insurance_fund == 950.0
        second = ex.open_account(30.0)
        ex.fill(second, short, 1.0, MARK0)
        events = ex.update_mark(59.0)
        assert ex.insurance_fund_position >= 10.0
        results[trigger] = [(e.kind, e.account, e.price) for e in events]
        ex.check_invariants()
    assert results[0.3] == [("adl", short, 70.0), ("adl_top_winner", short, 59.0)]
    assert results[None] == [("fund_takeover", second, 70.0)]
    assert ex.position(fund) == pytest.approx(11.0)


def test_the_fund_s_account_is_the_venue_s():
    """No one trades, deposits into or withdraws from the fund's account; it reads as any."""
    ex = exchange(1_000.0)
    other = ex.open_account(1_000.0)
    for call in (lambda: ex.withdraw(0, 1.0), lambda: ex.deposit(0, 1.0),
                 lambda: ex.market_order(0, 1.0), lambda: ex.fill(0, other, 1.0, MARK0),
                 lambda: ex.market_orders([other, 0], [1.0, 1.0], [MARK0, MARK0]),
                 lambda: ex.replace_quotes_of([0], [1], [1.0], [99.0])):
        with pytest.raises(ValueError, match="insurance fund's account"):
            call()
    assert ex.equity(0) == 1_000.0


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan])
def test_bad_unwind_rates_are_refused(value):
    with pytest.raises(ValueError, match=r"exchange\.fund_unwind_rate"):
        ExchangeConfig(fund_unwind_rate=value)


def test_a_model_reports_the_fund_s_pnl_at_the_mark():
    """A model path with the takeover on: the fund's account is labelled
    "insurance_fund", and the summary's fund change is its equity at the mark (cash and
    the mark-to-market of what it holds) less the start (no top-ups: a ratio of 0)."""
    config = load_scenario("crash").replace(
        "exchange", presets.binance().replace(insurance_fund=50_000.0, fund_takeover=True,
                                              insurance_fund_ratio=0.0)
    ).replace("traders.count", 200).replace("run.steps", 640)  # the crash is at step 600
    model = PerpMarketModel(config, rng=3).run()
    ex = model.exchange
    assert model.summary()["insurance_fund_change"] == pytest.approx(
        ex.equity(ex.insurance_fund_account) - 50_000.0, abs=1e-6)
    assert model.series["insurance_fund"].iloc[-1] == pytest.approx(ex.insurance_fund)
    events = model.events
    takeovers = events[events["kind"] == "fund_takeover"]
    assert len(takeovers), "the path must reach the fund"
    assert set(takeovers["counterparty_type"]) == {"insurance_fund"}
    assert (events["kind"] == "fund_unwind").any()
    ex.check_invariants()


def test_the_funds_unwind_takes_the_ticks_share_of_its_rate():
    """fund_unwind_rate 0.1 a minute, unwound over a 15-second tick (0.25 minutes): the
    fund (long 10) sells 1 − 0.9^0.25 = 2.599% of it, 0.2599 units; four such ticks leave
    10 · 0.9 = 9, as one call over a minute does."""
    ex, fund, _ = fund_long_ten_into_a_bid(unwind_rate=0.1)
    [first] = ex.unwind_insurance_fund(minutes=0.25)
    assert first.quantity == pytest.approx(-10.0 * (1.0 - 0.9 ** 0.25), rel=1e-12)
    for _ in range(3):
        ex.unwind_insurance_fund(minutes=0.25)
    assert ex.position(fund) == pytest.approx(9.0, rel=1e-12)

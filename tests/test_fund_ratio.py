"""The insurance fund scaled to open interest (``exchange.insurance_fund_ratio``): the venue
tops its fund up from outside — a "fund_deposit" event, money in — and a model path keeps it
at the ratio × the open interest at the mark until the fund is first drawn on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpabm import Exchange, ExchangeConfig, PerpMarketModel
from perpabm.model import FUND_DRAWN

RATIO = 0.05


def test_a_deposit_into_the_fund_is_money_in_and_an_event():
    ex = Exchange(ExchangeConfig(insurance_fund=1_000.0, debug=True), mark_price=100.0)
    event = ex.deposit_insurance_fund(250.0)
    # 1,000 + 250 = 1,250 in the fund; money in grows by the same 250.
    assert ex.insurance_fund == pytest.approx(1_250.0)
    assert ex.money_in == pytest.approx(1_250.0)
    assert (event.kind, event.amount, event.insurance_fund) == ("fund_deposit", 250.0, 1_250.0)
    assert ex.conservation_error() == pytest.approx(0.0, abs=1e-9)


def test_a_deposit_into_a_fund_that_holds_positions_credits_its_account():
    ex = Exchange(ExchangeConfig(insurance_fund=1_000.0, fund_takeover=True, debug=True),
                  mark_price=100.0)
    ex.deposit_insurance_fund(250.0)
    assert ex.collateral(ex.insurance_fund_account) == pytest.approx(1_250.0)
    assert ex.insurance_fund == pytest.approx(1_250.0)


@pytest.mark.parametrize("amount", [0.0, -1.0, math.nan, math.inf])
def test_a_deposit_that_is_not_a_positive_amount_is_refused(amount):
    ex = Exchange(ExchangeConfig(), mark_price=100.0)
    with pytest.raises(ValueError, match="amount"):
        ex.deposit_insurance_fund(amount)
    assert len(ex.event_log) == 0


def calm_model(ratio: float = RATIO, steps: int = 60) -> PerpMarketModel:
    """The default scenario without shocks, short: open interest builds, the fund is rarely
    needed."""
    return PerpMarketModel("default", rng=5, **{
        "exchange.insurance_fund_ratio": ratio, "exchange.preset": "binance",
        "traders.count": 100, "run.steps": steps})


def test_the_fund_is_topped_up_to_the_ratio_of_open_interest_until_it_is_drawn_on():
    model = calm_model()
    ex = model.exchange
    for _ in range(60):
        model.step()
        drawn = any(e.kind in FUND_DRAWN and (e.kind != "insurance_fund" or e.amount < 0)
                    for e in ex.event_log)
        if drawn:
            break
        # 5% of the open interest at the mark, or more where fees and surpluses came in.
        target = RATIO * ex.open_interest * ex.mark_price
        assert ex.insurance_fund >= target * (1 - 1e-12)
    deposits = [e for e in ex.event_log if e.kind == "fund_deposit"]
    assert deposits, "the fund was never topped up"


def test_no_top_up_follows_the_first_draw_on_the_fund():
    model = PerpMarketModel("crash", rng=2, **{"exchange.preset": "binance",
                                               "exchange.insurance_fund_ratio": RATIO,
                                               "traders.count": 300})
    model.run()
    events = model.events
    paid = (events["kind"] == "insurance_fund") & (events["amount"] < 0)
    drawn = events["kind"].isin(FUND_DRAWN - {"insurance_fund"}) | paid
    assert drawn.any(), "the crash never drew on the fund"
    first_draw = events.index[drawn.to_numpy()][0]
    deposits = events.index[(events["kind"] == "fund_deposit").to_numpy()]
    assert len(deposits) and deposits.max() < first_draw


def test_the_summary_fund_change_leaves_the_deposits_out():
    model = calm_model()
    model.run()
    events = model.events
    deposited = events.loc[events["kind"] == "fund_deposit", "amount"].sum()
    start = model.config.exchange.insurance_fund
    assert deposited > 0.0
    # change = balance − start − deposits: what the market paid in or took out.
    assert model.summary()["insurance_fund_change"] == pytest.approx(
        model.exchange.insurance_fund - start - deposited)


def test_a_ratio_of_zero_adds_nothing():
    model = calm_model(ratio=0.0, steps=20)
    model.run()
    assert not np.any(model.events["kind"] == "fund_deposit")

"""The venue's own timings, seen by a model that updates the index every second or every
minute: the cooldown between liquidation slices and the interval between marks.

Common setup unless a test says otherwise: time units of one minute, so the update of
second k is at time k/60; mark = index; no fees; one tier with mmr 0.5%. The
liquidated account L has 1,000 USD and is long 100 at 100 (10x), against S (20,000
USD) short 100; its bankruptcy price is 100 − 1,000/100 = 90. Positions above 5,000
USD of notional are partially liquidated: 20% goes to the book, and for 30 s after, a
liquidation sends the whole position (Hyperliquid's rule). The maker M (1M USD) bids
for 100 at 90.02, just above the bankruptcy price, so each slice fills and L stays
below maintenance margin: at mark 90.2 its equity is 1,000 − 980 = 20 < MM
100·90.2·0.005 = 45.1, and after k slices at 90.02 its collateral is 1,000 − 20k·9.98
and its equity that less (100 − 20k)·9.8 — after four,
201.6 − 196 = 5.6 < MM 20·90.2·0.005 = 9.02.
"""

from __future__ import annotations

import pytest

from perpabm import Exchange, ExchangeConfig
from perpabm.config.market import SECONDS_PER_MINUTE

SLICED = ExchangeConfig(
    max_leverage=50.0,
    mm_tiers=((0.0, 0.005),),
    taker_fee=0.0,
    maker_fee=0.0,
    liquidation_fee=0.0,
    waterfall=("book", "insurance_fund", "adl"),
    liquidation_slice_fraction=0.2,
    liquidation_slice_min_notional=5_000.0,
    liquidation_slice_cooldown_seconds=30.0,
    mark_rule="index",
    debug=True,
)
NEAR_BANKRUPTCY_BID = 90.02
"""M's bid (USD): above every bankruptcy price L's slices leave (90, then 89.995 …)."""


def second(k: int) -> float:
    """The time of second `k`, in the exchange's units of one minute."""
    return k / SECONDS_PER_MINUTE


def sliced_long(config: ExchangeConfig, bid_quantity: float = 100.0):
    """Exchange with M bidding `bid_quantity` at 90.02 and L long 100 at 100 against S."""
    ex = Exchange(config, mark_price=100.0)
    maker = ex.open_account(1_000_000.0)
    liquidated = ex.open_account(1_000.0)
    short = ex.open_account(20_000.0)
    ex.fill(liquidated, short, 100.0, 100.0)
    ex.place_limit(maker, bid_quantity, NEAR_BANKRUPTCY_BID)
    return ex, maker, liquidated, short


def rows(ex: Exchange, kind: str):
    """The events of `kind`, oldest first."""
    return [e for e in ex.event_log if e.kind == kind]


# ---------------------------------------------------------------- slices and their cooldown


def test_within_the_cooldown_the_next_liquidation_is_the_whole_position():
    ex, maker, liquidated, short = sliced_long(SLICED)
    for k in range(0, 3):  # one-second updates at index 90.2
        ex.update_index(90.2, time=second(k))
    # Second 0: one slice of 20 at 90.02 (a partial liquidation); L keeps 80 and
    # collateral 1,000 − 20·9.98 = 800.4, equity 800.4 − 80·9.8 = 16.4 < MM 36.08, and
    # waits for the next mark. Second 1, within the 30 s cooldown: the whole 80.
    liquidations = rows(ex, "liquidation")
    assert [e.time for e in liquidations] == pytest.approx([0.0, second(1)])
    assert [e.quantity for e in liquidations] == pytest.approx([-20.0, -80.0])
    assert ex.position(liquidated) == 0.0
    assert ex.position(short) == -100.0  # no ADL


def test_marks_a_minute_apart_find_the_cooldown_over_and_slice_again():
    ex, maker, liquidated, _ = sliced_long(SLICED)
    for minute in range(3):
        ex.update_index(90.2, time=float(minute))
    # Each mark is after the last one's 30 s cooldown: 20% each time, of 100, 80, 64:
    # 20, 16 and 12.8, leaving 51.2 — slower than the venue, which sends the whole rest
    # at its next mark 3 s after the first slice.
    liquidations = rows(ex, "liquidation")
    assert [e.time for e in liquidations] == [0.0, 1.0, 2.0]
    assert [e.quantity for e in liquidations] == pytest.approx([-20.0, -16.0, -12.8])
    assert ex.position(liquidated) == pytest.approx(51.2)


def test_without_a_cooldown_every_slice_goes_in_one_update():
    ex, _, liquidated, _ = sliced_long(SLICED.replace(liquidation_slice_cooldown_seconds=0.0))
    ex.update_index(90.2, time=0.0)
    # Five slices of 20 at 90.02, one after the other within the update.
    liquidations = rows(ex, "liquidation")
    assert [(e.time, e.quantity) for e in liquidations] == [(0.0, pytest.approx(-20.0))] * 5
    assert ex.position(liquidated) == 0.0


def test_after_the_cooldown_a_liquidation_is_partial_again():
    ex, _, liquidated, _ = sliced_long(SLICED)
    ex.update_index(90.2, time=second(0))  # a slice of 20: 80 left, collateral 800.4
    # At 92 (5 s): equity 800.4 − 80·8 = 160.4 ≥ MM 80·92·0.005 = 36.8: nothing. Back
    # at 90.2 at 31 s, after the cooldown (0 to 30 s): partial again, 20% of 80 = 16.
    ex.update_index(92.0, time=second(5))
    ex.update_index(90.2, time=second(31))
    liquidations = rows(ex, "liquidation")
    assert [e.time for e in liquidations] == pytest.approx([0.0, second(31)])
    assert [e.quantity for e in liquidations] == pytest.approx([-20.0, -16.0])
    assert ex.position(liquidated) == pytest.approx(64.0)


def test_one_mark_sends_one_slice_and_the_account_waits_for_the_next():
    ex, _, liquidated, _ = sliced_long(SLICED)
    events = ex.update_index(90.2, time=0.0)
    # However many passes the waterfall makes in this mark, L (still below maintenance:
    # equity 16.4 < MM 36.08) gets one slice of 20, and ADL ("unfilled") does not act.
    assert [(e.kind, e.quantity) for e in events] == [("liquidation", pytest.approx(-20.0))]
    assert ex.position(liquidated) == pytest.approx(80.0)


def test_the_backstop_takes_over_what_the_book_cannot_fill_in_the_cooldown():
    config = SLICED.replace(waterfall=("book", "backstop", "adl"), backstop_trigger=2 / 3,
                            adl_trigger="negative_equity", surplus_to="account")
    ex, _, liquidated, _ = sliced_long(config, bid_quantity=20.0)
    vault = ex.open_account(100_000.0)
    ex.register_backstop(vault, lambda offer: abs(offer.size))
    ex.update_index(90.4, time=second(0))
    # At 90.4: equity 1,000 − 960 = 40 < MM 45.2 but ≥ 2/3 of it (30.13): the book only.
    # One slice of 20 at 90.02 leaves collateral 800.4 and equity 800.4 − 80·9.6 = 32.4,
    # < MM 80·90.4·0.005 = 36.16 but ≥ 2/3 of it (24.11): L waits.
    assert len(rows(ex, "liquidation")) == 1 and ex.position(liquidated) == pytest.approx(80.0)
    ex.update_index(90.2, time=second(1))
    # At 90.2, in the cooldown, the whole 80 goes to a book with no bid left; equity
    # 800.4 − 80·9.8 = 16.4 < 2/3 · 80·90.2·0.005 = 24.05: the vault takes the 80 over at
    # the bankruptcy price 100 − 800.4/80 = 89.995.
    backstops = rows(ex, "backstop")
    assert [(e.quantity, e.price) for e in backstops] == [(pytest.approx(-80.0),
                                                          pytest.approx(89.995))]
    assert ex.position(vault) == pytest.approx(80.0)


def test_the_insurance_fund_waits_for_the_next_mark_and_takes_what_the_book_cannot():
    ex, maker, liquidated, _ = sliced_long(SLICED.replace(insurance_fund=10_000.0),
                                           bid_quantity=20.0)
    ex.place_limit(maker, 80.0, 89.5)  # below every bankruptcy price: the fund's to take
    ex.update_index(90.4, time=second(0))
    # Second 0: the slice fills 20 at 90.02; L (bankruptcy price now 100 − 800.4/80 =
    # 89.995) waits, and the fund does not close the rest in this mark.
    assert rows(ex, "insurance_fund") == []
    ex.update_index(90.4, time=second(1))
    # Second 1: the whole 80 finds nothing above 89.995; the fund closes it at 89.5,
    # paying 80·(89.995 − 89.5) = 39.6.
    assert [e.time for e in rows(ex, "liquidation") if e.quantity] == [0.0]
    closes = [(e.time, e.quantity, e.price) for e in rows(ex, "insurance_fund")]
    assert closes == [(second(1), pytest.approx(-80.0), 89.5)]
    assert ex.insurance_fund == pytest.approx(10_000.0 - 39.6)
    assert ex.position(liquidated) == 0.0


# ---------------------------------------------------------------- the mark's interval


MARK_EVERY_3_SECONDS = SLICED.replace(liquidation_slice_cooldown_seconds=0.0,
                                      liquidation_slice_min_notional=0.0,
                                      liquidation_slice_fraction=1.0, mark_interval_seconds=3.0)


def test_the_mark_moves_only_every_third_one_second_update():
    ex = Exchange(MARK_EVERY_3_SECONDS, mark_price=100.0)
    marks = []
    for k in range(0, 8):  # the index rises by 1 a second: 100, 101, … 107
        ex.update_index(100.0 + k, time=second(k))
        marks.append(ex.mark_price)
    # Marks at 0, 3 and 6 s take the index then; the updates in between change nothing.
    assert marks == [100.0, 100.0, 100.0, 103.0, 103.0, 103.0, 106.0, 106.0]
    assert ex.time == second(6)


def test_a_liquidation_waits_for_the_next_mark():
    ex, _, liquidated, _ = sliced_long(MARK_EVERY_3_SECONDS)
    ex.update_index(100.0, time=second(0))
    # At index 90.4 L would be liquidatable (equity 40 < MM 45.2), but at 1 and 2 s the
    # venue has no new mark: nothing happens until the mark of 3 s.
    assert ex.update_index(90.4, time=second(1)) == []
    assert ex.update_index(90.4, time=second(2)) == []
    assert ex.position(liquidated) == 100.0
    ex.update_index(90.4, time=second(3))
    assert [e.time for e in rows(ex, "liquidation")] == [second(3)]
    assert ex.position(liquidated) == 0.0


def test_funding_falls_due_on_the_first_mark_at_or_after_its_time():
    ex = Exchange(MARK_EVERY_3_SECONDS.replace(funding_interval_minutes=1.0),
                  mark_price=100.0)
    for k in range(0, 62):
        ex.update_index(100.0, time=second(k))
    # Marks every 3 s: the one at 60 s (time 1) is the first at the one-minute funding.
    assert [e.time for e in rows(ex, "funding")] == [1.0]


# ---------------------------------------------------------------- the preset


def test_hyperliquid_spaces_its_slices_30_seconds_and_its_marks_3_seconds():
    hyperliquid = ExchangeConfig.preset("hyperliquid")
    assert hyperliquid.liquidation_slice_cooldown_seconds == 30.0
    assert hyperliquid.mark_interval_seconds == 3.0


"""Accounts, trading, fees, funding and margin checks of the exchange engine."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpabm import Exchange, ExchangeConfig, MarginError
from perpabm.exchange.events import EVENT_COLUMNS, EVENT_KINDS, Event, events_frame
from perpabm.exchange.kernels import accounts
from perpabm.exchange.ledger import position_after_fill

NO_FEES = ExchangeConfig(max_leverage=10.0, mm_tiers=((0.0, 0.01),), taker_fee=0.0,
                         maker_fee=0.0, debug=True)


def pair(config: ExchangeConfig = NO_FEES, collateral: float = 10_000.0):
    ex = Exchange(config, mark_price=100.0)
    return ex, ex.open_account(collateral), ex.open_account(collateral)


# ---------------------------------------------------------------- positions


def test_adding_to_a_position_averages_the_entry_price():
    # 10 at 100 then 30 at 120: entry (10·100 + 30·120)/40 = 115.
    size, entry, realized = position_after_fill(10.0, 100.0, 30.0, 120.0)
    assert (size, entry, realized) == (40.0, 115.0, 0.0)


def test_reducing_a_position_realises_pnl_and_keeps_the_entry():
    # Long 10 at 100, sell 4 at 110: realised 4·(110 − 100) = 40.
    size, entry, realized = position_after_fill(10.0, 100.0, -4.0, 110.0)
    assert (size, entry, realized) == (6.0, 100.0, 40.0)


def test_flipping_a_position_realises_all_and_opens_the_rest_at_the_price():
    # Short 5 at 100, buy 8 at 90: realised 5·(100 − 90) = 50, then long 3 at 90.
    size, entry, realized = position_after_fill(-5.0, 100.0, 8.0, 90.0)
    assert (size, entry, realized) == (3.0, 90.0, 50.0)


def test_closing_a_position_leaves_it_flat_with_entry_zero():
    assert position_after_fill(-5.0, 100.0, 5.0, 90.0) == (0.0, 0.0, 50.0)


def test_a_fill_changes_equity_by_exactly_its_mark_to_market():
    rng = np.random.default_rng(3)
    size, entry, qty, price = rng.normal(0, 10, (4, 1000))
    entry, price = np.abs(entry) + 50, np.abs(price) + 50
    collateral, mark = 1_000.0, 97.0
    new_size, new_entry, realized = position_after_fill(size, entry, qty, price)
    before = collateral + size * (mark - entry)
    after = collateral + realized + new_size * (mark - new_entry)
    np.testing.assert_allclose(after - before, qty * (mark - price), atol=1e-9)


def test_the_vectorised_form_broadcasts_the_one_booking_rule():
    # Longs of 1 and 2 at 100, each buying 1 and selling 1 at 110: (2, 100 + 10/2 = 105, 0),
    # (0, 0, 10), (3, 106.66…, 0), (1, 100, 10) — each what the compiled rule gives.
    size, entry, realized = position_after_fill(np.array([[1.0], [2.0]]), 100.0,
                                                np.array([1.0, -1.0]), 110.0)
    assert size.shape == entry.shape == realized.shape == (2, 2)
    for i, j in np.ndindex(2, 2):
        expected = accounts.position_after_fill([1.0, 2.0][i], 100.0, [1.0, -1.0][j], 110.0)
        assert (size[i, j], entry[i, j], realized[i, j]) == expected
    assert (size[0, 0], entry[0, 0], realized[0, 1]) == (2.0, 105.0, 10.0)


# ---------------------------------------------------------------- trading


def test_fill_moves_both_positions_and_conserves_money():
    ex, buyer, seller = pair()
    ex.fill(buyer, seller, 10.0, 100.0)
    assert (ex.position(buyer), ex.position(seller)) == (10.0, -10.0)
    ex.update_mark(105.0)
    # Buyer +10·5 = 50, seller −50: zero-sum.
    assert ex.equity(buyer) == 10_050.0 and ex.equity(seller) == 9_950.0
    assert ex.conservation_error() == 0.0


def test_fill_beyond_initial_margin_is_rejected_and_changes_nothing():
    ex, buyer, seller = pair(collateral=1_000.0)
    # 10x max leverage: 1,000 USD carries at most 100 at price 100.
    with pytest.raises(MarginError, match="initial margin"):
        ex.fill(buyer, seller, 100.5, 100.0)
    assert ex.position(buyer) == 0.0 and ex.position(seller) == 0.0
    ex.fill(buyer, seller, 100.0, 100.0)
    assert ex.position(buyer) == 100.0


def test_reducing_trades_are_allowed_below_initial_margin():
    ex, buyer, seller = pair(collateral=1_000.0)
    ex.fill(buyer, seller, 100.0, 100.0)
    ex.update_mark(95.0)  # buyer's equity 500 < IM 950, but above MM 95
    ex.fill(seller, buyer, 10.0, 95.0)
    assert ex.position(buyer) == 90.0


def test_market_order_walks_the_book_and_charges_taker_and_maker_fees():
    config = NO_FEES.replace(taker_fee=0.001, maker_fee=0.0002)
    ex, maker, taker = pair(config)
    ex.place_limit(maker, -5.0, 101.0)
    ex.place_limit(maker, -5.0, 102.0)
    fills = ex.market_order(taker, 8.0)
    # 5 at 101 and 3 at 102: notional 505 + 306 = 811.
    assert [(f.price, f.quantity) for f in fills] == [(101.0, 5.0), (102.0, 3.0)]
    assert ex.position(taker) == 8.0 and ex.entry_price(taker) == pytest.approx(811 / 8)
    assert ex.collateral(taker) == pytest.approx(10_000.0 - 0.001 * 811)
    assert ex.collateral(maker) == pytest.approx(10_000.0 - 0.0002 * 811)
    assert ex.fees_collected == pytest.approx(0.0012 * 811)
    assert ex.book.open_quantity(maker) == (0.0, 2.0)


def test_market_order_respects_its_limit_price():
    ex, maker, taker = pair()
    ex.place_limit(maker, -5.0, 101.0)
    ex.place_limit(maker, -5.0, 103.0)
    ex.market_order(taker, 10.0, limit_price=102.0)
    assert ex.position(taker) == 5.0


def test_market_order_over_initial_margin_is_rejected_whole():
    ex, maker, taker = pair(collateral=1_000.0)
    ex.deposit(maker, 100_000.0)
    ex.place_limit(maker, -50.0, 100.0)
    ex.place_limit(maker, -60.0, 101.0)
    # 110 units need 1,100 USD at 10x; the taker has 1,000.
    with pytest.raises(MarginError):
        ex.market_order(taker, 110.0)
    assert ex.position(taker) == 0.0 and len(ex.book) == 2


def batch_exchange(debug: bool) -> tuple[Exchange, list[int]]:
    """A maker's ladder of asks 101..105 and bids 99..95 (5 each), and four takers:
    two with 10,000 USD, one with 100 (room for 10 units at 10x), one long 20."""
    config = NO_FEES.replace(taker_fee=0.001, maker_fee=0.0002, debug=debug)
    ex = Exchange(config, mark_price=100.0)
    maker = ex.open_account(1e6)
    takers = [ex.open_account(c) for c in (10_000.0, 10_000.0, 100.0, 10_000.0)]
    ex.fill(takers[3], maker, 20.0, 100.0)
    for k in range(5):
        ex.place_limit(maker, -5.0, 101.0 + k)
        ex.place_limit(maker, 5.0, 99.0 - k)
    return ex, takers


BATCH = (  # account index, quantity, limit price
    (0, 8.0, 102.0),    # 5 at 101 and 3 at 102
    (1, 4.0, 100.5),    # nothing within 100.5
    (2, 20.0, 110.0),   # 20 units need 200 USD at 10x: margin rejects it
    (3, -20.0, 96.0),   # closes the long: 5 at 99, 98, 97 and 96
    (1, 6.0, 103.0),    # 2 left at 102, then 4 at 103
)


def test_market_orders_do_what_market_order_does_order_by_order():
    batch, takers = batch_exchange(debug=False)
    one_by_one, _ = batch_exchange(debug=False)
    filled = batch.market_orders([takers[i] for i, _, _ in BATCH], [q for _, q, _ in BATCH],
                                 [p for _, _, p in BATCH])
    for i, quantity, limit in BATCH:
        try:
            one_by_one.market_order(takers[i], quantity, limit_price=limit)
        except MarginError:
            pass
    assert filled.tolist() == [8.0, 0.0, 0.0, -20.0, 6.0]
    pd.testing.assert_frame_equal(batch.accounts(), one_by_one.accounts())
    assert [a.tolist() for a in batch.book.depth("sell")] == [
        a.tolist() for a in one_by_one.book.depth("sell")]
    assert [a.tolist() for a in batch.book.depth("buy")] == [
        a.tolist() for a in one_by_one.book.depth("buy")]
    assert batch.fees_collected == one_by_one.fees_collected
    assert batch.last_price == one_by_one.last_price == 103.0


def test_market_orders_in_debug_mode_check_the_invariants_after_every_order(monkeypatch):
    checked, takers = batch_exchange(debug=True)
    calls = []
    monkeypatch.setattr(checked.core, "check_invariants", lambda: calls.append(1))
    checked.market_orders([takers[i] for i, _, _ in BATCH], [q for _, q, _ in BATCH],
                          [p for _, _, p in BATCH])
    assert len(calls) == len(BATCH)  # five orders, five checks


def test_market_orders_in_debug_mode_run_the_same_kernel(monkeypatch):
    from perpabm.exchange.kernels import matching

    checked, takers = batch_exchange(debug=True)
    batches = []
    kernel = matching.market_orders
    monkeypatch.setattr(matching, "market_orders",
                        lambda *args: batches.append(len(args[5])) or kernel(*args))
    checked.market_orders([takers[i] for i, _, _ in BATCH], [q for _, q, _ in BATCH],
                          [p for _, _, p in BATCH])
    assert batches == [1] * len(BATCH)  # the batch kernel, one order at a time


def test_market_orders_in_debug_mode_go_one_by_one_to_the_same_result():
    fast, takers = batch_exchange(debug=False)
    checked, _ = batch_exchange(debug=True)
    args = ([takers[i] for i, _, _ in BATCH], [q for _, q, _ in BATCH], [p for _, _, p in BATCH])
    np.testing.assert_array_equal(fast.market_orders(*args), checked.market_orders(*args))
    pd.testing.assert_frame_equal(fast.accounts(), checked.accounts())
    assert fast.fees_collected == checked.fees_collected


def test_market_orders_with_no_orders_change_nothing():
    ex, _ = batch_exchange(debug=False)
    before = ex.accounts()
    assert ex.market_orders([], [], []).tolist() == []
    pd.testing.assert_frame_equal(ex.accounts(), before)


def test_marketable_limit_order_trades_then_rests_the_rest():
    ex, maker, taker = pair()
    ex.place_limit(maker, -5.0, 100.5)
    order = ex.place_limit(taker, 8.0, 101.0)
    assert ex.position(taker) == 5.0
    assert ex.book.best_bid() == 101.0 and ex.cancel(order) == 3.0


def test_post_only_order_that_would_cross_is_rejected():
    ex, maker, taker = pair()
    ex.place_limit(maker, -5.0, 100.5)
    with pytest.raises(ValueError, match="post_only"):
        ex.place_limit(taker, 1.0, 101.0, post_only=True)


def test_resting_orders_must_be_covered_by_initial_margin_as_if_filled():
    ex, maker, _ = pair(collateral=1_000.0)
    ex.place_limit(maker, 60.0, 99.0)
    # 60 + 50 = 110 units at mark 100 need 1,100 USD at 10x.
    with pytest.raises(MarginError, match="all its orders"):
        ex.place_limit(maker, 50.0, 98.0)
    ex.place_limit(maker, -100.0, 101.0)  # the other side does not add exposure beyond 100


def test_own_resting_orders_are_skipped_by_own_market_orders():
    ex, maker, taker = pair()
    ex.place_limit(taker, -5.0, 100.5)
    ex.place_limit(maker, -5.0, 101.0)
    ex.market_order(taker, 5.0)
    assert ex.position(taker) == 5.0 and ex.position(maker) == -5.0


# ---------------------------------------------------------------- funding and cash


def test_funding_is_paid_by_longs_to_shorts_and_sums_to_zero():
    ex, long_, short = pair()
    ex.fill(long_, short, 10.0, 100.0)
    ex.update_mark(110.0)
    paid = ex.apply_funding(0.001)
    # Each long pays 0.001·10·110 = 1.1 to the shorts.
    assert paid == pytest.approx(1.1)
    assert ex.collateral(long_) == pytest.approx(10_000.0 - 1.1)
    assert ex.collateral(short) == pytest.approx(10_000.0 + 1.1)
    assert ex.events.iloc[-1]["kind"] == "funding"


def test_withdraw_keeps_initial_margin():
    ex, long_, short = pair(collateral=2_000.0)
    ex.fill(long_, short, 100.0, 100.0)  # IM 1,000
    with pytest.raises(MarginError, match="free margin"):
        ex.withdraw(long_, 1_000.01)
    ex.withdraw(long_, 1_000.0)
    assert ex.collateral(long_) == 1_000.0
    assert ex.money_in == 3_000.0


def test_close_account_pays_out_and_refuses_further_trading():
    ex, a, b = pair()
    assert ex.close_account(a) == 10_000.0
    with pytest.raises(ValueError, match="closed"):
        ex.fill(a, b, 1.0, 100.0)
    assert ex.conservation_error() == 0.0


# ---------------------------------------------------------------- marks and scans


def test_mark_before_any_update_is_the_first_trade_price():
    ex = Exchange(NO_FEES)
    a, b = ex.open_account(1_000.0), ex.open_account(1_000.0)
    ex.fill(a, b, 1.0, 250.0)
    assert ex.mark_price == 250.0


def test_update_mark_advances_time_by_one_unless_told():
    ex, _, _ = pair()
    ex.update_mark(100.0)
    ex.update_mark(100.0, time=60.0)
    ex.update_mark(100.0)
    assert ex.time == 61.0


def test_liquidation_scan_agrees_with_the_margin_formula_on_every_account():
    config = ExchangeConfig.preset("binance")  # ten tiers
    ex = Exchange(config, mark_price=100.0)
    rng = np.random.default_rng(11)
    for _ in range(300):
        a = ex.open_account(float(rng.uniform(1_000, 2_000_000)))
        b = ex.open_account(2e9)
        notional_cap = ex.collateral(a) * 100  # up to 100x
        ex.fill(a, b, float(rng.uniform(0.1, 1.0)) * notional_cap / 100.0, 100.0)
    for mark in (99.5, 99.0, 98.0, 101.0, 102.0):
        ex._mark = mark  # look without liquidating
        frame = ex.accounts()
        expected = frame.index[(frame["equity"] < frame["maintenance_margin"])
                               & (frame["size"] != 0)]
        assert ex.liquidatable().tolist() == expected.tolist()


def test_events_frame_has_the_documented_columns_even_when_empty():
    ex, _, _ = pair()
    assert tuple(ex.events.columns) == EVENT_COLUMNS
    assert len(ex.events) == 0
    assert ex.events.dtypes.astype(str).tolist() == list(EVENT_DTYPES.values())
    assert ex.event_log == ()


EVENT_DTYPES = {name: "string" if name == "kind" else
                "int64" if name in ("liquidation", "account", "counterparty", "rank")
                else "float64" for name in EVENT_COLUMNS}
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0])
ids = st.integers(-1, 2**40)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(Event, floats, st.sampled_from(EVENT_KINDS), ids, ids, ids, floats,
                          floats, floats, floats, floats, floats, ids, floats, floats),
                max_size=40))
def test_events_frame_is_the_records_typed_column_by_column(events):
    expected = pd.DataFrame.from_records(events, columns=EVENT_COLUMNS).astype(EVENT_DTYPES)
    frame = events_frame(events)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True, check_index_type=True,
                                  check_column_type=True)
    assert frame.dtypes.astype(str).tolist() == list(EVENT_DTYPES.values())


def test_debug_mode_checks_invariants_after_every_operation():
    ex, a, b = pair()
    ex.ledger.collateral[a] += 1.0  # money from nowhere
    with pytest.raises(AssertionError, match="money not conserved"):
        ex.fill(a, b, 1.0, 100.0)


# ---------------------------------------------------------------- a maker's requote


def requote_one_by_one(ex: Exchange, acct: int, quantities, prices) -> list:
    """What replace_quotes promises: cancel, then place_limit(post_only) per order,
    skipping an order that would cross or that margin cannot cover."""
    ex.book.cancel_account(acct)
    ids = []
    for q, p in zip(quantities, prices, strict=True):
        try:
            ids.append(ex.place_limit(acct, q, p, post_only=True))
        except (MarginError, ValueError):
            ids.append(None)
    return ids


def quoting_exchange(collateral: float) -> tuple[Exchange, int, int]:
    """A maker with `collateral` USD (≥ 25, the initial margin of long 2 plus a 0.5 bid
    at 10x), long 2 at 100 against a rival whose quotes (bid 99.5, ask 100.5) a ladder
    can cross."""
    ex = Exchange(NO_FEES, mark_price=100.0)
    maker, rival = ex.open_account(collateral), ex.open_account(1e6)
    ex.fill(maker, rival, 2.0, 100.0)
    ex.place_limit(rival, 1.0, 99.5)
    ex.place_limit(rival, -1.0, 100.5)
    ex.place_limit(maker, 0.5, 98.0)  # an old quote the requote replaces
    return ex, maker, rival


@settings(max_examples=200, deadline=None)
@given(collateral=st.floats(26.0, 500.0),
       ladder=st.lists(st.tuples(st.sampled_from([1.0, -1.0]), st.floats(0.1, 3.0),
                                 st.floats(95.0, 105.0)), min_size=1, max_size=12))
def test_replace_quotes_posts_what_one_by_one_post_only_orders_would(collateral, ladder):
    quantities = [side * q for side, q, _ in ladder]
    prices = [p for _, _, p in ladder]
    bulk, maker, _ = quoting_exchange(collateral)
    single, _, _ = quoting_exchange(collateral)
    assert bulk.replace_quotes(maker, quantities, prices) == requote_one_by_one(
        single, maker, quantities, prices)
    for side in ("buy", "sell"):
        for a, b in zip(bulk.book.depth(side), single.book.depth(side), strict=True):
            np.testing.assert_array_equal(a, b)
    assert bulk.book.open_quantity(maker) == single.book.open_quantity(maker)


@settings(max_examples=100, deadline=None)
@given(collateral=st.floats(26.0, 500.0),
       ladders=st.lists(st.lists(st.tuples(st.sampled_from([1.0, -1.0]), st.floats(0.1, 3.0),
                                           st.floats(95.0, 105.0)), max_size=6),
                        min_size=1, max_size=4))
def test_replace_quotes_of_is_replace_quotes_for_each_account_in_turn(collateral, ladders):
    # Ladders alternate between the maker and its rival, so each meets the other's new ones.
    bulk, maker, rival = quoting_exchange(collateral)
    single, _, _ = quoting_exchange(collateral)
    accounts = [(maker, rival)[k % 2] for k in range(len(ladders))]
    orders = [(side * q, p) for ladder in ladders for side, q, p in ladder]
    ids = bulk.replace_quotes_of(accounts, [len(ladder) for ladder in ladders],
                                 [q for q, _ in orders], [p for _, p in orders])
    expected = []
    for account, ladder in zip(accounts, ladders, strict=True):
        expected += single.replace_quotes(account, [side * q for side, q, _ in ladder],
                                          [p for _, _, p in ladder])
    assert [None if i < 0 else i for i in ids.tolist()] == expected
    for side in ("buy", "sell"):
        for a, b in zip(bulk.book.depth(side), single.book.depth(side), strict=True):
            np.testing.assert_array_equal(a, b)


def test_replace_quotes_of_with_a_count_of_zero_cancels_that_account_s_quotes():
    ex, maker, rival = quoting_exchange(1_000.0)
    ids = ex.replace_quotes_of([maker, rival], [0, 1], [-1.0], [101.0])
    assert ex.book.orders_of(maker) == [] and len(ids) == 1 and ids[0] > 0
    # The rival's ladder of one ask replaced both its quotes.
    assert (ex.book.best_bid(), ex.book.best_ask()) == (None, 101.0)


def test_replace_quotes_of_checks_every_ladder_before_posting_any():
    ex, maker, rival = quoting_exchange(1_000.0)
    before = [ex.book.orders_of(a) for a in (maker, rival)]
    with pytest.raises(ValueError, match="prices"):
        ex.replace_quotes_of([maker, rival], [1, 1], [1.0, -1.0], [97.0, float("nan")])
    with pytest.raises(ValueError, match="counts"):
        ex.replace_quotes_of([maker, rival], [1, 2], [1.0, -1.0], [97.0, 103.0])
    with pytest.raises(ValueError, match="accounts: 9"):
        ex.replace_quotes_of([maker, 9], [1, 1], [1.0, -1.0], [97.0, 103.0])
    assert [ex.book.orders_of(a) for a in (maker, rival)] == before


def test_replace_quotes_rejects_a_ladder_with_a_bad_price_and_changes_nothing():
    ex, maker, _ = quoting_exchange(1_000.0)
    before = ex.book.orders_of(maker)
    with pytest.raises(ValueError, match="prices"):
        ex.replace_quotes(maker, [1.0, -1.0], [99.0, float("nan")])
    assert ex.book.orders_of(maker) == before


def test_a_ladder_that_posts_nothing_leaves_no_trace_of_the_account_in_the_book():
    ex, maker, _ = quoting_exchange(1_000.0)
    # Both orders would cross the rival's quotes (bid 99.5, ask 100.5): none is posted.
    assert ex.replace_quotes(maker, [1.0, -1.0], [101.0, 99.0]) == [None, None]
    assert ex.book.orders_of(maker) == [] and ex.book.open_quantity(maker) == (0.0, 0.0)
    assert all(o.account != maker for side in ("buy", "sell") for o in ex.book.orders(side))


@pytest.mark.parametrize("copy_of", [copy.deepcopy, lambda ex: pickle.loads(pickle.dumps(ex))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_exchange_books_on_its_own_ledger(copy_of):
    # The ledger's rows are views of its arrays; a copy must keep them views of its own
    # copy, or the kernels would book fills that the copy's ledger never shows.
    ex, maker, taker = pair()
    copied = copy_of(ex)
    copied.fill(taker, maker, 2.0, 100.0)
    assert (copied.position(taker), copied.ledger.size[taker]) == (2.0, 2.0)
    assert ex.position(taker) == 0.0  # the original is untouched
    copied.check_invariants()

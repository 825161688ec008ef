"""Specification tests for perpabm.exchange.book.OrderBook."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from perpabm.exchange.book import BUY, DUST_REL_TOL, SELL, Fill, OrderBook
from perpabm.exchange.kernels import book as arrays

# ---------------------------------------------------------------- helpers


def snapshot(book: OrderBook) -> dict:
    """Everything observable about a book, for 'nothing changed' assertions."""
    state = {}
    for side in (BUY, SELL):
        prices, volumes = book.depth(side)
        orders = book.orders(side)
        state[side] = [
            (p, v, [(o.order_id, o.account, o.quantity) for o in orders if o.price == p])
            for p, v in zip(prices.tolist(), volumes.tolist(), strict=True)
        ]
    accounts = {o.account for side in (BUY, SELL) for o in book.orders(side)}
    state["accounts"] = {a: (book.orders_of(a), book.open_quantity(a)) for a in sorted(accounts)}
    state["len"] = len(book)
    return state


def check_invariants(book: OrderBook) -> None:
    """Internal consistency: the queues are in priority order, the id index, the free
    slots and the queues account for every slot once, and level volumes and account
    totals are exact."""
    index, meta, money = book._index, book._meta, book._money
    cap = money.shape[1]
    queued = []
    for side in (BUY, SELL):
        code = arrays.BUY_SIDE if side == BUY else arrays.SELL_SIDE
        slots = index[arrays.QUEUE + code, : meta[arrays.N_BUY + code]].tolist()
        queued += slots
        assert all(index[arrays.SIDE, s] == code for s in slots)
        keys = [((-1 if side == BUY else 1) * money[arrays.PRICE, s], index[arrays.SEQ, s])
                for s in slots]
        assert keys == sorted(keys), f"{side} queue out of price-time priority"
        orders = book.orders(side)
        assert all(o.quantity > 0 and o.price > 0 and o.side == side for o in orders)
        volumes = dict(zip(*(a.tolist() for a in book.depth(side)), strict=True))
        assert list(volumes) == list(dict.fromkeys(o.price for o in orders)), "levels"
        for price, volume in volumes.items():
            assert volume == math.fsum(o.quantity for o in orders if o.price == price)
    by_id = index[arrays.BY_ID, : meta[arrays.N_LIVE]].tolist()
    ids = [index[arrays.ORDER_ID, s] for s in by_id]
    assert ids == sorted(set(ids)), "id index not strictly ascending"
    assert sorted(by_id) == sorted(queued), "id index and queues hold different orders"
    free = index[arrays.FREE, : meta[arrays.N_FREE]].tolist()
    assert sorted(free + queued) == list(range(cap)), "a slot lost or held twice"
    assert len(book) == len(queued)

    by_account: dict[int, list] = {}
    for side in (BUY, SELL):
        for o in book.orders(side):
            by_account.setdefault(o.account, []).append(o)
    for account, orders in by_account.items():
        assert set(book.orders_of(account)) == {o.order_id for o in orders}
        expected = tuple(math.fsum(o.quantity for o in orders if o.side == s) for s in (BUY, SELL))
        assert book.open_quantity(account) == expected


def make_book() -> OrderBook:
    """Asks 101 (ids 1, 2), 102 (id 3); bids 99 (ids 4, 5), 98 (id 6)."""
    book = OrderBook()
    book.add(1, account=10, side=SELL, price=101.0, quantity=1.0)
    book.add(2, account=11, side=SELL, price=101.0, quantity=2.0)
    book.add(3, account=12, side=SELL, price=102.0, quantity=3.0)
    book.add(4, account=10, side=BUY, price=99.0, quantity=1.5)
    book.add(5, account=11, side=BUY, price=99.0, quantity=0.5)
    book.add(6, account=12, side=BUY, price=98.0, quantity=4.0)
    return book


# ---------------------------------------------------------------- market data


def test_empty_book_has_no_prices():
    book = OrderBook()
    assert book.best_bid() is None
    assert book.best_ask() is None
    assert book.mid() is None
    assert len(book) == 0
    prices, volumes = book.depth(BUY)
    assert prices.shape == (0,) and volumes.shape == (0,)
    assert book.volume_within(SELL, 100.0) == 0.0


def test_best_bid_best_ask_and_mid():
    book = make_book()
    assert book.best_bid() == 99.0
    assert book.best_ask() == 101.0
    assert book.mid() == 100.0


def test_mid_is_none_when_one_side_is_empty():
    book = OrderBook()
    book.add(1, 1, BUY, 99.0, 1.0)
    assert book.best_bid() == 99.0
    assert book.best_ask() is None
    assert book.mid() is None


def test_add_rests_without_matching_even_when_crossing():
    book = make_book()
    book.add(7, 13, BUY, 105.0, 1.0)
    assert book.best_bid() == 105.0
    assert book.best_ask() == 101.0
    assert len(book) == 7


def test_depth_goes_from_best_level_outward_with_level_volumes():
    book = make_book()
    prices, volumes = book.depth(BUY)
    np.testing.assert_array_equal(prices, [99.0, 98.0])
    np.testing.assert_array_equal(volumes, [2.0, 4.0])
    prices, volumes = book.depth(SELL)
    np.testing.assert_array_equal(prices, [101.0, 102.0])
    np.testing.assert_array_equal(volumes, [3.0, 3.0])


def test_depth_levels_limits_the_number_of_levels():
    book = make_book()
    prices, volumes = book.depth(BUY, levels=1)
    np.testing.assert_array_equal(prices, [99.0])
    np.testing.assert_array_equal(volumes, [2.0])
    assert book.depth(SELL, levels=0)[0].shape == (0,)
    assert book.depth(SELL, levels=10)[0].tolist() == [101.0, 102.0]


def test_volume_within_counts_levels_at_least_as_good_as_the_limit_inclusive():
    book = make_book()
    assert book.volume_within(SELL, 100.0) == 0.0
    assert book.volume_within(SELL, 101.0) == 3.0
    assert book.volume_within(SELL, 101.5) == 3.0
    assert book.volume_within(SELL, 102.0) == 6.0
    assert book.volume_within(BUY, 99.5) == 0.0
    assert book.volume_within(BUY, 99.0) == 2.0
    assert book.volume_within(BUY, 1.0) == 6.0


def test_near_mid_gives_the_best_prices_and_the_volume_within_a_band_of_their_mid():
    # Mid (99 + 101) / 2 = 100; within 2%: bids ≥ 98 (1.5 + 0.5 + 4) and asks ≤ 102 (1 + 2 + 3).
    assert make_book().near_mid(0.02, 50.0) == (99.0, 101.0, 6.0, 6.0)
    # Within 1%: bids ≥ 99 (2.0), asks ≤ 101 (3.0).
    assert make_book().near_mid(0.01, 50.0) == (99.0, 101.0, 2.0, 3.0)


def test_near_mid_falls_back_to_the_given_mid_while_a_side_is_empty():
    book = OrderBook()
    book.add(1, account=10, side=SELL, price=101.0, quantity=1.0)
    bid, ask, bid_volume, ask_volume = book.near_mid(0.01, 100.0)
    # No bids: the mid is 100, and asks ≤ 101 count.
    assert math.isnan(bid) and (ask, bid_volume, ask_volume) == (101.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="fallback_mid"):
        book.near_mid(0.01, float("nan"))


# ---------------------------------------------------------------- planning


def test_buy_taker_walks_asks_in_ascending_price_order():
    book = OrderBook()
    book.add(1, 1, SELL, 103.0, 1.0)
    book.add(2, 2, SELL, 101.0, 1.0)
    book.add(3, 3, SELL, 102.0, 1.0)
    fills = book.plan_market(BUY, 3.0)
    assert [f.price for f in fills] == [101.0, 102.0, 103.0]
    assert [f.order_id for f in fills] == [2, 3, 1]


def test_sell_taker_walks_bids_in_descending_price_order():
    book = OrderBook()
    book.add(1, 1, BUY, 97.0, 1.0)
    book.add(2, 2, BUY, 99.0, 1.0)
    book.add(3, 3, BUY, 98.0, 1.0)
    fills = book.plan_market(SELL, 3.0)
    assert [f.price for f in fills] == [99.0, 98.0, 97.0]
    assert [f.order_id for f in fills] == [2, 3, 1]


def test_time_priority_within_a_level():
    book = OrderBook()
    book.add(7, 1, SELL, 100.0, 1.0)
    book.add(3, 2, SELL, 100.0, 1.0)
    book.add(5, 3, SELL, 100.0, 1.0)
    fills = book.plan_market(BUY, 2.0)
    assert fills == [Fill(7, 1, 100.0, 1.0), Fill(3, 2, 100.0, 1.0)]


def test_last_fill_is_partial_with_the_remaining_taker_quantity():
    book = make_book()
    fills = book.plan_market(BUY, 2.5)
    assert fills == [Fill(1, 10, 101.0, 1.0), Fill(2, 11, 101.0, 1.5)]


def test_quantity_beyond_the_book_fills_everything_available():
    book = make_book()
    fills = book.plan_market(BUY, 100.0)
    assert [f.order_id for f in fills] == [1, 2, 3]
    assert math.fsum(f.quantity for f in fills) == 6.0


def test_buy_limit_price_stops_the_walk_at_more_expensive_levels():
    book = make_book()
    assert [f.order_id for f in book.plan_market(BUY, 10.0, limit_price=101.5)] == [1, 2]
    assert [f.order_id for f in book.plan_market(BUY, 10.0, limit_price=102.0)] == [1, 2, 3]
    assert book.plan_market(BUY, 10.0, limit_price=100.0) == []


def test_sell_limit_price_stops_the_walk_at_cheaper_levels():
    book = make_book()
    assert [f.order_id for f in book.plan_market(SELL, 10.0, limit_price=98.5)] == [4, 5]
    assert [f.order_id for f in book.plan_market(SELL, 10.0, limit_price=98.0)] == [4, 5, 6]
    assert book.plan_market(SELL, 10.0, limit_price=100.0) == []


def test_exclude_account_skips_own_orders_without_blocking_the_walk():
    book = make_book()
    fills = book.plan_market(BUY, 2.5, exclude_account=10)
    assert fills == [Fill(2, 11, 101.0, 2.0), Fill(3, 12, 102.0, 0.5)]
    assert all(f.maker != 11 for f in book.plan_market(SELL, 10.0, exclude_account=11))


def test_exclude_account_zero_is_not_confused_with_none():
    book = OrderBook()
    book.add(1, 0, SELL, 100.0, 1.0)
    book.add(2, 1, SELL, 100.0, 1.0)
    assert [f.order_id for f in book.plan_market(BUY, 2.0, exclude_account=0)] == [2]
    assert [f.order_id for f in book.plan_market(BUY, 2.0)] == [1, 2]


def test_plan_market_does_not_mutate_the_book():
    book = make_book()
    before = snapshot(book)
    book.plan_market(BUY, 2.5)
    book.plan_market(SELL, 100.0, limit_price=98.0, exclude_account=11)
    assert snapshot(book) == before


def test_plan_quantities_sum_exactly_to_the_requested_quantity():
    book = OrderBook()
    for i in range(10):
        book.add(i, i, SELL, 100.0 + i, 0.1)
    fills = book.plan_market(BUY, 0.7)
    assert math.fsum(f.quantity for f in fills) == 0.7
    assert all(f.quantity == 0.1 for f in fills[:-1])


# ---------------------------------------------------------------- applying


def test_apply_executes_the_plan_exactly():
    book = make_book()
    book.apply(book.plan_market(BUY, 2.5))
    assert 1 not in book
    assert book.orders_of(11) == [2, 5]
    prices, volumes = book.depth(SELL)
    np.testing.assert_array_equal(prices, [101.0, 102.0])
    np.testing.assert_array_equal(volumes, [0.5, 3.0])
    assert book.open_quantity(10) == (1.5, 0.0)
    assert book.open_quantity(11) == (0.5, 0.5)
    assert len(book) == 5
    check_invariants(book)


def test_apply_removes_emptied_levels_and_moves_the_best_price():
    book = make_book()
    book.apply(book.plan_market(SELL, 2.0))
    assert book.best_bid() == 98.0
    assert book.depth(BUY)[0].tolist() == [98.0]
    check_invariants(book)


def test_partially_filled_order_keeps_its_queue_position():
    book = OrderBook()
    book.add(1, 1, SELL, 100.0, 2.0)
    book.add(2, 2, SELL, 100.0, 2.0)
    book.apply(book.plan_market(BUY, 0.5))
    assert book.plan_market(BUY, 1.5) == [Fill(1, 1, 100.0, 1.5)]


def test_apply_leaves_no_floating_dust_on_makers():
    book = OrderBook()
    book.add(1, 1, SELL, 100.0, 0.1)
    book.add(2, 2, SELL, 100.0, 0.2)
    book.add(3, 3, SELL, 101.0, 1.0)
    fills = book.plan_market(BUY, 0.3)
    assert [f.order_id for f in fills] == [1, 2]
    assert math.fsum(f.quantity for f in fills) == 0.3
    book.apply(fills)
    # 0.3 - 0.1 < 0.2 in binary floating point: the 1e-17 left on order 2 is dust.
    assert 2 not in book
    assert book.best_ask() == 101.0
    assert book.open_quantity(2) == (0.0, 0.0)
    check_invariants(book)


def test_apply_keeps_a_genuine_small_remainder():
    book = OrderBook()
    book.add(1, 1, SELL, 100.0, 1.0)
    book.apply([Fill(1, 1, 100.0, 1.0 - 1e-6)])
    assert 1 in book
    assert book.open_quantity(1)[1] == pytest.approx(1e-6)
    assert 1e-6 * DUST_REL_TOL < book.open_quantity(1)[1]


def test_apply_of_an_empty_plan_is_a_no_op():
    book = make_book()
    before = snapshot(book)
    book.apply([])
    assert snapshot(book) == before


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda book: book.cancel(2), "order_id 2 is not resting"),
        (lambda book: book.apply([Fill(2, 11, 101.0, 1.5)]), "exceeding its remaining"),
        (lambda book: (book.cancel(2), book.add(2, 99, SELL, 101.0, 5.0)), "maker/price"),
        (lambda book: (book.cancel(2), book.add(2, 11, SELL, 101.5, 5.0)), "maker/price"),
    ],
    ids=["order-gone", "quantity-exceeds-remaining", "maker-changed", "price-changed"],
)
def test_stale_plan_raises_and_changes_nothing(mutate, match):
    book = make_book()
    fills = book.plan_market(BUY, 2.5)  # fills order 1 fully, then 1.5 of order 2
    mutate(book)
    before = snapshot(book)
    with pytest.raises(RuntimeError, match=match):
        book.apply(fills)
    assert snapshot(book) == before
    check_invariants(book)


@pytest.mark.parametrize("quantity", [0.0, -1.0, math.nan, math.inf])
def test_apply_rejects_a_bad_fill_quantity_and_changes_nothing(quantity):
    book = make_book()
    before = snapshot(book)
    with pytest.raises(RuntimeError, match="quantity"):
        book.apply([Fill(1, 10, 101.0, 0.5), Fill(2, 11, 101.0, quantity)])
    assert snapshot(book) == before


def test_apply_sums_several_fills_on_one_order():
    book = make_book()
    with pytest.raises(RuntimeError, match="exceeding"):
        book.apply([Fill(2, 11, 101.0, 1.5), Fill(2, 11, 101.0, 1.0)])
    book.apply([Fill(2, 11, 101.0, 1.5), Fill(2, 11, 101.0, 0.5)])
    assert 2 not in book
    check_invariants(book)


# ---------------------------------------------------------------- cancels and accounts


def test_cancel_removes_the_order_and_returns_its_details():
    book = make_book()
    assert book.cancel(2) == (11, SELL, 101.0, 2.0)
    assert 2 not in book
    assert len(book) == 5
    assert book.depth(SELL)[1].tolist() == [1.0, 3.0]
    check_invariants(book)


def test_cancel_returns_the_remaining_quantity_after_a_partial_fill():
    book = make_book()
    book.apply([Fill(2, 11, 101.0, 0.75)])
    assert book.cancel(2) == (11, SELL, 101.0, 1.25)


def test_cancel_from_the_middle_of_a_level_keeps_time_priority_of_the_rest():
    book = OrderBook()
    for i in range(1, 4):
        book.add(i, i, BUY, 50.0, 1.0)
    book.cancel(2)
    assert [f.order_id for f in book.plan_market(SELL, 2.0)] == [1, 3]


def test_cancel_of_the_last_order_removes_the_level():
    book = make_book()
    book.cancel(3)
    assert book.depth(SELL)[0].tolist() == [101.0]
    check_invariants(book)


def test_order_id_can_be_reused_after_cancel():
    book = make_book()
    book.cancel(1)
    book.add(1, 10, BUY, 90.0, 1.0)
    assert book.cancel(1) == (10, BUY, 90.0, 1.0)


def test_cancel_unknown_order_raises_value_error():
    book = make_book()
    with pytest.raises(ValueError, match="order_id"):
        book.cancel(42)


def test_cancel_account_cancels_all_its_orders_and_returns_them():
    book = make_book()
    cancelled = book.cancel_account(11)
    assert cancelled == [(2, SELL, 101.0, 2.0), (5, BUY, 99.0, 0.5)]
    assert book.orders_of(11) == []
    assert book.open_quantity(11) == (0.0, 0.0)
    assert book.orders_of(10) == [1, 4]
    assert len(book) == 4
    check_invariants(book)


def test_cancel_account_without_orders_returns_empty_list():
    book = make_book()
    assert book.cancel_account(999) == []
    assert len(book) == 6


def test_replacing_a_few_orders_in_a_deep_book_matches_cancel_and_add():
    """Few orders among many levels: the price lists are updated order by order, for a
    level that empties and opens again, one shared with another account, a new one."""

    def deep_book():
        book = OrderBook()
        for k in range(40):
            book.add(k, 1, BUY, 90.0 - k, 1.0)
            book.add(100 + k, 1, SELL, 110.0 + k, 1.0)
        book.add(200, 2, BUY, 89.0, 0.5)  # behind account 1's order at 89
        book.add(201, 2, BUY, 95.0, 0.5)  # a level of its own
        book.add(202, 2, SELL, 120.5, 0.25)
        return book

    new = [(300, BUY, 95.0, 0.75), (301, BUY, 89.0, 1.5), (302, SELL, 109.0, 2.0),
           (303, BUY, 96.0, 1.0)]
    bulk, single = deep_book(), deep_book()
    codes = {BUY: arrays.BUY_SIDE, SELL: arrays.SELL_SIDE}
    bulk.replace_account(2, np.array([n[0] for n in new]), np.array([codes[n[1]] for n in new]),
                         np.array([n[2] for n in new]), np.array([n[3] for n in new]))
    assert single.cancel_account(2) == [(200, BUY, 89.0, 0.5), (201, BUY, 95.0, 0.5),
                                        (202, SELL, 120.5, 0.25)]
    for order_id, side, price, qty in new:
        single.add(order_id, 2, side, price, qty)
    check_invariants(bulk)
    check_invariants(single)
    assert snapshot(bulk) == snapshot(single)
    assert bulk.orders_of(2) == [300, 301, 302, 303]
    assert (bulk.best_bid(), bulk.best_ask()) == (96.0, 109.0)
    assert 120.5 not in bulk.depth(SELL)[0]
    assert [o for o in bulk.orders(BUY) if o.price == 89.0][-1].order_id == 301  # behind 1's


def test_open_quantity_tracks_adds_fills_and_cancels():
    book = OrderBook()
    assert book.open_quantity(1) == (0.0, 0.0)
    book.add(1, 1, BUY, 99.0, 2.0)
    book.add(2, 1, BUY, 98.0, 0.5)
    book.add(3, 1, SELL, 101.0, 1.0)
    assert book.open_quantity(1) == (2.5, 1.0)
    book.apply(book.plan_market(SELL, 0.5))
    assert book.open_quantity(1) == (2.0, 1.0)
    book.cancel(3)
    assert book.open_quantity(1) == (2.0, 0.0)
    book.apply(book.plan_market(SELL, 10.0))
    assert book.open_quantity(1) == (0.0, 0.0)


def test_open_quantity_is_exact_after_many_awkward_operations():
    book = OrderBook()
    book.add(1, 1, SELL, 100.0, 0.1)
    book.add(2, 1, SELL, 100.0, 0.2)
    book.add(3, 1, SELL, 100.0, 1 / 3)
    book.cancel(2)
    book.cancel(3)
    assert book.open_quantity(1) == (0.0, 0.1)
    assert book.depth(SELL)[1].tolist() == [0.1]


def test_orders_of_lists_resting_ids_in_placement_order():
    book = make_book()
    book.add(9, 10, SELL, 105.0, 1.0)
    assert book.orders_of(10) == [1, 4, 9]
    assert book.orders_of(12345) == []


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"side": "bid"}, "side"),
        ({"side": "BUY"}, "side"),
        ({"price": 0.0}, "price"),
        ({"price": -1.0}, "price"),
        ({"price": math.nan}, "price"),
        ({"price": math.inf}, "price"),
        ({"price": "100"}, "price"),
        ({"quantity": 0.0}, "quantity"),
        ({"quantity": -2.0}, "quantity"),
        ({"quantity": math.nan}, "quantity"),
        ({"quantity": math.inf}, "quantity"),
        ({"order_id": 1}, "order_id"),
        ({"order_id": 1.5}, "order_id"),
        ({"account": None}, "account"),
    ],
)
def test_add_rejects_bad_input_naming_the_field(kwargs, field):
    book = OrderBook()
    book.add(1, 1, BUY, 99.0, 1.0)
    args = {"order_id": 2, "account": 1, "side": SELL, "price": 101.0, "quantity": 1.0}
    args.update(kwargs)
    before = snapshot(book)
    with pytest.raises(ValueError, match=field):
        book.add(**args)
    assert snapshot(book) == before


def test_add_error_suggests_valid_sides():
    with pytest.raises(ValueError, match="'buy' or 'sell'"):
        OrderBook().add(1, 1, "long", 100.0, 1.0)


def test_add_accepts_numpy_scalars():
    book = OrderBook()
    book.add(np.int64(1), np.int64(2), SELL, np.float64(100.0), np.float32(0.5))
    assert book.plan_market(BUY, 1.0) == [Fill(1, 2, 100.0, 0.5)]
    assert type(book.plan_market(BUY, 1.0)[0].order_id) is int


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"taker_side": "long"}, "taker_side"),
        ({"quantity": 0.0}, "quantity"),
        ({"quantity": math.nan}, "quantity"),
        ({"limit_price": 0.0}, "limit_price"),
        ({"limit_price": -5.0}, "limit_price"),
        ({"limit_price": math.nan}, "limit_price"),
    ],
)
def test_plan_market_rejects_bad_input_naming_the_field(kwargs, field):
    args = {"taker_side": BUY, "quantity": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        make_book().plan_market(**args)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.depth("asks"), "side"),
        (lambda b: b.depth(BUY, levels=-1), "levels"),
        (lambda b: b.depth(BUY, levels=2.0), "levels"),
        (lambda b: b.volume_within("bids", 100.0), "side"),
        (lambda b: b.volume_within(BUY, 0.0), "price_limit"),
        (lambda b: b.volume_within(BUY, math.nan), "price_limit"),
    ],
)
def test_market_data_queries_reject_bad_input_naming_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call(make_book())


# ---------------------------------------------------------------- random operations

PRICES = [98.0, 98.5, 99.0, 99.5, 100.0, 100.5, 101.0, 101.5, 102.0]
ACCOUNTS = range(4)
quantities = st.one_of(
    st.sampled_from([0.1, 0.2, 0.3, 1 / 3, 0.7, 1.0, 2.5, 1e-3]),
    st.floats(min_value=1e-6, max_value=50.0, allow_nan=False, allow_infinity=False),
)


def reference_plan(model, taker_side, quantity, limit, exclude):
    """Independent price-time walk in exact rational arithmetic."""
    maker_side = SELL if taker_side == BUY else BUY
    sign = 1 if maker_side == SELL else -1
    candidates = sorted(
        (o for o in model.values() if o["side"] == maker_side and o["account"] != exclude),
        key=lambda o: (sign * o["price"], o["seq"]),
    )
    remaining = Fraction(quantity)
    fills = []
    for o in candidates:
        if limit is not None and sign * o["price"] > sign * limit:
            break
        rounded = float(remaining)
        if o["qty"] <= rounded:
            fills.append(Fill(o["id"], o["account"], o["price"], o["qty"]))
            remaining -= Fraction(o["qty"])
            if remaining <= 0:
                break
        else:
            fills.append(Fill(o["id"], o["account"], o["price"], rounded))
            break
    return fills


class BookMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.book = OrderBook()
        self.model: dict[int, dict] = {}
        self.next_id = 0

    @rule(
        account=st.sampled_from(ACCOUNTS),
        side=st.sampled_from([BUY, SELL]),
        price=st.sampled_from(PRICES),
        qty=quantities,
    )
    def add(self, account, side, price, qty):
        oid = self.next_id
        self.next_id += 1
        self.book.add(oid, account, side, price, qty)
        self.model[oid] = {
            "id": oid, "account": account, "side": side, "price": price, "qty": qty, "seq": oid,
        }  # fmt: skip

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data):
        oid = data.draw(st.sampled_from(sorted(self.model)))
        o = self.model.pop(oid)
        assert self.book.cancel(oid) == (o["account"], o["side"], o["price"], o["qty"])

    @rule(account=st.sampled_from(ACCOUNTS))
    def cancel_account(self, account):
        expected = [
            (o["id"], o["side"], o["price"], o["qty"])
            for o in self.model.values()
            if o["account"] == account
        ]
        assert sorted(self.book.cancel_account(account)) == sorted(expected)
        for oid, *_ in expected:
            del self.model[oid]

    @rule(
        taker_side=st.sampled_from([BUY, SELL]),
        qty=quantities,
        limit=st.none() | st.sampled_from(PRICES),
        exclude=st.none() | st.sampled_from(ACCOUNTS),
    )
    def plan_and_apply(self, taker_side, qty, limit, exclude):
        before = snapshot(self.book)
        fills = self.book.plan_market(taker_side, qty, limit_price=limit, exclude_account=exclude)
        assert snapshot(self.book) == before
        assert fills == reference_plan(self.model, taker_side, qty, limit, exclude)

        available = math.fsum(
            o["qty"]
            for o in self.model.values()
            if o["side"] != taker_side
            and o["account"] != exclude
            and (
                limit is None or (o["price"] <= limit if taker_side == BUY else o["price"] >= limit)
            )
        )
        filled = math.fsum(f.quantity for f in fills)
        target = min(qty, available)
        assert abs(filled - target) <= math.ulp(target)

        self.book.apply(fills)
        for f in fills:
            o = self.model[f.order_id]
            left = o["qty"] - f.quantity
            if left <= DUST_REL_TOL * o["qty"]:
                del self.model[f.order_id]
            else:
                o["qty"] = left

    @invariant()
    def consistent(self):
        check_invariants(self.book)
        resting = {o.order_id: o for side in (BUY, SELL) for o in self.book.orders(side)}
        assert set(resting) == set(self.model)
        for oid, o in self.model.items():
            rec = resting[oid]
            assert (rec.account, rec.side, rec.price, rec.quantity) == (
                o["account"], o["side"], o["price"], o["qty"],
            )  # fmt: skip
        for side in (BUY, SELL):
            for price in {o.price for o in self.book.orders(side)}:
                level = [o for o in self.book.orders(side) if o.price == price]
                seqs = [self.model[o.order_id]["seq"] for o in level]
                assert seqs == sorted(seqs), "time priority broken"


BookMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookMachine = BookMachine.TestCase

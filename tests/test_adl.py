"""Specification tests for perpabm.adl: ranking, the queue, the lights, and every step of
an ADL round the liquidator takes (queue order, solvency cap, allocations, the socialised
loss)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpabm import adl
from perpabm.adl import (
    BUILTIN_RULES,
    affordable,
    allocate,
    close_solvent_first,
    haircuts,
    indicator_lights,
    open_units,
    overshoot,
    pro_rata_close,
    profit_and_leverage,
    queue_close,
    queue_order,
    register_rule,
    resolve_rule,
    rules,
    score,
    socialized_charges,
    top_winner,
)

BUILTINS = ("binance", "hyperliquid", "leverage", "pnl_leverage", "profit", "random", "size")

# A small book at mark 110 (mmr 0.01 where a rule needs it).
#         size   entry  collateral  uPnL  equity   notional
#   A      2     100     50          +20    70      220     profitable long
#   B     −2     100    100          −20    80      220     losing short
#   C     −1     120     30          +10    40      110     profitable short
#   D      1     130     10          −20   −10      110     bankrupt long
#   E      0     100     10            0    10        0     flat
#   F      1     110     55            0    55      110     break-even long
MARK = 110.0
SIZE = np.array([2.0, -2.0, -1.0, 1.0, 0.0, 1.0])
ENTRY = np.array([100.0, 100.0, 120.0, 130.0, 100.0, 110.0])
COLLATERAL = np.array([50.0, 100.0, 30.0, 10.0, 10.0, 55.0])
NEG_INF = -np.inf


def book_scores(rule, **kwargs):
    return score(rule, SIZE, ENTRY, MARK, COLLATERAL, 0.01, **kwargs)


@pytest.fixture
def private_registry(monkeypatch):
    """Give each test that registers rules its own copy of the registry."""
    monkeypatch.setattr(adl, "_REGISTERED", {})


# ------------------------------------------------------------------- score rules


def test_rules_lists_the_builtins_sorted():
    assert rules() == BUILTIN_RULES == BUILTINS


def test_pnl_leverage_rule():
    expected = [
        0.1 * 220 / 70,  # A: PnL% = 10·2/200 = 0.1 > 0, × leverage 220/70
        -0.1 / (220 / 80),  # B: PnL% = −0.1 ≤ 0, ÷ leverage 220/80 = 2.75
        (10 / 120) * (110 / 40),  # C: PnL% = (110 − 120)·(−1)/120 = 1/12, × leverage 2.75
        NEG_INF,  # D: bankrupt
        NEG_INF,  # E: flat
        0.0,  # F: PnL% = 0 → 0/2 = 0
    ]
    np.testing.assert_allclose(book_scores("pnl_leverage"), expected)


def test_binance_rule():
    expected = [
        (20 / 50) * (2 * 110 * 0.01 / 70),  # A: max(0, 20)/max(1, 50) × 2.2/(50 + 20)
        0.0,  # B: losing, max(0, −20) = 0
        (10 / 30) * (110 * 0.01 / 40),  # C: 10/30 × 1.1/(30 + 10)
        NEG_INF,
        NEG_INF,
        0.0,  # F: uPnL 0
    ]
    np.testing.assert_allclose(book_scores("binance"), expected)


def test_binance_rule_floors_the_wallet_balance_at_one():
    # long 1 at 100, collateral 0.5, mark 110: uPnL 10, PnlPercent = 10/max(1, 0.5) = 10,
    # MarginRatio = 1·110·0.01/(0.5 + 10) = 1.1/10.5
    assert score("binance", 1, 100, 110, 0.5, 0.01) == pytest.approx(10 * 1.1 / 10.5)


def test_binance_rule_takes_mmr_per_position():
    # A and C from the book with mmr 0.02 and 0.04: doubles and quadruples the margin ratio
    scores = score("binance", SIZE[[0, 2]], ENTRY[[0, 2]], MARK, COLLATERAL[[0, 2]], [0.02, 0.04])
    np.testing.assert_allclose(scores, [0.4 * 4.4 / 70, (1 / 3) * 4.4 / 40])


def test_hyperliquid_rule_mirrors_the_price_ratio_for_shorts():
    expected = [
        (110 / 100) * (220 / 70),  # A long: (mark/entry)·(notional/equity)
        (100 / 110) * (220 / 80),  # B short: (entry/mark)·(notional/equity) = 2.5
        (120 / 110) * (110 / 40),  # C short: = 3
        NEG_INF,
        NEG_INF,
        1.0 * (110 / 55),  # F: = 2
    ]
    np.testing.assert_allclose(book_scores("hyperliquid"), expected)


def test_profit_rule_is_unrealized_pnl():
    np.testing.assert_allclose(book_scores("profit"), [20, -20, 10, NEG_INF, NEG_INF, 0])


def test_leverage_rule_is_effective_leverage():
    expected = [220 / 70, 220 / 80, 110 / 40, NEG_INF, NEG_INF, 110 / 55]
    np.testing.assert_allclose(book_scores("leverage"), expected)


def test_size_rule_is_notional():
    np.testing.assert_allclose(book_scores("size"), [220, 220, 110, NEG_INF, NEG_INF, 110])


@pytest.mark.parametrize("rule", BUILTIN_RULES)
def test_flat_and_bankrupt_positions_score_minus_infinity(rule):
    scores = book_scores(rule, rng=np.random.default_rng(0))
    assert scores[3] == NEG_INF  # D: equity −10
    assert scores[4] == NEG_INF  # E: flat


@pytest.mark.parametrize("rule", BUILTIN_RULES)
def test_zero_equity_is_bankrupt(rule):
    # long 1 at 130, collateral 20, mark 110: equity 20 − 20 = 0
    assert score(rule, 1, 130, 110, 20, 0.01, rng=np.random.default_rng(0)) == NEG_INF


@pytest.mark.parametrize("rule", BUILTIN_RULES)
def test_live_positions_score_finite_even_at_zero_pnl(rule):
    scores = book_scores(rule, rng=np.random.default_rng(0))
    assert np.all(np.isfinite(scores[[0, 1, 2, 5]]))


def test_random_rule_is_reproducible_with_a_seeded_rng():
    first = book_scores("random", rng=np.random.default_rng(42))
    again = book_scores("random", rng=np.random.default_rng(42))
    other = book_scores("random", rng=np.random.default_rng(43))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    live = first[[0, 1, 2, 5]]
    assert np.all((live >= 0) & (live < 1))


def test_random_rule_draws_one_number_per_position():
    # the flat/bankrupt entries still consume a draw, so the stream stays aligned
    draws = np.random.default_rng(5).random(SIZE.shape)
    scores = book_scores("random", rng=np.random.default_rng(5))
    np.testing.assert_array_equal(scores[[0, 1, 2, 5]], draws[[0, 1, 2, 5]])


def test_random_rule_needs_an_rng():
    with pytest.raises(ValueError, match=r"^rng must be a numpy.random.Generator"):
        book_scores("random")


def test_rng_must_be_a_generator():
    with pytest.raises(ValueError, match=r"^rng must be a numpy.random.Generator"):
        book_scores("random", rng=42)


def test_score_broadcasts_a_scalar_size_against_price_arrays():
    # long 1 at 100, collateral 50 at marks 90 and 110: uPnL −10 and +10
    np.testing.assert_allclose(score("profit", 1, 100, np.array([90.0, 110.0]), 50), [-10, 10])


def test_unknown_rule_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"^rule must be one of .*did you mean 'pnl_leverage'"):
        book_scores("pnl_levrage")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mark_price": 0.0}, "^mark_price must be > 0"),
        ({"entry_price": np.array([100.0, 0.0])}, "^entry_price must be > 0"),
        ({"mmr": 1.0}, r"^mmr must be in \[0, 1\)"),
    ],
)
def test_score_rejects_bad_prices_and_mmr(kwargs, message):
    args = {"size": [1.0, -1.0], "entry_price": 100.0, "mark_price": 110.0, "collateral": 50.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        score("profit", **args)


def test_flat_positions_may_have_no_entry_price():
    assert score("profit", [0.0, 1.0], [0.0, 100.0], 110, 50)[0] == NEG_INF


# ---------------------------------------------------------------- custom rules


def collateral_rule(size, entry_price, mark_price, collateral, mmr, rng):
    """A custom rule for the tests: rank by collateral."""
    assert size.shape == collateral.shape == mmr.shape  # broadcast for the rule
    return collateral


def test_a_custom_rule_is_a_function_passed_as_the_rule():
    # the rule returns collateral; flat and bankrupt entries are still −inf
    np.testing.assert_allclose(book_scores(collateral_rule), [50, 100, 30, NEG_INF, NEG_INF, 55])


def test_a_custom_rule_is_not_a_builtin_name():
    assert "collateral_rule" not in rules()


def test_resolve_rule_finds_a_builtin_by_name():
    np.testing.assert_array_equal(book_scores(resolve_rule("profit")), book_scores("profit"))


def test_resolve_rule_finds_a_custom_rule_by_its_name():
    assert resolve_rule("mine", (("mine", collateral_rule),)) is collateral_rule


def test_resolve_rule_imports_a_rule_given_as_a_path():
    assert resolve_rule("mine", (("mine", "test_adl:collateral_rule"),)).__name__ == (
        "collateral_rule")


def test_resolve_rule_names_a_path_that_does_not_import():
    with pytest.raises(ValueError, match=r"^adl_rules\['mine'\]: cannot import"):
        resolve_rule("mine", (("mine", "test_adl:no_such_rule"),))


def test_resolve_rule_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"^adl_rule must be one of .*did you mean 'mine'"):
        resolve_rule("mien", (("mine", collateral_rule),))


@pytest.mark.parametrize(("name", "is_path"), [
    ("pkg.rules:favour_whales", True), ("rules:Ranker.score", True), ("profit", False),
    ("a:b:c", False), ("pkg.rules:", False), ("1pkg:fn", False)])
def test_is_import_path_reads_package_module_function(name, is_path):
    assert adl.is_import_path(name) is is_path


def test_register_rule_adds_a_usable_rule(private_registry):
    def collateral_rule(size, entry_price, mark_price, collateral, mmr, rng):
        assert size.shape == collateral.shape == mmr.shape  # broadcast for the rule
        return collateral

    register_rule("collateral", collateral_rule)
    assert "collateral" in rules()
    assert rules() == tuple(sorted(rules()))
    # the rule returns collateral; flat and bankrupt entries are still −inf
    np.testing.assert_allclose(book_scores("collateral"), [50, 100, 30, NEG_INF, NEG_INF, 55])


def test_register_rule_rejects_a_builtin_name(private_registry):
    with pytest.raises(ValueError, match=r"^name 'profit' is already an ADL rule"):
        register_rule("profit", lambda *args: args[0])


def test_register_rule_rejects_a_registered_name(private_registry):
    register_rule("mine", lambda size, *rest: size)
    with pytest.raises(ValueError, match=r"^name 'mine' is already an ADL rule"):
        register_rule("mine", lambda size, *rest: size)


def test_register_rule_can_replace_a_builtin(private_registry):
    register_rule("profit", lambda size, *rest: np.full(size.shape, 7.0), replace=True)
    assert book_scores("profit")[0] == 7.0


@pytest.mark.parametrize("name", ["", 3])
def test_register_rule_rejects_a_bad_name(private_registry, name):
    with pytest.raises(ValueError, match=r"^name must be a non-empty string"):
        register_rule(name, lambda size, *rest: size)


def test_register_rule_rejects_a_non_callable(private_registry):
    with pytest.raises(ValueError, match=r"^fn must be callable"):
        register_rule("bad", 3.0)


def test_a_registered_rule_is_not_an_exchange_rule(private_registry):
    # An exchange takes custom rules from its config alone: registering one here does
    # not make a config valid that names it.
    from perpabm import ConfigError, ExchangeConfig

    register_rule("mine", collateral_rule)
    assert "mine" in rules() and "mine" not in BUILTIN_RULES
    with pytest.raises(ConfigError, match=r"^exchange\.adl_rule "):
        ExchangeConfig(adl_rule="mine")
    assert ExchangeConfig(adl_rule="mine", adl_rules={"mine": collateral_rule}).adl_rule == "mine"


def test_custom_rule_must_return_the_input_shape():
    with pytest.raises(ValueError, match=r"^ADL rule test_adl:.*<lambda> must return one score "
                                         r"per position, of shape \(6,\); got shape \(\)"):
        book_scores(lambda *args: 1.0)


def nan_for_shorts(size, entry_price, mark_price, collateral, mmr, rng):
    """A custom rule for the tests: collateral for longs, NaN for shorts (B and C)."""
    return np.where(size < 0, np.nan, collateral)


def test_custom_rule_returning_nan_for_a_live_position_is_refused_naming_the_rule():
    # B and C are short and live; D (bankrupt) and E (flat) are short of nothing.
    with pytest.raises(ValueError, match=r"^ADL rule test_adl:nan_for_shorts returned NaN "
                                         r"for 2 of 4 live positions \(the first at place 1\)"):
        book_scores(nan_for_shorts)


def test_registered_rule_returning_nan_is_refused_naming_its_name(private_registry):
    register_rule("shaky", nan_for_shorts)
    with pytest.raises(ValueError, match=r"^ADL rule 'shaky' returned NaN"):
        book_scores("shaky")


def test_custom_rule_may_return_nan_where_the_position_is_flat_or_bankrupt():
    # D (bankrupt) and E (flat) score −inf whatever the rule says of them.
    def nan_for_dead(size, entry_price, mark_price, collateral, mmr, rng):
        return np.where((size == 0) | (collateral == 10.0), np.nan, collateral)

    np.testing.assert_array_equal(book_scores(nan_for_dead), [50, 100, 30, NEG_INF, NEG_INF, 55])


def test_custom_rule_may_score_plus_or_minus_infinity():
    def extremes(size, entry_price, mark_price, collateral, mmr, rng):
        return np.where(size > 0, np.inf, -np.inf)

    np.testing.assert_array_equal(book_scores(extremes),
                                  [np.inf, NEG_INF, NEG_INF, NEG_INF, NEG_INF, np.inf])


@pytest.mark.parametrize("returned", [
    pytest.param(["1"] * 6, id="strings of numbers"),
    pytest.param([None] * 6, id="None"),
    pytest.param(np.ones(6, dtype=complex), id="complex"),
    pytest.param(np.array(["2024-01-01"] * 6, dtype="datetime64[D]"), id="dates"),
])
def test_custom_rule_returning_non_numbers_is_refused_naming_the_rule(returned):
    def odd(size, entry_price, mark_price, collateral, mmr, rng):
        return returned

    with pytest.raises(ValueError, match=r"^ADL rule test_adl:.*odd must return real numbers"):
        book_scores(odd)


def test_custom_rule_may_return_whole_numbers_or_flags():
    def is_long(size, entry_price, mark_price, collateral, mmr, rng):
        return size > 0

    np.testing.assert_array_equal(book_scores(is_long), [1, 0, 0, NEG_INF, NEG_INF, 1])


def test_custom_rule_receives_the_rng():
    def noise(size, *rest):
        return rest[-1].normal(size=size.shape)

    a = book_scores(noise, rng=np.random.default_rng(1))
    b = book_scores(noise, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ queue_close


def test_queue_closes_highest_scores_fully_and_the_last_partially():
    # order: #1 (score 4, q 3), #2 (4, q 4), #0 (1, q 5), #3 (0, q 2); amount 9:
    # 3 + 4 = 7 closed fully, then 9 − 7 = 2 of #0
    closed = queue_close([5.0, 3.0, 4.0, 2.0], [1.0, 4.0, 4.0, 0.0], 9.0)
    np.testing.assert_allclose(closed, [2, 3, 4, 0])


def test_queue_breaks_ties_by_lower_index_first():
    # equal scores: #0 before #1 before #2; amount 1.5 → 1 from #0, 0.5 from #1
    np.testing.assert_allclose(queue_close([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 1.5), [1, 0.5, 0])


def test_queue_amount_zero_closes_nothing():
    np.testing.assert_array_equal(queue_close([5.0, 3.0], [1.0, 2.0], 0.0), [0, 0])


@pytest.mark.parametrize("amount", [8.0, 100.0])
def test_queue_amount_at_or_above_total_closes_everything(amount):
    np.testing.assert_array_equal(queue_close([5.0, 3.0], [1.0, 2.0], amount), [5, 3])


def test_queue_never_closes_minus_infinity_positions():
    # #1 is −inf (flat/bankrupt): even an amount above the total leaves it open
    closed = queue_close([5.0, 3.0, 2.0], [1.0, NEG_INF, 0.0], 100.0)
    np.testing.assert_array_equal(closed, [5, 0, 2])


def test_queue_keeps_the_shape_of_quantities():
    closed = queue_close([[1.0, 2.0], [3.0, 4.0]], [[4.0, 3.0], [2.0, 1.0]], 4.0)
    np.testing.assert_allclose(closed, [[1, 2], [1, 0]])


def test_queue_of_no_positions_is_empty():
    assert queue_close([], [], 3.0).shape == (0,)


@given(
    st.lists(
        st.tuples(st.floats(0, 1e6), st.floats(-10, 10)),
        min_size=1,
        max_size=30,
    ),
    st.floats(0, 3e7),
)
def test_queue_closes_min_of_amount_and_total_within_each_quantity(rows, amount):
    quantities, scores = (np.array(column) for column in zip(*rows, strict=True))
    closed = queue_close(quantities, scores, amount)
    assert closed.sum() == pytest.approx(min(amount, quantities.sum()), rel=1e-12, abs=1e-6)
    assert np.all((closed >= 0) & (closed <= quantities))
    assert np.count_nonzero((closed > 0) & (closed < quantities)) <= 1  # one partial at most


@pytest.mark.parametrize("amount", [-1.0, np.nan, [1.0, 2.0]])
def test_queue_rejects_a_bad_amount(amount):
    with pytest.raises(ValueError, match=r"^amount must be a scalar >= 0"):
        queue_close([1.0, 2.0], [1.0, 2.0], amount)


@pytest.mark.parametrize("quantities", [[1.0, -2.0], [1.0, np.nan]])
def test_queue_rejects_negative_quantities(quantities):
    with pytest.raises(ValueError, match=r"^quantities must be >= 0"):
        queue_close(quantities, [1.0, 2.0], 1.0)


def test_queue_rejects_scores_of_another_shape():
    with pytest.raises(ValueError, match=r"^scores must have the same shape"):
        queue_close([1.0, 2.0], [1.0, 2.0, 3.0], 1.0)


def test_queue_rejects_nan_scores():
    with pytest.raises(ValueError, match=r"^scores must not be NaN"):
        queue_close([1.0, 2.0], [1.0, np.nan], 1.0)


# ------------------------------------------------------------- indicator lights


def test_indicator_lights_bitmex_example():
    # BitMEX "Auto-Deleveraging Further Information": six longs (quantity, ranking).
    quantities = [10.0, 10.0, 20.0, 30.0, 20.0, 10.0]  # accounts 1..6
    scores = [3.0, 6.0, 1.0, 4.0, 5.0, 2.0]
    # from the head: account 2 (6), 5 (5), 4 (4), 1 (3), 6 (2), 3 (1); total 100
    # cumulative quantity incl. itself: 10, 30, 60, 70, 80, 100
    # rounded up to 20 %: 20 %, 40 %, 60 %, 80 %, 80 %, 100 % (BitMEX's "Percentile")
    # lights = 5 + 1 − percentile/20 %: 5, 4, 3, 2, 2, 1
    # by account 1..6: 2, 5, 1, 3, 4, 2
    np.testing.assert_array_equal(indicator_lights(quantities, scores), [2, 5, 1, 3, 4, 2])


def test_indicator_lights_hand_example():
    quantities = [1.0, 1.0, 2.0, 4.0, 2.0]
    scores = [0.5, 3.0, 1.0, 2.0, -1.0]
    # from the head: #1 (q 1), #3 (4), #2 (2), #0 (1), #4 (2); total 10
    # cumulative 1, 5, 7, 8, 10 → ceil(5·c/10) = 1, 3, 4, 4, 5 → 6 − that = 5, 3, 2, 2, 1
    np.testing.assert_array_equal(indicator_lights(quantities, scores), [2, 5, 2, 3, 1])


def test_indicator_lights_head_within_the_first_bucket_shows_all_buckets():
    lights = indicator_lights([1.0, 1.0, 1.0], [0.0, 9.0, 1.0], buckets=3)
    # from the head #1, #2, #0: cumulative 1/3, 2/3, 1 → step 1, 2, 3 → 3, 2, 1 lights
    np.testing.assert_array_equal(lights, [1, 3, 2])


def test_indicator_lights_head_larger_than_a_bucket_shows_fewer_lights():
    # As BitMEX's table places account 5 (second in line) at 40 %: the head of the
    # queue holding 60 % of the quantity sits at ceil(5·0.6) = 3 → 5 + 1 − 3 = 3
    # lights; the other, at 100 %, shows 1.
    np.testing.assert_array_equal(indicator_lights([6.0, 4.0], [2.0, 1.0]), [3, 1])


def test_indicator_lights_ties_follow_the_queue_order():
    # tied: the queue takes #0 first: from the head #0 then #1,
    # cumulative 0.5, 1 → ceil(2·0.5) = 1, ceil(2·1) = 2 → 2, 1 lights
    np.testing.assert_array_equal(indicator_lights([1.0, 1.0], [3.0, 3.0], buckets=2), [2, 1])


def test_indicator_lights_all_zero_quantities_show_one_light():
    np.testing.assert_array_equal(indicator_lights([0.0, 0.0, 0.0], [1.0, 2.0, 3.0]), [1, 1, 1])


def test_indicator_lights_zero_quantity_at_the_bottom_shows_one_light():
    # from the head #1 (cumulative 5/5 → step 5 → 1 light), #0 (5/5 → 1 light)
    np.testing.assert_array_equal(indicator_lights([0.0, 5.0], [1.0, 2.0]), [1, 1])


def test_indicator_lights_zero_quantity_at_the_head_shows_all_lights():
    # from the head #1 (q 0, cumulative 0 → step clipped to 1 → 5 lights), #0 (1 light)
    np.testing.assert_array_equal(indicator_lights([5.0, 0.0], [1.0, 2.0]), [1, 5])


@pytest.mark.parametrize("buckets", [0, 2.5, True])
def test_indicator_lights_rejects_bad_buckets(buckets):
    with pytest.raises(ValueError, match=r"^buckets must be an integer >= 1"):
        indicator_lights([1.0], [1.0], buckets=buckets)


# ------------------------------------------------------------- an ADL round, in steps


def test_queue_order_puts_higher_scores_first_and_ties_to_the_lower_id():
    # scores [1, 3, 3] of accounts [7, 9, 8]: 8 and 9 tie at 3, the lower id 8 goes first
    order = queue_order(np.array([1.0, 3.0, 3.0]), np.zeros(3, dtype=bool), np.array([7, 9, 8]))
    assert order.tolist() == [2, 1, 0]


def test_queue_order_puts_exempt_accounts_last_whatever_their_score():
    order = queue_order(np.array([9.0, 1.0]), np.array([True, False]), np.array([0, 1]))
    assert order.tolist() == [1, 0]


def test_queue_order_ranks_a_nan_score_as_minus_infinity():
    order = queue_order(np.array([np.nan, -5.0]), np.zeros(2, dtype=bool), np.array([0, 1]))
    assert order.tolist() == [1, 0]


def test_affordable_is_equity_over_the_loss_per_unit():
    # short 10 at 100, collateral 50, mark 90: equity 50 + 100 = 150; closed at 95 each
    # unit costs 95 − 90 = 5 → 150 / 5 = 30 units
    assert affordable(np.array([-10.0]), np.array([100.0]), np.array([50.0]), 90.0,
                      95.0).tolist() == [30.0]


def test_affordable_is_infinite_where_the_close_costs_nothing():
    # the same short closed at 85, below the mark: it gains 5 a unit
    assert affordable(np.array([-10.0]), np.array([100.0]), np.array([50.0]), 90.0,
                      85.0).tolist() == [np.inf]


def test_affordable_is_zero_for_an_account_already_without_equity():
    # long 1 at 100 with 5 of collateral, mark 90: equity −5 → nothing affordable at 95
    assert affordable(np.array([1.0]), np.array([100.0]), np.array([5.0]), 90.0,
                      80.0).tolist() == [0.0]


def test_pro_rata_close_splits_in_proportion():
    np.testing.assert_allclose(pro_rata_close(np.array([1.0, 3.0]), np.zeros(2, dtype=bool),
                                              2.0), [0.5, 1.5])


def test_pro_rata_close_takes_exempt_positions_only_after_the_others():
    # 5 to close: the non-exempt 4 first, then 1 of the exempt 8
    closes = pro_rata_close(np.array([4.0, 8.0]), np.array([False, True]), 5.0)
    np.testing.assert_allclose(closes, [4.0, 1.0])


def test_pro_rata_close_adds_up_to_the_amount_exactly():
    quantities = np.array([0.1, 0.2, 0.3, 0.7])
    assert pro_rata_close(quantities, np.zeros(4, dtype=bool), 0.9).sum() == 0.9


def test_allocate_queue_takes_the_order_given():
    np.testing.assert_allclose(allocate("queue", np.array([2.0, 2.0, 2.0]),
                                        np.zeros(3, dtype=bool), 3.0), [2.0, 1.0, 0.0])


def test_allocate_rejects_an_unknown_allocation():
    with pytest.raises(ValueError, match=r"^allocation must be one of .*did you mean 'queue'"):
        allocate("queeu", np.array([1.0]), np.zeros(1, dtype=bool), 1.0)


def test_close_solvent_first_stays_within_solvency_when_that_is_enough():
    # queue, quantities [4, 4], solvent [1, 4], amount 5 → [1, 4]
    closes = close_solvent_first("queue", np.array([4.0, 4.0]), np.array([1.0, 4.0]),
                                 np.zeros(2, dtype=bool), 5.0)
    np.testing.assert_allclose(closes, [1.0, 4.0])


def test_close_solvent_first_goes_beyond_solvency_only_for_the_shortfall():
    # amount 6: [1, 4] solvently, then the shortfall 1 in the same order → [2, 4]
    closes = close_solvent_first("queue", np.array([4.0, 4.0]), np.array([1.0, 4.0]),
                                 np.zeros(2, dtype=bool), 6.0)
    np.testing.assert_allclose(closes, [2.0, 4.0])


def test_profit_and_leverage_before_the_close():
    # short 10 at 100, collateral 50, mark 90, closing 4: profit 4 · 10 = 40; leverage
    # 900 / (50 + 100) = 6
    profit, leverage = profit_and_leverage(np.array([-10.0]), np.array([100.0]),
                                           np.array([50.0]), 90.0, np.array([4.0]))
    assert (profit.tolist(), leverage.tolist()) == ([40.0], [6.0])


def test_top_winner_is_the_largest_profit():
    # at mark 110: A +20, B −20, C +10 → account id of A
    assert top_winner(np.array([5, 6, 7]), SIZE[:3], ENTRY[:3], MARK) == 5


def test_top_winner_is_none_when_nobody_is_in_profit():
    assert top_winner(np.array([6]), SIZE[1:2], ENTRY[1:2], MARK) == -1
    assert top_winner(np.array([], dtype=np.int64), SIZE[:0], ENTRY[:0], MARK) == -1


def test_open_units_leave_out_the_bankrupt_position_and_rounding_dust():
    units = open_units(np.array([2.0, -3.0, 1e-15, -5.0]), 3)
    assert units.tolist() == [2.0, 3.0, 0.0, 0.0]


def test_socialized_charges_spread_the_deficit_per_unit():
    # units [2, 0, 6], deficit 4: δ = 4 / 8 = 0.5; charges −1 and −3
    per_unit, charged, charges = socialized_charges(np.array([2.0, 0.0, 6.0]), 4.0)
    assert (per_unit, charged.tolist(), charges.tolist()) == (0.5, [0, 2], [-1.0, -3.0])


# --------------------------------------------------------------------- haircuts

POLICIES = ("capped_pro_rata", "leverage_pro_rata", "pro_rata", "queue")


def test_policies_lists_the_haircut_policies():
    assert adl.policies() == POLICIES


def test_vector_5_queue_haircut():
    # queue #1 (score 3), #0 (2), #2 (1); budget 7.5: #1 gives all 4,
    # #0 gives 7.5 − 4 = 3.5 of 8 = 0.4375, #2 nothing
    h = haircuts([8.0, 4.0, 0.5, 0.0, 0.0], 7.5, "queue", scores=[2.0, 3.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(h, [0.4375, 1, 0, 0, 0])


def test_queue_haircut_breaks_ties_by_lower_index_first():
    # #0 and #1 tie at score 5: #0 gives all 4, #1 gives 6 − 4 = 2 of 4 = 0.5
    h = haircuts([4.0, 4.0, 4.0], 6.0, "queue", scores=[5.0, 5.0, 1.0])
    np.testing.assert_allclose(h, [1, 0.5, 0])


def test_pro_rata_takes_the_same_fraction_from_every_winner():
    # U = 10 + 30 = 40, B = 10 → h = 10/40 = 0.25 for winners, 0 for the loser
    np.testing.assert_allclose(haircuts([10.0, -5.0, 30.0], 10.0, "pro_rata"), [0.25, 0, 0.25])


def test_leverage_pro_rata_without_saturation():
    # h = λ·s with λ·(1·10 + 2·10 + 4·10) = 15 → λ = 15/70
    h = haircuts([10.0, 10.0, 10.0], 15.0, "leverage_pro_rata", scores=[1.0, 2.0, 4.0])
    np.testing.assert_allclose(h, [15 / 70, 30 / 70, 60 / 70])


def test_leverage_pro_rata_saturates_the_most_levered_first():
    # λ = 20/70 would give #2 80/70 > 1, so #2 is capped at 1:
    # 10 + λ·(1·10 + 2·10) = 20 → λ = 1/3 → h = (1/3, 2/3, 1)
    h = haircuts([10.0, 10.0, 10.0], 20.0, "leverage_pro_rata", scores=[1.0, 2.0, 4.0])
    np.testing.assert_allclose(h, [1 / 3, 2 / 3, 1])


def test_leverage_pro_rata_never_cuts_a_zero_weight_winner():
    # capacity = 10 (only #0 has weight): budget 25 takes all of #0 and nothing of #1
    h = haircuts([10.0, 10.0], 25.0, "leverage_pro_rata", scores=[3.0, 0.0])
    np.testing.assert_allclose(h, [1, 0])


def test_capped_pro_rata_water_fills_up_to_each_cap():
    # η·30 = 10 would give η = 1/3 > β_0 = 0.2, so #0 is capped:
    # 0.2·10 + η·(10 + 10) = 10 → η = 0.4 (≤ 0.5, ≤ 1) → h = (0.2, 0.4, 0.4)
    h = haircuts([10.0, 10.0, 10.0], 10.0, "capped_pro_rata", caps=[0.2, 0.5, 1.0])
    np.testing.assert_allclose(h, [0.2, 0.4, 0.4])


def test_capped_pro_rata_with_default_caps_is_pro_rata():
    profits = [10.0, -5.0, 30.0, 2.0]
    np.testing.assert_allclose(
        haircuts(profits, 12.0, "capped_pro_rata"), haircuts(profits, 12.0, "pro_rata")
    )


def test_capped_pro_rata_accepts_a_scalar_cap():
    # capacity 0.5·40 = 20 < 30: everyone at the cap
    np.testing.assert_allclose(
        haircuts([10.0, 30.0], 30.0, "capped_pro_rata", caps=0.5), [0.5, 0.5]
    )


@pytest.mark.parametrize(
    ("policy", "kwargs", "expected"),
    [
        ("queue", {"scores": [1.0, 2.0, 3.0]}, [1, 0, 1]),
        ("pro_rata", {}, [1, 0, 1]),
        ("leverage_pro_rata", {"scores": [1.0, 2.0, 3.0]}, [1, 0, 1]),
        ("capped_pro_rata", {"caps": [0.3, 1.0, 0.6]}, [0.3, 0, 0.6]),
    ],
)
def test_budget_above_capacity_puts_every_winner_at_its_cap(policy, kwargs, expected):
    # winners 10 and 20 (capacity ≤ 30), loser −5; budget 1,000
    h = haircuts([10.0, -5.0, 20.0], 1000.0, policy, **kwargs)
    np.testing.assert_allclose(h, expected)


@pytest.mark.parametrize("policy", POLICIES)
def test_no_winners_means_no_haircuts(policy):
    h = haircuts([-1.0, 0.0, -3.0], 5.0, policy, scores=[1.0, 1.0, 1.0])
    np.testing.assert_array_equal(h, [0, 0, 0])


@pytest.mark.parametrize("policy", POLICIES)
def test_zero_budget_means_no_haircuts(policy):
    h = haircuts([4.0, 2.0], 0.0, policy, scores=[1.0, 2.0])
    np.testing.assert_array_equal(h, [0, 0])


def test_haircuts_keep_the_shape_of_profits():
    h = haircuts([[10.0, 30.0], [-1.0, 0.0]], 20.0, "pro_rata")
    np.testing.assert_allclose(h, [[0.5, 0.5], [0, 0]])


winnings_tables = st.lists(
    st.tuples(
        st.floats(-1e6, 1e6, allow_subnormal=False),  # profit
        st.floats(1e-3, 100) | st.just(0.0),  # score / weight
        st.floats(0, 1),  # cap
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.parametrize("policy", POLICIES)
@given(rows=winnings_tables, budget=st.floats(0, 3e7))
def test_haircuts_take_min_of_budget_and_capacity(policy, rows, budget):
    profits, scores, caps = (np.array(column) for column in zip(*rows, strict=True))
    h = haircuts(profits, budget, policy, scores=scores, caps=caps)
    winnings = np.maximum(profits, 0)
    capacity = {
        "queue": winnings.sum(),
        "pro_rata": winnings.sum(),
        "leverage_pro_rata": winnings[scores > 0].sum(),
        "capped_pro_rata": (caps * winnings).sum(),
    }[policy]
    assert np.all((h >= 0) & (h <= 1))
    assert np.all(h[profits <= 0] == 0)
    if policy == "capped_pro_rata":
        assert np.all(h <= caps)
    taken = (h * winnings).sum()
    assert taken == pytest.approx(min(budget, capacity), rel=1e-9, abs=1e-9 * winnings.sum())


@pytest.mark.parametrize("budget", [-1.0, np.nan])
def test_haircuts_reject_a_bad_budget(budget):
    with pytest.raises(ValueError, match=r"^budget must be a scalar >= 0"):
        haircuts([1.0], budget, "pro_rata")


def test_haircuts_reject_an_unknown_policy_with_a_suggestion():
    with pytest.raises(ValueError, match=r"^policy must be one of .*did you mean 'pro_rata'"):
        haircuts([1.0], 1.0, "prorata")


@pytest.mark.parametrize("policy", ["queue", "leverage_pro_rata"])
def test_haircuts_need_scores_for_ranked_policies(policy):
    with pytest.raises(ValueError, match=r"^scores are required"):
        haircuts([1.0, 2.0], 1.0, policy)


def test_leverage_pro_rata_rejects_negative_weights():
    with pytest.raises(ValueError, match=r"^scores must be finite and >= 0"):
        haircuts([1.0, 2.0], 1.0, "leverage_pro_rata", scores=[1.0, -1.0])


@pytest.mark.parametrize("caps", [[0.5, 1.5], [-0.1, 0.5], [0.5, 0.5, 0.5]])
def test_capped_pro_rata_rejects_bad_caps(caps):
    with pytest.raises(ValueError, match=r"^caps must"):
        haircuts([1.0, 2.0], 1.0, "capped_pro_rata", caps=caps)


def test_haircuts_reject_nan_profits():
    with pytest.raises(ValueError, match=r"^profits must not be NaN"):
        haircuts([1.0, np.nan], 1.0, "pro_rata")


# -------------------------------------------------------------------- overshoot


def test_overshoot_is_profit_taken_minus_deficit():
    # closing whole positions took 4 + 8 = 12 for a deficit of 7.5 → 4.5 too much
    assert overshoot([4.0, 8.0], 7.5) == pytest.approx(4.5)


def test_overshoot_sums_over_positions_per_path():
    # path 0: 3 − 3 = 0; path 1: 5 − 6 = −1 (deficit not covered)
    np.testing.assert_allclose(overshoot([[1.0, 2.0], [5.0, 0.0]], [3.0, 6.0]), [0, -1])

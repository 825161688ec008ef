"""Specification tests for perpabm.mechanics (margin formulas of a linear perpetual).

Vectors 1-4 are the venue-document examples of docs/mechanics.md ("Test vectors"), exact to
the cent.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpabm.mechanics import (
    bankruptcy_price,
    effective_leverage,
    equity,
    initial_margin,
    liquidation_price,
    liquidation_price_tiered,
    maintenance_margin,
    max_notional_for_margin,
    tier_of,
    tier_table,
    unrealized_pnl,
)

CENT = 0.005
HYPERLIQUID_BTC = [(0.0, 0.0125), (150e6, 0.025)]
# cums: 0; 100k·(0.02 − 0.01) = 1,000; 1,000 + 1M·(0.05 − 0.02) = 31,000
THREE_TIERS = [(0.0, 0.01), (100_000.0, 0.02), (1_000_000.0, 0.05)]


# ------------------------------------------------------------------ venue vectors


def test_vector_1_binance_isolated_long_liquidation_price():
    # (1,535,443.01 + 135,365 − 3,683.979·1,456.84) / (3,683.979·0.10 − 3,683.979)
    # = −3,696,159.96 / −3,315.58 = 1,114.78
    lp = liquidation_price(3683.979, 1456.84, 1_535_443.01, 0.10, 135_365)
    assert lp == pytest.approx(1114.78, abs=CENT)


def test_vector_2_dydx_isolated_short_liquidation_price():
    # (1,000 + 0 + 3·3,000) / (3·0.05 + 3) = 10,000 / 3.15 = 3,174.60
    lp = liquidation_price(-3, 3000, 1000, 0.05)
    assert lp == pytest.approx(3174.60, abs=CENT)


def test_vector_3_hyperliquid_tiered_maintenance_margin():
    # 200M·0.025 − 150M·(0.025 − 0.0125) = 5M − 1.875M = 3.125M
    assert maintenance_margin(200e6, HYPERLIQUID_BTC) == pytest.approx(3_125_000, abs=CENT)


def test_vector_4_bankruptcy_price_of_a_long():
    # 1,000 − 10,000/20 = 500
    assert bankruptcy_price(20, 1000, 10_000) == pytest.approx(500, abs=CENT)


# -------------------------------------------------------------- P&L and equity


def test_unrealized_pnl_long_and_short():
    # long: 2·(110 − 100) = 20; short: −2·(110 − 100) = −20
    np.testing.assert_allclose(unrealized_pnl([2, -2], 100, 110), [20, -20])


def test_unrealized_pnl_broadcasts_sizes_against_marks():
    # rows: marks 90, 110; columns: sizes +1, −1
    pnl = unrealized_pnl(np.array([1, -1]), 100, np.array([[90], [110]]))
    np.testing.assert_allclose(pnl, [[-10, 10], [10, -10]])


def test_scalar_inputs_give_a_scalar():
    result = unrealized_pnl(1, 100, 110)
    assert np.ndim(result) == 0
    assert isinstance(result, float)


def test_equity_adds_unrealized_pnl_to_collateral():
    # long: 50 + 2·(90 − 100) = 30; short: 50 − 2·(90 − 100) = 70
    np.testing.assert_allclose(equity(50, [2, -2], 100, 90), [30, 70])


# ------------------------------------------------------------- bankruptcy price


def test_bankruptcy_price_of_a_short():
    # 1,000 − 500/(−2) = 1,250
    assert bankruptcy_price(-2, 1000, 500) == pytest.approx(1250)


def test_equity_is_zero_at_the_bankruptcy_price():
    sizes = np.array([20, -3, 0.5])
    bp = bankruptcy_price(sizes, 1000, 300)
    np.testing.assert_allclose(equity(300, sizes, 1000, bp), 0, atol=1e-9)


def test_bankruptcy_price_is_nan_for_a_flat_account():
    bp = bankruptcy_price([0, 20], 1000, 10_000)
    assert np.isnan(bp[0])
    assert bp[1] == pytest.approx(500)


def test_unlevered_long_has_nonpositive_bankruptcy_price():
    # collateral 30,000 > notional 20·1,000: 1,000 − 30,000/20 = −500 (never bankrupt)
    assert bankruptcy_price(20, 1000, 30_000) == pytest.approx(-500)


# ------------------------------------------------------------ liquidation price


def test_liquidation_price_without_cum_of_a_long():
    # (100 − 1·1,000) / (1·0.05 − 1) = −900 / −0.95 = 947.368…
    assert liquidation_price(1, 1000, 100, 0.05) == pytest.approx(900 / 0.95)


@pytest.mark.parametrize("size", [3683.979, -3683.979, 2.0, -2.0])
def test_equity_equals_maintenance_margin_at_the_liquidation_price(size):
    mmr, cum = 0.10, 135_365.0
    lp = liquidation_price(size, 1456.84, 1_535_443.01, mmr, cum)
    maintenance = abs(size) * lp * mmr - cum
    assert equity(1_535_443.01, size, 1456.84, lp) == pytest.approx(maintenance, abs=1e-6)


def test_liquidation_price_is_nan_for_a_flat_account():
    lp = liquidation_price([0.0, -3.0], 3000, 1000, 0.05)
    assert np.isnan(lp[0])
    assert lp[1] == pytest.approx(3174.60, abs=CENT)


def test_liquidation_price_broadcasts_mmr_per_position():
    # long 1 at 1,000, collateral 100: (100 − 1,000)/(mmr − 1) for mmr 0.01 and 0.05
    lp = liquidation_price(1, 1000, 100, np.array([0.01, 0.05]))
    np.testing.assert_allclose(lp, [900 / 0.99, 900 / 0.95])


@pytest.mark.parametrize("mmr", [-0.01, 1.0, np.nan])
def test_liquidation_price_rejects_mmr_outside_0_1(mmr):
    with pytest.raises(ValueError, match=r"mmr must be in \[0, 1\)"):
        liquidation_price(1, 1000, 100, mmr)


# ------------------------------------------------------------------- tier table


def test_tier_table_cums_accumulate_floor_times_mmr_step():
    floors, mmrs, cums = tier_table(THREE_TIERS)
    np.testing.assert_array_equal(floors, [0, 100_000, 1_000_000])
    np.testing.assert_array_equal(mmrs, [0.01, 0.02, 0.05])
    # 0; 100k·0.01 = 1,000; 1,000 + 1M·0.03 = 31,000
    np.testing.assert_allclose(cums, [0, 1_000, 31_000])


def test_tier_table_accepts_a_single_float_mmr():
    floors, mmrs, cums = tier_table(0.05)
    assert (floors.tolist(), mmrs.tolist(), cums.tolist()) == ([0.0], [0.05], [0.0])


@pytest.mark.parametrize(
    "tiers",
    [
        [],  # empty
        [(0.0, 0.01, 5.0)],  # not pairs
        "0.01",  # not numbers
        [(10.0, 0.01)],  # first floor not 0
        [(0.0, 0.01), (100.0, 0.02), (100.0, 0.03)],  # floors not strictly ascending
        [(0.0, 0.01), (np.inf, 0.02)],  # infinite floor
        [(0.0, 0.0)],  # mmr 0
        [(0.0, 1.0)],  # mmr 1
        [(0.0, 0.02), (100.0, 0.01)],  # mmrs decreasing
        1.5,  # float mmr outside (0, 1)
    ],
)
def test_tier_table_rejects_malformed_tables(tiers):
    with pytest.raises(ValueError, match=r"^tiers"):
        tier_table(tiers)


def test_maintenance_margin_rejects_malformed_tiers():
    with pytest.raises(ValueError, match=r"^tiers"):
        maintenance_margin(1.0, [(0.0, 0.02), (100.0, 0.01)])


# ----------------------------------------------------------- maintenance margin


def test_maintenance_margin_single_float_mmr():
    # 1,000·0.05 = 50
    assert maintenance_margin(1000, 0.05) == pytest.approx(50)


def test_maintenance_margin_just_below_at_and_above_a_floor():
    below, at, above = maintenance_margin([150e6 - 1, 150e6, 150e6 + 1], HYPERLIQUID_BTC)
    # below: (150M − 1)·0.0125; at: 150M·0.025 − 1.875M = 1.875M; above: (150M + 1)·0.025 − 1.875M
    assert below == pytest.approx((150e6 - 1) * 0.0125)
    assert at == pytest.approx(1_875_000)
    assert above == pytest.approx((150e6 + 1) * 0.025 - 1_875_000)


def test_maintenance_margin_is_continuous_at_every_floor():
    floors, _, _ = tier_table(THREE_TIERS)
    eps = 1e-6
    left = maintenance_margin(floors[1:] - eps, THREE_TIERS)
    right = maintenance_margin(floors[1:], THREE_TIERS)
    np.testing.assert_allclose(left, right, atol=1e-6)


def test_maintenance_margin_equals_the_tier_lookup_on_a_large_array():
    notional = np.random.default_rng(7).uniform(0, 3_000_000, size=100_000)
    mmr, cum = tier_of(notional, THREE_TIERS)
    np.testing.assert_allclose(maintenance_margin(notional, THREE_TIERS), notional * mmr - cum)


def test_maintenance_margin_keeps_the_shape_of_notional():
    notional = np.array([[0.0, 50_000.0], [200_000.0, 2_000_000.0]])
    # 0; 500; 200k·0.02 − 1k = 3k; 2M·0.05 − 31k = 69k
    np.testing.assert_allclose(
        maintenance_margin(notional, THREE_TIERS), [[0, 500], [3_000, 69_000]]
    )


def test_maintenance_margin_rejects_negative_notional():
    with pytest.raises(ValueError, match=r"^notional must be >= 0"):
        maintenance_margin([1.0, -1.0], 0.05)


# ---------------------------------------------------------------------- tier_of


def test_tier_of_a_notional_on_a_floor_is_the_tier_starting_there():
    mmr, cum = tier_of([99_999.0, 100_000.0, 5e6], THREE_TIERS)
    np.testing.assert_allclose(mmr, [0.01, 0.02, 0.05])
    np.testing.assert_allclose(cum, [0, 1_000, 31_000])


def test_tier_of_scalar_gives_scalars():
    mmr, cum = tier_of(200e6, HYPERLIQUID_BTC)
    assert (mmr, cum) == (pytest.approx(0.025), pytest.approx(1_875_000))


# ------------------------------------------------------ tiered liquidation price


@pytest.mark.parametrize(
    ("size", "entry_price", "collateral"),
    [
        (100.0, 10_000.0, 50_000.0),  # long, LP in tier 2 (notional ≈ 968k)
        (-100.0, 10_000.0, 50_000.0),  # short, LP in tier 3 (notional ≈ 1.03M)
        (1_000.0, 10_000.0, 1_000_000.0),  # long, LP in tier 3
        (-5.0, 10_000.0, 1_000.0),  # short, LP in tier 1 (notional ≈ 51k)
    ],
)
def test_equity_equals_tiered_maintenance_margin_at_the_tiered_liquidation_price(
    size, entry_price, collateral
):
    lp = liquidation_price_tiered(size, entry_price, collateral, THREE_TIERS)
    maintenance = maintenance_margin(abs(size) * lp, THREE_TIERS)
    assert equity(collateral, size, entry_price, lp) == pytest.approx(maintenance, abs=1e-6)


def test_tiered_liquidation_price_uses_the_tier_at_that_price():
    # short −100 at 10,000, collateral 50,000: the top tier's formula gives
    # (50,000 + 31,000 + 1,000,000)/(100·0.05 + 100) = 1,081,000/105 = 10,295.24,
    # notional 1.03M ≥ 1M, so the top tier is the consistent one.
    lp = liquidation_price_tiered(-100, 10_000, 50_000, THREE_TIERS)
    mmr, cum = tier_of(100 * lp, THREE_TIERS)
    assert (mmr, cum) == (pytest.approx(0.05), pytest.approx(31_000))
    assert lp == pytest.approx(1_081_000 / 105)
    assert lp == pytest.approx(liquidation_price(-100, 10_000, 50_000, mmr, cum))


def test_tiered_liquidation_price_with_one_tier_is_the_plain_formula():
    sizes = np.array([3.0, -3.0, 0.0])
    tiered = liquidation_price_tiered(sizes, 3000, 1000, 0.05)
    np.testing.assert_allclose(tiered, liquidation_price(sizes, 3000, 1000, 0.05))
    assert np.isnan(tiered[2])


# ------------------------------------------------------ max notional for margin


def test_max_notional_inverts_vector_3():
    # MM(200M) = 3.125M, so 3.125M of margin carries exactly 200M
    assert max_notional_for_margin(3_125_000, HYPERLIQUID_BTC) == pytest.approx(200e6)


def test_max_notional_in_the_first_tier():
    # 500/0.01 = 50,000 (the other tiers allow more: (500 + 1,000)/0.02 = 75,000, ...)
    assert max_notional_for_margin(500, THREE_TIERS) == pytest.approx(50_000)


def test_max_notional_is_zero_for_nonpositive_margin():
    np.testing.assert_array_equal(max_notional_for_margin([0.0, -10.0], THREE_TIERS), [0, 0])


@given(st.floats(min_value=0, max_value=1e8, allow_nan=False))
def test_maintenance_margin_of_the_max_notional_is_the_margin(margin):
    notional = max_notional_for_margin(margin, THREE_TIERS)
    assert maintenance_margin(notional, THREE_TIERS) == pytest.approx(margin, rel=1e-12, abs=1e-9)


# ----------------------------------------------------------- leverage and margin


def test_effective_leverage_is_notional_over_equity():
    # |−2·110| / 55 = 4
    assert effective_leverage(-2, 110, 55) == pytest.approx(4)


def test_effective_leverage_is_infinite_without_equity_and_zero_when_flat():
    lev = effective_leverage([1.0, 1.0, 0.0, 0.0], 100, [0.0, -5.0, 0.0, 10.0])
    np.testing.assert_array_equal(lev, [np.inf, np.inf, 0.0, 0.0])


def test_initial_margin_is_notional_over_max_leverage():
    # 100,000/40 = 2,500 and 100,000/20 = 5,000
    np.testing.assert_allclose(initial_margin(100_000, [40, 20]), [2_500, 5_000])


@pytest.mark.parametrize("max_leverage", [0.0, -5.0, np.nan])
def test_initial_margin_rejects_nonpositive_max_leverage(max_leverage):
    with pytest.raises(ValueError, match=r"^max_leverage must be > 0"):
        initial_margin(100.0, max_leverage)


def test_initial_margin_rejects_negative_notional():
    with pytest.raises(ValueError, match=r"^notional must be >= 0"):
        initial_margin(-1.0, 10)

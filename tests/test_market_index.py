"""The exogenous index price (perpabm.market.index), read as a specification.

Floating-point equalities allow a relative 1e-12 (rounding of log/exp/cumsum).
Statistical checks use a fixed seed, so they are deterministic; each tolerance is a
multiple of the statistic's standard error (SE), written out in the test, never a bare
number. "4 SE" leaves a 6e-5 chance that an unlucky but correct seed fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from perpabm import ConfigError
from perpabm.config.market import MarketConfig, Shock
from perpabm.market import (
    DAYS_PER_YEAR,
    NATIVE_DT,
    bridge_log_returns,
    garch_t_log_returns,
    gbm_log_returns,
    index_log_returns,
    index_path,
    merton_log_returns,
    minute_log_returns,
    regime_log_returns,
    replay_log_returns,
    shock_log_returns,
)

MINUTE = 1.0 / (365.0 * 24.0 * 60.0)  # one step of one minute, in years
DAY = 1.0 / 365.0
RANDOM_PROCESSES = ("gbm", "merton", "garch_t", "regime")


def rng(seed: int = 12345) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_config(process: str) -> MarketConfig:
    # Merton needs jumps to differ from GBM; regime needs switches to show up in 1,440 steps.
    return MarketConfig(process=process, jump_intensity=20.0, calm_to_stressed=0.01)


def write(tmp_path, text: str | bytes, name: str = "prices.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def replay_config(tmp_path, prices, **changes) -> MarketConfig:
    csv = "price\n" + "".join(f"{p!r}\n" for p in prices)
    return MarketConfig(process="replay", replay=write(tmp_path, csv), **changes)


# --------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("process", RANDOM_PROCESSES)
def test_same_seed_gives_identical_returns(process):
    config = random_config(process)
    first = index_log_returns(config, 1440, rng(7))
    second = index_log_returns(config, 1440, rng(7))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("process", RANDOM_PROCESSES)
def test_different_seeds_give_different_returns(process):
    config = random_config(process)
    assert not np.array_equal(index_log_returns(config, 1440, rng(7)),
                              index_log_returns(config, 1440, rng(8)))


def test_same_seed_gives_identical_regime_path():
    args = (1440, MINUTE, 0.5, 2.0, 0.01, 0.05)
    returns_a, regime_a = regime_log_returns(*args, rng(3))
    returns_b, regime_b = regime_log_returns(*args, rng(3))
    np.testing.assert_array_equal(regime_a, regime_b)
    np.testing.assert_array_equal(returns_a, returns_b)


def test_replay_draws_nothing_from_the_generator(tmp_path):
    generator = rng(1)
    before = generator.bit_generator.state
    index_log_returns(replay_config(tmp_path, [100.0, 101.0, 99.0]), 2, generator)
    assert generator.bit_generator.state == before


# --------------------------------------------------------------------------- GBM


def test_gbm_log_returns_have_the_exact_mean_and_sd():
    # μ = 1, σ = 2 a year, daily steps: mean (μ − σ²/2)·dt = (1 − 2)/365 = −2.74e-3,
    # sd σ·√dt = 2/√365 = 0.1047. Over n = 10⁵ draws the mean's SE is sd/√n = 3.3e-4, the
    # sd's SE is sd/√(2n) = 2.3e-4. Dropping the −σ²/2 term would be off by 2/365 = 16 SE.
    n, drift, volatility = 100_000, 1.0, 2.0
    returns = gbm_log_returns(n, DAY, drift, volatility, rng())
    mean = (drift - volatility**2 / 2) * DAY
    sd = volatility * math.sqrt(DAY)
    assert abs(returns.mean() - mean) < 4 * sd / math.sqrt(n)
    assert abs(returns.std(ddof=1) - sd) < 4 * sd / math.sqrt(2 * n)


def test_gbm_returns_have_the_requested_shape():
    assert gbm_log_returns(1440, MINUTE, 0.0, 0.5, rng()).shape == (1440,)
    assert gbm_log_returns(0, MINUTE, 0.0, 0.5, rng()).shape == (0,)


# --------------------------------------------------------------------------- Merton


def test_merton_without_jumps_is_the_gbm_path_of_the_same_seed():
    # The diffusive normals are drawn first: switching jumps off keeps the common numbers.
    merton = merton_log_returns(1440, MINUTE, 0.1, 0.5, 0.0, -0.05, 0.1, rng(5))
    gbm = gbm_log_returns(1440, MINUTE, 0.1, 0.5, rng(5))
    np.testing.assert_array_equal(merton, gbm)


def test_merton_jump_count_over_a_long_horizon_is_poisson_intensity_times_time():
    # Jumps of exactly +1 in log price (jump_std 0) and a negligible diffusion
    # (σ·√dt = 1e-9/√365 ≈ 5e-11) make each step's jump count readable: round(r − c), where
    # c = −λ·(e¹ − 1)·dt is the compensator. λ = 50 a year over n = 10⁵ daily steps
    # (T = 273.97 years): λT = 13,698.6 jumps, Poisson SE √(λT) = 117.
    n, intensity = 100_000, 50.0
    returns = merton_log_returns(n, DAY, 0.0, 1e-9, intensity, 1.0, 0.0, rng())
    compensator = -intensity * math.expm1(1.0) * DAY
    counts = np.rint(returns - compensator)
    expected = intensity * n * DAY
    assert abs(counts.sum() - expected) < 4 * math.sqrt(expected)


def test_merton_drift_compensates_the_jumps_so_the_price_grows_at_drift():
    # E[exp(r)] = exp(μ·dt) per step. μ = 0.2, σ = 0.5, λ = 20 a year, log jumps
    # N(−0.05, 0.1²), daily steps, n = 2·10⁵; SE = sd(exp r)/√n ≈ 0.037/447 = 8e-5.
    # Without the −λk term the mean would be off by λ·k·dt = 20·(e^(−0.045) − 1)/365
    # = −2.4e-3 ≈ 30 SE.
    n, drift = 200_000, 0.2
    growth = np.exp(merton_log_returns(n, DAY, drift, 0.5, 20.0, -0.05, 0.1, rng()))
    standard_error = growth.std(ddof=1) / math.sqrt(n)
    assert abs(growth.mean() - math.exp(drift * DAY)) < 4 * standard_error


def test_config_jump_intensity_is_per_day():
    config = MarketConfig(process="merton", jump_intensity=3.0)
    direct = merton_log_returns(100, MINUTE, config.drift, config.volatility,
                                3.0 * DAYS_PER_YEAR, config.jump_mean, config.jump_std, rng())
    np.testing.assert_array_equal(index_log_returns(config, 100, rng()), direct)


# --------------------------------------------------------------------------- GARCH-t

# α = 0.05, β = 0.90, ν = 8 keep the fourth moment of r finite
# (κα² + 2αβ + β² = 4.5·0.0025 + 0.09 + 0.81 = 0.911 < 1, κ = E z⁴ = 3(ν−2)/(ν−4) = 4.5),
# so the sample variance and the ACF of r² have proper standard errors.
GARCH = {"volatility": 0.5, "alpha": 0.05, "beta": 0.90, "dof": 8.0}
GARCH_STEPS = 200_000


@pytest.fixture(scope="module")
def garch_returns() -> np.ndarray:
    return garch_t_log_returns(GARCH_STEPS, MINUTE, rng=rng(), **GARCH)


def test_garch_sample_variance_is_the_long_run_variance(garch_returns):
    # σ̄² = volatility²·dt = 0.25/525,600 = 4.76e-7. r² is autocorrelated, so the SE of its
    # mean comes from batch means: 100 blocks of 2,000 steps, each far longer than the
    # 1/(1 − α − β) = 20-step memory of the variance; SE = sd(block means)/√100.
    long_run_variance = GARCH["volatility"] ** 2 * MINUTE
    block_means = (garch_returns**2).reshape(100, -1).mean(axis=1)
    standard_error = block_means.std(ddof=1) / math.sqrt(100)
    assert abs(np.mean(garch_returns**2) - long_run_variance) < 4 * standard_error


def test_garch_squared_returns_cluster(garch_returns):
    # For independent returns the lag-1 sample ACF of r² has SE 1/√n = 1/√(2·10⁵) = 0.0022;
    # GARCH's is about α(1 − αβ − β²)/(1 − 2αβ − β²) = 0.0725 (normal innovations) or more.
    squared = garch_returns**2 - np.mean(garch_returns**2)
    lag1_acf = np.dot(squared[:-1], squared[1:]) / np.dot(squared, squared)
    assert lag1_acf > 5 / math.sqrt(GARCH_STEPS)


def test_garch_returns_have_heavier_tails_than_normal(garch_returns):
    # Sample excess kurtosis of n normal draws has SE √(24/n) = 0.011; the t(8) innovations
    # alone give 6/(ν − 4) = 1.5.
    assert stats.kurtosis(garch_returns) > 5 * math.sqrt(24 / GARCH_STEPS)


def test_garch_returns_are_the_recursion_applied_to_standardised_t_innovations():
    # Recover σ_t from the returns with the textbook recursion
    # σ²_t = ω + α·r²_{t−1} + β·σ²_{t−1}, σ²_0 = σ̄², ω = (1 − α − β)·σ̄²; then r_t/σ_t must be
    # Student-t(ν) scaled by √((ν − 2)/ν) = √0.75 (unit variance): KS test at the 0.1% level.
    n = 20_000
    returns = garch_t_log_returns(n, MINUTE, rng=rng(), **GARCH)
    alpha, beta, dof = GARCH["alpha"], GARCH["beta"], GARCH["dof"]
    long_run_variance = GARCH["volatility"] ** 2 * MINUTE
    omega = (1 - alpha - beta) * long_run_variance
    variance = np.empty(n)
    variance[0] = long_run_variance
    for t in range(1, n):
        variance[t] = omega + alpha * returns[t - 1] ** 2 + beta * variance[t - 1]
    innovations = returns / np.sqrt(variance)
    unit_t = stats.t(df=dof, scale=math.sqrt((dof - 2) / dof))
    assert stats.kstest(innovations, unit_t.cdf).pvalue > 1e-3


def test_garch_with_infinite_dof_has_normal_innovations():
    returns = garch_t_log_returns(20_000, MINUTE, 0.5, 0.0, 0.0, math.inf, rng())
    # α = β = 0: i.i.d. N(0, σ̄²); KS test at the 0.1% level.
    sd = 0.5 * math.sqrt(MINUTE)
    assert stats.kstest(returns / sd, "norm").pvalue > 1e-3


# --------------------------------------------------------------------------- regimes


def test_regime_chain_starts_calm_and_switches_with_the_given_probabilities():
    # p = q = 1: switch at every step, starting calm.
    _, regime = regime_log_returns(6, MINUTE, 0.5, 2.0, 1.0, 1.0, rng())
    np.testing.assert_array_equal(regime, [0, 1, 0, 1, 0, 1])
    _, never = regime_log_returns(6, MINUTE, 0.5, 2.0, 0.0, 1.0, rng())
    np.testing.assert_array_equal(never, [0] * 6)


def test_regime_fraction_of_time_stressed_is_p_over_p_plus_q():
    # p = 0.01, q = 0.04: π = p/(p + q) = 0.2. The indicator has lag-k correlation λ^k with
    # λ = 1 − p − q = 0.95, so Var(mean) ≈ π(1 − π)/n·(1 + λ)/(1 − λ) = 0.16·39/(2·10⁵)
    # = 3.1e-5: SE = 0.0056.
    n, p, q = 200_000, 0.01, 0.04
    _, regime = regime_log_returns(n, MINUTE, 0.5, 2.0, p, q, rng())
    stationary, persistence = p / (p + q), 1 - p - q
    standard_error = math.sqrt(stationary * (1 - stationary) / n
                               * (1 + persistence) / (1 - persistence))
    assert abs(regime.mean() - stationary) < 4 * standard_error


def test_regime_returns_have_the_volatility_of_their_regime():
    # sd = vol·√dt in each regime; SE of a sample sd over m normal draws: sd/√(2m).
    returns, regime = regime_log_returns(100_000, MINUTE, 0.5, 2.0, 0.01, 0.04, rng())
    for state, volatility in ((0, 0.5), (1, 2.0)):
        sample = returns[regime == state]
        sd = volatility * math.sqrt(MINUTE)
        assert abs(sample.std() - sd) < 4 * sd / math.sqrt(2 * sample.size)


# --------------------------------------------------------------------------- shocks


def test_shock_spreads_its_log_change_evenly_over_its_steps():
    # −15% over 5 steps from step 3: each of steps 3..7 gets log(0.85)/5 = −0.0325.
    contribution = shock_log_returns([Shock(at_minute=3, change=-0.15, over_minutes=5)], 10)
    expected = np.zeros(10)
    expected[3:8] = math.log(0.85) / 5
    np.testing.assert_allclose(contribution, expected, rtol=1e-12, atol=0)
    assert math.exp(contribution.sum()) == pytest.approx(0.85, rel=1e-12)


def test_shock_on_a_flat_replay_multiplies_the_price_by_one_plus_change(tmp_path):
    config = replay_config(tmp_path, [100.0] * 11, start_price=50_000.0,
                           shocks=(Shock(at_minute=3, change=-0.15, over_minutes=5),))
    path = index_path(config, 10, rng())
    np.testing.assert_allclose(path[:4], 50_000.0, rtol=1e-12)       # before: flat
    np.testing.assert_allclose(path[8:], 50_000.0 * 0.85, rtol=1e-12)  # after: 42,500
    np.testing.assert_allclose(path[4:9] / path[3:8], 0.85 ** (1 / 5), rtol=1e-12)


def test_shock_is_clipped_at_the_horizon():
    # Steps 8 and 9 of a 5-step shock fit in 10 steps: 2/5 of the log move, 0.85^(2/5).
    contribution = shock_log_returns([Shock(at_minute=8, change=-0.15, over_minutes=5)], 10)
    np.testing.assert_allclose(contribution[8:], math.log(0.85) / 5, rtol=1e-12)
    assert not contribution[:8].any()
    assert not shock_log_returns([Shock(at_minute=10, change=-0.15)], 10).any()


def test_a_shock_is_timed_in_minutes_at_any_step():
    # −20% over 10 minutes at minute 60 (the docstring's example): on one-minute steps
    # steps 60..69 take ln 0.8 / 10 each; on 4-minute steps, steps 15 and 16 (minutes
    # 60–68) take 4/10 of ln 0.8 and step 17 (minutes 68–72) 2/10 of it.
    shock = Shock(at_minute=60, change=-0.2, over_minutes=10)
    minute = shock_log_returns([shock], 100)
    np.testing.assert_allclose(minute[60:70], math.log(0.8) / 10, rtol=1e-12)
    assert not minute[:60].any() and not minute[70:].any()
    four = shock_log_returns([shock], 25, step_minutes=4.0)
    np.testing.assert_allclose(four[15:18], math.log(0.8) * np.array([0.4, 0.4, 0.2]),
                               rtol=1e-12)
    assert not four[:15].any() and not four[18:].any()


@pytest.mark.parametrize("step_minutes", [1 / 60, 0.25, 1.0, 3.0])
def test_a_shock_moves_the_price_by_the_same_at_any_step(step_minutes):
    # Whatever the step, the shock's minutes multiply the price by 0.8 in all.
    shock = Shock(at_minute=60, change=-0.2, over_minutes=10)
    steps = round(120 / step_minutes)
    contribution = shock_log_returns([shock], steps, step_minutes)
    assert math.exp(contribution.sum()) == pytest.approx(0.8, rel=1e-12)


def test_a_rebound_gives_back_its_share_of_the_move():
    # −20% over 10 minutes at 60, then half of it back over 20 minutes: the index ends
    # at 1 − 0.2 · 0.5 = 0.9 of where it began, its low 0.8 at minute 70; the rebound's
    # ln(0.9 / 0.8) = 0.11778 is spread over minutes 70–90.
    shock = Shock(at_minute=60, change=-0.2, over_minutes=10, rebound=0.5,
                  rebound_minutes=20)
    assert shock.moves[1][:2] == (70.0, 20.0)
    assert shock.moves[1][2] == pytest.approx(math.log(0.9 / 0.8), rel=1e-12)
    contribution = shock_log_returns([shock], 120)
    level = np.exp(np.cumsum(contribution))
    assert level[69] == pytest.approx(0.8, rel=1e-12)
    np.testing.assert_allclose(contribution[70:90], math.log(0.9 / 0.8) / 20, rtol=1e-12)
    assert level[-1] == pytest.approx(0.9, rel=1e-12)


@pytest.mark.parametrize(("field", "value"), [("rebound", 1.5), ("rebound", -0.1),
                                              ("over_minutes", 0.0),
                                              ("rebound_minutes", 0.0),
                                              ("at_minute", -1.0)])
def test_a_bad_shock_setting_is_refused_naming_it(field, value):
    with pytest.raises(ConfigError, match=rf"market\.shocks\.{field}"):
        Shock(**{"at_minute": 0.0, "change": -0.1, field: value})


def test_a_shock_counted_in_steps_is_refused_pointing_to_minutes():
    with pytest.raises(ConfigError, match=r'at_step is not a shock setting .*"at_minute"'):
        MarketConfig(shocks=({"at_step": 5, "change": -0.1},))


def test_overlapping_shocks_add():
    first = Shock(at_minute=2, change=-0.10, over_minutes=4)   # steps 2..5
    second = Shock(at_minute=4, change=0.20, over_minutes=3)   # steps 4..6
    together = shock_log_returns([first, second], 10)
    np.testing.assert_allclose(together,
                               shock_log_returns([first], 10) + shock_log_returns([second], 10),
                               rtol=1e-12)
    # Step 4 carries both: log(0.9)/4 + log(1.2)/3.
    assert together[4] == pytest.approx(math.log(0.9) / 4 + math.log(1.2) / 3, rel=1e-12)


# --------------------------------------------------------------------------- replay


def test_replay_returns_the_log_returns_of_a_csv_column(tmp_path):
    path = write(tmp_path, "time,price\n0,100\n1,110\n2,99\n")
    np.testing.assert_allclose(replay_log_returns(path),
                               [math.log(110 / 100), math.log(99 / 110)], rtol=1e-12)


def test_replay_reads_the_named_column(tmp_path):
    path = write(tmp_path, "close,price\n1,100\n2,110\n")
    np.testing.assert_allclose(replay_log_returns(path, column="close"), [math.log(2)],
                               rtol=1e-12)


def test_replay_ignores_a_byte_order_mark(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfprice\n100\n110\n")
    np.testing.assert_allclose(replay_log_returns(path), [math.log(1.1)], rtol=1e-12)


def test_replay_returns_the_log_returns_of_an_array():
    np.testing.assert_allclose(replay_log_returns([100.0, 110.0, 99.0]),
                               [math.log(1.1), math.log(0.9)], rtol=1e-12)


BAD_CSVS = [
    # (case, file content or None for no file, column, message pattern)
    ("missing-file", None, "price", r"market\.replay file not found"),
    ("empty-file", b"", "price", r"market\.replay .* is empty"),
    ("not-utf8", b"price\n\xff100\n", "price", r"market\.replay .* could not be read as CSV"),
    ("ragged", b"price\n100\n101,102\n", "price", r"market\.replay .* could not be read as CSV"),
    ("no-such-column", b"time,prices\n0,100\n1,101\n", "price",
     r'market\.replay_column \'price\' is not a column .*did you mean "prices"'),
    ("non-numeric", b"price\n100\nabc\n", "price",
     r"market\.replay column 'price' has a non-numeric price at line 3"),
    ("nan", b"time,price\n0,100\n1,\n2,101\n", "price",
     r"market\.replay has a missing \(NaN\) price at line 3"),
    ("infinite", b"price\n100\ninf\n", "price", r"market\.replay prices must be finite"),
    ("zero", b"price\n100\n0\n", "price", r"market\.replay prices must be > 0; got 0 at line 3"),
    ("negative", b"price\n100\n-5\n", "price", r"market\.replay prices must be > 0; got -5"),
    ("one-row", b"price\n100\n", "price", r"market\.replay needs at least 2 prices.*got 1"),
    ("header-only", b"price\n", "price", r"market\.replay needs at least 2 prices.*got 0"),
]


@pytest.mark.parametrize(("content", "column", "message"),
                         [case[1:] for case in BAD_CSVS], ids=[case[0] for case in BAD_CSVS])
def test_bad_replay_csv_raises_a_one_line_config_error(tmp_path, content, column, message):
    path = str(tmp_path / "absent.csv") if content is None else write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as raised:
        replay_log_returns(path, column)
    assert "\n" not in str(raised.value)


def test_replay_of_a_directory_raises_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"market\.replay .* could not be read as CSV"):
        replay_log_returns(tmp_path)


BAD_ARRAYS = [
    ("non-numeric", ["100", "abc"], r"market\.replay prices must be numbers"),
    ("two-dimensional", [[100.0, 101.0], [102.0, 103.0]], r"market\.replay .*one-dimensional"),
    ("nan", [100.0, math.nan], r"market\.replay has a missing \(NaN\) price at index 1"),
    ("non-positive", [100.0, -1.0], r"market\.replay prices must be > 0; got -1 at index 1"),
    ("too-short", [100.0], r"market\.replay needs at least 2 prices"),
]


@pytest.mark.parametrize(("prices", "message"), [case[1:] for case in BAD_ARRAYS],
                         ids=[case[0] for case in BAD_ARRAYS])
def test_bad_replay_array_raises_a_one_line_config_error(prices, message):
    with pytest.raises(ConfigError, match=message) as raised:
        replay_log_returns(prices)
    assert "\n" not in str(raised.value)


def test_configured_replay_takes_the_first_n_minutes(tmp_path):
    config = replay_config(tmp_path, [100.0, 110.0, 99.0, 120.0])
    np.testing.assert_allclose(index_log_returns(config, 2, rng()),
                               [math.log(1.1), math.log(0.9)], rtol=1e-12)


def test_configured_replay_shorter_than_the_horizon_raises(tmp_path):
    # 4 prices give 3 one-minute returns; 10 minutes need 10.
    config = replay_config(tmp_path, [100.0, 110.0, 99.0, 120.0])
    with pytest.raises(ConfigError, match=r"market\.replay .* has 3 minutes .*; 10 are needed"):
        index_log_returns(config, 10, rng())


# --------------------------------------------------------------------------- index path


@pytest.mark.parametrize("process", RANDOM_PROCESSES)
def test_index_path_starts_at_start_price_with_n_steps_plus_one_points(process):
    config = random_config(process).replace(start_price=65_000.0)
    path = index_path(config, 1440, rng())
    assert path.shape == (1441,)
    assert path[0] == 65_000.0
    assert np.all(np.isfinite(path)) and np.all(path > 0)


def test_index_path_compounds_the_index_log_returns():
    config = MarketConfig(process="gbm", start_price=100.0,
                          shocks=(Shock(at_minute=2, change=0.1),))
    returns = index_log_returns(config, 50, rng())
    np.testing.assert_allclose(index_path(config, 50, rng())[1:],
                               100.0 * np.exp(np.cumsum(returns)), rtol=1e-12)


# --------------------------------------------------------------------------- the native minute

PROCESSES = (*RANDOM_PROCESSES, "replay")
ONE_DAY = 1440  # minutes


def any_config(process: str, tmp_path) -> MarketConfig:
    """random_config, or a replay of a random walk of a day and a minute (1,441 prices),
    each with a shock and its rebound (shocks are layered on every process)."""
    shocks = (Shock(at_minute=100.5, change=-0.2, over_minutes=7.3, rebound=0.5,
                    rebound_minutes=13),)
    if process == "replay":
        walk = 100.0 * np.exp(np.cumsum(rng(0).normal(0.0, 1e-3, ONE_DAY + 1)))
        return replay_config(tmp_path, walk.tolist(), shocks=shocks)
    return random_config(process).replace(shocks=shocks)


@pytest.mark.parametrize("process", RANDOM_PROCESSES)
def test_every_process_is_drawn_a_minute_apart_with_per_minute_parameters(process):
    # dt is a minute (1/525,600 of a year) and the regime's chances are taken per minute,
    # whatever the tick: the configured index at one-minute ticks is the process function
    # at dt = MINUTE, draw for draw (the same bits).
    config = random_config(process)
    c = config
    direct = {
        "gbm": lambda g: gbm_log_returns(ONE_DAY, MINUTE, c.drift, c.volatility, g),
        "merton": lambda g: merton_log_returns(ONE_DAY, MINUTE, c.drift, c.volatility,
                                               c.jump_intensity * DAYS_PER_YEAR, c.jump_mean,
                                               c.jump_std, g),
        "garch_t": lambda g: garch_t_log_returns(ONE_DAY, MINUTE, c.volatility, c.garch_alpha,
                                                 c.garch_beta, c.t_dof, g),
        "regime": lambda g: regime_log_returns(ONE_DAY, MINUTE, c.volatility,
                                               c.stressed_volatility, c.calm_to_stressed,
                                               c.stressed_to_calm, g)[0],
    }[process]
    assert NATIVE_DT == MINUTE
    np.testing.assert_array_equal(index_log_returns(config, ONE_DAY, rng(7)), direct(rng(7)))


@pytest.mark.parametrize("process", ["gbm", "merton"])
def test_a_minute_of_gbm_or_merton_has_the_diffusion_s_variance(process):
    # σ²·dt = 0.5² / 525,600 = 4.76e-7 every minute; Merton's jumps are in the returns,
    # not in this diffusive variance.
    _, variances = minute_log_returns(random_config(process), ONE_DAY, rng())
    np.testing.assert_allclose(variances, 0.25 / 525_600, rtol=1e-12)


def test_a_minute_of_garch_has_the_recursion_s_variance():
    # The textbook recursion σ²[t] = ω + α·r²[t−1] + β·σ²[t−1] from σ²[0] = σ̄², applied to
    # the returns drawn, gives the variances returned beside them.
    config = random_config("garch_t")
    returns, variances = minute_log_returns(config, ONE_DAY, rng())
    np.testing.assert_array_equal(returns, garch_t_log_returns(
        ONE_DAY, MINUTE, config.volatility, config.garch_alpha, config.garch_beta,
        config.t_dof, rng()))
    alpha, beta = config.garch_alpha, config.garch_beta
    long_run_variance = config.volatility**2 * MINUTE
    expected = np.empty(ONE_DAY)
    expected[0] = long_run_variance
    for t in range(1, ONE_DAY):
        expected[t] = ((1 - alpha - beta) * long_run_variance + alpha * returns[t - 1] ** 2
                       + beta * expected[t - 1])
    np.testing.assert_allclose(variances, expected, rtol=1e-12)


def test_a_minute_of_the_regime_chain_has_its_state_s_variance():
    # calm 0.5, stressed 2.0: 0.25·dt or 4·dt, as the minute's regime says.
    config = random_config("regime")
    _, variances = minute_log_returns(config, ONE_DAY, rng())
    _, regime = regime_log_returns(ONE_DAY, MINUTE, 0.5, 2.0, config.calm_to_stressed,
                                   config.stressed_to_calm, rng())
    assert regime.any() and not regime.all()  # both states occur: the check means something
    np.testing.assert_allclose(variances, np.where(regime == 1, 4.0, 0.25) * MINUTE,
                               rtol=1e-12)


# --------------------------------------------------------------------------- ticks


@pytest.mark.parametrize("per_minute", [1, 3, 12, 60])
@pytest.mark.parametrize("process", PROCESSES)
def test_the_ticks_of_each_minute_sum_to_the_one_minute_path(process, per_minute, tmp_path):
    # Common random numbers: the minute path is drawn from rng(7) the same way at every
    # tick, the bridge from its own stream, so summing each minute's per_minute ticks gives
    # the one-minute returns (shocks included). The rounding of a sum of k ticks is
    # relative to the ticks, not to the sum (which may be near 0): hence the absolute
    # 1e-12 of the largest tick beside the relative 1e-12.
    config = any_config(process, tmp_path)
    minutes = index_log_returns(config, ONE_DAY, rng(7))
    ticks = index_log_returns(config, ONE_DAY, rng(7), per_minute=per_minute,
                              bridge_rng=rng(99))
    assert ticks.shape == (ONE_DAY * per_minute,)
    sums = ticks.reshape(ONE_DAY, per_minute).sum(axis=1)
    np.testing.assert_allclose(sums, minutes, rtol=1e-12, atol=1e-12 * np.abs(ticks).max())


def test_the_index_path_at_whole_minutes_is_the_same_at_any_tick():
    # 1,440 minutes at 5-second ticks: 17,281 prices, every 12th the one-minute path's.
    config = random_config("garch_t")
    minutes = index_path(config, ONE_DAY, rng(7))
    ticks = index_path(config, ONE_DAY, rng(7), per_minute=12, bridge_rng=rng(99))
    assert ticks.shape == (ONE_DAY * 12 + 1,)
    np.testing.assert_allclose(ticks[::12], minutes, rtol=1e-12)


def test_the_bridge_s_ticks_sum_to_their_minute():
    # Minutes of any return and variance (0 included), k = 7: each minute's 7 ticks sum to
    # its return, to rounding relative to the ticks' size (see the test above).
    generator = rng()
    returns = generator.normal(0.0, 1e-3, 1000)
    variances = generator.uniform(0.0, 4e-6, 1000)
    variances[::10] = 0.0
    ticks = bridge_log_returns(returns, variances, 7, generator)
    sums = ticks.reshape(1000, 7).sum(axis=1)
    np.testing.assert_allclose(sums, returns, rtol=1e-12, atol=1e-12 * np.abs(ticks).max())


def test_the_bridge_s_ticks_have_a_brownian_bridge_s_conditional_moments():
    # Ticks x_j = R/k + √(v/k)·(ε_j − ε̄) of a minute with R = 0.003, v = 4e-6, k = 4:
    # d_j = x_j − R/k has mean 0, variance (v/k)·(1 − 1/k) = 1e-6 · 0.75 = 7.5e-7 and
    # covariance −v/k² = −2.5e-7 between two ticks (ε_j − ε̄ has variance 1 − 1/k and
    # covariance −1/k). Over n = 10⁵ minutes: SE of the mean √(7.5e-7/n) = 2.7e-6; of a
    # sample variance 7.5e-7·√(2/n) = 3.4e-9 (0.45%); of a sample covariance of normals
    # √((7.5e-7² + 2.5e-7²)/n) = 2.5e-9. Unpinned ticks (no −ε̄) would have variance
    # v/k = 1e-6 (+33%, 74 SE) and covariance 0 (100 SE).
    n, k, minute_return, variance = 100_000, 4, 0.003, 4e-6
    ticks = bridge_log_returns(np.full(n, minute_return), np.full(n, variance), k, rng())
    d = ticks.reshape(n, k) - minute_return / k
    tick_variance, tick_covariance = variance / k * (1 - 1 / k), -variance / k**2
    assert np.all(np.abs(d.mean(axis=0)) < 4 * math.sqrt(tick_variance / n))
    sample_variances = d.var(axis=0, ddof=1)
    assert np.all(np.abs(sample_variances - tick_variance)
                  < 4 * tick_variance * math.sqrt(2 / n))
    sample_covariance = np.cov(d[:, 0], d[:, 1])[0, 1]
    covariance_se = math.sqrt((tick_variance**2 + tick_covariance**2) / n)
    assert abs(sample_covariance - tick_covariance) < 4 * covariance_se


@pytest.mark.parametrize("per_minute", [1, 60])
def test_a_day_s_realised_variance_does_not_depend_on_the_tick(per_minute):
    # GBM, σ = 0.5, no drift: a day's Σ r² has expectation σ²/365 = 6.849e-4 at any tick
    # (the squared mean, (σ²·dt/2)² a minute, adds 1e-7 of it: negligible). N = 1,440·k
    # ticks a day of variance σ²/(365·N) give Var(Σ r²) = 2·N·(σ²/(365·N))², so over 20
    # days the mean daily figure has SE (σ²/365)·√(2/N)/√20: 0.83% at k = 1, 0.11% at
    # k = 60. Linear interpolation in place of the bridge would give σ²/365/60 (−98%).
    days, volatility = 20, 0.5
    config = MarketConfig(process="gbm", volatility=volatility)
    ticks = index_log_returns(config, days * ONE_DAY, rng(7), per_minute=per_minute,
                              bridge_rng=rng(99))
    daily = (ticks**2).reshape(days, -1).sum(axis=1)
    expected = volatility**2 / DAYS_PER_YEAR
    standard_error = expected * math.sqrt(2 / (ONE_DAY * per_minute)) / math.sqrt(days)
    assert abs(daily.mean() - expected) < 4 * standard_error


def test_a_replay_is_linear_in_log_price_between_its_minutes(tmp_path):
    # Prices 100, 110, 99, 120 a minute apart, at 15-second ticks (k = 4): tick j of
    # minute m is at log P[m] + (j/4)·log(P[m+1]/P[m]); e.g. the second tick is
    # 100·1.1^(2/4) = 104.88. The record's variance is 0: no invented moves.
    prices = [100.0, 110.0, 99.0, 120.0]
    config = replay_config(tmp_path, prices, start_price=100.0)
    path = index_path(config, 3, rng(), per_minute=4, bridge_rng=rng(1))
    tick_minutes = np.arange(13) / 4
    expected = np.exp(np.interp(tick_minutes, [0, 1, 2, 3], np.log(prices)))
    np.testing.assert_allclose(path, expected, rtol=1e-12)
    assert path[2] == pytest.approx(100.0 * 1.1**0.5, rel=1e-12)
    assert not minute_log_returns(config, 3, rng())[1].any()


def test_one_tick_a_minute_is_the_minute_path_and_draws_nothing_from_the_bridge():
    config = random_config("garch_t").replace(shocks=(Shock(at_minute=5, change=-0.1),))
    bridge = rng(99)
    before = bridge.bit_generator.state
    ticks = index_log_returns(config, ONE_DAY, rng(7), per_minute=1, bridge_rng=bridge)
    assert bridge.bit_generator.state == before
    returns, _ = minute_log_returns(config, ONE_DAY, rng(7))
    np.testing.assert_array_equal(ticks, returns + shock_log_returns(config.shocks, ONE_DAY))
    np.testing.assert_array_equal(bridge_log_returns(returns, np.ones(ONE_DAY), 1, None),
                                  returns)


@pytest.mark.parametrize("per_minute", [0, -1, 1.5, 2.0, "12"])
def test_a_per_minute_that_is_not_a_whole_number_of_at_least_one_is_refused(per_minute):
    generator = rng()
    before = generator.bit_generator.state
    with pytest.raises(ValueError, match=r"^per_minute must be a whole number ≥ 1"):
        index_log_returns(random_config("gbm"), 10, generator, per_minute=per_minute,
                          bridge_rng=rng(1))
    assert generator.bit_generator.state == before  # refused before drawing
    with pytest.raises(ValueError, match=r"^per_minute must be a whole number ≥ 1"):
        bridge_log_returns(np.zeros(3), np.zeros(3), per_minute, rng(1))


def test_ticks_finer_than_a_minute_need_a_bridge_generator():
    with pytest.raises(ValueError, match=r"bridge_rng is required when per_minute > 1"):
        index_log_returns(random_config("gbm"), 10, rng(), per_minute=12)


# --------------------------------------------------------------------------- MarketConfig shocks


def test_shock_table_missing_a_field_raises_config_error():
    with pytest.raises(ConfigError, match=r"market\.shocks\[0\]\.at_minute is required"):
        MarketConfig(shocks=[{"change": -0.1}])


@pytest.mark.parametrize("shocks", [None, 5])
def test_shocks_that_are_not_a_list_raise_config_error(shocks):
    with pytest.raises(ConfigError, match=r"market\.shocks must be a list"):
        MarketConfig(shocks=shocks)


def test_infinite_shock_change_raises_config_error():
    with pytest.raises(ConfigError, match=r"market\.shocks\.change must be in \(-1, inf\)"):
        Shock(at_minute=0, change=math.inf)

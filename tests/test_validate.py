"""Specification tests for perpabm.validate: the stylized-fact statistics.

Every random test uses a fixed seed, so it is deterministic; the tolerances are
still chosen from each estimator's sampling distribution (stated next to the test)
so that a correct implementation would pass for essentially any seed.

Hill estimator facts used below (Hill 1975; Hall 1982): with k top order statistics,
√k·(α̂ − α) → N(0, α²), so the standard error is se = α/√k. For an exact Pareto tail
the log-excesses are i.i.d. Exp(α), so k·α/α̂ ~ Gamma(k, 1) exactly and α̂ is unbiased
to O(1/k); for other laws α̂ also carries a second-order bias that grows with `tail`.
"""

import math
import re

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from perpabm.validate import (
    aggregate,
    autocorrelation,
    hill_exponent,
    hill_interval,
    stylized_facts,
)

# ====================================================================== hill_exponent


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.0])
def test_hill_recovers_pareto_tail_index(alpha):
    # numpy's pareto(a) is Lomax; +1 makes it classical Pareto, P(X > x) = x^-a for x ≥ 1.
    n, tail = 200_000, 0.02
    k = int(tail * n)  # 4000
    se = alpha / math.sqrt(k)  # α/63.2 ≈ 0.032·α: 0.063, 0.095, 0.126
    x = np.random.default_rng(int(alpha)).pareto(alpha, n) + 1.0
    # 4 se: a correct estimator misses with probability ≈ 6e-5.
    assert hill_exponent(x, tail=tail) == pytest.approx(alpha, abs=4 * se)


def test_hill_on_student_t3_is_near_3():
    # |t(ν)| has tail index ν, but P(|T| > x) = c·x^-3·(1 + O(x^-2)): a second-order term
    # that biases the Hill estimate down at a finite tail fraction. The population value
    # of the estimator at tail 0.01 is 1/E[ln(|T|/q) | |T| > q] = 2.88 (q the 99% quantile
    # of |T|; computed by quadrature), a bias of −0.12. With k = 2000, se = 3/√2000 = 0.067.
    # Tolerance 0.4 ≈ |bias| 0.12 + 4 se 0.27.
    x = np.random.default_rng(7).standard_t(3, 200_000)
    assert hill_exponent(x, tail=0.01) == pytest.approx(3.0, abs=0.4)


def test_hill_on_gaussian_is_much_larger_than_on_t3():
    # A Gaussian tail is thinner than any power law: α̂ grows without bound as tail → 0.
    # Population values at tail 0.01 (k = 2000): ≈ 9.0 for N(0,1) against ≈ 2.88 for t(3).
    # The relative se is 1/√k ≈ 2.2%, so within 4 se gauss ≥ 8.2 and t3 ≤ 3.15: a ratio
    # ≥ 2.6, and a factor 2 is a safe margin.
    rng = np.random.default_rng(11)
    n = 200_000
    gauss = hill_exponent(rng.standard_normal(n), tail=0.01)
    t3 = hill_exponent(rng.standard_t(3, n), tail=0.01)
    assert gauss > 2.0 * t3


def test_hill_uses_absolute_values():
    # Flipping the sign of any observation leaves |x|, hence α̂, unchanged.
    rng = np.random.default_rng(3)
    x = rng.pareto(3.0, 5_000) + 1.0
    signs = rng.choice([-1.0, 1.0], size=x.size)
    assert hill_exponent(signs * x) == hill_exponent(x)


def test_hill_ignores_nan_and_zeros():
    # NaN (missing) and exact zeros (no price change) are dropped before k = floor(tail·n)
    # is computed, so padding the sample with them changes nothing.
    x = np.random.default_rng(4).pareto(3.0, 5_000) + 1.0
    padded = np.concatenate([x, np.full(300, np.nan), np.zeros(300)])
    assert hill_exponent(padded, tail=0.05) == hill_exponent(x, tail=0.05)


def test_hill_matches_formula_by_hand():
    # |x| = 1..20, tail 0.1 → n = 20, k = 2: top values 20, 19 over threshold X_(3) = 18.
    x = np.arange(1.0, 21.0)
    expected = 1.0 / ((math.log(20 / 18) + math.log(19 / 18)) / 2)
    assert hill_exponent(x, tail=0.1) == pytest.approx(expected, rel=1e-12)


# ====================================================================== hill_interval


def test_hill_interval_is_asymptotic_normal_formula():
    # n = 1000, tail 0.05 → k = 50; z = Φ⁻¹(0.975) = 1.95996.
    x = np.random.default_rng(5).pareto(3.0, 1_000) + 1.0
    alpha = hill_exponent(x, tail=0.05)
    half = scipy.stats.norm.ppf(0.975) / math.sqrt(50)
    low, high = hill_interval(x, tail=0.05, confidence=0.95)
    assert (low, high) == pytest.approx((alpha * (1 - half), alpha * (1 + half)), rel=1e-12)


def test_hill_interval_covers_pareto_alpha_at_nominal_rate():
    # 200 Pareto(3) samples of n = 2000 at tail 0.05 (k = 100). Exact coverage of
    # α̂(1 ± z/√k) for a Pareto tail is P(k − z√k ≤ G ≤ k + z√k), G ~ Gamma(100), = 0.951.
    # Over 200 repetitions the observed rate has sd √(0.95·0.05/200) ≈ 0.015, so a floor
    # of 0.90 sits > 3 sd below nominal.
    alpha, reps, n = 3.0, 200, 2_000
    samples = np.random.default_rng(6).pareto(alpha, (reps, n)) + 1.0
    bounds = np.array([hill_interval(s, tail=0.05, confidence=0.95) for s in samples])
    covered = (bounds[:, 0] <= alpha) & (alpha <= bounds[:, 1])
    assert covered.mean() >= 0.90


# ====================================================================== autocorrelation


def test_acf_of_iid_normal_is_within_4_over_sqrt_n():
    # Bartlett: for i.i.d. data ρ̂(h) ≈ N(−1/n, 1/n); ±4/√n = ±0.04 is 4 sd at n = 10,000.
    n = 10_000
    x = np.random.default_rng(8).standard_normal(n)
    acf = autocorrelation(x, 10)
    assert acf.shape == (10,)
    assert np.all(np.abs(acf) < 4 / math.sqrt(n))


def test_acf_of_ar1_is_phi_to_the_lag():
    # AR(1) x_t = 0.6·x_{t−1} + ε_t has ρ(h) = 0.6^h: 0.6, 0.36, 0.216. Bartlett's formula
    # gives sd(ρ̂(h)) = 0.0057, 0.0082, 0.0093 at h = 1, 2, 3 for n = 20,000; the bias of the
    # /n estimator (≈ −(h + 4)/n ≤ 4e-4) is negligible. Tolerance 0.04 ≈ 4 sd of the worst.
    phi, n, burn = 0.6, 20_000, 100  # 0.6^100 ≈ 6e-23: the zero start is forgotten
    eps = np.random.default_rng(9).standard_normal(n + burn)
    x = scipy.signal.lfilter([1.0], [1.0, -phi], eps)[burn:]
    acf = autocorrelation(x, [1, 2, 3])
    np.testing.assert_allclose(acf, phi ** np.array([1, 2, 3]), atol=0.04)


def test_acf_matches_biased_estimator_by_hand():
    # x = 1, 2, 3, 4: deviations −1.5, −0.5, 0.5, 1.5; Σd² = 5.
    # lag 1: (0.75 − 0.25 + 0.75)/5 = 0.25; lag 2: (−0.75 − 0.75)/5 = −0.3; lag 3: −2.25/5.
    # (Dividing lag h by n − h instead would give 1/3 at lag 1.)
    np.testing.assert_allclose(
        autocorrelation([1.0, 2.0, 3.0, 4.0], [1, 2, 3]), [0.25, -0.3, -0.45], rtol=1e-12
    )


def test_acf_at_lag_zero_is_one():
    x = np.random.default_rng(10).standard_normal(500)
    assert autocorrelation(x, [0])[0] == pytest.approx(1.0, abs=1e-15)


def test_acf_int_lags_mean_one_to_lags():
    x = np.random.default_rng(12).standard_normal(500)
    np.testing.assert_array_equal(autocorrelation(x, 4), autocorrelation(x, [1, 2, 3, 4]))


# ====================================================================== stylized_facts


def garch_t(n: int, seed: int) -> np.ndarray:
    """GARCH(1,1) log returns with unit-variance Student-t(5) innovations.

    σ²_t = ω + a·r²_{t−1} + b·σ²_{t−1}, r_t = σ_t·z_t, with ω = 0.05, a = 0.10, b = 0.85
    (persistence a + b = 0.95); 1000 burn-in steps start from the stationary variance.
    r is a martingale difference (ACF 0) while |r| is autocorrelated (ρ_|r|(1) ≈ 0.17).
    """
    omega, a, b, nu, burn = 0.05, 0.10, 0.85, 5, 1_000
    z = np.random.default_rng(seed).standard_t(nu, n + burn) * math.sqrt((nu - 2) / nu)
    r = np.empty(n + burn)
    var = omega / (1 - a - b)
    for t, zt in enumerate(z.tolist()):
        r[t] = rt = math.sqrt(var) * zt
        var = omega + a * rt * rt + b * var
    return r[burn:]


@pytest.fixture(scope="module")
def garch_facts():
    return stylized_facts(garch_t(50_000, seed=13))


def test_stylized_facts_garch_shows_volatility_clustering(garch_facts):
    # ρ_|r|(1) is ≈ 0.16–0.19 across seeds for these parameters; 0.1 is the floor the
    # calibration asks of "clustered" volatility.
    assert garch_facts["acf_abs_returns"][1] > 0.1


def test_stylized_facts_garch_has_no_linear_autocorrelation(garch_facts):
    # sd(ρ̂_r(1)) is ≈ 1/√n = 0.0045 inflated by the GARCH fourth-moment factor (a few×);
    # 0.05 is > 4 such sd.
    assert abs(garch_facts["acf_returns"][1]) < 0.05


def test_stylized_facts_reports_every_statistic():
    r = np.random.default_rng(14).standard_normal(1_000)
    facts = stylized_facts(r, tail=0.05, lags=(1, 5))
    assert set(facts) == {
        "hill_tail_exponent",
        "hill_low",
        "hill_high",
        "hill_k",
        "acf_returns",
        "acf_abs_returns",
        "acf_squared_returns",
        "skew",
        "n",
    }
    assert facts["hill_low"] < facts["hill_tail_exponent"] < facts["hill_high"]
    assert facts["hill_k"] == 50  # floor(0.05 · 1000)
    for key in ("acf_returns", "acf_abs_returns", "acf_squared_returns"):
        assert list(facts[key]) == [1, 5]
    assert facts["acf_squared_returns"][1] == pytest.approx(autocorrelation(r * r, [1])[0])
    assert facts["n"] == 1_000


def test_stylized_facts_drops_nan_and_counts_what_it_used():
    r = np.random.default_rng(15).standard_normal(1_000)
    facts = stylized_facts(np.concatenate([[np.nan], r, [np.nan]]))
    assert facts["n"] == 1_000
    assert facts == stylized_facts(r)


def test_stylized_facts_negative_skew():
    # −LogNormal(0, 0.5) has skewness −(e^{σ²} + 2)·√(e^{σ²} − 1) = −1.75 at σ = 0.5.
    r = -np.random.default_rng(16).lognormal(0.0, 0.5, 5_000)
    facts = stylized_facts(r)
    assert facts["skew"] < 0
    assert facts["skew"] == pytest.approx(scipy.stats.skew(r))


# ====================================================================== aggregate


def test_aggregate_sums_blocks():
    np.testing.assert_array_equal(aggregate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3), [6.0, 15.0])


def test_aggregate_drops_incomplete_last_block():
    # 7 values in blocks of 3: [1, 2, 3], [4, 5, 6]; the lone 7 is dropped.
    np.testing.assert_array_equal(aggregate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3), [6.0, 15.0])


def test_aggregate_works_along_last_axis_of_paths():
    paths = np.arange(12.0).reshape(2, 6)  # rows 0..5 and 6..11
    np.testing.assert_array_equal(aggregate(paths, 2), [[1.0, 5.0, 9.0], [13.0, 17.0, 21.0]])


# ====================================================================== bad inputs

GOOD = np.random.default_rng(17).standard_normal(200)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        pytest.param(lambda: hill_exponent(GOOD, tail=0.0), "tail", id="hill-tail-zero"),
        pytest.param(lambda: hill_exponent(GOOD, tail=0.6), "tail", id="hill-tail-above-half"),
        pytest.param(lambda: hill_exponent(GOOD, tail=math.nan), "tail", id="hill-tail-nan"),
        pytest.param(lambda: hill_exponent(GOOD, tail="5%"), "tail", id="hill-tail-str"),
        # 200 values · 0.005 = 1 order statistic < 2
        pytest.param(lambda: hill_exponent(GOOD, tail=0.005), "tail", id="hill-k-below-2"),
        pytest.param(lambda: hill_exponent(GOOD[:9]), "x", id="hill-9-values"),
        pytest.param(lambda: hill_exponent([np.nan] * 50), "x", id="hill-all-nan"),
        pytest.param(lambda: hill_exponent(np.zeros(50)), "x", id="hill-all-zero"),
        pytest.param(lambda: hill_exponent([*GOOD, np.inf]), "x", id="hill-inf"),
        pytest.param(lambda: hill_exponent(np.ones(50), tail=0.1), "x", id="hill-tied-tail"),
        pytest.param(lambda: hill_interval(GOOD, confidence=1.0), "confidence", id="ci-1"),
        pytest.param(lambda: hill_interval(GOOD, confidence=0.0), "confidence", id="ci-0"),
        pytest.param(lambda: hill_interval(GOOD, tail=0.7), "tail", id="ci-tail"),
        pytest.param(lambda: autocorrelation(GOOD, 0), "lags", id="acf-int-zero"),
        pytest.param(lambda: autocorrelation(GOOD, [-1]), "lags", id="acf-negative"),
        pytest.param(lambda: autocorrelation(GOOD, [1.5]), "lags", id="acf-float"),
        pytest.param(lambda: autocorrelation(GOOD, 2.0), "lags", id="acf-float-scalar"),
        pytest.param(lambda: autocorrelation(GOOD, True), "lags", id="acf-bool"),
        pytest.param(lambda: autocorrelation(GOOD, []), "lags", id="acf-empty"),
        pytest.param(lambda: autocorrelation(GOOD, [200]), "lags", id="acf-lag-ge-n"),
        pytest.param(lambda: autocorrelation(GOOD.reshape(20, 10), 1), "x", id="acf-2d"),
        pytest.param(lambda: autocorrelation([*GOOD, np.nan], 1), "x", id="acf-nan"),
        pytest.param(lambda: autocorrelation(np.ones(50), 1), "x", id="acf-constant"),
        pytest.param(lambda: stylized_facts(GOOD.reshape(20, 10)), "returns", id="sf-2d"),
        pytest.param(lambda: stylized_facts([*GOOD, np.inf]), "returns", id="sf-inf"),
        pytest.param(lambda: stylized_facts(GOOD[:30]), "lags", id="sf-lag-60-ge-n"),
        pytest.param(lambda: stylized_facts(GOOD, tail=0.0), "tail", id="sf-tail"),
        pytest.param(lambda: aggregate(GOOD, 0), "k", id="agg-k-zero"),
        pytest.param(lambda: aggregate(GOOD, 2.5), "k", id="agg-k-float"),
        pytest.param(lambda: aggregate(3.0, 1), "returns", id="agg-scalar"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    # Every message starts with the offending argument's name.
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b"):
        call()

"""Specification tests for Sobol indices: the runner's Saltelli design and
perpabm.analysis.sobol_indices, checked against the Ishigami function's analytic
indices (SALib's own test function) and on a small sweep of the model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from SALib.test_functions import Ishigami

from perpabm import Shock, load_scenario, sweep
from perpabm.analysis import SOBOL_COLUMNS, sobol_indices
from perpabm.errors import ConfigError
from perpabm.results import Results
from perpabm.runner import design_points

PI = math.pi
ISHIGAMI = {"x1": (-PI, PI), "x2": (-PI, PI), "x3": (-PI, PI)}
# a = 7, b = 0.1: V = 13.845, V1 = 4.346, V2 = 6.125, V13 = 3.374 (sobol_indices' docstring)
ISHIGAMI_S1 = (0.3139, 0.4424, 0.0)
ISHIGAMI_ST = (0.5576, 0.4424, 0.2437)
BASE_POINTS = 1024


def ishigami_results(n_points: int, seed: int, paths_per_point: int = 1) -> Results:
    """A sweep's tables as the runner writes them, with the Ishigami function as the
    path metric ``y`` at every point of the runner's Saltelli design."""
    design = design_points(ISHIGAMI, "saltelli", n_points, seed)
    x = np.array([[point[name] for name in ISHIGAMI] for point in design])
    points = pd.DataFrame(design)
    points.insert(0, "point", range(len(design)))
    paths = points.loc[points.index.repeat(paths_per_point)].reset_index(drop=True)
    paths["path"] = np.tile(np.arange(paths_per_point), len(design))
    paths["y"] = np.repeat(Ishigami.evaluate(x), paths_per_point)
    return Results(paths=paths, events=pd.DataFrame(), series=pd.DataFrame(), points=points)


@pytest.fixture(scope="module")
def ishigami() -> pd.DataFrame:
    return sobol_indices(ishigami_results(BASE_POINTS, seed=2), "y", ISHIGAMI, BASE_POINTS,
                         seed=2).set_index("factor")


def test_saltelli_design_has_d_plus_2_rows_per_base_point():
    design = design_points(ISHIGAMI, "saltelli", 8, seed=1)
    assert len(design) == 8 * (3 + 2)
    assert design == design_points(ISHIGAMI, "saltelli", 8, seed=1)
    x = np.array([[p[n] for n in ISHIGAMI] for p in design])
    assert np.all((x >= -PI) & (x <= PI))


def test_saltelli_rows_are_a_then_each_factor_from_b_then_b():
    design = np.array([[p[n] for n in ISHIGAMI]
                       for p in design_points(ISHIGAMI, "saltelli", 2, seed=1)])
    a, b = design[0], design[4]
    for k in range(3):  # row AB_k: A with factor k from B
        expected = a.copy()
        expected[k] = b[k]
        np.testing.assert_array_equal(design[1 + k], expected)


def test_a_smaller_saltelli_design_is_a_prefix_of_a_larger_one():
    assert design_points(ISHIGAMI, "saltelli", 4, seed=3) == design_points(
        ISHIGAMI, "saltelli", 8, seed=3)[: 4 * 5]


def test_saltelli_levels_take_equal_shares():
    grid = {"exchange.adl_rule": ["profit", "leverage", "pnl_leverage", "size"],
            "vault.cap": (1.0, 3.0)}
    rules = [p["exchange.adl_rule"] for p in design_points(grid, "saltelli", 256, seed=0)]
    counts = pd.Series(rules).value_counts()
    assert set(counts.index) == set(grid["exchange.adl_rule"])
    assert counts.min() > 0.2 * len(rules)  # each about a quarter


@pytest.mark.parametrize(("grid", "n_points", "match"), [
    ({"vault.cap": (3.0, 1.0)}, 4, "low < high"),
    ({"vault.cap": ["only"]}, 4, "at least two levels"),
    ({"vault.cap": (1.0, 3.0)}, 0, "n_points must be a whole number"),
])
def test_bad_saltelli_designs_are_one_line_errors(grid, n_points, match):
    with pytest.raises(ConfigError, match=match):
        design_points(grid, "saltelli", n_points)


@pytest.mark.parametrize(("factor", "index", "expected"),
                         [(f, "S1", v) for f, v in zip(ISHIGAMI, ISHIGAMI_S1, strict=True)]
                         + [(f, "ST", v) for f, v in zip(ISHIGAMI, ISHIGAMI_ST, strict=True)])
def test_ishigami_indices_cover_the_analytic_values(ishigami, factor, index, expected):
    row = ishigami.loc[factor]
    assert row[f"{index}_low"] <= expected <= row[f"{index}_high"]
    assert row[index] == pytest.approx(expected, abs=0.06)


def test_ishigami_table_says_its_size(ishigami):
    assert list(ishigami.reset_index().columns) == SOBOL_COLUMNS
    assert ishigami.attrs["base_points"] == BASE_POINTS
    assert ishigami.attrs["design_points"] == BASE_POINTS * 5
    assert ishigami.attrs["paths_per_point"] == 1


def test_base_points_takes_a_prefix_of_the_design_and_widens_the_intervals(ishigami):
    small = sobol_indices(ishigami_results(BASE_POINTS, seed=2), "y", ISHIGAMI, BASE_POINTS,
                          seed=2, base_points=BASE_POINTS // 4).set_index("factor")
    assert small.attrs["base_points"] == BASE_POINTS // 4
    assert small.attrs["design_points"] == BASE_POINTS // 4 * 5
    width = (small["ST_high"] - small["ST_low"]) / (ishigami["ST_high"] - ishigami["ST_low"])
    assert (width > 1.0).all()  # a quarter of the points: about twice as wide


def test_the_point_value_is_the_statistic_over_its_paths():
    # every path of a point has the same y: mean, median and max all give y
    results = ishigami_results(64, seed=1, paths_per_point=3)
    by_mean = sobol_indices(results, "y", ISHIGAMI, 64, seed=1)
    by_max = sobol_indices(results, "y", ISHIGAMI, 64, seed=1, statistic="max")
    assert by_mean.attrs["paths_per_point"] == 3
    pd.testing.assert_frame_equal(by_mean, by_max)


def test_a_constant_output_is_refused():
    results = ishigami_results(8, seed=1)
    results.paths["y"] = 1.0
    with pytest.raises(ValueError, match="no variance to share out"):
        sobol_indices(results, "y", ISHIGAMI, 8, seed=1)


def test_a_design_point_without_paths_is_named():
    results = ishigami_results(8, seed=1)
    results.paths = results.paths[results.paths["point"] != 5]
    with pytest.raises(ValueError, match=r"design row 5 .* has no paths"):
        sobol_indices(results, "y", ISHIGAMI, 8, seed=1)


@pytest.mark.slow
def test_sobol_indices_of_a_model_sweep_on_the_saltelli_design():
    # 100 traders, 30 minutes, a drop at minute 5: nobody is liquidated, so the vault's
    # P&L (its market making) depends on the drop's size and not at all on its cap:
    # every AB_cap row repeats its A row, and the cap's total index is exactly 0
    config = (load_scenario("oct10_2025").replace("traders.count", 100)
              .replace("run.steps", 30).replace("market.shocks", (Shock(5, -0.15, 10),)))
    grid = {"vault.cap": (0.5, 3.0), "market.shocks.0.change": (-0.3, -0.05)}
    results = sweep(config, grid, 1, seed=4, design="saltelli", n_points=16, n_jobs=1)
    assert len(results.points) == 16 * (2 + 2)
    assert results.paths["liquidated_notional"].eq(0).all()
    table = sobol_indices(results, "vault_pnl", grid, 16, seed=4).set_index("factor")
    assert table.attrs["paths_per_point"] == 1
    assert table.loc["vault.cap", "ST"] == 0.0
    assert table.loc["market.shocks.0.change", "ST"] > 0.5

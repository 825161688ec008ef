"""Plots: each runs on a small real sweep, returns a labelled Figure, draws into a given Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from populations import LEVERED

import perpabm
from perpabm import Shock, analysis, load_scenario, plots


@pytest.fixture(scope="module")
def results():
    config = (load_scenario("oct10_2025").with_settings(LEVERED).replace("traders.count", 60)
              .replace("run.steps", 80).replace("market.shocks", (Shock(30, -0.15, 10),)))
    res = perpabm.sweep(config, {"vault.cap": [0.0, 2.0]}, n_paths=3, seed=1, n_jobs=1,
                        with_series=True)
    assert len(res.failures) == 0
    assert (res.events["kind"] == "adl").any(), "the fixture must produce ADL fills"
    assert res.paths["adl_fired"].sum() > 0
    return res


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _adl_path(results):
    """(point, path) of the first path with an ADL fill."""
    row = results.events[results.events["kind"] == "adl"].iloc[0]
    return int(row["point"]), int(row["path"])


def _adl_events_with_cap(results):
    return results.events.merge(results.points, on="point", how="left")


SOBOL_TABLE = pd.DataFrame({  # two factors' indices, as analysis.sobol_indices gives them
    "factor": ["vault.cap", "market.shocks.0.change"], "S1": [0.1, 0.7],
    "S1_low": [0.0, 0.6], "S1_high": [0.2, 0.8], "ST": [0.2, 0.85], "ST_low": [0.1, 0.7],
    "ST_high": [0.3, 1.0]})

# name → call drawing into `ax` (None: a new figure)
CALLS = {
    "sobol_indices": lambda r, ax: plots.sobol_indices(SOBOL_TABLE, ax=ax),
    "adl_frequency": lambda r, ax: plots.adl_frequency(r.paths, "vault.cap", ax=ax),
    "adl_heatmap": lambda r, ax: plots.adl_heatmap(r.paths, "vault.cap", "path", ax=ax),
    "vault_pnl_distribution": lambda r, ax: plots.vault_pnl_distribution(
        r.paths, by="vault.cap", ax=ax),
    "vault_pnl_distribution_pooled": lambda r, ax: plots.vault_pnl_distribution(r.paths, ax=ax),
    "vault_pnl_ecdf": lambda r, ax: plots.vault_pnl_ecdf(r.paths, by="vault.cap", ax=ax),
    "vault_equity_fan": lambda r, ax: plots.vault_equity_fan(
        r.series[r.series["point"] == 1], ax=ax),
    "adl_scatter": lambda r, ax: plots.adl_scatter(r.events, ax=ax),
    "adl_scatter_by": lambda r, ax: plots.adl_scatter(
        _adl_events_with_cap(r), by="vault.cap", ax=ax),
    "adl_shares": lambda r, ax: plots.adl_shares(
        analysis.adl_by_group(_adl_events_with_cap(r), by=["vault.cap", "account_type"]),
        "account_type", by="vault.cap", ax=ax),
    "lorenz": lambda r, ax: plots.lorenz(
        r.events.loc[r.events["kind"] == "adl", "amount"].to_numpy(), ax=ax, label="ADL"),
}


def _check_labels(fig):
    assert isinstance(fig, Figure)
    assert fig.axes
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel().strip(), f"missing x label on {ax!r}"
        assert ax.get_ylabel().strip(), f"missing y label on {ax!r}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_plot_returns_labelled_figure(results, name):
    fig = CALLS[name](results, None)
    _check_labels(fig)
    fig.canvas.draw()  # renders under Agg without error


@pytest.mark.parametrize("name", sorted(CALLS))
def test_plot_draws_into_given_axes(results, name):
    fig, (left, right) = plt.subplots(1, 2)
    returned = CALLS[name](results, right)
    assert returned is fig
    assert right.has_data() or right.images
    assert not left.has_data()
    assert right.get_xlabel() and right.get_ylabel()


def test_path_anatomy(results):
    point, path = _adl_path(results)
    fig = plots.path_anatomy(results.series, results.events, path=path, point=point,
                             window=None)
    _check_labels(fig)
    assert len(fig.axes) == 3
    price_ax, depth_ax, fund_ax = fig.axes
    assert price_ax.get_shared_x_axes().joined(price_ax, fund_ax)
    adl_times = set(results.events.query(
        "kind == 'adl' and point == @point and path == @path")["time"])
    red = {line.get_xdata()[0] for line in fund_ax.lines if line.get_label() == "ADL"
           or line.get_color() == plots.ADL_COLOUR}
    assert red == adl_times
    n_steps = int(((results.series["point"] == point) & (results.series["path"] == path)).sum())
    assert len(price_ax.lines[0].get_xdata()) == n_steps
    fig.canvas.draw()


def test_path_anatomy_zooms_to_the_cascade_by_default(results):
    point, path = _adl_path(results)
    mine = results.events.query("point == @point and path == @path")
    marked = mine.loc[mine["kind"].isin(["adl", *plots.LIQUIDATION_KINDS]), "time"]
    fig = plots.path_anatomy(results.series, results.events, path=path, point=point)
    steps = fig.axes[0].lines[0].get_xdata()
    # The fixture's cascade is one run of events (gaps ≤ CASCADE_GAP_STEPS), padded by
    # CASCADE_PAD_STEPS each side, within the path's 80 steps.
    assert steps[0] == max(1, marked.min() - plots.CASCADE_PAD_STEPS)
    assert steps[-1] == min(80, marked.max() + plots.CASCADE_PAD_STEPS)
    assert fig.axes[2].get_xlim() == (steps[0], steps[-1])


def test_path_anatomy_draws_the_window_it_is_given(results):
    point, path = _adl_path(results)
    fig = plots.path_anatomy(results.series, results.events, path=path, point=point,
                             window=(10, 20))
    for ax in fig.axes:
        for line in ax.lines:
            assert all(10 <= x <= 20 for x in line.get_xdata())
    assert "steps 10–20" in fig.axes[0].get_title(loc="left")
    with pytest.raises(ValueError, match="window must be"):
        plots.path_anatomy(results.series, results.events, window=(20, 10))
    with pytest.raises(ValueError, match="holds no step"):
        plots.path_anatomy(results.series, results.events, window=(500, 600))


def test_path_anatomy_into_given_axes_and_unknown_path(results):
    fig, axes = plt.subplots(3, 1)
    assert plots.path_anatomy(results.series, results.events, axes=axes) is fig
    assert all(ax.has_data() for ax in axes)
    with pytest.raises(ValueError, match="no series rows"):
        plots.path_anatomy(results.series, results.events, path=99)


def test_adl_frequency_bars_match_shares(results):
    fig = plots.adl_frequency(results.paths, "vault.cap")
    ax = fig.axes[0]
    expected = results.paths.groupby("vault.cap")["adl_fired"].mean().to_numpy()
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2"]


def test_adl_heatmap_colorbar(results):
    fig = plots.adl_heatmap(results.paths, "vault.cap", "path")
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1
    assert colorbars[0].get_ylabel() == "P(ADL)"
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (3, 2)
    np.testing.assert_allclose(np.nanmean(image, axis=0),
                               results.paths.groupby("vault.cap")["adl_fired"].mean())


def test_vault_pnl_var_lines(results):
    fig = plots.vault_pnl_distribution(results.paths, levels=(0.9,), min_tail_paths=0)
    ax = fig.axes[0]
    pnl = results.paths["vault_pnl"].to_numpy()
    (var_line,) = [line for line in ax.lines if "VaR 90%" in line.get_label()]
    assert var_line.get_xdata()[0] == pytest.approx(np.quantile(pnl, 0.1))


def test_vault_pnl_var_is_not_drawn_from_too_few_paths(results):
    # 6 paths leave ⌊6 · 0.05⌋ = 0 beyond the 5% quantile, fewer than MIN_TAIL_PATHS.
    fig = plots.vault_pnl_distribution(results.paths)
    ax = fig.axes[0]
    assert not [line for line in ax.lines if "VaR" in line.get_label()]
    (note,) = ax.texts[-1:]
    assert "6 paths, too few for VaR 95%, 99%" in note.get_text()


def pnl_with_a_point_mass() -> pd.DataFrame:
    """Cap 0: the vault never acts, 0 USD on 8 paths; cap 2: 8 losses spread over
    −450,000 to −100,000 USD."""
    spread = np.linspace(-450_000.0, -100_000.0, 8)
    return pd.DataFrame({"vault.cap": [0.0] * 8 + [2.0] * 8,
                         "vault_pnl": np.concatenate([np.zeros(8), spread])})


def test_vault_pnl_point_mass_is_a_spike_not_a_bar():
    fig = plots.vault_pnl_distribution(pnl_with_a_point_mass(), by="vault.cap")
    ax = fig.axes[0]
    # The cap-0 paths are one spike at 0 as tall as their share of paths, 8/8 = 1.
    (spike,) = [c for c in ax.collections if c.get_label() == "vault.cap = 0"]
    (segment,) = spike.get_segments()
    np.testing.assert_allclose(segment, [[0.0, 0.0], [0.0, 1.0]])
    assert any(t.get_text() == "8 of 8 paths at 0 USD" for t in ax.texts)
    # The only histogram is cap 2's, and it does not reach the point mass at 0.
    (bars,) = [p for p in ax.patches if p.get_label() == "vault.cap = 2"]
    xs = bars.get_path().vertices[:, 0]
    assert xs.min() == pytest.approx(-450_000.0) and xs.max() == pytest.approx(-100_000.0)
    # Bars are shares of paths: cap 2's heights sum to its 8 of 8 paths.
    heights = np.histogram(pnl_with_a_point_mass()["vault_pnl"][8:],
                           bins=len(np.unique(xs)) - 1)[0]
    assert heights.sum() == 8
    assert ax.get_ylabel() == "share of paths"


def test_vault_pnl_group_without_values_is_noted():
    paths = pd.DataFrame({"exchange.preset": ["hyperliquid"] * 3 + ["binance"] * 3,
                          "vault_pnl": [-1.0, 2.0, 3.0] + [np.nan] * 3})
    fig = plots.vault_pnl_distribution(paths, by="exchange.preset")
    assert "exchange.preset = binance: no vault P&L" in fig.axes[0].texts[-1].get_text()


def test_adl_scatter_facets_one_panel_per_value_on_shared_axes(results):
    events = _adl_events_with_cap(results)
    fig = plots.adl_scatter(events, by="vault.cap")
    assert len(fig.axes) == 2  # caps 0 and 2; cap 2 had no ADL and gets an empty panel
    left, right = fig.axes
    assert left.get_shared_x_axes().joined(left, right)
    assert left.get_shared_y_axes().joined(left, right)
    adl = events[events["kind"] == "adl"]
    for ax, cap in zip(fig.axes, [0.0, 2.0], strict=True):
        background, mine = ax.collections
        assert len(background.get_offsets()) == len(adl)  # every fill, in grey
        assert len(mine.get_offsets()) == (adl["vault.cap"] == cap).sum()
        assert f"({(adl['vault.cap'] == cap).sum()} fills)" in ax.get_title(loc="left")


def test_adl_scatter_overlaid_groups_are_hollow_and_shaped_apart(results):
    events = _adl_events_with_cap(results)
    fig, ax = plt.subplots()
    plots.adl_scatter(events, by="vault.cap", ax=ax)
    assert len(ax.collections) == 2
    for collection in ax.collections:
        assert collection.get_facecolor().size == 0 or (
            collection.get_facecolor()[:, 3] == 0).all()  # hollow: the points below show
        assert collection.get_alpha() < 1
    shapes = [tuple(map(tuple, c.get_paths()[0].vertices.round(3))) for c in ax.collections]
    assert shapes[0] != shapes[1]
    with pytest.raises(ValueError, match="facets draw a new figure"):
        plots.adl_scatter(events, by="vault.cap", ax=ax, facets=True)


def test_a_missing_column_is_named_with_the_closest(results):
    hint = r"""paths has no column 'vault.capp' \(did you mean "vault.cap"\?\)"""
    with pytest.raises(ValueError, match=hint):
        plots.adl_frequency(results.paths, "vault.capp")


def test_lorenz_equal_amounts_on_diagonal():
    fig = plots.lorenz(np.full(7, 3.0))
    x, y = fig.axes[0].lines[-1].get_data()
    np.testing.assert_allclose(x, np.linspace(0, 1, 8))
    np.testing.assert_allclose(y, x)


def test_lorenz_one_nonzero_amount():
    n = 6
    fig = plots.lorenz([0.0] * (n - 1) + [5.0])
    x, y = fig.axes[0].lines[-1].get_data()
    assert len(y) == n + 1
    np.testing.assert_allclose(y[:-1], 0.0)
    assert y[-1] == pytest.approx(1.0)
    assert x[0] == 0.0 and x[-1] == 1.0


def test_lorenz_rejects_negative_amounts():
    with pytest.raises(ValueError, match="non-negative"):
        plots.lorenz([1.0, -1.0])


def test_style_file_is_shipped_and_valid():
    assert plots.STYLE_PATH.is_file()
    with plt.style.context(plots.STYLE_PATH):
        fig = plt.figure()
        assert tuple(fig.get_size_inches()) == (7, 4.5)
        assert fig.dpi == 110
        assert plt.rcParams["axes.grid"]
        assert fig.get_layout_engine() is not None


def test_lorenz_panel_has_one_title():
    fig = plots.lorenz([1.0, 2.0, 7.0], title="profit")
    ax = fig.axes[0]
    titles = [ax.get_title(loc=loc) for loc in ("left", "center", "right")]
    assert [t for t in titles if t] == ["profit"]


def test_lorenz_curves_added_to_one_axes_differ_in_colour_and_share_one_equality_line():
    fig = plots.lorenz([1.0, 2.0, 7.0], label="profit")
    plots.lorenz([3.0, 3.0, 4.0], ax=fig.axes[0], label="leverage")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels.count("equality") == 1
    profit, leverage = [line for line in fig.axes[0].lines if line.get_label() != "equality"]
    assert profit.get_color() != leverage.get_color()


def test_adl_shares_draws_no_error_bar_where_there_is_no_interval():
    table = pd.DataFrame({"account_type": ["noise", "maker"], "share": [0.75, 0.25],
                          "low": [np.nan, 0.1], "high": [np.nan, 0.4]})
    ax = plots.adl_shares(table, "account_type").axes[0]
    (errorbars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    (segments,) = errorbars.lines[2]
    drawn = [s for s in segments.get_segments() if len(s)]
    np.testing.assert_allclose(drawn, [[[1.0, 0.1], [1.0, 0.4]]])  # maker's only

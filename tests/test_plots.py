"""Plots: each runs on a small real sweep, returns a labelled Figure, draws into a given Axes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

import perpabm
from perpabm import Shock, analysis, load_scenario, plots


@pytest.fixture(scope="module")
def results():
    config = (load_scenario("oct10_2025").replace("traders.count", 60)
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


# name → call drawing into `ax` (None: a new figure)
CALLS = {
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
    fig = plots.path_anatomy(results.series, results.events, path=path, point=point)
    _check_labels(fig)
    assert len(fig.axes) == 3
    price_ax, depth_ax, fund_ax = fig.axes
    assert price_ax.get_shared_x_axes().joined(price_ax, fund_ax)
    adl_times = set(results.events.query(
        "kind == 'adl' and point == @point and path == @path")["time"])
    red = {line.get_xdata()[0] for line in fund_ax.lines if line.get_label() == "ADL"
           or line.get_color() == "#C00000"}
    assert red == adl_times
    n_steps = int(((results.series["point"] == point) & (results.series["path"] == path)).sum())
    assert len(price_ax.lines[0].get_xdata()) == n_steps
    fig.canvas.draw()


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
    fig = plots.vault_pnl_distribution(results.paths, levels=(0.9,))
    ax = fig.axes[0]
    pnl = results.paths["vault_pnl"].to_numpy()
    (var_line,) = [line for line in ax.lines if "VaR 90%" in line.get_label()]
    assert var_line.get_xdata()[0] == pytest.approx(np.quantile(pnl, 0.1))


def test_adl_scatter_log_scale(results):
    fig = plots.adl_scatter(results.events)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.collections[0].get_offsets()) == (results.events["kind"] == "adl").sum()


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

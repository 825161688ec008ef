"""Plots of Monte Carlo results: ADL frequency, vault P&L, vault equity, one path's anatomy.

matplotlib only and backend-neutral: nothing here selects a backend or calls
``plt.show()``. Every function takes the data (the :class:`~perpabm.Results`
tables or one of their columns) and an optional Axes to draw into (a new figure
in the house style, ``perpabm.mplstyle``, when none is given), and returns the
:class:`matplotlib.figure.Figure`; its Axes are ``fig.axes``.

Units: prices, P&L, equity and amounts in USD; book depth in base units;
time in model steps (event ``time`` is the step at which the event happened).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from scipy.stats import binomtest

from perpabm import analysis

__all__ = [
    "STYLE_PATH",
    "adl_frequency",
    "adl_heatmap",
    "adl_scatter",
    "lorenz",
    "path_anatomy",
    "vault_equity_fan",
    "vault_pnl_distribution",
    "vault_pnl_ecdf",
]

STYLE_PATH = Path(__file__).with_name("perpabm.mplstyle")

LIQUIDATION_KINDS = ("liquidation", "backstop")  # forced closes marked on a path's anatomy

ATOM_MIN_PATHS = 2
"""Paths sharing one exact P&L that :func:`vault_pnl_distribution` draws as a point mass
(a spike) rather than a bar: continuous P&L does not tie, so a tie is an atom, such as
0 USD on every path where the vault never took a position."""

MAX_BINS = 60  # histogram bins at most, however narrow the tightest group is

MAX_FACETS = 12  # adl_scatter draws one panel per value of `by` up to this many values
FACET_COLUMNS = 3  # panels per row
FACET_SIZE = (3.0, 2.6)  # inches per panel (width, height)

CASCADE_GAP_STEPS = 10
"""Steps without a forced close or ADL fill that end a cascade (see :func:`path_anatomy`)."""
CASCADE_PAD_STEPS = 10  # steps shown either side of the cascade


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Run a plotting function inside the house style (figure creation and drawing)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with plt.style.context(STYLE_PATH):
            return func(*args, **kwargs)

    return wrapper


def _figure(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots()
        return fig, ax
    return _root(ax), ax


def _colour(i: int) -> str:
    """The i-th colour of the active colour cycle, as hex: "CN" strings are resolved only
    when drawn, i.e. outside the house style when a figure is saved later."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color") or ["#333333"]
    return to_hex(cycle[i % len(cycle)])


def _palette(n: int) -> list[str]:
    """n distinct colours: the colour cycle's, or viridis' for more than it has."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color") or ["#333333"]
    if n <= len(cycle):
        return [_colour(i) for i in range(n)]
    return [to_hex(c) for c in plt.get_cmap("viridis")(np.linspace(0.0, 0.9, n))]


def _root(ax: Axes) -> Figure:
    """The top-level Figure holding `ax` (also when it sits in a SubFigure)."""
    fig = ax.figure
    return fig if isinstance(fig, Figure) else fig.figure


def _groups(paths: pd.DataFrame, by: str | None,
            column: str) -> list[tuple[str | None, np.ndarray]]:
    """(legend label, finite values of `column`) per value of `by` (one group if None)."""
    analysis.require_columns(paths, [column] + ([by] if by is not None else []), "paths")
    if by is None:
        values = paths[column].to_numpy(dtype=float)
        return [(None, values[np.isfinite(values)])]
    out = []
    for key, group in paths.groupby(by, sort=True):
        values = group[column].to_numpy(dtype=float)
        out.append((f"{by} = {key:g}" if isinstance(key, float) else f"{by} = {key}",
                    values[np.isfinite(values)]))
    return out


def _tick_label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


FLAT_TICK_CHARS = 60  # characters of category labels that fit side by side on one axis


def _set_category_ticks(ax: Axes, x: np.ndarray, labels: list[str]) -> None:
    """Category tick labels, slanted when there is more text than fits flat."""
    if sum(len(label) + 2 for label in labels) > FLAT_TICK_CHARS:
        ax.set_xticks(x, labels, rotation=30, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(x, labels)


# ------------------------------------------------------------------------------ ADL


@_styled
def adl_frequency(paths: pd.DataFrame, by: str, ax: Axes | None = None,
                  confidence: float = 0.95) -> Figure:
    """Share of paths on which ADL fired (``adl_fired``), one bar per value of `by`.

    Error bars are Wilson score intervals at `confidence` for a binomial share;
    each bar is annotated with k/n (paths with ADL / paths). y: share of paths
    (0–1); x: the values of column `by` (e.g. a sweep parameter).
    """
    analysis.require_columns(paths, ["adl_fired", by], "paths")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    fig, ax = _figure(ax)
    keys, shares, low, high, counts = [], [], [], [], []
    for key, group in paths.groupby(by, sort=True):
        fired = group["adl_fired"].dropna().to_numpy(dtype=float)
        n = len(fired)
        if n == 0:
            continue
        k = int((fired > 0.5).sum())
        ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        keys.append(key)
        shares.append(k / n)
        low.append(k / n - ci.low)
        high.append(ci.high - k / n)
        counts.append((k, n))
    x = np.arange(len(keys))
    bars = ax.bar(x, shares, yerr=[low, high], width=0.6, color=_colour(0), alpha=0.85,
                  ecolor="#333333", label=f"{confidence:.0%} Wilson interval")
    for bar, (k, n) in zip(bars, counts, strict=True):
        ax.annotate(f"{k}/{n}", (bar.get_x() + bar.get_width() / 2, 0.0),
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                    fontsize="small", color="white" if bar.get_height() > 0.08 else "#333333")
    _set_category_ticks(ax, x, [_tick_label(k) for k in keys])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(by)
    ax.set_ylabel("P(ADL) (share of paths)")
    ax.set_title(f"ADL frequency ({confidence:.0%} Wilson intervals)")
    return fig


@_styled
def adl_heatmap(paths: pd.DataFrame, x: str, y: str, ax: Axes | None = None) -> Figure:
    """ADL probability over a two-parameter sweep: the mean of ``adl_fired`` (share of
    paths with ADL, 0–1) in each (x, y) cell, with a colorbar labelled "P(ADL)".

    Cells are laid out in the sorted order of the values of `x` and `y`; cells with
    no paths are blank. Small grids are annotated with the share in each cell.
    """
    analysis.require_columns(paths, ["adl_fired", x, y], "paths")
    fig, ax = _figure(ax)
    table = paths.pivot_table(index=y, columns=x, values="adl_fired", aggfunc="mean",
                              dropna=False).sort_index().sort_index(axis=1)
    image = ax.imshow(table.to_numpy(dtype=float), origin="lower", aspect="auto",
                      vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
    ax.set_xticks(np.arange(table.shape[1]), [_tick_label(v) for v in table.columns])
    ax.set_yticks(np.arange(table.shape[0]), [_tick_label(v) for v in table.index])
    ax.grid(False)
    if table.size <= 100:
        for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small",
                        color="black" if value > 0.6 else "white")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("ADL probability")
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label("P(ADL)")
    return fig


@_styled
def adl_scatter(events: pd.DataFrame, by: str | None = None, ax: Axes | None = None,
                facets: bool | None = None) -> Figure:
    """Who gets auto-deleveraged: one point per ADL fill ("adl" rows of `events`),
    the ADL'd account's effective leverage (x, before the close; log scale when all
    positive) against the unrealised profit closed (``amount``, USD, y).

    With `by` (a column of `events`, e.g. a sweep parameter merged in by the caller),
    fills are split by its value, so that no value's points hide another's:

    - ``facets`` (the default for a new figure and at most :data:`MAX_FACETS`
      values): one panel per value on shared axes, the value's fills in colour over
      every fill in light grey, titled with the value and its number of fills (a
      value whose paths had no ADL gets an empty panel);
    - overlaid (``facets=False``, or when drawing into `ax`): one hollow, translucent
      marker shape per value, so that coincident points of several values all show;
    - a colorbar for a numeric `by` with more than :data:`MAX_FACETS` values.
    """
    analysis.require_columns(
        events, ["kind", "leverage", "amount"] + ([by] if by is not None else []), "events")
    adl = events[events["kind"] == "adl"]
    adl = adl[np.isfinite(adl["leverage"].to_numpy(dtype=float))
              & np.isfinite(adl["amount"].to_numpy(dtype=float))]
    values = [] if by is None else _values_in_order(events[by])
    many = by is not None and len(values) > MAX_FACETS
    if facets and ax is not None:
        raise ValueError("facets draw a new figure: pass ax=None, or facets=False")
    if facets and many:
        raise ValueError(f"facets draw at most {MAX_FACETS} panels; {by!r} has "
                         f"{len(values)} values")
    if by is not None and not many and (facets or (facets is None and ax is None)):
        return _scatter_facets(adl, by, values)
    fig, ax = _figure(ax)
    if by is None:
        ax.scatter(adl["leverage"], adl["amount"], s=18, alpha=0.7, color=_colour(0),
                   edgecolors="none")
    elif many and pd.api.types.is_numeric_dtype(adl[by]):
        points = ax.scatter(adl["leverage"], adl["amount"], c=adl[by].to_numpy(dtype=float),
                            s=18, alpha=0.8, cmap="viridis", edgecolors="none")
        fig.colorbar(points, ax=ax).set_label(by)
    else:
        colours = _palette(len(values))
        for i, value in enumerate(values):
            group = adl[adl[by] == value]
            ax.scatter(group["leverage"], group["amount"], s=22, marker=MARKERS[i % len(MARKERS)],
                       facecolors="none", edgecolors=colours[i], linewidths=0.9, alpha=0.7,
                       label=f"{_tick_label(value)} ({len(group)})")
        if values:
            ax.legend(title=f"{by} (fills)", fontsize="small", loc="upper left",
                      bbox_to_anchor=(1.01, 1.0))
    _scatter_axes(ax, adl)
    ax.set_title(f"ADL fills ({len(adl)})")
    return fig


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one shape per overlaid group


def _values_in_order(column: pd.Series) -> list[Any]:
    """The values of `column` present: a categorical's in its categories' order, numbers
    in order, anything else by its text."""
    present = pd.unique(column.dropna())
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [c for c in column.cat.categories if c in set(present)]

    def key(value: Any) -> tuple[int, Any]:
        if isinstance(value, int | float | np.integer | np.floating):
            return (0, float(value))
        return (1, str(value))

    return sorted(present, key=key)


def _scatter_axes(ax: Axes, adl: pd.DataFrame) -> None:
    if len(adl) and (adl["leverage"] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel("effective leverage of the ADL'd account (×)")
    ax.set_ylabel("unrealised profit closed (USD)")


def _scatter_facets(adl: pd.DataFrame, by: str, values: list[Any]) -> Figure:
    """One panel per value of `by` on shared axes (see :func:`adl_scatter`)."""
    columns = min(FACET_COLUMNS, max(1, len(values)))
    rows = max(1, -(-len(values) // columns))
    fig, grid = plt.subplots(rows, columns, sharex=True, sharey=True, squeeze=False,
                             figsize=(FACET_SIZE[0] * columns + 0.6,
                                      FACET_SIZE[1] * rows + 0.6))
    axes = list(grid.ravel())
    for extra in axes[len(values):]:
        fig.delaxes(extra)
    axes = axes[:len(values)]
    for ax, value in zip(axes, values, strict=True):
        group = adl[adl[by] == value]
        ax.scatter(adl["leverage"], adl["amount"], s=10, color="#D0D0D0", edgecolors="none",
                   zorder=1, label="all fills")
        ax.scatter(group["leverage"], group["amount"], s=16, alpha=0.8, color=_colour(0),
                   edgecolors="none", zorder=2, label=_tick_label(value))
        _scatter_axes(ax, adl)
        ax.set_title(f"{_tick_label(value)} ({len(group)} fills)", fontsize="medium")
        ax.xaxis.label.set_visible(False)  # one label for the figure, below
        ax.yaxis.label.set_visible(False)
    fig.supxlabel(axes[0].get_xlabel() if axes else "", fontsize="medium")
    fig.supylabel(axes[0].get_ylabel() if axes else "", fontsize="medium")
    fig.suptitle(f"ADL fills ({len(adl)}), by {by}; grey: every fill")
    return fig


# ---------------------------------------------------------------------------- vault


@_styled
def adl_shares(table: pd.DataFrame, group: str, by: str | None = None,
               ax: Axes | None = None) -> Figure:
    """Share of ADL'd profit per group — a table of :func:`perpabm.analysis.adl_by_group`
    — as bars with their bootstrap intervals (``low``, ``high``), one bar series per
    value of `by` (e.g. the ranking rule). y: share of profit closed (0–1); x: `group`.
    """
    analysis.require_columns(table, [group, "share", "low", "high", *([by] if by else [])], "table")
    fig, ax = _figure(ax)
    groups = [g for g in pd.unique(table[group].astype(str))]
    series = [(None, table)] if by is None else list(table.groupby(by, sort=True))
    colours = _palette(len(series))
    width = 0.8 / len(series)
    for i, (key, frame) in enumerate(series):
        frame = frame.set_index(frame[group].astype(str)).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        share = frame["share"].to_numpy(dtype=float)
        low = np.clip(share - frame["low"].to_numpy(dtype=float), 0, None)
        high = np.clip(frame["high"].to_numpy(dtype=float) - share, 0, None)
        ax.bar(x, share, width=width, yerr=[low, high],  # NaN: no interval, no bar drawn
               color=colours[i], ecolor="#333333",
               label=None if key is None else _tick_label(key))
    _set_category_ticks(ax, np.arange(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(group)
    ax.set_ylabel("share of ADL'd profit (0–1)")
    intervals = table[["low", "high"]].notna().any(axis=None)
    ax.set_title("Whose profit ADL closes " + ("(95% bootstrap intervals)" if intervals
                                              else "(too few paths for intervals)"))
    if by is not None:
        ax.legend(title=by, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


@_styled
def vault_pnl_distribution(paths: pd.DataFrame, by: str | None = None, ax: Axes | None = None,
                           levels: Sequence[float] = (0.95, 0.99),
                           min_tail_paths: int = analysis.MIN_TAIL_PATHS) -> Figure:
    """The vault's P&L per path (``vault_pnl``, USD), one distribution per value of `by`:
    y is the share of the group's paths (0–1), so bars and spikes read alike.

    - A P&L shared exactly by at least :data:`ATOM_MIN_PATHS` paths (e.g. 0 USD where
      the vault never took a position) is a point mass: a spike at that value, as
      tall as its share of paths and annotated with the count, not a bar.
    - The other paths are a histogram (step outline over a light fill) on bins
      shared by the groups, as wide as the tightest group needs (numpy's "auto"
      rule on each group, at most :data:`MAX_BINS` over the whole range).
    - Vertical lines mark each group's value-at-risk at `levels`: VaR = −(the
      (1 − level) quantile of P&L), drawn at P&L = −VaR and given in the legend as a
      loss, where the group has at least `min_tail_paths` paths beyond the quantile
      (:func:`perpabm.analysis.tail_paths`); the levels left out are noted on the plot.
    - A group with no vault P&L (a venue without a vault) is noted on the plot.
    """
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"levels must lie in (0, 1); got {level!r}")
    groups = _groups(paths, by, "vault_pnl")
    fig, ax = _figure(ax)
    split = [_split_atoms(values) for _, values in groups]  # (point masses, the rest)
    bins = _shared_bins([rest for _, rest in split])
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1))]
    notes, too_few = [], False
    for i, ((label, values), (group_atoms, continuous)) in enumerate(
            zip(groups, split, strict=True)):
        name = label or "all paths"
        if not len(values):
            notes.append(f"{name}: no vault P&L")
            continue
        colour, n = _colour(i), len(values)
        if len(continuous):
            weights = np.full(len(continuous), 1.0 / n)
            ax.hist(continuous, bins=bins, weights=weights, histtype="stepfilled",
                    facecolor=to_rgba(colour, 0.25), edgecolor=colour, linewidth=1.2,
                    label=label)
        for j, (value, count) in enumerate(group_atoms):
            share = count / n
            ax.vlines(value, 0.0, share, color=colour, linewidth=2.5,
                      label=label if not len(continuous) and j == 0 else None)
            ax.plot([value], [share], marker="o", color=colour, markersize=6)
            ax.annotate(f"{count} of {n} paths at {value:,.0f} USD", (value, share),
                        xytext=(-6, 4), textcoords="offset points", ha="right",
                        fontsize="small", color=colour)
        missing = []
        for j, level in enumerate(levels):
            if analysis.tail_paths(n, level) < min_tail_paths:
                missing.append(f"{level:.0%}")
                continue
            var = analysis.value_at_risk(values, level) + 0.0  # −0.0 + 0.0 is 0.0
            ax.axvline(-var, color=colour, linestyle=styles[j % len(styles)], linewidth=1.2,
                       label=f"{'' if label is None else label + ': '}VaR {level:.0%} = "
                             f"{var:,.0f} USD")
        if missing:
            notes.append(f"{name}: {n} paths, too few for VaR {', '.join(missing)}")
            too_few = True
    if too_few:
        notes.append(f"(VaR needs ≥ {min_tail_paths} paths beyond the quantile)")
        ax.text(0.01, 0.99, "\n".join(notes), transform=ax.transAxes, ha="left", va="top",
                fontsize="x-small", color="#555555")
    ax.set_ylim(bottom=0.0)
    ax.margins(y=0.15 if notes else 0.05)
    ax.set_xlabel("vault P&L per path (USD)")
    ax.set_ylabel("share of paths")
    ax.set_title("Vault P&L")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def _split_atoms(values: np.ndarray) -> tuple[list[tuple[float, int]], np.ndarray]:
    """([(value, count)] of the point masses, the other values)."""
    unique, counts = np.unique(values, return_counts=True)
    is_atom = counts >= ATOM_MIN_PATHS
    atoms = [(float(v), int(c)) for v, c in zip(unique[is_atom], counts[is_atom], strict=True)]
    return atoms, values[~np.isin(values, unique[is_atom])]


def _shared_bins(groups: Iterable[np.ndarray]) -> np.ndarray:
    """Bin edges over all values, as narrow as the tightest group's own "auto" bins."""
    groups = [g for g in groups if len(g)]
    if not groups:
        return np.array([0.0, 1.0])
    pooled = np.concatenate(groups)
    low, high = float(pooled.min()), float(pooled.max())
    widths = [np.diff(np.histogram_bin_edges(g, bins="auto"))[0] for g in groups
              if len(g) > 1 and g.max() > g.min()]
    if high == low or not widths:
        return np.histogram_bin_edges(pooled, bins=1)
    count = int(min(MAX_BINS, max(1, np.ceil((high - low) / min(widths)))))
    return np.linspace(low, high, count + 1)


@_styled
def vault_pnl_ecdf(paths: pd.DataFrame, by: str | None = None, ax: Axes | None = None) -> Figure:
    """Empirical CDF of the vault's P&L per path (``vault_pnl``, USD): the share of paths
    (0–1) with P&L at or below x, one curve per value of `by`."""
    groups = _groups(paths, by, "vault_pnl")
    fig, ax = _figure(ax)
    for i, (label, values) in enumerate(groups):
        if len(values):
            ax.ecdf(values, color=_colour(i), label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("vault P&L per path (USD)")
    ax.set_ylabel("cumulative share of paths")
    ax.set_title("Vault P&L, empirical CDF")
    if by is not None and any(len(values) for _, values in groups):
        ax.legend()
    return fig


@_styled
def vault_equity_fan(series: pd.DataFrame, ax: Axes | None = None,
                     quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> Figure:
    """Quantile fan of the vault's equity (``vault_equity``, USD) across paths, by step.

    Quantiles are paired from the outside in (first with last, …) into shaded bands,
    darker towards the middle; an unpaired middle quantile is drawn as a line. All
    rows of `series` are pooled: pass one point's rows to see one config.
    """
    analysis.require_columns(series, ["step", "vault_equity"], "series")
    qs = sorted(float(q) for q in quantiles)
    if not qs or not all(0 <= q <= 1 for q in qs):
        raise ValueError(f"quantiles must be a non-empty list in [0, 1]; got {quantiles!r}")
    fig, ax = _figure(ax)
    by_step = series.groupby("step")["vault_equity"]
    fan = by_step.quantile(qs).unstack()
    steps = fan.index.to_numpy(dtype=float)
    n_bands = len(qs) // 2
    for i in range(n_bands):
        lo, hi = qs[i], qs[-1 - i]
        ax.fill_between(steps, fan[lo].to_numpy(dtype=float), fan[hi].to_numpy(dtype=float),
                        color=_colour(0), alpha=0.15 + 0.2 * i / max(1, n_bands),
                        linewidth=0, label=f"{lo:.0%}–{hi:.0%}")
    if len(qs) % 2:
        mid = qs[n_bands]
        ax.plot(steps, fan[mid].to_numpy(dtype=float), color=_colour(0),
                label="median" if mid == 0.5 else f"{mid:.0%}")
    n_paths = series.groupby(["point", "path"]).ngroups if {"point", "path"} <= set(
        series.columns) else None
    ax.set_xlabel("time (steps)")
    ax.set_ylabel("vault equity (USD)")
    ax.set_title("Vault equity across paths" + (f" ({n_paths})" if n_paths else ""))
    ax.legend(title="quantiles")
    return fig


# ----------------------------------------------------------------------------- path


@_styled
def path_anatomy(series: pd.DataFrame, events: pd.DataFrame, path: int = 0, point: int = 0,
                 axes: Sequence[Axes] | None = None,
                 window: tuple[float, float] | str | None = "cascade") -> Figure:
    """One path, step by step, in three stacked panels sharing the time axis (steps,
    one minute each in the packaged scenarios):

    1. prices (USD): index, mark, and the best bid and ask;
    2. book depth within 1% of the mid (base units), bid and ask side;
    3. insurance fund and vault equity, as the change since the window's first step
       (USD; their levels then are in the legend), so that both show on one scale.

    Vertical lines in every panel mark the steps (event ``time``) of forced closes of
    that path — liquidation fills and backstop takeovers (grey, dashed) — and of ADL
    fills (red).

    `window` is the span of steps drawn: ``(first, last)``, ``None`` for the whole
    path, or ``"cascade"`` (the default): the busiest run of forced closes and ADL
    fills — from the step with the most of them, out to either side while the next
    one comes within :data:`CASCADE_GAP_STEPS` steps — with :data:`CASCADE_PAD_STEPS`
    steps either side; the whole path when it has none. `axes`, if given, are three
    Axes to draw into.
    """
    analysis.require_columns(series, ["point", "path", "step", "index", "mark", "best_bid",
                                      "best_ask", "bid_depth", "ask_depth", "insurance_fund",
                                      "vault_equity"], "series")
    analysis.require_columns(events, ["point", "path", "kind", "time"], "events")
    rows = series[(series["point"] == point) & (series["path"] == path)].sort_values("step")
    if rows.empty:
        raise ValueError(f"no series rows for point {point}, path {path}")
    if axes is not None and len(axes) != 3:
        raise ValueError(f"axes must be three Axes; got {len(axes)}")
    mine = events[(events["point"] == point) & (events["path"] == path)]
    forced_all = mine.loc[mine["kind"].isin(LIQUIDATION_KINDS), "time"].to_numpy(float)
    adl_all = mine.loc[mine["kind"] == "adl", "time"].to_numpy(float)
    first, last = _window(window, rows["step"].to_numpy(dtype=float),
                          np.concatenate([forced_all, adl_all]))
    rows = rows[(rows["step"] >= first) & (rows["step"] <= last)]
    if rows.empty:
        raise ValueError(f"window {window!r} holds no step of point {point}, path {path}")
    if axes is None:
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=ANATOMY_SIZE)
    else:
        fig = _root(axes[0])
    price_ax, depth_ax, fund_ax = axes
    step = rows["step"].to_numpy(dtype=float)

    price_ax.plot(step, rows["index"], color=_colour(0), label="index")
    price_ax.plot(step, rows["mark"], color=_colour(1), label="mark")
    for column, i in (("best_bid", 2), ("best_ask", 3)):
        price_ax.plot(step, rows[column], color=_colour(i), linewidth=0.8, alpha=0.8,
                      label=column.replace("_", " "))
    price_ax.set_ylabel("price (USD)")

    depth_ax.plot(step, rows["bid_depth"], color=_colour(2), label="bid depth")
    depth_ax.plot(step, rows["ask_depth"], color=_colour(3), label="ask depth")
    depth_ax.set_ylabel("depth within 1% (base)")

    for column, name, i in (("insurance_fund", "insurance fund", 4),
                            ("vault_equity", "vault equity", 0)):
        values = rows[column].to_numpy(dtype=float)
        fund_ax.plot(step, values - values[0], color=_colour(i),
                     label=f"{name}\n({values[0]:,.0f} at step {step[0]:g})")
    fund_ax.set_ylabel(f"change since step {step[0]:g} (USD)")

    forced = np.unique(forced_all[(forced_all >= first) & (forced_all <= last)])
    adl = np.unique(adl_all[(adl_all >= first) & (adl_all <= last)])
    for ax in axes:  # the event lines are named once, in the top panel's legend
        for i, t in enumerate(forced):
            ax.axvline(t, color="#888888", linestyle="--", linewidth=0.8,
                       label="liquidation / backstop" if i == 0 and ax is price_ax else None)
        for i, t in enumerate(adl):
            ax.axvline(t, color=ADL_COLOUR, linewidth=1.0, alpha=0.8,
                       label="ADL" if i == 0 and ax is price_ax else None)
        ax.set_xlabel("time (steps)")
        ax.set_xlim(step[0], step[-1])
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    for ax in (price_ax, depth_ax):  # shared x: the label shows on the bottom panel only
        ax.xaxis.label.set_visible(False)
    shown = "" if len(step) == len(series[(series["point"] == point)
                                          & (series["path"] == path)]) \
        else f", steps {step[0]:g}–{step[-1]:g}"
    price_ax.set_title(f"Path {path} at point {point}{shown}: {len(forced)} forced-close "
                       f"steps, {len(adl)} ADL steps")
    return fig


ADL_COLOUR = "#C00000"
LORENZ_GID = "lorenz"  # marks the curves lorenz drew on an Axes, to colour the next one
ANATOMY_SIZE = (9, 7)  # inches: three panels with their legends to the right


def _window(window: tuple[float, float] | str | None, steps: np.ndarray,
            times: np.ndarray) -> tuple[float, float]:
    """(first, last) step drawn by :func:`path_anatomy`."""
    whole = (float(steps.min()), float(steps.max()))
    if window is None:
        return whole
    if isinstance(window, str):
        if window != "cascade":
            raise ValueError(f'window must be "cascade", None or (first, last) steps; '
                             f"got {window!r}")
        if not len(times):
            return whole
        marked, counts = np.unique(times, return_counts=True)
        peak = int(np.argmax(counts))
        start = end = peak
        while start > 0 and marked[start] - marked[start - 1] <= CASCADE_GAP_STEPS:
            start -= 1
        while end + 1 < len(marked) and marked[end + 1] - marked[end] <= CASCADE_GAP_STEPS:
            end += 1
        return (max(whole[0], marked[start] - CASCADE_PAD_STEPS),
                min(whole[1], marked[end] + CASCADE_PAD_STEPS))
    if (isinstance(window, Sequence) and len(window) == 2
            and all(isinstance(v, int | float | np.integer | np.floating) for v in window)
            and window[0] <= window[1]):
        return float(window[0]), float(window[1])
    raise ValueError(f'window must be "cascade", None or (first, last) steps with '
                     f"first ≤ last; got {window!r}")


# ---------------------------------------------------------------------------- equity


@_styled
def lorenz(haircuts: Sequence[float] | np.ndarray, ax: Axes | None = None,
           label: str | None = None, title: str = "Concentration") -> Figure:
    """Lorenz curve of non-negative amounts (e.g. USD of profit ADL'd per account):
    cumulative share of accounts, smallest amounts first (x, 0–1), against their
    cumulative share of the total amount (y, 0–1), from (0, 0) to (1, 1), with the
    equality line. The Gini coefficient is added to the legend; `title` is the
    Axes' title (one per panel when several curves are drawn side by side).

    Called again on the same `ax`, it adds a curve in the next colour of the cycle
    (the equality line is drawn once), so several groups compare on one Axes.
    """
    amounts = np.asarray(haircuts, dtype=float).ravel()
    if not np.isfinite(amounts).all() or (amounts < 0).any():
        raise ValueError("lorenz needs finite, non-negative amounts")
    fig, ax = _figure(ax)
    n = len(amounts)
    total = amounts.sum()
    x = np.linspace(0.0, 1.0, n + 1)
    if n and total > 0:
        y = np.concatenate([[0.0], np.cumsum(np.sort(amounts)) / total])
        gini = 1.0 - float(np.sum((y[1:] + y[:-1]) / n))
        text = f"{label or 'Lorenz curve'} (Gini {gini:.2f})"
    else:
        y = x.copy()  # no amount to share: nothing is unequal
        text = label or "Lorenz curve"
    drawn = sum(line.get_gid() == LORENZ_GID for line in ax.lines)
    if not drawn:
        ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1.0,
                label="equality")
    ax.plot(x, y, color=_colour(drawn), marker="." if n <= 50 else None, label=text,
            gid=LORENZ_GID)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("cumulative share of accounts")
    ax.set_ylabel("cumulative share of amount")
    ax.set_title(title)
    ax.legend(loc="upper left")
    return fig


@_styled
def sobol_indices(table: pd.DataFrame, ax: Axes | None = None, title: str | None = None) -> Figure:
    """First-order (S1) and total (ST) Sobol indices of one output, a pair of horizontal
    bars per factor with their intervals (:func:`perpabm.analysis.sobol_indices`'s
    table; its ``attrs`` name the output and the design's size in the title).

    x: the share of the output's variance (S1: the factor alone; ST: with the others),
    clipped to [−0.05, 1.05] for the axis; y: the factors, in the table's order.
    """
    analysis.require_columns(table, ["factor", "S1", "S1_low", "S1_high", "ST", "ST_low",
                                     "ST_high"], "Sobol indices")
    fig, ax = _figure(ax)
    y = np.arange(len(table))
    height = 0.38
    for offset, name, colour in ((-height / 2, "S1", _colour(0)), (height / 2, "ST",
                                                                    _colour(1))):
        value = table[name].to_numpy(dtype=float)
        err = np.vstack([value - table[f"{name}_low"].to_numpy(dtype=float),
                         table[f"{name}_high"].to_numpy(dtype=float) - value])
        label = "first order (S1)" if name == "S1" else "total (ST)"
        ax.barh(y + offset, value, height=height, xerr=np.clip(err, 0.0, None),
                color=colour, alpha=0.85, ecolor="#333333", label=label)
    ax.set_yticks(y, [str(f) for f in table["factor"]])
    ax.invert_yaxis()
    ax.axvline(0.0, color="#888888", linewidth=0.8)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("share of the output's variance")
    ax.set_ylabel("factor")
    attrs = table.attrs
    size = (f" — {attrs['base_points']} base points, {attrs['design_points']} points × "
            f"{attrs['paths_per_point']} paths" if "base_points" in attrs else "")
    ax.set_title(title or f"Sobol indices of {attrs.get('metric', 'the output')}{size}",
                 fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    return fig

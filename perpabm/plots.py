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
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy.stats import binomtest

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


def _root(ax: Axes) -> Figure:
    """The top-level Figure holding `ax` (also when it sits in a SubFigure)."""
    fig = ax.figure
    return fig if isinstance(fig, Figure) else fig.figure


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what} has no column(s) {missing}; it has {list(frame.columns)}")


def _groups(paths: pd.DataFrame, by: str | None,
            column: str) -> list[tuple[str | None, np.ndarray]]:
    """(legend label, finite values of `column`) per value of `by` (one group if None)."""
    _require(paths, [column] + ([by] if by is not None else []), "paths")
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


# ------------------------------------------------------------------------------ ADL


@_styled
def adl_frequency(paths: pd.DataFrame, by: str, ax: Axes | None = None,
                  confidence: float = 0.95) -> Figure:
    """Share of paths on which ADL fired (``adl_fired``), one bar per value of `by`.

    Error bars are Wilson score intervals at `confidence` for a binomial share;
    each bar is annotated with k/n (paths with ADL / paths). y: share of paths
    (0–1); x: the values of column `by` (e.g. a sweep parameter).
    """
    _require(paths, ["adl_fired", by], "paths")
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
    ax.set_xticks(x, [_tick_label(k) for k in keys])
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
    _require(paths, ["adl_fired", x, y], "paths")
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
def adl_scatter(events: pd.DataFrame, by: str | None = None, ax: Axes | None = None) -> Figure:
    """Who gets auto-deleveraged: one point per ADL fill ("adl" rows of `events`),
    the ADL'd account's effective leverage (x, before the close; log scale when all
    positive) against the unrealised profit closed (``amount``, USD, y).

    With `by` (a column of `events`, e.g. a sweep parameter merged in by the caller),
    points are coloured by its value: a discrete legend for few values, a colorbar
    for many numeric ones.
    """
    _require(events, ["kind", "leverage", "amount"] + ([by] if by is not None else []),
             "events")
    fig, ax = _figure(ax)
    adl = events[events["kind"] == "adl"]
    adl = adl[np.isfinite(adl["leverage"].to_numpy(dtype=float))
              & np.isfinite(adl["amount"].to_numpy(dtype=float))]
    if by is None:
        ax.scatter(adl["leverage"], adl["amount"], s=18, alpha=0.7, color=_colour(0),
                   edgecolors="none")
    else:
        values = adl[by]
        numeric = pd.api.types.is_numeric_dtype(values)
        if numeric and values.nunique() > 8:
            points = ax.scatter(adl["leverage"], adl["amount"], c=values.to_numpy(dtype=float),
                                s=18, alpha=0.8, cmap="viridis", edgecolors="none")
            fig.colorbar(points, ax=ax).set_label(by)
        else:
            for i, (key, group) in enumerate(adl.groupby(by, sort=True)):
                ax.scatter(group["leverage"], group["amount"], s=18, alpha=0.7,
                           color=_colour(i), edgecolors="none",
                           label=f"{by} = {_tick_label(key)}")
            if len(adl):
                ax.legend()
    if len(adl) and (adl["leverage"] > 0).all():
        ax.set_xscale("log")
    ax.set_xlabel("effective leverage of the ADL'd account (×)")
    ax.set_ylabel("unrealised profit closed (USD)")
    ax.set_title(f"ADL fills ({len(adl)})")
    return fig


# ---------------------------------------------------------------------------- vault


@_styled
def adl_shares(table: pd.DataFrame, group: str, by: str | None = None,
               ax: Axes | None = None) -> Figure:
    """Share of ADL'd profit per group — a table of :func:`perpabm.analysis.adl_by_group`
    — as bars with their bootstrap intervals (``low``, ``high``), one bar series per
    value of `by` (e.g. the ranking rule). y: share of profit closed (0–1); x: `group`.
    """
    _require(table, [group, "share", "low", "high", *([by] if by else [])], "table")
    fig, ax = _figure(ax)
    groups = [g for g in pd.unique(table[group].astype(str))]
    series = [(None, table)] if by is None else list(table.groupby(by, sort=True))
    width = 0.8 / len(series)
    for i, (key, frame) in enumerate(series):
        frame = frame.set_index(frame[group].astype(str)).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        share = frame["share"].to_numpy(dtype=float)
        low = np.clip(share - frame["low"].to_numpy(dtype=float), 0, None)
        high = np.clip(frame["high"].to_numpy(dtype=float) - share, 0, None)
        ax.bar(x, share, width=width, yerr=[np.nan_to_num(low), np.nan_to_num(high)],
               color=_colour(i), ecolor="#333333",
               label=None if key is None else f"{by} = {_tick_label(key)}")
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(group)
    ax.set_ylabel("share of ADL'd profit (0–1)")
    ax.set_title("Whose profit ADL closes (95% bootstrap intervals)")
    if by is not None:
        ax.legend(fontsize="small")
    return fig


@_styled
def vault_pnl_distribution(paths: pd.DataFrame, by: str | None = None, ax: Axes | None = None,
                           levels: Sequence[float] = (0.95, 0.99)) -> Figure:
    """Histogram (density, 1/USD) of the vault's P&L per path (``vault_pnl``, USD), one
    per value of `by`, on shared bins.

    Vertical lines mark each group's value-at-risk at `levels`: VaR = −(the
    (1 − level) quantile of P&L), drawn at P&L = −VaR and given in the legend as a loss.
    """
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"levels must lie in (0, 1); got {level!r}")
    groups = _groups(paths, by, "vault_pnl")
    fig, ax = _figure(ax)
    pooled = np.concatenate([values for _, values in groups]) if groups else np.array([])
    bins = (np.histogram_bin_edges(pooled, bins="auto") if len(pooled) else 10)
    if isinstance(bins, np.ndarray) and len(bins) > 61:
        bins = np.histogram_bin_edges(pooled, bins=60)
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1))]
    for i, (label, values) in enumerate(groups):
        if not len(values):
            continue
        colour = _colour(i)
        ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.3,
                color=colour, edgecolor=colour, label=label)
        for j, level in enumerate(levels):
            var = 0.0 - float(np.quantile(values, 1 - level))  # no −0
            ax.axvline(-var, color=colour, linestyle=styles[j % len(styles)], linewidth=1.2,
                       label=f"{'' if label is None else label + ': '}VaR {level:.0%} = "
                             f"{var:,.0f} USD")
    ax.set_xlabel("vault P&L per path (USD)")
    ax.set_ylabel("density (1/USD)")
    ax.set_title("Vault P&L")
    if any(len(values) for _, values in groups):
        ax.legend()
    return fig


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
    _require(series, ["step", "vault_equity"], "series")
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
                 axes: Sequence[Axes] | None = None) -> Figure:
    """One path, step by step, in three stacked panels sharing the time axis (steps):

    1. prices (USD): index, mark, and the best bid and ask;
    2. book depth within 1% of the mid (base units), bid and ask side;
    3. insurance fund and vault equity (USD).

    Vertical lines in every panel mark the steps (event ``time``) of forced closes of
    that path — liquidation fills and backstop takeovers (grey, dashed) — and of ADL
    fills (red). `axes`, if given, are three Axes to draw into.
    """
    _require(series, ["point", "path", "step", "index", "mark", "best_bid", "best_ask",
                      "bid_depth", "ask_depth", "insurance_fund", "vault_equity"], "series")
    _require(events, ["point", "path", "kind", "time"], "events")
    rows = series[(series["point"] == point) & (series["path"] == path)].sort_values("step")
    if rows.empty:
        raise ValueError(f"no series rows for point {point}, path {path}")
    if axes is None:
        fig, axes = plt.subplots(3, 1, sharex=True, figsize=(7, 7))
    else:
        if len(axes) != 3:
            raise ValueError(f"axes must be three Axes; got {len(axes)}")
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

    fund_ax.plot(step, rows["insurance_fund"], color=_colour(4), label="insurance fund")
    fund_ax.plot(step, rows["vault_equity"], color=_colour(0), label="vault equity")
    fund_ax.set_ylabel("USD")

    mine = events[(events["point"] == point) & (events["path"] == path)]
    forced = np.unique(mine.loc[mine["kind"].isin(LIQUIDATION_KINDS), "time"].to_numpy(float))
    adl = np.unique(mine.loc[mine["kind"] == "adl", "time"].to_numpy(float))
    for ax in axes:
        for i, t in enumerate(forced):
            ax.axvline(t, color="#888888", linestyle="--", linewidth=0.8,
                       label="liquidation / backstop" if i == 0 else None)
        for i, t in enumerate(adl):
            ax.axvline(t, color="#C00000", linewidth=1.0, alpha=0.8,
                       label="ADL" if i == 0 else None)
        ax.set_xlabel("time (steps)")
        ax.legend(loc="best", fontsize="small", ncols=2)
    for ax in (price_ax, depth_ax):  # shared x: the label shows on the bottom panel only
        ax.xaxis.label.set_visible(False)
    price_ax.set_title(f"Path {path} at point {point}: {len(forced)} forced-close steps, "
                       f"{len(adl)} ADL steps")
    return fig


# ---------------------------------------------------------------------------- equity


@_styled
def lorenz(haircuts: Sequence[float] | np.ndarray, ax: Axes | None = None,
           label: str | None = None) -> Figure:
    """Lorenz curve of non-negative amounts (e.g. USD of profit ADL'd per account):
    cumulative share of accounts, smallest amounts first (x, 0–1), against their
    cumulative share of the total amount (y, 0–1), from (0, 0) to (1, 1), with the
    equality line. The Gini coefficient is added to the legend.
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
    ax.plot([0, 1], [0, 1], color="#888888", linestyle="--", linewidth=1.0, label="equality")
    ax.plot(x, y, color=_colour(0), marker="." if n <= 50 else None, label=text)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("cumulative share of accounts")
    ax.set_ylabel("cumulative share of amount")
    ax.set_title("Concentration")
    ax.legend(loc="upper left")
    return fig

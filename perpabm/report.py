"""The standard report of a run or sweep: its tables as CSV, its figures as PNG and a
``report.md`` that lists them, with the key table written out.

Every table is split by the sweep's factors (the columns of ``Results.points`` other
than ``"point"``), or by the columns given; a run without factors is one group. What
the results cannot show is skipped and said so in ``report.md``: figures of the vault
where no path has a vault P&L (venues without a vault), of ADL fills where ADL never
fired, of per-step series where the run kept none. Time is in the model's one-minute
steps.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perpabm import analysis, plots, storage
from perpabm.results import Results

__all__ = ["REPORT_NAME", "TABLES", "write_report"]

REPORT_NAME = "report.md"

TABLES = {
    "adl_frequency.csv": "share of paths on which ADL fired, Wilson 95% interval",
    "adl_rate.csv": "ADL fills per path-day, exact Poisson 95% interval",
    "vault_pnl.csv": "vault P&L (USD): mean, quantiles, P(loss), VaR and ES at 95% and 99% "
                     "with their intervals; NaN where too few paths (see tail_paths*)",
    "overshoot.csv": "ADL episodes: profit closed, deficit covered, overshoot (USD), "
                     "median PTSR",
    "time_to_first_adl.csv": "minutes to the first ADL on the paths where it fired",
    "adl_by_account_type.csv": "share of ADL'd profit per kind of account, bootstrap "
                               "95% interval",
    "adl_by_leverage.csv": "share of ADL'd profit per leverage bucket, bootstrap 95% interval",
}
"""The tables written, file name → what each holds."""

KEY_COLUMNS = {  # the key table of report.md: (source, column) → heading
    ("adl_frequency", "paths"): "paths",
    ("adl_frequency", "share"): "P(ADL)",
    ("adl_frequency", "low"): "P(ADL) low",
    ("adl_frequency", "high"): "P(ADL) high",
    ("vault_pnl", "mean"): "vault P&L mean (USD)",
    ("vault_pnl", "p_loss"): "P(vault loss)",
    ("vault_pnl", "var95"): "VaR 95% (USD)",
    ("vault_pnl", "es95"): "ES 95% (USD)",
}

ALL_PATHS = "all paths"  # the one group of a run without factors
SIGNIFICANT_DIGITS = 4  # of the numbers in report.md's key table below WHOLE_FROM
WHOLE_FROM = 1_000.0  # from here on, numbers are written whole with thousands separators


def write_report(results: Results, out: str | os.PathLike[str],
                 by: Sequence[str] | None = None) -> list[Path]:
    """Write the standard tables and figures of `results` into the folder `out`
    (created if missing) and a ``report.md`` listing them; returns the paths written,
    ``report.md`` last.

    Tables (:data:`TABLES`) are split by `by`, by default every sweep factor (the
    columns of ``results.points`` other than ``"point"``). Figures: ADL frequency
    (and its heatmap for two factors), the vault's P&L distribution and ECDF, the ADL
    fills' leverage against profit, the shares of ADL'd profit per kind of account,
    Lorenz curves of profit closed, and — when the run kept per-step series — the
    vault's equity fan per point and the anatomy of the path with the most ADL fills.
    Each file is written whole (to a temporary name, then renamed). Failed paths
    leave the report partial: that is warned about and stated in ``report.md``.
    """
    out = Path(out)
    factors = _factors(results, by)
    out.mkdir(parents=True, exist_ok=True)
    paths = results.paths
    if len(results.failures) or len(results.missing):
        warnings.warn(f"{len(results.failures)} path(s) failed and {len(results.missing)} "
                      f"are missing; the report at {out} covers the {len(paths)} that "
                      f"finished", RuntimeWarning, stacklevel=2)
    keys = _path_keys(factors)
    keyed = paths[keys].drop_duplicates(["point", "path"]) if len(paths) else \
        pd.DataFrame(columns=keys)
    events = results.events.merge(keyed, on=["point", "path"], how="left") \
        if len(results.events) else pd.DataFrame(columns=[*results.events.columns, *factors])
    tables = _tables(paths, events, factors)
    written = [_write(out / name, lambda h, t=table: t.to_csv(h, index=False))
               for name, table in tables.items()]
    drawn, skipped = _figures(results, paths, events, factors, out)
    written += drawn
    markdown = _markdown(results, factors, tables, [p.name for p in drawn], skipped)
    written.append(_write(out / REPORT_NAME, lambda h: h.write(markdown.encode("utf-8"))))
    return written


def _factors(results: Results, by: Sequence[str] | None) -> list[str]:
    if by is None:
        return [c for c in results.points.columns if c != "point"]
    if isinstance(by, str) or not all(isinstance(c, str) for c in by):
        raise TypeError(f"by must be a list of column names or None; got {by!r}")
    analysis.require_columns(results.paths, list(by), "results.paths")
    return list(by)


def _path_keys(factors: list[str]) -> list[str]:
    """"point", "path" and the factors, each once."""
    return list(dict.fromkeys(["point", "path", *factors]))


def _write(path: Path, writer: Callable[[Any], object]) -> Path:
    """Write `path` whole, through `writer(binary handle)` (storage.write_durably)."""
    storage.write_durably(path, writer)
    return path


# ------------------------------------------------------------------------------ tables


def _tables(paths: pd.DataFrame, events: pd.DataFrame,
            factors: list[str]) -> dict[str, pd.DataFrame]:
    adl_events = events if len(events) else _empty_events(factors)
    point_column = [] if "point" in factors else ["point"]  # the factors name the points
    return {
        "adl_frequency.csv": analysis.adl_frequency(paths, by=factors),
        "adl_rate.csv": analysis.adl_rate(paths, by=factors),
        "vault_pnl.csv": analysis.vault_pnl(paths, by=factors),
        "overshoot.csv": _overshoot(paths, adl_events, factors),
        "time_to_first_adl.csv": analysis.time_to_first_adl(paths, by=factors),
        "adl_by_account_type.csv": analysis.adl_by_group(
            adl_events, by=[*factors, "account_type"]).drop(columns=point_column),
        "adl_by_leverage.csv": analysis.adl_by_group(
            adl_events, by=[*factors, "leverage_bucket"]).drop(columns=point_column),
    }


def _empty_events(factors: list[str]) -> pd.DataFrame:
    """An event table with no rows and the columns the ADL tables read."""
    return pd.DataFrame(columns=list(dict.fromkeys([
        "point", "path", "kind", "liquidation", "account", "amount", "quantity", "price",
        "mark_price", "leverage", "account_type", *factors])))


def _overshoot(paths: pd.DataFrame, events: pd.DataFrame, factors: list[str]) -> pd.DataFrame:
    """Per group of `factors`: ADL episodes, their profit closed, deficit covered and
    overshoot summed (USD), and the median PTSR; a group without ADL has 0 episodes."""
    episodes = analysis.adl_overshoot(events)
    if len(episodes):
        keyed = paths[_path_keys(factors)].drop_duplicates(["point", "path"])
        episodes = episodes.merge(keyed, on=["point", "path"], how="left")
    groups = paths[factors].drop_duplicates().sort_values(factors) if factors else \
        pd.DataFrame(index=[0])
    rows = []
    for _, group in groups.iterrows():
        mine = episodes
        if len(mine) and factors:
            mine = mine[(mine[factors] == group[factors]).all(axis=1)]
        rows.append({**group[factors].to_dict(), "episodes": len(mine),
                     "profit_closed": float(mine["profit_closed"].sum()),
                     "deficit_covered": float(mine["deficit_covered"].sum()),
                     "overshoot": float(mine["overshoot"].sum()),
                     "median_ptsr": float(mine["ptsr"].median()) if len(mine) else math.nan})
    return pd.DataFrame(rows, columns=[*factors, "episodes", "profit_closed",
                                       "deficit_covered", "overshoot", "median_ptsr"])


# ----------------------------------------------------------------------------- figures


def _pooled_points(adl: pd.DataFrame) -> pd.DataFrame:
    """`adl` without its ``point`` column, each (point, path) one path: the groups of the
    report's split pool the points they hold (a split by nothing pools them all), where
    :func:`analysis.adl_by_group` would keep every point apart."""
    if "point" not in adl:
        return adl
    path = adl["point"].astype(str) + "/" + adl["path"].astype(str)
    return adl.drop(columns="point").assign(path=path)


def _figures(results: Results, paths: pd.DataFrame, events: pd.DataFrame,
             factors: list[str], out: Path) -> tuple[list[Path], dict[str, str]]:
    """Draw and save every figure that applies: (files written, {file: why not drawn})."""
    label = _label_column(factors)
    paths = paths.assign(**{label: _labels(paths, factors)}) if len(paths) else paths
    adl = events[events["kind"] == "adl"] if len(events) else events
    if len(adl):
        adl = adl.assign(**{label: _labels(adl, factors)})
    has_pnl = bool(len(paths)) and bool(np.isfinite(paths["vault_pnl"].to_numpy(dtype=float)).any())
    n_groups = paths[label].nunique() if len(paths) else 0
    no_paths = "no path finished"
    no_adl = "ADL never fired on any path"
    no_pnl = "no path has a vault P&L (a venue without a vault)"
    no_series = "the run kept no per-step series (run with with_series=True)"
    too_many = f"more than {MAX_PANELS} groups to draw one panel each"
    plan: dict[str, tuple[str | None, Callable[[], Figure]]] = {
        "adl_frequency.png": (None if len(paths) else no_paths,
                              lambda: plots.adl_frequency(paths, label)),
        "vault_pnl.png": (None if has_pnl else no_pnl,
                          lambda: plots.vault_pnl_distribution(paths, by=label)),
        "vault_pnl_ecdf.png": (None if has_pnl else no_pnl,
                               lambda: plots.vault_pnl_ecdf(paths, by=label)),
        "adl_scatter.png": (None if len(adl) else no_adl,
                            lambda: plots.adl_scatter(adl, by=label)),
        "adl_shares.png": (None if len(adl) else no_adl, lambda: plots.adl_shares(
            analysis.adl_by_group(_pooled_points(adl), by=[label, "account_type"]),
            "account_type", by=label if n_groups > 1 else None)),
        "lorenz.png": (no_adl if not len(adl) else too_many if n_groups > MAX_PANELS else None,
                       lambda: _lorenz_panels(adl, label)),
    }
    if len(factors) == 2:
        plan["adl_heatmap.png"] = (None if len(paths) else no_paths, lambda: plots.adl_heatmap(
            paths, x=factors[0], y=factors[1]))
    has_series = len(results.series) > 0
    has_equity = has_series and bool(
        np.isfinite(results.series["vault_equity"].to_numpy(dtype=float)).any())
    plan["vault_equity.png"] = (
        no_series if not has_series else no_paths if not len(paths) else no_pnl if not has_equity
        else too_many if results.series["point"].nunique() > MAX_PANELS else None,
        lambda: _fan_panels(results.series, paths, label))
    plan["path_anatomy.png"] = (None if has_series else no_series,
                                lambda: _anatomy(results, events))
    drawn, skipped = [], {}
    for name, (reason, draw) in plan.items():
        if reason is not None:
            skipped[name] = reason
            continue
        fig = draw()
        try:
            drawn.append(_write(out / name, lambda h, f=fig: f.savefig(h, format="png")))
        finally:
            plt.close(fig)
    return drawn, skipped


def _label_column(factors: list[str]) -> str:
    """The column naming a row's group in the figures: the factor itself, the factors
    joined by " · ", or "run" for a run without factors."""
    return SEPARATOR.join(factors) if factors else "run"


SEPARATOR = " · "  # between the factors' names, and their values, in a group's label


def _labels(frame: pd.DataFrame, factors: list[str]) -> pd.Series:
    """Each row's group: the factor's value for one factor, "x · y" for several
    (ordered as the factors sort), "all paths" for none."""
    if len(factors) == 1:
        return frame[factors[0]]
    if not factors:
        return pd.Series(ALL_PATHS, index=frame.index)

    def joined(rows: pd.DataFrame) -> pd.Series:
        return rows.apply(lambda row: SEPARATOR.join(_value(row[f]) for f in factors), axis=1)

    order = joined(frame[factors].drop_duplicates().sort_values(factors))
    return pd.Series(pd.Categorical(joined(frame[factors]), categories=list(order),
                                    ordered=True), index=frame.index)


def _value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


MAX_PANELS = plots.MAX_FACETS  # groups drawn one panel each (Lorenz curves, fans), at most
PANEL_INCHES = (3.2, 3.0)  # width and height of one panel


def _panels(n: int, **kwargs: object) -> tuple[Figure, list]:
    """A figure of `n` panels, :data:`perpabm.plots.FACET_COLUMNS` to a row, in the
    house style."""
    columns = min(plots.FACET_COLUMNS, n)
    rows = -(-n // columns)
    with plt.style.context(plots.STYLE_PATH):
        fig, grid = plt.subplots(rows, columns, squeeze=False, figsize=(
            PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows), **kwargs)
    axes = list(grid.ravel())
    for extra in axes[n:]:
        fig.delaxes(extra)
    return fig, axes[:n]


def _lorenz_panels(adl: pd.DataFrame, label: str) -> Figure:
    """One Lorenz panel of profit closed per ADL'd account for each group with ADL."""
    haircuts = analysis.adl_haircuts(adl)
    haircuts = haircuts.merge(adl[["point", "path", label]].drop_duplicates(["point", "path"]),
                              on=["point", "path"], how="left")
    groups = list(haircuts.groupby(label, sort=True, observed=True))
    fig, axes = _panels(len(groups))
    for ax, (key, group) in zip(axes, groups, strict=True):
        plots.lorenz(group["profit_closed"].clip(lower=0).to_numpy(), ax=ax, label="ADL",
                     title=_value(key))
    return fig


def _fan_panels(series: pd.DataFrame, paths: pd.DataFrame, label: str) -> Figure:
    """The vault's equity fan, one panel per point in the groups' order, titled with its
    group; the quantiles' legend on the first panel only."""
    first = paths.drop_duplicates("point").set_index("point")[label]
    points = [p for p in first.sort_values().index if p in set(series["point"])]
    fig, axes = _panels(len(points), sharey=True)
    for i, (ax, point) in enumerate(zip(axes, points, strict=True)):
        plots.vault_equity_fan(series[series["point"] == point], ax=ax)
        ax.set_title(_value(first[point]), loc="left", fontsize="medium")
        if i:
            ax.get_legend().remove()
    return fig


def _anatomy(results: Results, events: pd.DataFrame) -> Figure:
    """The anatomy of the path with the most ADL fills (else the most forced closes,
    else the first path), around its cascade."""
    series_keys = results.series[["point", "path"]].drop_duplicates()
    marked = events[events["kind"].isin(["adl", *plots.LIQUIDATION_KINDS])] if len(events) \
        else events
    point, path = (int(v) for v in series_keys.iloc[0])
    if len(marked):
        weight = np.where(marked["kind"] == "adl", len(marked) + 1, 1)  # ADL fills first
        busiest = marked.assign(weight=weight).groupby(["point", "path"])["weight"].sum()
        busiest = busiest[busiest.index.isin(pd.MultiIndex.from_frame(series_keys))]
        if len(busiest):
            point, path = (int(v) for v in busiest.idxmax())
    return plots.path_anatomy(results.series, results.events, path=path, point=point)


# ---------------------------------------------------------------------------- report.md


def _markdown(results: Results, factors: list[str], tables: dict[str, pd.DataFrame],
              figures: list[str], skipped: dict[str, str]) -> str:
    paths = results.paths
    n_points = paths["point"].nunique() if len(paths) else 0
    lines = ["# Report", "",
             f"{len(paths)} paths over {n_points} point(s); split by "
             f"{', '.join(f'`{f}`' for f in factors) or 'nothing (one group)'}. "
             f"Per-step series: {'yes' if len(results.series) else 'no'}.", ""]
    if len(results.failures):
        lines += [f"**Partial:** {len(results.failures)} path(s) failed and are not in "
                  f"these tables (see the run's failures).", ""]
    if len(results.missing):
        lines += [f"**Partial:** {len(results.missing)} planned path(s) are missing from "
                  f"the results folder and are not in these tables (run the same command "
                  f"into it again to compute them).", ""]
    pnl = tables["vault_pnl.csv"]
    without = pnl.loc[pnl["paths"] == 0, factors]
    if len(pnl) and len(without):
        groups = "; ".join(", ".join(f"{f} = {_value(v)}" for f, v in row.items())
                           for _, row in without.iterrows()) or ALL_PATHS
        lines += [f"No vault P&L (a venue without a vault) for: {groups}.", ""]
    lines += ["## Key figures", "", _markdown_table(_key_table(tables, factors)), "",
              f"VaR and ES are blank where fewer than {analysis.MIN_TAIL_PATHS} paths lie "
              f"beyond the quantile (`tail_paths95` in `vault_pnl.csv`); intervals are "
              f"blank where fewer than {analysis.MIN_BOOTSTRAP_PATHS} values or all equal.",
              "", "## Tables", "", "| file | what |", "|---|---|"]
    lines += [f"| `{name}` | {what} ({len(tables[name])} rows) |" for name, what in TABLES.items()]
    lines += ["", "## Figures", ""]
    lines += [f"- `{name}`" for name in figures] or ["- none"]
    if skipped:
        lines += ["", "## Not drawn", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines) + "\n"


def _key_table(tables: dict[str, pd.DataFrame], factors: list[str]) -> pd.DataFrame:
    frequency = tables["adl_frequency.csv"]
    pnl = tables["vault_pnl.csv"]
    sources = {"adl_frequency": frequency, "vault_pnl": pnl}
    key = frequency[factors].copy() if factors else pd.DataFrame(index=frequency.index)
    for (source, column), heading in KEY_COLUMNS.items():
        key[heading] = sources[source][column].to_numpy()
    return key


def _markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table; numbers to :data:`SIGNIFICANT_DIGITS` digits, NaN blank."""
    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            if math.isnan(value):
                return ""
            return f"{value:,.0f}" if abs(value) >= WHOLE_FROM else \
                f"{value:.{SIGNIFICANT_DIGITS}g}"
        return str(value)

    if frame.empty:
        return "(no paths)"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *rows])

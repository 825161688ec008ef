"""A run held against the published record of a real event, fact by fact.

A record is a tuple of :class:`Fact`: a figure someone observed (a value, or a range
where sources disagree), its unit and its source by name. Each fact names a
*measure*: a function of one path's results that gives the same figure on the model
(:data:`MEASURES`, one column each of :func:`path_measures`). :func:`record_table`
sets the two side by side: the record, the model's figure — the median over the paths
where the measure is defined, or the mean for a yes/no measure (the share of paths on
which ADL fired) — the central band of those paths (90% by default), and whether the
record falls in the band: whether it is an outcome the model could have produced on
one path, the fair question for one historical event against a distribution of paths.

The model's market is smaller than a venue's, so every fact is a scale-free figure:
a time, a share, a leverage, or a ratio of two amounts of money. The 2025-10-10 facts
and their sources are written out, with quotes, in ``docs/validation.md``.

Time: event times are in steps of the model (:attr:`RunConfig.step_minutes` minutes
each); the measures turn them into seconds with the config's step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpabm.analysis import adl_overshoot_by_path, require_columns
from perpabm.config import ScenarioConfig
from perpabm.config.market import SECONDS_PER_MINUTE
from perpabm.results import KEYS, Results
from perpabm.runner import run_paths

__all__ = ["MEASURES", "OCT10_2025", "RECORDS", "Fact", "path_measures",
           "record_table", "validate_scenario"]

BAND = 0.90
"""Share of the paths the model's band covers: from the 5th to the 95th percentile."""

STATISTICS = {"median": np.median, "mean": np.mean}
"""How the paths' values of a measure make the model's figure for a fact."""

VAULT_ACCOUNT_TYPES = ("vault_liquidator", "vault_market_making")
"""``account_type`` labels of the vault's accounts (:data:`perpabm.model.ACCOUNT_TYPES`)."""


@dataclass(frozen=True)
class Fact:
    """One observed figure of a real event.

    ``low`` and ``high`` bound it: equal for a single figure, apart where sources
    disagree or a source gives a range. ``measure`` names the column of
    :func:`path_measures` that gives the same figure on a model path; ``source`` names
    where the figure comes from (``docs/validation.md`` quotes it); ``statistic`` how
    the paths' values make the model's figure: ``"median"``, or ``"mean"`` for a yes/no
    measure (the share of paths).
    """

    measure: str
    description: str
    unit: str
    low: float
    high: float
    source: str
    statistic: str = "median"

    def __post_init__(self) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"Fact.measure must be one of {sorted(MEASURES)}; "
                             f"got {self.measure!r}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"Fact.statistic must be one of {list(STATISTICS)}; "
                             f"got {self.statistic!r}")
        if not self.low <= self.high:
            raise ValueError(f"Fact {self.measure!r}: low must be ≤ high; "
                             f"got {self.low!r}, {self.high!r}")

    @property
    def shown(self) -> str:
        """The record as printed: one figure, or "low–high"."""
        if self.low == self.high:
            return _number(self.low)
        return f"{_number(self.low)}–{_number(self.high)}"


def _number(value: float) -> str:
    if value == 0 or math.isnan(value):
        return f"{value:g}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


# ---------------------------------------------------------------- measures: one path each


def _per_adl_path(results: Results,
                  figure: Callable[[pd.DataFrame], pd.Series]) -> pd.Series:
    """`figure` of the "adl" rows (a Series indexed by point, path) aligned to every path
    of ``results.paths``, in its order; NaN on a path without ADL."""
    events = results.events
    index = pd.MultiIndex.from_frame(results.paths[KEYS])
    adl = events[events["kind"] == "adl"] if len(events) else events
    if not len(adl):
        return pd.Series(np.nan, index=range(len(index)))
    return figure(adl).reindex(index).reset_index(drop=True)


def _liquidated(paths: pd.DataFrame) -> pd.Series:
    """Notional a path liquidated, USD: in the book and by takeover (the vault's
    liquidator, a fund); NaN where it liquidated nothing, so that a ratio to it is too."""
    require_columns(paths, ["liquidated_notional", "backstop_notional"])
    liquidated = paths["liquidated_notional"] + paths["backstop_notional"]
    return liquidated.where(liquidated > 0)


def adl_fired(results: Results, config: ScenarioConfig) -> pd.Series:
    """1 on a path where ADL fired, 0 elsewhere (the paths' ``adl_fired``); its mean over
    paths is the share of paths with ADL."""
    require_columns(results.paths, ["adl_fired"])
    return (results.paths["adl_fired"] > 0).astype(float).reset_index(drop=True)


def adl_delay_seconds(results: Results, config: ScenarioConfig) -> pd.Series:
    """Seconds from the first liquidation of the cascade to the first ADL fill: the paths'
    ``first_adl_delay_seconds`` (:func:`perpabm.model.cascade_delay`); NaN without ADL."""
    require_columns(results.paths, ["first_adl_delay_seconds"])
    return results.paths["first_adl_delay_seconds"].astype(float).reset_index(drop=True)


def adl_duration_seconds(results: Results, config: ScenarioConfig) -> pd.Series:
    """Seconds from a path's first ADL fill to its last: (last − first event time) ×
    the step in seconds. A path whose ADL all falls in one tick has 0; NaN without ADL.

    Worked example: ADL fills at steps 1,262 and 1,273 of a one-minute clock:
    (1,273 − 1,262) · 60 = 660 s.
    """
    step_seconds = config.run.step_minutes * SECONDS_PER_MINUTE
    return _per_adl_path(results, lambda adl: step_seconds * adl.groupby(KEYS)["time"].agg(
        lambda t: t.max() - t.min()))


def adl_to_liquidated(results: Results, config: ScenarioConfig) -> pd.Series:
    """ADL notional ÷ liquidated notional: what ADL closed against what liquidation
    closed, in the book (``liquidated_notional``) and by takeover (``backstop_notional``:
    the vault's liquidator, a fund). NaN where nothing was liquidated or ADL never fired.

    Worked example: 2.0M USD liquidated in the book, 3.0M taken over, 1.5M closed by
    ADL: 1.5 / (2.0 + 3.0) = 0.3.
    """
    paths = results.paths
    require_columns(paths, ["adl_notional", "adl_fired"])
    ratio = paths["adl_notional"] / _liquidated(paths)
    return ratio.where(paths["adl_fired"] > 0).astype(float).reset_index(drop=True)


def adl_in_profit(results: Results, config: ScenarioConfig) -> pd.Series:
    """Share of a path's ADL fills that closed a position in profit at the mark (the
    "adl" row's ``amount`` > 0; :func:`perpabm.analysis.adl_profile`'s
    ``fills_in_profit``, path by path). NaN without ADL.

    Worked example: fills closing +120, +40, −5 and +3 USD of profit: 3 / 4 = 0.75.
    """
    return _per_adl_path(results, lambda adl: (adl["amount"] > 0).groupby(
        [adl["point"], adl["path"]]).mean())


def adl_median_leverage(results: Results, config: ScenarioConfig) -> pd.Series:
    """Median over a path's ADL fills of the ADL'd account's effective leverage before
    the close (the "adl" rows' ``leverage``: notional ÷ account value), as a replay quotes
    the "real-time leverage" of each ADL event. NaN without ADL.

    Worked example: fills at leverage 0.1, 0.3 and 2.0: median 0.3.
    """
    return _per_adl_path(results, lambda adl: adl.groupby(KEYS)["leverage"].median())


def vault_losing_share(results: Results, config: ScenarioConfig) -> pd.Series:
    """Share of a path's ADL notional (|quantity|·price) whose losing side — the
    liquidated position the winner's close took (``counterparty``) — was one of the
    vault's accounts (:data:`VAULT_ACCOUNT_TYPES`; :func:`perpabm.analysis.adl_losing_side`
    pools the same over paths). NaN without ADL.

    Worked example: fills of 19M USD against the vault's liquidator and 1M against a
    trader: 19 / 20 = 0.95.
    """
    def share(adl: pd.DataFrame) -> pd.Series:
        require_columns(adl, ["counterparty_type"], "events")
        notional = adl["quantity"].abs() * adl["price"]
        losing = adl["counterparty_type"].astype(object).isin(VAULT_ACCOUNT_TYPES)
        keys = [adl["point"], adl["path"]]
        return notional.where(losing, 0.0).groupby(keys).sum() / notional.groupby(keys).sum()

    return _per_adl_path(results, share)


def vault_return(results: Results, config: ScenarioConfig) -> pd.Series:
    """The vault's P&L over the path ÷ its starting capital (``vault.capital``): its
    return on the day. NaN without a vault.

    Worked example: a 10M USD vault ending the day 0.4M up: 0.4 / 10 = 0.04.
    """
    require_columns(results.paths, ["vault_pnl"])
    return (results.paths["vault_pnl"] / config.vault.capital).astype(float).reset_index(
        drop=True)


def overshoot_ratio(results: Results, config: ScenarioConfig) -> pd.Series:
    """Profit ADL closed beyond the deficit it covered, ÷ that deficit, over a path's
    episodes: Σ overshoot ÷ Σ deficit covered
    (:func:`perpabm.analysis.adl_overshoot_by_path`; Chitra, arXiv 2512.01112). NaN
    without ADL, or where ADL covered no deficit through its price.

    Worked example: two episodes closing 50 and 30 USD of profit to cover deficits of
    10 and 10: (40 + 20) / (10 + 10) = 3.0.
    """
    sums = adl_overshoot_by_path(results.paths, results.events)
    covered = sums["deficit_covered"].where(sums["deficit_covered"] > 0)
    return (sums["overshoot"] / covered).astype(float)


def bad_debt_share(results: Results, config: ScenarioConfig) -> pd.Series:
    """Bad debt left on the path ÷ the notional liquidated (book and takeovers): the
    share of the liquidated notional nobody paid for. 0 where nothing was left; NaN
    where nothing was liquidated.

    Worked example: 5M USD liquidated and 10,000 USD of bad debt: 0.002.
    """
    paths = results.paths
    require_columns(paths, ["bad_debt"])
    return (paths["bad_debt"] / _liquidated(paths)).astype(float).reset_index(drop=True)


Measure = Callable[[Results, ScenarioConfig], pd.Series]

MEASURES: Mapping[str, Measure] = {
    "adl_fired": adl_fired,
    "adl_delay_seconds": adl_delay_seconds,
    "adl_duration_seconds": adl_duration_seconds,
    "adl_to_liquidated": adl_to_liquidated,
    "adl_in_profit": adl_in_profit,
    "adl_median_leverage": adl_median_leverage,
    "vault_losing_share": vault_losing_share,
    "vault_return": vault_return,
    "overshoot_ratio": overshoot_ratio,
    "bad_debt_share": bad_debt_share,
}
"""Every figure a fact can be held against: name → function of (results, config) giving
one value per row of ``results.paths``, in its order."""


def path_measures(results: Results, config: ScenarioConfig,
                  measures: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per path (``point``, ``path``), one column per measure of :data:`MEASURES`
    (all of them, or those named), each computed with `config`'s step and vault.

    `config` is the scenario the paths ran: its step turns event times into seconds,
    its vault's capital scales the vault's P&L. For a sweep whose points change either,
    take one point's results at a time.
    """
    names = tuple(MEASURES) if measures is None else measures
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ValueError(f"measures: {unknown[0]!r} is not one of {sorted(MEASURES)}")
    require_columns(results.paths, KEYS)
    frame = results.paths[KEYS].reset_index(drop=True).copy()
    for name in names:
        frame[name] = MEASURES[name](results, config).to_numpy(dtype=float)
    return frame


# ---------------------------------------------------------------- the record and the table


REPLAY = "replay of the venue's node data (ConejoCapital/HyperMultiAssetedADL)"

OCT10_2025: tuple[Fact, ...] = (
    Fact("adl_fired", "ADL fired", "share of paths", 1.0, 1.0,
         "Hyperliquid's co-founder on the day: its first cross-margin ADL in 2 years",
         statistic="mean"),
    Fact("adl_delay_seconds", "first liquidation of the cascade to the first ADL", "s",
         61.7, 61.7, f"{REPLAY}: 21:15:03.127 to 21:16:04.832 UTC"),
    Fact("adl_duration_seconds", "first ADL fill to the last", "s", 652.6, 652.6,
         f"{REPLAY}: 21:16:04.832 to 21:26:57.421 UTC"),
    Fact("adl_to_liquidated", "ADL notional ÷ liquidated notional", "ratio", 0.382, 0.617,
         f"{REPLAY}: 2.103B ADL over 5.511B liquidations, or over 3.408B if those "
         "include the ADL fills' liquidated legs"),
    Fact("adl_in_profit", "ADL fills closing a position in profit", "share", 0.945, 0.994,
         f"{REPLAY}: 94.5% (first pass), 99.4% (corrected pass)"),
    Fact("adl_median_leverage", "median leverage of the ADL'd at the fill", "x", 0.18, 0.20,
         f"{REPLAY}: 0.18x (first pass), 0.20x (corrected pass)"),
    Fact("vault_losing_share", "ADL notional with the vault as the losing side", "share",
         0.89, 0.951, "Tektonic's reconstruction: 95.1% (notional, 21:16–21:27); "
         "lzjackm/hlp-cascade-handoff: 89% (fills, 21:00–22:00)"),
    Fact("vault_return", "the vault's P&L on the day ÷ its size", "ratio", 0.075, 0.146,
         "third parties (no venue figure): +30M to +40.8M USD on 279M to 400M USD of HLP"),
    Fact("overshoot_ratio", "profit ADL closed beyond the deficit ÷ the deficit", "ratio",
         2.99, 3.43, "Chitra, arXiv 2512.01112v3: 45.0M to 51.7M USD beyond 15.1M needed"),
    Fact("bad_debt_share", "bad debt ÷ liquidated notional", "share", 0.0, 0.0,
         "Hyperliquid's co-founder on the day: \"zero bad debt\""),
)
"""Hyperliquid on 2025-10-10: each fact's sources, quotes and caveats are in
``docs/validation.md``."""

RECORDS: dict[str, tuple[Fact, ...]] = {"oct10_2025": OCT10_2025}
"""The bundled records by name, for :func:`validate_scenario` and the CLI."""

TABLE_COLUMNS = ["fact", "unit", "record", "source", "paths", "statistic", "model",
                 "model_low", "model_high", "matches"]


def record_table(results: Results, config: ScenarioConfig,
                 facts: tuple[Fact, ...] = OCT10_2025, band: float = BAND) -> pd.DataFrame:
    """Model against record: one row per fact.

    - ``record``: the fact's figure or range as printed, ``source`` its source;
    - ``paths``: how many paths give the figure (a path without ADL has no ADL delay);
    - ``model``: the fact's ``statistic`` (median, or mean) over those paths;
      ``model_low``, ``model_high``: the central `band` of them (5th to 95th
      percentile at 0.90), by ``numpy.quantile``'s linear interpolation;
    - ``matches``: whether the record's range [low, high] meets the band: an outcome
      the model produced on some paths. ``pd.NA`` where no path gives the figure.

    Worked example: a fact recorded as 62 s, paths with delays 0, 60, 60, 120 s:
    median 60; 5th percentile 0 + 0.15·60 = 9, 95th 60 + 0.85·60 = 111 (positions
    0.15 and 2.85 of 0…3); 62 lies in [9, 111], so it matches.
    """
    if not 0 < band < 1:
        raise ValueError(f"band must lie in (0, 1); got {band!r}")
    measures = path_measures(results, config, tuple(dict.fromkeys(f.measure for f in facts)))
    tail = (1.0 - band) / 2.0
    rows = []
    for fact in facts:
        values = measures[fact.measure].dropna().to_numpy(dtype=float)
        if len(values):
            low, high = np.quantile(values, [tail, 1.0 - tail])
            figure = STATISTICS[fact.statistic](values)
            matches: object = bool(fact.low <= high and low <= fact.high)
        else:
            low = figure = high = math.nan
            matches = pd.NA
        rows.append({"fact": fact.description, "unit": fact.unit, "record": fact.shown,
                     "source": fact.source, "paths": len(values),
                     "statistic": fact.statistic, "model": float(figure),
                     "model_low": float(low), "model_high": float(high),
                     "matches": matches})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def validate_scenario(config: ScenarioConfig, n_paths: int, seed: int = 0,
                      record: str = "oct10_2025", **run: object) -> tuple[pd.DataFrame, Results]:
    """Run `n_paths` paths of `config` (:func:`perpabm.runner.run_paths`, with `run`'s
    keywords: ``n_jobs``, ``progress``, ``out``…) and hold them against the bundled
    record `record` (:data:`RECORDS`): the :func:`record_table` and the results."""
    if record not in RECORDS:
        raise ValueError(f"record must be one of {sorted(RECORDS)}; got {record!r}")
    results = run_paths(config, n_paths, seed, **run)  # type: ignore[arg-type]
    return record_table(results, config, RECORDS[record]), results

"""Statistics on Monte Carlo results, each with its uncertainty.

Functions take the tables of :class:`perpabm.Results` (``paths``, ``events``)
or plain arrays, and return numbers or tidy DataFrames. Intervals come from
scipy.stats: Wilson or Clopper–Pearson for proportions, exact (Garwood)
Poisson intervals for rates, distribution-free order-statistic intervals for
quantiles (VaR), BCa or percentile bootstrap for means and expected shortfall,
the exact McNemar test for paired yes/no outcomes. Paired comparisons use the
common random numbers of a sweep: path k of every point shares its seed.

Sweeps with several factors: a sweep's factors are the columns of
``Results.points`` other than ``"point"``, which ``Results.paths`` carries as
columns named by their dotted config paths (``"vault.cap"``). The grouped
functions take `by` as one column or a list of them, and pool the paths of
every factor not in `by`; :func:`paired_difference` pairs paths within each
combination of the other factors (:func:`sweep_factors`).

Small samples: an estimate the sample cannot support is NaN rather than a
number with no caveat, by two named rules (see :data:`MIN_TAIL_PATHS` and
:data:`MIN_BOOTSTRAP_PATHS`); a group with no values is a row with ``paths``
(or its count) 0 and NaN figures. A column or `by` name that the table does
not have is a ValueError naming it and the closest column it has.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from perpabm.config.market import MINUTES_PER_DAY
from perpabm.errors import closest

if TYPE_CHECKING:
    from perpabm.results import Results

MIN_TAIL_PATHS = 5
"""Fewest paths expected beyond a quantile, n·(1 − level), for VaR and ES at that
level to be reported (NaN below it). Five is the usual floor on an expected
binomial count (Cochran 1954) and it leaves room for the distribution-free
interval of the quantile, which exists at 95% confidence only from about
n·(1 − level) ≥ 3.7 (David and Nagaraja, *Order Statistics*, 2003, §7.1): with
fewer tail paths, "VaR 99%" is the worst path or an interpolation beyond it,
and ES the mean of a path or two."""

MIN_BOOTSTRAP_PATHS = 10
"""Fewest values for a bootstrap interval (NaN below it, and NaN when every value is
equal: resampling cannot show a spread the sample never had). Percentile and BCa
intervals are too narrow in small samples (Hesterberg 2015, "What teachers should
know about the bootstrap", The American Statistician 69(4))."""

ROUNDING_DIGITS = 9  # n·(1 − level) is rounded before flooring: 200·(1 − 0.95) is 10.000…009


def sweep_factors(frame: pd.DataFrame) -> list[str]:
    """The sweep factors among the columns of `frame`: those named by a dotted config
    path (``"vault.cap"``, ``"exchange.adl_rule"``), as :func:`perpabm.sweep` names
    them in ``Results.points`` and ``Results.paths``."""
    return [c for c in frame.columns if isinstance(c, str) and "." in c]


def _keys(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    if isinstance(by, Sequence) and all(isinstance(k, str) for k in by):
        return list(by)
    raise TypeError(f"by must be a column name, a list of column names or None; got {by!r}")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "paths") -> None:
    """One ValueError line naming the first column `frame` lacks and the closest it has
    (`what` names the table: ``"paths"``, ``"events"``); the check of every function
    here and in :mod:`perpabm.plots`."""
    have = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            hint = closest(column, have) or f"; its columns are {', '.join(have) or 'none'}"
            raise ValueError(f"{what} has no column {column!r}{hint}")


def _groups(frame: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """(key values, rows) per group of `keys` in sorted order; one group of all rows
    (perhaps none) when `keys` is empty. Missing key values form a group of their own."""
    if not keys:
        yield {}, frame
        return
    for key, group in frame.groupby(keys, sort=True, dropna=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(keys, key, strict=True)), group


def _shown(value: object) -> str:
    """repr of a table's value as Python spells it (0.0, not np.float64(0.0))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def tail_paths(n: int, level: float) -> int:
    """Paths expected beyond the (1 − level) quantile of n paths: ⌊n·(1 − level)⌋; VaR
    and ES at `level` are reported where this is at least :data:`MIN_TAIL_PATHS`."""
    return math.floor(round(n * (1.0 - level), ROUNDING_DIGITS))


def _check_level(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie in (0, 1); got {value!r}")


def _binomial_interval(k: int, n: int, confidence: float,
                       method: str = "wilson") -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method=method)
    return float(ci.low), float(ci.high)


def _bootstrap_interval(values: NDArray[np.float64], statistic: Callable[..., Any],
                        confidence: float,
                        n_resamples: int, rng: np.random.Generator,
                        method: str) -> tuple[float, float]:
    """scipy.stats.bootstrap's interval of `statistic`, or NaNs under the small-sample
    rule of :data:`MIN_BOOTSTRAP_PATHS`."""
    if len(values) < MIN_BOOTSTRAP_PATHS or np.all(values == values[0]):
        return math.nan, math.nan
    ci = stats.bootstrap((values,), statistic, confidence_level=confidence,
                         n_resamples=n_resamples, rng=rng, method=method)
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


# ---------------------------------------------------------------- how often ADL fires


FREQUENCY_COLUMNS = ["paths", "adl_paths", "share", "low", "high"]


def adl_frequency(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
                  confidence: float = 0.95, method: str = "wilson") -> pd.DataFrame:
    """Share of paths on which ADL fired, with a binomial confidence interval.

    `method` is ``"wilson"`` (Wilson score) or ``"exact"`` (Clopper–Pearson), as
    scipy.stats.binomtest's ``proportion_ci``. One row per group of `by`; paths
    whose ``adl_fired`` is missing are not counted.
    """
    keys = _keys(by)
    require_columns(paths, [*keys, "adl_fired"])
    rows = []
    for key, group in _groups(paths, keys):
        fired = group["adl_fired"].dropna().to_numpy(dtype=float)
        n, k = len(fired), int(np.sum(fired > 0))
        low, high = _binomial_interval(k, n, confidence, method)
        rows.append({**key, "paths": n, "adl_paths": k, "share": k / n if n else math.nan,
                     "low": low, "high": high})
    return pd.DataFrame(rows, columns=[*keys, *FREQUENCY_COLUMNS])


def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for a Poisson mean given `count` events:
    [χ²(α/2; 2k)/2, χ²(1 − α/2; 2k + 2)/2]."""
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low), float(high)


RATE_COLUMNS = ["paths", "events", "path_days", "rate", "low", "high"]


def adl_rate(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
             count: str = "adl_fills", step_minutes: float = 1.0,
             confidence: float = 0.95) -> pd.DataFrame:
    """ADL events per path-day (column `count` summed over paths ÷ simulated days),
    with the exact Poisson interval. A group with no simulated time has NaN rate."""
    keys = _keys(by)
    require_columns(paths, [*keys, count, "steps"])
    rows = []
    for key, group in _groups(paths, keys):
        events = int(group[count].fillna(0).sum())
        days = float(group["steps"].sum()) * step_minutes / MINUTES_PER_DAY
        low, high = poisson_interval(events, confidence)
        if days > 0:
            rate, low, high = events / days, low / days, high / days
        else:
            rate = low = high = math.nan
        rows.append({**key, "paths": len(group), "events": events, "path_days": days,
                     "rate": rate, "low": low, "high": high})
    return pd.DataFrame(rows, columns=[*keys, *RATE_COLUMNS])


TIMING_COLUMNS = ["fired", "paths", "median", "mean", "q25", "q75"]


def time_to_first_adl(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
                      step_minutes: float = 1.0) -> pd.DataFrame:
    """Minutes to the first ADL on the paths where it fired: count, median, mean,
    quartiles (NaN where ADL never fired)."""
    keys = _keys(by)
    require_columns(paths, [*keys, "first_adl_step"])
    rows = []
    for key, group in _groups(paths, keys):
        minutes = group["first_adl_step"].dropna().to_numpy(dtype=float) * step_minutes
        fired = len(minutes)
        quartiles = np.quantile(minutes, [0.25, 0.5, 0.75]) if fired else [math.nan] * 3
        rows.append({**key, "fired": fired, "paths": len(group), "median": quartiles[1],
                     "mean": minutes.mean() if fired else math.nan,
                     "q25": quartiles[0], "q75": quartiles[2]})
    return pd.DataFrame(rows, columns=[*keys, *TIMING_COLUMNS])


# ---------------------------------------------------------------- vault P&L


def value_at_risk(pnl: ArrayLike, level: float = 0.95) -> float:
    """VaR at `level`: the loss not exceeded with probability `level`, −quantile(1 − level);
    NaN for no values. The plain estimate: :func:`vault_pnl` adds the small-sample rule."""
    x = np.asarray(pnl, dtype=float)
    return float(-np.quantile(x, 1.0 - level)) if len(x) else math.nan


def expected_shortfall(pnl: ArrayLike, level: float = 0.95) -> float:
    """Expected shortfall at `level`: the mean loss in the worst 1 − `level` of outcomes
    (at least one); NaN for no values."""
    x = np.sort(np.asarray(pnl, dtype=float))
    if not len(x):
        return math.nan
    tail = max(1, math.ceil(round((1.0 - level) * len(x), ROUNDING_DIGITS)))
    return float(-x[:tail].mean())


def max_drawdown(equity: ArrayLike) -> float:
    """Largest fall from a running peak, as a fraction of that peak (0 to 1)."""
    e = np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(e)
    return float(np.max((peak - e) / peak)) if len(e) else math.nan


OUTER_QUANTILES = (0.05, 0.95)  # the columns q05 and q95 of vault_pnl


def _var_interval(x: NDArray[np.float64], level: float,
                  confidence: float) -> tuple[float, float]:
    """Distribution-free interval of VaR at `level` from the order statistics
    (scipy.stats.quantile_test), as losses; an end the sample cannot give is NaN."""
    ci = stats.quantile_test(x, q=0.0, p=1.0 - level).confidence_interval(confidence)
    return float(-ci.high), float(-ci.low)


def vault_pnl(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
              levels: Sequence[float] = (0.95, 0.99), confidence: float = 0.95,
              n_resamples: int = 2000, seed: int = 0,
              min_tail_paths: int = MIN_TAIL_PATHS) -> pd.DataFrame:
    """Vault P&L per group (USD), over the paths with a vault P&L (a venue without a
    vault has none: its group is a row with ``paths`` 0 and NaN figures).

    Columns: ``paths``; ``mean``, ``sd``, the median ``q50``; ``p_loss``, the share
    of paths that lost, with its Wilson interval ``p_loss_low``/``p_loss_high``;
    the mean's BCa bootstrap interval ``mean_low``/``mean_high``; and per level
    (``95`` for 0.95): ``tail_paths95`` = ⌊n·(1 − level)⌋, the paths expected beyond
    the quantile; ``var95`` (a positive loss) with its distribution-free interval
    from the order statistics ``var95_low``/``var95_high``; ``es95``, and for the
    first level the percentile bootstrap interval ``es95_low``/``es95_high``.
    ``q05`` and ``q95`` are the 5% and 95% quantiles, under the tail rule at 0.95.

    Small samples: VaR, ES and the tail quantiles are NaN where
    ``tail_paths < min_tail_paths`` (:data:`MIN_TAIL_PATHS`); bootstrap intervals
    are NaN below :data:`MIN_BOOTSTRAP_PATHS` values or when every value is equal.
    scipy.stats.bootstrap is seeded with `seed`.
    """
    keys = _keys(by)
    require_columns(paths, [*keys, "vault_pnl"])
    for level in levels:
        _check_level("levels", level)
    _check_level("confidence", confidence)
    tags = [round(level * 100) for level in levels]
    columns = [*keys, "paths", "mean", "sd", "q05", "q50", "q95", "p_loss"]
    for tag in tags:
        columns += [f"tail_paths{tag}", f"var{tag}", f"es{tag}"]
    columns += ["mean_low", "mean_high", "p_loss_low", "p_loss_high"]
    for i, tag in enumerate(tags):
        columns += [f"var{tag}_low", f"var{tag}_high"]
        columns += [f"es{tag}_low", f"es{tag}_high"] if i == 0 else []
    rows = []
    for key, group in _groups(paths, keys):
        x = group["vault_pnl"].dropna().to_numpy(dtype=float)
        n = len(x)
        row = dict.fromkeys(columns, math.nan) | key | {"paths": n}
        for level, tag in zip(levels, tags, strict=True):
            row[f"tail_paths{tag}"] = tail_paths(n, level)
        if n == 0:
            rows.append(row)
            continue
        losses = int(np.sum(x < 0))
        row |= {"mean": x.mean(), "sd": x.std(ddof=1) if n > 1 else math.nan,
                "q50": float(np.median(x)), "p_loss": losses / n}
        if tail_paths(n, 1.0 - OUTER_QUANTILES[0]) >= min_tail_paths:
            row["q05"], row["q95"] = np.quantile(x, OUTER_QUANTILES)
        row["p_loss_low"], row["p_loss_high"] = _binomial_interval(losses, n, confidence)
        rng = np.random.default_rng(seed)
        row["mean_low"], row["mean_high"] = _bootstrap_interval(
            x, np.mean, confidence, n_resamples, rng, "BCa")
        for i, (level, tag) in enumerate(zip(levels, tags, strict=True)):
            if row[f"tail_paths{tag}"] < min_tail_paths:
                continue
            row[f"var{tag}"] = value_at_risk(x, level)
            row[f"es{tag}"] = expected_shortfall(x, level)
            row[f"var{tag}_low"], row[f"var{tag}_high"] = _var_interval(x, level, confidence)
            if i == 0:
                row[f"es{tag}_low"], row[f"es{tag}_high"] = _bootstrap_interval(
                    x, lambda s, axis=-1, lv=level: np.apply_along_axis(
                        expected_shortfall, axis, s, lv),
                    confidence, n_resamples, rng, "percentile")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def vault_pnl_split(paths: pd.DataFrame, series: pd.DataFrame, step: int) -> pd.DataFrame:
    """Each path's vault P&L (``vault_pnl``, USD) split at the end of `step`: what the
    vault had made by then (``vault_pnl_before``), the carry of the position it held
    then to the path's last mark (``vault_pnl_carry`` = position · (last mark − mark at
    `step`)), and the rest (``vault_pnl_after``): what it made by trading from then on,
    its funding included. The three add up to ``vault_pnl``.

    What a path's vault P&L owes to the moment a shock begins: the position its market
    making happens to hold then is set by the order flow before it, and its carry through
    a large move can swamp what the vault does during and after it. One row per path
    (per ``point`` too, when present), with ``vault_pnl``; `series` must hold the row of
    `step` and each path's last step (``run.record_every`` dividing both), with
    ``vault_equity``, ``vault_position`` and ``mark``.

    Worked example: a vault that ends 200k USD down (equity 9.8M at a last mark of
    85,000) and had 10.1M at `step`, long 20 at a mark of 100,000: before
    100k (10.1M − (9.8M + 200k)), carry 20 · (85,000 − 100,000) = −300k, after
    −200k − 100k + 300k = 0.
    """
    require_columns(paths, ["path", "steps", "vault_pnl"])
    require_columns(series, ["path", "step", "vault_equity", "vault_position", "mark"],
                    "series")
    keys = (["point"] if "point" in paths and "point" in series else []) + ["path"]
    ends = paths.set_index(keys)[["steps", "vault_pnl"]]
    rows = series.set_index([*keys, "step"])[["vault_equity", "vault_position", "mark"]]
    at = pd.MultiIndex.from_frame(ends.index.to_frame().assign(step=step))
    last = pd.MultiIndex.from_frame(ends.index.to_frame().assign(
        step=ends["steps"].astype(int).to_numpy()))
    for name, index in (("step", at), ("last step", last)):
        missing = index.difference(rows.index)
        if len(missing):
            raise ValueError(f"series has no row at the {name} ({missing[0][-1]}) of path "
                             f"{_shown(missing[0][-2])}: record every step "
                             f"(run.record_every = 1) or one that divides it")
    then, end = rows.loc[at].to_numpy(), rows.loc[last].to_numpy()
    pnl = ends["vault_pnl"].to_numpy(dtype=float)
    before = then[:, 0] - (end[:, 0] - pnl)  # equity at `step` less the start
    carry = then[:, 1] * (end[:, 2] - then[:, 2])
    return pd.DataFrame({"vault_pnl": pnl, "vault_pnl_before": before,
                         "vault_pnl_carry": carry, "vault_pnl_after": pnl - before - carry},
                        index=ends.index).reset_index()


# ---------------------------------------------------------------- paired comparisons


def mcnemar(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Exact McNemar test for paired yes/no outcomes (e.g. ADL fired under two rules on
    the same seeds): a binomial test on the discordant pairs."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p = stats.binomtest(only_b, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "pvalue": float(p)}


def paired_difference(paths: pd.DataFrame, metric: str, by: str, a: object, b: object, *,
                      within: str | Sequence[str] | None = None, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean of metric(b) − metric(a) over paths paired by path index (common random
    numbers), where `by` = `a` and `by` = `b`, with the other factors held fixed.

    Pairs are formed within each combination of the columns `within`: one row per
    combination, with those columns, ``pairs``, ``mean_difference`` and its
    bootstrap interval ``low``/``high`` (NaN under the small-sample rule of
    :data:`MIN_BOOTSTRAP_PATHS`); for a yes/no metric (every value 0 or 1) also the
    exact McNemar test (``mcnemar_only_a``, ``mcnemar_only_b``, ``mcnemar_pvalue``).
    A combination where `a` or `b` was not run has 0 pairs and NaN figures.

    With `within` None, the sweep's other factors are held fixed: the columns of
    :func:`sweep_factors` other than `by` (for a one-factor sweep there are none and
    the table has one row). Pass `within` when the factors were renamed; ``[]`` pools
    the rows, which is allowed only where each path then has one row per value.
    """
    require_columns(paths, [by, metric, "path"])
    keys = [c for c in sweep_factors(paths) if c != by] if within is None else _keys(within)
    require_columns(paths, keys)
    if by in keys:
        raise ValueError(f"within must not hold the compared column {by!r}")
    _check_level("confidence", confidence)
    values = pd.unique(paths[by])
    for name, value in (("a", a), ("b", b)):
        if not (paths[by] == value).any():
            shown = ", ".join(_shown(v) for v in values[:10])
            raise ValueError(f"{name} = {value!r} is not a value of {by!r}; it has {shown}")
    chosen = paths[(paths[by] == a) | (paths[by] == b)]
    repeated = chosen.duplicated([*keys, by, "path"])
    if repeated.any():
        where = chosen.loc[repeated].iloc[0]
        held = "".join(f", {k} = {_shown(where[k])}" for k in keys)
        raise ValueError(f"paths has several rows for path {_shown(where['path'])} at {by} = "
                         f"{_shown(where[by])}{held}: name the other factors to hold fixed, "
                         f"within=[...]")
    binary = bool(chosen[metric].dropna().isin([0.0, 1.0]).all())
    columns = [*keys, "pairs", "mean_difference", "low", "high"]
    columns += ["mcnemar_only_a", "mcnemar_only_b", "mcnemar_pvalue"] if binary else []
    rows = []
    for key, group in _groups(chosen, keys):
        left = group.loc[group[by] == a].set_index("path")[metric]
        right = group.loc[group[by] == b].set_index("path")[metric]
        joined = pd.concat([left, right], axis=1, keys=["a", "b"], join="inner").dropna()
        d = (joined["b"] - joined["a"]).to_numpy(dtype=float)
        row = dict.fromkeys(columns, math.nan) | key | {"pairs": len(d)}
        if len(d):
            row["mean_difference"] = float(d.mean())
            row["low"], row["high"] = _bootstrap_interval(
                d, np.mean, confidence, n_resamples, np.random.default_rng(seed), "BCa")
            if binary:
                row |= {f"mcnemar_{k}": v for k, v in mcnemar(joined["a"], joined["b"]).items()}
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------- fairness of ADL


def gini(amounts: ArrayLike) -> float:
    """Gini coefficient of non-negative amounts: 0 when equal, (n − 1)/n when one holds all."""
    x = np.sort(np.asarray(amounts, dtype=float))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    cumulative = np.cumsum(x)
    return float((n + 1 - 2 * cumulative.sum() / total) / n)


def lorenz_curve(amounts: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(share of accounts, share of amount), from (0, 0) to (1, 1), poorest first."""
    x = np.sort(np.asarray(amounts, dtype=float))
    total = x.sum()
    shares = np.concatenate([[0.0], np.cumsum(x) / total]) if total else np.linspace(
        0, 1, len(x) + 1)
    return np.linspace(0.0, 1.0, len(x) + 1), shares


def top_share(amounts: ArrayLike, k: int = 1) -> float:
    """Share of the total held by the `k` largest amounts."""
    x = np.sort(np.asarray(amounts, dtype=float))[::-1]
    total = x.sum()
    return float(x[:k].sum() / total) if total else 0.0


def paid_through_price(adl: pd.DataFrame) -> pd.Series:
    """What each "adl" row's winner gave up against the mark by being closed at the row's
    price: ``(price − mark_price)·quantity`` (USD), with ``quantity`` the winner's signed
    change. A short closed (bought back, quantity > 0) above the mark, or a long closed
    (sold) below it, pays; closed at the mark, nothing. At the liquidated account's
    bankruptcy price this is its deficit on the quantity closed, so the same number is
    "the deficit covered" for every ``adl_price`` and every allocation."""
    return (adl["price"] - adl["mark_price"]) * adl["quantity"]


def adl_haircuts(events: pd.DataFrame) -> pd.DataFrame:
    """Per ADL'd account (and point, path if present): unrealised profit closed (USD),
    what the closes cost it against the mark (USD, :func:`paid_through_price`; negative
    where it was closed at a better price than the mark), quantity and mean leverage;
    with the account's ``account_type`` when the events carry it, so that Gini and
    Lorenz curves can be taken per trader type."""
    require_columns(events, ["kind", "account", "amount", "quantity", "price", "mark_price",
                      "leverage"], "events")
    adl = events[events["kind"] == "adl"].copy()
    adl["cost_vs_mark"] = paid_through_price(adl)
    keys = [c for c in ("point", "path") if c in adl] + ["account"]
    keys += ["account_type"] if "account_type" in adl else []
    return adl.groupby(keys, sort=True).agg(
        profit_closed=("amount", "sum"), cost_vs_mark=("cost_vs_mark", "sum"),
        quantity=("quantity", lambda q: q.abs().sum()), leverage=("leverage", "mean"),
    ).reset_index()


def adl_overshoot(events: pd.DataFrame) -> pd.DataFrame:
    """Per ADL episode: profit closed from winners, the deficit they covered, the
    overshoot = profit closed − deficit covered, and PTSR = the top winner's remaining
    profit ÷ deficit covered (both from Chitra 2025, arXiv 2512.01112).

    One definition for every allocation and every ``adl_price``, from the "adl" rows:
    the profit closed is Σ ``amount``, the unrealised profit at the mark of the
    quantities closed; the deficit covered is what the winners paid through the price,
    Σ (price − mark)·quantity (:func:`paid_through_price`), which at the bankruptcy
    price is the liquidated account's deficit. A queue that closes whole profitable
    positions takes far more profit than that; a profit-space allocation takes each
    winner's haircut through a partial close (``docs/venues.md``, "Allocation in profit
    space"). Where the events carry ``bankruptcy_price``, two more columns say who
    bore the difference between the close price and the bankruptcy price:
    ``deficit``, the liquidated account's deficit at the mark on the quantity closed,
    Σ (bankruptcy price − mark)·quantity, and ``to_liquidated`` = deficit covered −
    deficit, Σ (price − bankruptcy price)·quantity: > 0 a surplus left to the
    liquidated account (then to ``surplus_to``), < 0 a residual deficit left to the
    insurance fund or bad debt.

    The top winner is the opposite position with the largest unrealised profit
    before the round (its "adl_top_winner" row); PTSR is how many times over it
    could still have paid the deficit alone after the round — near 0 when the
    queue took the largest winner first, large when the round spared it. PTSR is
    NaN where the round covered no deficit through the price (ADL at the mark).
    """
    require_columns(events, ["kind", "liquidation", "account", "amount", "quantity", "price",
                      "mark_price"], "events")
    adl = events[events["kind"] == "adl"].copy()
    adl["deficit_covered"] = paid_through_price(adl)
    sums = {"winners": ("account", "nunique"), "profit_closed": ("amount", "sum"),
            "deficit_covered": ("deficit_covered", "sum")}
    if "bankruptcy_price" in adl:
        adl["deficit"] = (adl["bankruptcy_price"] - adl["mark_price"]) * adl["quantity"]
        sums["deficit"] = ("deficit", "sum")
    keys = [c for c in ("point", "path") if c in adl] + ["liquidation"]
    table = adl.groupby(keys, sort=True).agg(**sums).reset_index()
    table["overshoot"] = table["profit_closed"] - table["deficit_covered"]
    if "deficit" in table:
        table["to_liquidated"] = table["deficit_covered"] - table["deficit"]
    top = events.loc[events["kind"] == "adl_top_winner", [*keys, "amount"]]
    top = top.rename(columns={"amount": "top_winner_remaining"})
    table = table.merge(top, on=keys, how="left")
    covered = table["deficit_covered"].where(table["deficit_covered"] > 0)
    table["ptsr"] = table["top_winner_remaining"] / covered
    return table


OVERSHOOT_PARTS = ["profit_closed", "deficit_covered", "overshoot"]


def adl_overshoot_by_path(paths: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per path of `paths` (``point``, ``path``, in its order): its ADL episodes'
    profit closed, deficit covered and overshoot (:func:`adl_overshoot`) summed, USD;
    0 on a path where ADL never fired.

    Worked example: a path whose two episodes close 50 and 30 of profit to cover 10
    and 30 of deficit: profit closed 80, deficit covered 40, overshoot 40; a path
    without ADL: 0, 0, 0.
    """
    require_columns(paths, ["point", "path"])
    keys = paths[["point", "path"]].reset_index(drop=True)
    if not len(events):
        return keys.assign(**dict.fromkeys(OVERSHOOT_PARTS, 0.0))
    sums = adl_overshoot(events).groupby(["point", "path"])[OVERSHOOT_PARTS].sum()
    table = keys.merge(sums.reset_index(), on=["point", "path"], how="left")
    table[OVERSHOOT_PARTS] = table[OVERSHOOT_PARTS].fillna(0.0)
    return table


def adl_losing_side(events: pd.DataFrame) -> pd.DataFrame:
    """Which kind of account was the losing side of the ADL fills: on an "adl" row the
    ``counterparty`` is the liquidated account whose position the winner's close took,
    and ``counterparty_type`` what holds it (:attr:`perpabm.model.PerpMarketModel.events`
    adds it). One row per type (per ``point`` too, when present): fills, their share of
    all ADL fills, notional closed (|quantity|·price, USD) and its share. Events
    without ADL give a table with no rows."""
    require_columns(events, ["kind", "quantity", "price", "counterparty_type"], "events")
    adl = events[events["kind"] == "adl"].copy()
    adl["notional"] = adl["quantity"].abs() * adl["price"]
    adl["losing_side"] = adl["counterparty_type"].astype(object).fillna("none")
    point = ["point"] if "point" in adl else []
    table = adl.groupby([*point, "losing_side"], sort=True).agg(
        fills=("notional", "size"), notional=("notional", "sum")).reset_index()
    for column in ("fills", "notional"):
        total = (table.groupby(point)[column].transform("sum") if point
                 else table[column].sum())
        table[f"{column}_share"] = table[column] / total
    return table[[*point, "losing_side", "fills", "fills_share", "notional",
                  "notional_share"]]


PROFILE_COLUMNS = ["paths_with_adl", "accounts", "fills", "leverage_q25", "leverage_median",
                   "leverage_q75", "leverage_q95", "fills_in_profit", "accounts_in_profit",
                   "gini_notional", "top1pct_notional_share"]
TOP_SHARE = 0.01  # top_share's accounts: the largest 1% (at least one) of a path's ADL'd


def adl_profile(events: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Who was auto-deleveraged, in the figures a replay of a real event gives: one row per
    group of `by` (event columns, such as ``account_type``; per ``point`` too, when
    present).

    - ``paths_with_adl``, ``accounts`` (distinct (path, account) pairs) and ``fills``;
    - ``leverage_q25`` … ``leverage_q95``: quantiles of the ADL'd account's effective
      leverage at each fill, before the close (the "adl" rows' ``leverage``), as a
      replay quotes the "real-time leverage" of its ADL events;
    - ``fills_in_profit``: the share of fills whose closed quantity was in profit at the
      mark (``amount`` > 0), and ``accounts_in_profit`` the share of accounts whose
      fills closed profit in all (Σ ``amount`` > 0);
    - ``gini_notional`` and ``top1pct_notional_share``: how concentrated the ADL'd
      notional (|quantity|·price) is across a path's accounts — the Gini coefficient
      and the share of the largest 1% of them (at least one) — the median over the
      paths with ADL.

    Worked example: a path whose fills close 10 units at 100 from account 1 (leverage
    0.5, profit 100), then 25 at 100 from account 2 (leverage 2, profit 500) and 5 more
    (leverage 4, a loss of 50): 3 fills, 2 accounts, leverage median 2, fills in
    profit 2/3, accounts in profit 1 (account 2's rows add up to 450), Gini of the
    notionals (1,000, 3,000) = (3 − 2·(1,000 + 4,000)/4,000)/2 = 0.25, top share
    3,000 / 4,000 = 0.75.
    """
    keys = _keys(by)
    require_columns(events, ["kind", "path", "account", "amount", "quantity", "price",
                             "leverage", *keys], "events")
    adl = events[events["kind"] == "adl"].copy()
    adl["notional"] = adl["quantity"].abs() * adl["price"]
    groups = (["point"] if "point" in adl else []) + keys
    rows = []
    for values, group in (adl.groupby(groups, sort=True) if groups
                          else [((), adl)] if len(adl) else []):
        values = values if isinstance(values, tuple) else (values,)
        accounts = group.groupby(["path", "account"]).agg(
            amount=("amount", "sum"), notional=("notional", "sum")).reset_index()
        per_path = accounts.groupby("path")["notional"]
        leverage = group["leverage"].dropna()
        quantiles = (leverage.quantile([0.25, 0.5, 0.75, 0.95]).to_numpy() if len(leverage)
                     else np.full(4, np.nan))
        rows.append({**dict(zip(groups, values, strict=True)),
                     "paths_with_adl": group["path"].nunique(), "accounts": len(accounts),
                     "fills": len(group),
                     **dict(zip(PROFILE_COLUMNS[3:7], quantiles, strict=True)),
                     "fills_in_profit": float((group["amount"] > 0).mean()),
                     "accounts_in_profit": float((accounts["amount"] > 0).mean()),
                     "gini_notional": float(per_path.agg(gini).median()),
                     "top1pct_notional_share": float(per_path.agg(
                         lambda x: top_share(x, max(1, int(TOP_SHARE * len(x))))).median())})
    return pd.DataFrame(rows, columns=[*groups, *PROFILE_COLUMNS])


LEVERAGE_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, math.inf)
"""Default leverage buckets: [0, 1), [1, 2), [2, 5), [5, 10), [10, 20), [20, ∞)."""


def leverage_bucket(leverage: ArrayLike, edges: Sequence[float] = LEVERAGE_EDGES) -> pd.Series:
    """Each effective leverage's bucket [edge_i, edge_i+1) as an ordered categorical,
    labelled like ``"2–5x"`` (``"≥20x"`` for the open top bucket, which also holds an
    infinite leverage: an account with no equity left)."""
    edges = list(edges)
    labels = [f"≥{lo:g}x" if math.isinf(hi) else f"{lo:g}–{hi:g}x"
              for lo, hi in itertools.pairwise(edges)]
    values = np.asarray(leverage, dtype=float)
    if math.isinf(edges[-1]):  # [edge, ∞) is half-open: infinity goes in as the largest float
        values = np.minimum(values, np.finfo(float).max)
    return pd.Series(pd.cut(values, edges, right=False, labels=labels))


GROUP_COLUMNS = ["fills", "accounts", "quantity", "profit_closed", "share",
                 "median_leverage", "low", "high"]


def adl_by_group(events: pd.DataFrame, by: str | Sequence[str] = ("account_type",
                                                                  "leverage_bucket"),
                 edges: Sequence[float] = LEVERAGE_EDGES, confidence: float = 0.95,
                 n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Whom ADL hits: the ADL fills split by `by` — any event column (``account_type``
    is what holds the ADL'd account: a trader's strategy, ``maker``, ``arbitrageur``,
    ``vault_liquidator`` or ``vault_market_making``) or ``"leverage_bucket"`` (the
    account's effective leverage before the close, bucketed at `edges`).

    One row per group (per ``point`` too, when present): fills, ADL'd accounts,
    quantity (base units), profit closed (USD), the group's share of all profit
    closed with a percentile bootstrap interval over paths (paths resampled with
    their ADL fills, scipy.stats.bootstrap, seeded; NaN under the small-sample
    rule of :data:`MIN_BOOTSTRAP_PATHS`, counted in paths with ADL) and the group's
    median leverage. Paths without ADL carry no profit and are left out of the
    shares; events without ADL give a table with no rows.
    """
    keys = _keys(by)
    require_columns(events, ["kind", "account", "amount", "quantity", "leverage",
                      *(k for k in keys if k != "leverage_bucket")], "events")
    adl = events[events["kind"] == "adl"].copy()
    buckets = leverage_bucket(adl["leverage"], edges)
    if "leverage_bucket" in keys:
        adl["leverage_bucket"] = buckets.array  # categorical: groups sort by leverage
    point_keys = ["point"] if "point" in adl else []
    path_key = "path" if "path" in adl else None
    owner = ["account"] if path_key is None else [path_key, "account"]  # one ADL'd account
    rows = []
    for point, frame in adl.groupby(point_keys, sort=True) if point_keys else [((), adl)]:
        point = point if isinstance(point, tuple) else (point,)
        total = frame["amount"].sum()
        per_path_total = (frame.groupby(path_key)["amount"].sum() if path_key else None)
        for key, group in frame.groupby(keys, sort=True, observed=True):
            key = key if isinstance(key, tuple) else (key,)
            row = {**dict(zip(point_keys, point, strict=True)),
                   **dict(zip(keys, key, strict=True)),
                   "fills": len(group), "accounts": len(group[owner].drop_duplicates()),
                   "quantity": group["quantity"].abs().sum(),
                   "profit_closed": group["amount"].sum(),
                   "share": group["amount"].sum() / total if total else math.nan,
                   "median_leverage": group["leverage"].median()}
            row["low"], row["high"] = _share_interval(
                group, per_path_total, path_key, confidence, n_resamples, seed)
            rows.append(row)
    table = pd.DataFrame(rows, columns=[*point_keys, *keys, *GROUP_COLUMNS])
    if "leverage_bucket" in keys:  # buckets sort by leverage, not by their labels' text
        table["leverage_bucket"] = table["leverage_bucket"].astype(buckets.dtype)
    return table


def adl_share_by_path(events: pd.DataFrame, by: str = "account_type",
                      edges: Sequence[float] = LEVERAGE_EDGES) -> pd.DataFrame:
    """Each group's share of the profit ADL closed, path by path: one row per path with
    ADL (per ``point`` too, when present), one column ``share_<group>`` per group of
    `by` (an event column such as ``account_type``, or ``"leverage_bucket"``: the
    ADL'd account's leverage before the close, bucketed at `edges`), 0 where the group
    had no fill on that path. What :func:`paired_difference` compares across policies
    run on the same paths; a path without ADL has no row (no profit to share).

    Worked example: a path whose fills close 300 USD of profit from a fund and 100
    from a noise trader, and another closing 50 from the fund alone: shares
    (fund 0.75, noise 0.25) and (fund 1, noise 0).
    """
    require_columns(events, ["kind", "path", "amount", "leverage",
                             *([] if by == "leverage_bucket" else [by])], "events")
    adl = events[events["kind"] == "adl"].copy()
    if by == "leverage_bucket":
        adl["leverage_bucket"] = leverage_bucket(adl["leverage"], edges).array
    keys = (["point"] if "point" in adl else []) + ["path"]
    closed = adl.pivot_table(index=keys, columns=by, values="amount", aggfunc="sum",
                             fill_value=0.0, observed=True)
    shares = closed.div(closed.sum(axis=1), axis=0)
    shares.columns = [f"share_{c}" for c in shares.columns]
    return shares.reset_index()


def _share_interval(group: pd.DataFrame, per_path_total: pd.Series | None,
                    path_key: str | None, confidence: float, n_resamples: int,
                    seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of Σ group profit ÷ Σ all profit over resampled paths."""
    if (path_key is None or per_path_total is None
            or len(per_path_total) < MIN_BOOTSTRAP_PATHS):
        return math.nan, math.nan
    mine = group.groupby(path_key)["amount"].sum().reindex(per_path_total.index, fill_value=0)
    a, b = mine.to_numpy(dtype=float), per_path_total.to_numpy(dtype=float)
    ratio = a / np.where(b == 0, np.nan, b)
    if np.all(ratio == ratio[0]):  # every path gives the same share: no spread to resample
        return math.nan, math.nan
    ci = stats.bootstrap((a, b), lambda x, y, axis=-1: x.sum(axis=axis) / y.sum(axis=axis),
                         paired=True, vectorized=True, confidence_level=confidence,
                         n_resamples=n_resamples, method="percentile",
                         rng=np.random.default_rng(seed))
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


SNAPSHOT_BUCKETS = (0.0, 3.0, 7.0, math.inf)
"""The leverage buckets of :func:`leverage_snapshot`: [0, 3), [3, 7), [7, ∞) — the
buckets in which an on-chain analyst's dashboard split Hyperliquid's open interest
(``docs/population.md``)."""


def leverage_snapshot(accounts: pd.DataFrame, by: str | Sequence[str] | None = None,
                      edges: Sequence[float] = SNAPSHOT_BUCKETS) -> pd.DataFrame:
    """How levered the open positions are at one moment, as a venue's dashboard counts
    it: `accounts` has one row per account (``notional`` = |size|·mark, USD, and its
    effective ``leverage``; per ``path`` or ``point`` too, pooled:
    :meth:`perpabm.PerpMarketModel.account_snapshot` gives them), and only accounts
    with a position count. One row per group of `by` (all accounts pooled when None):

    - ``accounts``, their ``notional`` in all, and the count-weighted quartiles of
      their leverage (infinite for an account with no equity left);
    - ``notional_<bucket>``: the share of the group's notional held at leverage in each
      bucket [edge_i, edge_i+1) of `edges` — the notional-weighted view.

    Worked example: accounts of notional 1,000 at equity 2,000 (0.5x), 4,000 at 1,000
    (4x) and 5,000 at 500 (10x): quartiles 2.25x, 4x and 7x; notional shares 0.1
    below 3x, 0.4 in 3–7x and 0.5 at 7x or more.
    """
    keys = _keys(by)
    require_columns(accounts, ["notional", "leverage", *keys], "accounts")
    held = accounts[accounts["notional"] > 0].copy()
    held["bucket"] = leverage_bucket(held["leverage"], edges).array
    labels = list(held["bucket"].cat.categories)
    rows = []
    for values, group in (held.groupby(keys, sort=True) if keys else [((), held)]):
        values = values if isinstance(values, tuple) else (values,)
        notional = group["notional"].sum()
        by_bucket = group.groupby("bucket", observed=False)["notional"].sum()
        rows.append({**dict(zip(keys, values, strict=True)), "accounts": len(group),
                     "notional": notional,
                     **dict(zip(["leverage_q25", "leverage_median", "leverage_q75"],
                                _quantiles_to_infinity(group["leverage"], (0.25, 0.5, 0.75)),
                                strict=True)),
                     **{f"notional_{label}": by_bucket[label] / notional for label in labels}})
    return pd.DataFrame(rows)


def _quantiles_to_infinity(values: pd.Series, levels: Sequence[float]) -> NDArray[np.float64]:
    """Linear quantiles of `values` (≥ 0) where some may be infinite: infinity stands in
    as the largest float while interpolating (inf − inf has no value) and comes back as
    infinity."""
    largest = np.finfo(float).max
    finite = np.minimum(values.to_numpy(dtype=float), largest)
    out = np.quantile(finite, levels)
    return np.where(out >= largest, math.inf, out)


# ---------------------------------------------------------------- convergence


def standard_error_curve(values: ArrayLike, ns: Sequence[int] | None = None) -> pd.DataFrame:
    """Standard error of the mean, sd/√n, against the number of paths n (sd from all
    `values`), with the running mean of the first n values for comparison."""
    x = np.asarray(values, dtype=float)
    sd = x.std(ddof=1)
    ns = list(ns) if ns is not None else sorted({int(n) for n in np.unique(
        np.geomspace(2, len(x), num=min(20, len(x) - 1)).astype(int))})
    return pd.DataFrame({"n": ns, "standard_error": [sd / math.sqrt(n) for n in ns],
                         "running_mean": [x[:n].mean() for n in ns]})


def paths_needed(values: ArrayLike, half_width: float, confidence: float = 0.95) -> int:
    """Paths for a normal-approximation interval of the mean of ±`half_width`:
    ceil((z · sd / half_width)²), sd estimated from `values`."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    sd = np.asarray(values, dtype=float).std(ddof=1)
    return math.ceil((z * sd / half_width) ** 2)


# ---------------------------------------------------------------- global sensitivity


SOBOL_COLUMNS = ["factor", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]


def sobol_indices(results: Results, metric: str, grid: Mapping[str, Any], n_points: int,
                  seed: int = 0, *, statistic: str | Callable[[pd.Series], float] = "mean",
                  base_points: int | None = None, confidence: float = 0.95,
                  n_resamples: int = 1000) -> pd.DataFrame:
    """First-order and total Sobol indices of `metric` over the factors of a sweep run on
    the ``"saltelli"`` design (:func:`perpabm.runner.design_points`), with SALib's
    estimators (``SALib.analyze.sobol``: Saltelli et al. 2010 for S1, Jansen 1999 for
    ST) and their bootstrap intervals.

    `grid`, `n_points` and `seed` are the sweep's: the design is drawn again and each
    of its rows matched to its point by its settings, since a results folder keeps one
    row per distinct point. The model output at a point is `statistic` (a pandas
    aggregation name or function) of `metric` over the point's paths — the mean of
    ``adl_fired`` is the ADL frequency — so Monte Carlo noise within a point is part of
    the variance the indices share out; more paths a point shrink it. `base_points` (≤
    `n_points`) takes the design's first base points alone: the indices of a smaller
    design from the same run, to show whether they are stable at the size used.

    One row per factor: ``S1`` (the share of the output's variance the factor explains
    alone), ``ST`` (alone and with every other factor), and their `confidence`
    intervals, estimate ± SALib's bootstrap half-width (``S1_conf``, ``ST_conf``, from
    `n_resamples` resamples of the base points). The table's ``attrs`` say how many
    base points and paths a point went in. A design point without a path (failed,
    missing) is a ValueError naming it: the estimators need every row; so is an output
    that is the same at every point.

    Worked example, the Ishigami function y = sin x₁ + a·sin² x₂ + b·x₃⁴·sin x₁ on
    [−π, π]³ with a = 7, b = 0.1 (Ishigami and Homma 1990; ``tests/test_sensitivity.py``
    runs it on this design): V = a²/8 + b·π⁴/5 + b²·π⁸/18 + 1/2 = 13.845, V₁ =
    (1 + b·π⁴/5)²/2 = 4.346, V₂ = a²/8 = 6.125, V₁₃ = b²·π⁸·(1/18 − 1/50) = 3.374, so
    S1 = (0.314, 0.442, 0) and ST = ((V₁ + V₁₃)/V, V₂/V, V₁₃/V) = (0.558, 0.442, 0.244).
    """
    from SALib.analyze import sobol as sobol_analysis

    from perpabm.runner import design_points

    _check_level("confidence", confidence)
    paths = results.paths
    require_columns(paths, ["point", metric])
    factors = list(grid)
    if len(results.points):
        require_columns(results.points, ["point", *factors], "points")
    design = design_points(grid, "saltelli", n_points, seed)
    per_base = len(factors) + 2
    base = n_points if base_points is None else int(base_points)
    if not 1 <= base <= n_points:
        raise ValueError(f"base_points must lie in [1, {n_points}]; got {base_points!r}")
    design = design[: base * per_base]
    points = results.points if len(results.points) else paths.drop_duplicates("point")
    by_settings = {tuple(row[f] for f in factors): int(row["point"])
                   for row in points[["point", *factors]].to_dict("records")}
    counts = paths.groupby("point")[metric].count()
    rows = [by_settings.get(tuple(setting[f] for f in factors)) for setting in design]
    for i, point in enumerate(rows):
        if point is None or counts.get(point, 0) == 0:
            raise ValueError(f"design row {i} ({design[i]}) has no paths with {metric!r}: "
                             "Sobol indices need every point of the design")
    y = paths.groupby("point")[metric].agg(statistic)[rows].to_numpy(dtype=float)
    if np.ptp(y) == 0.0:
        raise ValueError(f"{metric!r} is {y[0]!r} at every design point: a constant output "
                         "has no variance to share out among the factors")
    problem = {"num_vars": len(factors), "names": factors,
               "bounds": [[0.0, 1.0]] * len(factors)}  # analysis reads only the outputs
    indices = sobol_analysis.analyze(problem, y, calc_second_order=False,
                                     num_resamples=n_resamples, conf_level=confidence,
                                     seed=seed)
    table = pd.DataFrame({"factor": factors, "S1": indices["S1"], "ST": indices["ST"]})
    for name in ("S1", "ST"):
        table[f"{name}_low"] = indices[name] - indices[f"{name}_conf"]
        table[f"{name}_high"] = indices[name] + indices[f"{name}_conf"]
    table.attrs.update({"metric": metric, "base_points": base, "design_points": len(design),
                        "paths_per_point": int(counts[rows].min()), "confidence": confidence})
    return table[SOBOL_COLUMNS]

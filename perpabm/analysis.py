"""Statistics on Monte Carlo results, each with its uncertainty.

Functions take the tables of :class:`perpabm.Results` (``paths``, ``events``)
or plain arrays, and return numbers or tidy DataFrames. Intervals come from
scipy.stats: Wilson or Clopper–Pearson for proportions, exact (Garwood)
Poisson intervals for rates, BCa bootstrap for means and tail measures, the
exact McNemar test for paired yes/no outcomes. Paired comparisons use the
common random numbers of a sweep: path k of every point shares its seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

DAY_MINUTES = 1440.0


def _groups(frame: pd.DataFrame, by: str | Sequence[str] | None):
    if by is None:
        yield {}, frame
        return
    keys = [by] if isinstance(by, str) else list(by)
    for key, group in frame.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(keys, key, strict=True)), group


# ---------------------------------------------------------------- how often ADL fires


def adl_frequency(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
                  confidence: float = 0.95, method: str = "wilson") -> pd.DataFrame:
    """Share of paths on which ADL fired, with a binomial confidence interval.

    `method` is ``"wilson"`` (Wilson score) or ``"exact"`` (Clopper–Pearson), as
    scipy.stats.binomtest's ``proportion_ci``. One row per group of `by`.
    """
    rows = []
    for key, group in _groups(paths, by):
        n = len(group)
        k = int(group["adl_fired"].sum())
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method=method)
        rows.append({**key, "paths": n, "adl_paths": k, "share": k / n,
                     "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows)


def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) confidence interval for a Poisson mean given `count` events:
    [χ²(α/2; 2k)/2, χ²(1 − α/2; 2k + 2)/2]."""
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low), float(high)


def adl_rate(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
             count: str = "adl_fills", step_minutes: float = 1.0,
             confidence: float = 0.95) -> pd.DataFrame:
    """ADL events per path-day (column `count` summed over paths ÷ simulated days),
    with the exact Poisson interval."""
    rows = []
    for key, group in _groups(paths, by):
        events = int(group[count].sum())
        days = float(group["steps"].sum()) * step_minutes / DAY_MINUTES
        low, high = poisson_interval(events, confidence)
        rows.append({**key, "events": events, "path_days": days, "rate": events / days,
                     "low": low / days, "high": high / days})
    return pd.DataFrame(rows)


def time_to_first_adl(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
                      step_minutes: float = 1.0) -> pd.DataFrame:
    """Minutes to the first ADL on the paths where it fired: count, median, mean, quartiles."""
    rows = []
    for key, group in _groups(paths, by):
        minutes = group["first_adl_step"].dropna() * step_minutes
        rows.append({**key, "fired": len(minutes), "paths": len(group),
                     "median": minutes.median(), "mean": minutes.mean(),
                     "q25": minutes.quantile(0.25), "q75": minutes.quantile(0.75)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- vault P&L


def value_at_risk(pnl: ArrayLike, level: float = 0.95) -> float:
    """VaR at `level`: the loss not exceeded with probability `level`, −quantile(1 − level)."""
    return float(-np.quantile(np.asarray(pnl, dtype=float), 1.0 - level))


def expected_shortfall(pnl: ArrayLike, level: float = 0.95) -> float:
    """Expected shortfall at `level`: the mean loss in the worst 1 − `level` of outcomes."""
    x = np.sort(np.asarray(pnl, dtype=float))
    tail = max(1, math.ceil((1.0 - level) * len(x)))
    return float(-x[:tail].mean())


def max_drawdown(equity: ArrayLike) -> float:
    """Largest fall from a running peak, as a fraction of that peak (0 to 1)."""
    e = np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(e)
    return float(np.max((peak - e) / peak)) if len(e) else math.nan


def vault_pnl(paths: pd.DataFrame, by: str | Sequence[str] | None = None,
              levels: Sequence[float] = (0.95, 0.99), confidence: float = 0.95,
              n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Vault P&L per group (USD): mean, sd, quantiles, VaR and ES at `levels`,
    probability of loss; BCa bootstrap intervals for the mean, the first level's
    ES and the probability of loss (scipy.stats.bootstrap, seeded)."""
    rows = []
    for key, group in _groups(paths, by):
        x = group["vault_pnl"].dropna().to_numpy(dtype=float)
        row = {**key, "paths": len(x), "mean": x.mean(), "sd": x.std(ddof=1),
               "q05": np.quantile(x, 0.05), "q50": np.quantile(x, 0.5),
               "q95": np.quantile(x, 0.95), "p_loss": float(np.mean(x < 0))}
        for level in levels:
            tag = round(level * 100)
            row[f"var{tag}"] = value_at_risk(x, level)
            row[f"es{tag}"] = expected_shortfall(x, level)
        rng = np.random.default_rng(seed)
        for name, statistic in (
            ("mean", np.mean),
            (f"es{round(levels[0] * 100)}",
             lambda s, axis=-1: np.apply_along_axis(expected_shortfall, axis, s, levels[0])),
            ("p_loss", lambda s, axis=-1: np.mean(s < 0, axis=axis)),
        ):
            if len(x) < 3 or np.all(x == x[0]):
                row[f"{name}_low"] = row[f"{name}_high"] = row[name]
                continue
            ci = stats.bootstrap((x,), statistic, confidence_level=confidence,
                                 n_resamples=n_resamples, rng=rng,
                                 method="percentile" if name != "mean" else "BCa")
            row[f"{name}_low"], row[f"{name}_high"] = ci.confidence_interval
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- paired comparisons


def mcnemar(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Exact McNemar test for paired yes/no outcomes (e.g. ADL fired under two rules on
    the same seeds): a binomial test on the discordant pairs."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p = stats.binomtest(only_b, n, 0.5).pvalue if n else 1.0
    return {"only_a": only_a, "only_b": only_b, "pvalue": float(p)}


def paired_difference(paths: pd.DataFrame, metric: str, by: str, a: object, b: object,
                      confidence: float = 0.95, n_resamples: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """Mean of metric(b) − metric(a) over paths paired by path index (common random
    numbers), with a bootstrap interval; for a yes/no metric also the McNemar test."""
    left = paths[paths[by] == a].set_index("path")[metric]
    right = paths[paths[by] == b].set_index("path")[metric]
    joined = pd.concat([left, right], axis=1, keys=["a", "b"], join="inner").dropna()
    d = (joined["b"] - joined["a"]).to_numpy(dtype=float)
    out = {"pairs": len(d), "mean_difference": float(d.mean())}
    if len(d) >= 3 and not np.all(d == d[0]):
        ci = stats.bootstrap((d,), np.mean, confidence_level=confidence,
                             n_resamples=n_resamples, rng=np.random.default_rng(seed))
        out["low"], out["high"] = map(float, ci.confidence_interval)
    else:
        out["low"] = out["high"] = float(d.mean()) if len(d) else math.nan
    values = set(np.unique(joined.to_numpy()))
    if values <= {0.0, 1.0}:
        out.update({f"mcnemar_{k}": v for k, v in mcnemar(joined["a"], joined["b"]).items()})
    return out


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


def adl_haircuts(events: pd.DataFrame) -> pd.DataFrame:
    """Per ADL'd account (and point, path if present): unrealised profit closed (USD),
    what the closes cost it against the mark (USD), quantity and mean leverage; with
    the account's ``account_type`` when the events carry it, so that Gini and Lorenz
    curves can be taken per trader type."""
    adl = events[events["kind"] == "adl"].copy()
    adl["cost_vs_mark"] = (adl["mark_price"] - adl["price"]).abs() * adl["quantity"].abs()
    keys = [c for c in ("point", "path") if c in adl] + ["account"]
    keys += ["account_type"] if "account_type" in adl else []
    return adl.groupby(keys, sort=True).agg(
        profit_closed=("amount", "sum"), cost_vs_mark=("cost_vs_mark", "sum"),
        quantity=("quantity", lambda q: q.abs().sum()), leverage=("leverage", "mean"),
    ).reset_index()


def adl_overshoot(events: pd.DataFrame) -> pd.DataFrame:
    """Per ADL episode: profit closed from winners, the deficit they covered, the
    overshoot = profit closed − deficit, and PTSR = the top winner's remaining
    profit ÷ deficit covered (both from Chitra 2025, arXiv 2512.01112).

    Winners closed at the bankruptcy price instead of the mark pay the deficit
    through the price, so the deficit covered is Σ |mark − price| · quantity; a
    queue that closes whole profitable positions takes far more profit than that.
    The top winner is the opposite position with the largest unrealised profit
    before the round (its "adl_top_winner" row); PTSR is how many times over it
    could still have paid the deficit alone after the round — near 0 when the
    queue took the largest winner first, large when the round spared it. PTSR is
    NaN where the round covered no deficit through the price (ADL at the mark).
    """
    adl = events[events["kind"] == "adl"].copy()
    adl["deficit"] = (adl["mark_price"] - adl["price"]).abs() * adl["quantity"].abs()
    keys = [c for c in ("point", "path") if c in adl] + ["liquidation"]
    table = adl.groupby(keys, sort=True).agg(
        winners=("account", "nunique"), profit_closed=("amount", "sum"),
        deficit_covered=("deficit", "sum")).reset_index()
    table["overshoot"] = table["profit_closed"] - table["deficit_covered"]
    top = events.loc[events["kind"] == "adl_top_winner", [*keys, "amount"]]
    top = top.rename(columns={"amount": "top_winner_remaining"})
    table = table.merge(top, on=keys, how="left")
    covered = table["deficit_covered"].where(table["deficit_covered"] > 0)
    table["ptsr"] = table["top_winner_remaining"] / covered
    return table


LEVERAGE_EDGES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, math.inf)
"""Default leverage buckets: [0, 1), [1, 2), [2, 5), [5, 10), [10, 20), [20, ∞)."""


def leverage_bucket(leverage: ArrayLike, edges: Sequence[float] = LEVERAGE_EDGES) -> pd.Series:
    """Each effective leverage's bucket [edge_i, edge_i+1) as an ordered categorical,
    labelled like ``"2–5x"`` (``"≥20x"`` for the open top bucket)."""
    edges = list(edges)
    labels = [f"≥{lo:g}x" if math.isinf(hi) else f"{lo:g}–{hi:g}x"
              for lo, hi in itertools.pairwise(edges)]
    return pd.Series(pd.cut(np.asarray(leverage, dtype=float), edges, right=False,
                            labels=labels))


def adl_by_group(events: pd.DataFrame, by: str | Sequence[str] = ("account_type",
                                                                  "leverage_bucket"),
                 edges: Sequence[float] = LEVERAGE_EDGES, confidence: float = 0.95,
                 n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Whom ADL hits: the ADL fills split by `by` — any event column (``account_type``
    is what holds the ADL'd account: a trader's strategy, ``maker``, ``arbitrageur``
    or ``vault``) or ``"leverage_bucket"`` (the account's effective leverage before
    the close, bucketed at `edges`).

    One row per group (per ``point`` too, when present): fills, ADL'd accounts,
    quantity (base units), profit closed (USD), the group's share of all profit
    closed with a percentile bootstrap interval over paths (paths resampled with
    their ADL fills, scipy.stats.bootstrap, seeded) and the group's median
    leverage. Paths without ADL carry no profit and are left out of the shares.
    """
    keys = [by] if isinstance(by, str) else list(by)
    adl = events[events["kind"] == "adl"].copy()
    if "leverage_bucket" in keys:
        adl["leverage_bucket"] = leverage_bucket(adl["leverage"], edges).to_numpy()
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
    return pd.DataFrame(rows)


def _share_interval(group: pd.DataFrame, per_path_total: pd.Series | None,
                    path_key: str | None, confidence: float, n_resamples: int,
                    seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of Σ group profit ÷ Σ all profit over resampled paths."""
    if path_key is None or per_path_total is None or len(per_path_total) < 3:
        return math.nan, math.nan
    mine = group.groupby(path_key)["amount"].sum().reindex(per_path_total.index, fill_value=0)
    a, b = mine.to_numpy(dtype=float), per_path_total.to_numpy(dtype=float)
    ratio = a / np.where(b == 0, np.nan, b)
    if np.all(ratio == ratio[0]):  # every path gives the same share: no spread to resample
        share = float(a.sum() / b.sum())
        return share, share
    ci = stats.bootstrap((a, b), lambda x, y, axis=-1: x.sum(axis=axis) / y.sum(axis=axis),
                         paired=True, vectorized=True, confidence_level=confidence,
                         n_resamples=n_resamples, method="percentile",
                         rng=np.random.default_rng(seed))
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


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

"""Do the figures converge as the clock's tick shrinks? oct10_2025 at fixed ticks of 60,
20, 5 and 1 seconds and under the adaptive clock (60 s in calm, 1 s under stress).

Every clock runs the same seeds, and the index is the same path at every clock (drawn a
minute at a time and bridged to the second, each tick the sum of its seconds): common
random numbers for the exogenous price. The agents' own draws (who enters, when) are
per tick, so they differ between clocks: paths are compared as distributions, not one
by one.

Two populations of makers: as the scenario has them (a full ladder at every requote,
whatever the tick: ``makers.refill_seconds = 0``), and makers whose depth comes back
with a 30-second time constant (``makers.refill_seconds = 30``), so that the liquidity
that returns in a minute does not grow with the number of ticks in it.

Written beside this script:

- `summary.csv` / `.md`: per makers and clock, the share of paths with ADL (Wilson 95%
  interval), mean ADL notional, median delay from the first liquidation of the cascade
  to the first ADL (seconds, on the paths with ADL), mean vault P&L (bootstrap 95%
  intervals: BCa, percentile where BCa is undefined), the means of the notional
  liquidated in the book and taken over by the vault and of the vault's P&L by
  strategy, the share of the ADL notional whose losing side was the vault's liquidator
  (pooled over the paths; the rest closed traders' and funds' accounts), and the wall
  seconds a path took (two workers);
- `adaptive.csv` / `.md`: per makers and figure, whether the adaptive clock's estimate
  lies within the 1-second clock's interval;
- `convergence.png`: the four figures against the tick, the adaptive clock beside them;
- `calm.csv` / `.md`: the vault's market-making P&L on the same scenario without its
  drop, at each fixed tick (mean, standard deviation over the paths and the standard
  error of the mean): how much of the crash's vault P&L is the day's market making,
  and how widely it spreads.

    .venv/bin/python experiments/time_step/run.py [--paths 32] [--seed 1]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, write_table

from perpabm import analysis, load_scenario, plots, run_paths

FIXED_TICKS = [60.0, 20.0, 5.0, 1.0]  # seconds
ADAPTIVE = "adaptive"
LIQUIDATOR = "vault_liquidator"  # the account type of the vault's takeovers
MAKERS = {"full ladder each tick": 0.0, "refill over 30 s": 30.0}  # makers.refill_seconds
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
FIGURES = {  # summary column → (label, unit)
    "adl_share": ("paths with ADL", "share"),
    "adl_notional": ("ADL notional, mean a path", "USD"),
    "first_adl_delay_seconds": ("first liquidation → first ADL, median", "seconds"),
    "vault_pnl": ("vault P&L, mean a path", "USD"),
}


def clocks() -> list[tuple[str, dict[str, object]]]:
    """(label, settings) of each clock compared."""
    fixed = [(f"{tick:g} s", {"run.step_seconds": tick}) for tick in FIXED_TICKS]
    return [*fixed, (ADAPTIVE, {"run.clock": "adaptive", "run.step_seconds": 60.0,
                                "run.fine_step_seconds": 1.0})]


def interval(values: np.ndarray, statistic, seed: int) -> tuple[float, float, float]:
    """`statistic` of `values` (NaNs left out) and its bootstrap interval: BCa, or the
    percentile interval where BCa's acceleration is undefined (all values but one alike,
    as when ADL fired on one path); the value itself as both bounds when every value is
    the same (no path-to-path spread to resample); NaN with no values."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    estimate = float(statistic(values))
    if len(np.unique(values)) < 2:
        return estimate, estimate, estimate
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.bootstrap((values,), statistic, confidence_level=CONFIDENCE,
                                     n_resamples=BOOTSTRAP_RESAMPLES, method=method,
                                     rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            break
    return estimate, float(low), float(high)


def run(paths: int, seed: int) -> pd.DataFrame:
    """One row per makers and clock."""
    rows = []
    base = load_scenario("oct10_2025")
    for makers, refill in MAKERS.items():
        for clock, settings in clocks():
            config = base.with_settings({**settings, "makers.refill_seconds": refill})
            start = time.perf_counter()
            results = run_paths(config, n_paths=paths, seed=seed)
            seconds = time.perf_counter() - start
            frame = results.paths
            share = analysis.adl_frequency(frame).iloc[0]
            row = {"makers": makers, "clock": clock, "paths": len(frame),
                   "adl_share": share["share"], "adl_share_low": share["low"],
                   "adl_share_high": share["high"]}
            for column, statistic in (("adl_notional", np.mean),
                                      ("first_adl_delay_seconds", np.median),
                                      ("vault_pnl", np.mean)):
                value, low, high = interval(frame[column].to_numpy(dtype=float), statistic,
                                            seed)
                row |= {column: value, f"{column}_low": low, f"{column}_high": high}
            for column in ("liquidated_notional", "backstop_notional", "vault_pnl_liquidator",
                           "vault_pnl_market_making"):
                row[column] = float(frame[column].mean())  # where the rest went: the why
            sides = analysis.adl_losing_side(results.events).set_index("losing_side")
            row["adl_notional_share_vault"] = (
                float(sides["notional_share"].get(LIQUIDATOR, 0.0)) if len(sides) else np.nan)
            row["seconds_a_path"] = seconds / paths  # wall time over the workers
            rows.append(row)
            print(f"{makers:>22} {clock:>9}: ADL {row['adl_share']:.2f}, "
                  f"{seconds:.0f} s", flush=True)
    return pd.DataFrame(rows)


def calm(paths: int, seed: int) -> pd.DataFrame:
    """The vault's P&L by strategy on oct10_2025 without its drop, at each fixed tick."""
    base = load_scenario("oct10_2025").replace("market.shocks", ())
    rows = []
    for tick in FIXED_TICKS:
        frame = run_paths(base.replace("run.step_seconds", tick), n_paths=paths,
                          seed=seed).paths
        making = frame["vault_pnl_market_making"]
        rows.append({"clock": f"{tick:g} s", "paths": len(frame),
                     "market_making_mean": making.mean(), "market_making_sd": making.std(),
                     "market_making_se": making.std() / np.sqrt(len(frame)),
                     "liquidator_mean": frame["vault_pnl_liquidator"].mean()})
    return pd.DataFrame(rows)


def adaptive_within(summary: pd.DataFrame) -> pd.DataFrame:
    """Per makers and figure: the adaptive clock's estimate, the 1-second clock's
    interval, and whether it lies within it."""
    rows = []
    for makers, group in summary.groupby("makers", sort=False):
        one = group.set_index("clock").loc["1 s"]
        adaptive = group.set_index("clock").loc[ADAPTIVE]
        for column in FIGURES:
            low, high = one[f"{column}_low"], one[f"{column}_high"]
            rows.append({"makers": makers, "figure": column, "adaptive": adaptive[column],
                         "one_second": one[column], "one_second_low": low,
                         "one_second_high": high,
                         "within": bool(low <= adaptive[column] <= high)})
    return pd.DataFrame(rows)


def plot(summary: pd.DataFrame, path: Path) -> None:
    """The four figures against the tick (log axis), one line a makers' population; the
    adaptive clock as a point at the right, apart from the ticks."""
    with plt.style.context(plots.STYLE_PATH):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
        draw(summary, axes)
        fig.suptitle("oct10_2025: figures against the clock's tick (95% intervals)")
        fig.savefig(path, dpi=120)
    plt.close(fig)


def draw(summary: pd.DataFrame, axes: np.ndarray) -> None:
    """:func:`plot`'s panels."""
    adaptive_x = 0.4  # seconds: to the right of 1 s on the reversed axis
    for ax, (column, (label, unit)) in zip(axes.flat, FIGURES.items(), strict=True):
        for makers, group in summary.groupby("makers", sort=False):
            fixed = group[group["clock"] != ADAPTIVE]
            ticks = fixed["clock"].str.removesuffix(" s").astype(float)
            errors = [fixed[column] - fixed[f"{column}_low"],
                      fixed[f"{column}_high"] - fixed[column]]
            line = ax.errorbar(ticks, fixed[column], yerr=np.abs(errors), marker="o",
                               capsize=3, label=makers)
            adaptive = group[group["clock"] == ADAPTIVE].iloc[0]
            ax.errorbar([adaptive_x], [adaptive[column]],
                        yerr=[[abs(adaptive[column] - adaptive[f"{column}_low"])],
                              [abs(adaptive[f"{column}_high"] - adaptive[column])]],
                        marker="D", capsize=3, color=line[0].get_color())
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_ylabel(unit)
    for ax in axes[1]:
        ax.set_xticks([*FIXED_TICKS, adaptive_x], [f"{t:g} s" for t in FIXED_TICKS]
                      + ["adaptive"])
        ax.set_xlim(100.0, 0.25)
        ax.set_xlabel("the clock's tick")
    axes[0, 0].legend(title="makers")


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    summary = run(args.paths, args.seed)
    write_table(summary, args.out, "summary")
    write_table(adaptive_within(summary), args.out, "adaptive")
    write_table(calm(args.paths, args.seed), args.out, "calm")
    plot(summary, args.out / "convergence.png")


if __name__ == "__main__":
    main()

"""Do the figures converge as the clock's tick shrinks? oct10_2025 at fixed ticks of 60,
20, 5 and 1 seconds and under the adaptive clock (60 s in calm, 1 s under stress).

Every clock runs the same seeds, and the index is the same path at every clock (drawn a
minute at a time and bridged to the second, each tick the sum of its seconds): common
random numbers for the exogenous price. The agents' own draws (who enters, when) are
per tick, so they differ between clocks, and the positions the day's order flow has
built by the drop differ with them.

Three variants of the scenario, each at every clock:

- as bundled (makers post a full ladder at every requote, whatever the tick:
  ``makers.refill_seconds = 0``);
- makers whose depth comes back with a 30-second time constant
  (``makers.refill_seconds = 30``), so that the liquidity that returns in a minute
  does not grow with the number of ticks in it;
- no takeovers (``vault.cap = 0``): the vault makes markets but its liquidator takes
  nothing over, so what the book cannot absorb goes to ADL at every tick, and the ADL
  notional and the delay to the first ADL can be compared across ticks.

The vault's P&L is split at the drop's start (:func:`perpabm.analysis.vault_pnl_split`):
what it had made by then, the carry of the position it held then through the rest of
the path, and what it made by trading from the drop on. The first two are set by the
day before the drop, the last is what the clock can act on.

Written beside this script:

- `summary.csv` / `.md`: per variant and clock, the share of paths with ADL (Wilson 95%
  interval), mean ADL notional, median delay from the first liquidation of the cascade
  to the first ADL (seconds, on the paths with ADL), mean vault P&L and mean vault P&L
  from the drop on (bootstrap 95% intervals: BCa, percentile where BCa is undefined),
  the means of the vault's P&L before the drop and of its carry, of the notional
  liquidated in the book and taken over by the vault and of the vault's P&L by
  strategy, the share of the ADL notional whose losing side was the vault's liquidator
  (pooled over the paths; the rest closed traders' and funds' accounts), and the wall
  seconds a path took (two workers);
- `paired.csv` / `.md`: per variant and clock, the mean difference path by path from the
  1-second clock of the vault's P&L from the drop on, of its P&L before the drop and of
  its carry, with BCa intervals (:func:`perpabm.analysis.paired_difference`);
- `adaptive.csv` / `.md`: per variant and figure, whether the adaptive clock's estimate
  lies within the 1-second clock's interval;
- `convergence.png`: the figures against the tick, the adaptive clock beside them.

    .venv/bin/python experiments/time_step/run.py [--paths 96] [--seed 1]
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
REFERENCE = "1 s"  # the clock the others are held against
LIQUIDATOR = "vault_liquidator"  # the account type of the vault's takeovers
VARIANTS = {  # label → settings on oct10_2025
    "as bundled": {},
    "refill over 30 s": {"makers.refill_seconds": 30.0},
    "no takeovers": {"vault.cap": 0.0},
}
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2_000
FIGURES = {  # summary column → (label, unit)
    "adl_share": ("paths with ADL", "share"),
    "adl_notional": ("ADL notional, mean a path", "USD"),
    "first_adl_delay_seconds": ("first liquidation → first ADL, median", "seconds"),
    "vault_pnl": ("vault P&L, mean a path", "USD"),
    "vault_pnl_after": ("vault P&L from the drop on, less its carry", "USD"),
}
SPLIT = ("vault_pnl_before", "vault_pnl_carry", "vault_pnl_after")


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


def drop_step(config) -> int:
    """The step at whose end the scenario's (first) drop begins."""
    return round(config.market.shocks[0].at_minute / config.run.step_minutes)


def run(paths: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per variant and clock; and every path's figures, with the vault's P&L
    split at the drop (one row per variant, clock and path)."""
    rows, frames = [], []
    base = load_scenario("oct10_2025")
    for variant, changes in VARIANTS.items():
        for clock, settings in clocks():
            config = base.with_settings({**settings, **changes})
            start = time.perf_counter()
            results = run_paths(config, n_paths=paths, seed=seed, with_series=True)
            seconds = time.perf_counter() - start
            split = analysis.vault_pnl_split(results.paths, results.series, drop_step(config))
            frame = results.paths.merge(split[["path", *SPLIT]], on="path")
            frames.append(frame.assign(variant=variant, clock=clock))
            share = analysis.adl_frequency(frame).iloc[0]
            row = {"variant": variant, "clock": clock, "paths": len(frame),
                   "adl_share": share["share"], "adl_share_low": share["low"],
                   "adl_share_high": share["high"]}
            for column, statistic in (("adl_notional", np.mean),
                                      ("first_adl_delay_seconds", np.median),
                                      ("vault_pnl", np.mean), ("vault_pnl_after", np.mean)):
                value, low, high = interval(frame[column].to_numpy(dtype=float), statistic,
                                            seed)
                row |= {column: value, f"{column}_low": low, f"{column}_high": high}
            for column in ("vault_pnl_before", "vault_pnl_carry", "liquidated_notional",
                           "backstop_notional", "vault_pnl_liquidator",
                           "vault_pnl_market_making"):
                row[column] = float(frame[column].mean())  # where the rest went: the why
            sides = analysis.adl_losing_side(results.events).set_index("losing_side")
            row["adl_notional_share_vault"] = (
                float(sides["notional_share"].get(LIQUIDATOR, 0.0)) if len(sides) else np.nan)
            row["seconds_a_path"] = seconds / paths  # wall time over the workers
            rows.append(row)
            print(f"{variant:>17} {clock:>9}: ADL {row['adl_share']:.2f}, "
                  f"{seconds:.0f} s", flush=True)
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True)


def paired(paths: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per variant and clock, the mean path-by-path difference from the 1-second clock
    (this clock − 1 s) of each part of the vault's P&L, with its BCa interval."""
    rows = []
    for variant, group in paths.groupby("variant", sort=False):
        for clock in [c for c, _ in clocks() if c != REFERENCE]:
            row = {"variant": variant, "clock": clock}
            for column in SPLIT:
                d = analysis.paired_difference(group, column, "clock", REFERENCE, clock,
                                               within=[], seed=seed).iloc[0]
                row |= {"pairs": int(d["pairs"]), column: d["mean_difference"],
                        f"{column}_low": d["low"], f"{column}_high": d["high"]}
            rows.append(row)
    return pd.DataFrame(rows)


def adaptive_within(summary: pd.DataFrame) -> pd.DataFrame:
    """Per variant and figure: the adaptive clock's estimate, the 1-second clock's
    interval, and whether it lies within it."""
    rows = []
    for variant, group in summary.groupby("variant", sort=False):
        one = group.set_index("clock").loc[REFERENCE]
        adaptive = group.set_index("clock").loc[ADAPTIVE]
        for column in FIGURES:
            low, high = one[f"{column}_low"], one[f"{column}_high"]
            rows.append({"variant": variant, "figure": column,
                         "adaptive": adaptive[column], "one_second": one[column],
                         "one_second_low": low, "one_second_high": high,
                         "within": bool(low <= adaptive[column] <= high)})
    return pd.DataFrame(rows)


def plot(summary: pd.DataFrame, differences: pd.DataFrame, path: Path) -> None:
    """The figures against the tick (log axis), one line a variant, and the paired
    difference from the 1-second clock of the vault's P&L from the drop on; the adaptive
    clock as a point at the right, apart from the ticks."""
    with plt.style.context(plots.STYLE_PATH):
        fig, axes = plt.subplots(2, 3, figsize=(14, 7), sharex=True)
        draw(summary, axes)
        draw_paired(differences, axes[1, 2])
        fig.suptitle("oct10_2025: figures against the clock's tick (95% intervals)")
        fig.savefig(path, dpi=120)
    plt.close(fig)


ADAPTIVE_X = 0.4  # seconds: where the adaptive clock is drawn, right of 1 s on the axis


def draw(summary: pd.DataFrame, axes: np.ndarray) -> None:
    """:func:`plot`'s panels of :data:`FIGURES`, in the order of ``axes.flat``."""
    for ax, (column, (label, unit)) in zip(axes.flat, FIGURES.items(), strict=False):
        for variant, group in summary.groupby("variant", sort=False):
            fixed = group[group["clock"] != ADAPTIVE]
            ticks = fixed["clock"].str.removesuffix(" s").astype(float)
            errors = [fixed[column] - fixed[f"{column}_low"],
                      fixed[f"{column}_high"] - fixed[column]]
            line = ax.errorbar(ticks, fixed[column], yerr=np.abs(errors), marker="o",
                               capsize=3, label=variant)
            adaptive = group[group["clock"] == ADAPTIVE].iloc[0]
            ax.errorbar([ADAPTIVE_X], [adaptive[column]],
                        yerr=[[abs(adaptive[column] - adaptive[f"{column}_low"])],
                              [abs(adaptive[f"{column}_high"] - adaptive[column])]],
                        marker="D", capsize=3, color=line[0].get_color())
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_ylabel(unit)
    for ax in axes[1]:
        ax.set_xticks([*FIXED_TICKS, ADAPTIVE_X], [f"{t:g} s" for t in FIXED_TICKS]
                      + ["adaptive"])
        ax.set_xlim(100.0, 0.25)
        ax.set_xlabel("the clock's tick")
    axes[0, 0].legend(title="variant")


def draw_paired(differences: pd.DataFrame, ax) -> None:
    """The vault's P&L from the drop on, each clock less the 1-second clock on the same
    path (0 at 1 s), one line a variant; the adaptive clock apart, as in :func:`draw`."""
    column = "vault_pnl_after"
    for variant, group in differences.groupby("variant", sort=False):
        fixed = group[group["clock"] != ADAPTIVE]
        ticks = [*fixed["clock"].str.removesuffix(" s").astype(float), 1.0]
        values = [*fixed[column], 0.0]  # the 1-second clock against itself
        errors = [[*(fixed[column] - fixed[f"{column}_low"]), 0.0],
                  [*(fixed[f"{column}_high"] - fixed[column]), 0.0]]
        line = ax.errorbar(ticks, values, yerr=np.abs(errors), marker="o", capsize=3,
                           label=variant)
        adaptive = group[group["clock"] == ADAPTIVE].iloc[0]
        ax.errorbar([ADAPTIVE_X], [adaptive[column]],
                    yerr=[[abs(adaptive[column] - adaptive[f"{column}_low"])],
                          [abs(adaptive[f"{column}_high"] - adaptive[column])]],
                    marker="D", capsize=3, color=line[0].get_color())
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title("from the drop on: this clock − 1 s, same path")
    ax.set_ylabel("USD")


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=96)
    summary, paths = run(args.paths, args.seed)
    write_table(summary, args.out, "summary")
    differences = paired(paths, args.seed)
    write_table(differences, args.out, "paired")
    write_table(adaptive_within(summary), args.out, "adaptive")
    plot(summary, differences, args.out / "convergence.png")


if __name__ == "__main__":
    main()

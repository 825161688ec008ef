"""Whose positions are ADL's losing side? How the liquidator's own capital decides it.

On 2025-10-10 about 95% of Hyperliquid's ADL fills closed positions the liquidator
vault had taken over. Hyperliquid has run HLP's liquidator as a component vault of its
own since 2025-03, with "a tight cap representing a small percentage of total HLP
account value" and ADL "if the Liquidator loses above a certain threshold, instead of
moving collateral automatically from the other component vaults"; before, it shared
collateral with them and "did not trigger ADL". The venue publishes no share, so this
script sweeps it.

Runs the oct10_2025 scenario as bundled (the hyperliquid preset; HLP, 10M USD, makes
markets; its liquidator takes what its margin allows) with the liquidator's share of
HLP's capital (``vault.liquidator_share``) absent — one account, the collateral shared
— and at 20%, 5% (the scenario's) and 1%, all on the same path seeds. Writes beside
this script:

- `summary.csv` / `.md`: per share, ADL frequency (Wilson 95% interval), mean ADL
  and backstop notional, the share of ADL fills and of ADL notional whose losing side
  was the vault's liquidator (pooled over the paths), and the vault's mean P&L in all
  and by strategy;
- `losing_side.csv` / `.md`: per share, ADL fills and notional by the kind of account
  on the losing side (`analysis.adl_losing_side`);
- `losing_side.png`: the share of ADL notional by losing side, per liquidator share;
- `clock.csv` / `.md`: at the scenario's share, the same paths on the clock's
  one-minute and 15-second ticks (`run.step_seconds`; every rate is in real time and
  the index is the same path at both): ADL and backstop notional and the liquidator's
  share of the ADL fills and notional.

The rest of the ADL notional closes traders' accounts that went from above the
takeover threshold to negative equity within one mark update, so that the liquidator
was never offered them: the shorter the step, the fewer skip it.

    .venv/bin/python experiments/liquidator_vault/run.py [--paths 32] [--seed 1]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, write_table

from perpabm import ScenarioConfig, analysis, load_scenario, plots, run_paths, sweep

SHARE = "vault.liquidator_share"
SHARES = [None, 0.2, 0.05, 0.01]
SHARED = "shared"  # the label of the absent share: one account for both strategies
LIQUIDATOR = "vault_liquidator"
STRATEGIES = ["vault_pnl", "vault_pnl_liquidator", "vault_pnl_market_making"]
CLOCKS = [60.0, 15.0]  # the clock's ticks compared at the scenario's share, seconds


def clock_table(config: ScenarioConfig, paths: int, seed: int) -> pd.DataFrame:
    """Per step length, on the same seeds: ADL and backstop notional (mean a path) and the
    liquidator's share of the ADL fills and notional."""
    rows = []
    for seconds in CLOCKS:
        results = run_paths(config.replace("run.step_seconds", seconds), n_paths=paths,
                            seed=seed)
        sides = analysis.adl_losing_side(results.events).set_index("losing_side")
        means = results.paths[["adl_notional", "backstop_notional"]].mean()
        rows.append({"step_seconds": seconds, "paths": len(results.paths),
                     **means.to_dict(),
                     "liquidator_losing_fills_share": (
                         sides["fills_share"].get(LIQUIDATOR, 0.0) if len(sides) else 0.0),
                     "liquidator_losing_notional_share": (
                         sides["notional_share"].get(LIQUIDATOR, 0.0) if len(sides)
                         else 0.0)})
    return pd.DataFrame(rows)


def share_label(share: float | None) -> str:
    """The liquidator's share as the tables name it."""
    return SHARED if share is None or pd.isna(share) else f"{share:g}"


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    here = args.out
    start = time.perf_counter()
    results = sweep(load_scenario("oct10_2025"), {SHARE: SHARES}, n_paths=args.paths,
                    seed=args.seed)
    seconds = time.perf_counter() - start
    points = results.points[["point", SHARE]].copy()
    points["liquidator_share"] = [share_label(v) for v in points[SHARE]]
    order = {share_label(v): i for i, v in enumerate(SHARES)}
    paths = points[["point", "liquidator_share"]].merge(results.paths, on="point")

    sides = points[["point", "liquidator_share"]].merge(
        analysis.adl_losing_side(results.events), on="point").drop(columns="point")
    sides = sides.sort_values("liquidator_share", key=lambda s: s.map(order), kind="stable")
    write_table(sides, here, "losing_side")

    liquidator = sides[sides["losing_side"] == LIQUIDATOR].set_index("liquidator_share")
    frequency = analysis.adl_frequency(paths, by="liquidator_share")
    means = paths.groupby("liquidator_share")[
        ["adl_notional", "backstop_notional", *STRATEGIES]].mean()
    summary = frequency.set_index("liquidator_share").join(means)
    summary["liquidator_losing_fills_share"] = liquidator["fills_share"].reindex(
        summary.index).fillna(0.0)
    summary["liquidator_losing_notional_share"] = liquidator["notional_share"].reindex(
        summary.index).fillna(0.0)
    summary = summary.reset_index().sort_values(
        "liquidator_share", key=lambda s: s.map(order), kind="stable")
    write_table(summary, here, "summary")

    with plt.style.context(plots.STYLE_PATH):
        table = sides.pivot_table(index="liquidator_share", columns="losing_side",
                                  values="notional_share", aggfunc="sum", fill_value=0.0)
        table = table.loc[sorted(table.index, key=order.get)]
        fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
        table.plot.bar(stacked=True, ax=ax, rot=0, width=0.7)
        ax.set_xlabel("liquidator's share of HLP's capital (shared: one account)")
        ax.set_ylabel("share of ADL notional")
        ax.set_title("ADL's losing side", loc="left")
        ax.legend(title="losing side", fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))
        fig.savefig(here / "losing_side.png")
    clock = clock_table(load_scenario("oct10_2025"), args.paths, args.seed)
    write_table(clock, here, "clock")
    print(summary.to_string(index=False))
    print(clock.to_string(index=False))
    print(f"{len(SHARES)} shares × {args.paths} paths in {seconds:.0f} s")


if __name__ == "__main__":
    main()

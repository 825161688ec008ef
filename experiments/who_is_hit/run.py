"""Whom does ADL hit under each ranking rule and venue, and how much more does it take than needed?

Runs the stressed market with no vault room under every exchange preset × five
ranking rules, all on the same seeds, and writes:

- `summary.csv` / `.md`: per preset and rule, ADL frequency (Wilson interval),
  profit closed, deficit covered, overshoot (Chitra 2025), median PTSR (top
  winner's profit left ÷ deficit covered, per ADL round) and the Gini of profit
  closed across ADL'd accounts;
- `by_trader_type.csv` / `.md`: share of ADL'd profit per trader strategy and
  leverage bucket, per preset and rule, with bootstrap intervals over paths;
- `adl_heatmap.png` (P(ADL) per preset × rule), `who_is_hit.png` (leverage
  against profit closed, per rule, Hyperliquid preset), `lorenz.png`
  (concentration of profit closed, per rule, Hyperliquid preset) and
  `trader_types.png` (share of ADL'd profit per strategy, per rule, Hyperliquid).

The ranking rule does not apply under socialised loss (the drift preset): its
rows differ only by sampling noise of the "random" rule's own stream, if at all.

    .venv/bin/python experiments/who_is_hit/run.py [--paths 16] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, stressed_market, write_table

from perpabm import analysis, plots, presets, sweep

RULES = ["pnl_leverage", "profit", "leverage", "hyperliquid", "random"]
SHOWN = "hyperliquid"  # the preset whose ADL'd accounts the figures show one by one


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=16)
    here = args.out
    config = stressed_market().replace("vault.cap", 0.0)
    grid = {"exchange.preset": list(presets.names()), "exchange.adl_rule": RULES}
    results = sweep(config, grid, n_paths=args.paths, seed=args.seed)
    points = results.points.rename(columns={"exchange.preset": "preset",
                                            "exchange.adl_rule": "rule"})
    keys = ["preset", "rule"]
    events = results.events.merge(points, on="point")
    paths = results.paths.merge(points, on="point")

    table = analysis.adl_frequency(paths, by=keys)
    overshoot = analysis.adl_overshoot(events).merge(points, on="point")
    sums = overshoot.groupby(keys)[["profit_closed", "deficit_covered", "overshoot"]].sum()
    ptsr = overshoot.groupby(keys)["ptsr"].median().rename("median_ptsr")
    haircuts = analysis.adl_haircuts(events).merge(points, on="point")
    gini = haircuts.groupby(keys)["profit_closed"].apply(
        lambda x: analysis.gini(x.clip(lower=0))).rename("gini_profit_closed")
    table = table.merge(sums, on=keys, how="left").merge(ptsr, on=keys, how="left").merge(
        gini, on=keys, how="left")
    write_table(table, here, "summary")

    groups = analysis.adl_by_group(events, by=["account_type", "leverage_bucket"])
    groups = points.merge(groups, on="point").drop(columns="point")
    write_table(groups, here, "by_trader_type")

    plots.adl_heatmap(paths, x="rule", y="preset").savefig(here / "adl_heatmap.png")
    shown = events[events["preset"] == SHOWN]
    plots.adl_scatter(shown, by="rule").savefig(here / "who_is_hit.png")
    fig = None
    for rule, group in haircuts[haircuts["preset"] == SHOWN].groupby("rule"):
        fig = plots.lorenz(group["profit_closed"].clip(lower=0),
                           ax=fig.axes[0] if fig else None, label=rule)
    if fig is not None:
        fig.savefig(here / "lorenz.png")
    types = analysis.adl_by_group(shown, by=["rule", "account_type"])
    if len(types):
        plots.adl_shares(types, "account_type", by="rule").savefig(here / "trader_types.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

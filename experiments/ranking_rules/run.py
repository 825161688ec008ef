"""Whom does ADL hit under each ranking rule, and how much more does it take than needed?

Runs the stressed market with no vault room (so ADL fires) under five ranking
rules on the same seeds, and writes `who_is_hit.png` (leverage against profit
closed of every ADL'd position), `lorenz.png` (concentration of profit closed)
and the table `summary.csv` / `summary.md`: ADL frequency, profit closed,
deficit covered and overshoot (Chitra 2025), Gini of profit closed.

    .venv/bin/python experiments/ranking_rules/run.py [--paths 16] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, stressed_market, write_table

from perpabm import analysis, plots, sweep

RULES = ["pnl_leverage", "profit", "leverage", "hyperliquid", "random"]


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=16)
    here = args.out
    config = stressed_market().replace("vault.cap", 0.0)
    results = sweep(config, {"exchange.adl_rule": RULES}, n_paths=args.paths, seed=args.seed)
    rule_of = results.points.set_index("point")["exchange.adl_rule"]
    events = results.events.assign(rule=results.events["point"].map(rule_of))
    overshoot = analysis.adl_overshoot(events).assign(
        rule=lambda t: t["point"].map(rule_of))
    haircuts = analysis.adl_haircuts(events).assign(rule=lambda t: t["point"].map(rule_of))
    table = analysis.adl_frequency(results.paths, by="exchange.adl_rule").rename(
        columns={"exchange.adl_rule": "rule"})
    per_rule = overshoot.groupby("rule")[["profit_closed", "deficit_covered", "overshoot"]].sum()
    gini = haircuts.groupby("rule")["profit_closed"].apply(
        lambda x: analysis.gini(x.clip(lower=0)))
    table = table.merge(per_rule, left_on="rule", right_index=True).merge(
        gini.rename("gini_profit_closed"), left_on="rule", right_index=True)
    write_table(table, here, "summary")
    plots.adl_scatter(events, by="rule").savefig(here / "who_is_hit.png")
    fig = None
    for rule, group in haircuts.groupby("rule"):
        fig = plots.lorenz(group["profit_closed"].clip(lower=0),
                           ax=fig.axes[0] if fig else None, label=rule)
    fig.savefig(here / "lorenz.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

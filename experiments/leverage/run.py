"""How does trader leverage change how often the waterfall reaches ADL?

Runs the stressed market (oct10_2025 around its drop, the vault at 1 × equity)
with median trader leverage 2, 5, 10 and 20 on the same seeds, and writes
`adl_vs_leverage.png` and the table `summary.csv` / `summary.md`: ADL
frequency, liquidation episodes, backstop and ADL notional per path.

    .venv/bin/python experiments/leverage/run.py [--paths 24] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, stressed_market, write_table

from perpabm import analysis, plots, sweep

LEVERAGE = [2.0, 5.0, 10.0, 20.0]


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=24)
    config = stressed_market().replace("vault.cap", 1.0)
    results = sweep(config, {"traders.leverage_median": LEVERAGE}, n_paths=args.paths,
                    seed=args.seed)
    by = "traders.leverage_median"
    table = analysis.adl_frequency(results.paths, by=by).merge(
        results.paths.groupby(by)[["liquidation_episodes", "backstop_notional",
                                   "adl_notional"]].mean().reset_index(), on=by)
    write_table(table, args.out, "summary")
    plots.adl_frequency(results.paths, by).savefig(args.out / "adl_vs_leverage.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

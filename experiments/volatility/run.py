"""Does the background volatility regime change what the same drop does?

Runs the stressed market (oct10_2025 around its 15% drop, the vault at 2 ×
equity) with the index's long-run volatility at 30%, 60%, 100% and 150% a year
on the same seeds, and writes `adl_vs_volatility.png` and the table
`summary.csv` / `summary.md`: ADL frequency, liquidation episodes and vault
P&L per path.

    .venv/bin/python experiments/volatility/run.py [--paths 24] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, stressed_market, write_table

from perpabm import analysis, plots, sweep

VOLATILITY = [0.3, 0.6, 1.0, 1.5]


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=24)
    config = stressed_market().replace("vault.cap", 2.0)
    results = sweep(config, {"market.volatility": VOLATILITY}, n_paths=args.paths,
                    seed=args.seed)
    by = "market.volatility"
    pnl = analysis.vault_pnl(results.paths, by=by)[[by, "mean", "es95"]].rename(
        columns={"mean": "vault_pnl_mean", "es95": "vault_es95"})
    table = analysis.adl_frequency(results.paths, by=by).merge(
        results.paths.groupby(by)["liquidation_episodes"].mean().reset_index(), on=by
    ).merge(pnl, on=by)
    write_table(table, args.out, "summary")
    plots.adl_frequency(results.paths, by).savefig(args.out / "adl_vs_volatility.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

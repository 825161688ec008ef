"""How big should the backstop vault's cap be? ADL frequency and vault P&L against the cap.

Runs the stressed market (oct10_2025 around its drop) at vault caps of 0 to 4 ×
equity on the same seeds, and writes `adl_vs_cap.png`, `vault_pnl.png` and the
table `summary.csv` / `summary.md` beside this script.

    .venv/bin/python experiments/vault_cap/run.py [--paths 32] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, stressed_market, write_table

from perpabm import analysis, plots, sweep

CAPS = [0.0, 0.5, 1.0, 2.0, 4.0]


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    here = args.out
    results = sweep(stressed_market(), {"vault.cap": CAPS}, n_paths=args.paths,
                    seed=args.seed)
    frequency = analysis.adl_frequency(results.paths, by="vault.cap")
    pnl = analysis.vault_pnl(results.paths, by="vault.cap")
    table = frequency.merge(pnl[["vault.cap", "mean", "q05", "var95", "es95", "p_loss"]],
                            on="vault.cap").rename(columns={"mean": "vault_pnl_mean"})
    write_table(table, here, "summary")
    plots.adl_frequency(results.paths, "vault.cap").savefig(here / "adl_vs_cap.png")
    plots.vault_pnl_distribution(results.paths[results.paths["vault.cap"] > 0],
                                 by="vault.cap").savefig(here / "vault_pnl.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()

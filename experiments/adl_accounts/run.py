"""Who is auto-deleveraged, against the record of 2025-10-10?

A public replay of Hyperliquid's node data for 2025-10-10 (GitHub
`ConejoCapital/HyperReplay` and `ConejoCapital/HyperMultiAssetedADL`) gives the
"real-time leverage" of the accounts at each of the day's 34,983 ADL events — quartiles
0.04x, 0.18x and 0.65x, 95th percentile 4.23x — and 94.5% of the ADL'd positions in
profit. This script measures the same figures on the model, and how levered the whole
population is just before the drop, beside the one published whole-venue figure we
have: Hyperliquid's open interest split by leverage (`docs/population.md`).

Runs, on the same seeds (the same index path), the oct10_2025 scenario with its
levered traders alone (`TRADERS_ONLY`: 1,000 traders at 10x, unhedged makers, the vault); as
bundled (the venue population: besides those, 100 funds — large accounts, lightly
levered — 5 basis traders and makers that hedge outside); and oct10_2025_history (the
venue population, traders and funds starting from a book built over 14 days of
history). Writes beside this script:

- `profile.csv` / `.md`: per population, over every ADL fill of every path, the ADL'd
  accounts' leverage at the fill (quartiles and 95th percentile), the share of fills
  and of accounts in profit, and the concentration of the ADL'd notional across a
  path's accounts (Gini, top 1%'s share; medians over paths) — in all and by account
  type (`analysis.adl_profile`);
- `population.csv` / `.md`: per population, at the minute before the drop, pooled
  over the first 8 paths (`SNAPSHOT_PATHS`), the accounts holding a position, their
  leverage (count-weighted quartiles) and the share of their notional held below 3x,
  at 3–7x and at 7x or more — in all and by account type (`analysis.leverage_snapshot`);
- `leverage.png`: the ECDF of the ADL'd accounts' leverage at the fill, per
  population, with the replay's quartiles.

    .venv/bin/python experiments/adl_accounts/run.py [--paths 32] [--seed 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import account_snapshots, parse_args, write_table

from perpabm import ScenarioConfig, analysis, load_scenario, plots, run_paths

RECORD_QUARTILES = {0.25: 0.04, 0.5: 0.18, 0.75: 0.65}
"""The replay's quartiles of the ADL'd accounts' real-time leverage (x), 2025-10-10:
`ConejoCapital/HyperMultiAssetedADL`, docs/reports/LEVERAGE_CORRECTION.md."""
RECORD_IN_PROFIT = 0.945
"""The replay's share of ADL'd positions in profit: `ConejoCapital/HyperReplay`,
data/canonical/realtime_analysis_summary.json (94.51%)."""


RECORD_OPEN_INTEREST = {"0–3x": 2.77 / 7.63, "3–7x": 3.7 / 7.63,
                        "≥7x": (7.63 - 2.77 - 3.7) / 7.63}
"""Hyperliquid's open interest by leverage, 2025-12-15 (an on-chain analyst's figures as
PANews and Odaily reported them: of 7.63B USD, 2.77B at 0–3x and 3.7B at 3–7x; the rest
above 7x): shares of the notional. `docs/population.md` says what they measure."""

SNAPSHOT_PATHS = 8
"""Paths (the run's first) whose accounts the population table pools."""

TRADERS_ONLY = {"funds.count": 0, "basis.count": 0, "makers.hedged": False,
            "makers.adl_response": "none", "traders.leverage_median": 10.0,
            "traders.leverage_sigma": 0.9}
"""Levered traders alone: 1,000 traders drawn at 10x (spread 0.9), with unhedged makers
and the vault — short-horizon accounts without spare collateral, set against the venue
population."""

POPULATIONS = {  # name in the tables and the figure: (scenario, settings on top)
    "traders only, 10x": ("oct10_2025", TRADERS_ONLY),
    "venue population": ("oct10_2025", {}),
    "venue population, warm book": ("oct10_2025_history", {}),
}


def leverage_figure(events: pd.DataFrame, names: dict[int, str]) -> plt.Figure:
    """ECDF of the ADL'd accounts' leverage at each fill (log scale), one line per point
    (`names`: point → label), the replay's quartiles marked."""
    adl = events[events["kind"] == "adl"]
    with plt.style.context(plots.STYLE_PATH):
        fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
        for point, name in names.items():
            leverage = np.sort(adl.loc[adl["point"] == point, "leverage"].dropna().to_numpy())
            if len(leverage):
                shares = np.arange(1, len(leverage) + 1) / len(leverage)
                ax.step(leverage, shares, where="post", label=f"model, {name}")
        ax.plot(list(RECORD_QUARTILES.values()), list(RECORD_QUARTILES), "o", color="black",
                label="2025-10-10 replay: quartiles")
        ax.set_xscale("log")
        ax.set_xlabel("ADL'd account's leverage at the fill (notional ÷ equity, x)")
        ax.set_ylabel("share of ADL fills")
        ax.set_title("Leverage of the auto-deleveraged", loc="left")
        ax.legend(fontsize="small")
    return fig


def population_table(configs: dict[str, ScenarioConfig], seed: int, paths: int) -> pd.DataFrame:
    """`analysis.leverage_snapshot` of each population before the drop, in all and by
    account type, with the record's shares of open interest as a last row."""
    rows = []
    for name, config in configs.items():
        before = [config.market.shocks[0].at_minute]  # the minute before the drop
        accounts = account_snapshots(config, seed, paths, before)
        for table in (analysis.leverage_snapshot(accounts).assign(account_type="all"),
                      analysis.leverage_snapshot(accounts, by="account_type")):
            rows.append(table.assign(population=name))
    record = {"population": "Hyperliquid, 2025-12-15", "account_type": "all",
              **{f"notional_{k}": v for k, v in RECORD_OPEN_INTEREST.items()}}
    table = pd.concat([*rows, pd.DataFrame([record])], ignore_index=True)
    first = ["population", "account_type", "accounts", "notional"]
    return table[first + [c for c in table.columns if c not in first]]


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    here = args.out
    configs = {name: load_scenario(scenario).with_settings(settings)
               for name, (scenario, settings) in POPULATIONS.items()}
    runs = []
    for point, config in enumerate(configs.values()):
        runs.append(run_paths(config, n_paths=args.paths, seed=args.seed).events.assign(
            point=point))
    events = pd.concat(runs, ignore_index=True)
    names = dict(enumerate(POPULATIONS))
    overall = analysis.adl_profile(events).assign(account_type="all")
    by_type = analysis.adl_profile(events, by="account_type")
    table = pd.concat([overall, by_type], ignore_index=True)
    table.insert(0, "population", table.pop("point").map(names))
    table = table.sort_values(["population", "account_type"], kind="stable")
    table = table[["population", "account_type", *analysis.PROFILE_COLUMNS]]
    write_table(table, here, "profile")
    population = population_table(configs, args.seed, min(args.paths, SNAPSHOT_PATHS))
    write_table(population, here, "population")
    leverage_figure(events, names).savefig(here / "leverage.png")
    print(table.to_string(index=False))
    print(population.to_string(index=False))
    print(f"record: leverage quartiles {list(RECORD_QUARTILES.values())}, "
          f"{RECORD_IN_PROFIT:.1%} of ADL'd positions in profit")


if __name__ == "__main__":
    main()

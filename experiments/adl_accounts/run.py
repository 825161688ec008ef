"""Who is auto-deleveraged, against the record of 2025-10-10?

A public replay of Hyperliquid's node data for 2025-10-10 (GitHub
`ConejoCapital/HyperReplay` and `ConejoCapital/HyperMultiAssetedADL`) gives the
"real-time leverage" of the accounts at each of the day's 34,983 ADL events — quartiles
0.04x, 0.18x and 0.65x, 95th percentile 4.23x — and 94.5% of the ADL'd positions in
profit. This script measures the same figures on the model.

Runs, on the same seeds (the same index path), the oct10_2025 scenario as bundled
(the hyperliquid preset); the same with 100 funds besides its 1,000 traders
(`funds.count`: large accounts, lightly levered — the ``funds`` section's defaults take
the replay's leverage distribution); and oct10_2025_history (the traders and 100 funds
starting from a book built over 14 days of history). Writes beside this script:

- `profile.csv` / `.md`: per population, over every ADL fill of every path, the ADL'd
  accounts' leverage at the fill (quartiles and 95th percentile), the share of fills
  and of accounts in profit, and the concentration of the ADL'd notional across a
  path's accounts (Gini, top 1%'s share; medians over paths) — in all and by account
  type (`analysis.adl_profile`);
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
from common import parse_args, write_table

from perpabm import analysis, load_scenario, plots, run_paths

RECORD_QUARTILES = {0.25: 0.04, 0.5: 0.18, 0.75: 0.65}
"""The replay's quartiles of the ADL'd accounts' real-time leverage (x), 2025-10-10:
`ConejoCapital/HyperMultiAssetedADL`, docs/reports/LEVERAGE_CORRECTION.md."""
RECORD_IN_PROFIT = 0.945
"""The replay's share of ADL'd positions in profit: `ConejoCapital/HyperReplay`,
data/canonical/realtime_analysis_summary.json (94.51%)."""


POPULATIONS = {  # name in the tables and the figure: (scenario, settings on top)
    "traders only": ("oct10_2025", {}),
    "traders + 100 funds": ("oct10_2025", {"funds.count": 100}),
    "warm book, 14 days": ("oct10_2025_history", {}),
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


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    here = args.out
    runs = []
    for point, (scenario, settings) in enumerate(POPULATIONS.values()):
        config = load_scenario(scenario).with_settings(settings)
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
    leverage_figure(events, names).savefig(here / "leverage.png")
    print(table.to_string(index=False))
    print(f"record: leverage quartiles {list(RECORD_QUARTILES.values())}, "
          f"{RECORD_IN_PROFIT:.1%} of ADL'd positions in profit")


if __name__ == "__main__":
    main()

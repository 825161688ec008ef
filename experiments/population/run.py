"""How levered should the traders be? The venue population against Hyperliquid's open
interest by leverage.

The one whole-venue figure of how levered Hyperliquid's open positions are that we
found: of 7.63B USD of open interest on 2025-12-15, 2.77B was held at 0–3x, 3.7B at
3–7x and the remaining 1.16B above 7x (an on-chain analyst's figures, as PANews and
Odaily reported them; `docs/population.md` says what they measure and what they do
not). The bundled scenarios' other accounts — funds, basis traders, makers, the
arbitrageur and the vault — take their settings from other sources; this script
chooses the traders' leverage distribution (`traders.leverage_median`,
`traders.leverage_sigma`) so that the whole population's notional splits across those
buckets as the venue's did.

For each point of a grid of the two settings, the `default` scenario (a normal day,
with the venue population: 1,000 traders, 100 funds, 5 basis traders, hedged makers,
the arbitrageur, the vault) is run on `--paths` paths, and every account is read at
four moments (`SNAPSHOT_MINUTES`); `analysis.leverage_snapshot` pools them. The
distance to the record is the sum of the three shares' absolute differences. Three
shares cannot tell narrow spreads apart — at a small sigma nearly all the traders'
notional falls in one bucket, and the nearest points crowd at the grid's smallest
sigma — so the point chosen is the one with the widest spread among those within
`FIT_TOLERANCE` of the nearest, not narrower than the data ask. Writes beside this
script:

- `fit.csv` / `.md`: the record, then every grid point, nearest first: the
  population's notional shares below 3x, at 3–7x and at 7x or more, its count-weighted
  leverage quartiles, the distance, and which point is chosen;
- `by_type.csv` / `.md`: the chosen point's snapshot by account type.

    .venv/bin/python experiments/population/run.py [--paths 4] [--seed 1]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import account_snapshots, parse_args, write_table

from perpabm import analysis, load_scenario

RECORD = {"notional_0–3x": 2.77 / 7.63, "notional_3–7x": 3.7 / 7.63,
          "notional_≥7x": (7.63 - 2.77 - 3.7) / 7.63}
"""Hyperliquid's open interest by leverage on 2025-12-15, shares of 7.63B USD."""

MEDIANS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)
SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 0.9)
"""The grid of `traders.leverage_median` (x) and `traders.leverage_sigma` (log)."""

FIT_TOLERANCE = 0.1
"""Distances within this of the nearest point's fit the record as well: the spacing of
the grid's medians moves the distance by about as much."""

SNAPSHOT_MINUTES = (360, 720, 1080, 1440)
"""When in the day every account is read (minutes from the start)."""


def fit_point(median: float, sigma: float, seed: int, paths: int) -> dict:
    """The population's snapshot figures with the traders' leverage at (median, sigma)."""
    config = load_scenario("default").with_settings(
        {"traders.leverage_median": median, "traders.leverage_sigma": sigma})
    accounts = account_snapshots(config, seed, paths, SNAPSHOT_MINUTES)
    row = analysis.leverage_snapshot(accounts).iloc[0].to_dict()
    distance = sum(abs(row[k] - v) for k, v in RECORD.items())
    return {"traders_leverage_median": median, "traders_leverage_sigma": sigma, **row,
            "distance": distance}


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=4)
    grid = list(itertools.product(MEDIANS, SIGMAS))
    rows = Parallel(n_jobs=-1)(delayed(fit_point)(m, s, args.seed, args.paths)
                               for m, s in grid)
    fit = pd.DataFrame(rows).sort_values("distance", kind="stable").reset_index(drop=True)
    close = fit[fit["distance"] <= fit["distance"].iloc[0] + FIT_TOLERANCE]
    chosen = close.sort_values(["traders_leverage_sigma", "distance"],
                               ascending=[False, True], kind="stable").index[0]
    fit["chosen"] = fit.index == chosen
    best = fit.loc[chosen]
    record = {"traders_leverage_median": np.nan, "traders_leverage_sigma": np.nan, **RECORD,
              "distance": 0.0, "chosen": False}
    write_table(pd.concat([pd.DataFrame([record]), fit], ignore_index=True), args.out, "fit")
    config = load_scenario("default").with_settings(
        {"traders.leverage_median": best["traders_leverage_median"],
         "traders.leverage_sigma": best["traders_leverage_sigma"]})
    accounts = account_snapshots(config, args.seed, args.paths, SNAPSHOT_MINUTES)
    by_type = pd.concat([analysis.leverage_snapshot(accounts).assign(account_type="all"),
                         analysis.leverage_snapshot(accounts, by="account_type")],
                        ignore_index=True)
    write_table(by_type[["account_type", *[c for c in by_type if c != "account_type"]]],
                args.out, "by_type")
    print(fit.to_string(index=False))
    print(f"chosen: traders.leverage_median = {best['traders_leverage_median']:g}, "
          f"traders.leverage_sigma = {best['traders_leverage_sigma']:g}")
    print(f"record: {RECORD}")


if __name__ == "__main__":
    main()

"""How big must the insurance fund be to keep ADL away? ADL against the fund's size.

Runs the crash scenario under the binance preset with the fund at 0, 1%, 4.3%
(Binance's published ratio, the preset's), 20% and 88% (BitMEX's) of open interest
(``exchange.insurance_fund_ratio``: the path tops the fund up to that share of the open
interest until it is first drawn on), with the fund as Binance describes it (the preset:
``exchange.fund_takeover``, it takes the rest of a bankrupt position over at the
bankruptcy price, holds it in its own margin account and sells it off through the
book, up to a net notional of its balance) and as a fund that only buys the rest in
the book past the bankruptcy price, paying the gap; all on the same seeds. Writes
beside this script:

- `summary.csv` / `.md`: per fund mode and size, the share of paths with ADL (Wilson
  95% interval), mean ADL fills and notional, the fund's mean balance when it was
  first drawn on (its top-ups) and its mean change (USD, its held positions at the
  mark, top-ups left out);
- `differences.csv` / `.md`: per fund mode, the paired difference of ADL frequency and
  notional from no fund at all (bootstrap 95% interval; McNemar for ADL fired);
- `adl_vs_fund.png`: the share of paths with ADL against the fund's size, one panel
  per fund mode.

    .venv/bin/python experiments/fund_size/run.py [--paths 32] [--seed 7]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, write_table

from perpabm import analysis, load_scenario, plots, presets, sweep

FUNDS = [0.0, 0.01, 0.043, 0.2, 0.88]  # × open interest; 0.043 Binance's, 0.88 BitMEX's
MODES = {True: "takes positions over (Binance FAQ, preset)", False: "buys in the book"}
MODE, FUND = "exchange.fund_takeover", "exchange.insurance_fund_ratio"


def top_ups(events: pd.DataFrame) -> pd.DataFrame:
    """Per path, the USD the model added to the fund (its "fund_deposit" rows): with a
    fund that started empty, its balance when it was first drawn on, less the fees and
    surpluses it had received by then."""
    deposits = events[events["kind"] == "fund_deposit"]
    return (deposits.groupby(["point", "path"])["amount"].sum()
            .rename("fund_topped_up").reset_index())


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=32)
    here = args.out
    config = load_scenario("crash").replace("exchange", presets.binance())
    results = sweep(config, {MODE: list(MODES), FUND: FUNDS}, n_paths=args.paths,
                    seed=args.seed)
    paths = results.paths.merge(top_ups(results.events), on=["point", "path"], how="left")
    paths["fund_topped_up"] = paths["fund_topped_up"].fillna(0.0)
    frequency = analysis.adl_frequency(paths, by=[MODE, FUND])
    means = paths.groupby([MODE, FUND], sort=True)[
        ["adl_fills", "adl_notional", "fund_topped_up", "insurance_fund_change"]
    ].mean().reset_index()
    summary = frequency.merge(means, on=[MODE, FUND])
    write_table(summary, here, "summary")
    differences = []
    for metric in ("adl_fired", "adl_notional"):
        for fund in FUNDS[1:]:
            table = analysis.paired_difference(paths, metric, by=FUND, a=0.0, b=fund,
                                               within=[MODE])
            table.insert(1, "fund", fund)
            table.insert(1, "metric", metric)
            differences.append(table)
    write_table(pd.concat(differences, ignore_index=True), here, "differences")
    fig, axes = plt.subplots(1, len(MODES), figsize=(9, 3.6), sharey=True,
                             layout="constrained")
    for ax, (mode, label) in zip(axes, MODES.items(), strict=True):
        plots.adl_frequency(paths[paths[MODE] == mode], FUND, ax=ax)
        for where in ("center", "right"):
            ax.set_title("", loc=where)
        ax.set_title(f"fund {label}", loc="left")
        ax.set_xticks(ax.get_xticks(), [f"{fund:.3g}" for fund in FUNDS])
        ax.set_xlabel("insurance fund (× open interest)")
    fig.savefig(here / "adl_vs_fund.png")
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()

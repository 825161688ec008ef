"""Global sensitivity: which of oct10_2025's assumptions do ADL and the vault's P&L
depend on? First-order and total Sobol indices, with SALib.

One sweep of oct10_2025 on the adaptive clock (ticks of a second in the cascade, where
the figures converge: experiments/time_step) on the runner's Saltelli design (`design_points(...,
"saltelli")`) over FACTORS — the liquidator's cap and capital (Hyperliquid's backstop
in place of an insurance fund), the traders' leverage, the makers' withdrawal in stress,
the drop's size and length, and the ADL ranking rule as a factor of levels — every
point on the same path seeds. For each output (OUTPUTS: ADL frequency, mean ADL
notional, mean overshoot, mean vault P&L over a point's paths) it estimates S1 and ST
with their 95% bootstrap intervals (`analysis.sobol_indices`), at the full design and
at its first half (a prefix of it), to show whether they are stable at this size.
Writes beside this script:

- `indices.csv` / `indices.md`: every output × factor, at both sizes;
- `sobol.png`: the indices at the full size, one panel per output;
- `size.md`: base points, design points, paths per point, paths and the run time, and
  any output that was the same at every point (it has no indices).

    .venv/bin/python experiments/sensitivity/run.py [--points 64] [--paths 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import markdown_table, write_table

from perpabm import analysis, load_scenario, plots, sweep

FACTORS = {
    "vault.cap": (5.0, 80.0),
    "vault.liquidator_share": (0.002, 0.1),
    "traders.leverage_median": (2.0, 10.0),
    "makers.withdrawal": (0.0, 12.0),
    "market.shocks.0.change": (-0.25, -0.08),
    "market.shocks.0.over_minutes": (2.0, 20.0),
    "exchange.adl_rule": ["hyperliquid", "pnl_leverage", "profit", "leverage", "size"],
}
"""Each factor's range (uniform over it), or its levels (each an equal share)."""

OUTPUTS = {
    "adl_fired": "ADL frequency",
    "adl_notional": "ADL notional (USD)",
    "adl_overshoot": "overshoot (USD)",
    "vault_pnl": "vault P&L (USD)",
}
"""Path metric → what its mean over a point's paths is."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64,
                        help="base points of the Saltelli design (a power of 2)")
    parser.add_argument("--paths", type=int, default=4, help="paths a design point")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def main() -> None:
    args = parse_args()
    here = args.out
    config = load_scenario("oct10_2025").replace("run.clock", "adaptive")
    started = time.perf_counter()
    results = sweep(config, FACTORS, args.paths, args.seed, design="saltelli",
                    n_points=args.points, n_jobs=args.jobs, progress=True)
    minutes = (time.perf_counter() - started) / 60.0
    overshoot = analysis.adl_overshoot_by_path(results.paths, results.events)["overshoot"]
    results.paths = results.paths.assign(adl_overshoot=overshoot.to_numpy())

    sizes = sorted({max(1, args.points // 2), args.points})
    tables, full, constant = [], {}, []
    means = results.paths.groupby("point")
    for metric in OUTPUTS:
        for base in sizes:
            points = results.points["point"][: base * (len(FACTORS) + 2)]
            if means[metric].mean().reindex(points).nunique() == 1:
                constant.append(f"{metric} at {base} base points")  # nothing to share out
                continue
            table = analysis.sobol_indices(results, metric, FACTORS, args.points,
                                           args.seed, base_points=base)
            if base == args.points:
                full[metric] = table
            tables.append(table.assign(output=metric, base_points=base,
                                       design_points=table.attrs["design_points"]))
    indices = pd.concat(tables, ignore_index=True)
    indices = indices[["output", "base_points", "design_points", *analysis.SOBOL_COLUMNS]]
    write_table(indices, here, "indices")

    figure, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for ax, (metric, label) in zip(axes.ravel(), OUTPUTS.items(), strict=True):
        if metric in full:
            plots.sobol_indices(full[metric], ax=ax, title=label)
        else:
            ax.set_axis_off()
            ax.set_title(f"{label}: the same at every point, no indices")
    n_design = len(results.points)
    figure.suptitle(f"Sobol indices on oct10_2025: {args.points} base points, {n_design} "
                    f"design points × {args.paths} paths (95% bootstrap intervals)")
    figure.tight_layout()
    figure.savefig(here / "sobol.png")

    size = pd.DataFrame([{
        "base points": args.points, "design points": n_design,
        "paths a point": args.paths, "paths": len(results.paths),
        "failed paths": len(results.failures), "minutes (this machine)": round(minutes, 1),
        "constant outputs": ", ".join(constant) or "none"}])
    (here / "size.md").write_text(markdown_table(size))
    print(markdown_table(size))
    print(indices.to_string(index=False))


if __name__ == "__main__":
    main()

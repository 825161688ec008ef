"""How do ADL's ranking rule and allocation policy change how often ADL fires, what it
takes from the winners, and the liquidator vault's P&L, on Hyperliquid as documented?

Runs the full oct10_2025 scenario as bundled (the venue population: 1,000 traders, 100
funds, 5 basis traders, hedged makers; one day, a 15% drop over ten minutes at 21:00;
the hyperliquid preset: the liquidator takes over an account whose
equity is still in [0, 2/3·MM) with its remaining collateral, a bankrupt account goes
to ADL, ADL closes at the previous mark; HLP, 10M USD, makes markets, and its
liquidator is a component vault of its own with 5% of that, taking what its margin
allows).

One sweep, a zip design whose points are the policies (`POLICIES`: the venue's own
rule, hyperliquid ranking with queue allocation, and the alternatives), all on the
same path seeds (common random numbers). Writes:

- `summary.csv` / `.md`: per policy, ADL frequency (Wilson interval), mean ADL
  notional, profit closed, deficit covered and overshoot (profit closed − deficit
  covered, `analysis.adl_overshoot` summed per path, 0 on a path without ADL), the
  mean over the paths with ADL of the profit closed per unit of deficit covered, the
  vault's mean P&L with its BCa interval, and the share of ADL fills (and of their
  notional) whose losing side was the vault's liquidator;
- `differences.csv` / `.md`: per policy and metric, the mean paired difference
  policy − venue over the paths with its BCa bootstrap interval
  (`analysis.paired_difference`; for ADL fired also the exact McNemar test). The
  metrics: ADL fired, ADL notional, overshoot, the vault's P&L, the profit closed per
  unit of deficit covered (`profit_per_deficit`, over the paths with ADL), and who is
  hit: each kind of account's share of the profit ADL closed on the path (`share_<kind>`:
  traders of every strategy together, funds, basis traders, makers, the vault) and each
  leverage bucket's (`share_<bucket>`: the ADL'd account's leverage before the close,
  below 1x, 1–5x, 5x or more; `analysis.adl_share_by_path`), over the paths with ADL;
- `hit_shares.csv` / `.md`: per policy, the mean over paths of each of those shares;
- `losing_side.csv` / `.md`: per policy, the ADL fills and notional by the kind
  of account on the losing side (`analysis.adl_losing_side`; "vault_liquidator" is
  the liquidator's account, which holds the positions it took over);
- `vault_by_strategy.csv` / `.md`: per policy, the vault's P&L in total and per
  strategy (`vault_pnl_liquidator`, `vault_pnl_market_making`);
- `differences.png` (paired differences with their intervals, one panel per
  outcome metric), `who_is_hit.png` (the same for the shares) and `vault_pnl.png`
  (the vault's P&L per path, ECDF per policy).

Small samples: bootstrap intervals are NaN below `analysis.MIN_BOOTSTRAP_PATHS`
paired values or when every difference is equal (two policies that act alike on
every path); VaR-style tails are not reported here.

    .venv/bin/python experiments/ranking_rules/run.py [--paths 64] [--seed 1]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parents[1]))
from common import parse_args, write_table

from perpabm import Results, analysis, load_scenario, plots, sweep

POLICIES = [  # (ranking rule, allocation); the first is the venue's own
    ("hyperliquid", "queue"),
    ("profit", "queue"),
    ("pnl_leverage", "queue"),
    ("random", "queue"),
    ("hyperliquid", "pro_rata"),
    ("hyperliquid", "wealth_pro_rata"),
    ("hyperliquid", "leverage_pro_rata"),
    ("hyperliquid", "smart_queue"),
]
VENUE = "hyperliquid / queue"
VAULT = "vault_liquidator"  # the account type that holds the positions taken over
METRICS = {  # per-path column: what the tables and the figure call it
    "adl_fired": "ADL fired (share of paths)",
    "adl_notional": "ADL notional (USD)",
    "overshoot": "overshoot (USD)",
    "vault_pnl": "vault P&L (USD)",
    "profit_per_deficit": "profit closed per deficit covered",
}
KINDS = {"noise": "trader", "momentum": "trader", "contrarian": "trader"}
"""Account types pooled in the shares of who is hit: the traders, whatever their strategy."""
LEVERAGE_EDGES = (0.0, 1.0, 5.0, math.inf)
"""The leverage buckets of who is hit: below 1x (spare collateral), 1–5x, 5x or more."""
STRATEGIES = ["vault_pnl", "vault_pnl_liquidator", "vault_pnl_market_making"]


def label(rule: str, allocation: str) -> str:
    """A policy's name in the tables: ranking rule / allocation."""
    return f"{rule} / {allocation}"


def per_path(results: Results) -> pd.DataFrame:
    """One row per policy and path: the summary figures and the path's ADL episodes'
    profit closed, deficit covered and overshoot summed (0 where ADL never fired)."""
    points = results.points.rename(columns={"exchange.adl_rule": "rule",
                                            "exchange.adl_allocation": "allocation"})
    points["policy"] = [label(r, a) for r, a in zip(points["rule"], points["allocation"],
                                                    strict=True)]
    paths = results.paths[["point", "path", "adl_fired", "adl_fills", "adl_notional",
                           *STRATEGIES]]
    sums = analysis.adl_overshoot_by_path(paths, results.events)
    paths = paths.merge(sums, on=["point", "path"])
    covered = paths["deficit_covered"].where(paths["deficit_covered"] > 0)
    paths["profit_per_deficit"] = paths["profit_closed"] / covered  # NaN: no deficit
    events = results.events.assign(account_type=results.events["account_type"].astype(
        object).replace(KINDS))
    for shares in (analysis.adl_share_by_path(events, by="account_type"),
                   analysis.adl_share_by_path(events, by="leverage_bucket",
                                              edges=LEVERAGE_EDGES)):
        paths = paths.merge(shares, on=["point", "path"], how="left")  # NaN: no ADL
    return points[["point", "policy", "rule", "allocation"]].merge(paths, on="point")


def share_columns(paths: pd.DataFrame) -> list[str]:
    """The per-path share columns of who is hit, kinds of account first."""
    return [c for c in paths if c.startswith("share_")]


def summary_table(paths: pd.DataFrame, sides: pd.DataFrame) -> pd.DataFrame:
    """Per policy: ADL frequency, means of the per-path figures, the vault's mean P&L
    with its interval, and the share of ADL fills (and of their notional) whose losing
    side was the vault's liquidator (0 where it never was; NaN without ADL)."""
    vault = sides[sides["losing_side"] == VAULT].set_index("policy")
    losing = sides.groupby("policy")[["fills"]].sum()
    losing["vault_losing_fills_share"] = vault["fills_share"].reindex(losing.index).fillna(0.0)
    losing["vault_losing_notional_share"] = vault["notional_share"].reindex(
        losing.index).fillna(0.0)
    losing = losing.drop(columns="fills").reset_index()
    frequency = analysis.adl_frequency(paths, by="policy").rename(
        columns={"share": "adl_share", "low": "adl_share_low", "high": "adl_share_high"})
    means = paths.groupby("policy")[["adl_notional", *analysis.OVERSHOOT_PARTS,
                                     "profit_per_deficit"]].mean().reset_index()
    pnl = analysis.vault_pnl(paths, by="policy")[["policy", "mean", "mean_low", "mean_high"]]
    pnl = pnl.rename(columns={"mean": "vault_pnl", "mean_low": "vault_pnl_low",
                              "mean_high": "vault_pnl_high"})
    table = frequency.merge(means, on="policy").merge(pnl, on="policy")
    return in_policy_order(table.merge(losing, on="policy", how="left"))


def differences_table(paths: pd.DataFrame) -> pd.DataFrame:
    """Per policy other than the venue's and per metric: the mean paired difference
    policy − venue over the paths, with its interval (and McNemar for ADL fired); a
    metric missing on a path (no ADL) leaves that path's pair out."""
    rows = []
    for policy in paths["policy"].unique():
        if policy == VENUE:
            continue
        for metric in [*METRICS, *share_columns(paths)]:
            diff = analysis.paired_difference(paths, metric, by="policy", a=VENUE, b=policy,
                                              within=[])
            rows.append(diff.assign(policy=policy, metric=metric))
    table = pd.concat(rows, ignore_index=True)
    first = ["policy", "metric", "pairs", "mean_difference", "low", "high"]
    return table[first + [c for c in table.columns if c not in first]]


def hit_shares_table(paths: pd.DataFrame) -> pd.DataFrame:
    """Per policy: the mean over its paths with ADL of each share of who is hit."""
    table = paths.groupby("policy")[share_columns(paths)].mean().reset_index()
    return in_policy_order(table)


def losing_side_table(events: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """Per policy and kind of account on the losing side of the ADL fills: fills and
    notional, each with its share of the policy's ADL fills (pooled over the paths)."""
    sides = analysis.adl_losing_side(events)
    return in_policy_order(points[["point", "policy"]].merge(sides, on="point")).drop(
        columns="point")


def strategy_table(paths: pd.DataFrame) -> pd.DataFrame:
    """Per policy, the vault's P&L in total and per strategy: mean with its BCa
    interval, median and the share of paths that lost."""
    rows = []
    for column in STRATEGIES:
        table = analysis.vault_pnl(paths.rename(columns={"vault_pnl": "total",
                                                         column: "vault_pnl"}), by="policy")
        rows.append(table[["policy", "paths", "mean", "mean_low", "mean_high", "q50",
                           "p_loss"]].assign(strategy=column.removeprefix("vault_pnl_")
                                              if column != "vault_pnl" else "total"))
    table = pd.concat(rows, ignore_index=True)
    table = in_policy_order(table)
    return table[["policy", "strategy", *[c for c in table if c not in ("policy", "strategy")]]]


def in_policy_order(table: pd.DataFrame) -> pd.DataFrame:
    """`table`'s rows in the order of POLICIES (the venue's first)."""
    order = {label(r, a): i for i, (r, a) in enumerate(POLICIES)}
    return table.sort_values("policy", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True)


def differences_figure(differences: pd.DataFrame, metrics: dict[str, str]) -> plt.Figure:
    """The paired difference policy − venue of each of `metrics` (column: title), with
    its interval; a missing interval (NaN: fewer than MIN_BOOTSTRAP_PATHS pairs or no
    spread) is a bare point."""
    with plt.style.context(plots.STYLE_PATH):
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6),
                                 sharey=True, layout="constrained")
        policies = [label(r, a) for r, a in POLICIES if label(r, a) != VENUE]
        y = range(len(policies))
        for ax, (metric, title) in zip(axes, metrics.items(), strict=True):
            rows = differences[differences["metric"] == metric].set_index("policy").loc[
                policies]
            mean = rows["mean_difference"].to_numpy(dtype=float)
            below = (mean - rows["low"]).to_numpy(dtype=float)
            above = (rows["high"] - mean).to_numpy(dtype=float)
            ax.errorbar(mean, y, xerr=[below, above], fmt="o", capsize=3)
            bare = rows["low"].isna().to_numpy()
            ax.plot(mean[bare], np.asarray(y)[bare], "o", color="white",
                    markeredgecolor="black", zorder=3)
            ax.axvline(0.0, color="grey", linewidth=0.8)
            ax.set_title(title, fontsize="small")
        axes[0].set_yticks(list(y), policies)
        axes[0].invert_yaxis()
        fig.supxlabel(f"paired difference from the venue's rule ({VENUE}), 95% BCa; "
                      f"open marker: no interval (fewer than "
                      f"{analysis.MIN_BOOTSTRAP_PATHS} pairs, or every difference equal)",
                      fontsize="small")
    return fig


def main() -> None:
    args = parse_args(__file__, __doc__, default_paths=64)
    here = args.out
    config = load_scenario("oct10_2025")
    grid = {"exchange.adl_rule": [rule for rule, _ in POLICIES],
            "exchange.adl_allocation": [allocation for _, allocation in POLICIES]}
    start = time.perf_counter()
    results = sweep(config, grid, n_paths=args.paths, seed=args.seed, design="zip")
    seconds = time.perf_counter() - start
    paths = per_path(results)
    points = paths[["point", "policy"]].drop_duplicates()

    sides = losing_side_table(results.events, points)
    summary = summary_table(paths, sides)
    differences = differences_table(paths)
    write_table(summary, here, "summary")
    write_table(differences, here, "differences")
    write_table(sides, here, "losing_side")
    write_table(strategy_table(paths), here, "vault_by_strategy")
    write_table(hit_shares_table(paths), here, "hit_shares")
    differences_figure(differences, METRICS).savefig(here / "differences.png")
    hit = {c: f"share of profit closed: {c.removeprefix('share_')}" for c in share_columns(paths)}
    differences_figure(differences, hit).savefig(here / "who_is_hit.png")
    plots.vault_pnl_ecdf(paths, by="policy").savefig(here / "vault_pnl.png")
    print(summary.to_string(index=False))
    print(f"{len(POLICIES)} policies × {args.paths} paths in {seconds:.0f} s")


if __name__ == "__main__":
    main()

"""Engine benchmarks: `update_mark` with no liquidation over many accounts.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_engine.py``).
Prints a table of medians and writes it as JSON to benchmarks/results/engine.json.
Figures are per call, from ``timeit.repeat`` (median of the repeats), one core.

For comparison, the same scan done the direct way — equity and tiered
maintenance margin of every account recomputed from the ledger with
:mod:`perpabm.mechanics` — is timed alongside; the engine instead keeps each
account's liquidation price and recomputes it only when the account changes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from pathlib import Path

import numpy as np

from perpabm import Exchange, ExchangeConfig, mechanics


def build_exchange(n_accounts: int, preset: str, seed: int = 0) -> Exchange:
    """`n_accounts` accounts in matched long/short pairs at 10x or less around price 100."""
    ex = Exchange(ExchangeConfig.preset(preset), mark_price=100.0, capacity=n_accounts)
    rng = np.random.default_rng(seed)
    accounts = [ex.open_account(10_000.0) for _ in range(n_accounts)]
    for long_, short in zip(accounts[::2], accounts[1::2], strict=True):
        ex.fill(long_, short, float(rng.uniform(1.0, 10.0)), 100.0)
    return ex


def time_update_mark(ex: Exchange, calls: int, repeats: int, seed: int = 1) -> list[float]:
    """Seconds per call of update_mark over `repeats` batches of `calls` small moves."""
    prices = iter(100.0 + np.random.default_rng(seed).normal(0.0, 0.05, calls * (repeats + 1)))
    totals = timeit.repeat(lambda: ex.update_mark(float(next(prices))), number=calls,
                           repeat=repeats)
    assert len(ex.events) == 0, "the benchmark moves must not liquidate anyone"
    return [t / calls for t in totals]


def time_direct_scan(ex: Exchange, calls: int, repeats: int) -> list[float]:
    """Seconds per call of a full recomputation of equity < maintenance margin."""
    led, tiers = ex.ledger, ex.config.mm_tiers

    def scan() -> np.ndarray:
        mark = ex.mark_price
        equity = led.equity(mark)
        margin = mechanics.maintenance_margin(np.abs(led.view("size")) * mark, tiers)
        return np.flatnonzero((equity < margin) & (led.view("size") != 0.0))

    assert len(scan()) == 0
    return [t / calls for t in timeit.repeat(scan, number=calls, repeat=repeats)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000",
                        help="comma-separated account counts")
    parser.add_argument("--preset", default="binance")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine.json"))
    args = parser.parse_args(argv)

    rows = []
    print(f"update_mark, no liquidation, preset {args.preset} "
          f"({len(ExchangeConfig.preset(args.preset).mm_tiers)} margin tiers)")
    print(f"{'accounts':>10} {'median µs/call':>15} {'min':>8} {'max':>8} "
          f"{'direct scan µs':>15} {'ratio':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        ex = build_exchange(n, args.preset)
        per_call = time_update_mark(ex, args.calls, args.repeats)
        direct = statistics.median(time_direct_scan(ex, max(args.calls // 10, 5), args.repeats))
        row = {"accounts": n, "median_us": statistics.median(per_call) * 1e6,
               "min_us": min(per_call) * 1e6, "max_us": max(per_call) * 1e6,
               "direct_scan_median_us": direct * 1e6}
        row["direct_over_engine"] = row["direct_scan_median_us"] / row["median_us"]
        rows.append(row)
        print(f"{n:>10,} {row['median_us']:>15.1f} {row['min_us']:>8.1f} {row['max_us']:>8.1f} "
              f"{row['direct_scan_median_us']:>15.1f} {row['direct_over_engine']:>7.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "update_mark_no_liquidation", "preset": args.preset,
        "python": sys.version.split()[0], "numpy": np.__version__,
        "machine": platform.machine(), "rows": rows}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

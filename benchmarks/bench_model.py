"""Model benchmarks: one path of the default scenario, and how it scales with traders.

Run: ``.venv/bin/python benchmarks/bench_model.py`` (part of ``make bench``).
Prints medians of wall-clock seconds (time.perf_counter around ``run()``, model
construction included), one core, and writes benchmarks/results/model.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from perpabm import PerpMarketModel, load_scenario


def time_path(traders: int, steps: int, seed: int) -> float:
    config = load_scenario("default").replace("traders.count", traders)
    config = config.replace("run.steps", steps)
    start = time.perf_counter()
    PerpMarketModel(config, rng=seed).run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "model.json"))
    args = parser.parse_args(argv)
    cases = [(1_000, 1_440, args.repeats), (10_000, 1_440, 1), (100_000, 1_440, 1)]
    rows = []
    print(f"{'traders':>9} {'steps':>6} {'runs':>5} {'median s/path':>14} {'ms/step':>9}")
    for traders, steps, repeats in cases:
        times = [time_path(traders, steps, seed) for seed in range(repeats)]
        median = statistics.median(times)
        row = {"traders": traders, "steps": steps, "runs": repeats, "median_s": median,
               "ms_per_step": 1e3 * median / steps}
        rows.append(row)
        print(f"{traders:>9,} {steps:>6} {repeats:>5} {median:>14.2f} {row['ms_per_step']:>9.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "default_scenario_path", "rows": rows}, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

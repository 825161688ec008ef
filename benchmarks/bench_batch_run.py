"""``mesa.batch_run`` against ``perpabm.runner.run_paths``: the same model, the same paths.

Both run `--paths` paths of one scenario in this process, one core, on the seeds
``path_seed(seed, k)`` of the runner (k = 0 … paths − 1):

- ``mesa.batch_run(PerpMarketModel, parameters={"config": config}, rng=seeds,
  max_steps=run.steps, number_processes=1)``: builds, steps and collects each model
  (its datacollector's one row of summary figures);
- ``run_paths(config, paths, seed, n_jobs=1)``: builds and runs each path and keeps
  its summary row and its event table, as a ``Results``.

Their summary figures are asserted equal, path by path (NaN equal to NaN); then each
is timed `--repeats` times, alternating, and the medians (seconds per call of all
paths) and their ratio are printed (and the median of the ratios of the calls made one
after the other, which a shared machine's changing load disturbs less), with what it
costs to have the datacollector:

- per path built: constructing the DataCollector (timeit of the same constructor);
- per path collected (what batch_run pays, and any read of ``model.datacollector``):
  the median of one ``model.collect()`` on each finished path.

Wall-clock times from time.perf_counter (and this process's CPU time from
time.process_time, which a shared machine's load disturbs less); the machine is named
as the suite names it (``run.machine_info``). Run:
``.venv/bin/python benchmarks/bench_batch_run.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import median
from run import machine_info, package_info

CONSTRUCTIONS = 2_000  # DataCollector constructions timed per repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="default", help="bundled scenario (default)")
    parser.add_argument("--paths", type=int, default=8, help="paths per call (8)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each (7)")
    parser.add_argument("--seed", type=int, default=1, help="root seed (1)")
    parser.add_argument("--traders", type=int, help="traders.count (the scenario's)")
    parser.add_argument("--steps", type=int, help="run.steps (the scenario's)")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    report = measure(args.scenario, args.paths, args.repeats, args.seed, args.traders,
                     args.steps)
    print_report(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"written to {args.out}")
    return 0


def measure(scenario: str, paths: int, repeats: int, seed: int, traders: int | None = None,
            steps: int | None = None) -> dict[str, Any]:
    import mesa

    from perpabm import PerpMarketModel, load_scenario, run_paths
    from perpabm.model import SUMMARY_FIGURES
    from perpabm.runner import path_seed

    config = load_scenario(scenario)
    if traders is not None:
        config = config.replace("traders.count", traders)
    if steps is not None:
        config = config.replace("run.steps", steps)
    seeds = [path_seed(seed, k) for k in range(paths)]

    def by_batch_run() -> np.ndarray:
        rows = mesa.batch_run(PerpMarketModel, parameters={"config": config}, rng=seeds,
                              max_steps=config.run.steps, number_processes=1,
                              display_progress=False)
        rows = sorted(rows, key=lambda row: row["iteration"])
        return np.array([[row[name] for name in SUMMARY_FIGURES] for row in rows])

    def by_run_paths() -> np.ndarray:
        results = run_paths(config, paths, seed, n_jobs=1)
        return results.paths.sort_values("path")[list(SUMMARY_FIGURES)].to_numpy()

    PerpMarketModel(config.replace("run.steps", min(config.run.steps, 20)), rng=0).run()
    np.testing.assert_array_equal(by_batch_run(), by_run_paths(),
                                  err_msg="batch_run and run_paths disagree")
    times: dict[str, list[float]] = {"batch_run": [], "run_paths": []}
    cpu: dict[str, list[float]] = {"batch_run": [], "run_paths": []}
    for _ in range(repeats):  # alternating, so that both see the same load
        for name, fn in (("batch_run", by_batch_run), ("run_paths", by_run_paths)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    collects = []
    for rng in seeds:
        model = PerpMarketModel(config, rng=rng).run()
        start = time.perf_counter()
        model.collect()
        collects.append(time.perf_counter() - start)
    reporters = {name: [model.summary, []] for name in SUMMARY_FIGURES}
    constructions = [t / CONSTRUCTIONS for t in timeit.repeat(
        lambda: mesa.DataCollector(model_reporters=reporters), number=CONSTRUCTIONS,
        repeat=repeats)]
    medians = {name: median(values) for name, values in times.items()}
    paired = [b / r for b, r in zip(times["batch_run"], times["run_paths"], strict=True)]
    return {
        "benchmark": "mesa.batch_run vs perpabm.runner.run_paths",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "package": package_info(), "machine": machine_info(),
        "scenario": scenario, "traders": config.traders.count, "steps": config.run.steps,
        "paths": paths, "repeats": repeats, "seed": seed,
        "summaries_equal": True, "seconds": times, "median_seconds": medians,
        "ratio_batch_run_over_run_paths": medians["batch_run"] / medians["run_paths"],
        "paired_ratios": paired, "median_paired_ratio": median(paired),
        "cpu_seconds": cpu, "median_cpu_seconds": {name: median(v) for name, v in cpu.items()},
        "path_seconds": medians["run_paths"] / paths,
        "datacollector_construction_seconds": median(constructions),
        "datacollector_collect_seconds": median(collects),
    }


def print_report(report: dict[str, Any]) -> None:
    machine = report["machine"]
    package = report["package"]
    path = report["path_seconds"]
    build = report["datacollector_construction_seconds"]
    collect = report["datacollector_collect_seconds"]
    print(f"perpabm {package['version']} from {package['path']} "
          f"(commit {str(package['commit'])[:10]}"
          f"{', perpabm/ modified' if package['perpabm_modified'] else ''})")
    print(f"machine: {machine['system']} {machine['machine']}, {machine['cpu_count']} cores, "
          f"Python {machine['python']}, mesa {machine['mesa']}, numpy {machine['numpy']}")
    print(f"{report['scenario']} scenario, {report['traders']:,} traders, "
          f"{report['steps']:,} steps; {report['paths']} paths per call, one process; "
          f"median of {report['repeats']} calls each, alternating")
    print("summary figures: identical path by path")
    for name in ("batch_run", "run_paths"):
        seconds, cpu = report["median_seconds"][name], report["median_cpu_seconds"][name]
        print(f"  {name:10s} {seconds:8.3f} s  ({1e3 * seconds / report['paths']:.1f} ms/path; "
              f"CPU {cpu:.3f} s)")
    print(f"  batch_run / run_paths = {report['ratio_batch_run_over_run_paths']:.3f} "
          f"(ratio of the medians); {report['median_paired_ratio']:.3f} (median of the "
          f"ratios of the calls made one after the other)")
    print(f"datacollector, per path: built {1e6 * build:.1f} µs ({100 * build / path:.3f}% "
          f"of a path), collected when read {1e3 * collect:.2f} ms "
          f"({100 * collect / path:.2f}% of a path)")


if __name__ == "__main__":
    raise SystemExit(main())

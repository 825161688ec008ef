"""Throughput: paths per minute of the default scenario on one core and on all cores.

Timed: wall-clock seconds (time.perf_counter) of one call of
``perpabm.run_paths(config, n_paths, seed, n_jobs=…)`` with its defaults
otherwise (loky processes, one path per task, results gathered in memory) —
``n_jobs=1`` (sequential, in this process) and ``n_jobs=-1`` (a loky worker per
core). The path count is chosen so that the sequential call takes about
``throughput_seconds`` (from this run's default-path time), which amortises
the workers' start-up. The two calls alternate, ``throughput_repeats`` times;
figures are medians. loky keeps its workers between calls, so only the first
parallel call starts them.

Derived: paths/minute = 60 · n_paths / seconds; speedup = sequential seconds /
parallel seconds; parallel efficiency = speedup / cores (joblib.cpu_count()).
The goal of 1,000 paths a minute on all cores is stated beside the reference
machine's figure (2 cores), not passed or failed: it depends on the machine.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench_model import scenario_path_seconds
from common import Row, Settings, goal, median, scenario_config

PATHS_PER_MINUTE_GOAL = 1_000.0  # on all cores; met on the reference machine (2 cores)


def path_count(seconds: float, bounds: tuple[int, int], path_seconds: float) -> int:
    """Paths for one timed call: about `seconds` of sequential work at `path_seconds` a
    path, within `bounds` (low, high)."""
    low, high = bounds
    wanted = math.ceil(seconds / max(path_seconds, 1e-9))
    return int(min(max(wanted, low), high))


def time_run_paths(config: Any, n_paths: int, seed: int, n_jobs: int) -> float:
    """Seconds of one ``run_paths`` call of `n_paths` paths on `n_jobs` workers."""
    from perpabm import run_paths

    start = time.perf_counter()
    results = run_paths(config, n_paths, seed, n_jobs=n_jobs)
    seconds = time.perf_counter() - start
    if len(results.paths) != n_paths:
        raise RuntimeError(f"run_paths returned {len(results.paths)} of {n_paths} paths")
    return seconds


def _package_file() -> str:
    import perpabm

    return perpabm.__file__


def check_workers_package(cores: int, n_jobs: int = -1) -> None:
    """Raise unless the loky workers (`n_jobs` of them, `cores` with -1) import the same
    perpabm as this process."""
    from joblib import Parallel, delayed

    import perpabm

    files = set(Parallel(n_jobs=n_jobs)(delayed(_package_file)() for _ in range(2 * cores)))
    if files != {perpabm.__file__}:
        raise RuntimeError(f"loky workers import perpabm from {sorted(files)}, this process "
                           f"from {perpabm.__file__}")


def throughput(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """Paths per minute with n_jobs=1 and n_jobs=-1, speedup and parallel efficiency."""
    from joblib import cpu_count

    cores = cpu_count()
    config = scenario_config(settings)
    n_paths = path_count(settings.throughput_seconds, settings.throughput_paths,
                         scenario_path_seconds(settings, ctx))
    sequential, parallel = [], []
    for r in range(settings.throughput_repeats):
        seed = settings.seed + 1000 * r
        sequential.append(time_run_paths(config, n_paths, seed, 1))
        parallel.append(time_run_paths(config, n_paths, seed, -1))
        print(f"  .. {n_paths} paths: n_jobs=1 {sequential[-1]:.1f} s, "
              f"n_jobs=-1 {parallel[-1]:.1f} s", flush=True)
    check_workers_package(cores)
    seq_s, par_s = median(sequential), median(parallel)
    seq_rate, par_rate = 60.0 * n_paths / seq_s, 60.0 * n_paths / par_s
    speedup = seq_s / par_s
    ctx["throughput"] = {"paths_per_minute": par_rate, "speedup": speedup, "workers": cores,
                         "n_paths": n_paths, "repeats": settings.throughput_repeats}
    what = (f"run_paths of {n_paths} {settings.scenario}-scenario paths, loky, one path per "
            f"task, in memory; 60 · paths / wall seconds")
    runs = settings.throughput_repeats
    return [
        Row("throughput", "n_jobs=1", seq_rate, "paths/min", what + ", sequential", runs,
            details={"seconds": sequential, "n_paths": n_paths}),
        Row("throughput", f"n_jobs=-1 ({cores} cores)", par_rate, "paths/min",
            what + f", {cores} workers", runs,
            details={"seconds": parallel, "n_paths": n_paths, "cores": cores},
            goal=goal("≥", PATHS_PER_MINUTE_GOAL)),
        Row("throughput", "speedup", speedup, "×", "n_jobs=1 seconds / n_jobs=-1 seconds"),
        Row("throughput", "parallel efficiency", speedup / cores, "ratio",
            f"speedup / cores ({cores}); 1 is perfect scaling"),
    ]

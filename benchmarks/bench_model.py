"""Model benchmarks: one path of the default scenario, its scaling, and its peak memory.

- **default_path** — wall-clock seconds (time.perf_counter) of
  ``perpabm.runner.run_path`` on the default scenario (1,000 traders, 1,440
  one-minute steps): model construction, every step, the summary row and the
  event table — what one path of a Monte Carlo run costs. In this process, one
  core; median of several runs with different seeds, after one short warm-up path.
  Its goal of 0.1 s a path is stated beside the reference machine's figure, not
  passed or failed: the ratios section holds the path against the floor instead.
- **scaling** — the same path with 1,000 / 10,000 / 100,000 traders (one day), and
  with 1 / 10 / 30 days (1,000 traders); each run in a fresh interpreter
  (``path_child.py``), after a first short path there (as the default path is timed
  after one), so that every case also gives its peak memory. The base
  case is the median of several runs; the larger cases run once (said in the row).
- **memory** — from the same child processes: the resident set size of the
  interpreter with perpabm imported (``VmRSS`` of /proc/self/status, read in the
  child), then after a first short path has loaded the compiled kernels, and the
  peak during the path (``VmHWM``, reset to that baseline just before the path);
  the difference is the path's own share, held against the target at 100,000
  traders. ``path_child.py`` says why this is read in the child rather than from
  ``getrusage(RUSAGE_CHILDREN).ru_maxrss``. Also the seconds of ``import
  perpabm`` and of that first short path in a fresh interpreter (what each loky
  worker pays once).
"""

from __future__ import annotations

import time
from typing import Any

from common import Row, Settings, check, goal, median, run_child

STEPS_PER_DAY = 1_440  # one-minute steps
PATH_GOAL_SECONDS = 0.1  # a default path's goal, met on the reference machine


def time_path(traders: int, steps: int, seed: int, scenario: str = "default") -> float:
    """Seconds of ``run_path`` (construction, steps, summary and events) for one path."""
    from perpabm import load_scenario
    from perpabm.runner import run_path

    config = load_scenario(scenario).replace("traders.count", traders)
    config = config.replace("run.steps", steps)
    start = time.perf_counter()
    run_path(config, seed, 0)
    return time.perf_counter() - start


def default_path(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """One path of the default scenario, median of ``settings.path_repeats`` runs, one core."""
    time_path(settings.traders, min(settings.steps, 20), settings.seed, settings.scenario)
    times = [time_path(settings.traders, settings.steps, settings.seed + k, settings.scenario)
             for k in range(settings.path_repeats)]
    seconds = median(times)
    ctx["path_seconds"] = seconds
    what = (f"run_path of the {settings.scenario} scenario ({settings.traders:,} traders, "
            f"{settings.steps:,} steps): construction, steps, summary, events; in-process, "
            f"one core")
    return [
        Row("default_path", "one path", seconds, "s/path", what, len(times),
            details={"seconds": times, "traders": settings.traders, "steps": settings.steps},
            goal=goal("≤", PATH_GOAL_SECONDS)),
        Row("default_path", "per step", 1e3 * seconds / settings.steps, "ms/step",
            "the same median divided by the steps", len(times)),
    ]


def _children(settings: Settings, ctx: dict[str, Any]) -> dict[tuple[int, int], list[dict]]:
    """Child-process runs of every scaling case, keyed by (traders, steps); cached in ctx."""
    if "children" in ctx:
        return ctx["children"]
    base = (settings.traders, settings.steps)
    cases = [(n, settings.steps) for n in settings.scaling_traders]
    cases += [(settings.traders, settings.steps * d) for d in settings.scaling_days]
    runs: dict[tuple[int, int], list[dict]] = {}
    for case in dict.fromkeys([base, *cases]):
        repeats = settings.scaling_repeats if case == base else 1
        runs[case] = [run_child(settings, case[0], case[1], settings.seed + k)
                      for k in range(repeats)]
        seconds = median([r["seconds"] for r in runs[case]])
        print(f"  .. {case[0]:,} traders, {case[1]:,} steps: {seconds:.2f} s "
              f"({repeats} run{'s' if repeats > 1 else ''})", flush=True)
    ctx["children"] = runs
    return runs


def scaling(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """Seconds per path against traders and days, each run in a fresh interpreter."""
    runs = _children(settings, ctx)
    base = (settings.traders, settings.steps)
    base_s = median([r["seconds"] for r in runs[base]])
    ctx["scaling_seconds"] = {case: median([r["seconds"] for r in rs])
                              for case, rs in runs.items()}
    rows = []
    for n in settings.scaling_traders:
        case = (n, settings.steps)
        s = ctx["scaling_seconds"][case]
        single = "" if len(runs[case]) > 1 else "; one run"
        rows.append(Row("scaling", f"{n:,} traders", s, "s/path",
                        f"run_path, {n:,} traders, {settings.steps:,} steps, fresh "
                        f"interpreter{single}", len(runs[case]),
                        details={"seconds": [r["seconds"] for r in runs[case]],
                                 "traders": n, "steps": settings.steps}))
    for n in settings.scaling_traders:
        if n == settings.traders:
            continue
        ratio = ctx["scaling_seconds"][(n, settings.steps)] / base_s
        target = passed = None
        if n == max(settings.scaling_traders):
            target, passed = check(ratio, "≤", 20.0, settings)
        rows.append(Row("scaling", f"{n:,} / {settings.traders:,} traders", ratio, "ratio",
                        "time per path relative to the base case (same run of the suite)",
                        None, target, passed))
    for d in settings.scaling_days:
        case = (settings.traders, settings.steps * d)
        s = ctx["scaling_seconds"][case]
        days = case[1] / STEPS_PER_DAY
        single = "" if len(runs[case]) > 1 else "; one run"
        rows.append(Row("scaling", f"{days:.3g} day{'s' if days != 1 else ''}", s, "s/path",
                        f"run_path, {settings.traders:,} traders, {case[1]:,} steps, fresh "
                        f"interpreter{single}", len(runs[case]),
                        details={"seconds": [r["seconds"] for r in runs[case]],
                                 "traders": settings.traders, "steps": case[1]}))
    for d in settings.scaling_days:
        if d == 1:
            continue
        ratio = ctx["scaling_seconds"][(settings.traders, settings.steps * d)] / base_s
        days = settings.steps * d / STEPS_PER_DAY
        rows.append(Row("scaling", f"{days:.3g} / {days / d:.3g} days", ratio, "ratio",
                        f"time per path relative to the base case ({d} would be linear)"))
    return rows


def memory(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """Peak RSS of the interpreter with imports, and each path's own share, in MB."""
    runs = _children(settings, ctx)
    base = (settings.traders, settings.steps)
    mb = 1024.0  # ru_maxrss is KiB on Linux; MB here are MiB
    source = runs[base][0]["source"]
    rss = "VmRSS" if source == "VmHWM" else "ru_maxrss"
    rows = [Row("memory", "interpreter + imports",
                median([r["import_kib"] / mb for r in runs[base]]), "MB",
                f"RSS of a fresh interpreter after importing perpabm and loading the config "
                f"({rss}, read in the child)",
                len(runs[base]), details={"import_peak_mb": median(
                    [r["import_peak_kib"] / mb for r in runs[base]]), "source": source}),
            Row("memory", "import perpabm", median([r["import_seconds"] for r in runs[base]]),
                "s", "wall seconds of import perpabm + perpabm.runner in a fresh interpreter "
                "(each loky worker pays it once)", len(runs[base])),
            Row("memory", "first short path", median([r["warmup_seconds"] for r in runs[base]]),
                "s", "wall seconds of a first path of 100 traders and 20 steps in a fresh "
                "interpreter: it loads the compiled kernels from their cache (each loky "
                "worker pays it once)", len(runs[base])),
            Row("memory", "interpreter + kernels", median(
                [r["baseline_kib"] / mb for r in runs[base]]), "MB",
                f"RSS after that first short path: the baseline of each path's share ({rss})",
                len(runs[base]))]
    largest = max(settings.scaling_traders)
    for n in settings.scaling_traders:
        rs = runs[(n, settings.steps)]
        peak = median([r["peak_kib"] / mb for r in rs])
        share = median([(r["peak_kib"] - r["baseline_kib"]) / mb for r in rs])
        target = passed = None
        if n == largest:
            target, passed = check(share, "≤", 200.0, settings)
        rows.append(Row("memory", f"path, {n:,} traders", share, "MB",
                        f"the path's own share: peak RSS during run_path ({peak:,.0f} MB) "
                        f"minus the interpreter + kernels; {settings.steps:,} steps",
                        len(rs), target, passed, {"peak_mb": peak}))
    longest = max(settings.scaling_days)
    rs = runs[(settings.traders, settings.steps * longest)]
    share = median([(r["peak_kib"] - r["baseline_kib"]) / mb for r in rs])
    days = settings.steps * longest / STEPS_PER_DAY
    rows.append(Row("memory", f"path, {days:.3g} days", share, "MB",
                    f"the same, {settings.traders:,} traders, {settings.steps * longest:,} steps",
                    len(rs), details={"peak_mb": median([r["peak_kib"] / mb for r in rs])}))
    return rows


def scenario_path_seconds(settings: Settings, ctx: dict[str, Any]) -> float:
    """The default path's median seconds from this run, measured now if not yet known."""
    if "path_seconds" not in ctx:
        default_path(settings, ctx)
    return ctx["path_seconds"]

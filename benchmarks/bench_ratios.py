"""Ratios: the figures of one run that carry over from one machine to another.

Absolute times depend on the machine: idle 2-core machines of the same kind
differ by up to 4× in speed. A ratio of two figures measured in the same run —
on the same machine, under the same load — carries over, so the table and the
JSON lead with these:

- **model / floor** — the default path's seconds (``default_path``: ``run_path``,
  median of ``path_repeats`` runs) over the floor's seconds for the same path
  size (``bench_floor.floor_path``: the step's vector work in bare numpy, median
  of ``floor_repeats`` runs): how far the model is from numpy doing only the
  step's arithmetic. Target ≤ 1 (:data:`FLOOR_TARGET`).
- **model / Mesa's bare clock** — the default path's seconds over the seconds of
  a plain ``mesa.Model`` whose step does nothing (:class:`BareClock`), built and
  run for the same steps with ``run_for`` (as the model runs), median of
  ``clock_repeats`` runs: how many times Mesa's own clock the path costs.
- **Mesa's clock in the path's steps** — the share of the model's ``run()`` that
  Mesa's clock costs inside the model, in %. Each of ``clock_repeats`` pairs
  builds the default model twice with one seed (untimed) and runs it once with
  ``run()`` and once by calling the model's tick once a step directly
  (which of the two goes first alternates; both give the same summary, which
  is checked); the share is (run − direct) / run, median over the pairs.
- **2 workers / 1** — the speedup of ``run_paths`` with 2 loky workers over 1:
  seconds with ``n_jobs=1`` / seconds with ``n_jobs=2``.
- **venue population / traders only**, for the benchmark's scenario and for
  ``oct10_2025`` (each at the benchmark's traders and steps) — what the bundled
  scenarios' population of 100 funds, 5 basis traders and hedged makers costs: a path
  of the scenario as bundled over the same path with :data:`TRADERS_ONLY` (levered
  traders, unhedged makers, the arbitrageur and the vault), same seed, ``clock_repeats``
  alternated pairs, median of the pairs' ratios; both seconds are in the row's
  details;
- **warm start / cold start** — what a warm start costs: the same with
  :data:`WARM_START` (the traders' book built over 14 days of history) over the
  benchmark's scenario as bundled.
- **oct10_2025: adaptive clock / 60-second ticks** and **adaptive clock / 1-second
  ticks** — what the adaptive clock (:data:`ADAPTIVE_CLOCK`: minutes in calm, seconds
  under stress) costs on the crash scenario against its fixed clocks, the same way.
  Targets: at most :data:`ADAPTIVE_OVER_MINUTE_TARGET` times the one-minute path and at
  most :data:`ADAPTIVE_OVER_SECOND_TARGET` of the one-second path.

Where the figures come from: a figure another section measured in the same
invocation is used as it is, not measured again — the default path's seconds,
the floor's (when the floor section ran), and the throughput section's speedup
when its workers are 2 (``joblib.cpu_count()`` is 2; on other machines that
speedup is over all cores, not 2). Otherwise this section measures the figure
itself at the suite's settings: ``--only ratios`` runs the default path, the
floor at the default size, and a smaller run of 2 workers against 1 (paths for
about ``workers_seconds`` of sequential work, after the two workers have started
and imported perpabm, ``workers_repeats`` alternated pairs of calls; medians).
Each row's details say where its figures come from. Mesa's clock is measured
here only. On a machine with one core, 2 workers / 1 is not measured (a warning
says so).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import mesa
from bench_floor import time_floor
from bench_model import scenario_path_seconds
from bench_throughput import check_workers_package, path_count, time_run_paths
from common import Row, Settings, check, median, scenario_config

FLOOR_TARGET = 1.0
"""model / floor at most 1: the default path's goal of 0.1 s as a ratio — the floor
took 0.105 s on the machine where that goal was met."""

WORKERS = 2
"""The workers of the parallel ratio: 2 against 1, on any machine with 2 cores or more."""

ONLY_TRADERS = {"funds.count": 0, "basis.count": 0, "makers.hedged": False,
                "makers.adl_response": "none"}
TRADERS_ONLY = {
    "default": {**ONLY_TRADERS, "traders.leverage_median": 5.0, "traders.leverage_sigma": 0.8},
    "oct10_2025": {**ONLY_TRADERS, "traders.leverage_median": 10.0,
                   "traders.leverage_sigma": 0.9},
}
"""Per scenario, its population without funds, basis traders or hedged makers: traders
(at 5x, spread 0.8, the config's defaults, in ``default``; at 10x, spread 0.9, in
``oct10_2025``), makers that hold their inventory unhedged, the arbitrageur and the
vault — what the "venue population / traders only" ratios set the scenario against."""

ADAPTIVE_CLOCK = {"run.clock": "adaptive", "run.step_seconds": 60.0,
                  "run.fine_step_seconds": 1.0}
"""The adaptive clock the clock ratios time: ticks of a minute in calm, of a second under
stress."""
CLOCK_SCENARIO = "oct10_2025"
ADAPTIVE_OVER_MINUTE_TARGET = 3.0
"""An adaptive oct10 path costs at most 3× the same path on one-minute ticks."""
ADAPTIVE_OVER_SECOND_TARGET = 0.2
"""… and at most a fifth of the same path on one-second ticks."""

POPULATION_SCENARIOS = ("oct10_2025",)
"""Scenarios besides the benchmark's own whose venue population is timed against
traders only."""


class BareClock(mesa.Model):
    """A Mesa model whose step does nothing: Mesa's clock alone."""

    def step(self) -> None:
        pass


def time_bare_clock(steps: int, seed: int) -> float:
    """Seconds to build a :class:`BareClock` and run it for `steps` steps."""
    start = time.perf_counter()
    model = BareClock(rng=seed)
    model.run_for(steps)
    seconds = time.perf_counter() - start
    if model.steps != steps:
        raise RuntimeError(f"the bare clock ran {model.steps} steps, not {steps}")
    return seconds


def time_model_steps(config: Any, seed: int, direct: bool) -> tuple[float, str]:
    """Seconds of one model's steps — through Mesa's clock (``run()``, each tick an event
    on Mesa's event list) or, with `direct`, its tick called once a tick (the fixed clock)
    — and its summary (as text, to compare the two)."""
    from perpabm.model import PerpMarketModel

    model = PerpMarketModel(config, rng=seed)
    tick = type(model).tick
    start = time.perf_counter()
    if direct:
        for _ in range(model.clock.end):
            tick(model)
    else:
        model.run()
    seconds = time.perf_counter() - start
    return seconds, repr(sorted(model.summary().items()))


def clock_share(settings: Settings) -> tuple[float, dict[str, Any]]:
    """Mesa's clock's share of the model's steps (%), from paired runs (see module doc)."""
    config = scenario_config(settings)
    through_clock, direct, shares = [], [], []
    for k in range(settings.clock_repeats):
        seed = settings.seed + k
        order = (False, True) if k % 2 == 0 else (True, False)
        timed = {flag: time_model_steps(config, seed, flag) for flag in order}
        if timed[False][1] != timed[True][1]:
            raise RuntimeError(f"seed {seed}: the model's steps called directly gave another "
                               f"path than run()")
        through_clock.append(timed[False][0])
        direct.append(timed[True][0])
        shares.append(100.0 * (timed[False][0] - timed[True][0]) / timed[False][0])
    return median(shares), {"shares_percent": shares, "run_seconds": through_clock,
                            "direct_seconds": direct}


def workers_speedup(settings: Settings, ctx: dict[str, Any],
                    path_seconds: float) -> tuple[float, dict[str, Any]] | None:
    """Seconds on 1 worker / seconds on 2: the throughput section's figure if its workers
    were 2, else measured here; None (with a warning) on a machine with one core."""
    from joblib import cpu_count

    done = ctx.get("throughput")
    if done is not None and done["workers"] == WORKERS:
        return done["speedup"], {"from": "throughput section", "n_paths": done["n_paths"],
                                 "repeats": done["repeats"]}
    if cpu_count() < WORKERS:
        warnings.warn(f"ratios: 2 workers / 1 is not measured: joblib sees {cpu_count()} "
                      f"core(s)", stacklevel=2)
        return None
    config = scenario_config(settings)
    n_paths = path_count(settings.workers_seconds, settings.workers_paths, path_seconds)
    time_run_paths(config, 2 * WORKERS, settings.seed, WORKERS)  # start the workers, untimed
    check_workers_package(WORKERS, n_jobs=WORKERS)
    one, two = [], []
    for r in range(settings.workers_repeats):
        seed = settings.seed + 1000 * r
        one.append(time_run_paths(config, n_paths, seed, 1))
        two.append(time_run_paths(config, n_paths, seed, WORKERS))
        print(f"  .. {n_paths} paths: n_jobs=1 {one[-1]:.1f} s, n_jobs={WORKERS} "
              f"{two[-1]:.1f} s", flush=True)
    return median(one) / median(two), {
        "from": "measured in this section", "n_paths": n_paths,
        "repeats": settings.workers_repeats, "seconds_1": one, f"seconds_{WORKERS}": two}


def time_run_path(config: Any, seed: int) -> float:
    """Seconds of ``run_path`` (construction, steps, summary, events) for one path."""
    from perpabm.runner import run_path

    start = time.perf_counter()
    run_path(config, seed, 0)
    return time.perf_counter() - start


WARM_START = {"traders.warm_start_days": 14.0}
"""A warm start as ``oct10_2025_history``'s traders have it: a book built over 14 days."""


def added_cost_ratio(settings: Settings, added: dict[str, Any],
                     removed: dict[str, Any] | None = None,
                     scenario: str | None = None) -> tuple[float, dict[str, Any]]:
    """The median over ``clock_repeats`` alternated pairs of (seconds of a path with the
    settings `added`) / (seconds of the same path with `removed` instead; as bundled
    when None), on `scenario` (the benchmark's when None) at the benchmark's size."""
    base = scenario_config(settings if scenario is None
                           else dataclasses.replace(settings, scenario=scenario))
    plain = base.with_settings(removed or {})
    every = base.with_settings(added)
    time_run_path(every.replace("run.steps", min(settings.steps, 20)), settings.seed)  # warm
    ratios, seconds = [], []
    for k in range(settings.clock_repeats):
        seed = settings.seed + k
        pair = ((plain, every) if k % 2 == 0 else (every, plain))
        timed = {id(config): time_run_path(config, seed) for config in pair}
        ratios.append(timed[id(every)] / timed[id(plain)])
        seconds.append((timed[id(plain)], timed[id(every)]))
    return median(ratios), {"ratios": ratios, "seconds_without_with": seconds,
                            "added": added, "removed": removed or {}}


def ratios(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """model / floor, model / Mesa's bare clock, Mesa's clock's share, 2 workers / 1."""
    path_s = scenario_path_seconds(settings, ctx)
    steps, traders = settings.steps, settings.traders
    label = f"{traders:,} traders, {steps:,} steps"

    floor_s = ctx.get("floor_seconds", {}).get(traders)
    floor_from = "floor section"
    if floor_s is None:
        floor_s = median(time_floor(scenario_config(settings), settings.seed,
                                    settings.floor_repeats))
        floor_from = "measured in this section"
    target, passed = check(path_s / floor_s, "≤", FLOOR_TARGET, settings)
    rows = [Row("ratios", f"model / floor, {label}", path_s / floor_s, "ratio",
                "the default path's s/path / the floor's (bench_floor: the step's vector "
                "work in bare numpy), both from this run", None, target, passed,
                {"model_seconds": path_s, "floor_seconds": floor_s,
                 "floor_from": floor_from})]

    bare = [time_bare_clock(steps, settings.seed + k) for k in range(settings.clock_repeats)]
    bare_s = median(bare)
    rows.append(Row("ratios", "model / Mesa's bare clock", path_s / bare_s, "ratio",
                    f"the default path's s/path / a mesa.Model whose step does nothing, "
                    f"built and run_for({steps:,}) (median of {len(bare)})", None,
                    details={"model_seconds": path_s, "clock_seconds": bare}))

    share, details = clock_share(settings)
    rows.append(Row("ratios", "Mesa's clock in the path's steps", share, "%",
                    f"(run() − the model's tick called {steps:,} times directly) / run(), "
                    f"same seed, {traders:,} traders; median over pairs", len(details[
                        "shares_percent"]), details=details))
    print(f"  .. model / floor {path_s / floor_s:.2f}; model / Mesa's bare clock "
          f"{path_s / bare_s:.1f}; Mesa's clock {share:.1f}% of the steps", flush=True)

    cases = [(f"{name}: venue population / traders only", {},
              TRADERS_ONLY.get(name, ONLY_TRADERS), name)
             for name in (settings.scenario, *POPULATION_SCENARIOS)]
    cases.append(("warm start / cold start", WARM_START, None, None))
    for case, added, removed, scenario in cases:
        value, details = added_cost_ratio(settings, added, removed, scenario)
        changed = added or removed
        what = ", ".join(f"{k} = {v}" for k, v in changed.items())
        what = (f"a path of {scenario} as bundled / the same path with {what}" if removed
                else f"a path with {what} / the same path without")
        rows.append(Row("ratios", case, value, "ratio",
                        f"{what}, same seed; median over alternated pairs",
                        len(details["ratios"]), details=details))
        print(f"  .. {case} {value:.2f}", flush=True)

    clock_cases = (
        ("adaptive clock / 60-second ticks", {"run.step_seconds": 60.0},
         ADAPTIVE_OVER_MINUTE_TARGET),
        ("adaptive clock / 1-second ticks", {"run.step_seconds": 1.0},
         ADAPTIVE_OVER_SECOND_TARGET),
    )
    for case, fixed, goal in clock_cases:
        value, details = added_cost_ratio(settings, ADAPTIVE_CLOCK, fixed, CLOCK_SCENARIO)
        target, passed = check(value, "≤", goal, settings)
        rows.append(Row("ratios", f"{CLOCK_SCENARIO}: {case}", value, "ratio",
                        f"a path of {CLOCK_SCENARIO} on the adaptive clock (60 s, 1 s under "
                        f"stress) / the same path on fixed ticks "
                        f"({fixed['run.step_seconds']:g} s), same seed; median over "
                        f"alternated pairs", len(details["ratios"]), target, passed,
                        details))
        print(f"  .. {CLOCK_SCENARIO}: {case} {value:.2f}", flush=True)

    speedup = workers_speedup(settings, ctx, path_s)
    if speedup is not None:
        value, details = speedup
        rows.append(Row("ratios", f"{WORKERS} workers / 1", value, "×",
                        f"run_paths seconds with n_jobs=1 / with n_jobs={WORKERS} "
                        f"({details['n_paths']} {settings.scenario}-scenario paths; "
                        f"{details['from']})", None, details=details))
    return rows

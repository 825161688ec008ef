"""Shared pieces of the benchmark suite: result rows, settings, timing and child processes.

Every figure is a :class:`Row`: a value with its unit, what was timed or measured,
how many runs the median is over, and the target it is held against (if any).
Timings are wall-clock seconds from :func:`time.perf_counter`, medians over the
runs; ratios are computed from figures of the same run of the suite.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SECTIONS = ("ratios", "default_path", "scaling", "throughput", "engine", "memory", "storage",
            "floor")
"""Every section of the suite, in the order it prints (the table and the JSON lead with the
ratios, the figures that carry over from one machine to another)."""

RUN_ORDER = (*SECTIONS[1:], "ratios")
"""The order the sections run in: the ratios last, so that they can use the figures the
other sections measured in the same run instead of measuring them again."""

HERE = Path(__file__).resolve().parent
PATH_CHILD = HERE / "path_child.py"


@dataclass
class Row:
    """One figure of the suite.

    ``value`` is in ``unit``; ``what`` says what is timed or measured; ``runs`` is
    the number of runs the median is over (None for a figure derived from others);
    ``target`` is a target that holds on any machine (a ratio of two figures of
    this run, or megabytes) as text (e.g. ``"≤ 20"``) and ``passed`` whether the
    value meets it (None where there is no target, or in quick mode, whose sizes
    are not the target's). ``goal`` is an absolute time or rate met on the
    reference machine (e.g. ``"≤ 0.1"``): it depends on the machine, so it is
    stated beside the reference machine's figure (``reference``, filled in by
    ``run.py`` where the reference report has the same figure at the same sizes)
    and never passed or failed.
    """

    section: str
    case: str
    value: float
    unit: str
    what: str
    runs: int | None = None
    target: str | None = None
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    goal: str | None = None
    reference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Settings:
    """Sizes and repeats of one run of the suite (full, or ``--quick``)."""

    quick: bool = False
    seed: int = 1
    scenario: str = "default"
    traders: int = 1_000          # the default scenario's traders
    steps: int = 1_440            # the default scenario's steps (one day of minutes)
    path_repeats: int = 5         # default path, in-process runs
    scaling_traders: tuple[int, ...] = (1_000, 10_000, 100_000)
    scaling_days: tuple[int, ...] = (1, 10, 30)
    scaling_repeats: int = 3      # runs of the base case; larger cases run once
    throughput_seconds: float = 20.0  # sequential wall time the path count aims at
    throughput_paths: tuple[int, int] = (16, 2_000)  # bounds on the path count
    throughput_repeats: int = 3
    engine_accounts: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    engine_calls: int = 200
    engine_repeats: int = 7
    book_orders: int = 10_000
    adl_candidates: int = 100_000
    engine_case_repeats: int = 5
    storage_paths: int = 10_000
    storage_sample: int = 200
    storage_repeats: int = 3
    floor_repeats: int = 5
    clock_repeats: int = 7        # Mesa's clock: bare-clock runs, and paired paths
    workers_seconds: float = 5.0  # 2 workers / 1 when measured in the ratios section
    workers_paths: tuple[int, int] = (8, 500)
    workers_repeats: int = 2

    @classmethod
    def for_quick(cls, seed: int = 1) -> Settings:
        """Tiny sizes and few repeats: a smoke test of the suite, not a measurement."""
        return cls(quick=True, seed=seed, traders=100, steps=60, path_repeats=2,
                   scaling_traders=(100, 300), scaling_days=(1, 2), scaling_repeats=1,
                   throughput_seconds=0.0, throughput_paths=(4, 4), throughput_repeats=1,
                   engine_accounts=(1_000, 10_000), engine_calls=20, engine_repeats=3,
                   book_orders=500, adl_candidates=2_000, engine_case_repeats=2,
                   storage_paths=40, storage_sample=8, storage_repeats=2, floor_repeats=2,
                   clock_repeats=2, workers_seconds=0.0, workers_paths=(4, 4),
                   workers_repeats=1)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def evaluate(self) -> bool:
        """Whether rows are held against the targets (only at the targets' sizes)."""
        return not self.quick


def goal(op: str, limit: float) -> str:
    """The text of an absolute goal ``op limit`` (e.g. ``"≤ 0.1"``): stated, never checked."""
    return f"{op} {limit:,g}"


def check(value: float, op: str, limit: float, settings: Settings) -> tuple[str, bool | None]:
    """The target text for ``value op limit`` and whether it passes (None in quick mode).

    Only for figures that do not depend on the machine's speed: ratios of figures
    of the same run, and megabytes. Seconds and rates get a :func:`goal`.
    """
    text = goal(op, limit)
    if not settings.evaluate:
        return text, None
    passed = {"≤": value <= limit, "<": value < limit, "≥": value >= limit}[op]
    return text, bool(passed)


def repeat_timed(fn: Callable[[], Any], repeats: int,
                 setup: Callable[[], Any] | None = None) -> list[float]:
    """Seconds of each of `repeats` calls of ``fn(setup())`` (or ``fn()``); setup untimed."""
    times = []
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        start = time.perf_counter()
        fn(arg) if setup is not None else fn()
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def scenario_config(settings: Settings, traders: int | None = None, steps: int | None = None):
    """The benchmark's scenario with `traders` traders and `steps` steps."""
    from perpabm import load_scenario

    config = load_scenario(settings.scenario)
    config = config.replace("traders.count", settings.traders if traders is None else traders)
    return config.replace("run.steps", settings.steps if steps is None else steps)


def run_child(settings: Settings, traders: int, steps: int, seed: int) -> dict[str, Any]:
    """Run one path in a fresh interpreter (:mod:`path_child`); returns its JSON report.

    The child inherits this process's environment (so ``PYTHONPATH`` picks the
    same perpabm) and reports seconds of ``run_path`` and its own ru_maxrss.
    """
    cmd = [sys.executable, str(PATH_CHILD), "--scenario", settings.scenario,
           "--traders", str(traders), "--steps", str(steps), "--seed", str(seed)]
    env = dict(os.environ)
    import perpabm

    package_root = str(Path(perpabm.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"path child failed ({' '.join(cmd)}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(report["package"]).resolve() != Path(perpabm.__file__).resolve():
        raise RuntimeError(f"the child imported {report['package']}, "
                           f"not {perpabm.__file__}")
    return report

"""One path of a scenario in a fresh interpreter: its time and its peak memory, as JSON.

Run by the suite (``benchmarks/run.py``) for the scaling and memory sections;
prints one JSON line:

- ``import_seconds``: wall-clock seconds (time.perf_counter) of ``import perpabm``
  (with numpy, pandas, mesa, joblib, numba…) and ``perpabm.runner``;
- ``import_kib``: resident set size after the imports and the config are loaded
  (``VmRSS`` of ``/proc/self/status``, KiB);
- ``warmup_seconds``: wall-clock seconds of a first short path (100 traders, 20
  steps), which loads the compiled kernels from their cache, as the first path of
  any process does (each loky worker once);
- ``seconds``: wall-clock seconds of ``perpabm.runner.run_path`` — model
  construction, every step, the summary row and the event table — after that;
- ``baseline_kib``: resident set size after the short path, before the path;
- ``peak_kib``: the peak resident set size during the path (``VmHWM``, KiB),
  after its high-water mark was reset to the baseline (``/proc/self/clear_refs``);
  ``peak_kib − baseline_kib`` is the path's own share;
- ``import_peak_kib``: the high-water mark of the imports themselves.

Why not ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the parent: on Linux a child's
ru_maxrss starts at the high-water mark of the process image it was started from,
so a child of a large parent (the suite, after building 10⁶ accounts) reports
the parent's size. The child's own ``VmHWM`` has no such carry-over. Where
``/proc`` is missing, ``ru_maxrss`` of RUSAGE_SELF is used instead (``source``
says which).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import sys
import time
from pathlib import Path

STATUS = Path("/proc/self/status")


def status_kib(field: str) -> int | None:
    """A memory field (``VmRSS``, ``VmHWM``) of /proc/self/status in KiB, or None."""
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark to its current RSS (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--traders", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    import perpabm
    from perpabm import load_scenario
    from perpabm.runner import run_path

    import_seconds = time.perf_counter() - start
    config = load_scenario(args.scenario).replace("traders.count", args.traders)
    config = config.replace("run.steps", args.steps)
    gc.collect()
    import_peak = status_kib("VmHWM")
    import_rss = status_kib("VmRSS")
    start = time.perf_counter()
    run_path(config.replace("traders.count", min(args.traders, 100)).replace("run.steps", 20),
             args.seed, 1)
    warmup_seconds = time.perf_counter() - start
    gc.collect()
    baseline = status_kib("VmRSS")
    proc = baseline is not None and reset_peak()
    if not proc:
        baseline = import_peak = import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    row, events, _ = run_path(config, args.seed, 0)
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM") if proc else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "import_seconds": import_seconds,
                      "warmup_seconds": warmup_seconds, "import_kib": import_rss,
                      "baseline_kib": baseline, "peak_kib": peak,
                      "import_peak_kib": import_peak,
                      "source": "VmHWM" if proc else "ru_maxrss",
                      "events": len(events), "steps": row["steps"],
                      "package": perpabm.__file__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""perpabm benchmark suite: one command, one table, one JSON file.

Run: ``make bench`` (``.venv/bin/python benchmarks/run.py``); ``--quick`` runs
every section at tiny sizes with few repeats (a smoke test of the suite: its
figures are not measurements, and are not held against the targets).

Sections (each module's docstring says exactly what it times, in what units):

- ``default_path`` (bench_model): one path of the default scenario, one core;
- ``scaling`` (bench_model): the same path with 1,000 / 10,000 / 100,000
  traders and 1 / 10 / 30 days, each in a fresh interpreter;
- ``throughput`` (bench_throughput): paths per minute with ``n_jobs=1`` and
  ``n_jobs=-1``, speedup and parallel efficiency;
- ``engine`` (bench_engine): ``update_mark`` over 10³…10⁶ accounts,
  ``place_limit``, a book walk of a large liquidation, ADL rounds over 10⁵
  candidates;
- ``memory`` (bench_model): peak RSS of the interpreter and imports, and each
  path's own share;
- ``storage`` (bench_storage): size on disk and load time of 10,000 paths'
  results;
- ``floor`` (bench_floor): the step's vector work as a bare numpy loop, and
  model time / floor time.

Figures are medians of wall-clock times (time.perf_counter / timeit); ratios
are computed within one run of the suite, as the machine may be shared. The
table gives each figure with its target and pass/fail where the issue sets
one; the JSON (default ``benchmarks/results/bench.json``) holds every row with
its individual runs. The perpabm measured is the one Python imports: put
another checkout first with ``PYTHONPATH=/path/to/checkout``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import engine
from bench_floor import floor
from bench_model import default_path, memory, scaling
from bench_storage import storage
from bench_throughput import throughput
from common import SECTIONS, Row, Settings

RUNNERS = {"default_path": default_path, "scaling": scaling, "throughput": throughput,
           "engine": engine, "memory": memory, "storage": storage, "floor": floor}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "bench.json"


def package_info() -> dict[str, Any]:
    """Where the measured perpabm comes from: its path, version and git commit (if any)."""
    import perpabm

    root = Path(perpabm.__file__).resolve().parents[1]
    info: dict[str, Any] = {"path": str(Path(perpabm.__file__).resolve().parent),
                            "version": getattr(perpabm, "__version__", None)}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "perpabm"], capture_output=True, text=True,
                               check=True).stdout.strip()
        info.update(commit=commit, perpabm_modified=bool(dirty))
    except (OSError, subprocess.CalledProcessError):
        info.update(commit=None, perpabm_modified=None)
    return info


def machine_info() -> dict[str, Any]:
    import joblib
    import mesa
    import numpy
    import pandas

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "pandas": pandas.__version__, "mesa": mesa.__version__,
            "joblib": joblib.__version__, "machine": platform.machine(),
            "system": platform.system(), "cpu_count": os.cpu_count(),
            "joblib_cpu_count": joblib.cpu_count(), "processor": platform.processor()}


def format_value(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """The rows as one fixed-width table: figure, target, pass/fail, runs, what is timed."""
    head = ("section", "case", "value", "unit", "target", "pass", "runs", "what is timed")
    body = [(r.section, r.case, format_value(r.value), r.unit, r.target or "",
             {True: "pass", False: "FAIL", None: ""}[r.passed],
             "" if r.runs is None else str(r.runs), r.what) for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]
    right = {2, 6}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=False))]
        return "  ".join([*cells, line[-1]])

    rule = "  ".join("-" * w for w in widths) + "  " + "-" * 13
    return "\n".join([fmt(head), rule, *(fmt(line) for line in body)])


def run(settings: Settings, sections: list[str], out: Path) -> dict[str, Any]:
    """Run `sections`, print the table and write the JSON report to `out`; returns it."""
    package = package_info()
    started = time.perf_counter()
    print(f"perpabm {package['version']} from {package['path']}"
          f" (commit {str(package['commit'])[:10]}"
          f"{', perpabm/ modified' if package['perpabm_modified'] else ''})"
          f"{'; quick mode: tiny sizes, no targets' if settings.quick else ''}", flush=True)
    ctx: dict[str, Any] = {}
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name in SECTIONS:
        if name not in sections:
            continue
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        rows.extend(RUNNERS[name](settings, ctx))
        seconds[name] = time.perf_counter() - start
    rows.sort(key=lambda r: SECTIONS.index(r.section))
    elapsed = time.perf_counter() - started
    print()
    print(table(rows))
    targets = [r for r in rows if r.target is not None]
    failed = [r for r in targets if r.passed is False]
    if settings.evaluate:
        print(f"\ntargets: {len(targets) - len(failed)} of {len(targets)} met"
              + (f"; missed: {', '.join(f'{r.section} {r.case}' for r in failed)}"
                 if failed else ""))
    report = {
        "suite": "perpabm benchmarks", "quick": settings.quick,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_s": elapsed, "section_seconds": seconds,
        "package": package, "machine": machine_info(),
        "settings": {k: v for k, v in vars(settings).items()},
        "sections": {name: [r.to_dict() for r in rows if r.section == name]
                     for name in SECTIONS if name in sections},
        "targets": [{"section": r.section, "case": r.case, "value": r.value, "unit": r.unit,
                     "target": r.target, "passed": r.passed} for r in targets],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\n{len(rows)} figures in {elapsed / 60:.1f} min; written to {out}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="perpabm benchmark suite: prints one table and writes it as JSON.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, few repeats: a smoke test of the suite (well under "
                             "a minute); figures are not held against the targets")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of "
                             f"{', '.join(SECTIONS)})")
    parser.add_argument("--seed", type=int, default=1, help="root seed of every path")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="JSON report (default: benchmarks/results/bench.json)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(SECTIONS)}")
    settings = Settings.for_quick(args.seed) if args.quick else Settings(seed=args.seed)
    run(settings, sections, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

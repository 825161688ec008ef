"""perpabm benchmark suite: one command, one table, one JSON file.

Run: ``make bench`` (``.venv/bin/python benchmarks/run.py``); ``--quick`` runs
every section at tiny sizes with few repeats (a smoke test of the suite: its
figures are not measurements, and are not held against the targets).

The table begins with one line naming the machine (CPU model, cores and the
cores this process may use, memory, Python and numpy, the load average at the
start and at the end of the run); the JSON's ``machine`` holds the same.
Absolute times and rates belong to that machine: idle 2-core machines of the
same kind differ by up to 4×. So the table and the JSON lead with ratios of
figures measured in the same run, which carry over; targets (pass/fail) are set
only on what does not depend on the machine's speed — ratios and megabytes.
The absolute goals (a default path in 0.1 s, 1,000 paths a minute, loading
10,000 paths in under 2 s) are stated beside the figure of the reference
machine they were met on (``--reference``, default
``benchmarks/results/after.json``; quoted where its scenario, traders and steps
are this run's), never passed or failed.

Sections (each module's docstring says exactly what it times, in what units):

- ``ratios`` (bench_ratios): model / floor, model / Mesa's bare clock for the
  same steps, Mesa's clock's share of the model's steps, and 2 workers against
  1. It runs last and prints first: it takes the default path's, the floor's
  and the throughput section's figures from this run when those sections ran,
  and measures only what is missing (``--only ratios`` measures all of it,
  with a smaller run of 2 workers against 1 than the throughput section's);
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
table gives each figure with its target and pass/fail, or its goal and the
reference machine's figure; the JSON (default ``benchmarks/results/bench.json``)
holds every row with its individual runs, the targets, and the goals with the
reference figures. The perpabm measured is the one Python imports: put another
checkout first with ``PYTHONPATH=/path/to/checkout``.
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
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import engine
from bench_floor import floor
from bench_model import default_path, memory, scaling
from bench_ratios import ratios
from bench_storage import storage
from bench_throughput import throughput
from common import HERE, RUN_ORDER, SECTIONS, Row, Settings

RUNNERS = {"ratios": ratios, "default_path": default_path, "scaling": scaling,
           "throughput": throughput, "engine": engine, "memory": memory, "storage": storage,
           "floor": floor}
DEFAULT_OUT = HERE / "results" / "bench.json"
REFERENCE = HERE / "results" / "after.json"
"""The reference machine's report: the figures the README quotes, where the goals were met."""
GIB = 1024 ** 3


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


def cpu_model() -> str:
    """The CPU's model name: /proc/cpuinfo's "model name", else platform.processor(), else
    the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_bytes() -> int | None:
    """Total physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def affinity_cpus() -> int | None:
    """The cores this process may run on (None where the system does not say)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """The machine and the software the figures were measured with."""
    import joblib
    import mesa
    import numpy
    import pandas

    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "affinity_cpus": affinity_cpus(), "joblib_cpu_count": joblib.cpu_count(),
            "memory_bytes": memory_bytes(), "python": platform.python_version(),
            "numpy": numpy.__version__, "pandas": pandas.__version__,
            "mesa": mesa.__version__, "joblib": joblib.__version__,
            "machine": platform.machine(), "system": platform.system(),
            "processor": platform.processor(), "load_average": load_average()}


def machine_line(info: dict[str, Any]) -> str:
    """One line naming a machine, from :func:`machine_info` (or an older report's, which
    lacks the CPU model, memory and load: those are left out)."""
    cpu = info.get("cpu_model") or info.get("processor") or "CPU model not recorded"
    cores = f"{info.get('cpu_count')} cores"
    usable = info.get("affinity_cpus")
    if usable is not None:
        cores += f" ({usable} usable)"
    parts = [cpu, cores]
    if info.get("memory_bytes"):
        parts.append(f"{info['memory_bytes'] / GIB:.1f} GiB memory")
    parts.append(f"{info.get('system', '')} {info.get('machine', '')}".strip())
    parts.append(f"Python {info.get('python')}, numpy {info.get('numpy')}")
    start, end = info.get("load_average"), info.get("load_average_end")
    if start is not None:
        parts.append(f"load average {start[0]:.1f} at the start"
                     + (f", {end[0]:.1f} at the end" if end is not None else ""))
    return "machine: " + "; ".join(parts)


def load_reference(path: Path) -> dict[str, Any] | None:
    """The reference report at `path`, or None (with a warning) if there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.warn(f"no reference report at {path} ({exc}): the goals are stated "
                      f"without the reference machine's figures", stacklevel=2)
        return None


SAME_SIZES = ("scenario", "traders", "steps")
"""Settings a reference figure must share with this run to be quoted beside it."""


def attach_references(rows: list[Row], settings: Settings,
                      reference: dict[str, Any] | None) -> None:
    """Set each goal row's ``reference``: the reference report's figure for the same case
    (its label up to any " (…)", e.g. the core count) at the same sizes, if it has one."""
    if reference is None:
        return
    theirs = reference.get("settings", {})
    if any(theirs.get(key) != getattr(settings, key) for key in SAME_SIZES):
        return
    figures = {(r["section"], r["case"].split(" (")[0]): r["value"]
               for section in reference.get("sections", {}).values() for r in section}
    for row in rows:
        if row.goal is not None:
            row.reference = figures.get((row.section, row.case.split(" (")[0]))


def reference_note(reference: dict[str, Any] | None, path: Path) -> str:
    """The lines under the table that say what a goal and a reference figure are."""
    note = ("goal: met on the reference machine, not held against this one (idle 2-core "
            "machines of one kind differ by up to 4× in speed; the ratios carry over)")
    if reference is None:
        return note
    commit = str(reference.get("package", {}).get("commit"))[:7]
    return (f"{note}\nref.: that machine's figure at the same sizes, from {path.name} "
            f"(commit {commit}, {str(reference.get('date'))[:10]}) — "
            f"{machine_line(reference.get('machine', {}))}")


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


def target_cell(row: Row) -> str:
    """A row's target, or its goal with the reference machine's figure, as table text."""
    if row.target is not None:
        return row.target
    if row.goal is None:
        return ""
    return f"goal {row.goal}" + ("" if row.reference is None
                                 else f", ref. {format_value(row.reference)}")


def table(rows: list[Row]) -> str:
    """The rows as one fixed-width table: figure, target, pass/fail, runs, what is timed."""
    head = ("section", "case", "value", "unit", "target", "pass", "runs", "what is timed")
    body = [(r.section, r.case, format_value(r.value), r.unit, target_cell(r),
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


def run(settings: Settings, sections: list[str], out: Path,
        reference_path: Path = REFERENCE) -> dict[str, Any]:
    """Run `sections`, print the table and write the JSON report to `out`; returns it.

    Goal rows are shown beside the figures of the report at `reference_path`."""
    package = package_info()
    machine = machine_info()
    reference = load_reference(reference_path)
    started = time.perf_counter()
    print(f"perpabm {package['version']} from {package['path']}"
          f" (commit {str(package['commit'])[:10]}"
          f"{', perpabm/ modified' if package['perpabm_modified'] else ''})"
          f"{'; quick mode: tiny sizes, no targets' if settings.quick else ''}", flush=True)
    ctx: dict[str, Any] = {}
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name in RUN_ORDER:
        if name not in sections:
            continue
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        rows.extend(RUNNERS[name](settings, ctx))
        seconds[name] = time.perf_counter() - start
    rows.sort(key=lambda r: SECTIONS.index(r.section))
    attach_references(rows, settings, reference)
    elapsed = time.perf_counter() - started
    machine["load_average_end"] = load_average()
    print()
    print(machine_line(machine))
    print(table(rows))
    targets = [r for r in rows if r.target is not None]
    goals = [r for r in rows if r.goal is not None]
    failed = [r for r in targets if r.passed is False]
    if settings.evaluate and targets:
        print(f"\ntargets: {len(targets) - len(failed)} of {len(targets)} met"
              + (f"; missed: {', '.join(f'{r.section} {r.case}' for r in failed)}"
                 if failed else ""))
    if goals:
        print(reference_note(reference, reference_path))
    report = {
        "suite": "perpabm benchmarks", "quick": settings.quick,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine, "package": package,
        "elapsed_s": elapsed, "section_seconds": seconds,
        "settings": {k: v for k, v in vars(settings).items()},
        "sections": {name: [r.to_dict() for r in rows if r.section == name]
                     for name in SECTIONS if name in sections},
        "targets": [{"section": r.section, "case": r.case, "value": r.value, "unit": r.unit,
                     "target": r.target, "passed": r.passed} for r in targets],
        "goals": [{"section": r.section, "case": r.case, "value": r.value, "unit": r.unit,
                   "goal": r.goal, "reference": r.reference} for r in goals],
        "reference": None if reference is None else {
            "report": str(reference_path), "machine": reference.get("machine"),
            "commit": reference.get("package", {}).get("commit"),
            "date": reference.get("date")},
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
    parser.add_argument("--reference", type=Path, default=REFERENCE,
                        help="report of the reference machine, whose figures are shown "
                             "beside the goals (default: benchmarks/results/after.json)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(SECTIONS)}")
    settings = Settings.for_quick(args.seed) if args.quick else Settings(seed=args.seed)
    run(settings, sections, args.out, args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())

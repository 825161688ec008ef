"""The benchmark suite runs end to end in quick mode and writes every section.

Only the suite's shape is checked: timings are never asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
SECTIONS = ("ratios", "default_path", "scaling", "throughput", "engine", "memory", "storage",
            "floor")
RATIOS = ("model / floor, 1,000 traders, 1,440 steps", "model / Mesa's bare clock",
          "Mesa's clock in the path's steps",
          "default: venue population / traders only",
          "oct10_2025: venue population / traders only",
          "warm start / cold start",
          "oct10_2025: adaptive clock / 60-second ticks",
          "oct10_2025: adaptive clock / 1-second ticks", "2 workers / 1")
QUICK_RATIOS = tuple(c.replace("1,000 traders, 1,440 steps", "100 traders, 60 steps")
                     for c in RATIOS)


def run_suite(folder: Path, *args: str) -> tuple[dict, str]:
    """Run benchmarks/run.py with `args`; returns its JSON report and its printed output."""
    out = folder / "bench.json"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), *args,
                             "--out", str(out)], capture_output=True, text=True, timeout=300,
                            cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8")), result.stdout


@pytest.fixture(scope="module")
def quick_suite(tmp_path_factory) -> tuple[dict, str]:
    """The whole suite in quick mode: its report and printed output."""
    return run_suite(tmp_path_factory.mktemp("quick"), "--quick")


@pytest.fixture(scope="module")
def quick_ratios(tmp_path_factory) -> tuple[dict, str]:
    """The ratios section alone in quick mode: its report and printed output."""
    return run_suite(tmp_path_factory.mktemp("ratios"), "--quick", "--only", "ratios")


def test_quick_suite_writes_every_section(quick_suite):
    report, stdout = quick_suite
    assert report["quick"] is True
    assert list(report["sections"]) == list(SECTIONS)
    for name, rows in report["sections"].items():
        assert rows, name
        for row in rows:
            assert row["section"] == name
            assert math.isfinite(row["value"]) and row["unit"] and row["what"], row
            assert row["passed"] is None, row  # quick sizes are not the targets' sizes
    cases = {(r["section"], r["case"]) for rows in report["sections"].values() for r in rows}
    assert ("throughput", "parallel efficiency") in cases
    assert any(s == "floor" and c.startswith("model / floor") for s, c in cases)
    assert any(s == "engine" and c.startswith("ADL round") for s, c in cases)
    assert any(s == "engine" and c.startswith("book walk") for s, c in cases)
    assert any(s == "storage" and c.startswith("Results.load") for s, c in cases)
    size = next(r for r in report["sections"]["storage"] if r["case"].startswith("size of"))
    assert size["details"]["events"] > 0  # the built folder holds events as well as paths
    for name in SECTIONS:  # the printed table has every section
        assert f"\n{name} " in stdout


def test_the_table_and_the_report_lead_with_the_ratios(quick_suite):
    report, stdout = quick_suite
    assert next(iter(report["sections"])) == "ratios"
    ratios = report["sections"]["ratios"]
    assert [r["case"] for r in ratios] == list(QUICK_RATIOS)
    table = stdout[stdout.index("\nsection "):]
    assert table.split("\n")[3].startswith("ratios ")  # the first row after the rule
    # Figures other sections of this run measured are used, not measured again.
    floor_ratio = next(r for r in report["sections"]["floor"]
                       if r["case"].startswith("model / floor"))
    assert ratios[0]["value"] == floor_ratio["value"]
    assert ratios[0]["details"]["floor_from"] == "floor section"
    speedup = next(r for r in report["sections"]["throughput"] if r["case"] == "speedup")
    if joblib.cpu_count() == 2:  # the throughput section's workers are 2 workers
        workers = next(r for r in ratios if r["case"] == "2 workers / 1")
        assert workers["value"] == speedup["value"]
        assert workers["details"]["from"] == "throughput section"


def test_ratios_alone_measure_what_they_need(quick_ratios):
    report, _ = quick_ratios
    assert list(report["sections"]) == ["ratios"]
    ratios = {r["case"]: r for r in report["sections"]["ratios"]}
    expected = QUICK_RATIOS if joblib.cpu_count() >= 2 else QUICK_RATIOS[:5]
    assert list(ratios) == list(expected)
    assert ratios[QUICK_RATIOS[0]]["details"]["floor_from"] == "measured in this section"
    for row in ratios.values():
        assert math.isfinite(row["value"]), row
        if row["unit"] != "%":  # a ratio of two times; the clock's share is a difference
            assert row["value"] > 0, row  # of two noisy times, and may come out below 0
    share = ratios["Mesa's clock in the path's steps"]
    assert share["unit"] == "%" and share["runs"] == 2  # clock_repeats of --quick


def test_the_table_begins_with_the_machine(quick_ratios):
    report, stdout = quick_ratios
    machine = report["machine"]
    for key in ("cpu_model", "cpu_count", "affinity_cpus", "memory_bytes", "python", "numpy",
                "load_average"):
        assert key in machine, key
    lines = stdout.split("\n")
    header = lines.index(next(line for line in lines if line.startswith("section ")))
    line = lines[header - 1]
    assert line.startswith("machine: ")
    assert machine["cpu_model"] in line
    assert f"{machine['cpu_count']} cores" in line
    assert f"Python {machine['python']}" in line and f"numpy {machine['numpy']}" in line
    assert "GiB" in line


def test_absolute_times_are_goals_without_pass_or_fail():
    """Seconds and paths a minute depend on the machine (two 2-core machines of one kind
    differ 4× in speed): at the full suite's settings (not --quick) they carry their goal
    and no pass or fail, however fast or slow the machine is."""
    code = f"""
import json, sys
sys.path.insert(0, {str(BENCHMARKS)!r})
from bench_model import default_path
from bench_storage import storage
from bench_throughput import throughput
from common import Settings

settings = Settings(traders=100, steps=20, path_repeats=1, throughput_seconds=0.0,
                    throughput_paths=(2, 2), throughput_repeats=1, storage_paths=4,
                    storage_sample=2, storage_repeats=1)
assert settings.evaluate
ctx = {{}}
rows = [*default_path(settings, ctx), *throughput(settings, ctx), *storage(settings, ctx)]
print(json.dumps([r.to_dict() for r in rows]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    for row in rows:
        assert row["passed"] is None and row["target"] is None, row
    goals = {(r["section"], r["case"].split(",")[0].split(" (")[0]): r["goal"]
             for r in rows if r["goal"]}
    assert goals == {("default_path", "one path"): "≤ 0.1",
                     ("throughput", "n_jobs=-1"): "≥ 1,000",
                     ("storage", "Results.load"): "< 2"}


def test_targets_only_where_the_machine_does_not_set_the_figure(quick_suite):
    report, stdout = quick_suite
    assert [(t["section"], t["case"]) for t in report["targets"]] == [
        ("ratios", QUICK_RATIOS[0]),
        ("ratios", "oct10_2025: adaptive clock / 60-second ticks"),
        ("ratios", "oct10_2025: adaptive clock / 1-second ticks"),
        ("scaling", "300 / 100 traders"),
        ("memory", "path, 300 traders")]
    assert [(g["section"], g["goal"]) for g in report["goals"]] == [
        ("default_path", "≤ 0.1"), ("throughput", "≥ 1,000"), ("storage", "< 2")]
    assert "reference machine" in stdout

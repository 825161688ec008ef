"""benchmarks/bench_batch_run.py runs end to end at tiny sizes and writes its report.

Only the report's shape is checked: timings are never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_batch_run.py"


def test_the_batch_run_benchmark_checks_both_give_the_same_figures_and_reports(tmp_path):
    out = tmp_path / "batch_run.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--scenario", "crash", "--paths", "2",
                             "--repeats", "1", "--traders", "20", "--steps", "30",
                             "--out", str(out)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary figures: identical path by path" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["paths"], report["traders"], report["steps"]) == (2, 20, 30)
    assert report["summaries_equal"] is True
    assert set(report["median_seconds"]) == {"batch_run", "run_paths"}
    assert report["machine"]["mesa"] and report["machine"]["cpu_count"]

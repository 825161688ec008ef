"""The benchmark suite runs end to end in quick mode and writes every section.

Only the suite's shape is checked: timings are never asserted.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
SECTIONS = ("default_path", "scaling", "throughput", "engine", "memory", "storage", "floor")


def test_quick_suite_writes_every_section(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "run.py"), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
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
    assert {t["section"] for t in report["targets"]} == {
        "default_path", "scaling", "throughput", "memory", "storage"}
    for name in SECTIONS:  # the printed table has every section
        assert f"\n{name} " in result.stdout

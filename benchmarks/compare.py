"""Markdown table of benchmark reports side by side: every figure, its target, each report.

Run: ``.venv/bin/python benchmarks/compare.py benchmarks/results/before.json
benchmarks/results/bench.json --labels before after`` — one row per figure
(section and case), one column per report, and, with two reports or more, the
last over the one before it. Figures, targets and goals are the suite's own (see
``run.py``), as the last report that has the figure states them: a figure with a goal
rather than a target gets no pass or fail mark, in older reports either. A figure one
report lacks is left blank.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from run import format_value


def figures(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(section, case) → row, in the report's order."""
    return {(row["section"], row["case"]): row
            for rows in report["sections"].values() for row in rows}


def markdown(reports: list[dict[str, Any]], labels: list[str]) -> str:
    """One markdown table of every figure of `reports`, one column per report."""
    tables = [figures(r) for r in reports]
    keys = list(dict.fromkeys(k for t in tables for k in t))
    ratio = len(reports) >= 2
    head = ["section", "figure", "unit", "target", *labels]
    if ratio:
        head.append(f"{labels[-1]} / {labels[-2]}")
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 4 + ["---:"] * (len(head) - 4)) + "|"]
    for key in keys:
        rows = [t.get(key) for t in tables]
        latest = next(r for r in reversed(rows) if r is not None)
        goal = latest.get("goal")
        cells = [key[0], key[1], latest["unit"],
                 latest["target"] or (f"goal {goal}" if goal else "")]
        for row in rows:
            if row is None:
                cells.append("")
                continue
            # A goal (an absolute time) is not passed or failed, in older reports either.
            passed = row["passed"] if latest["target"] is not None else None
            mark = {True: " ✓", False: " ✗", None: ""}[passed]
            cells.append(format_value(row["value"]) + mark)
        if ratio:
            a, b = rows[-2:]
            cells.append(format_value(b["value"] / a["value"])
                         if a is not None and b is not None and a["value"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JSON reports of run.py")
    parser.add_argument("--labels", nargs="+", help="column names (default: file stems)")
    args = parser.parse_args(argv)
    labels = args.labels or [p.stem for p in args.reports]
    if len(labels) != len(args.reports):
        parser.error("give one label per report")
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in args.reports]
    print(markdown(reports, labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())

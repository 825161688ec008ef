"""Shared pieces of the experiment scripts: the stressed market they run, and output."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from perpabm import ScenarioConfig, Shock, load_scenario

HERE = Path(__file__).parent


def stressed_market(traders: int = 300, steps: int = 120) -> ScenarioConfig:
    """oct10_2025 cut to `steps` minutes around its 15% drop (at minute 80) and
    `traders` traders, so that a sweep of many paths runs in minutes; the vault's
    capital is scaled down with the market to 1M USD."""
    config = load_scenario("oct10_2025").replace("traders.count", traders)
    config = config.replace("run.steps", steps).replace("vault.capital", 1_000_000.0)
    return config.replace("market.shocks", (Shock(80, -0.15, 10),))


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table of `frame` (numbers to `digits` significant digits)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.{digits}g}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *rows]) + "\n"


def write_table(frame: pd.DataFrame, folder: Path, name: str) -> None:
    frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / f"{name}.md").write_text(markdown_table(frame))


def parse_args(script: str, doc: str, default_paths: int) -> argparse.Namespace:
    """The experiments' common options: --paths, --seed and --out (default: the folder
    of `script`, created if missing)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--paths", type=int, default=default_paths)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(script).parent,
                        help="folder for the figures and tables (default: beside the script)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args

"""Shared pieces of the experiment scripts: the stressed market they run, and output."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from perpabm import PerpMarketModel, ScenarioConfig, Shock, load_scenario
from perpabm.runner import path_seed

HERE = Path(__file__).parent


MARKET_SCALE = 0.1
"""The stressed market's vault and basis traders' capital, as a share of oct10_2025's."""


def stressed_market(traders: int = 300, steps: int = 120) -> ScenarioConfig:
    """oct10_2025 cut to `steps` minutes around its 15% drop (at minute 80) and
    `traders` traders, so that a sweep of many paths runs in minutes; the rest of the
    venue population scaled down with it: a fund for every ten traders, and the
    vault's capital (to 1M USD) and each basis trader's by MARKET_SCALE."""
    base = load_scenario("oct10_2025")
    config = base.with_settings({
        "traders.count": traders, "funds.count": round(traders * base.funds.count
                                                       / base.traders.count),
        "run.steps": steps, "vault.capital": base.vault.capital * MARKET_SCALE,
        "basis.capital": base.basis.capital * MARKET_SCALE})
    return config.replace("market.shocks", (Shock(80, -0.15, 10),))


def account_snapshots(config: ScenarioConfig, seed: int, paths: int,
                      minutes: Sequence[float]) -> pd.DataFrame:
    """Every account (`PerpMarketModel.account_snapshot`) of the first `paths` paths of a
    run of `config` with `seed` (its own path seeds), read at each of `minutes` from the
    start, stacked with the path and the minute."""
    frames = []
    for path in range(paths):
        model = PerpMarketModel(config, rng=path_seed(seed, path))
        for minute in minutes:
            model.run_until(minute / config.run.step_minutes)
            frames.append(model.account_snapshot().reset_index().assign(path=path,
                                                                        minute=minute))
    return pd.concat(frames, ignore_index=True)


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

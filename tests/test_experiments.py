"""Every experiment script runs end to end at a tiny size and writes what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).parents[1] / "experiments"

CASES = {
    "ranking_rules": (["--paths", "2"], ["summary.csv", "summary.md", "differences.csv",
                                         "losing_side.csv", "vault_by_strategy.csv",
                                         "hit_shares.csv", "differences.png",
                                         "who_is_hit.png", "vault_pnl.png"]),
    "liquidator_vault": (["--paths", "2"], ["summary.csv", "summary.md", "losing_side.csv",
                                            "losing_side.png", "clock.csv", "clock.md"]),
    "adl_accounts": (["--paths", "2"], ["profile.csv", "profile.md", "population.csv",
                                        "leverage.png"]),
    "population": (["--paths", "1"], ["fit.csv", "fit.md", "by_type.csv"]),
    "fund_size": (["--paths", "2"], ["summary.csv", "summary.md", "differences.csv",
                                     "adl_vs_fund.png"]),
    "vault_cap": (["--paths", "2"], ["summary.csv", "summary.md", "adl_vs_cap.png",
                                     "vault_pnl.png"]),
    "who_is_hit": (["--paths", "2"], ["summary.csv", "by_trader_type.csv", "adl_heatmap.png",
                                       "who_is_hit.png", "lorenz.png", "trader_types.png"]),
    "leverage": (["--paths", "2"], ["summary.csv", "adl_vs_leverage.png"]),
    "volatility": (["--paths", "2"], ["summary.csv", "adl_vs_volatility.png"]),
    "calibration": (["--paths", "1", "--check-paths", "1", "--popsize", "1", "--maxiter",
                     "0"], ["fit.md", "table.csv", "table.md", "history.csv",
                            "objective.png", "oct10_2025_calibrated.toml"]),
    "sensitivity": (["--points", "2", "--paths", "1"], ["indices.csv", "indices.md",
                                                        "sobol.png", "size.md"]),
    "time_step": (["--paths", "2"], ["summary.csv", "summary.md", "paired.csv",
                                     "paired.md", "adaptive.csv", "adaptive.md",
                                     "convergence.png"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_experiment_writes_its_figures_and_tables(name, tmp_path):
    args, outputs = CASES[name]
    script = EXPERIMENTS / name / "run.py"
    result = subprocess.run([sys.executable, str(script), *args, "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for output in outputs:
        assert (tmp_path / output).stat().st_size > 0, output


def test_leverage_tails_prints_its_table():
    script = EXPERIMENTS / "leverage_tails" / "run.py"
    result = subprocess.run([sys.executable, str(script), "--seeds", "2", "--jobs", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Hill" in result.stdout and "10x" in result.stdout

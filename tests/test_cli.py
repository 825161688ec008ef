"""The `perpabm` command: what it prints, and one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from perpabm import ScenarioConfig, load_scenario
from perpabm.cli import main

SMALL = """name = "small"
[exchange]
preset = "hyperliquid"
[traders]
count = 30
[run]
steps = 30
"""


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_scenarios_lists_one_line_each(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(
        ["calm", "crash", "default", "oct10_2025", "thin_book", "volatile"])


def test_config_show_prints_toml_that_loads_back_to_the_same_scenario(capsys):
    assert main(["config", "show", "crash"]) == 0
    text = capsys.readouterr().out
    assert ScenarioConfig.from_dict(tomllib.loads(text)) == load_scenario("crash")


def test_config_show_comments_puts_a_note_above_each_key_and_loads_back(capsys):
    assert main(["config", "show", "crash", "--comments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ScenarioConfig.from_dict(tomllib.loads("\n".join(lines))) == load_scenario("crash")
    key = lines.index("max_leverage = 40.0")  # hyperliquid's, under [exchange]
    start = max(k for k in range(key) if not lines[k].startswith("#")) + 1
    note = " ".join(line.removeprefix("# ") for line in lines[start:key])
    assert note.startswith("The highest leverage")
    assert note.endswith("Unit: notional ÷ equity. Allowed: in [1, inf).")
    written = [k for k, line in enumerate(lines) if line and not line.startswith("#")]
    assert all(lines[k - 1].startswith("#") for k in written)


def test_run_prints_the_summary_table(small, capsys):
    assert main(["run", "--config", str(small), "--paths", "2", "--jobs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "adl_share" in out and "vault_pnl_q95" in out


def test_sweep_prints_one_row_per_point_and_writes_results(small, tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'config = "{small.name}"\nn_paths = 2\nseed = 1\n'
                    '[grid]\n"exchange.adl_rule" = ["profit", "leverage"]\n')
    out_dir = tmp_path / "results"
    assert main(["sweep", str(spec), "--jobs", "1", "--quiet", "--out", str(out_dir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3
    assert sorted(line.split()[0] for line in table[1:]) == ["leverage", "profit"]
    assert (out_dir / "manifest.json").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--scenario", "crsh"], 'did you mean "crash"'),
    (["run", "--config", "missing.toml"], "cannot read scenario file"),
    (["config", "show", "volatil"], 'did you mean "volatile"'),
])
def test_errors_are_one_line_with_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_mistyped_setting_in_a_scenario_file_suggests_the_closest(tmp_path, capsys):
    path = tmp_path / "typo.toml"
    path.write_text("[traders]\ncuont = 5\n")
    assert main(["run", "--config", str(path), "--paths", "1", "--quiet"]) == 2
    assert 'traders.cuont is not a setting (did you mean "count"?)' in capsys.readouterr().err


def test_an_out_of_range_value_names_the_field(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[traders]\nstop_loss = 2.0\n")
    assert main(["run", "--config", str(path), "--paths", "1", "--quiet"]) == 2
    assert "traders.stop_loss" in capsys.readouterr().err


def test_an_unwritable_out_directory_is_one_line(small, tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    argv = ["run", "--config", str(small), "--paths", "1", "--quiet", "--out", str(blocked)]
    assert main(argv) == 2
    assert "cannot write to out directory" in capsys.readouterr().err


def test_the_installed_command_runs_without_a_traceback(tmp_path):
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "perpabm"),
                             "run", "--scenario", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown scenario" in result.stderr


def test_a_sweep_file_that_is_not_toml_is_one_line(tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text("[grid\n")
    assert main(["sweep", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not valid TOML" in err and len(err.splitlines()) == 1


def test_a_mistyped_sweep_key_suggests_the_closest(tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text('scenario = "calm"\nn_path = 2\n[grid]\n"vault.cap" = [0.0]\n')
    assert main(["sweep", str(spec), "--quiet"]) == 2
    assert 'did you mean "n_paths"' in capsys.readouterr().err


def test_failed_paths_make_the_command_exit_1_and_say_how_many(small, capsys, monkeypatch):
    import perpabm.runner as runner

    original = runner.run_path

    def flaky(config, seed, path, point=0, with_series=False):
        if path == 1:
            raise RuntimeError("boom")
        return original(config, seed, path, point, with_series)

    monkeypatch.setattr(runner, "run_path", flaky)
    assert main(["run", "--config", str(small), "--paths", "3", "--jobs", "1", "--quiet"]) == 1
    assert "1 path(s) failed" in capsys.readouterr().err

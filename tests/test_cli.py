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
        ["calm", "crash", "default", "oct10_2025", "oct10_2025_calibrated",
         "oct10_2025_history", "thin_book", "volatile"])


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
    assert "1 of 3 path(s) failed: RuntimeError: boom (1)" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_when_every_path_fails_the_command_says_why_in_one_line(small, tmp_path, capsys,
                                                                 monkeypatch, command):
    import perpabm.runner as runner

    def out_of_memory(config, seed, path, point=0, with_series=False):
        raise MemoryError("Unable to allocate 745. GiB for an array")

    monkeypatch.setattr(runner, "run_path", out_of_memory)
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'config = "{small.name}"\nn_paths = 2\n[grid]\n"traders.count" = [30]\n')
    argv = (["run", "--config", str(small), "--paths", "2"] if command == "run"
            else ["sweep", str(spec)])
    assert main([*argv, "--jobs", "1", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("perpabm: 2 of 2 path(s) failed: MemoryError: Unable to allocate "
                            "745. GiB for an array (2); run with --out to keep their "
                            "tracebacks\n")


def test_version_prints_the_package_version(capsys):
    from importlib import metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"perpabm {metadata.version('perpabm')}\n"


@pytest.mark.parametrize("traders", ["-5", "0", "many"])
def test_demo_refuses_a_trader_count_below_one_in_one_line(traders, capsys):
    assert main(["demo", "--traders", traders]) == 2
    err = capsys.readouterr().err
    assert "--traders: must be a whole number ≥ 1" in err and len(err.splitlines()) == 1


def test_run_keeps_the_series_when_asked(small, tmp_path):
    from perpabm import Results

    out = tmp_path / "out"
    assert main(["run", "--config", str(small), "--paths", "2", "--jobs", "1", "--quiet",
                 "--series", "--out", str(out)]) == 0
    series = Results.load(out).series
    assert sorted(series["path"].unique()) == [0, 1] and len(series) == 2 * 30


def test_a_sweep_file_can_ask_for_series(small, tmp_path):
    from perpabm import Results

    spec = tmp_path / "sweep.toml"
    spec.write_text(f'config = "{small.name}"\nn_paths = 1\nwith_series = true\n'
                    '[grid]\n"vault.cap" = [0.0, 2.0]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    assert len(Results.load(out).series) == 2 * 30  # 2 points × 1 path × 30 steps


def test_export_writes_each_table_as_csv(tiny, tmp_path, capsys):
    import pandas as pd

    from perpabm.config.toml import dumps

    (tmp_path / "tiny.toml").write_text(dumps(tiny.to_dict()))
    out = tmp_path / "out"
    main(["run", "--config", str(tmp_path / "tiny.toml"), "--paths", "2", "--jobs", "1",
          "--quiet", "--out", str(out)])
    capsys.readouterr()
    assert main(["export", str(out), "--to", str(tmp_path / "csv")]) == 0
    written = capsys.readouterr().out.split()
    assert [os.path.basename(p) for p in written] == ["paths.csv", "events.csv", "points.csv"]
    paths = pd.read_csv(tmp_path / "csv" / "paths.csv")
    assert paths["path"].tolist() == [0, 1]


def test_export_of_a_folder_that_is_not_results_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "no manifest.json: not a perpabm results folder" in capsys.readouterr().err


INTERRUPTED_SWEEP = """scenario = "crash"
n_paths = 400
seed = 1
[grid]
"vault.cap" = [0.0, 2.0]
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_on_a_sweep_is_one_line_saying_what_was_saved(tmp_path, jobs):
    """A real SIGINT to the command's process group, as a terminal's Ctrl-C sends it,
    once five chunks are stored (800 paths in chunks of ⌈800 / 64⌉ = 13)."""
    import signal
    import time

    spec = tmp_path / "sweep.toml"
    spec.write_text(INTERRUPTED_SWEEP)
    out = tmp_path / "out"
    command = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "perpabm"), "sweep", str(spec),
         "--out", str(out), "--jobs", jobs, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # As a terminal's foreground command: a shell's background job (as a test run may
        # be) starts with SIGINT ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while len(list((out / "paths").glob("batch-*.parquet"))) < 5 and time.monotonic() < deadline:
        assert command.poll() is None, "the sweep must be interrupted part-way"
        time.sleep(0.05)
    os.killpg(command.pid, signal.SIGINT)
    _, err = command.communicate(timeout=120)
    assert command.returncode == 130
    saved = len(list((out / "paths").glob("batch-*.parquet"))) * 13
    assert err == (f"perpabm: interrupted: {saved} of 800 paths are saved in {out}; run the "
                   f"same command again to resume\n")


@pytest.fixture
def swept(tiny, tmp_path):
    """A results folder of a 2-point sweep of the tiny crash scenario, 4 paths each."""
    from perpabm.runner import sweep

    out = tmp_path / "swept"
    sweep(tiny, {"vault.cap": [0.0, 2.0]}, n_paths=4, seed=3, n_jobs=1, out=out)
    return out


def test_report_writes_the_tables_figures_and_report_md_beside_the_results(swept, capsys):
    import pandas as pd

    assert main(["report", str(swept)]) == 0
    written = [os.path.basename(p) for p in capsys.readouterr().out.split()]
    assert written[-1] == "report.md" and "adl_frequency.csv" in written
    assert any(name.endswith(".png") for name in written)
    frequency = pd.read_csv(swept / "report" / "adl_frequency.csv")
    assert frequency["vault.cap"].tolist() == [0.0, 2.0]  # one row per sweep point
    assert frequency["paths"].tolist() == [4, 4]


def test_report_by_an_unknown_column_is_one_line_naming_the_closest(swept, tmp_path, capsys):
    assert main(["report", str(swept), "--by", "vault.capp", "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert 'vault.capp' in err and 'did you mean "vault.cap"' in err
    assert len(err.splitlines()) == 1


def test_report_of_a_folder_with_missing_paths_says_it_is_partial(swept, capsys):
    for table in ("paths", "events"):
        (swept / table / "batch-p000001-k00000003-n1.parquet").unlink()
    assert main(["report", str(swept)]) == 0
    err = capsys.readouterr().err
    assert "1 of 8 planned path(s) are missing" in err
    assert "**Partial:** 1 planned path(s) are missing" in (
        swept / "report" / "report.md").read_text()


def test_the_summary_leaves_outer_quantiles_blank_below_the_small_sample_rule():
    import math

    import pandas as pd

    from perpabm.cli import summary_table

    def paths(n: int) -> pd.DataFrame:
        return pd.DataFrame({"adl_fired": [True] * n, "liquidation_episodes": [1] * n,
                             "vault_pnl": [float(k) for k in range(n)]})

    # 99 paths: ⌊99 · 0.05⌋ = 4 beyond the 5% quantile, under MIN_TAIL_PATHS = 5.
    few = summary_table(paths(99)).iloc[0]
    assert math.isnan(few["vault_pnl_q05"]) and math.isnan(few["vault_pnl_q95"])
    assert few["vault_pnl_q50"] == 49.0
    # 100 paths: ⌊100 · 0.05⌋ = 5, enough; pandas' q05 of 0 … 99 is 0.05 · 99 = 4.95.
    enough = summary_table(paths(100)).iloc[0]
    assert enough["vault_pnl_q05"] == pytest.approx(4.95)
    assert enough["vault_pnl_q95"] == pytest.approx(94.05)

"""Every bad input is one clear line naming what is wrong, and nothing is written.

The Python API raises ``perpabm.ConfigError``; the command prints one line on
stderr and exits 2, without a traceback. Either way the output folder is not
created. Each table row is one bad input and the name the message must contain.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perpabm import ConfigError, Results, ScenarioConfig, load_scenario
from perpabm.cli import main
from perpabm.demo import scripted_crash
from perpabm.runner import run_paths, sweep

TINY = ScenarioConfig().replace("traders.count", 5).replace("run.steps", 5)

# ---------------------------------------------------------------- the Python API

API: list[tuple[str, Callable[[Path], Any], str]] = [
    ("config not a ScenarioConfig", lambda out: run_paths("default", 1, 0, out=out), "config"),
    ("n_paths zero", lambda out: run_paths(TINY, 0, 0, out=out), "n_paths"),
    ("n_paths negative", lambda out: run_paths(TINY, -3, 0, out=out), "n_paths"),
    ("n_paths fractional", lambda out: run_paths(TINY, 2.5, 0, out=out), "n_paths"),
    ("n_paths bool", lambda out: run_paths(TINY, True, 0, out=out), "n_paths"),
    ("n_paths NaN", lambda out: run_paths(TINY, math.nan, 0, out=out), "n_paths"),
    ("seed negative", lambda out: run_paths(TINY, 1, -1, out=out), "seed"),
    ("seed a string", lambda out: run_paths(TINY, 1, "1", out=out), "seed"),
    ("n_jobs zero", lambda out: run_paths(TINY, 1, 0, n_jobs=0, out=out), "n_jobs"),
    ("backend typo", lambda out: run_paths(TINY, 1, 0, backend="lokky", out=out),
     'backend must be one of "loky"'),
    ("batch_size zero", lambda out: run_paths(TINY, 1, 0, batch_size=0, out=out), "batch_size"),
    ("with_series not a bool", lambda out: run_paths(TINY, 1, 0, with_series="yes", out=out),
     "with_series"),
    ("out not a path", lambda out: run_paths(TINY, 1, 0, out=5), "out"),
    ("empty grid", lambda out: sweep(TINY, {}, 1, 0, out=out), "grid"),
    ("empty value list", lambda out: sweep(TINY, {"vault.cap": []}, 1, 0, out=out), "vault.cap"),
    ("grid value not a list", lambda out: sweep(TINY, {"vault.cap": 2.0}, 1, 0, out=out),
     "vault.cap"),
    ("grid path typo", lambda out: sweep(TINY, {"vault.cpa": [1.0]}, 1, 0, out=out),
     'vault.cpa\' is not a setting (did you mean "cap"?)'),
    ("venue preset typo",
     lambda out: sweep(TINY, {"exchange.preset": ["binanse"]}, 1, 0, out=out),
     'exchange.preset must be one of "binance"'),
    ("grid value NaN", lambda out: sweep(TINY, {"vault.cap": [math.nan]}, 1, 0, out=out),
     "vault.cap"),
    ("grid value inf", lambda out: sweep(TINY, {"vault.cap": [math.inf]}, 1, 0, out=out),
     "vault.cap"),
    ("grid value out of range", lambda out: sweep(TINY, {"traders.count": [-5]}, 1, 0, out=out),
     "traders.count"),
    ("zip of unequal lists",
     lambda out: sweep(TINY, {"vault.cap": [1.0], "traders.count": [1, 2]}, 1, 0, design="zip",
                       out=out), "grid"),
    ("lhs without n_points",
     lambda out: sweep(TINY, {"vault.cap": (0.0, 1.0)}, 1, 0, design="lhs", out=out), "n_points"),
    ("sobol range to inf",
     lambda out: sweep(TINY, {"vault.cap": (1.0, math.inf)}, 1, 0, design="sobol", n_points=4,
                       out=out), "vault.cap"),
    ("unknown scenario", lambda out: load_scenario("crsh"), 'scenario \'crsh\' (did you mean'),
    ("count a string", lambda out: TINY.replace("traders.count", "ten"), "traders.count"),
    ("volatility NaN", lambda out: TINY.replace("market.volatility", math.nan),
     "market.volatility"),
    ("max leverage inf", lambda out: TINY.replace("exchange.max_leverage", math.inf),
     "exchange.max_leverage"),
    ("strategy mix a number", lambda out: TINY.replace("traders.strategy_mix", 5),
     "traders.strategy_mix"),
    ("zero quote levels", lambda out: TINY.replace("makers.levels", 0), "makers.levels"),
    ("results folder without a manifest", lambda out: Results.load(out), "manifest.json"),
    ("results folder not a path", lambda out: Results.load(5), "out"),
    ("replay file missing",
     lambda out: run_paths(TINY.replace("market.process", "replay")
                           .replace("market.replay", str(out.parent / "nope.csv")), 1, 0,
                           out=out), "market.replay"),
    ("demo traders negative", lambda out: scripted_crash(n_traders=-5), "traders"),
    ("demo traders zero", lambda out: scripted_crash(n_traders=0), "traders"),
    ("demo traders fractional", lambda out: scripted_crash(n_traders=2.5), "traders"),
    ("demo traders bool", lambda out: scripted_crash(n_traders=True), "traders"),
    ("demo traders a string", lambda out: scripted_crash(n_traders="200"), "traders"),
    ("demo seed negative", lambda out: scripted_crash(n_traders=2, seed=-1), "seed"),
    ("demo seed a string", lambda out: scripted_crash(n_traders=2, seed="7"), "seed"),
    ("demo seed fractional", lambda out: scripted_crash(n_traders=2, seed=1.5), "seed"),
]


# The arguments run_paths and sweep share, each bad: (name, keyword arguments).
RUN_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("config not a ScenarioConfig", {"config": "default"}),
    ("n_paths zero", {"n_paths": 0}),
    ("n_paths fractional", {"n_paths": 2.5}),
    ("n_paths bool", {"n_paths": True}),
    ("seed negative", {"seed": -1}),
    ("seed a string", {"seed": "1"}),
    ("n_jobs zero", {"n_jobs": 0}),
    ("backend typo", {"backend": "lokky"}),
    ("batch_size zero", {"batch_size": 0}),
    ("with_series not a bool", {"with_series": "yes"}),
    ("progress not a bool", {"progress": "no"}),
    ("out not a path", {"out": 5}),
    ("scheduler not an address", {"scheduler": 5}),
    ("replay file missing", {"config": TINY.replace(market=dataclasses.replace(
        TINY.market, process="replay", replay="/no/such/prices.csv"))}),
]


@pytest.mark.parametrize(("case", "bad"), RUN_ARGUMENTS, ids=[c for c, _ in RUN_ARGUMENTS])
def test_sweep_refuses_a_bad_run_argument_as_run_paths_does(case, bad):
    arguments = {"config": TINY, "n_paths": 1, "seed": 0, **bad}
    config, n_paths, seed = (arguments.pop(k) for k in ("config", "n_paths", "seed"))
    with pytest.raises(ConfigError) as by_run_paths:
        run_paths(config, n_paths, seed, **arguments)
    with pytest.raises(ConfigError) as by_sweep:
        sweep(config, {"vault.cap": [1.0]}, n_paths, seed, **arguments)
    assert str(by_sweep.value) == str(by_run_paths.value)


@pytest.mark.parametrize(("call", "field"), [case[1:] for case in API],
                         ids=[case[0] for case in API])
def test_a_bad_api_argument_is_a_one_line_config_error_and_writes_nothing(call, field,
                                                                          tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as info:
        call(out)
    message = str(info.value)
    assert field in message and "\n" not in message, message
    assert not out.exists()


# ---------------------------------------------------------------- the command


def run_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command in-process; it must exit 2 with one line on stderr, which is returned."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("perpabm"), captured.err
    assert "Traceback" not in err and captured.out == ""
    return err


SCENARIO_FILES: list[tuple[str, str, str]] = [
    ("setting typo", "[traders]\ncuont = 5\n", 'traders.cuont is not a setting (did you mean'),
    ("section typo", "[trader]\ncount = 5\n", 'trader is not a scenario section (did you mean'),
    ("section not a table", "traders = 5\n", "traders must be a table"),
    ("name not a string", "name = 5\n", "name"),
    ("count a string", '[traders]\ncount = "many"\n', "traders.count"),
    ("count negative", "[traders]\ncount = -1\n", "traders.count"),
    ("count fractional", "[traders]\ncount = 2.5\n", "traders.count"),
    ("strategy mix a number", "[traders]\nstrategy_mix = 5\n", "traders.strategy_mix"),
    ("strategy mix NaN", "[traders]\nstrategy_mix = [1.0, nan, 0.0]\n", "traders.strategy_mix"),
    ("makers negative", "[makers]\ncount = -1\n", "makers.count"),
    ("volatility NaN", "[market]\nvolatility = nan\n", "market.volatility"),
    ("volatility inf", "[market]\nvolatility = inf\n", "market.volatility"),
    ("start price negative", "[market]\nstart_price = -1.0\n", "market.start_price"),
    ("process typo", '[market]\nprocess = "garch"\n', "market.process"),
    ("replay without a file", '[market]\nprocess = "replay"\n', "market.replay"),
    ("explosive GARCH", "[market]\ngarch_alpha = 0.5\ngarch_beta = 0.6\n", "garch_alpha"),
    ("shocks not a list", "[market]\nshocks = 5\n", "market.shocks"),
    ("shock without its start", "[[market.shocks]]\nchange = -0.2\n",
     "market.shocks[0].at_minute"),
    ("shock below -100%", "[[market.shocks]]\nat_minute = 1\nchange = -1.5\n",
     "market.shocks.change"),
    ("preset typo", '[exchange]\npreset = "binanse"\n', "exchange.preset"),
    ("leverage below 1", "[exchange]\nmax_leverage = 0.5\n", "exchange.max_leverage"),
    ("waterfall out of order", '[exchange]\nwaterfall = ["adl", "book"]\n', "exchange.waterfall"),
    ("ADL rule typo", '[exchange]\nadl_rule = "profits"\n', "exchange.adl_rule"),
    ("margin rate of 150%", "[exchange]\nmm_tiers = [[0.0, 1.5]]\n", "exchange.mm_tiers"),
    ("infinite insurance fund", "[exchange]\ninsurance_fund = inf\n", "exchange.insurance_fund"),
    ("vault cap negative", "[vault]\ncap = -1.0\n", "vault.cap"),
    ("vault flag a string", '[vault]\nenabled = "yes"\n', "vault.enabled"),
    ("no steps", "[run]\nsteps = 0\n", "run.steps"),
    ("debug a number", "[run]\ndebug = 1\n", "run.debug"),
    ("not TOML", "[traders\ncount = 5\n", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "field"), [case[1:] for case in SCENARIO_FILES],
                         ids=[case[0] for case in SCENARIO_FILES])
def test_a_bad_scenario_file_is_one_line_exit_2_and_writes_nothing(text, field, tmp_path,
                                                                   capsys):
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    err = run_command(["run", "--config", str(config), "--paths", "1", "--jobs", "1",
                       "--quiet", "--out", str(out)], capsys)
    assert field in err
    assert not out.exists()


def test_a_scenario_file_that_is_not_text_is_one_line(tmp_path, capsys):
    config = tmp_path / "binary.toml"
    config.write_bytes(b"\xff\xfe\x00garbage")
    err = run_command(["run", "--config", str(config), "--quiet"], capsys)
    assert "binary.toml is not valid TOML" in err


SWEEP = 'scenario = "calm"\nn_paths = 1\n'
GRID = '[grid]\n"vault.cap" = [1.0]\n'
SWEEP_FILES: list[tuple[str, str, str]] = [
    ("n_paths zero", 'scenario = "calm"\nn_paths = 0\n' + GRID, "n_paths"),
    ("n_paths negative", 'scenario = "calm"\nn_paths = -1\n' + GRID, "n_paths"),
    ("n_paths a string", 'scenario = "calm"\nn_paths = "10"\n' + GRID, "n_paths"),
    ("seed negative", SWEEP + "seed = -1\n" + GRID, "seed"),
    ("seed fractional", SWEEP + "seed = 1.5\n" + GRID, "seed"),
    ("setting typo", SWEEP + "n_path = 5\n" + GRID, 'n_path is not a sweep setting (did you'),
    ("no grid", SWEEP, "[grid]"),
    ("empty grid", SWEEP + "[grid]\n", "grid"),
    ("grid not a table", SWEEP + "grid = 5\n", "grid"),
    ("empty value list", SWEEP + '[grid]\n"vault.cap" = []\n', "vault.cap"),
    ("value not a list", SWEEP + '[grid]\n"vault.cap" = 1.0\n', "vault.cap"),
    ("value NaN", SWEEP + '[grid]\n"vault.cap" = [nan]\n', "vault.cap"),
    ("grid path typo", SWEEP + '[grid]\n"vault.cpa" = [1.0]\n', "vault.cpa"),
    ("design typo", SWEEP + 'design = "gird"\n' + GRID, 'design must be one of'),
    ("lhs without n_points", SWEEP + 'design = "lhs"\n[grid]\n"vault.cap" = [0.0, 1.0]\n',
     "n_points"),
    ("n_points zero", SWEEP + 'design = "lhs"\nn_points = 0\n[grid]\n"vault.cap" = [0.0, 1.0]\n',
     "n_points"),
    ("unknown scenario", 'scenario = "crsh"\n' + GRID, "unknown scenario 'crsh'"),
    ("scenario not a string", "scenario = 5\n" + GRID, "scenario must be"),
    ("config not a string", "config = 5\n" + GRID, "config must be"),
    ("config missing", 'config = "missing.toml"\n' + GRID, "missing.toml"),
    ("scenario and config", 'scenario = "calm"\nconfig = "mine.toml"\n' + GRID, "not both"),
]


@pytest.mark.parametrize(("text", "field"), [case[1:] for case in SWEEP_FILES],
                         ids=[case[0] for case in SWEEP_FILES])
def test_a_bad_sweep_file_is_one_line_exit_2_and_writes_nothing(text, field, tmp_path, capsys):
    spec = tmp_path / "sweep.toml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    err = run_command(["sweep", str(spec), "--jobs", "1", "--quiet", "--out", str(out)], capsys)
    assert field in err
    assert not out.exists()


ARGUMENTS: list[tuple[str, list[str], str]] = [
    ("paths zero", ["run", "--paths", "0"], "--paths"),
    ("paths negative", ["run", "--paths", "-2"], "--paths"),
    ("paths not a number", ["run", "--paths", "x"], "--paths"),
    ("seed negative", ["run", "--seed", "-1"], "seed"),
    ("seed not a number", ["run", "--seed", "x"], "--seed"),
    ("jobs zero", ["run", "--jobs", "0"], "n_jobs"),
    ("jobs not a number", ["run", "--jobs", "x"], "--jobs"),
    ("preset typo", ["run", "--preset", "binanse"], "--preset"),
    ("ADL rule typo", ["run", "--rule", "profits"], "exchange.adl_rule"),
    ("unknown scenario", ["run", "--scenario", "crsh"], 'did you mean "crash"'),
    ("missing scenario file", ["run", "--config", "missing.toml"], "missing.toml"),
    ("scenario and config", ["run", "--scenario", "calm", "--config", "x.toml"], "--config"),
    ("unknown option", ["run", "--paht", "3"], "--paht"),
    ("unknown command", ["swep"], "swep"),
    ("backend typo", ["sweep", "sweep.toml", "--backend", "dusk"], "--backend"),
    ("missing sweep file", ["sweep", "missing.toml"], "missing.toml"),
]


@pytest.mark.parametrize(("argv", "field"), [case[1:] for case in ARGUMENTS],
                         ids=[case[0] for case in ARGUMENTS])
def test_a_bad_argument_is_one_line_exit_2_and_writes_nothing(argv, field, tmp_path, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    err = run_command([*argv, "--quiet", "--out", str(out)] if argv[0] in ("run", "sweep")
                      else argv, capsys)
    assert field in err
    assert not out.exists()


def unwritable(tmp_path: Path) -> list[Path]:
    """A regular file, and a folder path under it: neither can become an output folder."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    return [blocker, blocker / "out"]


@pytest.mark.parametrize("which", [0, 1], ids=["a file", "under a file"])
def test_an_unwritable_output_folder_is_one_line_and_writes_nothing(which, tmp_path, capsys):
    out = unwritable(tmp_path)[which]
    err = run_command(["run", "--scenario", "calm", "--paths", "1", "--quiet", "--out",
                       str(out)], capsys)
    assert f"cannot write to out directory {out}" in err
    assert (tmp_path / "file").read_text() == "not a folder"


# ---------------------------------------------------------------- replayed price files

STEPS = 5


def prices(n: int) -> str:
    return "price\n" + "".join(f"{100.0 + k}\n" for k in range(n))


PRICE_FILES: list[tuple[str, bytes | None, str, str]] = [
    # (case, file contents (None: no file; b"/": a folder), column, what the message names)
    ("missing file", None, "price", "market.replay file not found"),
    ("a folder", b"/", "price", "market.replay"),
    ("empty file", b"", "price", "market.replay"),
    ("header only", b"price\n", "price", "market.replay needs at least 2 prices"),
    ("column typo", prices(10).encode(), "prcie", 'market.replay_column \'prcie\''),
    ("non-numeric price", b"price\n100\nabc\n101\n", "price", "non-numeric price at line 3"),
    ("missing price", b"time,price\n1,100\n2,\n3,101\n4,102\n5,103\n6,104\n7,105\n", "price",
     "market.replay has a missing (NaN) price at line 3"),
    ("negative price", b"price\n100\n-5\n101\n", "price", "market.replay prices must be > 0"),
    ("zero price", b"price\n100\n0\n101\n", "price", "market.replay prices must be > 0"),
    ("infinite price", b"price\n100\ninf\n101\n", "price", "market.replay prices must be finite"),
    ("too short", prices(3).encode(), "price", f"{STEPS} are needed"),
    ("not text", b"\xff\xfe\x00\x01price\n\x00\x9f", "price", "market.replay"),
]


@pytest.mark.parametrize(("contents", "column", "field"), [case[1:] for case in PRICE_FILES],
                         ids=[case[0] for case in PRICE_FILES])
def test_a_bad_price_file_is_one_line_exit_2_and_writes_nothing(contents, column, field,
                                                                tmp_path, capsys):
    csv = tmp_path / "prices.csv"
    if contents == b"/":
        csv.mkdir()
    elif contents is not None:
        csv.write_bytes(contents)
    config = tmp_path / "replay.toml"
    config.write_text(f"[market]\nprocess = \"replay\"\nreplay = {json.dumps(str(csv))}\n"
                      f"replay_column = {json.dumps(column)}\n[traders]\ncount = 5\n"
                      f"[run]\nsteps = {STEPS}\n", encoding="utf-8")
    out = tmp_path / "out"
    err = run_command(["run", "--config", str(config), "--paths", "2", "--jobs", "1",
                       "--quiet", "--out", str(out)], capsys)
    assert field in err
    assert not out.exists()


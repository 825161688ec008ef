"""A worker process killed mid-sweep (SIGKILL, as the out-of-memory killer does): the sweep
says so, runs the lost paths once more, and ends with the tables of an undisturbed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from joblib.externals.loky.process_executor import TerminatedWorkerError

import perpabm.runner as runner
from perpabm import Results
from perpabm.config.toml import dumps
from perpabm.runner import sweep

KILLER = """
# Loaded by every Python process of the sweep: once perpabm.model is imported (in the
# loky workers), the first run of path 1 kills its own process.
import importlib.abc
import importlib.util
import os
import signal
import sys
from pathlib import Path


def patch(module):
    run = module.PerpMarketModel.run

    def killing_run(self):
        marker = Path(os.environ["KILL_MARKER"])
        if self.seed["index"].spawn_key[0] == 1 and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return run(self)

    module.PerpMarketModel.run = killing_run


class PatchAfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "perpabm.model":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, PatchAfterImport())
"""

GRID = {"vault.cap": [0.0, 2.0]}
N_PATHS = 4


def test_a_killed_worker_is_reported_and_its_paths_rerun_to_the_undisturbed_tables(
        tiny, tmp_path):
    """`perpabm sweep` on two loky workers, in a child process whose Python loads the
    killer above as ``sitecustomize`` (and so do the workers it starts)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(KILLER)
    (tmp_path / "tiny.toml").write_text(dumps(tiny.to_dict()))
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'config = "tiny.toml"\nn_paths = {N_PATHS}\nseed = 3\n'
                    '[grid]\n"vault.cap" = [0.0, 2.0]\n')
    out, marker = tmp_path / "out", tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(hooks), "KILL_MARKER": str(marker)}
    command = Path(sys.executable).parent / "perpabm"
    done = subprocess.run([str(command), "sweep", str(spec), "--jobs", "2", "--quiet",
                           "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert marker.exists(), "the worker running path 1 must have been killed"
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "perpabm: warning: a worker process died (exit codes {SIGKILL(-9)}); running its " \
        in done.stderr
    killed = Results.load(out)
    undisturbed = sweep(tiny, GRID, n_paths=N_PATHS, seed=3, n_jobs=1)
    for table in ("paths", "events"):
        pd.testing.assert_frame_equal(getattr(killed, table), getattr(undisturbed, table),
                                      check_exact=True)
    assert len(killed.failures) == 0
    assert 1 in killed.retried["path"].tolist()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["retried"]


def kill_workers_of_path_1(monkeypatch, times: int | None) -> None:
    """The worker of a batch holding path 1 dies, `times` times (None: every time) —
    simulated on threads, which joblib reports as it reports a killed process."""
    run_batch = runner._run_batch
    deaths = []

    def dying(tasks, *args):
        if (times is None or len(deaths) < times) and any(path == 1 for _, _, path in tasks):
            deaths.append(tasks)
            raise TerminatedWorkerError("A worker process managed by the executor was "
                                        "unexpectedly terminated. The exit codes of the "
                                        "workers are {SIGKILL(-9)}")
        return run_batch(tasks, *args)

    monkeypatch.setattr(runner, "_run_batch", dying)


def test_paths_lost_again_on_their_rerun_are_failures_that_a_resume_retries(
        tiny, tmp_path, monkeypatch):
    """The worker of any batch holding path 1 dies every time (simulated on threads, which
    joblib reports the same way): after the one rerun, the lost paths are failures."""
    kill_workers_of_path_1(monkeypatch, times=None)
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="a worker process died"):
        lost = sweep(tiny, GRID, n_paths=N_PATHS, seed=3, n_jobs=2, backend="threading",
                     out=out)
    assert set(lost.failures["error_type"]) == {"TerminatedWorkerError"}
    failed = set(zip(lost.failures["point"], lost.failures["path"], strict=True))
    assert {(0, 1), (1, 1)} <= failed <= set(zip(lost.retried["point"], lost.retried["path"],
                                                 strict=True))
    assert len(lost.paths) + len(lost.failures) == len(GRID["vault.cap"]) * N_PATHS
    assert json.loads((out / "manifest.json").read_text())["status"] == "failed paths"
    monkeypatch.undo()
    resumed = sweep(tiny, GRID, n_paths=N_PATHS, seed=3, n_jobs=1, out=out)
    assert len(resumed.paths) == len(GRID["vault.cap"]) * N_PATHS
    assert len(resumed.failures) == 0


def test_a_clean_resume_clears_the_paths_listed_as_retried(tiny, tmp_path, monkeypatch):
    """``retried`` belongs to the invocation that ran paths again: a resume in which no
    worker died leaves it empty (it kept the old entries before)."""
    kill_workers_of_path_1(monkeypatch, times=1)
    out = tmp_path / "out"
    with pytest.warns(RuntimeWarning, match="a worker process died"):
        first = sweep(tiny, GRID, n_paths=N_PATHS, seed=3, n_jobs=2, backend="threading",
                      out=out)
    assert len(first.retried) > 0 and len(first.failures) == 0
    monkeypatch.undo()
    resumed = sweep(tiny, GRID, n_paths=N_PATHS, seed=3, n_jobs=1, out=out)
    assert len(resumed.retried) == 0 and len(Results.load(out).retried) == 0

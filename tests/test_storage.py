"""Results on disk: written as paths finish, read back exactly, resumed, guarded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from perpabm import ConfigError, Results
from perpabm.runner import sweep

GRID = {"vault.cap": [0.0, 2.0]}


def frames_equal(a: Results, b: Results) -> None:
    pd.testing.assert_frame_equal(a.paths, b.paths, check_dtype=False)
    pd.testing.assert_frame_equal(a.events, b.events, check_dtype=False)


def test_a_stored_sweep_reads_back_as_it_ran(tiny, tmp_path):
    memory = sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1)
    stored = sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    frames_equal(memory, stored)
    frames_equal(memory, Results.load(tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["identity"]["seed"] == 2
    assert manifest["paths_done_per_point"] == {"0": 3, "1": 3}
    assert {"perpabm", "mesa", "numpy"} <= set(manifest["versions"])


def test_rerunning_resumes_and_computes_only_what_is_missing(tiny, tmp_path):
    full = sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    chunks = sorted((tmp_path / "paths").glob("batch-*.parquet"))
    for chunk in chunks[::2]:  # lose every other finished batch
        chunk.unlink()
    (tmp_path / "paths" / chunks[1].name).write_bytes(b"PAR1 truncated")  # and corrupt one
    resumed = sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    frames_equal(full, resumed)


def test_a_different_sweep_into_the_same_folder_is_refused(tiny, tmp_path):
    sweep(tiny, GRID, n_paths=2, seed=2, n_jobs=1, out=tmp_path)
    with pytest.raises(ConfigError, match=r"different run .*seed"):
        sweep(tiny, GRID, n_paths=2, seed=3, n_jobs=1, out=tmp_path)


def test_a_folder_without_a_manifest_is_not_results(tmp_path):
    with pytest.raises(ConfigError, match="manifest"):
        Results.load(tmp_path)


def test_a_failing_path_is_recorded_and_the_others_finish(tiny, tmp_path, monkeypatch):
    import perpabm.runner as runner

    original = runner.run_path

    def flaky(config, seed, path, point=0, with_series=False):
        if (point, path) == (1, 1):
            raise RuntimeError("boom")
        return original(config, seed, path, point, with_series)

    monkeypatch.setattr(runner, "run_path", flaky)
    results = sweep(tiny, GRID, n_paths=2, seed=2, n_jobs=1, out=tmp_path)
    assert len(results.paths) == 3
    failure = results.failures.iloc[0]
    assert (failure["point"], failure["path"], failure["error_type"]) == (1, 1, "RuntimeError")
    assert "boom" in failure["traceback"]
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "failed paths"
    # Run again without the fault: the failed path is retried and no failure is left.
    monkeypatch.setattr(runner, "run_path", original)
    again = sweep(tiny, GRID, n_paths=2, seed=2, n_jobs=1, out=tmp_path)
    assert len(again.paths) == 4 and len(again.failures) == 0


KILLED_SWEEP = """
import sys
from perpabm import load_scenario
from perpabm.runner import sweep
config = load_scenario("crash").replace("traders.count", 40).replace("run.steps", 60)
shock = config.market.shocks[0]
config = config.replace("market.shocks", (type(shock)(20, shock.change, 10),))
sweep(config, {"vault.cap": [0.0, 2.0]}, n_paths=12, seed=2, n_jobs=1, out=sys.argv[1])
"""


def test_a_killed_sweep_resumes_to_the_same_tables(tiny, tmp_path):
    """A real SIGKILL mid-sweep, then the same sweep again: identical final tables."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    worker = subprocess.Popen([sys.executable, "-c", KILLED_SWEEP, str(out)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(list((out / "paths").glob("batch-*.parquet"))) >= 3 or worker.poll() is not None:
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    done_before = len(list((out / "paths").glob("batch-*.parquet")))
    assert 0 < done_before < 24, "the sweep must be killed part-way"
    resumed = sweep(tiny, GRID, n_paths=12, seed=2, n_jobs=1, out=out)
    undisturbed = sweep(tiny, GRID, n_paths=12, seed=2, n_jobs=1, out=tmp_path / "whole")
    frames_equal(undisturbed, resumed)
    assert len(resumed.paths) == 24


def test_a_large_run_is_stored_in_a_few_dozen_chunks_of_consecutive_paths(tiny, tmp_path):
    from perpabm.runner import CHUNKS_PER_RUN, run_paths

    # 130 paths in chunks of ceil(130 / 64) = 3 consecutive paths: 44 files a table.
    results = run_paths(tiny, 130, seed=2, n_jobs=1, out=tmp_path)
    chunks = sorted((tmp_path / "paths").glob("batch-*.parquet"))
    assert len(chunks) == 44 <= CHUNKS_PER_RUN
    first = pd.read_parquet(chunks[0])
    assert first["path"].tolist() == [0, 1, 2]
    assert chunks[0].name == "batch-p000000-k00000000-n3.parquet"
    assert results.paths["path"].tolist() == list(range(130))

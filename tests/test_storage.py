"""Results on disk: written as paths finish, read back exactly, resumed, guarded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from perpabm import ConfigError, Results, load_scenario
from perpabm.runner import sweep


@pytest.fixture(scope="module")
def tiny():
    config = load_scenario("crash").replace("traders.count", 40).replace("run.steps", 60)
    shock = config.market.shocks[0]
    return config.replace("market.shocks", (type(shock)(20, shock.change, 10),))


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

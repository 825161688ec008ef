"""A results folder as a researcher keeps it: it grows by paths and by points, says what is
missing, refuses other code under a known name, records how it was made, and stops on
Ctrl-C saying what it saved."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import perpabm.runner as runner
from perpabm import ConfigError, Results
from perpabm.errors import RunInterrupted
from perpabm.runner import run_paths, sweep

GRID = {"vault.cap": [0.0, 2.0]}


def counting_run_path(monkeypatch) -> list[tuple[int, int]]:
    """Record the (point, path) of every path the runner computes."""
    computed: list[tuple[int, int]] = []
    original = runner.run_path

    def counted(config, seed, path, point=0, with_series=False):
        computed.append((point, path))
        return original(config, seed, path, point, with_series)

    monkeypatch.setattr(runner, "run_path", counted)
    return computed


def interrupt_at(monkeypatch, point: int, path: int):
    """Make the runner meet Ctrl-C when it starts (point, path); returns the undo."""
    original = runner.run_path

    def interrupted(config, seed, k, p=0, with_series=False):
        if (p, k) == (point, path):
            raise KeyboardInterrupt
        return original(config, seed, k, p, with_series)

    monkeypatch.setattr(runner, "run_path", interrupted)
    return lambda: monkeypatch.setattr(runner, "run_path", original)


def same_tables(a: Results, b: Results) -> None:
    pd.testing.assert_frame_equal(a.paths, b.paths, check_dtype=False)
    pd.testing.assert_frame_equal(a.events, b.events, check_dtype=False)


# ---------------------------------------------------------------- growing


def test_asking_a_finished_run_for_more_paths_computes_only_the_new_ones(tiny, tmp_path,
                                                                         monkeypatch):
    run_paths(tiny, 3, seed=5, n_jobs=1, out=tmp_path)
    computed = counting_run_path(monkeypatch)
    grown = run_paths(tiny, 5, seed=5, n_jobs=1, out=tmp_path)
    assert computed == [(0, 3), (0, 4)]
    same_tables(grown, run_paths(tiny, 5, seed=5, n_jobs=1))  # as if run at 5 from the start


def test_asking_for_fewer_paths_than_stored_computes_nothing_and_returns_those_asked(
        tiny, tmp_path, monkeypatch):
    run_paths(tiny, 4, seed=5, n_jobs=1, out=tmp_path)
    computed = counting_run_path(monkeypatch)
    fewer = run_paths(tiny, 2, seed=5, n_jobs=1, out=tmp_path)
    assert computed == [] and fewer.paths["path"].tolist() == [0, 1]
    assert len(Results.load(tmp_path).paths) == 4  # the folder keeps all four


def test_a_sweep_grows_by_grid_values_computing_only_the_new_points(tiny, tmp_path,
                                                                    monkeypatch):
    sweep(tiny, GRID, n_paths=2, seed=5, n_jobs=1, out=tmp_path)
    computed = counting_run_path(monkeypatch)
    grown = sweep(tiny, {"vault.cap": [0.0, 1.0, 2.0]}, n_paths=2, seed=5, n_jobs=1,
                  out=tmp_path)
    # 0.0 and 2.0 keep their indices 0 and 1; 1.0 is new, point 2.
    assert computed == [(2, 0), (2, 1)]
    assert grown.points.to_dict("records") == [{"point": 0, "vault.cap": 0.0},
                                               {"point": 1, "vault.cap": 2.0},
                                               {"point": 2, "vault.cap": 1.0}]
    fresh = sweep(tiny, {"vault.cap": [1.0]}, n_paths=2, seed=5, n_jobs=1)
    new_point = grown.paths[grown.paths["point"] == 2].drop(columns="point")
    pd.testing.assert_frame_equal(new_point.reset_index(drop=True),
                                  fresh.paths.drop(columns="point"), check_dtype=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["planned"] == {"0": 2, "1": 2, "2": 2}
    assert manifest["status"] == "complete"


def test_a_sweep_over_other_settings_into_the_folder_is_refused(tiny, tmp_path):
    sweep(tiny, GRID, n_paths=2, seed=5, n_jobs=1, out=tmp_path)
    with pytest.raises(ConfigError, match="differs in swept settings"):
        sweep(tiny, {"exchange.adl_rule": ["profit"]}, n_paths=2, seed=5, n_jobs=1,
              out=tmp_path)


def test_a_sweep_of_some_of_the_folders_points_returns_those_points(tiny, tmp_path):
    sweep(tiny, GRID, n_paths=2, seed=5, n_jobs=1, out=tmp_path)
    some = sweep(tiny, {"vault.cap": [2.0]}, n_paths=3, seed=5, n_jobs=1, out=tmp_path)
    assert some.points.to_dict("records") == [{"point": 1, "vault.cap": 2.0}]
    assert some.paths["path"].tolist() == [0, 1, 2]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["planned"] == {"0": 2, "1": 3} and manifest["status"] == "complete"


def test_a_point_left_unfinished_keeps_the_folder_partial(tiny, tmp_path, monkeypatch):
    undo = interrupt_at(monkeypatch, 1, 0)
    with pytest.raises(RunInterrupted):
        sweep(tiny, GRID, n_paths=2, seed=5, n_jobs=1, out=tmp_path)
    undo()
    sweep(tiny, {"vault.cap": [0.0]}, n_paths=2, seed=5, n_jobs=1, out=tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "partial"
    with pytest.warns(RuntimeWarning, match=r"2 of 4 planned path\(s\) are missing "
                                            r"\(point 1 path 0, point 1 path 1\): a later "
                                            r"run asked for other points only"):
        whole = Results.load(tmp_path)
    assert whole.missing.to_dict("records") == [{"point": 1, "path": 0},
                                                {"point": 1, "path": 1}]


# ---------------------------------------------------------------- what is missing is said


def test_loading_a_finished_run_with_a_deleted_chunk_names_the_missing_paths(tiny, tmp_path):
    sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    for table in ("paths", "events"):
        (tmp_path / table / "batch-p000001-k00000001-n1.parquet").unlink()
    with pytest.warns(RuntimeWarning, match=r"1 of 6 planned path\(s\) are missing "
                                            r"\(point 1 path 1\): their batches were deleted"):
        results = Results.load(tmp_path)
    assert results.missing.to_dict("records") == [{"point": 1, "path": 1}]
    assert len(results.paths) == 5


def test_loading_a_run_still_going_says_it_is_partial(tiny, tmp_path):
    sweep(tiny, GRID, n_paths=2, seed=2, n_jobs=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["status"] = "running"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for table in ("paths", "events"):
        (tmp_path / table / "batch-p000001-k00000000-n1.parquet").unlink()
    with pytest.warns(RuntimeWarning, match="the run is still going"):
        Results.load(tmp_path)


def test_a_complete_folder_loads_without_warnings(tiny, tmp_path, recwarn):
    sweep(tiny, GRID, n_paths=2, seed=2, n_jobs=1, out=tmp_path)
    assert len(Results.load(tmp_path).missing) == 0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


# ---------------------------------------------------------------- custom code


def rank_by_profit(size, entry, mark, collateral, mmr, rng):
    return size * (mark - entry)


def rank_by_size(size, entry, mark, collateral, mmr, rng):
    return abs(size)


def test_a_resume_refuses_another_rule_under_the_same_name(tiny, tmp_path):
    first = tiny.replace("exchange.adl_rules", (("mine", rank_by_profit),)).replace(
        "exchange.adl_rule", "mine")
    run_paths(first, 2, seed=1, n_jobs=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["identity"]["custom_code"]) == {"exchange.adl_rules.mine"}
    other = first.replace("exchange.adl_rules", (("mine", rank_by_size),))
    # Both are written "tests.test_runs_that_grow:…", but the names differ here; give the
    # second the first's qualified name so that only the code tells them apart.
    rank_by_size.__qualname__ = rank_by_profit.__qualname__
    try:
        with pytest.raises(ConfigError, match=r"other custom code for exchange\.adl_rules"
                                              r"\.mine \(its fingerprint differs"):
            run_paths(other, 2, seed=1, n_jobs=1, out=tmp_path)
    finally:
        rank_by_size.__qualname__ = "rank_by_size"


def test_a_fingerprint_is_of_the_code_not_the_name():
    fingerprint = runner.code_fingerprint
    assert fingerprint(rank_by_profit) == fingerprint(rank_by_profit)
    assert fingerprint(rank_by_profit) != fingerprint(rank_by_size)
    assert fingerprint("tests.test_runs_that_grow:rank_by_profit") == fingerprint(
        rank_by_profit)
    assert fingerprint("no_such_module:f") == "unimportable:no_such_module:f"


# ---------------------------------------------------------------- reproducibility


def test_the_manifest_records_versions_platform_and_source(tiny, tmp_path):
    run_paths(tiny, 1, seed=1, n_jobs=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {"perpabm", "numpy", "numba", "mesa", "pandas", "pyarrow"} <= set(
        manifest["versions"])
    assert {"system", "machine", "cpus"} <= set(manifest["platform"])
    from perpabm.storage import source_revision

    source = source_revision()
    if source is not None:  # installed from a checkout
        assert manifest["source"]["commit"] == source["commit"]
        assert len(source["commit"]) == 40


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_saying_what_was_saved_and_the_run_resumes(tiny, tmp_path, monkeypatch):
    undo = interrupt_at(monkeypatch, 1, 0)  # the fourth path of six
    with pytest.raises(RunInterrupted) as info:
        sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    # 6 paths in chunks of one (ceil(6 / 64) = 1): paths 0-2 of point 0 were written.
    assert str(info.value) == (f"interrupted: 3 of 6 paths are saved in {tmp_path}; run the "
                               f"same command again to resume")
    assert json.loads((tmp_path / "manifest.json").read_text())["status"].startswith(
        "interrupted")
    undo()
    same_tables(sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path),
                sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1))


def test_ctrl_c_just_after_a_batch_commits_counts_that_batch(tiny, tmp_path, monkeypatch):
    """Ctrl-C can land between a batch's paths file being written (which commits it) and
    the store counting it: the message counts what the folder holds."""
    from perpabm import storage

    write = storage._write_parquet
    written = []

    def commit_then_interrupt(path, frame, extra=None):
        write(path, frame, extra)
        if path.parent.name == "paths":
            written.append(path)
            if len(written) == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(storage, "_write_parquet", commit_then_interrupt)
    with pytest.raises(RunInterrupted) as info:
        sweep(tiny, GRID, n_paths=3, seed=2, n_jobs=1, out=tmp_path)
    # Chunks of one path: two committed, both counted.
    assert info.value.saved == 2
    assert len(list((tmp_path / "paths").glob("batch-*.parquet"))) == 2


# ---------------------------------------------------------------- memory and arguments


def test_a_population_too_large_for_memory_is_refused_before_anything_runs(tiny, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(runner, "available_memory", lambda: 8 * 2**30)
    huge = tiny.replace("traders.count", 100_000_000)
    # 530 B × 10⁸ traders + 210 B × 60 steps ≈ 49.4 GiB a path, against 8 GiB.
    with pytest.raises(ConfigError, match=r"traders.count = 100,000,000 with run.steps = 60 "
                                          r"needs about 49\.4 GiB a path and 8\.0 GiB"):
        run_paths(huge, 2, seed=1, n_jobs=1, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_workers_for_memory_are_refused_naming_how_many_fit(tiny, monkeypatch):
    monkeypatch.setattr(runner, "available_memory", lambda: 8 * 2**30)
    big = tiny.replace("traders.count", 5_000_000)
    # 260 MiB + 530 B × 5·10⁶ ≈ 2.72 GiB a worker: 2 fit in 8 GiB, not 4.
    with pytest.raises(ConfigError, match=r"for 4 workers at once.*use n_jobs = 2"):
        run_paths(big, 4, seed=1, n_jobs=4)


@pytest.mark.parametrize(("args", "field"), [
    (("a", 0), "seed"), ((1, -1), "path"), ((1.5, 0), "seed")])
def test_run_path_names_a_bad_argument(tiny, args, field):
    with pytest.raises(ConfigError, match=rf"^{field} must be a whole number ≥ 0"):
        runner.run_path(tiny, *args)


def test_a_custom_agent_class_is_fingerprinted_in_the_manifest(tiny, tmp_path):
    from test_agent_classes import WideMaker

    config = tiny.with_agent("wide", WideMaker, use_in="makers")
    run_paths(config, 1, seed=1, n_jobs=1, out=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["identity"]["custom_code"] == {
        "agent_classes.wide": runner.code_fingerprint(WideMaker)}


def test_an_agent_class_of_the_wrong_base_is_refused_before_any_path_runs(tiny, tmp_path):
    from test_agent_classes import WideMaker

    config = tiny.with_agent("wide", WideMaker, use_in="traders")
    with pytest.raises(ConfigError, match=r"^agent_classes\['wide'\], named by traders\.agent"):
        run_paths(config, 2, seed=1, n_jobs=1, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()

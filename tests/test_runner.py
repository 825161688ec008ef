"""run_paths and sweep: seeded, paired across points, independent of parallelism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perpabm import ConfigError
from perpabm.runner import design_points, path_seed, run_paths, sweep


def test_one_row_per_path_with_its_seed_and_summary(tiny):
    results = run_paths(tiny, n_paths=3, seed=11, n_jobs=1)
    assert results.paths["path"].tolist() == [0, 1, 2]
    assert results.paths["seed_spawn_key"].tolist() == ["0", "1", "2"]
    assert {"adl_fired", "vault_pnl", "liquidated_notional"} <= set(results.paths)
    assert len(results.series) == 0  # series are off unless asked for


def test_results_do_not_depend_on_n_jobs_backend_or_batching(tiny):
    grid = {"vault.cap": [0.0, 2.0]}
    serial = sweep(tiny, grid, n_paths=3, seed=5, n_jobs=1, with_series=True)
    parallel = sweep(tiny, grid, n_paths=3, seed=5, n_jobs=2, batch_size=2, with_series=True)
    threads = sweep(tiny, grid, n_paths=3, seed=5, n_jobs=2, backend="threading")
    for other in (parallel, threads):
        pd.testing.assert_frame_equal(serial.paths, other.paths, check_exact=True)
        pd.testing.assert_frame_equal(serial.events, other.events, check_exact=True)
    pd.testing.assert_frame_equal(serial.series, parallel.series, check_exact=True)


def test_path_seeds_come_from_the_root_seed_and_path_index():
    assert path_seed(7, 3).spawn_key == (3,)
    assert path_seed(7, 3).entropy == 7


def test_every_point_of_a_sweep_reuses_the_same_path_seeds(tiny):
    results = sweep(tiny, {"exchange.adl_rule": ["profit", "leverage"]}, n_paths=2, seed=3,
                    n_jobs=1, with_series=True)
    assert results.points["exchange.adl_rule"].tolist() == ["profit", "leverage"]
    index = results.series.pivot_table(index=["path", "step"], columns="point",
                                       values="index")
    np.testing.assert_array_equal(index[0].to_numpy(), index[1].to_numpy())
    assert set(results.paths["exchange.adl_rule"]) == {"profit", "leverage"}


def test_grid_design_is_the_cartesian_product():
    points = design_points({"a.x": [1, 2], "b.y": ["u", "v", "w"]}, "grid")
    assert len(points) == 6 and points[0] == {"a.x": 1, "b.y": "u"}


def test_zip_design_takes_lists_side_by_side():
    assert design_points({"a.x": [1, 2], "b.y": [3, 4]}, "zip") == [
        {"a.x": 1, "b.y": 3}, {"a.x": 2, "b.y": 4}]


@pytest.mark.parametrize("design", ["lhs", "sobol"])
def test_space_filling_designs_stay_in_their_ranges_and_are_seeded(design):
    grid = {"vault.cap": (0.0, 5.0), "traders.count": (100, 1000)}
    points = design_points(grid, design, n_points=8, seed=1)
    assert points == design_points(grid, design, n_points=8, seed=1)
    assert all(0.0 <= p["vault.cap"] <= 5.0 for p in points)
    assert all(isinstance(p["traders.count"], int) for p in points)
    # A Latin hypercube puts exactly one point in each eighth of every range.
    if design == "lhs":
        bins = sorted(int(p["vault.cap"] / 5.0 * 8) for p in points)
        assert bins == list(range(8))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_paths": 0}, "n_paths"),
    ({"n_paths": 2.5}, "n_paths"),
    ({"seed": -1}, "seed"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"backend": "dusk"}, 'did you mean "dask"|backend'),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_run_arguments_are_one_line_errors(tiny, kwargs, match):
    args = {"n_paths": 2, "seed": 1, **kwargs}
    with pytest.raises(ConfigError, match=match) as info:
        run_paths(tiny, args.pop("n_paths"), args.pop("seed"), **args)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("grid", "design", "match"), [
    ({}, "grid", "grid"),
    ({"a.x": []}, "grid", "empty"),
    ({"a.x": [1], "b.y": [1, 2]}, "zip", "one length"),
    ({"a.x": (2.0, 1.0)}, "lhs", "low < high"),
    ({"a.x": [1, 2]}, "gird", 'did you mean "grid"'),
])
def test_bad_designs_are_one_line_errors(grid, design, match):
    with pytest.raises(ConfigError, match=match):
        design_points(grid, design, n_points=4)


def test_a_sweep_over_an_unknown_setting_names_it(tiny):
    with pytest.raises(ConfigError, match='did you mean "count"'):
        sweep(tiny, {"traders.cuont": [1, 2]}, n_paths=1, seed=1, n_jobs=1)


def test_a_custom_adl_rule_ranks_in_worker_processes_too(tiny):
    """A custom rule travels with the config it is named in, to any worker process."""
    config = tiny.replace("exchange.adl_rules", {
        "largest_first": lambda size, entry, mark, collateral, mmr, rng: np.abs(size)})
    config = config.replace("exchange.adl_rule", "largest_first")
    serial = run_paths(config, n_paths=2, seed=5, n_jobs=1)
    parallel = run_paths(config, n_paths=2, seed=5, n_jobs=2)
    assert len(parallel.failures) == 0
    pd.testing.assert_frame_equal(serial.paths, parallel.paths, check_exact=True)
    pd.testing.assert_frame_equal(serial.events, parallel.events, check_exact=True)


def test_a_local_dask_cluster_gives_the_same_tables_as_loky(tiny):
    """dask.distributed on a LocalCluster bound to loopback, two worker processes."""
    loky = run_paths(tiny, n_paths=3, seed=9, n_jobs=2)
    dask = run_paths(tiny, n_paths=3, seed=9, n_jobs=2, backend="dask")
    pd.testing.assert_frame_equal(loky.paths, dask.paths)
    pd.testing.assert_frame_equal(loky.events, dask.events)


# The dropped interrupt is the case itself: pytest reports it as unraisable.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_dropped_by_a_finaliser_still_stops_the_run(tiny, monkeypatch):
    """Python drops an exception raised inside a finaliser ("Exception ignored in …"), and
    a model's teardown runs many (Mesa's agent sets hold agents by weak reference). A
    Ctrl-C landing there must still stop the run, after the batch it came in."""
    import signal
    import weakref

    from perpabm import RunInterrupted, runner

    real_run_path = runner.run_path

    def run_path(config, seed, path, *args):
        if path == 1:
            class Doomed:
                pass
            doomed = Doomed()
            weakref.finalize(doomed, signal.raise_signal, signal.SIGINT)
            del doomed  # the finaliser runs here: its KeyboardInterrupt is dropped
        return real_run_path(config, seed, path, *args)

    monkeypatch.setattr(runner, "run_path", run_path)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's
    try:
        with pytest.raises(RunInterrupted) as stopped:
            run_paths(tiny, n_paths=6, seed=1, n_jobs=1)
    finally:
        signal.signal(signal.SIGINT, previous)
    # Paths 0 and 1 finished (the interrupt came inside path 1's own code); 4 were not run.
    assert "2 of 6" in str(stopped.value)

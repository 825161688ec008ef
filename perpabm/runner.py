"""Monte Carlo over seeded paths, and sweeps over config points, on joblib.

Seeds: a root seed gives path k the seed sequence ``SeedSequence(seed,
spawn_key=(k,))``, and every config point of a sweep reuses the same path
seeds, so differences between points are paired (common random numbers).
Each path's result depends only on its config and its seed: not on
``n_jobs``, the backend or how paths are batched.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from scipy.stats import qmc
from tqdm import tqdm

from perpabm.config.scenario import ScenarioConfig
from perpabm.errors import ConfigError, one_of
from perpabm.model import PerpMarketModel
from perpabm.results import Results
from perpabm.storage import RunStore
from perpabm.storage import load as storage_load

DESIGNS = ("grid", "zip", "lhs", "sobol")
BACKENDS = ("loky", "threading", "sequential", "dask")


def path_seed(seed: int, path: int) -> np.random.SeedSequence:
    """The seed sequence of path `path` under root `seed`."""
    return np.random.SeedSequence(seed, spawn_key=(path,))


def run_path(config: ScenarioConfig, seed: int, path: int, point: int = 0,
             with_series: bool = False) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """Run one path; returns its summary row, events and (optionally) series, keyed."""
    model = PerpMarketModel(config, rng=path_seed(seed, path)).run()
    row = {"point": point, "path": path, "seed_entropy": str(seed),
           "seed_spawn_key": str(path), **model.summary()}
    events = model.events
    events.insert(0, "event", np.arange(len(events)))
    events.insert(0, "path", path)
    events.insert(0, "point", point)
    series = None
    if with_series:
        series = model.series.reset_index()
        series.insert(0, "path", path)
        series.insert(0, "point", point)
    return row, events, series


def _run_batch(tasks: list[tuple[ScenarioConfig, int, int]], seed: int,
               with_series: bool) -> list[tuple[str, Any]]:
    """Run a batch of (config, point, path); a path that raises becomes a failure record."""
    out: list[tuple[str, Any]] = []
    for config, point, path in tasks:
        try:
            out.append(("ok", run_path(config, seed, path, point, with_series)))
        except Exception as exc:  # recorded with its traceback; the other paths go on
            out.append(("failed", {
                "point": point, "path": path, "seed_entropy": str(seed),
                "seed_spawn_key": str(path), "error_type": type(exc).__name__,
                "message": str(exc), "traceback": traceback.format_exc()}))
    return out


def _check_run_args(n_paths: Any, seed: Any, n_jobs: Any, backend: Any,
                    batch_size: Any) -> None:
    for name, value, low in (("n_paths", n_paths, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ConfigError(f"{name} must be a whole number ≥ {low}; got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be a whole number ≥ 0; got {seed!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise ConfigError(f"n_jobs must be a non-zero whole number (-1: all cores); "
                          f"got {n_jobs!r}")
    if backend not in BACKENDS:
        raise ConfigError(one_of("backend", backend, BACKENDS))


def _execute(configs: Sequence[ScenarioConfig], n_paths: int, seed: int, n_jobs: int,
             backend: str, batch_size: int, with_series: bool, points: pd.DataFrame,
             store: RunStore | None = None, progress: bool = False,
             scheduler: str | None = None) -> Results:
    done = store.completed() if store is not None else set()
    tasks = [(config, point, path) for point, config in enumerate(configs)
             for path in range(n_paths) if (point, path) not in done]
    batches = [tasks[i:i + batch_size] for i in range(0, len(tasks), batch_size)]
    if backend == "dask":
        with _dask_client(scheduler, n_jobs), parallel_config(backend="dask"):
            outputs = Parallel(n_jobs=-1, return_as="generator_unordered")(
                delayed(_run_batch)(batch, seed, with_series) for batch in batches)
            finished = _collect(outputs, points, store, _bar(progress, len(tasks)))
    elif backend == "sequential" or n_jobs == 1:
        outputs: Iterable = (_run_batch(batch, seed, with_series) for batch in batches)
        finished = _collect(outputs, points, store, _bar(progress, len(tasks)))
    else:
        # One BLAS/OpenMP thread per worker: the paths are the parallelism.
        with parallel_config(backend=backend, inner_max_num_threads=1
                             if backend == "loky" else None):
            outputs = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_run_batch)(batch, seed, with_series) for batch in batches)
            finished = _collect(outputs, points, store, _bar(progress, len(tasks)))
    if store is not None:
        store.finish(failed=len(finished.failures) if len(finished.failures) else 0)
        return storage_load(store.out)
    return finished


@contextlib.contextmanager
def _dask_client(scheduler: str | None, n_jobs: int) -> Iterator[Any]:
    """A dask.distributed client: on `scheduler` (e.g. ``"tcp://host:8786"``), or on a
    LocalCluster of `n_jobs` single-threaded worker processes on loopback."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("backend 'dask' needs dask.distributed: pip install "
                          "'perpabm[dask]'") from None
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    workers = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def _bar(progress: bool, total: int) -> tqdm | None:
    """A progress bar on stderr counting finished paths (rate and ETA), if asked for."""
    return tqdm(total=total, unit="path", file=sys.stderr, smoothing=0.1) if progress else None


def _collect(outputs: Iterable[list[tuple[str, Any]]], points: pd.DataFrame,
             store: RunStore | None, bar: tqdm | None = None) -> Results:
    """Gather batches as they finish; with a store, write each batch as it arrives."""
    rows, events, series, failures = [], [], [], []
    for batch in outputs:
        if bar is not None:
            bar.update(len(batch))
        batch_rows, batch_events, batch_series, batch_failures = [], [], [], []
        for status, payload in batch:
            if status == "failed":
                batch_failures.append(payload)
                continue
            row, path_events, path_series = payload
            batch_rows.append(row)
            batch_events.append(path_events)
            batch_series.append(path_series)
        keyed = pd.DataFrame(batch_rows)
        if len(keyed) and len(points):
            keyed = keyed.merge(points, on="point", how="left")
        if store is not None:
            first = batch[0][1]
            first_point, first_path = ((first["point"], first["path"]) if batch[0][0] == "failed"
                                       else (first[0]["point"], first[0]["path"]))
            name = f"batch-p{first_point:06d}-k{first_path:08d}-n{len(batch)}"
            store.write_batch(name, {
                "paths": keyed,
                "events": pd.concat(batch_events, ignore_index=True) if batch_events else None,
                "series": (pd.concat([s for s in batch_series if s is not None],
                                     ignore_index=True)
                           if any(s is not None for s in batch_series) else None),
                "failures": pd.DataFrame(batch_failures) if batch_failures else None,
            })
        rows.extend(keyed.to_dict("records"))
        events.extend(batch_events)
        series.extend(batch_series)
        failures.extend(batch_failures)
    if bar is not None:
        bar.close()
    results = Results.from_parts(rows, events, series, points)
    results.failures = pd.DataFrame(failures)
    return results


def run_paths(config: ScenarioConfig, n_paths: int, seed: int, *, n_jobs: int = -1,
              backend: str = "loky", batch_size: int = 1, with_series: bool = False,
              out: str | None = None, progress: bool = False,
              scheduler: str | None = None) -> Results:
    """Run `n_paths` seeded paths of one scenario in parallel.

    `backend` is a joblib backend: ``"loky"`` processes (default),
    ``"threading"``, ``"sequential"``, or ``"dask"`` — dask.distributed on the
    cluster at `scheduler`, or a LocalCluster of `n_jobs` workers when none is
    given. `batch_size` paths go to a worker per task. The tables are sorted by
    path, so they do not depend on `n_jobs`, `backend` or `batch_size`. With
    `out`, results go to Parquet as they finish (see :mod:`perpabm.storage`) and
    a re-run resumes.
    """
    if not isinstance(config, ScenarioConfig):
        raise ConfigError(f"config must be a ScenarioConfig; got {type(config).__name__}")
    _check_run_args(n_paths, seed, n_jobs, backend, batch_size)
    points = pd.DataFrame({"point": [0]})
    store = None if out is None else RunStore(out, {
        "kind": "run", "config": config.to_dict(), "n_paths": int(n_paths),
        "seed": int(seed), "with_series": with_series, "points": points.to_dict("records")})
    return _execute([config], int(n_paths), int(seed), int(n_jobs), backend,
                    int(batch_size), with_series, points, store, progress, scheduler)


def design_points(grid: Mapping[str, Any], design: str = "grid", n_points: int | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:
    """The config points of a sweep: dicts of dotted path → value.

    - ``"grid"``: the Cartesian product of the value lists;
    - ``"zip"``: the lists taken side by side (equal lengths);
    - ``"lhs"`` / ``"sobol"``: `n_points` from a Latin hypercube or a scrambled
      Sobol sequence (scipy.stats.qmc, seeded) over ``(low, high)`` ranges;
      ranges whose ends are both integers give integers.
    """
    if design not in DESIGNS:
        raise ConfigError(one_of("design", design, DESIGNS))
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError("grid must map at least one dotted config path to its values")
    names = list(grid)
    if design in ("grid", "zip"):
        values = []
        for name in names:
            v = grid[name]
            if isinstance(v, str | bytes) or not isinstance(v, Iterable):
                raise ConfigError(f"grid[{name!r}] must be a list of values; got {v!r}")
            v = list(v)
            if not v:
                raise ConfigError(f"grid[{name!r}] is empty")
            values.append(v)
        if design == "zip":
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                raise ConfigError(f"a zip design needs lists of one length; got {sorted(lengths)}")
            combos = zip(*values, strict=True)
        else:
            combos = itertools.product(*values)
        return [dict(zip(names, combo, strict=True)) for combo in combos]
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
        raise ConfigError(f"n_points must be a whole number ≥ 1 for a {design} design; "
                          f"got {n_points!r}")
    bounds = []
    for name in names:
        r = grid[name]
        if isinstance(r, str | bytes) or not isinstance(r, Sequence) or len(r) != 2 or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in r) or not r[0] < r[1]:
            raise ConfigError(f"grid[{name!r}] must be a (low, high) range with low < high "
                              f"for a {design} design; got {r!r}")
        bounds.append(r)
    sampler = (qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(seed))
               if design == "lhs" else
               qmc.Sobol(d=len(names), scramble=True, rng=np.random.default_rng(seed)))
    unit = sampler.random(n_points)
    low = np.array([b[0] for b in bounds], dtype=float)
    high = np.array([b[1] for b in bounds], dtype=float)
    scaled = qmc.scale(unit, low, high)
    points = []
    for row in scaled:
        point = {}
        for name, value, (lo, hi) in zip(names, row, bounds, strict=True):
            integer = isinstance(lo, int) and isinstance(hi, int)
            point[name] = round(float(value)) if integer else float(value)
        points.append(point)
    return points


def sweep(config: ScenarioConfig, grid: Mapping[str, Any], n_paths: int, seed: int, *,
          design: str = "grid", n_points: int | None = None, n_jobs: int = -1,
          backend: str = "loky", batch_size: int = 1, with_series: bool = False,
          out: str | None = None, progress: bool = False,
          scheduler: str | None = None) -> Results:
    """Run `n_paths` paths at every point of a design over dotted config paths.

    Every point reuses the same path seeds (common random numbers), so
    differences between points are paired by path. With `out`, results go to
    Parquet as they finish and re-running the same sweep resumes; a different
    sweep into the same folder is refused.
    """
    if not isinstance(config, ScenarioConfig):
        raise ConfigError(f"config must be a ScenarioConfig; got {type(config).__name__}")
    _check_run_args(n_paths, seed, n_jobs, backend, batch_size)
    points = design_points(grid, design, n_points, int(seed))
    configs = []
    for point in points:
        point_config = config
        for path, value in point.items():
            point_config = point_config.replace(path, value)
        configs.append(point_config)
    table = pd.DataFrame(points)
    table.insert(0, "point", np.arange(len(points)))
    store = None if out is None else RunStore(out, {
        "kind": "sweep", "config": config.to_dict(), "grid": {k: list(v) if isinstance(
            v, tuple) else v for k, v in grid.items()}, "design": design,
        "n_points": n_points, "n_paths": int(n_paths), "seed": int(seed),
        "with_series": with_series, "points": table.to_dict("records")})
    return _execute(configs, int(n_paths), int(seed), int(n_jobs), backend, int(batch_size),
                    with_series, table, store, progress, scheduler)

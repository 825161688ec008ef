"""Monte Carlo over seeded paths, and sweeps over config points, on joblib.

Seeds: a root seed gives path k the seed sequence ``SeedSequence(seed,
spawn_key=(k,))``, and every config point of a sweep reuses the same path
seeds, so differences between points are paired (common random numbers).
Each path's result depends only on its config and its seed: not on
``n_jobs``, the backend or how paths are batched.

Faults: a path that raises becomes a row of ``Results.failures`` and the others
go on. A loky worker process that dies (killed, out of memory) loses the
batches it had not returned; that is reported as a RuntimeWarning, the lost
paths are run once more (``Results.retried``), and any lost again become
failures, which a resumed run retries. Input files (a replayed price CSV) are
read before anything runs, so a bad one is one ConfigError, not a failure per
path.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import math
import os
import re
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky.process_executor import TerminatedWorkerError
from tqdm import tqdm

from perpabm.adl import import_object
from perpabm.agents.classes import maker_class, trader_class
from perpabm.config.scenario import ScenarioConfig
from perpabm.errors import ConfigError, RunInterrupted, StorageError, one_of
from perpabm.market import index_log_returns
from perpabm.model import PerpMarketModel
from perpabm.results import Results
from perpabm.storage import RunStore, read_run

DESIGNS = ("grid", "zip", "lhs", "sobol", "saltelli")
BACKENDS = ("loky", "threading", "sequential", "dask")


def path_seed(seed: int, path: int) -> np.random.SeedSequence:
    """The seed sequence of path `path` under root `seed`."""
    return np.random.SeedSequence(seed, spawn_key=(path,))


def run_path(config: ScenarioConfig, seed: int, path: int, point: int = 0,
             with_series: bool = False) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """Run one path; returns its summary row, events and (optionally) series, keyed."""
    if not isinstance(config, ScenarioConfig):
        raise ConfigError(f"config must be a ScenarioConfig; got {type(config).__name__}")
    for name, value in (("seed", seed), ("path", path), ("point", point)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ConfigError(f"{name} must be a whole number ≥ 0; got {value!r}")
    if not isinstance(with_series, bool):
        raise ConfigError(f"with_series must be True or False; got {with_series!r}")
    model = PerpMarketModel(config, rng=path_seed(seed, path)).run()
    row = {"point": point, "path": path, "seed_entropy": str(seed),
           "seed_spawn_key": str(path), **model.summary()}
    events = model.keyed_events(point=point, path=path)
    series = None
    if with_series:
        series = model.series.reset_index()
        series.insert(0, "path", path)
        series.insert(0, "point", point)
    return row, events, series


def _run_batch(tasks: list[tuple[ScenarioConfig, int, int]], seed: int,
               with_series: bool) -> list[tuple[str, Any]]:
    """Run a batch of (config, point, path); a path that raises becomes a failure record.
    A config carries its custom ADL rules (``exchange.adl_rules``), so a worker process
    ranks as this one does."""
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


def _check_run_args(config: Any, n_paths: Any, seed: Any, n_jobs: Any, backend: Any,
                    batch_size: Any, with_series: Any, progress: Any, out: Any,
                    scheduler: Any) -> None:
    """The one check of the arguments :func:`run_paths` and :func:`sweep` share: a
    ConfigError naming the first bad one."""
    if not isinstance(config, ScenarioConfig):
        raise ConfigError(f"config must be a ScenarioConfig; got {type(config).__name__}")
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
    for name, value in (("with_series", with_series), ("progress", progress)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False; got {value!r}")
    if out is not None and (not isinstance(out, str | os.PathLike) or not str(out)):
        raise ConfigError(f"out must be a folder path or None; got {out!r}")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler):
        raise ConfigError(f"scheduler must be a dask scheduler address such as "
                          f"'tcp://host:8786', or None; got {scheduler!r}")


def _check_inputs(configs: Sequence[ScenarioConfig]) -> None:
    """Read every input the paths will need — a replayed price CSV, the custom agent
    classes and ADL rules — before anything runs or is written: a bad one is one
    ConfigError here, not a failure of every path."""
    seen = set()
    for config in configs:
        config.custom_code()  # imports every custom rule and class
        trader_class(config)  # and checks the agents' base classes
        maker_class(config)
        market, minutes = config.market, round(config.run.steps * config.run.step_minutes)
        if market.process != "replay" or (market, minutes) in seen:
            continue
        seen.add((market, minutes))
        index_log_returns(market, minutes, np.random.default_rng(0))


def _execute(configs: Mapping[int, ScenarioConfig], n_paths: int, seed: int, n_jobs: int,
             backend: str, batch_size: int, with_series: bool, points: pd.DataFrame,
             store: RunStore | None = None, progress: bool = False,
             scheduler: str | None = None) -> Results:
    """Run paths 0 … `n_paths` − 1 of every point of `configs` (point index → config) that
    `store` does not hold yet; the Results of exactly those points and paths."""
    done = store.completed() if store is not None else set()
    tasks = [(config, point, path) for point, config in configs.items()
             for path in range(n_paths) if (point, path) not in done]
    collector = _Collector(points, store, _bar(progress, len(tasks)), tasks, batch_size)
    collector.interrupt = _Interrupt()

    def dispatch(todo: list[tuple[ScenarioConfig, int, int]]) -> str | None:
        return _dispatch(todo, collector, seed, n_jobs, backend, batch_size, with_series,
                         scheduler)

    try:
        with collector.interrupt:
            died = dispatch(tasks)
        if died is not None:
            lost = collector.missing(tasks)
            warnings.warn(f"a worker process died ({died}); running its {len(lost)} "
                          f"unfinished path(s) again", RuntimeWarning, stacklevel=3)
            collector.retried = [{"point": int(point), "path": int(path), "error": died}
                                 for _, point, path in lost]
            with collector.interrupt:
                died = dispatch(lost)
            if died is not None:
                collector.add([("failed", _lost_record(point, path, seed, died))
                               for _, point, path in collector.missing(lost)])
    except StorageError as exc:
        if store is not None:
            store.interrupted(str(exc))
        raise
    except KeyboardInterrupt:
        planned = len(configs) * n_paths
        if store is None:
            raise RunInterrupted(len(collector.keys), planned, None) from None
        store.interrupted("stopped by the user")
        saved = sum(1 for point, path in store.saved() if point in configs and path < n_paths)
        raise RunInterrupted(saved, planned, str(store.out)) from None
    finally:
        if collector.bar is not None:
            collector.bar.close()
    finished = collector.results()
    if store is not None:
        store.finish(failed=len(finished.failures), retried=collector.retried)
        return Results.from_stored(read_run(store.out, {point: n_paths for point in configs}))
    return finished


def _dispatch(tasks: list[tuple[ScenarioConfig, int, int]], collector: _Collector, seed: int,
              n_jobs: int, backend: str, batch_size: int, with_series: bool,
              scheduler: str | None) -> str | None:
    """Run `tasks` in batches into `collector`; returns None, or — when a loky worker
    process died, which loses every batch not yet collected — what killed it."""
    batches = [tasks[i:i + batch_size] for i in range(0, len(tasks), batch_size)]
    jobs = (delayed(_run_batch)(batch, seed, with_series) for batch in batches)
    if backend == "sequential" or (n_jobs == 1 and backend != "dask"):
        for batch in batches:
            collector.add(_run_batch(batch, seed, with_series))
        return None
    if backend == "dask":
        with _dask_client(scheduler, n_jobs), parallel_config(backend="dask"):
            _consume(Parallel(n_jobs=-1, return_as="generator_unordered")(jobs), collector)
        return None
    try:
        # One BLAS/OpenMP thread per worker: the paths are the parallelism.
        with parallel_config(backend=backend, inner_max_num_threads=1
                             if backend == "loky" else None):
            _consume(Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs), collector)
    except TerminatedWorkerError as exc:
        codes = re.search(r"exit codes of the workers are (\{[^}]*\})", str(exc))
        return f"exit codes {codes.group(1)}" if codes else type(exc).__name__
    return None


def _consume(outputs: Iterator[list[tuple[str, Any]]], collector: _Collector) -> None:
    """Collect batches as they arrive; if collecting fails (a full disk), cancel the rest
    quietly (joblib warns about results left unused)."""
    try:
        for batch in outputs:
            collector.add(batch)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            outputs.close()  # type: ignore[attr-defined]


def _lost_record(point: int, path: int, seed: int, died: str) -> dict[str, Any]:
    """The failure record of a path whose worker process died on it twice."""
    return {"point": point, "path": path, "seed_entropy": str(seed),
            "seed_spawn_key": str(path), "error_type": "TerminatedWorkerError",
            "message": f"the worker process running this path died twice ({died})",
            "traceback": ""}


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


CHUNKS_PER_RUN = 64  # Parquet files per table that a run aims for
MAX_CHUNK_PATHS = 256  # paths per file at most (what a crash can cost on resume)


class _Interrupt:
    """Ctrl-C during a run, never lost. Python drops an exception raised inside a
    finaliser or a weak-reference callback, printing "Exception ignored in …" — and
    Mesa's agent sets hold their agents by weak reference, so a model torn down at the
    end of a path runs many such callbacks, and a KeyboardInterrupt landing in one
    would vanish while the run went on. Inside ``with``, Ctrl-C is recorded before it
    raises; :meth:`raise_if_seen`, called after every batch, raises it again. Only
    where Python's own handler is installed (the main thread, SIGINT not ignored or
    handled by the caller) is anything changed."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __enter__(self) -> _Interrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def raise_if_seen(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C came and was swallowed on its way."""
        if self.seen:
            raise KeyboardInterrupt


class _Collector:
    """Gathers batches as they finish; with a store, writes chunks of consecutive tasks.

    A chunk is written once every path in it has come back, sorted by key, under the
    name of its first path: so the files are the same whatever the order in which
    workers finish (byte-identical across runs and ``n_jobs``), and a run of many
    paths is a few dozen files per table rather than one per path, which is what
    makes a large results folder quick to load. A crash loses the paths of the
    chunks not yet complete; a resumed run computes them again.
    """

    def __init__(self, points: pd.DataFrame, store: RunStore | None,
                 bar: tqdm | None = None,
                 tasks: Sequence[tuple[ScenarioConfig, int, int]] = (),
                 batch_size: int = 1) -> None:
        self.points, self.store, self.bar = points, store, bar
        self.rows: list[dict] = []
        self.events: list[pd.DataFrame] = []
        self.series: list[pd.DataFrame | None] = []
        self.failures: list[dict[str, Any]] = []
        self.retried: list[dict[str, Any]] = []
        self.keys: set[tuple[int, int]] = set()
        size = min(max(math.ceil(len(tasks) / CHUNKS_PER_RUN), 1), MAX_CHUNK_PATHS)
        size = max(batch_size, batch_size * round(size / batch_size))  # whole batches
        self.chunk_of = {(point, path): i // size for i, (_, point, path) in enumerate(tasks)}
        self.waiting: dict[int, int] = {}
        for chunk in self.chunk_of.values():
            self.waiting[chunk] = self.waiting.get(chunk, 0) + 1
        self.pending: dict[int, list[tuple[str, Any]]] = {}
        self.interrupt: _Interrupt | None = None

    def missing(self, tasks: list[tuple[ScenarioConfig, int, int]]
                ) -> list[tuple[ScenarioConfig, int, int]]:
        """The tasks not collected yet."""
        return [task for task in tasks if (task[1], task[2]) not in self.keys]

    def add(self, batch: list[tuple[str, Any]]) -> None:
        if not batch:
            return
        batch_rows, batch_events, batch_series, batch_failures = [], [], [], []
        for status, payload in batch:
            if status == "failed":
                batch_failures.append(payload)
                continue
            row, path_events, path_series = payload
            batch_rows.append(row)
            batch_events.append(path_events)
            batch_series.append(path_series)
        if self.store is not None:
            for item in batch:
                self._stage(item)
        if self.bar is not None:
            self.bar.update(len(batch))
        keyed = self._keyed(batch_rows)
        self.rows.extend(keyed.to_dict("records"))
        self.events.extend(batch_events)
        self.series.extend(batch_series)
        self.failures.extend(batch_failures)
        for row in batch_rows:
            self.keys.add((row["point"], row["path"]))
        for failure in batch_failures:
            self.keys.add((failure["point"], failure["path"]))
        if self.interrupt is not None:
            self.interrupt.raise_if_seen()

    def _keyed(self, rows: list[dict]) -> pd.DataFrame:
        keyed = pd.DataFrame(rows)
        if len(keyed) and len(self.points):
            keyed = keyed.merge(self.points, on="point", how="left")
        return keyed

    def _stage(self, item: tuple[str, Any]) -> None:
        """Hold one path's output until its chunk is complete, then write the chunk."""
        status, payload = item
        record = payload if status == "failed" else payload[0]
        key = (record["point"], record["path"])
        chunk = self.chunk_of.get(key)
        if chunk is None:  # not a task of this run's plan: written on its own
            self._write([item])
            return
        self.pending.setdefault(chunk, []).append(item)
        self.waiting[chunk] -= 1
        if self.waiting[chunk] == 0:
            self._write(self.pending.pop(chunk))

    def _write(self, items: list[tuple[str, Any]]) -> None:
        def key(item: tuple[str, Any]) -> tuple[int, int]:
            record = item[1] if item[0] == "failed" else item[1][0]
            return record["point"], record["path"]

        items = sorted(items, key=key)
        done = [payload for status, payload in items if status != "failed"]
        failed = [payload for status, payload in items if status == "failed"]
        series = [s for _, _, s in done if s is not None]
        first_point, first_path = key(items[0])
        assert self.store is not None
        self.store.write_batch(f"batch-p{first_point:06d}-k{first_path:08d}-n{len(items)}", {
            "paths": self._keyed([row for row, _, _ in done]),
            "events": pd.concat([e for _, e, _ in done], ignore_index=True) if done else None,
            "series": pd.concat(series, ignore_index=True) if series else None,
            "failures": pd.DataFrame(failed) if failed else None,
        })

    def results(self) -> Results:
        results = Results.from_parts(self.rows, self.events, self.series, self.points)
        results.failures = pd.DataFrame(self.failures)
        results.retried = pd.DataFrame(self.retried)
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
    `out`, results go to Parquet as they finish (see :mod:`perpabm.storage`): a
    re-run resumes, and a re-run with more paths computes only the new ones.
    Ctrl-C raises :class:`perpabm.errors.RunInterrupted`, saying what was saved.
    """
    _check_run_args(config, n_paths, seed, n_jobs, backend, batch_size, with_series, progress,
                    out, scheduler)
    _check_inputs([config])
    _check_memory([config], n_jobs, backend, scheduler)
    store = None if out is None else RunStore(out, {
        "kind": "run", "config": config.to_dict(), "seed": int(seed),
        "with_series": with_series, "custom_code": custom_code([config])}, [{}], int(n_paths))
    point = 0 if store is None else store.point_index[0]
    return _execute({point: config}, int(n_paths), int(seed), int(n_jobs), backend,
                    int(batch_size), with_series, pd.DataFrame({"point": [point]}), store,
                    progress, scheduler)


def design_points(grid: Mapping[str, Any], design: str = "grid", n_points: int | None = None,
                  seed: int = 0) -> list[dict[str, Any]]:
    """The config points of a sweep: dicts of dotted path → value.

    - ``"grid"``: the Cartesian product of the value lists;
    - ``"zip"``: the lists taken side by side (equal lengths);
    - ``"lhs"`` / ``"sobol"``: `n_points` from a Latin hypercube or a scrambled
      Sobol sequence (scipy.stats.qmc, seeded) over ``(low, high)`` ranges;
      ranges whose ends are both integers give integers;
    - ``"saltelli"``: the design Sobol indices are estimated from
      (:func:`perpabm.analysis.sobol_indices`): `n_points` base points of a scrambled
      Sobol sequence in 2·d dimensions, and for each, SALib's rows A, AB₁ … AB_d, B
      (Saltelli 2002; Saltelli et al. 2010) — n_points · (d + 2) points, in that
      order, from ``SALib.sample.sobol.sample`` without second-order rows. A factor
      is a ``(low, high)`` range as above, or a list of levels (strings, or any list
      that is not a numeric pair: a ranking rule, a venue preset), each level taking
      an equal share of [0, 1). The first m · (d + 2) points are the design of
      m base points, so a smaller design is a prefix of a larger one.
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
                raise ConfigError(f"grid lists must all have one length for a zip design; "
                                  f"got lengths {sorted(lengths)}")
            combos = zip(*values, strict=True)
        else:
            combos = itertools.product(*values)
        return [dict(zip(names, combo, strict=True)) for combo in combos]
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
        size = " (its base points: it has n_points · (factors + 2))" * (design == "saltelli")
        raise ConfigError(f"n_points must be a whole number ≥ 1 for a {design} design"
                          f"{size}; got {n_points!r}")
    if design == "saltelli":
        return _saltelli_points(grid, n_points, seed)
    bounds = []
    for name in names:
        r = grid[name]
        if not (_is_range(r) and r[0] < r[1]):
            raise ConfigError(f"grid[{name!r}] must be a (low, high) range with low < high "
                              f"for a {design} design; got {r!r}")
        bounds.append(r)
    from scipy.stats import qmc  # scipy.stats is slow to import: only for these designs

    sampler = (qmc.LatinHypercube(d=len(names), rng=np.random.default_rng(seed))
               if design == "lhs" else
               qmc.Sobol(d=len(names), scramble=True, rng=np.random.default_rng(seed)))
    unit = sampler.random(n_points)
    low = np.array([b[0] for b in bounds], dtype=float)
    high = np.array([b[1] for b in bounds], dtype=float)
    scaled = qmc.scale(unit, low, high)
    return [{name: _in_range(value, r) for name, value, r in zip(names, row, bounds,
                                                                 strict=True)}
            for row in scaled]


def _is_range(values: Any) -> bool:
    """Whether `values` is a (low, high) pair of finite numbers."""
    return (isinstance(values, Sequence) and not isinstance(values, str | bytes)
            and len(values) == 2 and all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in values))


def _in_range(value: float, bounds: Sequence[float]) -> int | float:
    """A design's draw within the range `bounds`: a whole number when both ends are."""
    integer = isinstance(bounds[0], int) and isinstance(bounds[1], int)
    return round(float(value)) if integer else float(value)


def _saltelli_points(grid: Mapping[str, Any], n_points: int,
                     seed: int) -> list[dict[str, Any]]:
    """The ``"saltelli"`` design of :func:`design_points`."""
    levels: dict[str, list[Any]] = {}
    bounds = []
    for name, values in grid.items():
        if _is_range(values):
            if not values[0] < values[1]:
                raise ConfigError(f"grid[{name!r}] must be a (low, high) range with low < "
                                  f"high, or a list of levels; got {values!r}")
            bounds.append([float(values[0]), float(values[1])])
        elif (isinstance(values, Sequence) and not isinstance(values, str | bytes)
              and len(values) >= 2):
            levels[name] = list(values)
            bounds.append([0.0, float(len(values))])
        else:
            raise ConfigError(f"grid[{name!r}] must be a (low, high) range or a list of at "
                              f"least two levels for a saltelli design; got {values!r}")
    from SALib.sample import sobol as saltelli  # SALib and scipy.stats: only for this design

    problem = {"num_vars": len(grid), "names": list(grid), "bounds": bounds}
    rows = saltelli.sample(problem, n_points, calc_second_order=False, seed=seed)
    points = []
    for row in rows:
        point = {}
        for (name, values), value in zip(grid.items(), row, strict=True):
            if name in levels:  # [k, k + 1) is level k; the top end belongs to the last
                point[name] = levels[name][min(int(value), len(levels[name]) - 1)]
            else:
                point[name] = _in_range(value, values)
        points.append(point)
    return points


def point_config(config: ScenarioConfig, point: Mapping[str, Any]) -> ScenarioConfig:
    """`config` with a design point's dotted settings applied
    (:meth:`ScenarioConfig.with_settings`: a venue preset first)."""
    return config.with_settings(point)


def sweep(config: ScenarioConfig, grid: Mapping[str, Any], n_paths: int, seed: int, *,
          design: str = "grid", n_points: int | None = None, n_jobs: int = -1,
          backend: str = "loky", batch_size: int = 1, with_series: bool = False,
          out: str | None = None, progress: bool = False,
          scheduler: str | None = None) -> Results:
    """Run `n_paths` paths at every point of a design over dotted config paths.

    Every point reuses the same path seeds (common random numbers), so
    differences between points are paired by path. With `out`, results go to
    Parquet as they finish and re-running the same sweep resumes. A folder
    grows: more paths, or more values in a grid (more points of a Sobol design),
    compute only what is new, because a point is matched by its settings and a
    path's seed depends on its index alone. A different sweep (base config,
    seed, design, swept settings, series, custom code) into the same folder is
    refused. Ctrl-C raises :class:`perpabm.errors.RunInterrupted`.
    """
    _check_run_args(config, n_paths, seed, n_jobs, backend, batch_size, with_series, progress,
                    out, scheduler)
    settings = design_points(grid, design, n_points, int(seed))
    configs = [point_config(config, point) for point in settings]
    _check_inputs(configs)
    _check_memory(configs, n_jobs, backend, scheduler)
    store = None
    if out is not None:  # what must match for the folder's paths to be shared
        identity: dict[str, Any] = {
            "kind": "sweep", "config": config.to_dict(), "design": design,
            "factors": sorted(grid), "seed": int(seed), "with_series": with_series,
            "custom_code": custom_code(configs)}
        if design in ("lhs", "sobol", "saltelli"):  # the points depend on the ranges
            identity["grid"] = {k: list(v) for k, v in grid.items()}
        if design in ("lhs", "saltelli"):  # (lhs, saltelli: and on n)
            identity["n_points"] = n_points
        store = RunStore(out, identity, settings, int(n_paths))
    indices = list(range(len(settings))) if store is None else store.point_index
    by_point = dict(zip(indices, configs, strict=True))  # a point given twice runs once
    table = pd.DataFrame(settings)
    table.insert(0, "point", indices)
    table = table.drop_duplicates("point").sort_values("point").reset_index(drop=True)
    return _execute(dict(sorted(by_point.items())), int(n_paths), int(seed), int(n_jobs),
                    backend, int(batch_size), with_series, table, store, progress, scheduler)


# ---------------------------------------------------------------- what a run records and needs


def code_fingerprint(code: Any) -> str:
    """A short SHA-256 of a custom rule's or class's source (its compiled code when the
    source is not available), so that a resumed run can tell two functions registered
    under one name apart. An import path ``"package.module:name"`` is imported first;
    one that does not import is fingerprinted as its text."""
    if isinstance(code, str):
        try:
            code = import_object(code)
        except (ImportError, AttributeError, ValueError):
            return "unimportable:" + code
    try:
        text = inspect.getsource(code).encode()
    except (OSError, TypeError):
        compiled = getattr(code, "__code__", None)
        text = (compiled.co_code + repr(compiled.co_consts).encode() if compiled is not None
                else repr(code).encode())
    return "sha256:" + hashlib.sha256(text).hexdigest()[:FINGERPRINT_CHARS]


FINGERPRINT_CHARS = 16  # 64 bits: enough to tell two versions of one function apart


def custom_code(configs: Iterable[ScenarioConfig]) -> dict[str, str]:
    """The fingerprint of every custom ADL rule and agent class the configs carry, keyed
    as :meth:`ScenarioConfig.custom_code` keys them (``"exchange.adl_rules.<name>"``,
    ``"agent_classes.<name>"``)."""
    out: dict[str, str] = {}
    for config in configs:
        for key, code in config.custom_code().items():
            if key not in out:  # the points of a sweep share their base config's code
                out[key] = code_fingerprint(code)
    return dict(sorted(out.items()))


BYTES_PER_TRADER = 530
"""Peak resident memory a trader adds to a path (ledger, population and book rows),
measured: 100 000 → 400 000 traders over 30 steps raised the peak RSS by 150 MiB."""
BYTES_PER_STEP = 210
"""Per step of the run (index path, history, series), measured: 100 000 steps, 20 MiB."""
PROCESS_BYTES = 260 * 2**20
"""A worker process with numpy, numba, pandas and Mesa loaded, before any path (peak RSS of
a path of 0 traders and 30 steps: 257 MiB)."""


def path_memory(config: ScenarioConfig) -> int:
    """Estimated peak memory of a process running one path of `config`, bytes."""
    accounts = config.traders.count + config.funds.count  # a fund is a trader's kind
    return PROCESS_BYTES + BYTES_PER_TRADER * accounts + BYTES_PER_STEP * config.run.steps


def available_memory() -> int | None:
    """Memory this process may still take, bytes: the least of the system's available
    memory, the cgroup's limit less its use, and the address-space limit (ulimit -v)
    less this process's size; None where none can be read."""
    limits = []
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/meminfo", encoding="ascii"):
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        cgroup = "/sys/fs/cgroup/"
        limit = open(cgroup + "memory.max", encoding="ascii").read().strip()
        if limit != "max":
            used = int(open(cgroup + "memory.current", encoding="ascii").read())
            limits.append(int(limit) - used)
    with contextlib.suppress(OSError, ValueError, ImportError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            for line in open("/proc/self/status", encoding="ascii"):
                if line.startswith("VmSize:"):
                    limits.append(soft - int(line.split()[1]) * 1024)
    return max(0, min(limits)) if limits else None


def _check_memory(configs: Sequence[ScenarioConfig], n_jobs: int, backend: str,
                  scheduler: str | None) -> None:
    """Refuse, before anything runs, a path too large for this machine's memory, naming
    traders.count and the estimate (a remote dask cluster's memory is not ours to see)."""
    available = available_memory()
    if available is None or scheduler is not None:
        return
    largest = max(configs, key=path_memory)
    in_process = backend in ("sequential", "threading") or n_jobs == 1
    need = path_memory(largest) - (PROCESS_BYTES if in_process else 0)  # this one is loaded
    workers = 1 if in_process else (n_jobs if n_jobs > 0 else
                                    max(1, (os.cpu_count() or 1) + 1 + n_jobs))
    gib = 2**30
    if need > available:
        raise ConfigError(
            f"traders.count = {largest.traders.count:,} with run.steps = "
            f"{largest.run.steps:,} needs about {need / gib:.1f} GiB a path and "
            f"{available / gib:.1f} GiB is available: use fewer traders or steps")
    if workers * need > available:
        raise ConfigError(
            f"traders.count = {largest.traders.count:,} needs about {need / gib:.1f} GiB a "
            f"path, {workers * need / gib:.1f} GiB for {workers} workers at once, and "
            f"{available / gib:.1f} GiB is available: use n_jobs = "
            f"{max(1, int(available // need))} or fewer traders")

"""Results: the tidy tables of a Monte Carlo run or sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from perpabm import storage
from perpabm.errors import StorageError

KEYS = ["point", "path"]
TABLES = ("paths", "events", "series", "points", "failures", "retried", "missing")


@dataclass
class Results:
    """Tables of one run or sweep, keyed by config ``point`` and ``path`` index.

    - ``paths``: one row per path — the point's parameter values, the path's seed
      (``seed_entropy``, ``seed_spawn_key``) and every metric of
      :meth:`PerpMarketModel.summary`;
    - ``events``: every event of every path (the exchange's event table plus the keys);
    - ``series``: the per-step series of every path, when they were asked for;
    - ``points``: one row per config point with its parameter values;
    - ``failures``: paths that raised — point, path, seed, error type, message and
      traceback (the other paths are unaffected);
    - ``retried``: paths that had not finished when a worker process died (killed, out
      of memory) and were therefore run again — point, path and the error — in the
      last invocation that ran paths (a process pool cannot say which of them the dead
      worker held, so all unfinished ones are listed; a clean resume clears the list);
      their rows are in ``paths`` like any other's;
    - ``missing``: planned (point, path) pairs that are neither in ``paths`` nor in
      ``failures`` — a run stopped before its end, a deleted or damaged batch; loading
      a folder with any warns, and running the same command again computes them.
    """

    paths: pd.DataFrame
    events: pd.DataFrame
    series: pd.DataFrame
    points: pd.DataFrame = field(default_factory=pd.DataFrame)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    retried: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=KEYS))

    @classmethod
    def load(cls, out: str | Path) -> Results:
        """Read a finished or partial run from its output folder (JSON and Parquet only;
        :func:`perpabm.storage.read_run`): a damaged batch is left out, and planned paths
        that are not there are listed in ``missing``, each with a RuntimeWarning."""
        return cls.from_stored(storage.read_run(out))

    @classmethod
    def from_stored(cls, stored: storage.StoredRun) -> Results:
        """Assemble what :func:`perpabm.storage.read_run` read."""
        results = cls.from_parts(stored.paths, stored.events, stored.series, stored.points)
        results.failures = stored.failures
        results.retried = stored.retried
        results.missing = stored.missing
        return results

    @classmethod
    def from_parts(cls, paths: list[dict], events: list[pd.DataFrame],
                   series: list[pd.DataFrame], points: pd.DataFrame) -> Results:
        """Assemble from per-path pieces in any order; rows come out sorted by key."""
        path_frame = pd.DataFrame(paths)
        if len(path_frame):
            path_frame = path_frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
        return cls(
            paths=path_frame,
            events=_sorted_concat(events, [*KEYS, "event"]),
            series=_sorted_concat(series, [*KEYS, "step"]),
            points=points,
        )

    def to_csv(self, folder: str | Path) -> list[Path]:
        """Write every non-empty table (paths, events, series, points, failures, retried,
        missing) as ``<table>.csv`` in `folder` (created); the files written, in order."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot write to {folder}: {exc.strerror or exc}") from None
        written = []
        for name in TABLES:
            frame = getattr(self, name)
            if len(frame):
                target = folder / f"{name}.csv"
                storage.write_csv(target, frame)
                written.append(target)
        return written

    def __repr__(self) -> str:
        n_points = len(self.points) if len(self.points) else self.paths["point"].nunique()
        return (f"Results({len(self.paths)} paths over {n_points} points, "
                f"{len(self.events)} events, {len(self.series)} series rows)")


def _sorted_concat(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=keys)
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)

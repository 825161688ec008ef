"""Results on disk: Parquet chunks written as paths finish, a manifest, and resume.

Layout of an output folder::

    manifest.json            what was run (config, design, seeds, versions) and its status
    paths/batch-*.parquet    one file per batch: a chunk of consecutive paths (the runner
                             writes a few dozen per table), named after its first path
    events/batch-*.parquet   their events
    series/batch-*.parquet   their series (when asked for)
    failures/batch-*.parquet paths that raised: point, path, seed, error, traceback

What a crash can and cannot do:

- Every file is written to a temporary name, flushed to disk and renamed into
  place, so no half-written file ever has a real name.
- A batch's events, series and failures files are written first and its paths
  file last: the paths file commits the batch, and its Parquet metadata names
  the other tables the batch wrote. Until it is in place, the batch does not
  count.
- Every data page carries a CRC checksum, verified whenever a chunk is read.
- On resume, a batch with a file that does not read back in full (truncated,
  corrupt, missing) is removed and its paths are computed again, as are the
  files of batches that never committed and leftover temporary files.
  :func:`load` reads intact committed batches only, and warns about the others.

Re-running the same sweep into the same folder skips the paths already there,
and a run grows: asking the folder for more paths, or a sweep for more design
points, computes only the new ones (a path's seed depends on its index alone,
and a point is matched by its settings). The manifest keeps every point with
the paths planned for it, so reading a folder says what is missing. A
different run — another base config, seed, design, set of factors, series
choice, or custom code (ADL rules, agent classes: fingerprinted) — is refused,
as is a folder written in another results format (the message names the
perpabm version that wrote it). Only JSON and Parquet are read back — never
pickle.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from perpabm.errors import ConfigError, StorageError

FORMAT = 3  # 3: the manifest keeps its points and planned paths apart from the identity
TABLES = ("paths", "events", "series", "failures")
PACKAGES = ("perpabm", "mesa", "numpy", "numba", "scipy", "pandas", "pyarrow", "joblib")
GIT_TIMEOUT_SECONDS = 5.0
BATCH_KEY = b"perpabm.batch"  # paths-file metadata: the other tables its batch wrote
UNREADABLE = (OSError, ValueError, TypeError, KeyError, pa.ArrowException)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def environment() -> dict[str, Any]:
    """What a run needs to be reproduced: the Python and package versions, the platform,
    and — when perpabm is installed from a git checkout — its commit, with ``dirty``
    true if the checkout had uncommitted changes."""
    out: dict[str, Any] = {"versions": _versions(),
                           "platform": {"system": platform.platform(),
                                        "machine": platform.machine(),
                                        "cpus": os.cpu_count()}}
    source = source_revision()
    if source is not None:
        out["source"] = source
    return out


def source_revision() -> dict[str, Any] | None:
    """The git commit of the checkout perpabm is imported from, and whether it had
    uncommitted changes; None when it is not a checkout or git is not there."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True,
                                timeout=GIT_TIMEOUT_SECONDS).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                check=True, timeout=GIT_TIMEOUT_SECONDS).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def write_durably(path: Path, write: Callable[[Any], None]) -> None:
    """Write through `write(handle)` to a temporary file, flush it to disk and rename it
    to `path`; on any error the temporary file is removed and the error raised."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the folder itself is gone or read-only: nothing was left under a real name
        raise


def _write_text(path: Path, text: str) -> None:
    write_durably(path, lambda handle: handle.write(text.encode("utf-8")))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Write `frame` as CSV to `path`, durably (a temporary file renamed into place);
    StorageError naming the file if it cannot be written."""
    try:
        _write_text(path, frame.to_csv(index=False))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_parquet(path: Path, frame: pd.DataFrame, extra: dict[bytes, bytes] | None = None
                   ) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if extra:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    write_durably(path, lambda handle: pq.write_table(table, handle, write_page_checksum=True))


def read_manifest(out: Path) -> dict[str, Any]:
    """The manifest of results folder `out`, checked: JSON, a perpabm manifest, this format.

    Raises ConfigError naming the folder for a missing, unreadable or damaged manifest,
    and, for results written in another format, naming the perpabm version that wrote
    them.
    """
    path = out / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{out} has no manifest.json: not a perpabm results folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}): a damaged results "
                          f"folder") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise ConfigError(f"{path} is not a perpabm manifest (it has no results format)")
    if manifest["format"] != FORMAT:
        versions = manifest.get("versions")
        writer = versions.get("perpabm") if isinstance(versions, dict) else None
        raise ConfigError(
            f"{out} was written by perpabm {writer or '(unknown version)'} in results "
            f"format {manifest['format']!r}; this perpabm {_versions()['perpabm']} reads "
            f"format {FORMAT} only: read it with the version that wrote it, or run again "
            f"into a new folder")
    if not isinstance(manifest.get("identity"), dict):
        raise ConfigError(f"{path} does not say what was run (no identity): a damaged "
                          f"results folder")
    if not isinstance(manifest.get("points"), list) or not isinstance(
            manifest.get("planned"), dict):
        raise ConfigError(f"{path} does not list its points and planned paths: a damaged "
                          f"results folder")
    return manifest


def _batch_tables(out: Path, name: str) -> list[str]:
    """The tables besides paths that the batch `name` wrote, from its paths file's metadata
    (files written before batches named their tables: whichever exist)."""
    listed = (pq.read_schema(out / "paths" / name).metadata or {}).get(BATCH_KEY)
    if listed is None:
        return [t for t in TABLES[1:] if (out / t / name).exists()]
    tables = json.loads(listed)["tables"]
    if not isinstance(tables, list) or not set(tables) <= set(TABLES[1:]):
        raise ValueError(f"batch {name} lists unknown tables {tables!r}")
    return tables


def _read_batch(out: Path, name: str, read: Callable[[Path], Any]) -> dict[str, Any] | None:
    """Every table of committed batch `name`, each read in full with `read`; None if any
    file is missing, truncated or corrupt (checksums are verified)."""
    try:
        tables = _batch_tables(out, name)
        return {table: read(out / table / name) for table in ("paths", *tables)}
    except UNREADABLE:
        return None


def _verify(path: Path) -> pa.Table:
    return pq.read_table(path, page_checksum_verification=True)


def _frame(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path, page_checksum_verification=True)


def _chunks(out: Path, table: str) -> list[Path]:
    return sorted((out / table).glob("batch-*.parquet"))


def _plain(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


class RunStore:
    """An output folder for one run or sweep: checks identity, knows what is done, grows,
    writes chunks.

    `identity` is what must match for paths to be shared (base config, seed, design,
    factors, custom code…); `points` are the design points asked for now (dotted
    setting → value) and `n_paths` the paths asked for at each. A point already in the
    folder keeps its index; a new one takes the next. :attr:`point_index` gives, for
    each of `points` in order, its index in the folder.
    """

    def __init__(self, out: str | Path, identity: dict[str, Any],
                 points: list[dict[str, Any]] | None = None, n_paths: int = 0) -> None:
        self.out = Path(out)
        self.identity = _plain(identity)
        self.done: set[tuple[int, int]] = set()
        self._committing: tuple[Path, set[tuple[int, int]]] | None = None  # see saved()
        existing = None
        if (self.out / "manifest.json").exists():
            existing = read_manifest(self.out)
            if existing["identity"] != self.identity:
                raise ConfigError(_difference(self.out, existing["identity"], self.identity))
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            for table in TABLES:
                (self.out / table).mkdir(exist_ok=True)
            if existing is None:
                self.manifest = {"format": FORMAT, "identity": self.identity,
                                 **environment(), "started": time.time(),
                                 "finished": None, "status": "running",
                                 "points": [], "planned": {}}
            else:
                self.manifest = existing
                self.manifest.setdefault("resumed", []).append(
                    {"time": time.time(), **environment()})
                self.manifest["status"] = "running"
            self.point_index = self._plan([{} if p is None else p for p in points or [{}]],
                                          n_paths)
            self._write_manifest()
        except OSError as exc:
            raise ConfigError(f"cannot write to out directory {self.out}: "
                              f"{exc.strerror or exc}") from None

    def _plan(self, points: list[dict[str, Any]], n_paths: int) -> list[int]:
        """Match `points` to the folder's (by their settings), add the new ones, and raise
        each one's planned paths to `n_paths`; their indices in the folder."""
        known = {json.dumps(_settings(p), sort_keys=True): p["point"]
                 for p in self.manifest["points"]}
        planned = self.manifest["planned"]
        indices = []
        for point in points:
            settings = _plain(point)
            key = json.dumps(settings, sort_keys=True)
            if key not in known:
                known[key] = len(self.manifest["points"])
                self.manifest["points"].append({"point": known[key], **settings})
            index = known[key]
            planned[str(index)] = max(planned.get(str(index), 0), int(n_paths))
            indices.append(index)
        return indices

    def _write_manifest(self) -> None:
        _write_text(self.out / "manifest.json", json.dumps(self.manifest, indent=2))

    def completed(self) -> set[tuple[int, int]]:
        """(point, path) pairs stored in intact committed batches.

        Everything else a crash can leave — temporary files, files of batches that
        never committed, batches with a truncated, corrupt or missing file, unreadable
        failure records — is removed, so those paths are computed again (StorageError
        if the folder does not allow that).
        """
        done: set[tuple[int, int]] = set()
        committed = set()
        try:
            for chunk in _chunks(self.out, "paths"):
                batch = _read_batch(self.out, chunk.name, _verify)
                if batch is None:
                    self._remove_batch(chunk.name)
                    continue
                committed.add(chunk.name)
                paths = batch["paths"]
                done.update(zip(paths.column("point").to_pylist(),
                                paths.column("path").to_pylist(), strict=True))
            for table in ("events", "series"):
                for chunk in _chunks(self.out, table):
                    if chunk.name not in committed:
                        chunk.unlink()
            for chunk in _chunks(self.out, "failures"):
                if chunk.name not in committed and _read_batch_file(chunk) is None:
                    chunk.unlink()
            for table in TABLES:
                for tmp in (self.out / table).glob(".batch-*.tmp"):
                    tmp.unlink()
        except OSError as exc:
            raise StorageError(f"cannot resume in {self.out}: {exc.strerror or exc} "
                               f"({exc.filename}); make the folder writable and run "
                               f"again") from None
        self.done = done
        return set(done)

    def _remove_batch(self, name: str) -> None:
        for table in TABLES:
            (self.out / table / name).unlink(missing_ok=True)

    def write_batch(self, name: str, frames: dict[str, pd.DataFrame | None]) -> None:
        """Write one finished batch; the paths file goes last and commits it.

        Raises StorageError (naming the folder and the cause) if the disk is full or
        the folder cannot be written; what this batch had written is removed, and the
        batches committed before it are untouched.
        """
        written: list[Path] = []
        try:
            tables = []
            for table in ("events", "series", "failures"):
                frame = frames.get(table)
                if frame is None or len(frame) == 0:
                    continue
                target = self.out / table / f"{name}.parquet"
                _write_parquet(target, frame)
                written.append(target)
                tables.append(table)
            paths = frames.get("paths")
            if paths is None or len(paths) == 0:
                return  # a batch of failed paths only commits nothing: retried on resume
            target = self.out / "paths" / f"{name}.parquet"
            keys = set(zip(paths["point"].tolist(), paths["path"].tolist(), strict=True))
            self._committing = (target, keys)
            _write_parquet(target, paths, {BATCH_KEY: json.dumps({"tables": tables}).encode()})
        except OSError as exc:
            for path in written:
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass
            raise StorageError(
                f"cannot write results to {self.out}: {exc.strerror or exc}; every batch "
                f"written before this one is intact, and running the same command again "
                f"resumes") from None
        self.done.update(keys)
        self._committing = None

    def saved(self) -> set[tuple[int, int]]:
        """(point, path) pairs committed to the folder by this store: :attr:`done`, and
        the batch being committed if its paths file is there — a Ctrl-C can land after
        the file's rename commits it and before the batch is counted. Reads no file
        (after an interrupt, a half-finished write may hold what reading needs)."""
        if self._committing is not None and self._committing[0].exists():
            return self.done | self._committing[1]
        return set(self.done)

    def finish(self, failed: int, retried: Iterable[dict[str, Any]] = ()) -> None:
        """Record the end time, the paths done per point, the paths this invocation ran
        again after a worker process died, and the status: ``"complete"`` when every
        point has all its planned paths, ``"failed paths"`` when some raised, and
        ``"partial"`` when paths of points not asked for this time are still missing."""
        per_point = {p: 0 for p in self.manifest["planned"]}
        for point, _ in self.done:
            per_point[str(point)] = per_point.get(str(point), 0) + 1
        short = any(per_point.get(p, 0) < n for p, n in self.manifest["planned"].items())
        self.manifest["finished"] = time.time()
        self.manifest["status"] = ("failed paths" if failed else
                                   "partial" if short else "complete")
        self.manifest["failed"] = failed
        self.manifest["paths_done_per_point"] = per_point
        self.manifest["retried"] = list(retried)
        try:
            self._write_manifest()
        except OSError as exc:
            raise StorageError(f"cannot write {self.out / 'manifest.json'}: "
                               f"{exc.strerror or exc}; the results are intact") from None

    def interrupted(self, reason: str) -> None:
        """Record, if the folder still takes it, that the run stopped on `reason`."""
        self.manifest["status"] = f"interrupted: {reason}"
        try:
            self._write_manifest()
        except OSError:
            pass  # the folder cannot take even that; the old manifest stands


def _read_batch_file(path: Path) -> pd.DataFrame | None:
    try:
        return _frame(path)
    except UNREADABLE:
        return None


def _settings(point: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if k != "point"}


IDENTITY_WORDS = {
    "kind": "kind (run or sweep)", "config": "base config", "seed": "root seed",
    "design": "design", "factors": "swept settings", "with_series": "with_series",
    "grid": "design ranges", "n_points": "n_points (a Latin hypercube cannot grow)",
}


def _difference(out: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    """The one line refusing a run whose identity differs from the folder's."""
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    code_old, code_new = old.get("custom_code", {}), new.get("custom_code", {})
    differing = sorted(k for k in set(code_old) | set(code_new)
                       if code_old.get(k) != code_new.get(k))
    if changed == ["custom_code"] and differing:
        return (f"{out} holds a run made with other custom code for "
                f"{', '.join(differing)} (its fingerprint differs: same name, other code); "
                f"use another out directory")
    words = [IDENTITY_WORDS.get(k, k) for k in changed]
    return (f"{out} holds a different run (differs in {', '.join(words)}); use another "
            f"out directory")


class StoredRun(NamedTuple):
    """What a results folder holds, read back: each path's summary row, the event and
    series tables of the batches read, the design points, the failures not since
    computed by a resumed run, the paths the last invocation ran again after a worker
    process died, and the planned paths that are neither stored nor failed."""

    paths: list[dict[str, Any]]
    events: list[pd.DataFrame]
    series: list[pd.DataFrame]
    points: pd.DataFrame
    failures: pd.DataFrame
    retried: pd.DataFrame
    missing: pd.DataFrame


def read_run(out: str | Path, select: dict[int, int] | None = None) -> StoredRun:
    """Read a finished or partial run from its output folder (JSON and Parquet only);
    :meth:`perpabm.Results.load` assembles the tables.

    Only intact committed batches are read; a damaged one (a truncated or corrupt
    file) is left out with a warning, and running the same sweep into the folder
    again computes its paths anew. Planned paths that are neither stored nor
    recorded as failed (a run still going or stopped, a deleted or damaged batch)
    are listed in ``missing`` and announced with a RuntimeWarning. `select` (point
    → paths) reads only paths 0 … n − 1 of those points, as a run asked for them.
    """
    if not isinstance(out, str | os.PathLike):
        raise ConfigError(f"out must be a folder path; got {out!r}")
    out = Path(out)
    manifest = read_manifest(out)
    frames: dict[str, list[pd.DataFrame]] = {table: [] for table in TABLES}
    damaged, committed = [], set()
    for chunk in _chunks(out, "paths"):
        batch = _read_batch(out, chunk.name, _frame)
        if batch is None:
            damaged.append(chunk.name)
            continue
        committed.add(chunk.name)
        for table, frame in batch.items():
            frames[table].append(frame)
    for chunk in _chunks(out, "failures"):
        if chunk.name in committed or chunk.name in damaged:
            continue
        frame = _read_batch_file(chunk)  # a batch whose paths all failed: its records stand
        if frame is None:
            damaged.append(chunk.name)
        else:
            frames["failures"].append(frame)
    if damaged:
        warnings.warn(f"{out}: {len(damaged)} damaged batch(es) left out "
                      f"({', '.join(damaged[:3])}{', …' if len(damaged) > 3 else ''}); run the "
                      f"same sweep into this folder again to recompute them",
                      RuntimeWarning, stacklevel=3)
    planned = {int(p): int(n) for p, n in manifest["planned"].items()}
    if select is not None:
        planned = {p: n for p, n in select.items()}
        for table in TABLES:
            frames[table] = [_selected(f, planned) for f in frames[table]]
    path_frames = [f for f in frames["paths"] if len(f)]
    paths = pd.concat(path_frames).to_dict("records") if path_frames else []
    failure_frames = [f for f in frames["failures"] if len(f)]
    failures = (pd.concat(failure_frames, ignore_index=True)
                if failure_frames else pd.DataFrame())
    done = {(row["point"], row["path"]) for row in paths}
    if len(failures) and paths:
        # A failure that a resumed run has since computed is history, not a failure.
        failures = failures[[(p, k) not in done for p, k in
                             zip(failures["point"], failures["path"], strict=True)]]
    failed = (set(zip(failures["point"], failures["path"], strict=True))
              if len(failures) else set())
    missing = pd.DataFrame(
        [(p, k) for p, n in sorted(planned.items()) for k in range(n)
         if (p, k) not in done and (p, k) not in failed], columns=["point", "path"])
    if len(missing):
        warnings.warn(_missing_message(out, manifest, missing, sum(planned.values())),
                      RuntimeWarning, stacklevel=3)
    points = pd.DataFrame(manifest["points"])
    if select is not None and len(points):
        points = points[points["point"].isin(list(planned))].reset_index(drop=True)
    return StoredRun(paths, frames["events"], frames["series"], points,
                     failures.reset_index(drop=True),
                     pd.DataFrame(manifest.get("retried", [])), missing)


def _selected(frame: pd.DataFrame, planned: dict[int, int]) -> pd.DataFrame:
    """The rows of `frame` whose (point, path) a run of `planned` paths per point asked for."""
    if not len(frame):
        return frame
    limit = frame["point"].map(planned)
    return frame[limit.notna() & (frame["path"] < limit.fillna(0))]


def _missing_message(out: Path, manifest: dict[str, Any], missing: pd.DataFrame,
                     planned: int) -> str:
    status = manifest.get("status")
    if status == "running":
        why = "the run is still going, or stopped before it could say so"
    elif str(status).startswith("interrupted"):
        why = "the run was interrupted"
    elif status == "partial":
        why = "a later run asked for other points only"
    else:
        why = "their batches were deleted or damaged"
    first = ", ".join(f"point {p} path {k}" for p, k in
                      missing.head(3).itertuples(index=False))
    return (f"{out}: {len(missing)} of {planned} planned path(s) are missing ({first}"
            f"{', …' if len(missing) > 3 else ''}): {why}; run the same command into this "
            f"folder again to compute them")

"""Results on disk: Parquet chunks written as paths finish, a manifest, and resume.

Layout of an output folder::

    manifest.json            what was run (config, design, seeds, versions) and its status
    paths/batch-*.parquet    one file per finished batch of paths
    events/batch-*.parquet   their events
    series/batch-*.parquet   their series (when asked for)
    failures/batch-*.parquet paths that raised: point, path, seed, error, traceback

Every file is written to a temporary name and renamed into place, so a crash
never leaves half a file under a real name. Re-running the same sweep into the
same folder skips the paths already there; a different sweep is refused.
Only JSON and Parquet are read back — never pickle.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from perpabm.errors import ConfigError
from perpabm.results import Results

FORMAT = 1
TABLES = ("paths", "events", "series", "failures")
PACKAGES = ("perpabm", "mesa", "numpy", "scipy", "pandas", "pyarrow", "joblib")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RunStore:
    """An output folder for one sweep: checks identity, knows what is done, writes chunks."""

    def __init__(self, out: str | Path, identity: dict[str, Any]) -> None:
        self.out = Path(out)
        self.identity = json.loads(json.dumps(identity))  # as it reads back from JSON
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            for table in TABLES:
                (self.out / table).mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to out directory {self.out}: "
                              f"{exc.strerror or exc}") from None
        manifest = self.out / "manifest.json"
        if manifest.exists():
            existing = json.loads(manifest.read_text(encoding="utf-8"))
            if existing.get("format") != FORMAT:
                raise ConfigError(f"{self.out} was written by perpabm "
                                  f"{existing.get('versions', {}).get('perpabm', '?')} in "
                                  f"format {existing.get('format')}; this version reads "
                                  f"format {FORMAT}")
            if existing.get("identity") != self.identity:
                changed = sorted(k for k in set(existing.get("identity", {})) | set(self.identity)
                                 if existing.get("identity", {}).get(k) != self.identity.get(k))
                raise ConfigError(f"{self.out} holds a different run (differs in "
                                  f"{', '.join(changed)}); use another out directory")
            self.manifest = existing
        else:
            self.manifest = {"format": FORMAT, "identity": self.identity,
                             "versions": _versions(), "started": time.time(),
                             "finished": None, "status": "running"}
            self._write_manifest()

    def _write_manifest(self) -> None:
        _atomic_write_text(self.out / "manifest.json", json.dumps(self.manifest, indent=2))

    def completed(self) -> set[tuple[int, int]]:
        """(point, path) pairs already stored, from readable path chunks (others are removed,
        so their paths are computed again)."""
        done = set()
        for chunk in sorted((self.out / "paths").glob("batch-*.parquet")):
            try:
                table = pq.read_table(chunk, columns=["point", "path"]).to_pandas()
            except Exception:  # a truncated or corrupt chunk: recompute its paths
                self._remove_batch(chunk.name)
                continue
            done.update(zip(table["point"].tolist(), table["path"].tolist(), strict=True))
        return done

    def _remove_batch(self, name: str) -> None:
        for table in TABLES:
            (self.out / table / name).unlink(missing_ok=True)

    def write_batch(self, name: str, frames: dict[str, pd.DataFrame | None]) -> None:
        """Write one finished batch; the paths file goes last, so it marks the batch done."""
        for table in ("events", "series", "failures", "paths"):
            frame = frames.get(table)
            if frame is None or len(frame) == 0:
                continue  # a batch of failed paths only has no paths file: retried on resume
            target = self.out / table / f"{name}.parquet"
            tmp = target.with_name(f".{target.name}.tmp")
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)

    def finish(self, failed: int) -> None:
        """Record the end time, the overall status and the paths done per point."""
        done = self.completed()
        per_point = {str(p): 0 for p in range(len(self.identity.get("points", [])))}
        for point, _ in done:
            per_point[str(point)] = per_point.get(str(point), 0) + 1
        self.manifest["finished"] = time.time()
        self.manifest["status"] = "failed paths" if failed else "complete"
        self.manifest["failed"] = failed
        self.manifest["paths_done_per_point"] = per_point
        self._write_manifest()


def load(out: str | Path) -> Results:
    """Read a finished or partial run from its output folder."""
    out = Path(out)
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        raise ConfigError(f"{out} has no manifest.json: not a perpabm results folder")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{out} was written in format {manifest.get('format')} by perpabm "
                          f"{manifest.get('versions', {}).get('perpabm', '?')}; this version "
                          f"reads format {FORMAT}")
    frames = {}
    for table in TABLES:
        chunks = []
        for chunk in sorted((out / table).glob("batch-*.parquet")):
            try:
                chunks.append(pd.read_parquet(chunk))
            except Exception:
                continue  # an unreadable chunk is not data; resume recomputes it
        frames[table] = chunks
    points = pd.DataFrame(manifest["identity"].get("points", []))
    results = Results.from_parts(
        pd.concat(frames["paths"]).to_dict("records") if frames["paths"] else [],
        frames["events"], frames["series"], points)
    failures = (pd.concat(frames["failures"], ignore_index=True)
                if frames["failures"] else pd.DataFrame())
    if len(failures) and len(results.paths):
        # A failure that a resumed run has since computed is history, not a failure.
        done = set(zip(results.paths["point"], results.paths["path"], strict=True))
        failures = failures[[(p, k) not in done for p, k in
                             zip(failures["point"], failures["path"], strict=True)]]
    results.failures = failures.reset_index(drop=True)
    return results

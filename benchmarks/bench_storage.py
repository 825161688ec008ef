"""Storage: size on disk of 10,000 paths' results, and the time to load them into pandas.

Running 10,000 real paths would take hours at the speed the suite measures, so
the folder is built from real output:

1. ``storage_sample`` real paths of the default scenario are run with
   ``perpabm.run_paths(config, n, seed, n_jobs=-1, out=folder)`` — the package's
   own batching, Parquet chunks and manifest (the wall time of this run is
   reported too, as paths/minute with Parquet output);
2. every real table (``paths/``, ``events/``, and ``series/`` or ``failures/``
   if any) is copied ``storage_paths / storage_sample`` times with its path
   indices shifted by a multiple of the sample size (and ``seed_spawn_key``, the
   path's seed, following them), and written in the chunks a real run of
   ``storage_paths`` paths writes (runs of consecutive paths, named after their
   first path; a package that writes one chunk per batch gets one copy of each
   real chunk per copy instead), so that the folder holds exactly
   ``storage_paths`` distinct paths in as many files as a real run of that size.
   Copies keep the real chunks' Parquet metadata (pandas schema, the tables a
   batch wrote) and carry page checksums where the package writes them (results
   format 2 on). The manifest is the real one with the planned paths (``planned``
   from results format 3 on, ``identity.n_paths`` before) and the paths done per
   point set to the new count.

Measured: the folder's size on disk (sum of file sizes; allocated blocks in the
details); wall-clock seconds (time.perf_counter) of
``perpabm.Results.load(folder)`` — every chunk of paths and events read into
pandas DataFrames, sorted by key — median of ``storage_repeats`` loads; and, as
a reference for what the format allows, ``pandas.read_parquet`` of the
``paths`` and ``events`` folders as whole datasets. The load's goal of under 2 s
is stated beside the reference machine's figure, not passed or failed.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import Row, Settings, goal, median, scenario_config

LOAD_GOAL_SECONDS = 2.0  # Results.load of 10,000 paths' goal, met on the reference machine


def run_sample(settings: Settings, folder: Path) -> float:
    """Run the real sample into `folder` with run_paths(out=…); returns its seconds."""
    from perpabm import run_paths

    start = time.perf_counter()
    run_paths(scenario_config(settings), settings.storage_sample, settings.seed, n_jobs=-1,
              out=str(folder))
    return time.perf_counter() - start


def _shift(table: pa.Table, offset: int, limit: int) -> pa.Table:
    """The chunk with `offset` added to its path index (and path seed), rows < `limit` kept."""
    path = pc.add(table.column("path"), offset)
    table = table.set_column(table.schema.get_field_index("path"), "path", path)
    table = table.filter(pc.less(table.column("path"), limit))
    if "seed_spawn_key" in table.column_names:
        keys = pc.cast(table.column("path"), pa.string())
        table = table.set_column(table.schema.get_field_index("seed_spawn_key"),
                                 "seed_spawn_key", keys)
    return table


def _chunk_paths(n_paths: int) -> int | None:
    """Paths per Parquet chunk that a real run of `n_paths` paths writes (batch_size 1),
    or None for a package that writes one chunk per batch."""
    try:
        from perpabm.runner import CHUNKS_PER_RUN, MAX_CHUNK_PATHS
    except ImportError:
        return None
    return min(max(math.ceil(n_paths / CHUNKS_PER_RUN), 1), MAX_CHUNK_PATHS)


def planned_paths(manifest: dict[str, Any]) -> int:
    """The paths a results folder's manifest plans for its one point: ``planned`` from
    results format 3 on (which reads only the planned paths), ``identity.n_paths`` before."""
    if "planned" in manifest:
        return int(manifest["planned"]["0"])
    return int(manifest["identity"]["n_paths"])


def replicate(sample: Path, folder: Path, n_paths: int) -> dict[str, Any]:
    """Build `folder` with `n_paths` paths from the real chunks of `sample` (see module doc)."""
    manifest = json.loads((sample / "manifest.json").read_text(encoding="utf-8"))
    n_sample = planned_paths(manifest)
    copies = math.ceil(n_paths / n_sample)
    checksums = int(manifest.get("format", 1)) >= 2  # results format 2 checksums its pages
    chunk_paths = _chunk_paths(n_paths)
    folder.mkdir(parents=True)
    chunks = 0
    for table_dir in sorted(p for p in sample.iterdir() if p.is_dir()):
        (folder / table_dir.name).mkdir()
        sample_chunks = sorted(table_dir.glob("*.parquet"))
        if chunk_paths is not None and sample_chunks:
            chunks += _rechunk(sample_chunks, folder / table_dir.name, n_sample, copies,
                               n_paths, chunk_paths, checksums)
            continue
        for chunk in sample_chunks:
            table = pq.read_table(chunk)
            for copy in range(copies):
                shifted = _shift(table, copy * n_sample, n_paths) if copy else table
                if shifted.num_rows == 0:
                    continue
                # The same suffix in every table keeps a batch's files paired by name.
                name = chunk.name if copy == 0 else f"{chunk.stem}-c{copy:05d}.parquet"
                pq.write_table(shifted, folder / table_dir.name / name,
                               write_page_checksum=checksums)
                chunks += 1
    if "planned" in manifest:  # results format 3 on: the paths planned per point
        manifest["planned"] = {"0": n_paths}
    else:
        manifest["identity"]["n_paths"] = n_paths
    manifest["paths_done_per_point"] = {"0": n_paths}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return {"sample_paths": n_sample, "copies": copies, "chunks": chunks,
            "chunk_paths": chunk_paths}


def _rechunk(sample_chunks: list[Path], target: Path, n_sample: int, copies: int,
             n_paths: int, chunk_paths: int, checksums: bool) -> int:
    """Write one table's copies in the chunks a real run of `n_paths` writes: runs of
    `chunk_paths` consecutive paths, sorted, named after their first path. Returns the
    number of files written."""
    whole = pa.concat_tables([pq.read_table(chunk) for chunk in sample_chunks])
    table = pa.concat_tables([_shift(whole, copy * n_sample, n_paths)
                              for copy in range(copies)])
    keys = [k for k in ("point", "path", "event", "step") if k in table.column_names]
    table = table.sort_by([(k, "ascending") for k in keys])
    written = 0
    for first in range(0, n_paths, chunk_paths):
        last = min(first + chunk_paths, n_paths)
        part = table.filter(pc.and_(pc.greater_equal(table.column("path"), first),
                                    pc.less(table.column("path"), last)))
        if part.num_rows == 0:
            continue
        name = f"batch-p000000-k{first:08d}-n{last - first}.parquet"
        pq.write_table(part, target / name, write_page_checksum=checksums)
        written += 1
    return written


def disk_usage(folder: Path) -> tuple[int, int, int]:
    """(bytes of file contents, bytes of allocated blocks, number of files) under `folder`."""
    size = blocks = files = 0
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            size += stat.st_size
            blocks += stat.st_blocks * 512
            files += 1
    return size, blocks, files


def timed_loads(load: Any, repeats: int, budget: float = 30.0) -> list[float]:
    """Seconds of up to `repeats` calls of `load`; stops early once `budget` s are spent."""
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget:
        start = time.perf_counter()
        load()
        times.append(time.perf_counter() - start)
    return times


def storage(settings: Settings, ctx: dict[str, Any]) -> list[Row]:
    """Size on disk and load time of `storage_paths` paths' results."""
    from perpabm import Results

    n = settings.storage_paths
    work = Path(tempfile.mkdtemp(prefix="perpabm-bench-"))
    try:
        sample, folder = work / "sample", work / f"paths-{n}"
        sample_s = run_sample(settings, sample)
        print(f"  .. {settings.storage_sample} real paths into Parquet: {sample_s:.1f} s",
              flush=True)
        start = time.perf_counter()
        built = replicate(sample, folder, n)
        built["replicate_seconds"] = time.perf_counter() - start
        size, blocks, files = disk_usage(folder)
        loaded: list[Any] = []

        def load() -> None:
            loaded[:] = [Results.load(folder)]

        times = timed_loads(load, settings.storage_repeats)
        results = loaded[0]
        if len(results.paths) != n or results.paths["path"].nunique() != n:
            raise RuntimeError(f"the built folder loads {len(results.paths)} paths, not {n}")
        events = len(results.events)

        def read_datasets() -> None:
            pd.read_parquet(folder / "paths")
            pd.read_parquet(folder / "events")

        reference = timed_loads(read_datasets, settings.storage_repeats)
        print(f"  .. {n:,} paths: {size / 1e6:.1f} MB in {files:,} files; Results.load "
              f"{median(times):.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_s = median(times)
    sample_rate = 60.0 * settings.storage_sample / sample_s
    single = "" if len(times) > 1 else "; one run (the first took over 30 s)"
    return [
        Row("storage", f"{settings.storage_sample} real paths with out=", sample_rate,
            "paths/min", f"run_paths(n_jobs=-1, out=folder) of {settings.storage_sample} "
            f"paths, Parquet written as chunks complete; the sample the folder is built from",
            1, details={"seconds": sample_s}),
        Row("storage", f"size of {n:,} paths' results", size / 1e6, "MB",
            f"sum of file sizes (paths, events, manifest) of {n:,} paths in {files:,} "
            f"files, built from the real sample (see the storage docstring)", None,
            details={"bytes": size, "allocated_bytes": blocks, "files": files,
                     "kb_per_path": size / n / 1e3, "events": events, **built}),
        Row("storage", f"Results.load, {n:,} paths", load_s, "s",
            f"perpabm.Results.load of the folder: paths + events ({events:,} rows) into "
            f"pandas{single}", len(times), details={"seconds": times},
            goal=goal("<", LOAD_GOAL_SECONDS)),
        Row("storage", f"read_parquet of the folders, {n:,} paths", median(reference), "s",
            "reference: pandas.read_parquet of the paths/ and events/ folders as datasets",
            len(reference), details={"seconds": reference}),
    ]

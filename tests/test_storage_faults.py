"""Results on disk survive faults: damaged chunks, crashes between writes, a full or
read-only disk, results from other versions, and folders that try to run code."""

from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import perpabm
from perpabm import ConfigError, Results
from perpabm import storage as storage_module
from perpabm.cli import main
from perpabm.errors import StorageError
from perpabm.runner import sweep
from perpabm.storage import RunStore

GRID = {"vault.cap": [0.0, 2.0]}
N_PATHS = 3


def run(config, out: Path, **kwargs) -> Results:
    return sweep(config, GRID, n_paths=N_PATHS, seed=4, n_jobs=1, with_series=True, out=out,
                 **kwargs)


@pytest.fixture(scope="module")
def undisturbed(tiny, tmp_path_factory) -> Path:
    """A finished sweep's folder, copied by each test that damages it."""
    out = tmp_path_factory.mktemp("undisturbed") / "results"
    run(tiny, out)
    return out


@pytest.fixture
def folder(undisturbed, tmp_path) -> Path:
    return Path(shutil.copytree(undisturbed, tmp_path / "results"))


def assert_same_tables(a: Results, b: Results) -> None:
    for table in ("paths", "events", "series"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    assert len(a.failures) == len(b.failures) == 0


def chunk(out: Path, table: str, k: int = 1) -> Path:
    return sorted((out / table).glob("batch-*.parquet"))[k]


def flip_page_byte(path: Path, column: int = 0) -> None:
    """Flip one bit in the last byte of a column's pages: stored data, not metadata."""
    meta = pq.ParquetFile(path).metadata.row_group(0).column(column)
    start = (meta.dictionary_page_offset if meta.has_dictionary_page else
             meta.data_page_offset)
    data = bytearray(path.read_bytes())
    data[start + meta.total_compressed_size - 1] ^= 0x01
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- damaged chunks


def test_a_truncated_events_chunk_is_recomputed_on_resume(tiny, undisturbed, folder):
    events = chunk(folder, "events")
    events.write_bytes(events.read_bytes()[: events.stat().st_size // 2])
    resumed = run(tiny, folder)
    assert_same_tables(Results.load(undisturbed), resumed)
    assert events.read_bytes() == chunk(undisturbed, "events").read_bytes()


def test_a_corrupted_byte_in_a_chunk_is_detected_not_read_as_data(undisturbed, folder):
    """One flipped bit inside a page: the page checksum catches it, and the batch is
    left out (with a warning) rather than read with a wrong number in it."""
    flip_page_byte(chunk(folder, "series"), column=3)
    with pytest.warns(RuntimeWarning, match="1 damaged batch"), \
            pytest.warns(RuntimeWarning, match="1 of 6 planned path"):
        damaged = Results.load(folder)
    whole = Results.load(undisturbed)
    assert len(damaged.paths) == len(whole.paths) - 1
    kept = whole.series.merge(damaged.paths[["point", "path"]], on=["point", "path"])
    pd.testing.assert_frame_equal(damaged.series, kept, check_exact=True)


def test_a_corrupted_chunk_is_recomputed_on_resume(tiny, undisturbed, folder):
    flip_page_byte(chunk(folder, "paths"), column=5)
    flip_page_byte(chunk(folder, "events", 2), column=5)
    assert_same_tables(Results.load(undisturbed), run(tiny, folder))


def test_a_batch_missing_one_of_its_tables_is_recomputed(tiny, undisturbed, folder):
    chunk(folder, "series", 0).unlink()
    assert len(run(tiny, folder).series) == len(Results.load(undisturbed).series)


def test_events_of_a_batch_that_never_committed_are_not_read(undisturbed, folder):
    """A crash after a batch's events were written but before its paths file: the events
    belong to no stored path and are not part of the results."""
    chunk(folder, "paths").unlink()
    with pytest.warns(RuntimeWarning, match="1 of 6 planned path"):
        partial = Results.load(folder)
    keys = set(zip(partial.paths["point"], partial.paths["path"], strict=True))
    assert set(zip(partial.events["point"], partial.events["path"], strict=True)) <= keys
    assert set(zip(partial.series["point"], partial.series["path"], strict=True)) <= keys


def test_a_resume_with_other_batching_does_not_duplicate_uncommitted_events(tiny, undisturbed,
                                                                            folder):
    chunk(folder, "paths").unlink()
    resumed = run(tiny, folder, batch_size=2)
    assert_same_tables(Results.load(undisturbed), resumed)


def test_temporary_files_left_by_a_crash_are_removed_on_resume(tiny, folder):
    leftover = folder / "events" / ".batch-p000000-k00000000-n1.parquet.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    run(tiny, folder)
    assert not leftover.exists()


# ---------------------------------------------------------------- a full or read-only disk


def test_a_full_disk_is_a_clear_error_and_the_batches_before_stay_intact(tiny, undisturbed,
                                                                         tmp_path, monkeypatch):
    """The third batch's paths file is written into /dev/full, a real ENOSPC."""
    out = tmp_path / "full"
    trap = out / "paths" / ".batch-p000000-k00000002-n1.parquet.tmp"
    lay_trap = RunStore.completed  # once the run has started (resume clears leftovers)

    def completed(store: RunStore) -> set[tuple[int, int]]:
        done = lay_trap(store)
        trap.symlink_to("/dev/full")
        return done

    monkeypatch.setattr(RunStore, "completed", completed)
    with pytest.raises(StorageError, match=r"No space left on device; every batch written "
                                           r"before this one is intact") as info:
        run(tiny, out)
    assert "\n" not in str(info.value) and str(out) in str(info.value)
    assert not trap.exists() and not list(out.glob("*/.*.tmp"))
    assert json.loads((out / "manifest.json").read_text())["status"].startswith("interrupted")
    with pytest.warns(RuntimeWarning, match="4 of 6 planned path.*the run was interrupted"):
        partial = Results.load(out)
    whole = Results.load(undisturbed)
    assert partial.paths["path"].tolist() == [0, 1]
    pd.testing.assert_frame_equal(partial.paths, whole.paths.iloc[:2], check_exact=True)
    monkeypatch.undo()
    assert_same_tables(whole, run(tiny, out))  # space again: the re-run completes it


class ReadOnlyAfter:
    """`open` for the storage module that fails as a read-only file system does from the
    moment a run would write its (`committed` + 1)-th batch's paths file."""

    def __init__(self, committed: int) -> None:
        self.committed = committed

    def __call__(self, file, mode="r", *args, **kwargs):
        if "w" in mode and Path(file).parent.name == "paths":
            if self.committed == 0:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
            self.committed -= 1
        return open(file, mode, *args, **kwargs)


def test_a_folder_turning_read_only_mid_run_is_one_line_exit_2(tiny, tmp_path, capsys,
                                                                monkeypatch):
    from perpabm.config.toml import dumps

    (tmp_path / "tiny.toml").write_text(dumps(tiny.to_dict()))
    spec = tmp_path / "sweep.toml"
    spec.write_text('config = "tiny.toml"\nn_paths = 3\nseed = 4\n'
                    '[grid]\n"vault.cap" = [0.0, 2.0]\n')
    out = tmp_path / "out"
    monkeypatch.setattr(storage_module, "open", ReadOnlyAfter(2), raising=False)
    assert main(["sweep", str(spec), "--jobs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"perpabm: error: cannot write results to {out}: Read-only file system; "
                   "every batch written before this one is intact, and running the same "
                   "command again resumes")
    with pytest.warns(RuntimeWarning, match="4 of 6 planned path.*the run was interrupted"):
        assert Results.load(out).paths["path"].tolist() == [0, 1]
    assert not list(out.glob("*/.*.tmp")) and not list(out.glob("events/*k00000002*"))


def test_a_read_only_folder_on_resume_is_a_clear_error(tiny, folder, monkeypatch):
    leftover = folder / "events" / ".batch-p000000-k00000000-n1.parquet.tmp"
    leftover.write_bytes(b"PAR1 half a file")

    def read_only(path: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(StorageError, match=f"cannot resume in {folder}: Read-only file "
                                           f"system .*make the folder writable") as info:
        run(tiny, folder)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- other versions


def set_manifest(out: Path, **changes) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.update(changes)
    (out / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("offset", [-1, 1], ids=["older format", "newer format"])
def test_results_in_another_format_are_refused_naming_the_version_that_wrote_them(
        tiny, folder, offset):
    set_manifest(folder, format=storage_module.FORMAT + offset,
                 versions={"perpabm": "0.0.9"})
    before = sorted(p.name for p in folder.rglob("*"))
    expected = (rf"written by perpabm 0\.0\.9 in results format {storage_module.FORMAT + offset}"
                rf"; this perpabm .* reads format {storage_module.FORMAT} only")
    with pytest.raises(ConfigError, match=expected):
        Results.load(folder)
    with pytest.raises(ConfigError, match=expected):
        run(tiny, folder)
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_chunks_without_checksums_or_table_lists_read_correctly(undisturbed, folder):
    """Chunks as this format's first writers left them (plain pandas Parquet, no page
    checksums, no list of the batch's tables) are read as they are."""
    for path in folder.glob("*/batch-*.parquet"):
        pd.read_parquet(path).to_parquet(path, index=False)
    assert_same_tables(Results.load(undisturbed), Results.load(folder))


@pytest.mark.parametrize(("manifest", "message"), [
    (b"{not json", "is not valid JSON"),
    (b"\xff\xfe", "is not valid JSON"),
    (b"[1, 2]", "is not a perpabm manifest"),
    (json.dumps({"format": storage_module.FORMAT}).encode(), "does not say what was run"),
], ids=["not JSON", "not text", "not a table", "no identity"])
def test_a_damaged_manifest_is_one_line_naming_it(tiny, folder, manifest, message):
    (folder / "manifest.json").write_bytes(manifest)
    for action in (lambda: Results.load(folder), lambda: run(tiny, folder)):
        with pytest.raises(ConfigError, match=message) as info:
            action()
        assert "manifest.json" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- no code from data


class Marker:
    """Unpickling this creates the file `path`: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_opening_a_results_folder_cannot_run_code_from_it(tiny, folder, tmp_path):
    marker = tmp_path / "code-ran"
    payload = pickle.dumps(pd.DataFrame({"x": [Marker(marker)]}))
    for table in ("paths", "events", "failures"):
        (folder / table / "batch-p000009-k00000000-n1.parquet").write_bytes(payload)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["versions"]["perpabm"] = "__import__('os').system('touch " + str(marker) + "')"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(RuntimeWarning, match="damaged"):
        Results.load(folder)
    run(tiny, folder)
    assert not marker.exists()


UNPICKLERS = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "yaml"}
LOADERS = {"joblib", "np", "numpy", *UNPICKLERS}  # their load/loads can unpickle


def test_the_package_never_unpickles_or_evaluates():
    """No pickle-like module is imported, no joblib/numpy load is called, nothing is
    eval'd or exec'd: stored data is read with json, tomllib, pandas and pyarrow only."""
    for source in Path(perpabm.__file__).parent.rglob("*.py"):
        where = f"{source.name}:"
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & UNPICKLERS, where
            elif isinstance(node, ast.ImportFrom):
                module = (node.module or "").split(".")[0]
                assert module not in UNPICKLERS, f"{where}{node.lineno}"
                assert not (module in LOADERS and {a.name for a in node.names} & {
                    "load", "loads"}), f"{where}{node.lineno}"
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name):
                    assert func.id not in ("eval", "exec"), f"{where}{node.lineno}"
                elif isinstance(func, ast.Attribute):
                    owner = func.value.id if isinstance(func.value, ast.Name) else None
                    assert func.attr != "read_pickle", f"{where}{node.lineno}"
                    assert not (func.attr in ("load", "loads") and owner in LOADERS), (
                        f"{where}{node.lineno}")

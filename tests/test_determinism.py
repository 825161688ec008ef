"""The same seed writes the same bytes: Parquet output is identical across runs and
across n_jobs."""

from __future__ import annotations

from pathlib import Path

from perpabm.runner import sweep


def parquet_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_the_same_seed_writes_byte_identical_parquet_across_runs_and_n_jobs(tiny, tmp_path):
    def run(name: str, n_jobs: int) -> dict[str, bytes]:
        sweep(tiny, {"exchange.adl_rule": ["profit", "random"]}, n_paths=3, seed=8,
              n_jobs=n_jobs, with_series=True, out=tmp_path / name)
        return parquet_bytes(tmp_path / name)

    first = run("first", 1)
    assert {name.split("/")[0] for name in first} == {"paths", "events", "series"}
    assert run("again", 1) == first
    assert run("two_jobs", 2) == first

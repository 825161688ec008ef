"""Specification tests for perpabm.compiled: the kernels' on-disk cache cannot go stale.

A cached kernel is used only while none of the package's kernel sources changed, so a
kernel that calls a kernel of another module is compiled again when its callee changes
(numba's own cache checks a kernel against its own file only). The cache tests run a
copy of the package in child processes, each as a fresh interpreter would after an
install or an upgrade in place.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba.core.caching import FunctionCache
from numba.core.dispatcher import Dispatcher

import perpabm
from perpabm import compiled
from perpabm.compiled import kernel

# A kernel that calls a kernel of another module (each is a module path and a name), and
# the arguments of a quick call: the bids of an empty book, whose volume is rounded of no
# partials, 0.0.
CALLER = "perpabm.exchange.kernels.book.volume_within"
CALLER_ARGUMENTS = "*perpabm.exchange.kernels.book.empty(4), 0, 0.0"
CALLEE = "perpabm.exchange.kernels.exact.rounded"
# A module that kernel modules take constants from (STRATEGIES), and one no kernel reads.
CONSTANTS_MODULE = "perpabm.config.scenario"
UNRELATED_MODULE = "perpabm.cli"

PACKAGE_DIR = Path(perpabm.__file__).resolve().parent

RUN_CALLER = """
import json

import perpabm
import {caller_module}
from {caller_module} import {caller_name} as caller

result = caller({arguments})
print(json.dumps({{
    "package": perpabm.__file__,
    "result": result,
    "cache_hits": sum(caller.stats.cache_hits.values()),
    "cache_misses": sum(caller.stats.cache_misses.values()),
    "cache_path": caller.stats.cache_path,
}}))
"""

# Appended to the callee's module: the name now means a kernel that returns one more
# than before, as an edit of the callee's body would change it, whatever that body is.
CHANGED_CALLEE = """

from perpabm.compiled import kernel as _kernel

_{name}_before_the_change = {name}


@_kernel
def {name}(*args):
    return _{name}_before_the_change(*args) + 1.0
"""


def module_file(package: Path, module: str) -> Path:
    """The source file of `module` (a dotted name) in the copy of the package at `package`."""
    return package.parent.joinpath(*module.split(".")).with_suffix(".py")


def change(path: Path) -> None:
    """Change the source file at `path`, as little as can be."""
    with path.open("a", encoding="utf-8") as source:
        source.write("\n# changed\n")


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A copy of the package, without its caches, in a directory of its own."""
    return shutil.copytree(PACKAGE_DIR, tmp_path / "copy" / "perpabm",
                           ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture
def user_cache(tmp_path: Path) -> Path:
    """The user-wide cache directory the child processes see (XDG_CACHE_HOME)."""
    return tmp_path / "user-cache"


def run_caller(package: Path, user_cache: Path) -> dict:
    """Call CALLER in a fresh interpreter that imports the copy of the package at
    `package`: its result, its dispatcher's cache hits and misses, and where it is cached."""
    caller_module, _, caller_name = CALLER.rpartition(".")
    program = RUN_CALLER.format(caller_module=caller_module, caller_name=caller_name,
                                arguments=CALLER_ARGUMENTS)
    env = {name: value for name, value in os.environ.items() if not name.startswith("NUMBA_")}
    env |= {"PYTHONPATH": str(package.parent), "XDG_CACHE_HOME": str(user_cache)}
    done = subprocess.run([sys.executable, "-c", program], cwd=package.parent, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout.splitlines()[-1])
    assert Path(run["package"]).is_relative_to(package)  # the copy, not the installed one
    return run


def change_callee(package: Path) -> None:
    """Make CALLEE in the copy of the package at `package` return one more than before."""
    callee_module, _, callee_name = CALLEE.rpartition(".")
    with module_file(package, callee_module).open("a", encoding="utf-8") as source:
        source.write(CHANGED_CALLEE.format(name=callee_name))


def package_dispatchers() -> list[tuple[str, Dispatcher]]:
    """Every compiled function the package's modules define, by qualified name, found by
    importing every module (independently of how perpabm.compiled finds kernels)."""
    found = []
    for info in pkgutil.walk_packages(perpabm.__path__, "perpabm."):
        for name, value in vars(importlib.import_module(info.name)).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == info.name:
                found.append((f"{info.name}.{name}", value))
    return found


# ---------------------------------------------------------------------- the cache


@pytest.mark.slow
def test_a_second_run_loads_the_caller_from_the_cache_beside_its_source(package, user_cache):
    first = run_caller(package, user_cache)
    second = run_caller(package, user_cache)
    assert (first["cache_hits"], first["cache_misses"]) == (0, 1)
    assert (second["cache_hits"], second["cache_misses"]) == (1, 0)
    assert second["result"] == first["result"]
    caller_dir = module_file(package, CALLER.rpartition(".")[0]).parent
    assert Path(second["cache_path"]) == caller_dir / "__pycache__"


@pytest.mark.slow
def test_a_changed_callee_in_another_module_recompiles_its_cached_caller(package, user_cache):
    before = run_caller(package, user_cache)
    change_callee(package)
    after = run_caller(package, user_cache)
    assert after["result"] == before["result"] + 1.0
    assert (after["cache_hits"], after["cache_misses"]) == (0, 1)


@pytest.mark.slow
def test_an_unwritable_package_caches_in_numbas_user_wide_directory(package, user_cache):
    # A file named __pycache__ in every directory of the copy stops numba from making the
    # cache directory there, as a package installed read-only does (and unlike removing
    # write permissions, it also stops root).
    for directory in [package, *(path for path in package.rglob("*") if path.is_dir())]:
        (directory / "__pycache__").touch()
    first = run_caller(package, user_cache)
    second = run_caller(package, user_cache)
    assert (second["cache_hits"], second["cache_misses"]) == (1, 0)
    assert Path(second["cache_path"]).is_relative_to(user_cache / "numba")
    assert second["result"] == first["result"]


# ---------------------------------------------------------------------- the key


def test_the_key_changes_when_any_module_defining_kernels_changes(package):
    original = compiled.sources_key(package)
    files = {Path(inspect.getfile(function.py_func)) for _, function in package_dispatchers()}
    assert files
    for path in files:
        copied = package / path.relative_to(PACKAGE_DIR)
        source = copied.read_bytes()
        change(copied)
        assert compiled.sources_key(package) != original, path
        copied.write_bytes(source)
    assert compiled.sources_key(package) == original


def test_the_key_changes_when_a_module_kernels_take_constants_from_changes(package):
    original = compiled.sources_key(package)
    change(module_file(package, CONSTANTS_MODULE))
    assert compiled.sources_key(package) != original


def test_the_key_is_unchanged_by_a_module_no_kernel_reads(package):
    original = compiled.sources_key(package)
    change(module_file(package, UNRELATED_MODULE))
    assert compiled.sources_key(package) == original


def test_the_key_is_of_the_installed_package():
    assert compiled.package_key() == compiled.sources_key(PACKAGE_DIR) is not None


def test_without_source_files_there_is_no_key(tmp_path):
    assert compiled.sources_key(tmp_path / "perpabm.zip" / "perpabm") is None


# ---------------------------------------------------------------------- the decorator


def test_no_compiled_function_of_the_package_uses_numbas_per_file_cache():
    for name, function in package_dispatchers():
        assert not isinstance(function._cache, FunctionCache), name


# Two functions, because numba's cache keeps one entry per function and signature
# whatever the options it was compiled with.
def _divide(x: float, y: float) -> float:
    return x / y


def _divide_numpy_style(x: float, y: float) -> float:
    return x / y


def test_kernel_compiles_a_function_as_njit_does():
    divide = kernel(_divide)
    assert isinstance(divide, Dispatcher)
    assert divide.targetoptions["nopython"]
    assert divide(1.0, 4.0) == 0.25
    with pytest.raises(ZeroDivisionError):
        divide(1.0, 0.0)


def test_kernel_passes_its_options_to_numba():
    divide = kernel(error_model="numpy")(_divide_numpy_style)
    assert divide.targetoptions["error_model"] == "numpy"
    assert divide(1.0, 0.0) == np.inf


def test_kernel_refuses_a_cache_option():
    with pytest.raises(TypeError, match="always cached"):
        kernel(cache=False)

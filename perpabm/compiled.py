"""The decorator of perpabm's numba kernels, and their on-disk cache.

:func:`kernel` compiles a function as ``numba.njit`` does (every option passes through)
and caches the machine code on disk. The cache is keyed to all the package's kernel
sources, not only to the kernel's own file.

Why: numba's own cache (``njit(cache=True)``) checks a cached function only against
its own source file (a documented limitation: changes to what it calls in other files
go unseen). A kernel that calls a kernel of another module has the callee compiled
into it, so after the callee changes — an edit, or an upgrade in place, which leaves
the old ``__pycache__/*.nbi`` and ``*.nbc`` files behind — the caller loads stale
machine code, which can compute wrong results or crash the interpreter.

Design: each kernel gets numba's own :class:`~numba.core.caching.FunctionCache` with
one change: its source stamp is :func:`package_key` together with numba's stamp of the
kernel's file. A cached kernel is therefore used only if no kernel source of the
package changed since it was compiled; otherwise it is compiled again and its cache
entry overwritten. Everything else is numba's. numba picks where the cache lives:
``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` beside the source, else (a package
installed read-only) numba's user-wide cache directory (``~/.cache/numba`` on Linux)
under a name derived from the source's directory, so two copies of perpabm in
different directories keep separate caches. numba still checks its own version, the
Python version, the CPU and the function's bytecode. Nothing global is changed: other
libraries' functions keep numba's cache.

The kernel sources are found by reading the package's ``.py`` files, not from a list
kept by hand: a module defines kernels if it imports this module, and the sources are
those modules plus the package's modules they import directly, because the constants
a kernel reads from them (``STRATEGIES.index("noise")``) are compiled into it.
Constants that reach a kernel module through a chain of two imports are not seen.
Scanning keeps itself up to date as kernels move between modules; it reads ~40 small
files and runs a regular expression over those that mention this module, about 3 ms.
It needs only the installed files (no git), so an installed wheel works the same way.
It is done once per process, at the first compilation or cache load of a kernel, not
at import. If the sources cannot be read as files (a zipped package), kernels are not
cached.

numba API relied on (``numba.core``, the same from numba 0.61 to 0.68): the
``FunctionCache`` / ``CompileResultCacheImpl`` pair and its ``locator`` property, the
locator interface (``ensure_cache_path``, ``get_cache_path``, ``get_source_stamp``,
``get_disambiguator``), and the CPU dispatcher (``numba.core.registry.CPUDispatcher``,
what ``numba.njit`` makes), whose ``enable_caching`` :class:`KernelDispatcher`
overrides to install this cache. The locator that numba picks is wrapped, not
subclassed: the locators' class names changed after numba 0.61.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, overload

import numba
from numba.core.caching import CompileResultCacheImpl, FunctionCache, NullCache
from numba.core.errors import NumbaWarning
from numba.core.registry import CPUDispatcher

PACKAGE_DIR = Path(__file__).resolve().parent
_THIS_MODULE = __name__.rpartition(".")[2]  # "compiled", whatever the package's path

# `import a.b, c as d` or `from a.b import x, y as z` / `from .. import (x, y)`, at any
# indentation (an import inside a function or under TYPE_CHECKING counts too: seeing too
# many dependencies only costs a recompilation).
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]*)"
    r"|import[ \t]+(?P<modules>[^\n#;]*))",
    re.MULTILINE,
)


def _names(listed: str) -> list[str]:
    """The imported names of an import's list (``a as b, c`` → a, c)."""
    return [item.split()[0] for item in listed.strip("()").split(",") if item.strip()]


def _imported_modules(source: str, module: str, is_package: bool,
                      modules: Collection[str]) -> set[str]:
    """Which of `modules` the source of `module` imports: ``import a.b`` names a.b, and
    ``from a import b`` names a.b if that is a module, else a (b is defined in a)."""
    found = set()
    for match in _IMPORT.finditer(source):
        if match["modules"] is not None:
            found.update(_names(match["modules"]))
            continue
        base = match["base"]
        dots = len(base) - len(base.lstrip("."))
        if dots:  # relative: resolve against the importing module's package
            parts = module.split(".")
            parent = parts[:len(parts) - dots + (1 if is_package else 0)]
            base = ".".join([*parent, base[dots:]]).rstrip(".")
        for name in _names(match["names"]):
            found.add(f"{base}.{name}" if f"{base}.{name}" in modules else base)
    return found & set(modules)


def _kernel_source_files(package_dir: Path) -> dict[str, bytes]:
    """The contents of :func:`kernel_sources`, by path relative to `package_dir`."""
    package = package_dir.name
    modules: dict[str, tuple[str, bool]] = {}  # name → (relative path, is an __init__)
    contents: dict[str, bytes] = {}  # relative path → source
    for directory, subdirectories, names in os.walk(package_dir):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        relative = Path(directory).relative_to(package_dir).parts
        for name in names:
            if name.endswith(".py"):
                path = "/".join((*relative, name))
                is_package = name == "__init__.py"
                module = (package, *relative) if is_package else (package, *relative, name[:-3])
                modules[".".join(module)] = (path, is_package)
                with open(os.path.join(directory, name), "rb") as file:
                    contents[path] = file.read()
    this_module = f"{package}.{_THIS_MODULE}"
    sources: dict[str, bytes] = {}
    for module, (path, is_package) in modules.items():
        if _THIS_MODULE.encode() not in contents[path]:  # cannot import it: skip the parse
            continue
        imported = _imported_modules(contents[path].decode("utf-8"), module, is_package,
                                     modules)
        if this_module in imported:
            for source, _ in [(path, is_package), *(modules[name] for name in imported)]:
                sources[source] = contents[source]
    return dict(sorted(sources.items()))


def kernel_sources(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The source files that the kernels of the package in `package_dir` are compiled
    from: each module that imports this module, and each module of the package that one
    of those imports directly. Sorted."""
    return [package_dir / path for path in _kernel_source_files(package_dir)]


def sources_key(package_dir: Path = PACKAGE_DIR) -> str | None:
    """A hash of the names and contents of :func:`kernel_sources`, or None if there are
    none (the package is not a directory of source files)."""
    sources = _kernel_source_files(package_dir) if package_dir.is_dir() else {}
    if not sources:
        return None
    digest = hashlib.sha256()
    for path, content in sources.items():
        digest.update(f"{path}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()


@functools.cache
def package_key() -> str | None:
    """:func:`sources_key` of this package, computed once per process."""
    return sources_key(PACKAGE_DIR)


class _PackageStampedLocator:
    """numba's cache locator for a kernel, its source stamp widened to the package's
    kernel sources (a stamp is any picklable value numba compares for equality)."""

    def __init__(self, located: Any) -> None:
        self._located = located

    def ensure_cache_path(self) -> None:
        self._located.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._located.get_cache_path()

    def get_source_stamp(self) -> tuple[str | None, Any]:
        return package_key(), self._located.get_source_stamp()

    def get_disambiguator(self) -> str:
        return self._located.get_disambiguator()


class _KernelCacheImpl(CompileResultCacheImpl):
    """numba's caching of compile results, through :class:`_PackageStampedLocator`."""

    @functools.cached_property
    def locator(self) -> _PackageStampedLocator:  # numba reads it in __init__ already
        return _PackageStampedLocator(super().locator)


class KernelCache(FunctionCache):
    """numba's function cache, valid only while the package's kernel sources are
    unchanged."""

    _impl_class = _KernelCacheImpl


class _DeferredKernelCache:
    """A dispatcher's cache that becomes a :class:`KernelCache` on first use, so that
    importing the package neither hashes the sources nor touches the cache directories
    (numba stamps a cache when it is made)."""

    def __init__(self, py_func: Callable[..., Any]) -> None:
        self._py_func = py_func

    @functools.cached_property
    def _cache(self) -> KernelCache | NullCache:
        if package_key() is None:  # no source files to key the cache to
            return NullCache()
        try:
            return KernelCache(self._py_func)
        except RuntimeError as error:  # numba found no writable cache directory
            warnings.warn(f"{error}: it is compiled in every process", NumbaWarning,
                          stacklevel=2)
            return NullCache()

    @property
    def cache_path(self) -> str | None:
        return self._cache.cache_path

    def load_overload(self, sig: Any, target_context: Any) -> Any:
        return self._cache.load_overload(sig, target_context)

    def save_overload(self, sig: Any, data: Any) -> None:
        self._cache.save_overload(sig, data)

    def enable(self) -> None:
        self._cache.enable()

    def disable(self) -> None:
        self._cache.disable()

    def flush(self) -> None:
        self._cache.flush()


@overload
def kernel[F: Callable[..., Any]](function: F, /) -> F: ...


@overload
def kernel[F: Callable[..., Any]](**options: Any) -> Callable[[F], F]: ...


def kernel(function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """``numba.njit(**options)`` with the package's on-disk cache: ``@kernel``,
    ``@kernel(error_model="numpy")`` or ``kernel(**options)(function)``."""
    if "cache" in options:
        raise TypeError("a kernel is always cached; use numba.njit for one that is not")
    if function is None:
        return functools.partial(kernel, **options)
    if numba.config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the plain function, as njit gives
        return function
    # The target options numba.njit(**options) gives its dispatcher.
    dispatcher = KernelDispatcher(py_func=function, locals={},
                                  targetoptions={"nopython": True, "boundscheck": None,
                                                 **options})
    dispatcher.enable_caching()
    return dispatcher


class KernelDispatcher(CPUDispatcher):
    """numba's CPU dispatcher (what ``numba.njit`` makes) whose on-disk cache is a
    :class:`KernelCache`, made when first used."""

    def enable_caching(self) -> None:
        self._cache = _DeferredKernelCache(self.py_func)

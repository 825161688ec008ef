"""Architecture rules for perpabm, checked on the source text with :mod:`ast`.

Nothing here imports perpabm: the rules are about how the code is written, so they
hold (or fail) whatever state the package is in, and the checks are cheap.

Rule 1: imports flow one way, with no cycle
===========================================

The import graph has one node per module of perpabm (its dotted name; a package's
``__init__.py`` is the package's module) and one edge per import of another
perpabm module. Every import counts, wherever it is: at module level, inside a
function (a "late" import still couples the two modules), and inside
``if TYPE_CHECKING:`` (an annotation-only import still says which module knows
about which). ``importlib.import_module("perpabm.x")`` and ``__import__`` with a
literal name count too. ``from perpabm.exchange import ledger`` is an edge to
``perpabm.exchange.ledger`` when ``ledger`` is a submodule, and to
``perpabm.exchange`` otherwise. Only the named module is an edge, not its parent
packages that Python runs first: otherwise every module would depend on
``perpabm/__init__.py``, which re-exports everything.

The graph must have no cycle, and every edge must go from a module to one in the
same or a lower layer of ``LAYERS`` below (edges inside a layer are allowed; the
no-cycle rule keeps them one-way). A module matches the longest entry of the
table that is its own name or a package above it, so a new submodule such as
``perpabm.exchange.kernels.book`` falls in its package's layer; a module that
matches no entry fails ``test_every_module_has_a_layer``. The root package
``perpabm`` matches only itself and sits above every layer: it re-exports the
public API, so it may import anything and nothing may import it (``from perpabm
import mechanics`` is an edge to ``perpabm.mechanics``, not to ``perpabm``).
``perpabm.market`` and ``perpabm.agents`` share a layer but are peers: neither
imports the other. A module that imports itself counts as a cycle of one.

The graph is only right if every import names something real, so
``test_every_perpabm_import_resolves`` also checks that each imported perpabm
module exists (a directory without ``__init__.py`` counts, as Python imports it
as a namespace package) and that each ``from m import n`` names a submodule of
``m`` or a name ``m`` binds at top level (anything, if ``m`` has a ``*`` import
or a module ``__getattr__``). Mid-restructuring, a stale import of a moved
module would otherwise pass as an edge to the wrong module.

The layers, lowest first, and why the less obvious modules are where they are:

0. foundations -- ``errors``, ``mechanics``, ``adl`` and ``compiled`` (the kernel
   decorator): pure functions, exception types and the compiler's cache, which
   import nothing above them.
1. configuration -- ``config``, ``presets`` and ``scenarios``. ``presets`` is the
   public module of the venue presets, which ``config.exchange`` defines;
   ``scenarios`` reads packaged TOML files into ``ScenarioConfig`` values and
   imports nothing but ``config`` and ``errors``: it is configuration data, not
   simulation, so it sits here rather than with the model.
2. exchange -- the engine, book, ledger, matching kernels and waterfall.
3. market and agents -- the index-price processes and the Mesa agents, which
   act on the exchange.
4. model -- ``PerpMarketModel`` wires market, agents and exchange together;
   ``clock`` says how it cuts a step into ticks.
5. run output -- ``results`` (the ``Results`` tables) and ``storage`` (their
   Parquet/JSON files). The runner builds a ``Results`` and writes through
   ``RunStore``, so both must sit below it; they import no simulation module and
   the simulation should not know how runs are stored, so they sit above the
   model rather than with the foundations.
6. runner -- Monte Carlo paths and sweeps over the model.
7. applications -- ``analysis``, ``plots``, ``report`` (the standard tables and
   figures of a results folder, from those two), ``validate`` (stylized-fact
   statistics on returns), ``demo`` (a scripted crash on the bare exchange) and
   ``cli``: consumers of everything below that nothing in the library uses
   (``cli`` runs ``demo``; both are in this layer).

Rule 2: no access to another object's private names
===================================================

An attribute whose name starts with an underscore and is not a dunder (``_x``,
and name-mangled ``__x``) belongs to its object. ``X._name`` (and
``getattr``/``setattr``/``hasattr``/``delattr`` of ``X`` with a literal private
name) is allowed only when:

* ``X`` is ``self`` or ``cls`` inside a class, ``super()`` (with or without
  arguments), ``type(self)``/``self.__class__``, or the name of the enclosing
  class itself;
* inside a method, ``X`` is a local name known to hold an instance of the
  enclosing class: a parameter or annotated variable whose annotation is that
  class's name (also quoted, as ``Self``, or as one member of a ``X | None``
  union), or a variable assigned directly from ``cls(...)``, ``ClassName(...)``,
  ``type(self)(...)`` or a ``__new__`` of those (as ``copy``/``__eq__`` do). A
  class's own code may use its own instances' internals; the rule is about
  reaching into *other* classes. The inference is per method and not flow
  sensitive (a rebound name keeps its first meaning); anything it cannot show to
  be the same class is flagged -- the fix is a public method or property;
* the name is part of ``namedtuple``'s public API: ``_replace``, ``_fields``,
  ``_asdict``, ``_make``, ``_field_defaults``.

Private names of modules follow the same rule: ``from perpabm.m import _name``,
``import perpabm.m._private``, and ``m._name`` where ``m`` is bound by an import
of a perpabm module are flagged unless the importing module *is* ``perpabm.m``
or lies inside it (a package shares its private names, and private submodules,
with its own submodules). Private names of third-party packages are out of scope
for imports; an attribute access such as ``np._x`` is still flagged by the
object rule.

Every failing check lists every violation as ``path:line: description``, so one
run gives the whole work list. There is deliberately no allow-list.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT_PACKAGE = "perpabm"
REPO_DIR = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_DIR / ROOT_PACKAGE

# (layer name, module prefixes), lowest layer first. A prefix matches the module
# of that name and every module inside it. See the module docstring for the why.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundations", ("perpabm.errors", "perpabm.compiled", "perpabm.mechanics", "perpabm.adl")),
    ("configuration", ("perpabm.config", "perpabm.presets", "perpabm.scenarios")),
    ("exchange", ("perpabm.exchange",)),
    ("market and agents", ("perpabm.market", "perpabm.agents")),
    ("model", ("perpabm.model", "perpabm.clock")),
    ("run output", ("perpabm.results", "perpabm.storage")),
    ("runner", ("perpabm.runner",)),
    ("applications", (
        "perpabm.analysis", "perpabm.plots", "perpabm.report", "perpabm.validate",
        "perpabm.calibration",
        "perpabm.demo", "perpabm.cli",
    )),
)
ROOT_LAYER = len(LAYERS)  # the re-exporting root package sits above every layer

# Packages in one layer that must not import each other.
PEER_PACKAGES: tuple[str, str] = ("perpabm.market", "perpabm.agents")

# namedtuple's public API is spelled with a leading underscore to avoid field names.
NAMEDTUPLE_API = frozenset({"_replace", "_fields", "_asdict", "_make", "_field_defaults"})

ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceModule:
    """One parsed module: its dotted name, the path to print, and its syntax tree."""

    name: str
    display_path: str
    tree: ast.Module
    is_package: bool


@dataclass(frozen=True, repr=False)
class Package:
    """Every module of perpabm that parsed, and the files that did not."""

    modules: dict[str, SourceModule]
    parse_errors: list[str]

    @property
    def module_names(self) -> frozenset[str]:
        return importable_modules(self.modules)

    def __repr__(self) -> str:  # pytest prints the fixture: keep it to one line
        return f"Package({len(self.modules)} modules, {len(self.parse_errors)} unparsable)"


def importable_modules(file_modules: Iterable[str]) -> frozenset[str]:
    """The modules of files and every package above them, directories without an
    ``__init__.py`` (namespace packages) included, since those import too."""
    names: set[str] = set()
    for module in file_modules:
        parts = module.split(".")
        names.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return frozenset(names)


def module_name(path: Path, package_dir: Path) -> tuple[str, bool]:
    """Dotted module name of `path` under `package_dir`, and whether it is a package."""
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def load_package(package_dir: Path = PACKAGE_DIR) -> Package:
    """Parse every .py file under `package_dir`; files that fail to parse are listed."""
    modules: dict[str, SourceModule] = {}
    parse_errors: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        display_path = path.relative_to(package_dir.parent).as_posix()
        name, is_package = module_name(path, package_dir)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=display_path)
        except (SyntaxError, UnicodeDecodeError) as error:
            line = getattr(error, "lineno", None) or 1
            parse_errors.append(f"{display_path}:{line}: cannot be parsed: {error}")
            continue
        modules[name] = SourceModule(name, display_path, tree, is_package)
    return Package(modules, parse_errors)


def snippet(source: str, name: str = "perpabm.exchange.engine",
            is_package: bool = False) -> SourceModule:
    """A module made from inline source, for the checkers' own tests."""
    path = name.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    return SourceModule(name, path, ast.parse(source), is_package)


@pytest.fixture(scope="module")
def package() -> Package:
    return load_package()


def is_private(name: str) -> bool:
    """A leading underscore that is not a dunder: ``_x`` and name-mangled ``__x``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def in_perpabm(dotted: str) -> bool:
    return dotted == ROOT_PACKAGE or dotted.startswith(ROOT_PACKAGE + ".")


def is_within(module: str, owner: str) -> bool:
    """Whether `module` is `owner` or a module inside the package `owner`."""
    return module == owner or module.startswith(owner + ".")


# ----------------------------------------------------------------------------- imports


@dataclass(frozen=True)
class ImportEdge:
    """One import statement of one perpabm module by another."""

    importer: str
    imported: str
    display_path: str
    line: int

    @property
    def location(self) -> str:
        return f"{self.display_path}:{self.line}"


def absolute_module(module: SourceModule, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` in `module`."""
    if level == 0:
        return target or ""
    package_parts = module.name.split(".")
    if not module.is_package:
        package_parts.pop()
    base = package_parts[: len(package_parts) - (level - 1)]
    return ".".join([*base, *([target] if target else [])])


def imported_names(module: SourceModule, known_modules: Set[str]) -> Iterable[tuple[str, int]]:
    """(absolute dotted name, line) of everything `module` imports, anywhere in it.

    ``from m import n`` yields ``m.n`` when that is a module (a submodule import), and
    ``m`` otherwise; the result may lie outside perpabm.
    """
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = absolute_module(module, node.level, node.module)
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                yield (candidate if candidate in known_modules else source), node.lineno
        elif isinstance(node, ast.Call) and (target := dynamic_import_target(node)):
            yield target, node.lineno


def dynamic_import_target(call: ast.Call) -> str | None:
    """The literal module name of ``importlib.import_module("x")`` or ``__import__("x")``."""
    function = call.func
    function_name = (function.attr if isinstance(function, ast.Attribute)
                     else function.id if isinstance(function, ast.Name) else None)
    if function_name not in {"import_module", "__import__"} or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def import_edges(module: SourceModule, known_modules: Set[str]) -> list[ImportEdge]:
    """Every import of a perpabm module in `module`, one edge per statement and target."""
    edges = {
        ImportEdge(module.name, imported, module.display_path, line)
        for imported, line in imported_names(module, known_modules)
        if in_perpabm(imported)
    }
    return sorted(edges, key=lambda e: (e.line, e.imported))


def package_edges(package: Package) -> list[ImportEdge]:
    return [edge for module in package.modules.values()
            for edge in import_edges(module, package.module_names)]


def top_level_names(tree: ast.Module) -> set[str] | None:
    """Names `tree` binds outside functions and classes; None when any name may be
    bound (a ``*`` import or a module-level ``__getattr__``)."""
    names: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
            continue  # their bodies bind local names only
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        pending.extend(ast.iter_child_nodes(node))
    return names


def unresolved_imports(module: SourceModule, modules: Mapping[str, SourceModule],
                       module_names: Set[str]) -> list[str]:
    """Imports of perpabm modules, or of names from them, that do not exist.

    The graph checks trust every import to name something real: mid-restructuring, an
    import of a moved module would otherwise pass as an edge to the wrong module.
    """
    violations = []

    def missing(line: int, what: str) -> None:
        violations.append(f"{module.display_path}:{line}: {module.name} imports {what}")

    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import | ast.Call):
            targets = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [target] if (target := dynamic_import_target(node)) else [])
            for target in targets:
                if in_perpabm(target) and target not in module_names:
                    missing(node.lineno, f"{target}, which does not exist")
        elif isinstance(node, ast.ImportFrom):
            source = absolute_module(module, node.level, node.module)
            if not in_perpabm(source):
                continue
            if source not in module_names:
                missing(node.lineno, f"from {source}, which does not exist")
                continue
            source_module = modules.get(source)
            bound = top_level_names(source_module.tree) if source_module else set()
            for alias in node.names:
                if (alias.name != "*" and f"{source}.{alias.name}" not in module_names
                        and bound is not None and alias.name not in bound):
                    missing(node.lineno, f"{alias.name} from {source}, which is neither a "
                                         f"name defined there nor a submodule")
    return sorted(violations, key=lambda v: int(v.split(":")[1]))


# ----------------------------------------------------------------------------- cycles


def strongly_connected_components(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components in no particular order, nodes sorted."""
    index_of: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index_of[node] = lowlink[node] = len(index_of)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index_of:
                visit(successor)
                lowlink[node] = min(lowlink[node], lowlink[successor])
            elif successor in on_stack:
                lowlink[node] = min(lowlink[node], index_of[successor])
        if lowlink[node] == index_of[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index_of:
            visit(node)
    return components


def shortest_path(graph: Mapping[str, Set[str]], start: str, goal: str,
                  allowed: Set[str]) -> list[str]:
    """Breadth-first path from `start` to `goal` through `allowed` nodes (both ends kept)."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while (step := previous[path[-1]]) is not None:
                path.append(step)
            return path[::-1]
        for successor in sorted(graph.get(node, ())):
            if successor in allowed and successor not in previous:
                previous[successor] = node
                queue.append(successor)
    raise AssertionError(f"no path from {start} to {goal} inside its component")


def find_cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """Cycles (first node repeated at the end) that together use every edge on a cycle.

    For each edge u → v inside a strongly connected component, the shortest way back
    from v to u closes a cycle through that edge, so every import that must change to
    break the cycles appears in some reported cycle. Each cycle starts at its
    smallest module name, so the output is deterministic.
    """
    cycles: set[tuple[str, ...]] = set()
    for component in strongly_connected_components(graph):
        members = set(component)
        for importer in component:
            for imported in sorted(graph.get(importer, set()) & members):
                ring = [importer, *shortest_path(graph, imported, importer, members)[:-1]]
                turn = ring.index(min(ring))
                rotated = ring[turn:] + ring[:turn]
                cycles.add((*rotated, rotated[0]))
    return [list(cycle) for cycle in sorted(cycles)]


def import_graph(edges: Iterable[ImportEdge], modules: Iterable[str] = ()) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    return graph


def cycle_violations(edges: list[ImportEdge], modules: Iterable[str] = ()) -> list[str]:
    """One entry per cycle: where it starts, the modules in order, and every import in it."""
    locations: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        locations.setdefault((edge.importer, edge.imported), []).append(edge.location)
    violations = []
    for cycle in find_cycles(import_graph(edges, modules)):
        hops = list(itertools.pairwise(cycle))
        lines = [f"{locations[hops[0]][0]}: import cycle {' -> '.join(cycle)}"]
        lines += [f"    {location}: {importer} imports {imported}"
                  for importer, imported in hops
                  for location in locations[(importer, imported)]]
        violations.append("\n".join(lines))
    return violations


# ----------------------------------------------------------------------------- layers


def layer_of(module: str) -> int | None:
    """Index in LAYERS of the longest prefix matching `module`; ROOT_LAYER for the root."""
    if module == ROOT_PACKAGE:
        return ROOT_LAYER
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for layer, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if is_within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def layer_label(layer: int) -> str:
    name = "root package" if layer == ROOT_LAYER else LAYERS[layer][0]
    return f"layer {layer}, {name}"


def unlayered_modules(modules: Iterable[SourceModule]) -> list[str]:
    return [f"{module.display_path}:1: {module.name} is in no layer: add it (or a package "
            f"above it) to LAYERS in tests/test_architecture.py"
            for module in sorted(modules, key=lambda m: m.name) if layer_of(module.name) is None]


def upward_imports(edges: Iterable[ImportEdge]) -> list[str]:
    """Imports of a module in a higher layer (or in no layer: a module that does not exist)."""
    violations = []
    for edge in edges:
        importer_layer, imported_layer = layer_of(edge.importer), layer_of(edge.imported)
        if importer_layer is None:
            continue  # reported by test_every_module_has_a_layer
        if imported_layer is None:
            violations.append(f"{edge.location}: {edge.importer} imports {edge.imported}, "
                              f"which is in no layer of LAYERS")
        elif imported_layer > importer_layer:
            violations.append(f"{edge.location}: {edge.importer} ({layer_label(importer_layer)}) "
                              f"imports {edge.imported} ({layer_label(imported_layer)}), "
                              f"a higher layer")
    return sorted(violations)


def peer_imports(edges: Iterable[ImportEdge],
                 peers: tuple[str, str] = PEER_PACKAGES) -> list[str]:
    first, second = peers
    return sorted(
        f"{edge.location}: {edge.importer} imports {edge.imported}; {first} and {second} "
        f"are peers and must not import each other"
        for edge in edges
        if (is_within(edge.importer, first) and is_within(edge.imported, second))
        or (is_within(edge.importer, second) and is_within(edge.imported, first)))


# ----------------------------------------------------------------------------- private names


@dataclass(frozen=True)
class PrivateAccess:
    """A use of a private name that the rule forbids."""

    display_path: str
    line: int
    description: str

    def __str__(self) -> str:
        return f"{self.display_path}:{self.line}: {self.description}"


def import_bindings(module: SourceModule) -> dict[str, str]:
    """Local name -> absolute dotted name it is bound to by an import, anywhere in `module`.

    Function-level imports are included as if module-level: shadowing an import
    with an unrelated local of the same name is rare enough to ignore.
    """
    bindings: dict[str, str] = {}
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bindings[alias.asname] = alias.name
                else:  # ``import a.b.c`` binds ``a``; ``a.b.c.x`` then resolves in full
                    top = alias.name.split(".")[0]
                    bindings[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = absolute_module(module, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    bindings[alias.asname or alias.name] = f"{source}.{alias.name}"
    return bindings


def private_owner(importer: str, dotted: str) -> tuple[str, str] | None:
    """(owner, private part) of the first private part of `dotted` `importer` may not use."""
    parts = dotted.split(".")
    for position, part in enumerate(parts[1:], start=1):
        owner = ".".join(parts[:position])
        if is_private(part) and not is_within(importer, owner):
            return owner, part
    return None


def annotation_names_class(annotation: ast.expr | None, class_name: str) -> bool:
    """Whether `annotation` is `class_name`, ``Self``, quoted, or a union containing one."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return (annotation_names_class(annotation.left, class_name)
                or annotation_names_class(annotation.right, class_name))
    if isinstance(annotation, ast.Name):
        return annotation.id in {class_name, "Self"}
    if isinstance(annotation, ast.Attribute):  # typing.Self
        return annotation.attr == "Self"
    return False


def is_own_class_expression(node: ast.expr, class_name: str) -> bool:
    """``cls``, the class's name, or ``type(self)``/``self.__class__``: the class itself."""
    if isinstance(node, ast.Name):
        return node.id in {"cls", class_name}
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "type" and len(node.args) == 1):
        return isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
    return (isinstance(node, ast.Attribute) and node.attr == "__class__"
            and isinstance(node.value, ast.Name) and node.value.id == "self")


def constructs_own_class(value: ast.expr | None, class_name: str) -> bool:
    """``cls(...)``, ``ClassName(...)``, ``type(self)(...)`` or a ``__new__`` of those."""
    if not isinstance(value, ast.Call):
        return False
    function = value.func
    if isinstance(function, ast.Attribute) and function.attr == "__new__":
        return (is_own_class_expression(function.value, class_name)
                or (isinstance(function.value, ast.Name) and function.value.id == "object"))
    return is_own_class_expression(function, class_name)


def own_instance_names(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
                       class_name: str) -> set[str]:
    """Names in `function` that hold an instance of `class_name` (see the docstring)."""
    arguments = function.args
    every_argument = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                      *filter(None, [arguments.vararg, arguments.kwarg])]
    names = {argument.arg for argument in every_argument
             if annotation_names_class(argument.annotation, class_name)}
    body = function.body if isinstance(function.body, list) else [function.body]
    for statement in body:
        for node in ast.walk(statement):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and (annotation_names_class(node.annotation, class_name)
                         or constructs_own_class(node.value, class_name))):
                names.add(node.target.id)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name)
                  and constructs_own_class(node.value, class_name)):
                names.add(node.targets[0].id)
    return names


class PrivateAccessFinder(ast.NodeVisitor):
    """Collects private-name uses, split into other objects' and other modules'."""

    def __init__(self, module: SourceModule, known_modules: Set[str]) -> None:
        self.module = module
        self.known_modules = known_modules
        self.bindings = import_bindings(module)
        self.class_names: list[str] = []
        self.instance_names: list[set[str]] = [set()]  # innermost function's own-class names
        self.of_objects: list[PrivateAccess] = []
        self.of_modules: list[PrivateAccess] = []

    def report(self, findings: list[PrivateAccess], line: int, description: str) -> None:
        findings.append(PrivateAccess(self.module.display_path, line, description))

    # -- scopes

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.class_names.append(node.name)
        # A class body does not see its enclosing function's locals as own instances.
        self.instance_names.append(set())
        self.generic_visit(node)
        self.instance_names.pop()
        self.class_names.pop()

    def visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        inherited = self.instance_names[-1]
        own = own_instance_names(node, self.class_names[-1]) if self.class_names else set()
        self.instance_names.append(inherited | own)
        self.generic_visit(node)
        self.instance_names.pop()

    visit_FunctionDef = visit_function
    visit_AsyncFunctionDef = visit_function
    visit_Lambda = visit_function

    # -- uses

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module_reference(alias.name, node.lineno, "imports")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = absolute_module(self.module, node.level, node.module)
        for alias in node.names:
            dotted = source if alias.name == "*" else f"{source}.{alias.name}"
            self.check_module_reference(dotted, node.lineno, "imports")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.check_attribute(node.value, node.attr, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_FUNCTIONS
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            self.check_attribute(node.args[0], node.args[1].value, node.lineno)
        self.generic_visit(node)

    # -- the rule

    def check_module_reference(self, dotted: str, line: int, verb: str) -> None:
        if not in_perpabm(dotted):
            return  # third-party private imports are out of this test's scope
        forbidden = private_owner(self.module.name, dotted)
        if forbidden is not None:
            owner, private = forbidden
            self.report(self.of_modules, line,
                        f"{self.module.name} {verb} private name {private} of {owner}")

    def resolve(self, node: ast.expr) -> str | None:
        """The absolute dotted name `node` refers to through the imports, if it does."""
        if isinstance(node, ast.Name):
            return self.bindings.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def check_attribute(self, target: ast.expr, name: str, line: int) -> None:
        if not is_private(name) or name in NAMEDTUPLE_API:
            return
        imported_as = self.resolve(target)
        if imported_as is not None and (imported_as in self.known_modules
                                        or imported_as == ROOT_PACKAGE):
            self.check_module_reference(f"{imported_as}.{name}", line, "uses")
            return
        if self.is_own_object(target):
            return
        self.report(self.of_objects, line,
                    f"{ast.unparse(target)}.{name}: private attribute of another object "
                    f"(not self, cls, super() or an instance of the enclosing class)")

    def is_own_object(self, target: ast.expr) -> bool:
        if not self.class_names:
            return False  # outside a class ``self`` is just a name
        class_name = self.class_names[-1]
        if isinstance(target, ast.Name):
            return target.id in {"self"} | self.instance_names[-1] or (
                is_own_class_expression(target, class_name))
        if (isinstance(target, ast.Call) and isinstance(target.func, ast.Name)
                and target.func.id == "super"):
            return True
        return is_own_class_expression(target, class_name)


def private_accesses(module: SourceModule,
                     known_modules: Set[str]) -> tuple[list[PrivateAccess], list[PrivateAccess]]:
    """(private attributes of other objects, private names of other modules) in `module`."""
    finder = PrivateAccessFinder(module, known_modules)
    finder.visit(module.tree)
    return finder.of_objects, finder.of_modules


def fail_on(title: str, violations: list[str]) -> None:
    """Fail with every violation on its own line; no traceback, the list is the message."""
    if violations:
        pytest.fail(f"{title} ({len(violations)}):\n" + "\n".join(violations), pytrace=False)


# ============================================================================= the rules


def test_every_module_parses(package: Package) -> None:
    fail_on("modules the checks cannot read", package.parse_errors)


def test_every_module_has_a_layer(package: Package) -> None:
    violations = unlayered_modules(package.modules.values())
    fail_on("modules in no layer", violations)


def test_every_perpabm_import_resolves(package: Package) -> None:
    violations = [violation for module in package.modules.values()
                  for violation in unresolved_imports(module, package.modules,
                                                      package.module_names)]
    fail_on("imports of modules or names that do not exist", violations)


def test_import_graph_has_no_cycle(package: Package) -> None:
    violations = cycle_violations(package_edges(package), package.modules)
    fail_on("import cycles", violations)


def test_imports_flow_down_the_layers(package: Package) -> None:
    violations = upward_imports(package_edges(package))
    fail_on("imports of a higher layer", violations)


def test_market_and_agents_are_peers(package: Package) -> None:
    violations = peer_imports(package_edges(package))
    fail_on("imports between peers", violations)


def test_no_private_attribute_of_another_object(package: Package) -> None:
    violations = [str(access) for module in package.modules.values()
                  for access in private_accesses(module, package.module_names)[0]]
    fail_on("private attributes of other objects", violations)


def test_no_private_name_imported_from_another_module(package: Package) -> None:
    violations = [str(access) for module in package.modules.values()
                  for access in private_accesses(module, package.module_names)[1]]
    fail_on("private names of other modules", violations)


# ============================================================================= the checkers

KNOWN = frozenset({
    "perpabm", "perpabm.mechanics", "perpabm.model", "perpabm.exchange",
    "perpabm.exchange.engine", "perpabm.exchange.ledger", "perpabm.exchange.book",
    "perpabm.exchange.liquidation",
})


def imported_by(source: str, name: str = "perpabm.exchange.engine",
                is_package: bool = False) -> list[str]:
    return [edge.imported for edge in import_edges(snippet(source, name, is_package), KNOWN)]


def test_layer_table_names_each_prefix_once() -> None:
    prefixes = [prefix for _, layer_prefixes in LAYERS for prefix in layer_prefixes]
    assert len(prefixes) == len(set(prefixes))
    assert all(in_perpabm(prefix) and prefix != ROOT_PACKAGE for prefix in prefixes)


@pytest.mark.parametrize("source, imported", [
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from perpabm.model import M\n",
     ["perpabm.model"]),
    ("def late():\n    import perpabm.model\n", ["perpabm.model"]),
    ("from perpabm.exchange import ledger, Exchange\n",
     ["perpabm.exchange", "perpabm.exchange.ledger"]),
    ("from perpabm import mechanics\n", ["perpabm.mechanics"]),
    ("from perpabm import Results\n", ["perpabm"]),
    ("from . import ledger\nfrom .book import OrderBook\nfrom .. import model\n",
     ["perpabm.exchange.ledger", "perpabm.exchange.book", "perpabm.model"]),
    ("import importlib\nimportlib.import_module('perpabm.model')\n", ["perpabm.model"]),
    ("import numpy as np\nfrom collections import deque\n", []),
])
def test_import_edges_count_every_import(source: str, imported: list[str]) -> None:
    assert imported_by(source) == imported


def test_relative_import_in_a_package_init_is_relative_to_the_package() -> None:
    assert imported_by("from . import engine\n", "perpabm.exchange", is_package=True) == [
        "perpabm.exchange.engine"]


def test_imports_of_missing_modules_and_names_are_flagged() -> None:
    exchange = snippet("from perpabm.exchange.book import OrderBook\nSIDES = 2\n",
                       "perpabm.exchange", is_package=True)
    modules = {"perpabm.exchange": exchange}
    source = ("from perpabm.exchange import ledger, OrderBook, SIDES, book_arrays\n"
              "from perpabm.exchange.book_arrays import BUY\n"
              "import perpabm.exchange.margin\n"
              "import perpabm.model\n")
    violations = unresolved_imports(snippet(source, "perpabm.model"), modules, KNOWN)
    assert [violation.split(": ", 1)[1] for violation in violations] == [
        "perpabm.model imports book_arrays from perpabm.exchange, which is neither a name "
        "defined there nor a submodule",
        "perpabm.model imports from perpabm.exchange.book_arrays, which does not exist",
        "perpabm.model imports perpabm.exchange.margin, which does not exist"]


def test_star_imports_and_module_getattr_may_bind_any_name() -> None:
    assert top_level_names(ast.parse("from x import *\n")) is None
    assert top_level_names(ast.parse("def __getattr__(name): ...\n")) is None
    assert top_level_names(ast.parse(
        "import a.b\nif X:\n    from c import d as e\ntry:\n    F = 1\nexcept E:\n    pass\n"
        "def g(h):\n    i = 2\nclass J:\n    k = 3\n")) == {"a", "e", "F", "g", "J"}


def test_cycle_is_found_in_order() -> None:
    assert find_cycles({"b": {"a"}, "a": {"b"}}) == [["a", "b", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c", "a"]]


def test_every_edge_on_a_cycle_is_in_some_reported_cycle() -> None:
    cycles = find_cycles({"a": {"b", "c"}, "b": {"a"}, "c": {"a"}})
    assert cycles == [["a", "b", "a"], ["a", "c", "a"]]


def test_acyclic_graph_and_self_import() -> None:
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"a"}}) == [["a", "a"]]


def test_cycle_violation_lists_every_import_in_it() -> None:
    engine = snippet("def f():\n    from perpabm.exchange.liquidation import L\n")
    liquidation = snippet("from perpabm.exchange.engine import E\n",
                          "perpabm.exchange.liquidation")
    edges = [*import_edges(engine, KNOWN), *import_edges(liquidation, KNOWN)]
    assert cycle_violations(edges) == [
        "perpabm/exchange/engine.py:2: import cycle perpabm.exchange.engine -> "
        "perpabm.exchange.liquidation -> perpabm.exchange.engine\n"
        "    perpabm/exchange/engine.py:2: perpabm.exchange.engine imports "
        "perpabm.exchange.liquidation\n"
        "    perpabm/exchange/liquidation.py:1: perpabm.exchange.liquidation imports "
        "perpabm.exchange.engine"]


@pytest.mark.parametrize("module, layer", [
    ("perpabm.errors", 0),
    ("perpabm.exchange", 2),
    ("perpabm.exchange.kernels.book", 2),
    ("perpabm.agents.population", 3),
    ("perpabm.market.history", 3),
    ("perpabm", ROOT_LAYER),
    ("perpabm.configuration", None),  # a prefix matches whole dotted parts only
    ("perpabm.unplanned", None),
])
def test_layer_of_matches_packages_by_prefix(module: str, layer: int | None) -> None:
    assert layer_of(module) == layer


def test_upward_and_root_imports_are_flagged() -> None:
    source = "from perpabm.model import M\nfrom perpabm import Results\nimport perpabm.mechanics\n"
    violations = upward_imports(import_edges(snippet(source), KNOWN))
    assert [violation.split(":")[1] for violation in violations] == ["1", "2"]
    assert upward_imports(import_edges(snippet(source, "perpabm", is_package=True), KNOWN)) == []


def test_peers_may_not_import_each_other() -> None:
    edges = import_edges(snippet("from perpabm.market import index\nimport perpabm.exchange\n",
                                 "perpabm.agents.trader"), KNOWN)
    assert [violation.split(":")[1] for violation in peer_imports(edges)] == ["1"]


def object_accesses(source: str) -> list[int]:
    return [access.line for access in private_accesses(snippet(source), KNOWN)[0]]


def module_accesses(source: str, name: str = "perpabm.exchange.engine") -> list[int]:
    return [access.line for access in private_accesses(snippet(source, name), KNOWN)[1]]


def test_self_is_allowed_and_another_object_is_flagged() -> None:
    source = ("class A:\n"
              "    def f(self, other):\n"
              "        self._x = other._x\n"
              "        self.ex._log()\n")
    assert object_accesses(source) == [3, 4]


def test_instances_of_the_enclosing_class_are_allowed() -> None:
    source = ("class Book:\n"
              "    def __eq__(self, other: Book) -> bool:\n"
              "        return self._levels == other._levels\n"
              "    def merge(self, other: 'Book | None', more: Self) -> None:\n"
              "        copy = type(self)()\n"
              "        made = Book()\n"
              "        return copy._a, made._b, other._c, more._d, Book._e, cls._f\n"
              "    def leak(self, other: Ledger) -> int:\n"
              "        return other._n\n")
    assert object_accesses(source) == [9]


def test_super_and_namedtuple_api_are_allowed_but_self_outside_a_class_is_not() -> None:
    source = ("class A(B):\n"
              "    def f(self):\n"
              "        return super()._g(), fill._replace(q=1), Event._fields\n"
              "def helper(self):\n"
              "    return self._x\n")
    assert object_accesses(source) == [5]


def test_getattr_with_a_private_name_is_an_access() -> None:
    assert object_accesses("getattr(ex, '_log')\nsetattr(ex, 'log', 1)\n") == [1]


def test_private_names_of_other_modules_are_flagged() -> None:
    source = ("from perpabm.exchange.ledger import _scan, check\n"
              "from perpabm.exchange import ledger\n"
              "import perpabm.exchange.book as book\n"
              "import perpabm.exchange.book\n"
              "ledger._refresh(book._rest, perpabm.exchange.book._x)\n")
    assert module_accesses(source) == [1, 5, 5, 5]
    assert object_accesses(source) == []


def test_own_and_package_private_names_are_allowed() -> None:
    assert module_accesses("from perpabm.exchange.engine import _helper\n") == []
    assert module_accesses("from perpabm.exchange import _kernels\n"
                           "from perpabm.exchange._kernels import book\n") == []
    assert module_accesses("from perpabm.exchange._kernels import book\n",
                           "perpabm.model") == [1]

"""The configuration reference: every setting of a scenario, with its type, default,
unit, allowed values and meaning, built from the config classes themselves.

Where each column comes from, so that none can drift from the code:

- meaning and unit: the field's attribute docstring, the string literal on the
  line after the field (read with :mod:`ast`, as Sphinx autodoc reads them). A
  docstring that starts with a bracketed unit (``[USD] The vault's ...``)
  gives the unit; settings without one (names, switches, choices) have none;
- allowed values: what the field's checks record (:func:`perpabm.config.checks.recording`)
  while the default configs are built, so the range stated is the range enforced;
- type: the field's annotation, as written; default: the dataclass's default, as
  TOML writes it (``absent`` where the default is no value, ``required`` where there
  is none).

:func:`markdown` is the text of ``docs/config.md``; regenerate that file with
``python -m perpabm.config.reference > docs/config.md`` (:data:`REGENERATE`).
:func:`commented_toml` writes a scenario's TOML with each key's notes above it, as
``perpabm config show NAME --comments`` prints.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from perpabm.config import exchange as exchange_config
from perpabm.config.checks import Constraints, recording
from perpabm.config.market import Shock
from perpabm.config.scenario import ScenarioConfig
from perpabm.config.toml import dumps, value

__all__ = ["REGENERATE", "Setting", "commented_toml", "field_docs", "markdown", "settings",
           "undocumented"]

REGENERATE = "python -m perpabm.config.reference > docs/config.md"
"""The command that writes ``docs/config.md``."""

COMMENT_WIDTH = 88  # characters of a TOML comment line, "# " included
_UNIT = re.compile(r"\[([^\]]+)\]\s+(.*)", re.DOTALL)  # "[USD] The vault's …"
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # :func:`perpabm.adl.score`


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting, as the reference documents it."""

    path: str
    """Dotted path: ``"exchange.max_leverage"``; a key of each ``[[market.shocks]]`` table
    is ``"market.shocks.at_minute"``."""
    type: str
    """The field's annotation, as written."""
    default: str
    """The default as TOML writes it, ``absent`` for no value, ``required`` for none."""
    unit: str
    """The unit from the docstring's leading ``[...]``; empty where there is none."""
    allowed: str
    """The constraints the field's checks apply, joined by ``; ``."""
    meaning: str
    """The docstring after the unit, as one paragraph (reStructuredText inline markup)."""


@dataclass(frozen=True, slots=True)
class _Section:
    """A table of settings: the top level (path ""), a section, or a list of tables."""

    path: str
    cls: type
    doc: str  # the docstring of the field that holds it ("" at the top level)
    settings: tuple[Setting, ...]


# ---------------------------------------------------------------------- reading the code


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of `cls`'s fields, by field name, as written (a field
    without one is left out): the string literal that follows the field's line in the
    class body — of the class that declares the field last, so that a subclass that
    gives a field a new default and docstring (a section of the same kind with other
    defaults) documents it its own way and inherits the rest."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if dataclasses.is_dataclass(base):
            docs.update(_class_docs(base))
    return docs


def _class_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings written in `cls`'s own body."""
    module = sys.modules[cls.__module__]
    for node in _module_tree(module.__name__).body:
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return _attribute_docstrings(node)
    raise LookupError(f"no class {cls.__name__} at the top level of {module.__name__}")


@cache
def _module_tree(module_name: str) -> ast.Module:
    return ast.parse(inspect.getsource(sys.modules[module_name]))


def _attribute_docstrings(node: ast.ClassDef) -> dict[str, str]:
    docs = {}
    for statement, following in zip(node.body, node.body[1:], strict=False):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = following.value.value
    return docs


def undocumented() -> list[str]:
    """Dotted paths of the config fields that have no attribute docstring."""
    missing = []
    for prefix, cls in _classes():
        docs = field_docs(cls)
        missing += [_join(prefix, f.name) for f in dataclasses.fields(cls)
                    if not docs.get(f.name, "").strip()]
    return missing


def _classes(prefix: str = "", cls: type = ScenarioConfig) -> Iterator[tuple[str, type]]:
    """(path, class) of every config dataclass reachable from ScenarioConfig: sections
    and the item classes of lists of tables, each after the class that holds it."""
    yield prefix, cls
    for f in dataclasses.fields(cls):
        inner = _table_class(cls, f.name)
        if inner is not None:
            yield from _classes(_join(prefix, f.name), inner)


def _table_class(cls: type, name: str) -> type | None:
    """The dataclass a field holds (a section) or lists (``tuple[Shock, ...]``), if any."""
    hint = typing.get_type_hints(cls)[name]
    if dataclasses.is_dataclass(hint):
        return typing.cast(type, hint)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and dataclasses.is_dataclass(args[0]):
        return typing.cast(type, args[0])
    return None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@cache
def _constraints() -> Constraints:
    """What the checks record while every default config is built (a shock has no
    default: any valid one records its checks)."""
    with recording() as found:
        ScenarioConfig()
        Shock(at_minute=0, change=0.0)
    return found


def _prose(doc: str) -> str:
    return " ".join(inspect.cleandoc(doc).split())


def _split_unit(doc: str) -> tuple[str, str]:
    """(unit, meaning) of a field docstring: ``[USD] The vault's …`` → ("USD", "The …")."""
    text = _prose(doc)
    match = _UNIT.fullmatch(text)
    return (match[1], match[2]) if match else ("", text)


# ---------------------------------------------------------------------- the table


def settings() -> tuple[Setting, ...]:
    """Every setting, in the order of the fields: the top level, then each section (a
    list of tables after its section)."""
    return tuple(s for section in _sections() for s in section.settings)


@cache
def _sections() -> tuple[_Section, ...]:
    missing = undocumented()
    if missing:
        raise ValueError(f"config fields without documentation: {', '.join(missing)}; give "
                         f"each a docstring on the line after it")
    defaults = ScenarioConfig().to_dict()
    constraints = _constraints()
    sections = []
    for prefix, cls in _classes():
        docs = field_docs(cls)
        rows = []
        for f in dataclasses.fields(cls):
            path = _join(prefix, f.name)
            if dataclasses.is_dataclass(typing.get_type_hints(cls)[f.name]):
                continue  # a section: documented as a table of its own
            unit, meaning = _split_unit(docs[f.name])
            rows.append(Setting(path, str(f.type), _default(defaults, path, f), unit,
                                "; ".join(constraints.get(path, ())), meaning))
        holder = prefix.rpartition(".")
        holder_doc = field_docs(_class_at(holder[0]))[holder[2]] if prefix else ""
        sections.append(_Section(prefix, cls, _prose(holder_doc), tuple(rows)))
    return tuple(sections)


def _class_at(prefix: str) -> type:
    return dict(_classes())[prefix]


def _default(defaults: dict[str, Any], path: str, f: dataclasses.Field) -> str:
    """The default of the field at `path` as TOML writes it (from ScenarioConfig's dict;
    the keys of a list of tables from their class's defaults)."""
    node: Any = defaults
    for part in path.split("."):
        if isinstance(node, list):  # inside a list of tables: the item class's default
            if f.default is not dataclasses.MISSING:
                return value(f.default)
            return "required"
        if part not in node:
            return "absent"
        node = node[part]
    return value(node)


# ---------------------------------------------------------------------- docs/config.md


def markdown() -> str:
    """The text of ``docs/config.md``: every setting in tables, one per section."""
    sections = _sections()
    presets = ", ".join(f"`{name}`" for name in exchange_config.names())
    out = [
        "# Configuration reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from the docstrings beside the fields in "
        "perpabm/config/ and from the checks they run; edit those, not this file. -->",
        "",
        "Every setting of a scenario, by its dotted path: the path `ScenarioConfig.get` "
        "and `ScenarioConfig.replace` and a sweep's `[grid]` take, and the TOML table and "
        "key a scenario file writes it as (`exchange.max_leverage` is `max_leverage` under "
        "`[exchange]`). The default is the class's; a bundled scenario changes some, and "
        "`perpabm config show NAME --comments` prints all of a scenario's values with "
        "these notes. The allowed values are what the config checks on construction, "
        "recorded from the checks themselves; any other value raises `ConfigError` with "
        "a one-line message naming the setting. The unit is that of the value as written; "
        "*annualised* volatilities are per year (0.5 = 50% a year).",
        "",
        "Sections: " + " · ".join(_link(s) for s in sections) + ".",
        "",
    ]
    for section in sections:
        out += [f"## `{_title(section)}`" if section.path else "## Top level", ""]
        where = (f"Class `{section.cls.__name__}`, in "
                 f"`{section.cls.__module__.replace('.', '/')}.py`.")
        doc = section.doc or "The scenario's own keys, above its sections."
        out += [f"{_markdown_inline(doc)} {where}", ""]
        if section.path == "exchange":
            out += [f"A key `preset = \"NAME\"` ({presets}) starts the section from that "
                    "venue's rules (`docs/venues.md`); the other keys override them.", ""]
        overview = inspect.cleandoc(section.cls.__doc__ or "")
        out += [_markdown_inline(overview), ""]
        out += ["| setting | type | default | unit | allowed | meaning |",
                "|---|---|---|---|---|---|"]
        for s in section.settings:
            cells = [f"`{s.path}`", f"`{s.type}`", f"`{s.default}`", s.unit or "—",
                     s.allowed, _markdown_inline(s.meaning)]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def _title(section: _Section) -> str:
    """The section's TOML header (``[exchange]``, ``[[market.shocks]]``), or "Top level"."""
    if not section.path:
        return "Top level"
    if section.path.count("."):  # a list of tables
        return f"[[{section.path}]]"
    return f"[{section.path}]"


def _link(section: _Section) -> str:
    title = _title(section)
    return f"[{title if not section.path else f'`{title}`'}](#{_anchor(section)})"


def _anchor(section: _Section) -> str:
    """The anchor GitHub gives the section's heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", _title(section).lower()).replace(" ", "-")


def _markdown_inline(text: str) -> str:
    """reStructuredText inline markup as Markdown: ``x`` and :role:`x` → `x`."""
    return _ROLE.sub(r"`\1`", text.replace("``", "`"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# ---------------------------------------------------------------------- commented TOML


def commented_toml(config: ScenarioConfig) -> str:
    """The TOML of `config` (as :func:`perpabm.config.toml.dumps` writes
    ``config.to_dict()``) with ``# `` comment lines above each key: its meaning, unit
    and allowed values, and above each section its description. A setting left out
    (it has no value, as ``exchange.fund_drawdown_trigger`` by default) is described
    above the next key written, or else above the next section's header."""
    data = config.to_dict()
    comments: dict[str, list[str]] = {}
    pending: list[str] = []  # notes on settings left out, for the next key or header
    for section in _sections():
        if section.path.count("."):  # keys of a list of tables: under its first block
            for s in section.settings:
                comments[s.path] = _wrap(_note(s))
            continue
        if section.path:
            comments[section.path] = pending + _wrap(_plain(section.doc))
            pending = []
        for s in section.settings:
            if _written(data, s.path):
                comments[s.path] = pending + _wrap(_note(s))
                pending = []
            else:
                pending += [*_wrap(f"{s.path.rpartition('.')[2]} (not set): {_note(s)}"), ""]
        if section.path and pending:  # the rest of a section's: above its header
            comments[section.path] += ["", *pending[:-1]]  # the last note's "" dropped
            pending = []
    return dumps(data, comments)


def _written(data: dict[str, Any], path: str) -> bool:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _note(s: Setting) -> str:
    unit = f" Unit: {s.unit}." if s.unit else ""
    return f"{_plain(s.meaning)}{unit} Allowed: {s.allowed}."


def _plain(text: str) -> str:
    """reStructuredText inline markup as plain text: ``x`` and :role:`x` → x."""
    return _ROLE.sub(r"\1", text.replace("``", ""))


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, COMMENT_WIDTH - 2, break_on_hyphens=False) if text else []


def main() -> None:
    """Write :func:`markdown` to standard output, as UTF-8."""
    sys.stdout.buffer.write(markdown().encode("utf-8"))


if __name__ == "__main__":
    main()

"""Writing configs as TOML (reading uses the standard library's tomllib)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def value(item: Any) -> str:
    """A TOML value: a bool, int, float (inf as ``inf``), string, or list of them."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)  # a TOML basic string
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise TypeError(f"cannot write {type(item).__name__} as TOML")


def dumps(data: dict[str, Any], comments: Mapping[str, Sequence[str]] | None = None) -> str:
    """TOML text for a dict of scalars, lists and one level of tables, as
    ScenarioConfig.to_dict gives: under a table, a list of tables becomes
    ``[[section.key]]`` blocks and a table of scalars a ``[section.key]`` table.

    `comments` maps dotted paths (``"name"``, ``"exchange"``,
    ``"exchange.max_leverage"``, ``"market.shocks.at_minute"``) to comment lines, each
    written as ``# line`` above the key or table header at that path; a key inside a
    list of tables is commented in its first block only.
    """
    notes = comments or {}

    def commented(path: str, line: str) -> list[str]:
        return [f"# {note}".rstrip() for note in notes.get(path, ())] + [line]

    lines = []
    for k, v in data.items():
        if not isinstance(v, dict):
            lines += commented(k, f"{k} = {value(v)}")
    for section, table in data.items():
        if not isinstance(table, dict):
            continue
        lines += ["", *commented(section, f"[{section}]")]
        arrays, tables = {}, {}
        for key, item in table.items():
            if isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
                arrays[key] = item
            elif isinstance(item, dict):
                tables[key] = item
            else:
                lines += commented(f"{section}.{key}", f"{key} = {value(item)}")
        for key, items in arrays.items():
            for block, entry in enumerate(items):
                header = f"[[{section}.{key}]]"
                lines += ["", *(commented(f"{section}.{key}", header) if block == 0 else [header])]
                for k, v in entry.items():
                    line = f"{k} = {value(v)}"
                    lines += commented(f"{section}.{key}.{k}", line) if block == 0 else [line]
        for key, entries in tables.items():
            lines += ["", *commented(f"{section}.{key}", f"[{section}.{key}]")]
            lines += [f"{_key(k)} = {value(v)}" for k, v in entries.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    """A TOML key: bare if it can be, else a quoted string."""
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)

"""Writing configs as TOML (reading uses the standard library's tomllib)."""

from __future__ import annotations

import json
import math
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dumps(data: dict[str, Any]) -> str:
    """TOML text for a dict of scalars, lists and one level of tables, as
    ScenarioConfig.to_dict gives: under a table, a list of tables becomes
    ``[[section.key]]`` blocks and a table of scalars a ``[section.key]`` table."""
    lines = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if not isinstance(table, dict):
            continue
        lines += ["", f"[{section}]"]
        arrays, tables = {}, {}
        for key, value in table.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                arrays[key] = value
            elif isinstance(value, dict):
                tables[key] = value
            else:
                lines.append(f"{key} = {_value(value)}")
        for key, items in arrays.items():
            for item in items:
                lines += ["", f"[[{section}.{key}]]"]
                lines += [f"{k} = {_value(v)}" for k, v in item.items()]
        for key, items in tables.items():
            lines += ["", f"[{section}.{key}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in items.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    """A TOML key: bare if it can be, else a quoted string."""
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)

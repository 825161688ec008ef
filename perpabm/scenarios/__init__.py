"""Bundled scenarios (TOML files beside this module) and the loader for them and yours."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from perpabm.config.scenario import ScenarioConfig
from perpabm.errors import ConfigError, closest


def list_scenarios() -> dict[str, str]:
    """Bundled scenario names with their one-line descriptions, sorted by name."""
    out = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name.removesuffix(".toml")] = data.get("description", "")
    return out


def load_scenario(name_or_path: str | Path) -> ScenarioConfig:
    """A bundled scenario by name (``"crash"``), or a scenario TOML file by path.

    Unknown names and unreadable or invalid files raise ConfigError with a one-line
    message (naming the closest bundled scenario, or the file and the problem).
    """
    name = str(name_or_path)
    bundled = resources.files(__name__) / f"{name}.toml"
    if "/" not in name and not name.endswith(".toml"):
        if not bundled.is_file():
            raise ConfigError(f"unknown scenario {name!r}{closest(name, list_scenarios())}; "
                              f"bundled: {', '.join(list_scenarios())}")
        return _parse(bundled.read_text(encoding="utf-8"), f"scenario {name!r}")
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 text") from None
    return _parse(text, str(path))


def _parse(text: str, where: str) -> ScenarioConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return ScenarioConfig.from_dict(data)

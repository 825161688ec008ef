"""ScenarioConfig: everything one simulated path needs, as a tree of frozen dataclasses.

A field is addressed by a dotted path such as ``"traders.count"`` or
``"exchange.adl_rule"``: ``config.replace("traders.count", 10_000)`` returns a
validated copy with that one field changed, as sweeps do.

Custom code travels in the config, so that a worker process runs what this one does:
ADL ranking rules (``exchange.adl_rules``) and agent classes (``agent_classes``), each
given as the object itself or as a ``"package.module:name"`` import path, and written
to TOML and JSON as that path.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perpabm import adl
from perpabm.config.checks import boolean, choice, in_range, ranges, whole
from perpabm.config.exchange import ExchangeConfig, rules_as_paths
from perpabm.config.market import MarketConfig
from perpabm.errors import ConfigError, closest

STRATEGIES = ("noise", "momentum", "contrarian")
BUILTIN_AGENTS = {"traders": "leveraged", "makers": "maker"}
"""The name of each agent section's built-in class, as its ``agent`` setting gives it:
``"leveraged"`` is :class:`~perpabm.agents.LeveragedTrader`, ``"maker"``
:class:`~perpabm.agents.MarketMaker`. Other names are the scenario's ``agent_classes``."""
AGENT_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key: written as one unquoted


@dataclass(frozen=True, slots=True)
class TraderConfig:
    """Leveraged traders: heterogeneous capital and leverage, three strategies.

    Capital (USD) is ``capital_scale · (1 + Pareto(capital_tail))`` — heavy-tailed;
    leverage is log-normal with median ``leverage_median`` and log-sd
    ``leverage_sigma``, capped at ``leverage_cap`` × the venue's maximum. A
    trader opens a position at Poisson rate ``entries_per_day`` while flat,
    choosing its side by strategy (``strategy_mix`` weights noise, momentum and
    contrarian; momentum and contrarian look back ``lookback_minutes``), and
    closes it after an exponential holding time of mean ``holding_minutes``, or
    at ``take_profit`` / ``stop_loss`` (fractions of entry price). Liquidated
    traders leave; new ones arrive at ``arrivals_per_day``. ``agent`` names the
    traders' class: ``"leveraged"`` or a name in the scenario's ``agent_classes``.
    """

    count: int = 1_000
    capital_scale: float = 5_000.0
    capital_tail: float = 1.5
    leverage_median: float = 5.0
    leverage_sigma: float = 0.8
    leverage_cap: float = 1.0
    strategy_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
    entries_per_day: float = 4.0
    holding_minutes: float = 240.0
    lookback_minutes: float = 30.0
    take_profit: float = 0.05
    stop_loss: float = 0.03
    arrivals_per_day: float = 50.0
    agent: str = BUILTIN_AGENTS["traders"]

    def __post_init__(self) -> None:
        p = "traders"
        whole(f"{p}.count", self.count, 0)
        _agent_name(f"{p}.agent", self.agent)
        ranges(self, p, (
            ("capital_scale", 0.0, math.inf, True, True),
            ("capital_tail", 0.5, 20.0, False, False),
            ("leverage_median", 1.0, 1_000.0, False, False),
            ("leverage_sigma", 0.0, 5.0, False, False),
            ("leverage_cap", 0.0, 1.0, True, False),
            ("entries_per_day", 0.0, 1e4, False, False),
            ("holding_minutes", 0.0, 1e7, True, False),
            ("lookback_minutes", 1.0, 1e5, False, False),
            ("take_profit", 0.0, 10.0, True, False),
            ("stop_loss", 0.0, 1.0, True, True),
            ("arrivals_per_day", 0.0, 1e6, False, False),
        ))
        mix = self.strategy_mix
        if (isinstance(mix, str | Mapping) or not isinstance(mix, Iterable)
                or len(tuple(mix)) != len(STRATEGIES)):
            raise ConfigError(f"{p}.strategy_mix must be three weights for {', '.join(STRATEGIES)}"
                              f"; got {mix!r}")
        mix = tuple(in_range(f"{p}.strategy_mix[{k}]", w, 0.0) for k, w in enumerate(mix))
        if sum(mix) <= 0:
            raise ConfigError(f"{p}.strategy_mix must have a positive weight; got {mix}")
        object.__setattr__(self, "strategy_mix", mix)


@dataclass(frozen=True, slots=True)
class MakerConfig:
    """Market makers quoting a ladder around the index, skewed by inventory.

    Each of ``count`` makers has ``capital`` USD and quotes ``levels`` levels a
    side, ``level_spacing`` apart (fraction of price), from ``half_spread`` off
    its fair value (index minus ``inventory_skew`` × inventory/limit × price).
    Each level holds ``depth`` USD of notional in calm markets. As realised
    volatility (over ``vol_window_minutes``) rises above ``calm_volatility``
    (annualised), depth is divided and the spread multiplied by
    1 + ``withdrawal`` · (σ/σ_calm − 1): liquidity withdraws in stress. A maker
    quotes no more on a side once its inventory reaches ``inventory_limit`` ×
    capital × max leverage. ``agent`` names the makers' class: ``"maker"`` or a name
    in the scenario's ``agent_classes``.
    """

    count: int = 3
    capital: float = 2_000_000.0
    levels: int = 10
    level_spacing: float = 0.0005
    half_spread: float = 0.0002
    depth: float = 150_000.0
    inventory_skew: float = 0.001
    inventory_limit: float = 0.5
    vol_window_minutes: float = 30.0
    calm_volatility: float = 0.5
    withdrawal: float = 1.0
    agent: str = BUILTIN_AGENTS["makers"]

    def __post_init__(self) -> None:
        p = "makers"
        whole(f"{p}.count", self.count, 0)
        _agent_name(f"{p}.agent", self.agent)
        whole(f"{p}.levels", self.levels, 1)
        ranges(self, p, (
            ("capital", 0.0, math.inf, True, True),
            ("level_spacing", 0.0, 0.1, True, False),
            ("half_spread", 0.0, 0.1, False, False),
            ("depth", 0.0, math.inf, True, True),
            ("inventory_skew", 0.0, 1.0, False, False),
            ("inventory_limit", 0.0, 1.0, True, False),
            ("vol_window_minutes", 2.0, 1e5, False, False),
            ("calm_volatility", 0.0, 20.0, True, False),
            ("withdrawal", 0.0, 100.0, False, False),
        ))


@dataclass(frozen=True, slots=True)
class ArbitrageurConfig:
    """Arbitrageurs trading the perp toward the index when the basis exceeds ``threshold``
    (fraction of the index), at most ``max_notional`` USD a step, with finite ``capital``."""

    count: int = 1
    capital: float = 5_000_000.0
    threshold: float = 0.001
    max_notional: float = 500_000.0

    def __post_init__(self) -> None:
        p = "arbitrageur"
        whole(f"{p}.count", self.count, 0)
        ranges(self, p, (
            ("capital", 0.0, math.inf, True, True),
            ("threshold", 0.0, 1.0, False, False),
            ("max_notional", 0.0, math.inf, True, True),
        ))


@dataclass(frozen=True, slots=True)
class VaultConfig:
    """A backstop vault (Hyperliquid's HLP): takes over liquidations the book cannot absorb.

    It holds ``capital`` USD and takes positions while its notional stays below
    ``cap`` × its equity (0: it never takes over); it unwinds ``unwind_rate`` of
    its inventory into the book each step, no further than ``unwind_slippage``
    from the index. ``adl_exempt`` keeps its positions out of the ADL queue
    until nothing else is left. With ``quotes`` it also makes markets like a
    maker, ``quote_depth`` USD a level (HLP's market-making strategies). Only
    used by venues whose waterfall has a backstop stage.
    """

    enabled: bool = True
    capital: float = 10_000_000.0
    cap: float = 3.0
    unwind_rate: float = 0.05
    unwind_slippage: float = 0.005
    adl_exempt: bool = False
    quotes: bool = False
    quote_depth: float = 100_000.0

    def __post_init__(self) -> None:
        p = "vault"
        boolean(f"{p}.enabled", self.enabled)
        boolean(f"{p}.adl_exempt", self.adl_exempt)
        boolean(f"{p}.quotes", self.quotes)
        ranges(self, p, (
            ("capital", 0.0, math.inf, True, True),
            ("cap", 0.0, 1_000.0, False, False),
            ("unwind_rate", 0.0, 1.0, False, False),
            ("unwind_slippage", 0.0, 0.5, False, False),
            ("quote_depth", 0.0, math.inf, True, True),
        ))


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Length and recording of one path: ``steps`` steps of ``market.step_minutes``;
    series recorded every ``record_every`` steps; ``debug`` checks the exchange's
    invariants after every operation."""

    steps: int = 1_440
    record_every: int = 1
    debug: bool = False

    def __post_init__(self) -> None:
        whole("run.steps", self.steps, 1)
        whole("run.record_every", self.record_every, 1)
        boolean("run.debug", self.debug)


_SECTIONS: dict[str, type] = {
    "exchange": ExchangeConfig,
    "market": MarketConfig,
    "traders": TraderConfig,
    "makers": MakerConfig,
    "arbitrageur": ArbitrageurConfig,
    "vault": VaultConfig,
    "run": RunConfig,
}


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    """One scenario: a venue, a market, a population of agents and a run length.

    ``agent_classes`` maps names to agent classes of the user's, each given as the
    class or as a ``"package.module:Class"`` import path: a subclass of
    :class:`~perpabm.agents.LeveragedTrader` for ``traders.agent`` to name, or of
    :class:`~perpabm.agents.MarketMaker` for ``makers.agent`` (the model checks the
    base when it builds the agents). :meth:`with_agent` adds one.
    """

    name: str = "custom"
    description: str = ""
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    traders: TraderConfig = field(default_factory=TraderConfig)
    makers: MakerConfig = field(default_factory=MakerConfig)
    arbitrageur: ArbitrageurConfig = field(default_factory=ArbitrageurConfig)
    vault: VaultConfig = field(default_factory=VaultConfig)
    run: RunConfig = field(default_factory=RunConfig)
    agent_classes: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for name in ("name", "description"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string; got {getattr(self, name)!r}")
        for section, cls in _SECTIONS.items():
            if not isinstance(getattr(self, section), cls):
                raise ConfigError(f"{section} must be a {cls.__name__}; got "
                                  f"{type(getattr(self, section)).__name__}")
        classes = _check_agent_classes("agent_classes", self.agent_classes)
        object.__setattr__(self, "agent_classes", classes)
        custom = tuple(name for name, _ in classes)
        for section, builtin in BUILTIN_AGENTS.items():
            choice(f"{section}.agent", getattr(self, section).agent, (builtin, *custom))

    def with_agent(self, name: str, cls: type | str, *, use_in: str | None = None
                   ) -> ScenarioConfig:
        """A copy with agent class `cls` (a class, or a ``"package.module:Class"`` path)
        registered in ``agent_classes`` as `name`, replacing one of that name; with
        `use_in` (``"traders"`` or ``"makers"``) that section's ``agent`` names it too.

        ``config.with_agent("cautious", CautiousTrader, use_in="traders")`` is
        ``config.replace("agent_classes", {..., "cautious": CautiousTrader})`` then
        ``.replace("traders.agent", "cautious")``.
        """
        if use_in is not None:
            choice("use_in", use_in, tuple(BUILTIN_AGENTS))
        classes = {**dict(self.agent_classes), name: cls}
        config = self.replace("agent_classes", classes)
        return config if use_in is None else config.replace(f"{use_in}.agent", name)

    def custom_code(self) -> dict[str, Any]:
        """The user's code this config runs: each custom ADL rule and agent class, keyed
        by where it is set (``"exchange.adl_rules.<name>"``, ``"agent_classes.<name>"``),
        import paths imported now. Empty for a config of built-ins only.

        Raises ConfigError naming the entry whose import path does not import.
        """
        code: dict[str, Any] = {}
        for name, _ in self.exchange.adl_rules:
            try:
                code[f"exchange.adl_rules.{name}"] = adl.resolve_rule(
                    name, self.exchange.adl_rules)
            except ValueError as exc:
                raise ConfigError(f"exchange.{exc}") from None
        for name, cls in self.agent_classes:
            code[f"agent_classes.{name}"] = import_path(f"agent_classes[{name!r}]", cls)
        return code

    def get(self, path: str) -> Any:
        """The value at a dotted path such as ``"traders.count"``."""
        obj: Any = self
        for part in _split(path):
            names = [f.name for f in dataclasses.fields(obj)]
            if part not in names:
                raise ConfigError(f"{path!r} is not a setting{closest(part, names)}")
            obj = getattr(obj, part)
        return obj

    def replace(self, path: str | None = None, value: Any = None, /,
                **changes: Any) -> ScenarioConfig:
        """A validated copy with the field at dotted `path` set to `value`, or with
        top-level `changes` (``replace(run=RunConfig(...))``).

        ``"exchange.preset"`` takes a preset's name and replaces the whole exchange
        section with that venue's rules (so a sweep can range over venues).
        """
        if path is None:
            return dataclasses.replace(self, **changes)
        if changes:
            raise ConfigError("give either a dotted path and a value, or keyword changes")
        if path == "exchange.preset":
            return dataclasses.replace(self, exchange=ExchangeConfig.from_dict(
                {"preset": value}, "exchange"))
        return _replace_path(self, _split(path), value, path)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for TOML/JSON (tuples as lists, shocks as tables)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioConfig:
        """Build from plain values (a parsed TOML file); unknown keys suggest the closest."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a scenario must be a table of sections; got {type(data).__name__}")
        known = ["name", "description", *_SECTIONS, "agent_classes"]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{key} is not a scenario section{closest(key, known)}")
            if key in ("name", "description", "agent_classes"):
                kwargs[key] = value
            elif key == "exchange":
                kwargs[key] = ExchangeConfig.from_dict(value, "exchange")
            else:
                kwargs[key] = _section_from_dict(key, _SECTIONS[key], value)
        return cls(**kwargs)


def import_path(path: str, value: Any) -> Any:
    """`value` itself, or what the ``"package.module:name"`` import path `value` names,
    imported now; ConfigError naming the setting at `path` if it does not import."""
    if not isinstance(value, str):
        return value
    module, attr = value.split(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{path}: cannot import {value!r} ({exc})") from None
    return obj


def _agent_name(path: str, name: Any) -> str:
    """An agent class's name: letters, digits, ``_`` and ``-`` (a TOML bare key)."""
    if not isinstance(name, str) or not AGENT_NAME.fullmatch(name):
        raise ConfigError(f"{path} must be letters, digits, _ and - only; got {name!r}")
    return name


def _check_agent_classes(path: str, classes: Any) -> tuple[tuple[str, Any], ...]:
    """Agent classes as (name, class or "package.module:Class") pairs, as ADL rules are."""
    if isinstance(classes, Mapping):
        classes = tuple(classes.items())
    try:
        pairs = tuple(tuple(pair) for pair in classes)
    except TypeError:
        pairs = None
    if pairs is None or isinstance(classes, str | bytes) or any(len(p) != 2 for p in pairs):
        raise ConfigError(f"{path} must map names to agent classes or to "
                          f"'package.module:Class' paths; got {classes!r}")
    for name, cls in pairs:
        _agent_name(f"{path} names", name)
        if name in BUILTIN_AGENTS.values():
            raise ConfigError(f"{path}[{name!r}]: {name!r} is a built-in agent class; give "
                              f"yours another name")
        if not (isinstance(cls, type) or adl.is_import_path(cls)):
            raise ConfigError(f"{path}[{name!r}] must be a class or a "
                              f"'package.module:Class' path; got {cls!r}")
    if len({name for name, _ in pairs}) != len(pairs):
        raise ConfigError(f"{path} names a class twice: {[name for name, _ in pairs]}")
    return pairs


def _split(path: str) -> list[str]:
    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise ConfigError(f"a setting is named by a dotted path like 'traders.count'; "
                          f"got {path!r}")
    return path.split(".")


def _replace_path(obj: Any, parts: list[str], value: Any, path: str) -> Any:
    names = [f.name for f in dataclasses.fields(obj)]
    head = parts[0]
    if head not in names:
        raise ConfigError(f"{path!r} is not a setting{closest(head, names)}")
    if len(parts) == 1:
        current = getattr(obj, head)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        return dataclasses.replace(obj, **{head: value})
    child = getattr(obj, head)
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"{path!r}: {head} has no settings below it")
    return dataclasses.replace(obj, **{head: _replace_path(child, parts[1:], value, path)})


def _section_from_dict(section: str, cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section} must be a table of settings; got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"{section}.{key} is not a setting{closest(key, names)}")
    values = {k: tuple(v) if isinstance(v, list) and k != "shocks" else v
              for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a value of the wrong shape deep inside
        raise ConfigError(f"{section}: {exc}") from None


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            if ((isinstance(obj, ExchangeConfig) and f.name == "adl_rules")
                    or (isinstance(obj, ScenarioConfig) and f.name == "agent_classes")):
                if getattr(obj, f.name):  # an empty table is left out, as the default
                    out[f.name] = rules_as_paths(getattr(obj, f.name))
                continue
            value = _plain(getattr(obj, f.name))
            if value is not None:  # TOML has no null: an absent key means the default
                out[f.name] = value
        return out
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    return obj

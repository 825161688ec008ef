"""The agent classes a scenario names: each agent section's built-in class, or a class of
the user's from the scenario's ``agent_classes`` (imported now if given as an import
path), checked to be a subclass of the section's built-in class."""

from __future__ import annotations

from perpabm.agents.maker import MarketMaker
from perpabm.agents.trader import LeveragedTrader
from perpabm.config.scenario import BUILTIN_AGENTS, ScenarioConfig, import_path
from perpabm.errors import ConfigError


def trader_class(config: ScenarioConfig, section: str = "traders") -> type[LeveragedTrader]:
    """The class that ``traders.agent`` (or ``funds.agent``, with `section` ``"funds"``)
    names: LeveragedTrader or a subclass.

    Raises ConfigError naming the ``agent_classes`` entry if it does not import or is not
    a subclass of LeveragedTrader.
    """
    return _agent_class(config, section, LeveragedTrader)


def maker_class(config: ScenarioConfig) -> type[MarketMaker]:
    """The makers' class that ``makers.agent`` names: MarketMaker or a subclass.

    Raises ConfigError naming the ``agent_classes`` entry if it does not import or is not
    a subclass of MarketMaker.
    """
    return _agent_class(config, "makers", MarketMaker)


def _agent_class[T](config: ScenarioConfig, section: str, base: type[T]) -> type[T]:
    name = getattr(config, section).agent
    if name == BUILTIN_AGENTS[section]:
        return base
    path = f"agent_classes[{name!r}]"
    cls = import_path(path, dict(config.agent_classes)[name])
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{path}, named by {section}.agent, must be a subclass of "
                          f"{base.__name__}; got {cls!r}")
    return cls

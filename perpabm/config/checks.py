"""Field checks shared by the config dataclasses: one-line ConfigErrors naming the field."""

from __future__ import annotations

import math
import numbers
from typing import Any

from perpabm.errors import ConfigError, one_of


def is_number(value: Any) -> bool:
    """int, float or numpy scalar, but not bool (True is not a leverage)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def number(path: str, value: Any, allowed: str = "") -> float:
    """`value` as a float; ConfigError for a non-number, a bool or NaN (`allowed`: ' in [a, b]')."""
    if not is_number(value):
        raise ConfigError(f"{path} must be a number{allowed}; got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ConfigError(f"{path} must be a number{allowed}; got NaN")
    return value


def in_range(
    path: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Coerce to float and check low ≤ value ≤ high (or strict where *_open)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    value = number(path, value, f" in {interval}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ConfigError(f"{path} must be in {interval}; got {value:g}")
    return value


def choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(one_of(path, value, choices))
    return value




def whole(path: str, value: Any, low: int = 0) -> int:
    """An int (not bool) ≥ `low`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{path} must be a whole number ≥ {low}; got {value!r}")
    if value < low:
        raise ConfigError(f"{path} must be a whole number ≥ {low}; got {value}")
    return int(value)


def boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false; got {value!r}")
    return value


def ranges(obj: Any, path: str, specs: tuple[tuple[str, float, float, bool, bool], ...]) -> None:
    """Check and coerce the numeric fields of a frozen dataclass in place.

    `specs` are (field, low, high, low_open, high_open), as for :func:`in_range`.
    """
    for name, low, high, low_open, high_open in specs:
        value = in_range(f"{path}.{name}", getattr(obj, name), low, high,
                         low_open=low_open, high_open=high_open)
        object.__setattr__(obj, name, value)

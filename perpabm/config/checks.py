"""Field checks shared by the config dataclasses: one-line ConfigErrors naming the field.

Each check also states the constraint it applies, in words, and while
:func:`recording` is active it records that statement under the field's dotted
path. The configuration reference (:mod:`perpabm.config.reference`) builds the
configs under a recorder, so the allowed range it documents for a setting is the
one its checks enforce, not a copy of it. A check on the items of a list names
them by index (``traders.strategy_mix[0]``); its statement is recorded under the
list's path as one about each item.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from perpabm.errors import ConfigError, one_of

type Constraints = dict[str, list[str]]
"""Dotted path of a setting → the constraints its checks applied, in words, in order."""

_recorder: ContextVar[Constraints | None] = ContextVar("perpabm_config_constraints",
                                                       default=None)
_ITEM_INDEX = re.compile(r"\[[^\]]*\]")  # "[0]" or "['name']" in a path


@contextmanager
def recording() -> Iterator[Constraints]:
    """Within the block, every check records the constraint it applies (see the module
    docstring) into the dict this yields; configs built elsewhere are unaffected."""
    found: Constraints = {}
    token = _recorder.set(found)
    try:
        yield found
    finally:
        _recorder.reset(token)


def applies(path: str, constraint: str) -> None:
    """Record that `constraint` applies to the setting at `path`, if a recorder is active.

    A path naming an item of a list (``x.weights[2]``) is recorded as the list's
    (``x.weights``), the constraint as one on each item."""
    found = _recorder.get()
    if found is None:
        return
    setting = _ITEM_INDEX.sub("", path)
    if setting != path:
        constraint = f"each {constraint}"
    known = found.setdefault(setting, [])
    if constraint not in known:
        known.append(constraint)


def require(path: str, constraint: str, holds: bool, message: str) -> None:
    """Record `constraint` for `path`; ConfigError(`message`) unless it `holds`.

    For rules that are not a range of one value: a relation between fields, or the
    shape of a list."""
    applies(path, constraint)
    if not holds:
        raise ConfigError(message)


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


def interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """'[low, high]' with '(' or ')' for an open end; 1e6, not 1e+06."""
    return f"{'(' if low_open else '['}{_short(low)}, {_short(high)}{')' if high_open else ']'}"


def _short(bound: float) -> str:
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{bound:g}")


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
    allowed = interval(low, high, low_open, high_open)
    applies(path, f"in {allowed}")
    value = number(path, value, f" in {allowed}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ConfigError(f"{path} must be in {allowed}; got {value:g}")
    return value


def absent_or_in_range(
    path: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float | None:
    """None (the setting left out), or a float checked as by :func:`in_range`."""
    allowed = interval(low, high, low_open, high_open)
    applies(path, f"absent, or in {allowed}")
    if value is None:
        return None
    if not is_number(value):
        raise ConfigError(f"{path} must be None or a number in {allowed}; got {value!r}")
    with _quiet():
        return in_range(path, value, low, high, low_open=low_open, high_open=high_open)


def choice(path: str, value: Any, choices: tuple[str, ...], *,
           more: tuple[str, ...] = (), more_are: str = "") -> str:
    """One of `choices`, or of `more`: further names this config allows, which the
    constraint describes in words (`more_are`), as they differ from config to config
    (its custom ADL rules, say)."""
    allowed = ", ".join(f'"{c}"' for c in choices)
    applies(path, f"one of {allowed}" + (f", or {more_are}" if more_are else ""))
    if value not in choices and value not in more:
        raise ConfigError(one_of(path, value, (*choices, *more)))
    return value


def whole(path: str, value: Any, low: int = 0) -> int:
    """An int (not bool) ≥ `low`."""
    applies(path, f"whole number ≥ {low}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{path} must be a whole number ≥ {low}; got {value!r}")
    if value < low:
        raise ConfigError(f"{path} must be a whole number ≥ {low}; got {value}")
    return int(value)


def boolean(path: str, value: Any) -> bool:
    applies(path, "true or false")
    if not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false; got {value!r}")
    return value


def text(path: str, value: Any, *, absent: bool = False) -> str | None:
    """A string (or, with `absent`, None: the setting left out)."""
    applies(path, "absent, or a string" if absent else "a string")
    if absent and value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path} must be a string; got {value!r}")
    return value


def ranges(obj: Any, path: str, specs: tuple[tuple[str, float, float, bool, bool], ...]) -> None:
    """Check and coerce the numeric fields of a frozen dataclass in place.

    `specs` are (field, low, high, low_open, high_open), as for :func:`in_range`.
    """
    for name, low, high, low_open, high_open in specs:
        value = in_range(f"{path}.{name}", getattr(obj, name), low, high,
                         low_open=low_open, high_open=high_open)
        object.__setattr__(obj, name, value)


@contextmanager
def _quiet() -> Iterator[None]:
    """No recording within: a check that a caller has recorded in other words."""
    token = _recorder.set(None)
    try:
        yield
    finally:
        _recorder.reset(token)



def named_code(path: str, given: Any, constraint: str, *, table: str, builtins: Any,
               builtin: str, is_code: Callable[[Any], bool], code: str,
               check_name: Callable[[str, Any], Any], twice: str
               ) -> tuple[tuple[str, Any], ...]:
    """The user's code named in a config — custom ADL rules, agent classes — as (name,
    code or ``"package.module:name"``) pairs, from a table or pairs: the one check of
    both. Records `constraint`; raises ConfigError naming `path` for a value that is no
    table of pairs (`table` says what it must map), a bad name (`check_name`), a name in
    `builtins` (a `builtin` one), code that fails `is_code` (it must be `code`), or a
    name given twice (a `twice`)."""
    applies(path, constraint)
    if isinstance(given, Mapping):
        given = tuple(given.items())
    try:
        pairs = tuple(tuple(pair) for pair in given)
    except TypeError:
        pairs = None
    if pairs is None or isinstance(given, str | bytes) or any(len(p) != 2 for p in pairs):
        raise ConfigError(f"{path} must map {table}; got {given!r}")
    for name, value in pairs:
        check_name(f"{path} names", name)
        if name in builtins:
            raise ConfigError(f"{path}[{name!r}]: {name!r} is a built-in {builtin}; give "
                              f"yours another name")
        if not is_code(value):
            raise ConfigError(f"{path}[{name!r}] must be {code}; got {value!r}")
    if len({name for name, _ in pairs}) != len(pairs):
        raise ConfigError(f"{path} names a {twice} twice: {[name for name, _ in pairs]}")
    return pairs

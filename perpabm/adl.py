"""Auto-deleveraging (ADL): all of its arithmetic, as pure, vectorised functions.

When a liquidation leaves a loss that neither the book, a backstop nor the insurance
fund absorbs, the venue closes profitable opposite positions against the bankrupt
one. Venues differ in *who* is hit first — the ranking (:func:`score`, then
:func:`queue_order`) — and in *how much* each is hit: the queue every CEX uses
(:func:`queue_close`), pro rata in contracts (:func:`pro_rata_close`), a haircut of
each winner's profit in profit space (Chitra 2025: :func:`profit_space_closes`), or a
loss socialised over all open interest (Drift: :func:`open_units`,
:func:`socialized_charges`). In contracts, each counterparty is closed only as far as
its own equity pays for the price it is closed at (:func:`affordable`,
:func:`close_solvent_first`), so a solvent winner is not made bankrupt while solvent
capacity is left. The exchange's liquidator orchestrates these and does no ADL
arithmetic of its own; :func:`indicator_lights` is what a venue shows its traders.

Conventions as in :mod:`perpabm.mechanics`: ``size`` signed in base-asset units
(+ long, − short), prices in USD per base unit, money in USD; arrays hold one entry
per position.

Ranking rules are built in (:data:`BUILTIN_RULES`) or custom. An exchange takes its
custom rules from its config (``ExchangeConfig.adl_rules``), never from module state,
so every process ranks alike from the config alone; :func:`register_rule` names a rule
for :func:`score` alone. :func:`haircuts` and :func:`overshoot` are the allocation
policies of Chitra 2025 in profit space on a table of profits;
:func:`profit_space_closes` runs them in the engine as partial closes.

Sources: BitMEX auto-deleveraging pages; Binance FAQ 360033525471; OKX ADL
introduction; Bybit help 900000031623 and API "adl-alert"; Hyperliquid docs
(trading/auto-deleveraging); dydxprotocol/v4-chain x/clob keeper deleveraging.go;
Drift protocol-v2 (socialised loss); ``docs/venues.md`` gathers them with examples.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perpabm import mechanics
from perpabm.mechanics import REL_ROUNDING

__all__ = [
    "BUILTIN_RULES",
    "affordable",
    "allocate",
    "close_solvent_first",
    "code_label",
    "haircuts",
    "import_object",
    "indicator_lights",
    "is_import_path",
    "open_units",
    "overshoot",
    "policies",
    "pro_rata_close",
    "profit_and_leverage",
    "profit_space_closes",
    "queue_close",
    "queue_order",
    "register_rule",
    "resolve_rule",
    "rules",
    "score",
    "socialized_charges",
    "top_winner",
]

#: A custom rule: ``fn(size, entry_price, mark_price, collateral, mmr, rng) -> scores``.
#: All array arguments arrive broadcast to one shape; ``rng`` may be None.
type RuleFn = Callable[..., ArrayLike]

type FloatResult = np.float64 | NDArray[np.float64]

ALLOCATIONS = ("queue", "pro_rata")
"""How an ADL round splits the quantity to close over the ranked positions in base units
(:func:`allocate`); Drift's socialised loss is its own procedure."""

PROFIT_ALLOCATIONS = ("wealth_pro_rata", "leverage_pro_rata", "capped_pro_rata",
                      "smart_queue")
"""The allocations in profit space (Chitra, arXiv 2512.01112), run in the engine by
:func:`profit_space_closes`: each winner gives up a haircut of its unrealised profit."""


def _unknown_name(argument: str, name: object, known: tuple[str, ...]) -> ValueError:
    """A one-line ValueError for an unknown rule/policy name, suggesting the closest."""
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    allowed = ", ".join(map(repr, known))
    return ValueError(f"{argument} must be one of {allowed}; got {name!r}{hint}")


def code_label(code: object) -> str:
    """A function or class as a config file writes it, ``package.module:name`` (its repr
    when it has no module or qualified name): how errors and TOML name the user's code."""
    module = getattr(code, "__module__", None)
    qualname = getattr(code, "__qualname__", None)
    return f"{module}:{qualname}" if module and qualname else repr(code)


def _rule_label(rule: str | RuleFn) -> str:
    """How an error names a rule: its name, or its function's :func:`code_label`."""
    return repr(rule) if isinstance(rule, str) else code_label(rule)


# What a rule's scores may be: booleans, whole numbers and floats (numpy dtype kinds).
_REAL_KINDS = "biuf"


def _result(x: NDArray[np.float64]) -> FloatResult:
    return x[()] if x.ndim == 0 else x


# --------------------------------------------------------------------------- scores
#
# Built-in rules get arrays already broadcast to one shape and may assume nothing
# about dead (flat or bankrupt) entries: `score` overwrites those with −inf, and
# evaluates the rules with floating-point warnings silenced for that reason.


def _pnl_percent(size, entry_price, mark_price):
    # (mark − entry)·size / |entry·size| = sign(size)·(mark − entry)/entry.
    return mechanics.pnl_at(np.sign(size), entry_price, mark_price) / entry_price


def _leverage(size, entry_price, mark_price, collateral):
    return np.abs(size * mark_price) / mechanics.equity_at(collateral, size, entry_price,
                                                           mark_price)


def _rule_pnl_leverage(size, entry_price, mark_price, collateral, mmr, rng):
    pnl_percent = _pnl_percent(size, entry_price, mark_price)
    leverage = _leverage(size, entry_price, mark_price, collateral)
    return np.where(pnl_percent > 0, pnl_percent * leverage, pnl_percent / leverage)


def _rule_binance(size, entry_price, mark_price, collateral, mmr, rng):
    upnl = mechanics.pnl_at(size, entry_price, mark_price)
    pnl_percent = np.maximum(upnl, 0.0) / np.maximum(collateral, 1.0)
    margin_ratio = np.abs(size) * mark_price * mmr / (collateral + upnl)
    return pnl_percent * margin_ratio


def _rule_hyperliquid(size, entry_price, mark_price, collateral, mmr, rng):
    price_ratio = np.where(size > 0, mark_price / entry_price, entry_price / mark_price)
    return price_ratio * _leverage(size, entry_price, mark_price, collateral)


def _rule_profit(size, entry_price, mark_price, collateral, mmr, rng):
    return mechanics.pnl_at(size, entry_price, mark_price)


def _rule_leverage(size, entry_price, mark_price, collateral, mmr, rng):
    return _leverage(size, entry_price, mark_price, collateral)


def _rule_size(size, entry_price, mark_price, collateral, mmr, rng):
    return np.abs(size) * mark_price


def _rule_random(size, entry_price, mark_price, collateral, mmr, rng):
    # One draw per position, live or not, so the stream consumed does not depend on
    # which accounts happen to be flat (keeps paired comparisons paired).
    return rng.random(np.shape(size))


_BUILTIN_RULES: dict[str, RuleFn] = {
    "pnl_leverage": _rule_pnl_leverage,
    "binance": _rule_binance,
    "hyperliquid": _rule_hyperliquid,
    "profit": _rule_profit,
    "leverage": _rule_leverage,
    "size": _rule_size,
    "random": _rule_random,
}


BUILTIN_RULES = tuple(sorted(_BUILTIN_RULES))
"""The names of the built-in ranking rules: what an exchange config may name besides
its own ``adl_rules``."""

# Rules added by register_rule, for score(name, ...). An exchange never looks here:
# it takes its custom rules from its config, so that a config is complete in itself.
_REGISTERED: dict[str, RuleFn] = {}


def rules() -> tuple[str, ...]:
    """The sorted names of every rule :func:`score` knows: the built-in ones and those
    added by :func:`register_rule`."""
    return tuple(sorted({*_BUILTIN_RULES, *_REGISTERED}))


def register_rule(name: str, fn: RuleFn, *, replace: bool = False) -> None:
    """Add a custom ranking rule usable as ``score(name, ...)``.

    An exchange takes its custom rules from its config, not from here: name them in
    ``ExchangeConfig.adl_rules`` (a config is then complete in itself, and every
    worker process ranks alike).

    Parameters
    ----------
    name : the rule's name; a non-empty string.
    fn : called as ``fn(size, entry_price, mark_price, collateral, mmr, rng)``, as a
        function given to :func:`score` is.
    replace : allow replacing a rule of that name (built-in or registered).

    Raises
    ------
    ValueError naming ``name`` if it is not a non-empty string or is already known and
    ``replace`` is False; naming ``fn`` if it is not callable.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable as fn(size, entry_price, mark_price, "
                         f"collateral, mmr, rng); got {fn!r}")
    if name in rules() and not replace:
        raise ValueError(f"name {name!r} is already an ADL rule; pass replace=True to replace it")
    _REGISTERED[name] = fn


def is_import_path(name: object) -> bool:
    """Whether `name` reads as ``"package.module:function"`` (the form a custom rule takes
    in a TOML file)."""
    if not isinstance(name, str) or name.count(":") != 1:
        return False
    module, attr = name.split(":")
    return all(part.isidentifier() for part in (*module.split("."), *attr.split(".")))


def import_object(path: str) -> Any:
    """What the import path ``"package.module:name"`` names (``name`` may be dotted),
    imported now; ImportError or AttributeError if it does not import. The one importer
    of the user's code named in a config: ADL rules here, agent classes in
    :mod:`perpabm.config.scenario`."""
    module, attr = path.split(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_rule(name: str, custom: tuple[tuple[str, RuleFn | str], ...] = ()) -> RuleFn:
    """The ranking function called `name`: a built-in rule, or one of `custom` (pairs of
    name and function, or name and ``"package.module:function"``, imported now).

    Raises ValueError naming ``adl_rule`` for an unknown name, and naming
    ``adl_rules`` for an import path that does not import or a value that is not
    callable.
    """
    given = dict(custom)
    if name in given:
        fn = given[name]
        if isinstance(fn, str):
            try:
                fn = import_object(fn)
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"adl_rules[{name!r}]: cannot import {given[name]!r} "
                                 f"({exc})") from None
        if not callable(fn):
            raise ValueError(f"adl_rules[{name!r}] must be callable as fn(size, entry_price, "
                             f"mark_price, collateral, mmr, rng); got {fn!r}")
        return fn
    if name in _BUILTIN_RULES:
        return _BUILTIN_RULES[name]
    raise _unknown_name("adl_rule", name, tuple(sorted({*_BUILTIN_RULES, *given})))


def score(
    rule: str | RuleFn,
    size: ArrayLike,
    entry_price: ArrayLike,
    mark_price: ArrayLike,
    collateral: ArrayLike,
    mmr: ArrayLike = 0.0,
    *,
    rng: np.random.Generator | None = None,
) -> FloatResult:
    """ADL ranking score of each position; higher = deleveraged first.

    Rank only the side opposite the bankrupt position (longs and shorts are ranked
    separately on every venue); the score itself is side-aware where the rule is.
    With ``PnL% = (mark − entry)·size/|entry·size|``, ``equity = collateral +
    size·(mark − entry)``, ``leverage = |size·mark|/equity`` and ``uPnL = size·(mark −
    entry)``, the built-in rules are:

    ``"pnl_leverage"`` (BitMEX, Binance, OKX, Bybit)
        ``PnL% × leverage`` if ``PnL% > 0``, else ``PnL% / leverage``.
    ``"binance"`` (Binance FAQ 360033525471, current statement)
        ``max(0, uPnL)/max(1, collateral) × MM/(collateral + uPnL)`` with
        ``MM = |size|·mark·mmr``. Every losing or flat-P&L position scores 0; pass the
        position's ``mmr`` (the default 0 makes every score 0).
    ``"hyperliquid"`` (Hyperliquid docs, trading/auto-deleveraging)
        ``(mark/entry)·(notional/equity)`` for longs. The docs are silent for shorts;
        this uses the mirror image ``(entry/mark)·(notional/equity)``, which ranks a
        profitable short above an equally levered losing one as for longs.
        ``notional = |size|·mark``.
    ``"profit"``
        ``uPnL`` in USD.
    ``"leverage"``
        effective leverage.
    ``"size"``
        notional ``|size|·mark`` in USD.
    ``"random"`` (dYdX v4 deleveraging.go)
        uniform draws from ``rng``, one per position, so :func:`queue_close` takes
        positions in a uniformly random order. dYdX walks the opposite positions
        from a pseudo-random start (a random rotation of a fixed order); this models
        it as a fully random order (in both, each position is equally likely to be
        hit first).

    Positions with ``size == 0`` score −inf, and so do positions with ``equity ≤ 0``
    under every rule: such accounts are bankrupt and being liquidated themselves, so
    they have no profit to give up and cannot absorb anyone's position.
    :func:`queue_close` never closes a −inf position.

    A custom rule (a function, see :data:`RuleFn`) gets float arrays broadcast to one
    shape and the `rng`, and must return scores of that shape: real numbers (floats,
    whole numbers or booleans), ±inf allowed, NaN refused for a live position, since
    a NaN has no place in a ranking. Flat and bankrupt positions are set to −inf
    afterwards, whatever it returns for them.

    Parameters
    ----------
    rule : a name from :func:`rules` (built-in or registered), or a ranking function.
    size : signed position in base-asset units; any shape.
    entry_price : USD per base unit, > 0 where ``size ≠ 0``.
    mark_price : USD per base unit, > 0.
    collateral : USD.
    mmr : maintenance-margin rate in [0, 1) (only ``"binance"`` and custom rules use it).
    rng : a ``numpy.random.Generator``; required by ``"random"``, passed to custom rules.

    Returns
    -------
    float scores with the broadcast shape of the inputs.

    Raises
    ------
    ValueError naming ``rule``, ``rng``, ``mark_price``, ``entry_price`` or ``mmr``; and
    naming the rule (its name, or ``package.module:function``) when it returns scores of
    the wrong shape, anything but real numbers, or NaN for a live position.
    """
    if callable(rule):
        fn = rule
    elif isinstance(rule, str) and rule in rules():
        fn = _REGISTERED.get(rule) or _BUILTIN_RULES[rule]
    else:
        raise _unknown_name("rule", rule, rules())
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None; got {rng!r}")
    if rng is None and fn is _rule_random:
        raise ValueError(f"rng must be a numpy.random.Generator for rule {rule!r}; got None")

    arrays = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (size, entry_price, mark_price, collateral, mmr))
    )
    size, entry_price, mark_price, collateral, mmr = arrays
    if np.any(~(mark_price > 0)):
        raise ValueError(f"mark_price must be > 0 (USD); got a minimum of {mark_price.min()!r}")
    if np.any(~(entry_price[size != 0] > 0)):
        raise ValueError("entry_price must be > 0 (USD) wherever size != 0")
    if np.any(~((mmr >= 0) & (mmr < 1))):
        raise ValueError(f"mmr must be in [0, 1); got values in [{mmr.min()!r}, {mmr.max()!r}]")

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = np.asarray(fn(size, entry_price, mark_price, collateral, mmr, rng))
    if raw.shape != size.shape:
        raise ValueError(f"ADL rule {_rule_label(rule)} must return one score per position, "
                         f"of shape {size.shape}; got shape {raw.shape}")
    if raw.dtype.kind not in _REAL_KINDS:
        example = f" such as {raw.flat[0]!r}" if raw.size else ""
        raise ValueError(f"ADL rule {_rule_label(rule)} must return real numbers; got "
                         f"{raw.dtype} values{example}")
    dead = (size == 0) | (mechanics.equity_at(collateral, size, entry_price, mark_price) <= 0)
    scores = np.where(dead, -np.inf, raw.astype(np.float64, copy=False))
    if np.isnan(scores).any():  # dead entries are −inf by now: a NaN is a live position's
        nan = np.isnan(scores).ravel()
        raise ValueError(
            f"ADL rule {_rule_label(rule)} returned NaN for {np.count_nonzero(nan)} of "
            f"{np.count_nonzero(~dead)} live positions (the first at place "
            f"{int(np.argmax(nan))}); score a position that must not be hit −inf instead")
    return _result(scores)


# --------------------------------------------------------------------- allocation


def _check_quantities(quantities: ArrayLike) -> NDArray[np.float64]:
    quantities = np.asarray(quantities, dtype=np.float64)
    if not np.all(quantities >= 0):  # also rejects NaN
        raise ValueError("quantities must be >= 0 (base-asset units, not NaN)")
    return quantities


def _check_scores(scores: ArrayLike, shape: tuple[int, ...], what: str) -> NDArray[np.float64]:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != shape:
        raise ValueError(f"scores must have the same shape as {what} {shape}; got {scores.shape}")
    if np.any(np.isnan(scores)):
        raise ValueError("scores must not be NaN (use -inf for positions that cannot be hit)")
    return scores


def _check_amount(name: str, amount: float) -> float:
    amount = np.asarray(amount, dtype=np.float64)
    if amount.ndim != 0 or not amount >= 0:  # `not >=` also rejects NaN
        raise ValueError(f"{name} must be a scalar >= 0 (not NaN); got {amount.tolist()!r}")
    return float(amount)


def queue_close(quantities: ArrayLike, scores: ArrayLike, amount: float) -> NDArray[np.float64]:
    """Quantity closed per position by a queue ADL of ``amount``.

    Positions are taken in descending score, ties by position index (lower first),
    each closed fully, the last one partially, until ``amount`` is covered (BitMEX,
    Binance, OKX, Bybit, Hyperliquid). Positions scored −inf (flat or bankrupt, see
    :func:`score`) are never closed. If ``amount`` is at least the eligible total,
    every eligible position is closed in full. The closed total equals
    ``min(amount, eligible total)`` to floating-point precision, and no position is
    closed beyond its quantity.

    Parameters
    ----------
    quantities : absolute position sizes, ≥ 0 (base-asset units, or any additive unit
        such as USD of profit); any shape.
    scores : ranking scores (:func:`score`), same shape as ``quantities``; not NaN.
    amount : the quantity to cover, a scalar ≥ 0, in the unit of ``quantities``.

    Returns
    -------
    float array of the shape of ``quantities``, each entry in ``[0, quantity]``.

    Raises
    ------
    ValueError naming ``quantities``, ``scores`` or ``amount``.
    """
    quantities = _check_quantities(quantities)
    scores = _check_scores(scores, quantities.shape, "quantities")
    amount = _check_amount("amount", amount)

    flat_quantities = np.where(scores.ravel() > -np.inf, quantities.ravel(), 0.0)
    order = np.argsort(-scores.ravel(), kind="stable")
    queued = flat_quantities[order]
    covered_after = np.cumsum(queued)
    if queued.size == 0 or amount >= covered_after[-1]:
        return flat_quantities.reshape(quantities.shape)
    # The exclusive cumsum: what is already covered when each position's turn comes.
    covered_before = np.concatenate(([0.0], covered_after[:-1]))
    closed_queued = np.clip(amount - covered_before, 0.0, queued)
    closed = np.empty_like(closed_queued)
    closed[order] = closed_queued
    return closed.reshape(quantities.shape)


def indicator_lights(
    quantities: ArrayLike, scores: ArrayLike, buckets: int = 5
) -> NDArray[np.int64]:
    """ADL indicator lights, counted as BitMEX tabulates them: by quantity, from the head.

    Take the positions in queue order (highest score first); ``c`` is the cumulative
    quantity from the head of the queue up to *and including* the position, as a share
    of the side's total; its step is ``k = ceil(c·buckets)`` clipped to
    ``[1, buckets]`` (with 5 buckets: the 20 %, 40 %, …, 100 % marks); it shows
    ``buckets + 1 − k`` lights, so the first step shows them all.

    BitMEX's example ("Auto-Deleveraging Further Information"): six longs as
    (quantity, ranking) (10, 3), (10, 6), (20, 1), (30, 4), (20, 5), (10, 2); from the
    head the cumulative quantities are 10, 30, 60, 70, 80, 100 of 100, which BitMEX
    lists as the 20 %, 40 %, 60 %, 80 %, 80 % and 100 % marks: 5, 4, 3, 2, 2 and 1
    lights, i.e. accounts 1..6 show 2, 5, 1, 3, 4, 2. BitMEX describes the indicator as
    "your priority in the queue in 20% increments" with all lights lit at the top;
    reading its 20 % mark as 5 lights and its 100 % mark as 1 is ours, as it does not
    tabulate lights. A consequence of counting *including* the position: a head that
    holds more than ``1/buckets`` of the quantity does not show every light (a head
    with 60 % shows 3 of 5), as BitMEX's table places its second-in-line at 40 %.

    Other venues count differently, and neither publishes its bucket rule:

    * Binance (FAQ 360033525471, "What Is Auto-Deleveraging (ADL) and How Does It
      Work") ranks traders by ``LeveragePnlQuantile = rank(LeveragePnl) / Total User
      Count``: a quantile over *traders*, each counting once whatever its size, and
      shows it as an indicator "from lowest priority to highest priority" (an image).
    * Bybit (help 900000031623, "What is Auto-Deleveraging (ADL)?") shows each
      position's "ADL priority on the 'ADL Ranking' tab"; its API returns it per
      position as the integer ``adlRankIndicator`` (v5 position-info endpoint; 0 on
      a flat position); it does not say over what the rank is counted.

    Tied scores are ordered as :func:`queue_close` takes them (lower index first), so
    of two tied positions the one closed first shows at least as many lights. A
    zero-quantity position at the head shows ``buckets`` lights; all-zero quantities
    give 1 light everywhere.

    Parameters
    ----------
    quantities : absolute position sizes, ≥ 0; any shape.
    scores : ranking scores, same shape; not NaN.
    buckets : number of lights, an integer ≥ 1.

    Returns
    -------
    int array of the shape of ``quantities``, values in ``1..buckets``.

    Source: BitMEX "Auto-Deleveraging" and "Auto-Deleveraging Further Information";
    Binance FAQ 360033525471; Bybit help 900000031623. ``docs/venues.md`` works the
    example through.
    """
    quantities = _check_quantities(quantities)
    scores = _check_scores(scores, quantities.shape, "quantities")
    if isinstance(buckets, bool) or not isinstance(buckets, int | np.integer) or buckets < 1:
        raise ValueError(f"buckets must be an integer >= 1; got {buckets!r}")

    # The queue's order: highest score first, ties to the lower index (as queue_close).
    order = np.argsort(-scores.ravel(), kind="stable")
    cumulative = np.cumsum(quantities.ravel()[order])
    lights_sorted = np.ones(order.shape, dtype=np.int64)
    if cumulative.size and cumulative[-1] > 0:
        # Multiply before dividing: c·buckets is then exact for integer quantities.
        step = np.clip(np.ceil(cumulative * buckets / cumulative[-1]), 1, buckets)
        lights_sorted = (buckets + 1 - step).astype(np.int64)
    lights = np.empty_like(lights_sorted)
    lights[order] = lights_sorted
    return lights.reshape(quantities.shape)


# ---------------------------------------------------------------- an ADL round, in steps


def queue_order(scores: NDArray[np.float64], exempt: NDArray[np.bool_],
                ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """The places of positions in ADL order: exempt accounts (a venue's own vault) last,
    then by score, highest first (NaN counts as −inf), ties by account id.

    Scores [1, 3, 3] of accounts [7, 9, 8], none exempt → order [2, 1, 0] (accounts 8,
    9, 7: the tie at 3 goes to the lower id).
    """
    key_score = np.where(np.isnan(scores), -np.inf, scores)
    return np.lexsort((ids, -key_score, exempt))


def affordable(size: NDArray[np.float64], entry_price: NDArray[np.float64],
               collateral: NDArray[np.float64], mark_price: float,
               price: float) -> NDArray[np.float64]:
    """Quantity (base units) each position can be closed at `price` before its equity at
    the mark turns negative: the solvency cap of an ADL round. Closing q of a position
    of sign s at `price` changes its equity by q·s·(price − mark); where that costs
    nothing (closing at or beyond the mark in its favour), the cap is +inf.

    A short of 10 at entry 100, collateral 50, mark 90 (equity 150), closed at the
    bankruptcy price 95 of a long: each unit costs 95 − 90 = 5, so 150 / 5 = 30 ≥ 10.
    """
    loss_per_unit = np.sign(size) * (mark_price - price)
    equity = mechanics.equity_at(collateral, size, entry_price, mark_price)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(loss_per_unit > 0.0, np.maximum(equity, 0.0) / loss_per_unit, np.inf)


def pro_rata_close(quantities: NDArray[np.float64], exempt: NDArray[np.bool_],
                   amount: float) -> NDArray[np.float64]:
    """Close `amount` in proportion to `quantities` (base units), from non-exempt
    positions first, then the exempt ones.

    The rounding remainder goes to the largest close, so the closes add up to
    min(amount, Σ quantities) and the books stay balanced; an amount within
    :data:`~perpabm.mechanics.REL_ROUNDING` of a group's total closes all of it.
    Quantities [1, 3] and an amount of 2 → [0.5, 1.5].
    """
    closes = np.zeros_like(quantities)
    for group in (~exempt, exempt):
        available = quantities[group].sum()
        if amount <= 0.0 or available <= 0.0:
            continue
        if amount >= available * (1.0 - REL_ROUNDING):
            closes[group] = quantities[group]
        else:
            part = quantities[group] * (amount / available)
            largest = np.argmax(part)
            part[largest] = min(quantities[group][largest],
                                part[largest] + amount - part.sum())
            closes[group] = part
        amount -= closes[group].sum()
    return closes


def allocate(allocation: str, quantities: NDArray[np.float64], exempt: NDArray[np.bool_],
             amount: float) -> NDArray[np.float64]:
    """Split `amount` (base units) over `quantities`, which are in ADL order
    (:func:`queue_order`): ``"queue"`` closes them in that order, each fully but the
    last (:func:`queue_close`); ``"pro_rata"`` closes all in proportion
    (:func:`pro_rata_close`, exempt accounts last)."""
    if allocation == "queue":
        return queue_close(quantities, -np.arange(len(quantities), dtype=float), amount)
    if allocation == "pro_rata":
        return pro_rata_close(quantities, exempt, amount)
    raise _unknown_name("allocation", allocation, ALLOCATIONS)


def close_solvent_first(allocation: str, quantities: NDArray[np.float64],
                        solvent: NDArray[np.float64], exempt: NDArray[np.bool_],
                        amount: float) -> NDArray[np.float64]:
    """The quantity closed per position to cover `amount`: first within each position's
    `solvent` quantity (:func:`affordable`, at most its quantity), by `allocation`;
    only if that falls short, the rest beyond it, in the same order. A close within
    rounding of a whole position closes it whole, so no dust is left.

    Queue, quantities [4, 4], solvent [1, 4], amount 5 → first [1, 4], enough.
    Amount 6 → [1, 4] then the shortfall 1 from what is left: [2, 4].
    """
    closes = allocate(allocation, solvent, exempt, amount)
    shortfall = amount - closes.sum()
    if shortfall > REL_ROUNDING * amount:
        closes += allocate(allocation, quantities - closes, exempt, shortfall)
        closes = np.where(closes >= quantities * (1.0 - REL_ROUNDING), quantities, closes)
    return closes


def profit_space_closes(
    allocation: str,
    quantities: NDArray[np.float64],
    profit_per_unit: NDArray[np.float64],
    eligible: NDArray[np.bool_],
    gap: float,
    deficit: float,
    leverage: NDArray[np.float64] | None = None,
    cap: float = 1.0,
) -> NDArray[np.float64]:
    """The quantity (base units) each position closes so that it gives up, through the
    price, the haircut a profit-space policy assigns it; positions in ADL order
    (:func:`queue_order`).

    How a haircut is executed on an order-book venue: a winner closed by ``q`` at the
    liquidated account's bankruptcy price instead of the mark gives up ``q·gap`` of its
    profit, with ``gap = |mark − bankruptcy price|`` the same for every winner. So a
    haircut ``h_i·w_i`` of its unrealised profit ``w_i = quantity_i·max(u_i, 0)`` is a
    close of ``q_i = h_i·w_i / gap``. With the budget the liquidated account's
    ``deficit = Q·gap`` for its quantity ``Q``, the closes add up to ``Q`` exactly when
    the winners can pay the deficit. A winner can give up no more than its whole
    position pays, ``quantity_i·gap``, so its haircut is capped at
    ``min(1, gap/u_i)`` of its profit; the policies water-fill up to these caps (a
    position closed in full pays ``quantity_i·gap`` even where its profit is larger).

    ``allocation`` is one of :data:`PROFIT_ALLOCATIONS`:

    ``"wealth_pro_rata"``
        every winner gives up the same share ``h`` of its profit (those at their cap
        less): ``h_i = min(η, cap_i)``, ``Σ h_i·w_i = deficit``.
    ``"leverage_pro_rata"``
        ``h_i = min(λ·leverage_i, cap_i)``: the more levered give up a larger share.
    ``"capped_pro_rata"``
        as wealth pro rata with every share at most ``cap`` as well.
    ``"smart_queue"``
        winners in ADL order, each giving up its whole profit (to its cap), the last
        one only the rest of the deficit: the queue stops at exactly the deficit.

    Only `eligible` winners (profit > 0) are cut. Where the winners' capacity is below
    the deficit the closes add up to less than ``Q``; the caller closes the rest at
    the mark, where it costs no one anything. The shares are those of
    :func:`haircuts` where no cap binds.

    Worked example (Chitra's): profits w = (8, 4, 0.5, 0, 0) USD as quantities
    (8, 4, 0.5, 1, 1) with u = (1, 1, 1, 0, −1) USD per unit, gap 1, deficit 7.5:
    wealth pro rata h = 7.5/12.5 = 0.6, closes (4.8, 2.4, 0.3, 0, 0); in the order
    (4, 8, 0.5, …), the smart queue closes 4 and then 3.5.

    Raises ValueError naming ``allocation`` for an unknown name.
    """
    if allocation not in PROFIT_ALLOCATIONS:
        raise _unknown_name("allocation", allocation, PROFIT_ALLOCATIONS)
    if allocation == "leverage_pro_rata" and leverage is None:
        raise ValueError("leverage is required for allocation 'leverage_pro_rata' (the "
                         "weights: each position's effective leverage)")
    winnings = np.where(eligible, quantities * np.maximum(profit_per_unit, 0.0), 0.0)
    closes = np.zeros_like(quantities)
    winners = winnings > 0.0
    if deficit <= 0.0 or gap <= 0.0 or not winners.any():
        return closes
    w = winnings[winners]
    caps = np.minimum(1.0, gap * quantities[winners] / w)  # the whole position pays q·gap
    if allocation == "capped_pro_rata":
        caps = np.minimum(caps, cap)
    rates = None  # the same share of every winner's profit, up to its cap
    if allocation == "leverage_pro_rata":
        rates = np.nan_to_num(np.asarray(leverage, dtype=float)[winners], nan=0.0)
        rates = np.where(np.isfinite(rates) & (rates > 0.0), rates, 0.0)
    in_order = -np.arange(len(w), dtype=float) if allocation == "smart_queue" else None
    taken, _ = _profit_taken(w, deficit, caps, order=in_order, rates=rates)
    part = taken / gap
    # A close within rounding of the whole position closes it whole, leaving no dust.
    whole = part >= quantities[winners] * (1.0 - REL_ROUNDING)
    closes[winners] = np.where(whole, quantities[winners], np.minimum(part,
                                                                      quantities[winners]))
    return closes


def profit_and_leverage(size: NDArray[np.float64], entry_price: NDArray[np.float64],
                        collateral: NDArray[np.float64], mark_price: float,
                        closes: NDArray[np.float64]
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unrealised profit at the mark of the quantities about to be closed (USD), and each
    position's effective leverage before the close.

    A short of 10 at 100, collateral 50, mark 90, closing 4: profit 4·10 = 40 USD;
    leverage 900 / 150 = 6.
    """
    per_unit = mechanics.pnl_at(np.sign(size), entry_price, mark_price)
    equity = mechanics.equity_at(collateral, size, entry_price, mark_price)
    leverage = mechanics.effective_leverage(size, mark_price, equity)
    return closes * per_unit, np.asarray(leverage, dtype=float)


def top_winner(ids: NDArray[np.int64], size: NDArray[np.float64],
               entry_price: NDArray[np.float64], mark_price: float) -> int:
    """The id of the position with the largest unrealised profit at the mark (the first
    on a tie), or −1 if none is in profit: whose profit left after an ADL round is the
    numerator of PTSR (Chitra 2025)."""
    if len(ids) == 0:
        return -1
    profit = mechanics.pnl_at(size, entry_price, mark_price)
    best = int(np.argmax(profit))
    return int(ids[best]) if profit[best] > 0.0 else -1


def open_units(size: NDArray[np.float64], exclude: int) -> NDArray[np.float64]:
    """|size| of every position but place `exclude` (the bankrupt one): the units a
    socialised loss is spread over, on both sides. Positions of rounding size
    (:data:`~perpabm.mechanics.REL_ROUNDING` of the largest) count as 0."""
    units = np.abs(size)
    units[exclude] = 0.0
    units[units < REL_ROUNDING * units.max(initial=0.0)] = 0.0
    return units


def socialized_charges(units: NDArray[np.float64], deficit: float
                       ) -> tuple[float, NDArray[np.int64], NDArray[np.float64]]:
    """Drift's socialised loss: `deficit` (USD) spread over open `units` as
    δ = deficit / Σ units per unit. Returns (δ, the places charged, each one's charge
    −δ·units, USD). Units [2, 0, 6] and a deficit of 4: δ = 0.5, places [0, 2],
    charges [−1, −3]."""
    per_unit = deficit / units.sum()
    charged = np.flatnonzero(units)
    return per_unit, charged, -per_unit * units[charged]


# ------------------------------------------------------------------------ haircuts
#
# The allocation policies of Chitra 2025 in profit space, on a table of profits: what
# each winner would give up under a policy. The engine runs them as partial closes
# (profit_space_closes above, which adds each winner's cap from the close price).

_POLICIES = ("capped_pro_rata", "leverage_pro_rata", "pro_rata", "queue")


def policies() -> tuple[str, ...]:
    """The sorted names of the haircut policies :func:`haircuts` knows."""
    return _POLICIES


def _water_fill(
    weights: NDArray[np.float64],
    caps: NDArray[np.float64],
    rates: NDArray[np.float64],
    budget: float,
) -> NDArray[np.float64]:
    """Exact water-filling: ``h_i = min(caps_i, λ·rates_i)`` with ``Σ h_i·w_i = budget``.

    All inputs 1-D with ``weights > 0``, ``rates > 0``, ``caps ≥ 0``. Entry ``i``
    saturates at ``λ_i = caps_i/rates_i``; sorted by ``λ_i``, the filled amount
    ``G(λ) = Σ_{λ_i ≤ λ} caps_i·w_i + λ·Σ_{λ_i > λ} rates_i·w_i`` is piecewise linear
    and non-decreasing, so λ is solved exactly on the segment where ``G`` crosses the
    budget. If the budget reaches the capacity ``Σ caps_i·w_i``, every entry is capped.
    """
    breakpoints = caps / rates
    order = np.argsort(breakpoints, kind="stable")
    w, c, r, lam = weights[order], caps[order], rates[order], breakpoints[order]
    capped_mass = np.cumsum(c * w)  # Σ_{i ≤ j} c_i·w_i
    if capped_mass[-1] <= budget:
        return caps.copy()
    rate_mass_from = np.cumsum((r * w)[::-1])[::-1]  # Σ_{i ≥ j} r_i·w_i
    rate_mass_after = np.append(rate_mass_from[1:], 0.0)  # Σ_{i > j} r_i·w_i
    filled_at_breakpoint = capped_mass + lam * rate_mass_after  # G(λ_j)
    j = int(np.argmax(filled_at_breakpoint >= budget))  # exists: G(λ_last) > budget
    capped_before = capped_mass[j - 1] if j > 0 else 0.0
    level = (budget - capped_before) / rate_mass_from[j]
    h_sorted = np.empty_like(w)
    h_sorted[:j] = c[:j]
    h_sorted[j:] = np.minimum(level * r[j:], c[j:])
    h = np.empty_like(h_sorted)
    h[order] = h_sorted
    return h


def _profit_taken(winnings: NDArray[np.float64], budget: float, caps: NDArray[np.float64],
                  *, order: NDArray[np.float64] | None = None,
                  rates: NDArray[np.float64] | None = None
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """What a policy takes of each winner's profit to raise `budget`, in USD and as a
    share ``h_i`` of it — the one allocation of :func:`haircuts` and
    :func:`profit_space_closes`: with `order` (scores, highest first), a queue that takes
    each winner's capped profit ``caps_i·w_i`` in turn and the last one partially; else
    water-filling, ``h_i = min(caps_i, λ·rates_i)`` with ``Σ h_i·w_i = budget`` (rates 1
    by default: the same share for all), over the winners with a positive rate (the
    others give nothing). `winnings` are all > 0. Each form is the one its policy
    computes (USD for the queue, shares for water-filling), the other derived from it,
    so that a share at its cap is the cap to the last bit."""
    if order is not None:
        taken = queue_close(caps * winnings, order, budget)
        return taken, taken / winnings
    rates = np.ones(len(winnings)) if rates is None else rates
    shares = np.zeros(len(winnings))
    weighted = rates > 0.0
    if weighted.any():
        shares[weighted] = _water_fill(winnings[weighted], caps[weighted], rates[weighted],
                                       budget)
    return shares * winnings, shares


def haircuts(
    profits: ArrayLike,
    budget: float,
    policy: str,
    scores: ArrayLike | None = None,
    caps: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Fraction ``h_i ∈ [0, 1]`` of each winner's profit taken to cover ``budget``.

    A calculation on a table of profits (say, from ``adl_top_winner`` and ``adl``
    event rows). The engine runs the same policies as partial closes at the
    bankruptcy price (:func:`profit_space_closes`, ``ExchangeConfig.adl_allocation``),
    where a winner's share is also capped by what its whole position pays there.

    Only positive profits are cut (``h = 0`` where profit ≤ 0). With ``w_i =
    max(profit_i, 0)`` and capacity ``U = Σ w_i``, every policy satisfies
    ``Σ h_i·w_i = min(budget, capacity)`` where capacity is ``U`` except as noted.
    Policies (Chitra, arXiv 2512.01112; budget ``B = θ·D`` for severity θ and
    deficit D):

    ``"queue"``
        haircut 100% in descending ``scores`` (ties: lower index first) until ``B`` is
        met, the last winner partially: the "smart queue", which stops at exactly the
        budget (a venue's queue closes whole positions in contracts and overshoots;
        :func:`overshoot`). Winners scored −inf are skipped (capacity is then the
        other winners' profit). Chitra's example: profits (8, 4, 0.5, 0, 0), the
        second first, budget 7.5 → 4 from the second, 3.5 from the first.
    ``"pro_rata"`` (wealth pro-rata)
        ``h_i = min(1, B/U)`` for every winner. The example above: h = 7.5/12.5 = 0.6,
        taking 4.8, 2.4 and 0.3.
    ``"leverage_pro_rata"``
        ``h_i = min(1, λ·s_i)`` with weights ``s_i = scores_i ≥ 0`` (e.g. leverage)
        and λ water-filled so that ``Σ h_i·w_i = B``. Winners with ``s_i = 0`` are
        never cut; capacity is ``Σ_{s_i > 0} w_i``.
    ``"capped_pro_rata"``
        ``h_i = min(η, β_i)`` with ``β_i = caps_i`` (default 1) and η water-filled so
        that ``Σ h_i·w_i = B``; capacity is ``Σ β_i·w_i``.

    The water-filling is exact: breakpoints are sorted and the piecewise-linear
    equation solved on the segment where it crosses ``B`` (no iteration). With ``B``
    at or above capacity every winner is at its cap; with ``B = 0`` or no winners,
    every ``h`` is 0.

    Parameters
    ----------
    profits : unrealised profit per position in USD (losers allowed); any shape.
    budget : USD to raise, a scalar ≥ 0.
    policy : one of :func:`policies`.
    scores : same shape as ``profits``; the queue ranking (``"queue"``, not NaN) or
        the weights (``"leverage_pro_rata"``, finite and ≥ 0).
    caps : per-winner caps β in [0, 1] for ``"capped_pro_rata"``; broadcast to the
        shape of ``profits``; default 1.

    Returns
    -------
    float array of the shape of ``profits``, values in [0, 1].

    Raises
    ------
    ValueError naming ``policy``, ``profits``, ``budget``, ``scores`` or ``caps``.
    """
    if policy not in _POLICIES:
        raise _unknown_name("policy", policy, _POLICIES)
    profits = np.asarray(profits, dtype=np.float64)
    if np.any(np.isnan(profits)):
        raise ValueError("profits must not be NaN (USD)")
    budget = _check_amount("budget", budget)
    needs_scores = policy in ("queue", "leverage_pro_rata")
    if needs_scores and scores is None:
        raise ValueError(f"scores are required for policy {policy!r}")
    if needs_scores:
        scores = _check_scores(scores, profits.shape, "profits").ravel()
        if policy == "leverage_pro_rata" and not np.all(np.isfinite(scores) & (scores >= 0)):
            raise ValueError(
                "scores must be finite and >= 0 for policy 'leverage_pro_rata' "
                "(they are the weights)"
            )
    if caps is not None:
        caps = np.asarray(caps, dtype=np.float64)
        try:
            caps = np.broadcast_to(caps, profits.shape)
        except ValueError:
            raise ValueError(
                f"caps must broadcast to the shape of profits {profits.shape}; got {caps.shape}"
            ) from None
        if not np.all((caps >= 0) & (caps <= 1)):
            raise ValueError("caps must be in [0, 1] (fractions of profit)")

    winnings = np.maximum(profits, 0.0).ravel()
    h = np.zeros(winnings.shape)
    if budget == 0 or not np.any(winnings > 0):
        return h.reshape(profits.shape)

    winners = winnings > 0
    w = winnings[winners]
    betas = (caps.ravel()[winners] if policy == "capped_pro_rata" and caps is not None
             else np.ones(len(w)))
    if policy == "pro_rata":
        capacity = w.sum()  # the water level of equal rates, exactly; no budget / tiny
        h[winners] = 1.0 if budget >= capacity else budget / capacity
    else:
        _, h[winners] = _profit_taken(
            w, budget, betas, order=scores[winners] if policy == "queue" else None,
            rates=scores[winners] if policy == "leverage_pro_rata" else None)
    return np.clip(h, 0.0, 1.0).reshape(profits.shape)


def overshoot(closed_profit: ArrayLike, deficit: ArrayLike) -> FloatResult:
    """Profit taken from winners minus the deficit it was needed for, in USD.

    ``Σ closed_profit − deficit`` (Chitra, arXiv 2512.01112): positive when ADL took
    more from winners than the deficit required (a queue closing whole positions at
    the bankruptcy price does), 0 for an exact allocation such as :func:`haircuts`'
    pro rata, negative when the deficit was not covered. Not clipped.
    :func:`perpabm.analysis.adl_overshoot` computes it per episode from an event
    table.

    Parameters
    ----------
    closed_profit : USD taken per closed position; summed over the last axis
        (positions), so a scalar is a total and shape ``(paths, positions)`` gives one
        value per path.
    deficit : USD needed; broadcasts against the summed result.

    Returns
    -------
    USD, with the broadcast shape of the summed ``closed_profit`` and ``deficit``.
    """
    closed_profit = np.asarray(closed_profit, dtype=np.float64)
    taken = closed_profit.sum(axis=-1) if closed_profit.ndim else closed_profit
    return _result(np.asarray(taken - np.asarray(deficit, dtype=np.float64)))

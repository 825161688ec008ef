"""Margin mechanics of a linear, USD-margined perpetual swap.

Pure, vectorised formulas with no state. Every function accepts Python scalars or
numpy arrays and broadcasts its arguments against each other (numpy rules); it
returns a numpy scalar when every input is a scalar and an array otherwise.

Conventions (``docs/mechanics.md`` derives every formula with the venues' worked
examples):

* ``size`` is the signed position in base-asset units (+ long, − short);
* prices (``entry_price``, ``mark_price``) are positive floats in USD per base unit;
* ``collateral``, ``equity``, margins and P&L are in USD;
* ``notional`` is ``|size|·price`` in USD, always ≥ 0;
* ``mmr`` is a maintenance-margin rate (a fraction of notional, in [0, 1));
* ``tiers`` is a tier table, a sequence of ``(notional_floor, mmr)`` pairs
  ascending from floor 0 (Binance / Hyperliquid margin tiers), or a single float mmr.

Sources: Binance FAQ b3c689c1f50a44cabb3a84e663b81d93, "How to Calculate Liquidation
Price of USDⓈ-M Futures Contracts" (liquidation price, tiered maintenance margin);
Hyperliquid docs (margining, margin-tiers); BitMEX liquidation pages (bankruptcy
price); dYdX v4 documentation, liquidations.mdx (isolated short example).

One definition of each rule. :func:`pnl_at`, :func:`equity_at` and
:func:`margin_from_table` are plain arithmetic that numpy broadcasts over arrays and
that compiled kernels call on scalars (numba's ``register_jitable``): the engine's
numpy code and its kernels compute equity and tiered maintenance margin with the
very same operations, so they agree to the last bit. The public functions below
check and convert their inputs, then apply these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba.extending import register_jitable
from numpy.typing import ArrayLike, NDArray

from perpabm.compiled import kernel

__all__ = [
    "REL_ROUNDING",
    "bankruptcy_price",
    "effective_leverage",
    "equity",
    "equity_at",
    "initial_margin",
    "liquidation_price",
    "liquidation_price_from_table",
    "liquidation_price_tiered",
    "maintenance_margin",
    "margin_from_table",
    "max_notional_for_margin",
    "pnl_at",
    "tier_in_table",
    "tier_of",
    "tier_table",
    "unrealized_pnl",
]

REL_ROUNDING = 1e-12
"""Floating-point rounding noise, as a fraction: a quantity or an amount within this
fraction of another is taken to equal it (a fill that leaves a resting order with
dust, a close that is the whole position but for rounding, a deficit of rounding
size). About 4,500 units in the last place of a float64: far above what rounding
leaves, far below any amount a trader means."""

#: A float result: a numpy scalar for scalar inputs, an array otherwise.
type FloatResult = np.float64 | NDArray[np.float64]

#: A tier table: ``[(notional_floor_usd, mmr), ...]`` ascending from 0, or one float mmr.
type Tiers = Sequence[tuple[float, float]] | NDArray[np.float64] | float

#: A float or an array of them: what the plain-arithmetic rules take and give.
type FloatArg = float | NDArray[np.float64]


def _as_float(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _result(x: NDArray[np.float64]) -> FloatResult:
    # 0-d arrays become numpy scalars, so scalar in → scalar out.
    return x[()] if x.ndim == 0 else x


def _divide_or_nan(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> FloatResult:
    """numerator / denominator, NaN where the denominator is 0 (without warnings)."""
    shape = np.broadcast_shapes(numerator.shape, denominator.shape)
    out = np.full(shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _check_nonnegative(name: str, values: NDArray[np.float64]) -> None:
    if np.any(values < 0):
        raise ValueError(f"{name} must be >= 0 (USD); got a minimum of {values.min()!r}")


@register_jitable
def pnl_at(size: FloatArg, entry_price: FloatArg, mark_price: FloatArg) -> FloatArg:
    """Unrealised P&L ``size·(mark_price − entry_price)`` (USD) as plain arithmetic, for
    floats or arrays alike and callable from kernels; :func:`unrealized_pnl` checks its
    inputs first. Long 2 at 100, mark 110: 2·(110 − 100) = 20 USD."""
    return size * (mark_price - entry_price)


@register_jitable
def equity_at(collateral: FloatArg, size: FloatArg, entry_price: FloatArg,
              mark_price: FloatArg) -> FloatArg:
    """Equity ``collateral + size·(mark_price − entry_price)`` (USD) as plain arithmetic,
    for floats or arrays alike and callable from kernels; :func:`equity` checks its
    inputs first. 10 USD of collateral, short 1 at 100, mark 104: 10 − 4 = 6 USD."""
    return collateral + pnl_at(size, entry_price, mark_price)


def unrealized_pnl(size: ArrayLike, entry_price: ArrayLike, mark_price: ArrayLike) -> FloatResult:
    """Unrealised P&L in USD: ``size·(mark_price − entry_price)``.

    Parameters
    ----------
    size : signed position in base-asset units (+ long, − short).
    entry_price, mark_price : USD per base unit.

    Returns
    -------
    USD, with the broadcast shape of the inputs.

    Source: linear USD-margined perpetual, ``docs/mechanics.md`` ("Equity and P&L").
    """
    return _result(pnl_at(_as_float(size), _as_float(entry_price), _as_float(mark_price)))


def equity(
    collateral: ArrayLike, size: ArrayLike, entry_price: ArrayLike, mark_price: ArrayLike
) -> FloatResult:
    """Account equity at the mark price in USD: ``collateral + size·(mark − entry)``.

    Parameters
    ----------
    collateral : USD (wallet balance allotted to the position).
    size : signed position in base-asset units.
    entry_price, mark_price : USD per base unit.

    Returns
    -------
    USD, with the broadcast shape of the inputs.

    Source: ``docs/mechanics.md`` ("Equity and P&L": ``e = collateral + size·(P − entry)``).
    """
    return _result(equity_at(_as_float(collateral), _as_float(size), _as_float(entry_price),
                             _as_float(mark_price)))


def bankruptcy_price(size: ArrayLike, entry_price: ArrayLike, collateral: ArrayLike) -> FloatResult:
    """Price at which equity is exactly 0: ``BP = entry − collateral/size``.

    Solves ``collateral + size·(BP − entry) = 0``. NaN where ``size == 0`` (a flat
    account has no bankruptcy price).

    A long whose collateral exceeds its notional at entry (``collateral ≥ size·entry``,
    i.e. leverage ≤ 1x) gets ``BP ≤ 0``: it can never go bankrupt at a positive price.
    The formula value is returned unchanged so callers can see by how much.

    Parameters
    ----------
    size : signed position in base-asset units.
    entry_price : USD per base unit.
    collateral : USD.

    Returns
    -------
    USD per base unit, with the broadcast shape of the inputs.

    Source: BitMEX liquidation pages; ``docs/mechanics.md`` (long 20 at 1,000 with
    collateral 10,000 → 500).
    """
    size = _as_float(size)
    shift = _divide_or_nan(_as_float(collateral), size)
    return _result(_as_float(entry_price) - shift)


def liquidation_price(
    size: ArrayLike,
    entry_price: ArrayLike,
    collateral: ArrayLike,
    mmr: ArrayLike,
    cum: ArrayLike = 0.0,
) -> FloatResult:
    """Price at which equity equals maintenance margin (isolated margin, one tier).

    Solves ``collateral + size·(LP − entry) = |size|·LP·mmr − cum`` for ``LP``; with
    side ``s = sign(size)`` and quantity ``q = |size|``::

        LP = (collateral + cum − s·q·entry) / (q·mmr − s·q)

    ``mmr`` and ``cum`` are those of the tier the position is in *at the liquidation
    price* (see :func:`tier_of`); :func:`liquidation_price_tiered` finds that tier
    itself. NaN where ``size == 0``. A long that cannot be liquidated at any positive
    price gets ``LP ≤ 0``; the formula value is returned unchanged.
    For cross margin pass ``collateral`` = wallet balance − other positions' MM +
    other positions' unrealised P&L.

    Parameters
    ----------
    size : signed position in base-asset units.
    entry_price : USD per base unit.
    collateral : USD.
    mmr : maintenance-margin rate of the tier, in [0, 1).
    cum : the tier's maintenance amount in USD (0 for the first tier).

    Returns
    -------
    USD per base unit, with the broadcast shape of the inputs.

    Source: Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 (long 3,683.979 ETH at
    1,456.84, wallet 1,535,443.01, mmr 0.10, cum 135,365 → 1,114.78, read as isolated
    margin); dYdX v4 documentation, liquidations.mdx (short 3 ETH at 3,000, collateral
    1,000, mmr 0.05 → 3,174.60); ``docs/mechanics.md`` ("Liquidation price").
    """
    size = _as_float(size)
    mmr = _as_float(mmr)
    if np.any(~((mmr >= 0) & (mmr < 1))):
        raise ValueError(f"mmr must be in [0, 1); got values in [{mmr.min()!r}, {mmr.max()!r}]")
    return _result(_liquidation_root(size, _as_float(entry_price), _as_float(collateral),
                                     mmr, _as_float(cum)))



def _root(size: FloatArg, entry_price: FloatArg, collateral: FloatArg, mmr: FloatArg,
          cum: FloatArg) -> FloatArg:
    """The price (USD) where equity = |size|·mmr·price − cum, for one tier: plain
    arithmetic, so that numpy broadcasts it and numba compiles it for scalars."""
    # s·q = size, so the textbook numerator/denominator simplify to these:
    return (collateral + cum - size * entry_price) / (abs(size) * mmr - size)


def _liquidation_root(size: NDArray[np.float64], entry_price: NDArray[np.float64],
                      collateral: NDArray[np.float64], mmr: NDArray[np.float64],
                      cum: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`liquidation_price` of checked float arrays, broadcast together (NaN for a
    flat position: no price liquidates it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(size) * mmr - size != 0,
                        _root(size, entry_price, collateral, mmr, cum), np.nan)


liquidation_root = kernel(error_model="numpy")(_root)
""":func:`_root` compiled for scalars (the ledger's refresh of changed accounts); a flat
position's root is ±inf or NaN, which callers never use."""


TIER_TABLE_RULES = ("a non-empty list of [notional_floor, mmr] pairs, the first floor 0, "
                    "floors finite and strictly ascending, mmr in (0, 1) and non-decreasing")
"""The rules :func:`tier_table` checks, in words (the configuration reference states them)."""


def tier_table(
    tiers: Tiers, name: str = "tiers"
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Validate a tier table and return ``(floors, mmrs, cums)`` as 1-D arrays.

    ``cum_0 = 0`` and ``cum_k = cum_{k−1} + floor_k·(mmr_k − mmr_{k−1})``, the
    "maintenance amount" that makes the tiered maintenance margin continuous.
    This is the one check of a tier table: :class:`perpabm.ExchangeConfig` applies it
    to ``mm_tiers`` too.

    Parameters
    ----------
    tiers : a non-empty sequence of ``(notional_floor, mmr)`` pairs (floors in USD
        notional, first floor 0, strictly ascending; mmr in (0, 1), non-decreasing),
        or a single float mmr meaning one tier from 0. True and False are not numbers.
    name : what to call the table in error messages (``"exchange.mm_tiers"``, say).

    Returns
    -------
    floors, mmrs, cums : float arrays of shape ``(K,)``; floors and cums in USD.

    Raises
    ------
    ValueError starting with `name` if the table breaks any rule above.

    Source: Binance leverage-and-margin tiers; Hyperliquid margin-tiers
    (BTC: [(0, 1.25%), (150M, 2.5%)] → cums [0, 150M·1.25% = 1.875M]).
    """
    table = None
    if not isinstance(tiers, str | bytes) and not _holds_bool(tiers):
        try:  # numpy would parse "0.01" as a number, and True as 1.0
            table = np.asarray(tiers, dtype=np.float64)
        except (TypeError, ValueError):
            table = None
    if table is not None and table.ndim == 0:
        table = np.array([[0.0, float(table)]])
    if table is None or table.ndim != 2 or table.shape[0] == 0 or table.shape[1] != 2:
        raise ValueError(
            f"{name} must be a float mmr or a non-empty sequence of (notional_floor, mmr) "
            f"pairs; got {tiers!r}"
        )
    floors, mmrs = table[:, 0].copy(), table[:, 1].copy()
    if floors[0] != 0:
        raise ValueError(f"{name} must start at notional_floor 0; got first floor {floors[0]!r}")
    if not (np.all(np.isfinite(floors)) and np.all(np.diff(floors) > 0)):
        raise ValueError(
            f"{name} floors must be finite and strictly ascending; got {floors.tolist()}"
        )
    if not np.all((mmrs > 0) & (mmrs < 1)):
        raise ValueError(f"{name} mmr values must be in (0, 1); got {mmrs.tolist()}")
    if np.any(np.diff(mmrs) < 0):
        raise ValueError(f"{name} mmr values must be non-decreasing; got {mmrs.tolist()}")
    cums = np.concatenate(([0.0], np.cumsum(floors[1:] * np.diff(mmrs))))
    return floors, mmrs, cums


def _holds_bool(tiers: object) -> bool:
    """Whether `tiers` is, or its pairs hold, a bool (never a margin rate or a floor)."""
    if isinstance(tiers, bool | np.bool_):
        return True
    if isinstance(tiers, np.ndarray):
        return tiers.dtype == np.bool_
    try:
        return any(isinstance(x, bool | np.bool_) for pair in tiers for x in pair)
    except TypeError:
        return False


@register_jitable
def margin_from_table(notional: FloatArg, mmrs: NDArray[np.float64],
                      cums: NDArray[np.float64]) -> FloatArg:
    """Tiered maintenance margin ``max_k(notional·mmr_k − cum_k)`` (USD) for a table
    already checked by :func:`tier_table`, as plain arithmetic: for floats or arrays
    alike and callable from kernels (:func:`maintenance_margin` checks its inputs
    first). With one tier it is ``notional·mmr_0``.

    Hyperliquid BTC, mmrs [1.25%, 2.5%], cums [0, 1.875M]: 200M of notional →
    max(2.5M, 5M − 1.875M) = 3.125M USD.
    """
    margin = notional * mmrs[0]  # cum_0 = 0
    for k in range(1, len(mmrs)):
        margin = np.maximum(margin, notional * mmrs[k] - cums[k])
    return margin


def maintenance_margin(notional: ArrayLike, tiers: Tiers) -> FloatResult:
    """Tiered maintenance margin in USD: ``MM = notional·mmr_k − cum_k``.

    ``k`` is the tier with ``floor_k ≤ notional < floor_{k+1}``. Because the mmrs are
    non-decreasing and ``cum`` is built to join the pieces, MM is a continuous, convex,
    piecewise-linear function of notional, hence equal to the upper envelope of its
    pieces::

        MM = max_k (notional·mmr_k − cum_k)

    which is what is computed (:func:`margin_from_table`: one vector pass per tier, no
    search).

    Parameters
    ----------
    notional : ``|size|·price`` in USD, ≥ 0; any shape.
    tiers : tier table (see :func:`tier_table`) or a single float mmr.

    Returns
    -------
    USD, same shape as ``notional``.

    Source: Binance FAQ b3c689c1f50a44cabb3a84e663b81d93; Hyperliquid margin-tiers
    (200M with [(0, 1.25%), (150M, 2.5%)] → 3,125,000).
    """
    notional = _as_float(notional)
    _check_nonnegative("notional", notional)
    _, mmrs, cums = tier_table(tiers)
    return _result(np.asarray(margin_from_table(notional, mmrs, cums)))


def tier_of(notional: ArrayLike, tiers: Tiers) -> tuple[FloatResult, FloatResult]:
    """The ``(mmr, cum)`` of the tier each notional falls in (``floor_k ≤ notional``).

    A notional exactly on a floor belongs to the tier that starts there.

    Parameters
    ----------
    notional : USD, ≥ 0; any shape.
    tiers : tier table (see :func:`tier_table`) or a single float mmr.

    Returns
    -------
    mmr : rate, same shape as ``notional``.
    cum : USD, same shape as ``notional``.
    """
    notional = _as_float(notional)
    _check_nonnegative("notional", notional)
    mmr, cum = tier_in_table(notional, *tier_table(tiers))
    return _result(mmr), _result(cum)


def tier_in_table(notional: NDArray[np.float64], floors: NDArray[np.float64],
                  mmrs: NDArray[np.float64], cums: NDArray[np.float64]
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`tier_of` for a table already checked by :func:`tier_table` (its floors,
    mmrs and cums): the ``(mmr, cum)`` arrays of each notional's tier. Binance BTCUSDT's
    first tiers, floors [0, 50k], mmrs [0.4%, 0.5%]: 60k of notional → (0.5%, 50 USD)."""
    index = np.searchsorted(floors, notional, side="right") - 1
    return mmrs[index], cums[index]


def liquidation_price_tiered(
    size: ArrayLike, entry_price: ArrayLike, collateral: ArrayLike, tiers: Tiers
) -> FloatResult:
    """Liquidation price under a tier table, with the tier found at the price itself.

    Equity minus tiered MM is ``min_k g_k(P)`` with ``g_k`` the linear gap for tier
    ``k`` (MM is the max of its pieces). For a long every ``g_k`` rises with P, so the
    gap is ≥ 0 exactly when P ≥ every per-tier root: ``LP = max_k LP_k``; for a short
    every ``g_k`` falls with P: ``LP = min_k LP_k``, where ``LP_k`` is
    :func:`liquidation_price` with ``(mmr_k, cum_k)``. At the result, equity equals
    :func:`maintenance_margin` of ``|size|·LP``. NaN where ``size == 0``; ``LP ≤ 0`` for
    a long that cannot be liquidated.

    Parameters
    ----------
    size : signed position in base-asset units.
    entry_price : USD per base unit.
    collateral : USD.
    tiers : tier table (see :func:`tier_table`) or a single float mmr.

    Returns
    -------
    USD per base unit, with the broadcast shape of the inputs.

    Source: derived from Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 (same formula, tier
    chosen at LP); ``docs/mechanics.md`` ("Under a tier table").
    """
    _, mmrs, cums = tier_table(tiers)
    return liquidation_price_from_table(size, entry_price, collateral, mmrs, cums)


def liquidation_price_from_table(size: ArrayLike, entry_price: ArrayLike,
                                 collateral: ArrayLike, mmrs: NDArray[np.float64],
                                 cums: NDArray[np.float64]) -> FloatResult:
    """:func:`liquidation_price_tiered` with the tier table already validated by
    :func:`tier_table` (its ``mmrs`` and ``cums``), for callers that reuse one table."""
    size = _as_float(size)
    if len(mmrs) == 1:
        return _result(_liquidation_root(size, _as_float(entry_price), _as_float(collateral),
                                          mmrs[0], cums[0]))
    # Every tier's root at once, tiers along a last axis; a long's price is the largest,
    # a short's the smallest.
    roots = _liquidation_root(size[..., None], _as_float(entry_price)[..., None],
                              _as_float(collateral)[..., None], mmrs, cums)
    return _result(np.where(size > 0, roots.max(axis=-1), roots.min(axis=-1)))


def max_notional_for_margin(margin: ArrayLike, tiers: Tiers) -> FloatResult:
    """Largest notional ``n ≥ 0`` whose maintenance margin ``MM(n) ≤ margin``.

    The inverse of :func:`maintenance_margin`. With ``MM = max_k(n·mmr_k − cum_k)``,
    ``MM(n) ≤ margin`` holds iff ``n ≤ (margin + cum_k)/mmr_k`` for every ``k``, so::

        n = max(0, min_k (margin + cum_k)/mmr_k)

    Used for partial liquidation: close only enough that the rest is margined again.

    Parameters
    ----------
    margin : USD available as maintenance margin; any shape (negative → 0).
    tiers : tier table (see :func:`tier_table`) or a single float mmr.

    Returns
    -------
    USD notional, same shape as ``margin``.
    """
    margin = _as_float(margin)
    _, mmrs, cums = tier_table(tiers)
    notional = np.divide(margin, mmrs[0], out=np.empty_like(margin))  # cum_0 = 0
    for mmr, cum in zip(mmrs[1:], cums[1:], strict=True):
        np.minimum(notional, (margin + cum) / mmr, out=notional)
    return _result(np.maximum(notional, 0.0))


def effective_leverage(size: ArrayLike, mark_price: ArrayLike, equity: ArrayLike) -> FloatResult:
    """Effective leverage ``|size·mark| / equity`` (dimensionless).

    ``+inf`` where ``equity ≤ 0`` and ``size ≠ 0`` (an account with no equity left is
    infinitely levered), ``0`` where ``size == 0``.

    Parameters
    ----------
    size : signed position in base-asset units.
    mark_price : USD per base unit.
    equity : USD (see :func:`equity`).

    Returns
    -------
    Leverage, with the broadcast shape of the inputs.

    Source: BitMEX ADL page (mark value / (mark value − bankrupt value) is the same
    number); ``docs/mechanics.md``.
    """
    size = _as_float(size)
    equity = _as_float(equity)
    notional = np.abs(size * _as_float(mark_price))
    shape = np.broadcast_shapes(notional.shape, equity.shape)
    leverage = np.full(shape, np.inf)
    np.divide(notional, equity, out=leverage, where=equity > 0)
    leverage = np.where(size == 0, 0.0, leverage)
    return _result(leverage)


def initial_margin(notional: ArrayLike, max_leverage: ArrayLike) -> FloatResult:
    """Initial margin in USD required to open ``notional``: ``notional / max_leverage``.

    Parameters
    ----------
    notional : USD, ≥ 0.
    max_leverage : the venue's maximum leverage (> 0, e.g. 40 for 40x).

    Returns
    -------
    USD, with the broadcast shape of the inputs.

    Source: Hyperliquid margining (MM is half the initial margin at max leverage).
    """
    notional = _as_float(notional)
    max_leverage = _as_float(max_leverage)
    _check_nonnegative("notional", notional)
    if np.any(~(max_leverage > 0)):
        raise ValueError(f"max_leverage must be > 0; got a minimum of {max_leverage.min()!r}")
    return _result(notional / max_leverage)

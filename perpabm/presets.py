"""Venue presets: the liquidation and ADL rules of real exchanges, for one BTC perpetual.

Each function returns an :class:`~perpabm.config.ExchangeConfig`; its
docstring says what it models, from which venue documents, and what it
simplifies. The sources and worked examples are collected in the project's
mechanics reference (venue help pages, dYdX v4 and Drift protocol code).
Fee and tier numbers are the venues' published base-tier BTC figures at the
time of writing; check the venue before quoting them as current.
"""

from __future__ import annotations

from collections.abc import Callable

from perpabm.config import ExchangeConfig
from perpabm.errors import ConfigError, one_of


def binance() -> ExchangeConfig:
    """Binance USDⓈ-M BTCUSDT.

    Models: tiered maintenance margin in Binance's (floor, rate, cumulative
    amount) form; liquidation orders go to the book as IOC at the bankruptcy
    price; a liquidation clearance fee of 0.3% of notional (the historic BTCUSDT
    figure) and the rest of a liquidated account's margin go to the insurance
    fund; what the book does not take, the fund closes; when it cannot, ADL
    closes the rest in queue order by PnL% × margin ratio at the bankruptcy
    price, with no fee (Binance FAQ 360033525471, 360033525271).

    Simplifies: the fund does not hold positions and unwind them slowly — it
    closes them in the book at once, up to 5% from the mark, paying the
    difference, so with an empty book the rest goes to ADL even while the fund
    has money (a backstop handler funded like the fund models a fund that
    takes positions over); the net-notional cap on what the fund accepts is
    not modelled.
    """
    return ExchangeConfig(
        name="binance",
        max_leverage=125.0,
        mm_tiers=(
            (0.0, 0.004),
            (50_000.0, 0.005),
            (600_000.0, 0.01),
            (3_000_000.0, 0.025),
            (12_000_000.0, 0.05),
            (70_000_000.0, 0.1),
            (100_000_000.0, 0.125),
            (200_000_000.0, 0.15),
            (300_000_000.0, 0.25),
            (500_000_000.0, 0.5),
        ),
        taker_fee=0.0005,
        maker_fee=0.0002,
        liquidation_fee=0.003,
        waterfall=("book", "insurance_fund", "adl"),
        surplus_to="insurance_fund",
        adl_trigger="unfilled",
        adl_rule="binance",
        adl_allocation="queue",
        adl_price="bankruptcy",
        mark_rule="median",
        mark_ema_minutes=5.0,
        funding_interval_minutes=480.0,
        funding_cap=0.0075,
        description="Binance USDⓈ-M: book (IOC at bankruptcy) → insurance fund → ADL queue",
    )


def bitmex() -> ExchangeConfig:
    """BitMEX XBTUSD-style linear perpetual.

    Models: the liquidation engine takes the position at the bankruptcy price
    and closes it in the book; what it gets better than bankruptcy goes to the
    insurance fund (the whole maintenance margin is forfeited); when the fund is
    depleted, ADL closes the rest in queue order by PnL% × effective leverage,
    longs and shorts ranked separately, at the bankruptcy price (BitMEX
    auto-deleveraging pages).

    Simplifies: one flat maintenance rate (0.35% plus a liquidation buffer,
    0.5% in all) instead of BitMEX's risk-limit steps; inverse contracts are
    modelled as linear; the liquidation engine does not hold positions, so
    with an empty book the rest goes to ADL even while the fund has money.
    """
    return ExchangeConfig(
        name="bitmex",
        max_leverage=100.0,
        mm_tiers=((0.0, 0.005),),
        taker_fee=0.00075,
        maker_fee=-0.0001,
        liquidation_fee=0.0,
        waterfall=("book", "insurance_fund", "adl"),
        surplus_to="insurance_fund",
        adl_trigger="unfilled",
        adl_rule="pnl_leverage",
        adl_allocation="queue",
        adl_price="bankruptcy",
        mark_rule="index_ema_basis",
        mark_ema_minutes=30.0,
        funding_interval_minutes=480.0,
        funding_cap=0.0075,
        description="BitMEX: book → insurance fund → ADL queue by PnL% × leverage",
    )


def hyperliquid() -> ExchangeConfig:
    """Hyperliquid BTC perpetual with the liquidator vault (HLP) as backstop.

    Models: BTC margin tiers (40x to 150M notional, 20x above; maintenance =
    half the initial margin at max leverage); liquidation orders go to the book,
    positions above 100k USDC in 20% slices, stopping once the account is back
    above maintenance margin (partial liquidation); once equity < 2/3 of
    maintenance margin the registered backstop (the vault) takes over the rest
    of the position with its remaining margin; ADL runs only once an account's
    value is negative, in queue order by (mark/entry)·(notional/account value)
    (Hyperliquid docs: liquidations, auto-deleveraging, margining,
    margin-tiers). There is no separate insurance fund: the vault is it.

    Simplifies: the 30-second pause between slices is collapsed into one mark
    update; ADL fills at the bankruptcy price rather than the previous mark, so
    that the loss lands on the ADL'd winners and no negative account is left;
    the sort index for shorts, which the docs do not state, mirrors the long one.
    """
    return ExchangeConfig(
        name="hyperliquid",
        max_leverage=40.0,
        mm_tiers=((0.0, 0.0125), (150_000_000.0, 0.025)),
        taker_fee=0.00045,
        maker_fee=0.00015,
        liquidation_fee=0.0,
        waterfall=("book", "backstop", "adl"),
        partial_liquidation=True,
        liquidation_slice_fraction=0.2,
        liquidation_slice_min_notional=100_000.0,
        surplus_to="account",
        backstop_trigger=2.0 / 3.0,
        backstop_price="bankruptcy",
        adl_trigger="negative_equity",
        adl_rule="hyperliquid",
        adl_allocation="queue",
        adl_price="bankruptcy",
        mark_rule="median",
        mark_ema_minutes=2.5,
        funding_interval_minutes=60.0,
        funding_cap=0.04,
        description="Hyperliquid: book (sliced) → liquidator vault → ADL on negative equity",
    )


def dydx() -> ExchangeConfig:
    """dYdX v4 BTC-USD.

    Models: 5% initial / 3% maintenance margin; liquidation orders fill in the
    book, the insurance fund paying fills worse than the bankruptcy price while
    it can; a liquidation penalty of up to 1.5% of notional goes to the fund and
    the rest of the margin stays with the trader; deleveraging when the fund
    cannot cover walks the opposite positions in pseudo-random order, with no
    ranking, at the bankruptcy price (v4-chain x/clob keeper liquidations.go,
    deleveraging.go).

    Simplifies: the "fillable price" is a fixed 5% band around the mark; the
    pseudo-random walk is a seeded random order.
    """
    return ExchangeConfig(
        name="dydx",
        max_leverage=20.0,
        mm_tiers=((0.0, 0.03),),
        taker_fee=0.0005,
        maker_fee=0.0001,
        liquidation_fee=0.015,
        waterfall=("book", "insurance_fund", "adl"),
        surplus_to="account",
        fund_max_slippage=0.05,
        adl_trigger="unfilled",
        adl_rule="random",
        adl_allocation="queue",
        adl_price="bankruptcy",
        mark_rule="index",
        funding_interval_minutes=60.0,
        funding_cap=0.04,
        description="dYdX v4: book with fund-paid slippage → random-walk deleveraging",
    )


def drift() -> ExchangeConfig:
    """Drift protocol v2 BTC-PERP.

    Models: liquidation at the oracle (mark) price with a liquidator fee to the
    insurance fund; the fund covers bankruptcies while it can; past it, the loss
    is socialised: every open unit on both sides pays δ = loss/(|OI long| + |OI
    short|) (protocol-v2 controller/liquidation.rs, resolve_perp_bankruptcy).

    Simplifies: the liquidator is the order book; the market's fee pool is
    merged into the insurance fund; δ is charged to collateral at once rather
    than through cumulative funding.
    """
    return ExchangeConfig(
        name="drift",
        max_leverage=20.0,
        mm_tiers=((0.0, 0.03),),
        taker_fee=0.001,
        maker_fee=0.0,
        liquidation_fee=0.01,
        waterfall=("book", "insurance_fund", "adl"),
        surplus_to="account",
        adl_trigger="unfilled",
        adl_rule="size",
        adl_allocation="socialized_loss",
        adl_price="mark",
        mark_rule="index",
        funding_interval_minutes=60.0,
        funding_cap=0.0125,
        description="Drift: liquidator at oracle → insurance fund → socialised loss",
    )


PRESETS: dict[str, Callable[[], ExchangeConfig]] = {
    "binance": binance,
    "bitmex": bitmex,
    "hyperliquid": hyperliquid,
    "dydx": dydx,
    "drift": drift,
}


def get(name: str) -> ExchangeConfig:
    """The preset called `name`; an unknown name raises ConfigError naming the choices."""
    if name not in PRESETS:
        raise ConfigError(one_of("exchange.preset", name, PRESETS))
    return PRESETS[name]()


def names() -> tuple[str, ...]:
    """Names of the bundled venue presets."""
    return tuple(PRESETS)

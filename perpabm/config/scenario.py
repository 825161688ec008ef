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
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from perpabm import adl
from perpabm.config.checks import (
    absent_or_in_range,
    boolean,
    choice,
    in_range,
    named_code,
    ranges,
    require,
    text,
    whole,
)
from perpabm.config.exchange import ExchangeConfig, rules_as_paths
from perpabm.config.market import SECONDS_PER_MINUTE, MarketConfig
from perpabm.errors import ConfigError, closest

STRATEGIES = ("noise", "momentum", "contrarian")
ADL_RESPONSES = ("none", "rehedge", "withdraw", "close_hedge")
BASIS_RESPONSES = ("none", "reopen", "close_hedge")
"""What a market maker does after ADL closes part of its inventory (``makers.adl_response``)."""
BUILTIN_AGENTS = {"traders": "leveraged", "funds": "leveraged", "makers": "maker"}
"""The name of each agent section's built-in class, as its ``agent`` setting gives it:
``"leveraged"`` is :class:`~perpabm.agents.LeveragedTrader`, ``"maker"``
:class:`~perpabm.agents.MarketMaker`. Other names are the scenario's ``agent_classes``."""
AGENT_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a TOML bare key: written as one unquoted


@dataclass(frozen=True, slots=True)
class TraderConfig:
    """Leveraged traders: heterogeneous capital and leverage, three strategies.

    Capital is heavy-tailed (Pareto), leverage log-normal. A flat trader looks for
    an entry at a Poisson rate and picks its side by its strategy; it closes after
    an exponential holding time or at its take-profit or stop-loss. Wiped-out
    traders leave and new ones arrive. Each setting below says how.
    """

    SECTION: ClassVar[str] = "traders"  # the scenario section: its settings' paths

    count: int = 1_000
    """[traders] Traders at the start of the run. A flat trader with less than 5% of
    its starting capital left leaves (``LEAVE_BELOW`` in perpabm/agents/population.py);
    new ones arrive at ``arrivals_per_day``."""
    capital_scale: float = 5_000.0
    """[USD] The least starting capital: a trader's is capital_scale · (1 + X), X drawn
    by numpy's ``pareto(capital_tail)`` (Lomax, ≥ 0), so the median is
    capital_scale · 2^(1/capital_tail)."""
    capital_tail: float = 1.5
    """[dimensionless] Pareto tail index a of starting capital: the smaller, the heavier
    the tail; the mean, capital_scale · a/(a − 1), is finite only for a > 1."""
    leverage_median: float = 5.0
    """[notional ÷ equity] Median leverage of the traders: a trader's is leverage_median
    · exp(N(0, leverage_sigma²)), clipped to [leverage_floor, leverage_cap ·
    exchange.max_leverage], and it opens positions of equity × leverage notional. The
    bundled scenarios with the venue population (``default``, ``crash``,
    ``oct10_2025``) set 5 with leverage_sigma 0.3, so that their whole population's
    notional splits by leverage as Hyperliquid's open interest did (``docs/population.md``)."""
    leverage_floor: float = 1.0
    """[notional ÷ equity] The lowest leverage a trader is drawn with. Below 1 an account
    holds more collateral than its position's notional — spare collateral, as most
    accounts of a cross-margined venue hold: a replay of Hyperliquid's 2025-10-10 puts
    the auto-deleveraged accounts' leverage at the fill at 0.04x, 0.18x and 0.65x
    (quartiles; ``docs/venues.md``)."""
    leverage_sigma: float = 0.8
    """[natural log] Standard deviation of the log of the traders' leverage (0: every
    trader at ``leverage_median``)."""
    leverage_cap: float = 1.0
    """[fraction of exchange.max_leverage] The highest leverage a trader is drawn with,
    as a share of the venue's maximum."""
    strategy_mix: tuple[float, float, float] = (0.5, 0.3, 0.2)
    """[relative weights] Shares of noise, momentum and contrarian traders, in that
    order, divided by their sum. Noise traders pick their side by a fair coin; momentum
    traders follow the sign of the index's move over ``lookback_minutes``, contrarians
    go against it (a coin when the index is unchanged)."""
    entries_per_day: float = 4.0
    """[per day] Rate at which each trader looks for an entry: each tick of the clock it
    is drawn with probability min(1, entries_per_day · the tick's minutes / 1440), and
    opens a position if it is flat with equity above 0."""
    holding_minutes: float = 240.0
    """[minutes] Mean holding time: a position is closed after a time of this mean
    (exponential, or heavy-tailed with ``holding_tail``), unless its take-profit or
    stop-loss fires first."""
    holding_tail: float | None = None
    """[dimensionless] Pareto tail index a (> 1) of the holding times: a holding time is
    holding_minutes · (a − 1) · X, X numpy's ``pareto(a)`` (Lomax), the same mean with
    a tail that falls as t^−a (most positions short-lived, a few held for days);
    absent: exponential."""
    lookback_minutes: float = 30.0
    """[minutes] The trend momentum and contrarian traders read: the sign of the index's
    change over the last round(lookback_minutes / run.step_minutes) steps (at least
    one)."""
    take_profit: float = 0.05
    """[fraction of entry price] A position is closed once the index has moved this far
    in its favour from the entry price (a long: index ≥ entry · (1 + take_profit))."""
    stop_loss: float = 0.03
    """[fraction of entry price] A position is closed once the index has moved this far
    against it from the entry price (a long: index ≤ entry · (1 − stop_loss))."""
    arrivals_per_day: float = 50.0
    """[traders per day] Mean number of new traders a day, for the whole population: a
    Poisson number with mean arrivals_per_day · the tick's minutes / 1440 arrives each
    tick of the clock, drawn as the first ``count`` were."""
    warm_start_days: float = 0.0
    """[days] Start from the positions these accounts hold after living this many days
    before the path on the index's own history (perpabm/agents/warm.py): each entered,
    held and left as it does in a path — its strategy's side at its entry, an
    exponential holding time, its take-profit, stop-loss and liquidation price — so
    that at step 0 its entry price is that of the step it opened at. The side holding
    more is scaled down to the other's open interest. 0: every account starts flat."""
    adl_reentry_probability: float = 0.0
    """[probability] Chance that a trader whose position ADL closed entirely looks for
    an entry at the next step, on the side it was closed out of, besides the usual
    draw; it opens one as any entry does (flat, with equity above 0, equity ·
    leverage notional). 0: ADL'd traders act as any other (BitMEX and Binance tell
    deleveraged traders they may re-enter)."""
    agent: str = BUILTIN_AGENTS["traders"]
    """The class of the traders' agents: ``"leveraged"`` (perpabm.agents.LeveragedTrader)
    or a name in the scenario's ``agent_classes``."""

    def __post_init__(self) -> None:
        p = self.SECTION
        whole(f"{p}.count", self.count, 0)
        ranges(self, p, (
            ("capital_scale", 0.0, math.inf, True, True),
            ("capital_tail", 0.5, 20.0, False, False),
            ("leverage_median", 0.01, 1_000.0, False, False),
            ("leverage_floor", 0.01, 1_000.0, False, False),
            ("leverage_sigma", 0.0, 5.0, False, False),
            ("leverage_cap", 0.0, 1.0, True, False),
            ("entries_per_day", 0.0, 1e4, False, False),
            ("holding_minutes", 0.0, 1e7, True, False),
            ("lookback_minutes", 1.0, 1e5, False, False),
            ("take_profit", 0.0, 10.0, True, False),
            ("stop_loss", 0.0, 1.0, True, True),
            ("arrivals_per_day", 0.0, 1e6, False, False),
            ("warm_start_days", 0.0, 366.0, False, False),
            ("adl_reentry_probability", 0.0, 1.0, False, False),
        ))
        object.__setattr__(self, "holding_tail", absent_or_in_range(
            f"{p}.holding_tail", self.holding_tail, 1.0, 20.0, low_open=True))
        mix = self.strategy_mix
        require(f"{p}.strategy_mix", f"{len(STRATEGIES)} weights, for {', '.join(STRATEGIES)}",
                not isinstance(mix, str | Mapping) and isinstance(mix, Iterable)
                and len(tuple(mix)) == len(STRATEGIES),
                f"{p}.strategy_mix must be three weights for {', '.join(STRATEGIES)}; "
                f"got {mix!r}")
        mix = tuple(in_range(f"{p}.strategy_mix[{k}]", w, 0.0, high_open=True)
                    for k, w in enumerate(mix))
        require(f"{p}.strategy_mix", "a positive sum", sum(mix) > 0,
                f"{p}.strategy_mix must have a positive weight; got {mix}")
        object.__setattr__(self, "strategy_mix", mix)


@dataclass(frozen=True, slots=True)
class FundConfig(TraderConfig):
    """Large, lightly levered directional accounts (funds, whales): traders of their own
    kind, with their own account type (``"fund"``), drawn and acting as the leveraged
    traders are, from settings of their own. They hold collateral far above what their
    positions need, and hold for days.

    A replay of Hyperliquid's 2025-10-10 found the accounts ADL picked — the winners
    — mostly large and lightly levered: their leverage at the fill had quartiles
    0.04x, 0.18x and 0.65x (``docs/venues.md``). The leverage defaults take that
    distribution; the holding time, entry rate and exits are our choice (we found no
    published holding times). Off by default (``count = 0``).
    """

    SECTION: ClassVar[str] = "funds"

    count: int = 0
    """[accounts] Funds at the start of the run (0: none)."""
    capital_scale: float = 250_000.0
    """[USD] The least starting capital: a fund's is capital_scale · (1 + X), X drawn by
    numpy's ``pareto(capital_tail)`` (Lomax, ≥ 0), so the median is
    capital_scale · 2^(1/capital_tail)."""
    capital_tail: float = 1.0
    """[dimensionless] Pareto tail index a of starting capital: the smaller, the heavier
    the tail (the mean is infinite for a ≤ 1)."""
    leverage_median: float = 0.18
    """[notional ÷ equity] Median leverage of the funds (the replay's median of the ADL'd
    accounts): a fund's is leverage_median · exp(N(0, leverage_sigma²)), clipped to
    [leverage_floor, leverage_cap · exchange.max_leverage]."""
    leverage_sigma: float = 1.9
    """[natural log] Standard deviation of the log of the funds' leverage: the replay's
    quartiles 0.04x and 0.65x about its median 0.18x give ln(0.65 / 0.18) / 0.674 = 1.9."""
    leverage_floor: float = 0.01
    """[notional ÷ equity] The lowest leverage a fund is drawn with."""
    strategy_mix: tuple[float, float, float] = (0.2, 0.4, 0.4)
    """[relative weights] Shares of noise, momentum and contrarian funds, in that order,
    divided by their sum (as for the traders)."""
    entries_per_day: float = 1.0
    """[per day] Rate at which each flat fund looks for an entry (as for the traders)."""
    holding_minutes: float = 10_080.0
    """[minutes] Mean holding time, a week: a position is closed after an exponential
    time of this mean, unless its take-profit or stop-loss fires first."""
    take_profit: float = 0.5
    """[fraction of entry price] A position is closed once the index has moved this far
    in its favour from the entry price."""
    stop_loss: float = 0.3
    """[fraction of entry price] A position is closed once the index has moved this far
    against it from the entry price."""
    arrivals_per_day: float = 0.0
    """[funds per day] Mean number of new funds a day (a Poisson number each tick)."""


@dataclass(frozen=True, slots=True)
class MakerConfig:
    """Market makers quoting a ladder around the index, skewed by inventory.

    Each maker quotes ``levels`` levels a side around a fair value that leans
    against its inventory, replacing its ladder at every requote (every tick of the
    clock). As the index's realised volatility σ rises above
    ``calm_volatility``, a stress factor 1 + ``withdrawal`` · (σ/σ_calm − 1)
    widens the ladder and thins its depth: liquidity withdraws in stress. After a side
    is traded against, its depth comes back at a rate (``refill_seconds``). A maker
    has finite capital and can be liquidated.
    """

    count: int = 3
    """[makers] Market makers, each with its own account and the settings below."""
    capital: float = 2_000_000.0
    """[USD] Each maker's starting collateral."""
    levels: int = 10
    """[levels a side] Quotes on each side of a maker's ladder."""
    level_spacing: float = 0.0005
    """[fraction of fair value] Gap between adjacent levels before stress: level k (0 the
    nearest) sits (half_spread + k · level_spacing) · stress from the fair value."""
    half_spread: float = 0.0002
    """[fraction of fair value] Distance of the nearest level from the fair value,
    before stress."""
    depth: float = 150_000.0
    """[USD of notional] Size of each level in a calm market: depth / stress / index base
    units, times the side's room (on the side that adds to inventory, 1 −
    inventory / limit)."""
    inventory_skew: float = 0.001
    """[fraction of index at the inventory limit] How far the fair value leans against
    inventory: fair = index · (1 − inventory_skew · inventory / limit)."""
    inventory_limit: float = 0.5
    """[fraction of equity × exchange.max_leverage] The limit at which a maker stops
    quoting the side that adds to its inventory: inventory_limit · equity ·
    max_leverage / index base units."""
    vol_window_minutes: float = 30.0
    """[minutes] Window of the realised volatility σ makers read: the last
    max(2, round(vol_window_minutes / run.step_minutes)) step log returns of the index,
    annualised. Until that many steps have passed, σ is ``calm_volatility``."""
    calm_volatility: float = 0.5
    """[annualised] The volatility up to which makers quote their calm spread and depth
    (0.5 = 50% a year)."""
    withdrawal: float = 1.0
    """[dimensionless] How far liquidity withdraws in stress: stress = 1 + withdrawal ·
    max(σ / calm_volatility − 1, 0) multiplies the spread and divides the depth (0:
    makers ignore volatility)."""
    refill_seconds: float = 0.0
    """[seconds] Time constant of a maker's depth coming back after it is traded
    against. Per side a maker keeps the share of its full ladder depth it posts (1 at
    the start). At each requote (every tick of the clock) it reads what still rests of
    what it posted at its last requote, as a share of full depth (left: the share it
    posted times the fraction still resting), and posts share = left + (1 − left) ·
    (1 − exp(−Δt / refill_seconds)) of its depth on that side, Δt the seconds since
    that requote, on top of the volatility thinning and the inventory room. A side not
    traded against keeps its share: one at full depth stays there. Worked example: 30,
    a side swept empty and requoted 60 s later posts 1 − e^−2 = 0.865 of its depth;
    so does one requoted sixty times 1 s apart (e^−1/30 sixty times is e^−2), so the
    depth that returns in a minute is the same at any tick well under refill_seconds.
    0: full depth at every requote, whatever was taken. A rate because depth recovers
    over time after a large trade, not at once: the exponential recovery
    ("resilience") of Obizhaeva & Wang, "Optimal trading strategy and supply/demand
    dynamics", J. Financial Markets 16(1), 2013; measured on order books by Xu et al.,
    "Limit-order book resiliency after effective market orders", J. Stat. Mech. 2017
    073404 (spread and depth back to their average within about 20 best-limit updates,
    counted in updates, not seconds). The vault's quotes (``vault.quotes``) post full
    depth at every requote."""
    hedged: bool = False
    """Whether the maker hedges its inventory on an outside venue: at the end of each
    step it buys or sells spot at the index so that its hedge offsets the inventory it
    traded into (hedge = −inventory), a position marked to the index whose P&L is
    reported beside the exchange's books (``maker_hedge_pnl``), its trades counted
    with the liquidation flow in ``market.spot_impact``. What ADL closes of the
    inventory leaves that much of the hedge naked until the maker responds
    (``adl_response``)."""
    adl_response: str = "none"
    """What a maker does once ADL has closed part of its inventory (it has lost that
    much of its hedge): ``"none"``, hold (a hedged maker's hedge stays naked by that
    much); ``"rehedge"``: at the next step it trades ``adl_rehedge_share`` of the
    quantity ADL closed back with a market order through the book (re-opening the
    perp leg of a hedged maker); ``"withdraw"``: for ``adl_withdraw_minutes`` it quotes
    ``adl_withdraw_spread`` times wider and ``adl_withdraw_depth`` of its depth;
    ``"close_hedge"`` (a hedged maker only): at the end of the next step it closes the
    naked part of its hedge at the index. The vault's quotes (``vault.quotes``) do not
    respond."""
    adl_rehedge_share: float = 1.0
    """[fraction of the quantity ADL closed] How much of it a ``"rehedge"`` maker buys or
    sells back, in one market order at the next step, no further than 2% from the
    index (as a trader's); what the book or its margin does not fill is dropped."""
    adl_withdraw_minutes: float = 30.0
    """[minutes of model time] How long a ``"withdraw"`` maker quotes its withdrawn ladder
    after an ADL: at every requote (every tick of the clock) up to adl_withdraw_minutes
    later, and at least at the next one; the same time at any tick (30: the next 30
    requotes at one-minute ticks, 360 at 5-second ones)."""
    adl_withdraw_spread: float = 2.0
    """[× half_spread and level_spacing] How much wider a ``"withdraw"`` maker's ladder is
    while withdrawn (on top of the volatility stress)."""
    adl_withdraw_depth: float = 0.5
    """[fraction of depth] The share of its depth a ``"withdraw"`` maker quotes while
    withdrawn (0: no quotes at all)."""
    agent: str = BUILTIN_AGENTS["makers"]
    """The class of the makers' agents: ``"maker"`` (perpabm.agents.MarketMaker) or a name
    in the scenario's ``agent_classes``."""

    def __post_init__(self) -> None:
        p = "makers"
        whole(f"{p}.count", self.count, 0)
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
            ("refill_seconds", 0.0, math.inf, False, True),
            ("adl_rehedge_share", 0.0, 1.0, False, False),
            ("adl_withdraw_minutes", 0.0, 1e5, True, False),
            ("adl_withdraw_spread", 1.0, 100.0, False, False),
            ("adl_withdraw_depth", 0.0, 1.0, False, False),
        ))
        choice(f"{p}.adl_response", self.adl_response, ADL_RESPONSES)
        boolean(f"{p}.hedged", self.hedged)
        require(f"{p}.adl_response", '"close_hedge" only with hedged = true',
                self.adl_response != "close_hedge" or self.hedged,
                f'{p}.adl_response = "close_hedge" needs a hedge: set {p}.hedged = true, '
                f"or choose another response")


@dataclass(frozen=True, slots=True)
class BasisConfig:
    """Basis traders: each holds spot long and the perp short against it, earning the
    funding and the basis (cash-and-carry; Ethena's USDe runs this trade). The spot leg
    is an external hedge: a position on an outside venue, bought at the index and
    marked to it, whose P&L is reported beside the exchange's books
    (``basis_hedge_pnl``), never in them. In a crash the perp short is the profitable
    side, and ADL may close it: the hedge is then naked, and the trader responds as
    ``adl_response`` says. None by default (``count = 0``).
    """

    count: int = 0
    """[accounts] Basis traders."""
    capital: float = 1_000_000.0
    """[USD] Each one's collateral on the exchange, for the perp short."""
    leverage: float = 1.0
    """[notional ÷ equity] The perp short's notional over its collateral when it opens
    (at the first step, a market order of capital · leverage / index, no further than
    2% from the index); the spot hedge is bought for what fills, at the index (a
    position held before the path: its purchase is no flow of the path)."""
    adl_response: str = "reopen"
    """What a basis trader does at the next step when ADL has closed some of its perp
    short: ``"reopen"``, sell the perp again for what ADL closed (a market order no
    further than 2% from the index; what does not fill, or its margin does not cover,
    is dropped); ``"close_hedge"``, sell that much of the spot hedge at the index — a
    spot sale, counted with the liquidation flow in ``market.spot_impact``;
    ``"none"``, hold the naked hedge."""

    def __post_init__(self) -> None:
        p = "basis"
        whole(f"{p}.count", self.count, 0)
        ranges(self, p, (
            ("capital", 0.0, math.inf, True, True),
            ("leverage", 0.0, 100.0, True, False),
        ))
        choice(f"{p}.adl_response", self.adl_response, BASIS_RESPONSES)


@dataclass(frozen=True, slots=True)
class ArbitrageurConfig:
    """Arbitrageurs trading the perp toward the index when the basis pays for it; their
    finite capital lets the perp decouple from the index in thin books."""

    count: int = 1
    """[arbitrageurs] Arbitrageurs, each with its own account and the settings below."""
    capital: float = 5_000_000.0
    """[USD] Each arbitrageur's starting collateral; an order its margin cannot cover is
    not sent."""
    threshold: float = 0.001
    """[fraction of index] The basis an arbitrageur trades at: it sells when the best bid
    is above index · (1 + threshold) and buys when the best ask is below
    index · (1 − threshold), no further than that price."""
    max_notional: float = 500_000.0
    """[USD per minute] What an arbitrageur trades in a minute at most: each tick of the
    clock, one market order of max_notional · the tick's minutes / index base units."""

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

    It takes over what fits under its cap and unwinds it into the book tick by tick;
    it may also make markets like a maker (HLP's market-making strategies). It exists
    only for venues whose waterfall has a ``"backstop"`` stage.
    """

    enabled: bool = True
    """Whether the vault exists when ``exchange.waterfall`` has a ``"backstop"`` stage (it
    never does otherwise)."""
    capital: float = 10_000_000.0
    """[USD] The vault's starting collateral."""
    cap: float = 3.0
    """[× vault equity] The vault takes over a position only as far as its own position's
    notional at the mark stays within cap · its equity (0: it never takes over); with
    ``liquidator_share``, the liquidator's account's position and equity. Under
    ``exchange.backstop_takeover = "account"`` the bound is the same, on its equity
    before the collateral a takeover brings; with a cap above 1 / the maintenance rate
    (80 on Hyperliquid's first BTC tier) its account can fall below maintenance margin,
    to be liquidated like any account and auto-deleveraged, as the losing side, once
    its equity is negative. What it refuses waits in the account taken over, and goes
    to ADL once that account's equity is negative."""
    unwind_rate: float = 0.05
    """[fraction of position per minute] Share of its position the vault closes into
    the book in a minute, with a market order each tick of the clock: of
    1 − (1 − unwind_rate)^(the tick's minutes) of its position (the same share a minute
    at any tick, as ``exchange.fund_unwind_rate``)."""
    unwind_slippage: float = 0.005
    """[fraction of index] The unwind order's limit: no further than this from the
    index."""
    adl_exempt: bool = False
    """Whether the vault's position comes last in the ADL queue, after every other
    account's."""
    quotes: bool = False
    """Whether the vault also quotes a ladder every tick, as a maker with ``makers``'
    settings, its own capital and ``quote_depth``, in the same account as its
    takeovers; its P&L is then split between the liquidator and market making
    (``vault_pnl_liquidator``, ``vault_pnl_market_making``: quote fills that go against
    the liquidator's position exit it first, see :class:`perpabm.agents.Vault`)."""
    quote_depth: float = 100_000.0
    """[USD of notional] Size of each level the vault quotes (with ``quotes``), in place
    of ``makers.depth``."""
    liquidator_share: float | None = None
    """[fraction of capital] The liquidator as a component vault of its own, as Hyperliquid
    has run HLP's since 2025-03 ("a tight cap representing a small percentage of total
    HLP account value"; "ADL will be triggered if the Liquidator loses above a certain
    threshold, instead of moving collateral automatically from the other component
    vaults"): the takeovers go into an account opened with liquidator_share · capital,
    market making into another with the rest, and no collateral moves between them
    within a path, so the liquidator's account goes to ADL as the losing side once its
    equity is negative. Absent: one account holds both strategies and all the capital
    (HLP before, when the liquidator "shared collateral with the other component
    vaults"). The venue publishes no share: it is a setting to sweep."""

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
        object.__setattr__(self, "liquidator_share", absent_or_in_range(
            f"{p}.liquidator_share", self.liquidator_share, 0.0, 1.0, low_open=True))
        require(f"{p}.liquidator_share", "below 1 when the vault quotes",
                not (self.quotes and self.liquidator_share == 1.0),
                f"{p}.liquidator_share = 1 leaves market making no capital, but "
                f"{p}.quotes is true; give the liquidator less, or turn quotes off")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Length, clock and recording of one path.

    A path is ``steps`` steps of a minute (of ``step_seconds`` when that is longer): the
    series has a row a step, the index history and the agents' windows count in steps.
    The clock runs each step as one tick or as several shorter ones:

    - ``clock = "fixed"``: ticks of ``step_seconds`` (60 ticks of a second each minute
      at 1);
    - ``clock = "adaptive"``: ticks of ``step_seconds`` while the market is calm, each
      one cut into ticks of ``fine_step_seconds`` when it is not — when the index is
      about to move more than ``refine_move`` within it (or the mark did within the
      last), an account's liquidation price is within ``refine_distance`` of the mark
      plus the index's coming move, or a liquidation, backstop or ADL came less than
      ``calm_seconds`` before.

    Every rate of the agents and the venue is in real time and is converted to the tick
    in one place, so a tick's length changes how finely the path is resolved, not what
    the rates mean.
    """

    steps: int = 1_440
    """[steps] Length of a path, in steps of a minute (of step_seconds when that is
    longer): 1,440 is a day."""
    step_seconds: float = 60.0
    """[seconds] The clock's tick: the fixed clock's, the adaptive clock's in calm. A
    whole number of minutes, or a whole fraction of one (1, 2, 3, 4, 5, 6, 10, 12, 15,
    20, 30 s …); above a minute, a step is that long."""
    clock: str = "fixed"
    """``"fixed"``: every tick is ``step_seconds`` long; ``"adaptive"``: ticks of
    ``fine_step_seconds`` under stress (the class docstring says when)."""
    fine_step_seconds: float = 1.0
    """[seconds] The adaptive clock's tick under stress: a whole fraction of
    step_seconds (at most a minute)."""
    refine_move: float = 0.01
    """[fraction of the index] The adaptive clock refines a tick in which the index (the
    exogenous path and its scripted shocks) moves more than this, or after one in which
    the mark did (0.01: a 1% move within a minute is about 9 standard deviations of a
    minute at 80% a year, 0.8 / √525,600 = 0.11%; oct10_2025's drop moves 1.6% a
    minute)."""
    refine_distance: float = 0.01
    """[fraction of the mark] The adaptive clock refines while an account's liquidation
    price is within this of the mark, plus the index's move in the coming tick."""
    calm_seconds: float = 60.0
    """[seconds] The adaptive clock coarsens again once this long has passed without a
    liquidation, backstop or ADL event."""
    record_every: int = 1
    """[steps] The per-step series keeps every record_every-th step (steps record_every,
    2 · record_every, …); the summary and the events cover every step."""
    debug: bool = False
    """Check the exchange's invariants after every operation, as ``exchange.debug`` does
    (slower)."""

    def __post_init__(self) -> None:
        whole("run.steps", self.steps, 1)
        in_range("run.step_seconds", self.step_seconds, 0.0, math.inf,
                 low_open=True, high_open=True)
        require("run.step_seconds", "a whole number of minutes or a whole fraction of one",
                _divides(self.step_seconds, SECONDS_PER_MINUTE)
                or _divides(SECONDS_PER_MINUTE, self.step_seconds),
                f"run.step_seconds must be a whole number of minutes or a whole fraction of "
                f"one (1, 5, 20, 60, 300 …); got {self.step_seconds:g}")
        choice("run.clock", self.clock, CLOCKS)
        in_range("run.fine_step_seconds", self.fine_step_seconds, 0.0, math.inf,
                 low_open=True, high_open=True)
        if self.clock == "adaptive":
            require("run.step_seconds", "at most a minute under the adaptive clock",
                    self.step_seconds <= SECONDS_PER_MINUTE,
                    f"run.step_seconds must be at most 60 under the adaptive clock; got "
                    f"{self.step_seconds:g}")
            require("run.fine_step_seconds", "a whole fraction of step_seconds",
                    _divides(self.step_seconds, self.fine_step_seconds),
                    f"run.fine_step_seconds must be a whole fraction of run.step_seconds "
                    f"({self.step_seconds:g}); got {self.fine_step_seconds:g}")
        ranges(self, "run", (
            ("refine_move", 0.0, math.inf, True, True),
            ("refine_distance", 0.0, 1.0, False, False),
            ("calm_seconds", 0.0, math.inf, False, True),
        ))
        whole("run.record_every", self.record_every, 1)
        boolean("run.debug", self.debug)

    @property
    def step_minutes(self) -> float:
        """One step, in minutes: a minute, or step_seconds when that is longer."""
        return max(self.step_seconds, SECONDS_PER_MINUTE) / SECONDS_PER_MINUTE

    @property
    def ticks_per_step(self) -> int:
        """The finest ticks a step holds: 60 / step_seconds under the fixed clock, 60 /
        fine_step_seconds under the adaptive one, 1 with steps of a minute or more."""
        finest = self.fine_step_seconds if self.clock == "adaptive" else self.step_seconds
        return max(1, round(SECONDS_PER_MINUTE / finest))

    @property
    def coarse_ticks(self) -> int:
        """How many of the finest ticks (:attr:`ticks_per_step`) a tick of step_seconds
        is: 1 under the fixed clock."""
        if self.clock != "adaptive":
            return 1
        return round(self.step_seconds / self.fine_step_seconds)


CLOCKS = ("fixed", "adaptive")
"""The clocks a path can run on (``run.clock``)."""
WHOLE_TOLERANCE = 1e-9  # a ratio of durations this close to a whole number is whole


def _divides(whole_duration: float, part: float) -> bool:
    """Whether `part` goes into `whole_duration` a whole number of times (≥ 1)."""
    ratio = whole_duration / part
    return ratio >= 1.0 - WHOLE_TOLERANCE and abs(ratio - round(ratio)) <= WHOLE_TOLERANCE


_SECTIONS: dict[str, type] = {
    "exchange": ExchangeConfig,
    "market": MarketConfig,
    "traders": TraderConfig,
    "funds": FundConfig,
    "makers": MakerConfig,
    "basis": BasisConfig,
    "arbitrageur": ArbitrageurConfig,
    "vault": VaultConfig,
    "run": RunConfig,
}


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    """One scenario: a venue, a market, a population of agents and a run length.

    ``agent_classes`` maps names to agent classes of the user's, each given as the
    class or as a ``"package.module:Class"`` import path: a subclass of
    :class:`~perpabm.agents.LeveragedTrader` for ``traders.agent`` (or ``funds.agent``) to
    name, or of
    :class:`~perpabm.agents.MarketMaker` for ``makers.agent`` (the model checks the
    base when it builds the agents). :meth:`with_agent` adds one.
    """

    name: str = "custom"
    """The scenario's name."""
    description: str = ""
    """One line on what the scenario is (``perpabm scenarios`` lists it)."""
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    """The venue's rules: a preset's, or your own."""
    market: MarketConfig = field(default_factory=MarketConfig)
    """The exogenous index price."""
    traders: TraderConfig = field(default_factory=TraderConfig)
    """The leveraged traders."""
    funds: FundConfig = field(default_factory=FundConfig)
    """Large, lightly levered directional accounts (none by default)."""
    makers: MakerConfig = field(default_factory=MakerConfig)
    """The market makers."""
    basis: BasisConfig = field(default_factory=BasisConfig)
    """The basis traders: perp short, spot long (none by default)."""
    arbitrageur: ArbitrageurConfig = field(default_factory=ArbitrageurConfig)
    """The arbitrageurs between the perp and the index."""
    vault: VaultConfig = field(default_factory=VaultConfig)
    """The backstop vault, for venues whose waterfall has a backstop stage."""
    run: RunConfig = field(default_factory=RunConfig)
    """Length and recording of a path."""
    agent_classes: tuple[tuple[str, Any], ...] = ()
    """Custom agent classes, by the name ``traders.agent`` or ``makers.agent`` gives
    them: a class, or ``"package.module:Class"`` (as a scenario file writes it). They
    travel with the config to worker processes."""

    def __post_init__(self) -> None:
        for name in ("name", "description"):
            text(name, getattr(self, name))
        for section, cls in _SECTIONS.items():
            if not isinstance(getattr(self, section), cls):
                raise ConfigError(f"{section} must be a {cls.__name__}; got "
                                  f"{type(getattr(self, section)).__name__}")
        for kind in (self.traders, self.funds):
            require(f"{kind.SECTION}.warm_start_days", "0 with a replayed index",
                    kind.warm_start_days == 0.0 or self.market.process != "replay",
                    f"{kind.SECTION}.warm_start_days needs an index process to draw the "
                    f"history from; market.process = \"replay\" has none before its CSV")
            p, highest = kind.SECTION, kind.leverage_cap * self.exchange.max_leverage
            require(f"{p}.leverage_floor", f"≤ {p}.leverage_cap · exchange.max_leverage",
                    kind.leverage_floor <= highest,
                    f"{p}.leverage_floor ({kind.leverage_floor:g}) must not exceed the "
                    f"highest leverage one may be drawn with, {p}.leverage_cap · "
                    f"exchange.max_leverage ({highest:g})")
        classes = _check_agent_classes("agent_classes", self.agent_classes)
        object.__setattr__(self, "agent_classes", classes)
        custom = tuple(name for name, _ in classes)
        for section, builtin in BUILTIN_AGENTS.items():
            agent = _agent_name(f"{section}.agent", getattr(self, section).agent)
            choice(f"{section}.agent", agent, (builtin,), more=custom,
                   more_are="a name in agent_classes")

    def with_agent(self, name: str, cls: type | str, *, use_in: str | None = None
                   ) -> ScenarioConfig:
        """A copy with agent class `cls` (a class, or a ``"package.module:Class"`` path)
        registered in ``agent_classes`` as `name`, replacing one of that name; with
        `use_in` (``"traders"``, ``"funds"`` or ``"makers"``) that section's ``agent``
        names it too.

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
        """The value at a dotted path such as ``"traders.count"`` (an entry of a list of
        settings tables by its index: ``"market.shocks.0.change"``)."""
        obj: Any = self
        for part in _split(path):
            if isinstance(obj, tuple):
                if not part.isdigit() or int(part) >= len(obj):
                    raise ConfigError(f"{path!r}: {part!r} is not an entry of a list of "
                                      f"{len(obj)}")
                obj = obj[int(part)]
                continue
            names = [f.name for f in dataclasses.fields(obj)]
            if part not in names:
                raise ConfigError(f"{path!r} is not a setting{closest(part, names)}")
            obj = getattr(obj, part)
        return obj

    def with_settings(self, settings: Mapping[str, Any]) -> ScenarioConfig:
        """A validated copy with each dotted setting of `settings` (path → value, as
        ``{"traders.count": 500}``) applied; an ``"exchange.preset"`` goes first, since
        it replaces the whole exchange section and the others apply on top of it."""
        config = self
        for path in sorted(settings, key=lambda p: p != "exchange.preset"):
            config = config.replace(path, settings[path])
        return config

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
    try:
        return adl.import_object(value)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{path}: cannot import {value!r} ({exc})") from None


def _agent_name(path: str, name: Any) -> str:
    """An agent class's name: letters, digits, ``_`` and ``-`` (a TOML bare key)."""
    require(path, "a name of letters, digits, _ and -",
            isinstance(name, str) and AGENT_NAME.fullmatch(name) is not None,
            f"{path} must be letters, digits, _ and - only; got {name!r}")
    return name


def _check_agent_classes(path: str, classes: Any) -> tuple[tuple[str, Any], ...]:
    """Agent classes as (name, class or "package.module:Class") pairs, as ADL rules are."""
    return named_code(
        path, classes, "a table of names to agent classes or 'package.module:Class' paths",
        table="names to agent classes or to 'package.module:Class' paths",
        builtins=tuple(BUILTIN_AGENTS.values()), builtin="agent class",
        is_code=lambda cls: isinstance(cls, type) or adl.is_import_path(cls),
        code="a class or a 'package.module:Class' path", check_name=_agent_name,
        twice="class")


def _split(path: str) -> list[str]:
    if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
        raise ConfigError(f"a setting is named by a dotted path like 'traders.count'; "
                          f"got {path!r}")
    return path.split(".")


def _replace_path(obj: Any, parts: list[str], value: Any, path: str) -> Any:
    names = [f.name for f in dataclasses.fields(obj)]
    head = parts[0]
    if head not in names:
        raise ConfigError(f"{path!r} is not a setting{_hint(path, head, names)}")
    if len(parts) == 1:
        current = getattr(obj, head)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        return dataclasses.replace(obj, **{head: value})
    child = getattr(obj, head)
    if isinstance(child, tuple) and child and all(dataclasses.is_dataclass(c) for c in child):
        return dataclasses.replace(obj, **{head: _replace_entry(child, parts, value, path)})
    if not dataclasses.is_dataclass(child):
        raise ConfigError(f"{path!r}: {head} has no settings below it")
    return dataclasses.replace(obj, **{head: _replace_path(child, parts[1:], value, path)})


def _replace_entry(entries: tuple[Any, ...], parts: list[str], value: Any,
                   path: str) -> tuple[Any, ...]:
    """`entries` (a tuple of settings tables, such as ``market.shocks``) with one entry's
    setting replaced: ``parts`` is [name, index, setting …], as in
    ``"market.shocks.0.change"``, the first shock's size."""
    head, last = parts[0], len(entries) - 1
    if len(parts) < 3 or not parts[1].isdigit() or int(parts[1]) > last:
        raise ConfigError(f"{path!r}: {head} is a list of {len(entries)}; name an entry "
                          f"0 … {last} and its setting, as '{head}.0.{_first_field(entries)}'")
    index = int(parts[1])
    changed = list(entries)
    changed[index] = _replace_path(entries[index], parts[2:], value, path)
    return tuple(changed)


def _first_field(entries: tuple[Any, ...]) -> str:
    return dataclasses.fields(entries[0])[0].name


MOVED = {"market.step_minutes": "run.step_seconds, in seconds (60 for a minute)"}
"""Settings that moved, and where to: a scenario that gives one is told."""


def _hint(path: str, name: str, names: Iterable[str]) -> str:
    """What to say of `name`, not a setting where `path` puts it: where it moved, or the
    closest name."""
    moved = MOVED.get(path)
    return f" (moved: {moved})" if moved else closest(name, list(names))


def _section_from_dict(section: str, cls: type, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{section} must be a table of settings; got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"{section}.{key} is not a setting"
                              f"{_hint(f'{section}.{key}', key, names)}")
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

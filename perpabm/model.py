"""PerpMarketModel: Mesa agents trading one perpetual on the exchange engine.

Time: a path is ``run.steps`` steps of a minute (of ``run.step_seconds`` when that is
longer). The clock (:mod:`perpabm.clock`) runs each step as one tick or as several
shorter ones — fixed at ``run.step_seconds``, or adaptive, cut to
``run.fine_step_seconds`` under stress. At one tick a step the tick is Mesa's step (its
default schedule); finer ticks are events on Mesa's event list at their end times. Either
way ``model.step()`` advances one step. Every rate of the agents and the
venue is converted to the tick's length where it is used (``tick_minutes``). A tick's
phases, one line of :meth:`PerpMarketModel.tick` each:

1. **index moves** — by its pre-drawn log returns over the tick, plus the spot impact
   of the last tick's net liquidation flow (``market.spot_impact``); at a step's end
   :attr:`history` records it;
2. **agents act** — the arbitrageur trades the basis, the vault unwinds inventory
   (and the insurance fund what it has taken over, under ``exchange.fund_takeover``),
   makers that re-hedge after the last tick's ADL trade, traders whose exit triggers
   fired close, a sparse random draw of flat traders (and ADL'd traders who re-enter)
   opens positions (the funds' as the traders'), basis traders open their short and
   hedge, or respond to the last tick's ADL; then makers requote, and the vault if it
   quotes, so that the book the mark and the liquidations see is replenished
   (trades within the tick meet the previous tick's quotes, as takers meet quotes a
   moment old). Traders and makers act as batches: the exits, the entries and the
   makers' requotes are one exchange call each (:meth:`Exchange.market_orders`,
   :meth:`Exchange.replace_quotes_of`), their orders taken in turn as one by one;
3. **the venue's rules** — :meth:`Exchange.update_index`: the mark price from the
   venue's rule (index, index + EMA basis, or median) at the venue's mark interval,
   the liquidation waterfall to completion, funding at the venue's interval from the
   mean premium;
4. **agents hear of ADL** — the accounts the tick's "adl" events closed positions of
   are told (only when an agent is set to respond: ``traders.adl_reentry_probability``
   above 0, ``makers.adl_response`` other than ``"none"``, hedged makers, or basis
   traders): a trader ADL left flat may re-enter at the next tick, a maker re-hedges
   at the next tick (before the traders act), quotes withdrawn for a while, or keeps
   its outside hedge naked until it answers, a basis trader reopens its short or
   sells its naked hedge at the next tick; then wiped-out traders leave and new ones
   arrive;
5. **record** — the tick's net liquidation flow; at a step's end the series row of
   the step's ticks, into preallocated arrays.

The model holds the config, the exchange, the index and its :attr:`history`, the
agents, and what a path reports (:meth:`summary`, :attr:`events`, :attr:`series`);
what the agents do is theirs (:mod:`perpabm.agents`; the traders' arrays and batches
are :class:`~perpabm.agents.TraderPopulation`'s).

Mesa's tools: :attr:`PerpMarketModel.datacollector` is a :class:`mesa.DataCollector` of
the :meth:`~PerpMarketModel.summary` figures, collected when it is read (a path nobody
asks pays nothing), so ``mesa.batch_run(PerpMarketModel, parameters={"config": config,
"traders.count": [500, 1_000]}, rng=seeds, max_steps=config.run.steps)`` gives one row
of summary figures per run: the model takes its config (a :class:`ScenarioConfig` or a
bundled scenario's name) and any setting as a dotted-path keyword.

Randomness: one :class:`numpy.random.SeedSequence` per path; independent child
streams for the index, the order flow (which traders act: the model's ``rng``),
traders, makers, the arbitrageur, the vault and the exchange (ADL "random"
rule). Two configs that differ only in venue rules therefore see the same
exogenous index path (common random numbers).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import mesa
import numpy as np
import pandas as pd

from perpabm import mechanics
from perpabm.agents import (
    Arbitrageur,
    BasisTrader,
    LeveragedTrader,
    MarketMaker,
    TraderPopulation,
    Vault,
    warm,
)
from perpabm.agents import classes as agent_classes
from perpabm.agents.deleveraging import deleveraged
from perpabm.agents.vault import STRATEGIES as VAULT_STRATEGIES
from perpabm.clock import Clock
from perpabm.config.market import (
    MINUTES_PER_DAY,
    MINUTES_PER_YEAR,
    SECONDS_PER_MINUTE,
    MarketConfig,
)
from perpabm.config.scenario import BUILTIN_AGENTS, STRATEGIES, RunConfig, ScenarioConfig
from perpabm.errors import ConfigError, closest
from perpabm.exchange import Event, Exchange
from perpabm.exchange.events import event_columns
from perpabm.market import IndexHistory, index_history, index_log_returns
from perpabm.scenarios import load_scenario

# A stream added later goes last: the others keep their seeds.
STREAMS = ("index", "order_flow", "traders", "makers", "arbitrageur", "vault", "exchange",
           "funds", "history", "index_bridge")
SERIES_COLUMNS = (
    "index", "mark", "last", "best_bid", "best_ask", "bid_depth", "ask_depth",
    "open_interest", "insurance_fund", "vault_equity", "vault_pnl_liquidator",
    "vault_position", "liquidated_notional",
    "backstop_notional", "adl_notional", "traders",
)
"""The columns of :attr:`PerpMarketModel.series`, one row a step (the state at the step's
end): the index, mark and last trade prices (USD); the best bid and ask (USD) and the
resting volume on each side within ``DEPTH_BAND`` of the mid (base units); open interest
(base units, one side); the insurance fund (USD); the vault's equity (USD), its
liquidator's P&L (USD) and its net position (base units, + long, all its accounts); the
notional (USD) the step's ticks liquidated in the book, handed to the backstop and closed
by ADL; and the number of traders."""
SUMMARY_FIGURES = (
    "steps", "index_return", "index_max_drawdown", "liquidation_episodes",
    "liquidated_notional", "backstop_notional", "adl_fired", "adl_fills", "adl_notional",
    "adl_accounts", "first_adl_step", "first_adl_delay_seconds", "vault_pnl",
    "vault_pnl_liquidator",
    "vault_pnl_market_making", "vault_min_equity", "basis_hedge_pnl", "maker_hedge_pnl",
    "insurance_fund_change", "bad_debt", "traders_left", "conservation_error",
)
"""The figures of :meth:`PerpMarketModel.summary`, in its order: the datacollector's model
reporters. ``first_adl_step`` is the model time (steps) of the first ADL fill,
``first_adl_delay_seconds`` how long after the first liquidation of its cascade it came
(:func:`cascade_delay`; NaN without ADL). ``vault_pnl`` is the vault's P&L,
``vault_pnl_liquidator`` and ``vault_pnl_market_making`` its split by strategy
(:meth:`Vault.pnl_by_strategy`), which adds up to it. ``basis_hedge_pnl`` is the basis
traders' spot hedges' P&L at the index, held outside the exchange (NaN without basis
traders), ``maker_hedge_pnl`` the hedged makers' (NaN without one).
``insurance_fund_change`` is what the market paid into the fund or took out of it: its
balance less the start and less the model's top-ups (``exchange.insurance_fund_ratio``)."""
ACCOUNT_TYPES = (*STRATEGIES, "fund", "maker", "basis", "arbitrageur", "vault_liquidator",
                 "vault_market_making", "insurance_fund")
"""What holds an account: a trader's strategy, ``"fund"`` (the ``funds`` section's
accounts), the agent class, the vault's strategy, or the venue's insurance fund (its
margin account under ``exchange.fund_takeover``). The vault's liquidator is the account
that takes positions over (when the vault has one account, market making's quotes are
in it too); ``vault_market_making`` is market making's own account under
``vault.liquidator_share``."""
FUND_DRAWN = frozenset({"insurance_fund", "fund_takeover", "adl", "socialized_loss",
                        "bad_debt"})
"""Event kinds that show the insurance fund drawn on, or passed (an "insurance_fund" row
only when it paid, amount < 0): the model stops topping it up
(``exchange.insurance_fund_ratio``)."""
MODEL_KEYWORDS = ("config", "rng", "trader_class")  # PerpMarketModel's own, not settings
DEPTH_BAND = 0.01  # book depth is recorded within 1% of the mid
LIQUIDATED, BACKSTOP, ADL = range(3)  # the step's notional by what moved it (_tick_flow)
MARGIN_SAFETY = 1.01  # a warm position is kept only with 1% more equity than its margin
IMPACT_NOTIONAL = 1e6  # USD: market.spot_impact moves the log index per million of flow


INDEX_SECONDS_A_MINUTE = 60
"""Ticks a minute of the index path a sub-minute clock reads: a tick a second, summed into
any clock's ticks of whole seconds, so that every such clock sees the same path."""
CASCADE_GAP_MINUTES = 5.0
"""Liquidations no more than this apart belong to one cascade (:func:`cascade_delay`):
a gap longer than five calm minutes ends it."""


def cascade_delay(episode_times: Sequence[float], adl_time: float, gap: float) -> float:
    """Time from the first liquidation of the cascade that ends in ADL to the ADL, in the
    times' unit: walking back from `adl_time` through the times of liquidation events
    (`episode_times`, any order), the cascade goes on while consecutive times are at most
    `gap` apart. NaN when `adl_time` is NaN (no ADL); 0 with no liquidation before it.
    How the replay of 2025-10-10 dates ADL: "about 62 s after the first liquidation of
    the cascade".

    Worked example: liquidations at steps 3, 100, 103 and 106, ADL at 108, gap 5: back
    from 108 through 106, 103 and 100 (each within 5 of the next); 3 is 97 before 100,
    so the cascade began at 100 and the delay is 8 steps.
    """
    if math.isnan(adl_time):
        return math.nan
    start = adl_time
    for time in sorted((t for t in episode_times if t <= adl_time), reverse=True):
        if start - time > gap:
            break
        start = time
    return adl_time - start


def tick_log_returns(market: MarketConfig, run: RunConfig, rng: np.random.Generator,
                     bridge_rng: np.random.Generator) -> np.ndarray:
    """The index's log returns over each of the run's finest ticks (``run.steps`` ×
    ``run.ticks_per_step`` of them): the market's process drawn a minute at a time from
    `rng`, cut into the ticks by a Brownian bridge from `bridge_rng`
    (:func:`perpabm.market.index_log_returns`), or summed into steps longer than a
    minute. The same seeds give the same path at any clock (common random numbers): at
    whole-minute points at every clock, at every point that two clocks of whole-second
    ticks share."""
    minutes_per_step = round(run.step_minutes)
    per_minute = run.ticks_per_step if minutes_per_step == 1 else 1
    # Ticks of whole seconds are sums of one path of seconds, so that a 20-second tick
    # moves by the sum of its seconds' moves at 1-second ticks: one path, sampled.
    drawn = per_minute
    if per_minute > 1 and INDEX_SECONDS_A_MINUTE % per_minute == 0:
        drawn = INDEX_SECONDS_A_MINUTE
    returns = index_log_returns(market, run.steps * minutes_per_step, rng,
                                per_minute=drawn, bridge_rng=bridge_rng)
    if drawn > per_minute:
        returns = returns.reshape(-1, drawn // per_minute).sum(axis=1)
    if minutes_per_step > 1:
        returns = returns.reshape(run.steps, minutes_per_step).sum(axis=1)
    return returns


def _notional(events: Sequence[Event]) -> float:
    """Σ |quantity| × price over `events` (USD), as pandas sums that column of the events
    frame: NaN counted as 0, the float64 array added pairwise by ``np.add.reduce``."""
    products = np.array([abs(e.quantity) * e.price for e in events], dtype=np.float64)
    products[np.isnan(products)] = 0.0
    return float(np.add.reduce(products))


def seed_streams(rng: Any) -> dict[str, np.random.SeedSequence]:
    """Independent child seed sequences, one per component, from a path's seed.

    `rng` is a SeedSequence, an int, or None (fresh entropy); children are
    derived from its entropy and spawn key without mutating it, so the same
    seed always gives the same streams.
    """
    if isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a SeedSequence or an int seed, not a Generator: a path "
                        "needs independent child streams")
    seq = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    return {name: np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, k))
            for k, name in enumerate(STREAMS)}


def scenario_config(config: ScenarioConfig | str | None,
                    settings: dict[str, Any]) -> ScenarioConfig:
    """`config` (a ScenarioConfig, a bundled scenario's name, or None: the default) with
    each of `settings` (dotted path → value, as ``{"traders.count": 500}``) set, an
    ``"exchange.preset"`` first since it replaces the whole exchange section."""
    if config is None:
        config = ScenarioConfig()
    elif isinstance(config, str):
        config = load_scenario(config)
    elif not isinstance(config, ScenarioConfig):
        raise TypeError(f"config must be a ScenarioConfig or a scenario's name; got "
                        f"{type(config).__name__}")
    top_level = [f.name for f in dataclasses.fields(config)]
    for path in settings:
        if "." not in path and path not in top_level:
            near = closest(path, MODEL_KEYWORDS) or closest(path, top_level)
            raise TypeError(f"PerpMarketModel() got an unexpected keyword argument {path!r}"
                            f"{near}; a setting is a dotted path such as 'traders.count'")
    return config.with_settings(settings)


class PerpMarketModel(mesa.Model):
    """One simulated path of a perpetual-swap market under a ScenarioConfig.

    `config` is a ScenarioConfig or a bundled scenario's name (default: the default
    ScenarioConfig); keyword `settings` change it by dotted path
    (``PerpMarketModel("crash", **{"traders.count": 500})``), as ``mesa.batch_run``
    passes its parameters. `rng` is the path's seed (:func:`seed_streams`).
    `trader_class` (LeveragedTrader or a subclass) is the class of the traders' agents;
    by default the one ``traders.agent`` names, as the makers' is the one
    ``makers.agent`` names (:mod:`perpabm.agents.classes`).

    The agents, by kind: :attr:`traders` (a :class:`TraderPopulation`: account id →
    trader), :attr:`funds` (another, from the ``funds`` section), :attr:`makers`,
    :attr:`arbitrageurs` and :attr:`vaults` (the backstop vault, if the waterfall has
    one: :attr:`vault`). The index so far is :attr:`history`.
    ``running`` turns False after the last of ``run.steps`` steps.
    """

    def __init__(self, config: ScenarioConfig | str | None = None, *, rng: Any = None,
                 trader_class: type[LeveragedTrader] | None = None, **settings: Any) -> None:
        config = scenario_config(config, settings)
        if trader_class is None:
            trader_class = agent_classes.trader_class(config)
        elif config.traders.agent != BUILTIN_AGENTS["traders"]:
            raise ConfigError(f"give the traders' class as trader_class or as traders.agent, "
                              f"not both; got {trader_class!r} and "
                              f"{config.traders.agent!r}")
        streams = seed_streams(rng)
        super().__init__(rng=np.random.default_rng(streams["order_flow"]))
        self.config = config
        self.seed = streams
        self._rngs = {name: np.random.default_rng(streams[name])
                      for name in ("traders", "makers", "arbitrageur", "vault", "funds")}
        market, run = config.market, config.run
        exchange_config = config.exchange.replace(debug=config.exchange.debug or run.debug)
        self.step_minutes = run.step_minutes
        """One step, in minutes: a minute, or ``run.step_seconds`` when that is longer."""
        self.exchange = Exchange(exchange_config, mark_price=market.start_price,
                                 rng=np.random.default_rng(streams["exchange"]),
                                 capacity=config.traders.count + config.funds.count + 64,
                                 time_unit_minutes=self.step_minutes)
        self.n_steps = run.steps
        self.step_index = 0
        """Steps ended so far."""
        self.clock = Clock.for_run(run)
        """Where the path is in its ticks (:class:`~perpabm.clock.Clock`)."""
        self.now = 0.0
        """Model time, in steps: fractional within a step the clock divides into ticks."""
        self.tick_minutes = self.step_minutes / self.clock.ticks_per_step
        """The tick being run, in minutes: a step, or a part of one."""
        self.index = market.start_price
        self._tick_returns = tick_log_returns(market, run, np.random.default_rng(streams["index"]),
                                              np.random.default_rng(streams["index_bridge"]))
        self.history = IndexHistory(market.start_price, run.steps,
                                    self.step_minutes / MINUTES_PER_YEAR)
        self._net_liquidation_flow = 0.0  # last tick's, USD: + bought, − sold
        self._fund_unwound = 0.0  # this tick's insurance-fund unwind, USD: + bought, − sold
        self._step_notional = [0.0, 0.0, 0.0]  # USD liquidated, backstop, ADL: the step's so far
        self.ticks = 0
        """Ticks run so far (a step at the fixed clock's one-minute ticks)."""
        self._tick_length = 1  # the tick scheduled next, in the clock's finest ticks
        self._last_liquidation = -math.inf  # model time (steps) of the last liquidation event
        self._mark_at_decision = market.start_price  # the mark when the clock last decided

        maker_class = agent_classes.maker_class(config)
        self.makers = [maker_class(self, config.makers) for _ in range(config.makers.count)]
        self.arbitrageurs = [Arbitrageur(self, config.arbitrageur)
                             for _ in range(config.arbitrageur.count)]
        self.basis_traders = [BasisTrader(self, config.basis)
                              for _ in range(config.basis.count)]
        """The basis traders (``basis``): perp short, spot long held elsewhere."""
        self._spot_flow = 0.0  # this step's spot trades (basis traders, hedged makers), USD
        backstop = "backstop" in exchange_config.waterfall and config.vault.enabled
        self.vaults = [Vault(self, config.vault)] if backstop else []
        self.vault: Vault | None = self.vaults[0] if self.vaults else None
        """The backstop vault, or None if the waterfall has none."""
        self.traders = TraderPopulation(self, self._rngs["traders"], agent_class=trader_class)
        self.traders.add(config.traders.count)
        self.funds = TraderPopulation(self, self._rngs["funds"], config=config.funds,
                                      agent_class=agent_classes.trader_class(config, "funds"))
        """The large, lightly levered accounts (``funds``): a population like the traders'."""
        self.funds.add(config.funds.count)
        self._populations = (self.traders, self.funds)
        self.warm_history: np.ndarray | None = None
        """With a warm start (``warm_start_days``), the index before step 0: prices at steps
        −n … 0 (:func:`perpabm.market.index_history`); None without one."""
        self._warm_start(np.random.default_rng(streams["history"]))
        self._hears_adl = (any(population.config.adl_reentry_probability > 0.0
                               for population in self._populations)
                           or any(m.config.adl_response != "none" or m.config.hedged
                                  for m in self.makers)
                           or len(self.basis_traders) > 0)
        self._vault_start = self.vault.equity if self.vault else 0.0
        self._fund_start = self.exchange.insurance_fund
        self._fund_deposits = 0.0  # USD the model has added (insurance_fund_ratio)
        self._tops_up_fund = exchange_config.insurance_fund_ratio > 0.0
        self._series = np.full((run.steps, len(SERIES_COLUMNS)), np.nan)
        self._datacollector = mesa.DataCollector(model_reporters={
            name: [self._summary_figure, [name]] for name in SUMMARY_FIGURES})
        self._collects_summary = True  # False once a collector of the user's replaces it
        self._collected_at: float | None = None  # the model time of the last collection
        self._collecting: dict[str, float] | None = None  # the summary being collected
        self._schedule_tick()

    # ------------------------------------------------------------------ the tick

    def tick(self) -> None:
        """One tick, in phases (the module docstring says what each does); the step's
        series row when it ends a step; then the next tick is scheduled. Mesa's event
        list calls it at the tick's end time; calling it directly runs the next tick
        without advancing Mesa's time (the benchmarks do, to time Mesa's share)."""
        clock = self.clock
        length = self._tick_length
        self.tick_minutes = self.step_minutes * length / clock.ticks_per_step
        self._move_index(clock.position, length)
        clock.position += length
        self.ticks += 1
        self.now = clock.time()
        step_ends = clock.step_ends()
        if step_ends:
            self.step_index += 1
            self.history.record(self.index)
        Arbitrageur.trade_all(self.arbitrageurs)
        Vault.unwind_all(self.vaults)
        self._unwind_fund()
        MarketMaker.rehedge_all(self, self.makers)
        for population in self._populations:
            population.exit()
            population.enter()
        self._spot_flow = BasisTrader.act_all(self.basis_traders)
        self._spot_flow += MarketMaker.hedge_all(self.makers)
        MarketMaker.quote_all(self, self.makers)
        Vault.quote_all(self.vaults)
        events = self.exchange.update_index(self.index, time=self.now)
        self._top_up_fund(events)
        Vault.record_all(self.vaults, events)
        if self._hears_adl:
            self._tell_deleveraged(events)
        for population in self._populations:
            population.renew()
        self._tick_flow(events)
        if step_ends:
            self._record(self.step_index - 1)
            if self.step_index == self.n_steps:
                self.running = False
        self._schedule_tick()

    def step(self) -> None:
        """Mesa's step (its default schedule runs it once a unit of time, a step): at one
        tick a step, that tick; finer ticks are events of their own (:meth:`tick`)."""
        if self.clock.ticks_are_steps and self.clock.position < self.clock.end:
            self.tick()

    def _schedule_tick(self) -> None:
        """Put the next tick on Mesa's event list at its end time, its length as the clock
        says (:meth:`_stressed` asked only when an adaptive clock decides); nothing after
        the path's last tick, nor when every tick is a step (Mesa's step runs it)."""
        clock = self.clock
        if clock.ticks_are_steps or clock.position >= clock.end:
            return
        stressed = clock.adaptive and clock.deciding and self._stressed()
        self._tick_length = clock.next_length(stressed)
        self.schedule_event(self.tick, at=clock.time(clock.position + self._tick_length))

    def _stressed(self) -> bool:
        """Whether the adaptive clock cuts the coming calm-length tick (``run``'s
        thresholds): the index is to move more than ``refine_move`` within it or the mark
        moved more than that since the clock last decided; an account's liquidation price
        is within ``refine_distance`` of the mark, plus what the index is to move in the
        tick (a calm tick that could take an account to its liquidation price is cut); or
        a liquidation event came less than ``calm_seconds`` ago."""
        run, clock, ex = self.config.run, self.clock, self.exchange
        mark, last_mark = ex.mark_price, self._mark_at_decision
        self._mark_at_decision = mark
        coming = self._tick_returns[clock.position: clock.position + clock.calm_ticks]
        move = abs(float(coming.sum()))
        threshold = math.log1p(run.refine_move)
        if move > threshold or abs(math.log(mark / last_mark)) > threshold:
            return True
        calm_steps = run.calm_seconds / (SECONDS_PER_MINUTE * self.step_minutes)
        if self.now - self._last_liquidation < calm_steps:
            return True
        reach = run.refine_distance + math.expm1(move)
        return len(ex.ledger.near_liquidation(mark, reach)) > 0

    def _unwind_fund(self) -> None:
        """The insurance fund offloads part of what it has taken over
        (:meth:`Exchange.unwind_insurance_fund`; nothing unless ``exchange.fund_takeover``);
        its fills are liquidation flow, as the vault's unwind is, for the step's spot impact."""
        self._fund_unwound = 0.0
        if self.exchange.insurance_fund_account is None:
            return
        for e in self.exchange.unwind_insurance_fund(self.tick_minutes):
            self._fund_unwound += e.quantity * e.price

    def _warm_start(self, rng: np.random.Generator) -> None:
        """Open the positions the populations with ``warm_start_days`` hold at step 0
        (:mod:`perpabm.agents.warm`), on an index history drawn from `rng`.

        Each position is a fill at its entry price against one counterparty account
        (opened with twice the book's gross notional, so that its margin never binds),
        which takes the other side of every position and ends flat, the book being
        balanced; it is then closed, taking out what it made or lost against the traders
        (money out, or in: what the traders' entries gained or lost before step 0 is
        money that crossed the exchange then). A position whose account would be below
        initial margin at the start price is left out before the book is balanced, by
        the exchange's own rule (equity ≥ notional / max_leverage; the accounts have no
        orders yet), so no fill is refused: scaling a position down only raises its
        equity over its margin."""
        warm_populations = [p for p in self._populations if p.config.warm_start_days > 0.0]
        if not warm_populations:
            return
        days = max(p.config.warm_start_days for p in warm_populations)
        minutes_per_step = round(self.step_minutes)
        steps = max(1, round(days * MINUTES_PER_DAY / self.step_minutes))
        minutes = index_history(self.config.market, steps * minutes_per_step, rng)
        self.warm_history = minutes[::-1][::minutes_per_step][::-1]  # a price a step
        ex = self.exchange
        start = ex.mark_price
        parts = [(p, p.warm_positions(self.warm_history)) for p in warm_populations]
        accounts = np.concatenate([w.accounts for _, w in parts])
        sizes = np.concatenate([w.sizes for _, w in parts])
        entries = np.concatenate([w.entries for _, w in parts])
        remaining = np.concatenate([w.remaining for _, w in parts])
        equity = ex.ledger.collateral[accounts] + sizes * (start - entries)
        margin = mechanics.initial_margin(np.abs(sizes) * start, ex.config.max_leverage)
        keep = equity >= MARGIN_SAFETY * margin
        book = warm.balanced(warm.WarmPositions(accounts[keep], sizes[keep], entries[keep],
                                                remaining[keep]))
        if not len(book.accounts):
            return
        other = ex.open_account(2.0 * float(np.sum(np.abs(book.sizes) * book.entries)))
        for account, size, entry in zip(book.accounts.tolist(), book.sizes.tolist(),
                                        book.entries.tolist(), strict=True):
            buyer, seller = (account, other) if size > 0 else (other, account)
            ex.fill(buyer, seller, abs(size), entry)
        residual = ex.position(other)
        if residual != 0.0:
            # Rounding in the ledger's sums of a balanced book: the largest position of
            # the side that outweighs it by that much is reduced by it (a trade that
            # lowers its risk), at its own entry price.
            k = np.flatnonzero(np.sign(book.sizes) == -np.sign(residual))
            k = k[np.argmax(np.abs(book.sizes[k]))]
            account, entry = int(book.accounts[k]), float(book.entries[k])
            buyer, seller = (other, account) if residual < 0 else (account, other)
            ex.fill(buyer, seller, abs(residual), entry)
        ex.close_account(other)
        for population, positions in parts:
            mine = np.isin(book.accounts, positions.accounts)
            population.hold(book.accounts[mine], book.remaining[mine])

    def _top_up_fund(self, events: list[Event]) -> None:
        """Top the insurance fund up to ``exchange.insurance_fund_ratio`` × the open interest
        at the mark, until `events` (this step's) show it drawn on (:data:`FUND_DRAWN`)."""
        ex = self.exchange
        if not self._tops_up_fund:
            return
        if any(e.kind in FUND_DRAWN and (e.kind != "insurance_fund" or e.amount < 0.0)
               for e in events):
            self._tops_up_fund = False
            return
        target = ex.config.insurance_fund_ratio * ex.open_interest * ex.mark_price
        if target > ex.insurance_fund:
            self._fund_deposits += ex.deposit_insurance_fund(target - ex.insurance_fund).amount

    def _tell_deleveraged(self, events: list[Event]) -> None:
        """Tell the traders and makers whose positions this step's "adl" `events` changed
        (:func:`~perpabm.agents.deleveraging.deleveraged`) by how much."""
        accounts, changes = deleveraged(events)
        if not len(accounts):
            return
        for population in self._populations:
            population.deleveraged(accounts, changes)
        change_of = dict(zip(accounts.tolist(), changes.tolist(), strict=True))
        for agent in (*self.makers, *self.basis_traders):
            if agent.account in change_of:
                agent.deleveraged(change_of[agent.account])

    def _move_index(self, position: int, length: int) -> None:
        """The index over the tick of `length` finest ticks from `position`: the sum of
        their pre-drawn log returns plus the spot impact of the last tick's net
        liquidation flow (``spot_impact`` per $1M of it: with 0.01, $2M of net selling
        lowers the log index by 0.02)."""
        impact = self.config.market.spot_impact * self._net_liquidation_flow / IMPACT_NOTIONAL
        move = (self._tick_returns[position] if length == 1
                else float(self._tick_returns[position: position + length].sum()))
        self.index *= math.exp(move + impact)

    def run(self) -> PerpMarketModel:
        """Run all steps of the path; returns the model."""
        if self.time < self.n_steps:  # one Mesa time unit a step
            self.run_until(self.n_steps)
        self.running = False
        return self

    # ------------------------------------------------------------------ recording

    def _tick_flow(self, events: list[Event]) -> None:
        """The tick's net liquidation flow (USD, + bought, − sold: the liquidation orders'
        and the fund's fills, the vault's and the fund's unwinds and the spot trades),
        for the next tick's spot impact; when the last liquidation event came; and the
        step's liquidated, backstop and ADL notional so far, for its series row — one
        pass over the tick's `events`."""
        flow = self.vault.unwound_notional if self.vault else 0.0
        flow += self._fund_unwound + self._spot_flow
        notional = self._step_notional
        for e in events:
            if e.kind in ("liquidation", "insurance_fund") and e.quantity:
                flow += e.quantity * e.price
                notional[LIQUIDATED] += abs(e.quantity) * e.price
            elif e.kind == "backstop":
                notional[BACKSTOP] += abs(e.quantity) * e.price
            elif e.kind == "adl":
                notional[ADL] += abs(e.quantity) * e.price
            if e.liquidation >= 0 and e.kind != "funding":
                self._last_liquidation = self.now
        self._net_liquidation_flow = flow

    def _record(self, t: int) -> None:
        """Step `t`'s series row: the state at its end and the notional its ticks
        liquidated, handed to the backstop and closed by ADL (:meth:`_tick_flow`); the
        notional then starts again at 0 for the next step."""
        ex = self.exchange
        liquidated, backstop, adl_notional = self._step_notional
        self._step_notional = [0.0, 0.0, 0.0]
        bid, ask, bid_depth, ask_depth = ex.book.near_mid(DEPTH_BAND, self.index)
        row = self._series[t]
        row[:] = (
            self.index, ex.mark_price, ex.last_price or np.nan, bid, ask, bid_depth, ask_depth,
            ex.open_interest, ex.insurance_fund,
            self.vault.equity if self.vault else np.nan,
            self.vault.pnl_by_strategy()["liquidator"] if self.vault else np.nan,
            self.vault.position if self.vault else np.nan,
            liquidated, backstop, adl_notional, len(self.traders),
        )

    @property
    def series(self) -> pd.DataFrame:
        """Per-step series (every ``run.record_every`` steps), indexed by step."""
        every = self.config.run.record_every
        frame = pd.DataFrame(self._series[: self.step_index], columns=SERIES_COLUMNS)
        frame.index = pd.RangeIndex(1, self.step_index + 1, name="step")
        return frame.iloc[every - 1:: every]

    @property
    def events(self) -> pd.DataFrame:
        """Every liquidation, backstop, fund, ADL, bad-debt and funding event, with what
        holds ``account`` and ``counterparty`` (``account_type``, ``counterparty_type``:
        one of :data:`ACCOUNT_TYPES`, missing where there is no account)."""
        return pd.DataFrame(self._event_columns())

    def keyed_events(self, **keys: int) -> pd.DataFrame:
        """:attr:`events` after leading int64 columns: one per keyword, its value on every
        row (``path=3``: a column ``path`` of 3s), then ``event``, each event's number
        in the log (0, 1, …)."""
        columns = self._event_columns()
        taken = {"event", *columns}
        if not taken.isdisjoint(keys):
            raise ValueError(f"key columns {sorted(taken.intersection(keys))} would replace "
                             f"event columns")
        n = len(columns["time"])
        return pd.DataFrame({**{name: np.full(n, value, dtype=np.int64)
                                for name, value in keys.items()},
                             "event": np.arange(n), **columns})

    def _event_columns(self) -> dict[str, Any]:
        """The event log's typed columns (:func:`event_columns`), then ``account_type``
        and ``counterparty_type``."""
        columns = event_columns(self.exchange.event_log)
        for column in ("account", "counterparty"):
            columns[f"{column}_type"] = self._account_type_labels(columns[column])
        return columns

    @property
    def account_types(self) -> pd.Series:
        """What holds each account (one of :data:`ACCOUNT_TYPES`), indexed by account id;
        missing for an account nothing in the model holds."""
        accounts = np.arange(self.exchange.n_accounts)
        return pd.Series(self._account_type_labels(accounts),
                         index=pd.Index(accounts, name="account"), name="account_type")

    def account_snapshot(self) -> pd.DataFrame:
        """Every account as it stands now, indexed by account id: what holds it
        (``account_type``), its ``size`` (base units), ``notional`` (|size| · mark, USD),
        ``equity`` (USD, at the mark) and ``leverage``
        (:func:`perpabm.mechanics.effective_leverage`) — what
        :func:`perpabm.analysis.leverage_snapshot` reads. The external hedges of basis
        traders and hedged makers are not in it: they are not on the exchange."""
        accounts = self.exchange.accounts()
        mark = self.exchange.mark_price
        mark = 0.0 if mark is None else mark
        size, equity = accounts["size"], accounts["equity"]
        return pd.DataFrame({
            "account_type": self.account_types, "size": size, "notional": size.abs() * mark,
            "equity": equity,
            "leverage": mechanics.effective_leverage(size.to_numpy(), mark, equity.to_numpy()),
        }).rename_axis("account")

    def _account_type_labels(self, accounts: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """What holds each of `accounts` (ids; −1 for none), as a pandas string array:
        one of :data:`ACCOUNT_TYPES`, missing where there is no account."""
        accounts = np.asarray(accounts, dtype=np.int64)
        types = self._account_types()
        codes = np.full(len(accounts), -1, dtype=np.int64)
        known = (accounts >= 0) & (accounts < len(types))
        codes[known] = types[accounts[known]]
        labels = np.array([*ACCOUNT_TYPES, None], dtype=object)  # code −1 → missing
        return pd.array(labels[codes], dtype="string")

    def _account_types(self) -> np.ndarray:
        """What holds each account, by id: an index into :data:`ACCOUNT_TYPES`, −1 for
        none. A trader's is its strategy (kept after it leaves), read from the
        population; ACCOUNT_TYPES begins with STRATEGIES, so the codes are the same."""
        types = np.full(self.exchange.n_accounts, -1, dtype=np.int64)
        strategy = self.traders.strategy[: len(types)]
        types[: len(strategy)] = strategy
        funds = np.flatnonzero(self.funds.strategy[: len(types)] >= 0)
        types[funds] = ACCOUNT_TYPES.index("fund")
        for agents, kind in ((self.makers, "maker"), (self.arbitrageurs, "arbitrageur"),
                             (self.basis_traders, "basis")):
            for agent in agents:
                types[agent.account] = ACCOUNT_TYPES.index(kind)
        for vault in self.vaults:  # the liquidator's last: it is the shared account
            types[vault.quote_account] = ACCOUNT_TYPES.index("vault_market_making")
            types[vault.account] = ACCOUNT_TYPES.index("vault_liquidator")
        fund = self.exchange.insurance_fund_account
        if fund is not None:
            types[fund] = ACCOUNT_TYPES.index("insurance_fund")
        return types

    # ------------------------------------------------------------------ Mesa's DataCollector

    @property
    def datacollector(self) -> mesa.DataCollector:
        """Mesa's DataCollector of the path: one row of the :meth:`summary` figures
        (:data:`SUMMARY_FIGURES`) for each model time it was read at, collected when it
        is read and not yet collected at this time (:meth:`collect`), so that a path
        nobody reads it of costs nothing. Read before the last step, it warns that the
        figures are those of an unfinished path (as when ``mesa.batch_run``'s
        ``max_steps`` is below ``run.steps``).

        Assign a DataCollector of your own to replace it; that one is yours to collect.
        """
        if self._collects_summary and self._collected_at != self.time:
            if self.step_index < self.n_steps:
                warnings.warn(f"the summary is collected at step {self.step_index} of "
                              f"{self.n_steps}: the path has not finished",
                              RuntimeWarning, stacklevel=2)
            self.collect()
        return self._datacollector

    @datacollector.setter
    def datacollector(self, collector: mesa.DataCollector) -> None:
        self._datacollector = collector
        self._collects_summary = False

    def collect(self) -> None:
        """Collect the datacollector's row now, the summary computed once for all of its
        reporters."""
        self._collecting = self.summary()
        try:
            self._datacollector.collect(self)
        finally:
            self._collecting = None
        self._collected_at = self.time

    def _summary_figure(self, name: str) -> float:
        """The summary figure `name`: a model reporter of the datacollector."""
        summary = self._collecting if self._collecting is not None else self.summary()
        return summary[name]

    # ------------------------------------------------------------------ the summary

    def _vault_pnl_by_strategy(self) -> dict[str, float]:
        """The summary's ``vault_pnl_<strategy>`` figures: NaN without a vault."""
        split = self.vault.pnl_by_strategy() if self.vault else {}
        return {f"vault_pnl_{name}": split.get(name, math.nan) for name in VAULT_STRATEGIES}

    def summary(self) -> dict[str, float]:
        """One row of path metrics (:data:`SUMMARY_FIGURES`): liquidations, ADL, vault
        and fund outcomes. Before any step, those of the starting state."""
        ex = self.exchange
        log = ex.event_log
        hedged = [maker for maker in self.makers if maker.config.hedged]
        adl = [e for e in log if e.kind == "adl"]
        adl_times = [e.time for e in adl if not math.isnan(e.time)]
        first_adl = float(min(adl_times)) if adl_times else math.nan
        episodes = {e.liquidation for e in log if e.kind != "funding"} - {-1}  # −1: none
        index = self.history.prices
        vault_equity = self._series[: self.step_index, SERIES_COLUMNS.index("vault_equity")]
        vault_min_equity = math.nan
        if self.vault:  # before any step, the equity it starts with
            vault_min_equity = (float(np.nanmin(vault_equity)) if len(vault_equity)
                                else self.vault.equity)
        return {
            "steps": float(self.step_index),
            "index_return": float(index[-1] / index[0] - 1.0),
            "index_max_drawdown": float(1.0 - (index / np.maximum.accumulate(index)).min()),
            "liquidation_episodes": float(len(episodes)),
            "liquidated_notional": _notional([e for e in log if e.kind == "liquidation"]),
            "backstop_notional": _notional([e for e in log if e.kind == "backstop"]),
            "adl_fired": float(len(adl) > 0),
            "adl_fills": float(len(adl)),
            "adl_notional": _notional(adl),
            "adl_accounts": float(len({e.account for e in adl})),
            "first_adl_step": first_adl,
            "first_adl_delay_seconds": SECONDS_PER_MINUTE * self.step_minutes * cascade_delay(
                [e.time for e in log if e.liquidation >= 0 and e.kind != "adl"], first_adl,
                CASCADE_GAP_MINUTES / self.step_minutes),
            "vault_pnl": (self.vault.equity - self._vault_start) if self.vault else math.nan,
            **self._vault_pnl_by_strategy(),
            "vault_min_equity": vault_min_equity,
            "basis_hedge_pnl": (sum(b.hedge_pnl for b in self.basis_traders)
                                if self.basis_traders else math.nan),
            "maker_hedge_pnl": (sum(m.hedge_pnl for m in hedged) if hedged else math.nan),
            "insurance_fund_change": (ex.insurance_fund - self._fund_start
                                      - self._fund_deposits),
            "bad_debt": ex.bad_debt,
            "traders_left": float(self.traders.left),
            "conservation_error": ex.conservation_error(),
        }

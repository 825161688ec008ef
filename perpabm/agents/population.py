"""The trader population: every leveraged trader's parameters and exit triggers, the
compiled kernels that scan them, and the phases of a step that traders act in.

Storage: each figure once, in arrays by account. The population holds one numpy
array per figure, indexed by exchange account id; a :class:`LeveragedTrader` holds
only its model, its population and its account, and its properties read the arrays
at that account. The kernels scan the arrays for all traders at once, and there is
no copy on the agents to keep in step with them. The arrays grow as accounts are
opened for arriving traders, replacing the old ones, so keep the population rather
than an array.

Array layout, by account id, from 0 to at least the newest trader's account (the
accounts of makers, the arbitrageur and the vault are slots that hold no trader):

============  =======  ================================================  ==============
array         dtype    what                                              no trader
============  =======  ================================================  ==============
is_trader     bool     holds a trader now                                False
capital       float64  USD the trader arrived with                       0
leverage      float64  notional / equity of the positions it opens       0
strategy      int8     index into :data:`STRATEGIES`; kept after the     −1
                       trader leaves, so that its events stay labelled
exit_step     float64  step its holding time runs out                    ∞
exit_above    float64  close once the index is at or above (USD)         NaN
exit_below    float64  close once the index is at or below (USD)         NaN
============  =======  ================================================  ==============

A long that entered at 100 with take-profit 0.05 and stop-loss 0.03 exits above
105 or below 97; a short exits above 103 or below 95. A position never changes
side without new triggers: traders open only from flat.

The phases the model calls each tick of its clock, in its order: :meth:`TraderPopulation.exit`,
:meth:`~TraderPopulation.enter`, and after the mark, :meth:`~TraderPopulation.renew`;
when ADL has hit traders in the tick, :meth:`~TraderPopulation.deleveraged` before
``renew``. Randomness: the population's own generator (the model's "traders" stream)
draws the traders' parameters, their coins and holding times, and arrivals; who looks
for an entry, and which ADL'd traders re-enter, is the order flow, drawn from the
model's ``rng``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
from numpy.typing import NDArray

from perpabm.agents import warm
from perpabm.agents.protocols import MarketModel
from perpabm.agents.trader import LeveragedTrader
from perpabm.agents.warm import WarmPositions
from perpabm.compiled import kernel
from perpabm.config.market import MINUTES_PER_DAY
from perpabm.config.scenario import STRATEGIES, TraderConfig
from perpabm.exchange.kernels.accounts import COLLATERAL, ENTRY_PRICE, SIZE, LedgerArrays
from perpabm.mechanics import equity_at

MAX_SLIPPAGE = 0.02  # a trader's market order walks the book no further than this from the index
LEAVE_BELOW = 0.05  # a flat trader with less than this share of its capital leaves
NOISE, MOMENTUM = STRATEGIES.index("noise"), STRATEGIES.index("momentum")
NO_ACCOUNTS = np.empty(0, dtype=np.int64)  # a draw's start: nobody drawn yet

type Triggers = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""The exit triggers ``(exit_step, exit_above, exit_below)`` as the kernels take them."""


class TraderPopulation(Mapping[int, LeveragedTrader]):
    """The model's leveraged traders: account id → :class:`LeveragedTrader`, and their
    arrays (see the module docstring for the layout).

    `rng` is the traders' own stream. `agent_class` (LeveragedTrader or a subclass) is
    the class of the agents :meth:`add` creates, as ``agent_class(model, population,
    account)``. `config` is the section they are drawn from: the model's ``traders``
    by default, or another of the same kind (``funds``).
    """

    def __init__(self, model: MarketModel, rng: np.random.Generator, *,
                 agent_class: type[LeveragedTrader] = LeveragedTrader,
                 config: TraderConfig | None = None) -> None:
        if not (isinstance(agent_class, type) and issubclass(agent_class, LeveragedTrader)):
            raise TypeError(f"agent_class must be LeveragedTrader or a subclass; got "
                            f"{agent_class!r}")
        self.model = model
        self.agent_class = agent_class
        self.config = config = model.config.traders if config is None else config
        self._rng = rng
        step_minutes = model.step_minutes
        self.lookback_steps = max(1, round(config.lookback_minutes / step_minutes))
        # (tick minutes, chance of an entry): recomputed when the tick's length changes
        self._entry_tick = (step_minutes, self.entry_probability(step_minutes))
        self._mean_holding_steps = config.holding_minutes / step_minutes
        # ADL'd traders who look for an entry at the next step, and the side (+1, −1).
        self._reentering = NO_ACCOUNTS
        self._reentry_sides = np.empty(0)
        self.left = 0  # traders who have left so far
        self._agents: dict[int, LeveragedTrader] = {}
        self._accounts: NDArray[np.int64] | None = None  # cache of `accounts`
        self.is_trader = np.zeros(0, dtype=bool)
        self.capital = np.zeros(0)
        self.leverage = np.zeros(0)
        self.strategy = np.full(0, -1, dtype=np.int8)
        self.exit_step = np.full(0, np.inf)
        self.exit_above = np.full(0, np.nan)
        self.exit_below = np.full(0, np.nan)
        # The three exit-trigger arrays as the kernels take them (rebuilt as they grow).
        self.triggers: Triggers = self.exit_step, self.exit_above, self.exit_below

    # ------------------------------------------------------------------ the mapping

    def __getitem__(self, account: int) -> LeveragedTrader:
        return self._agents[account]

    def __iter__(self) -> Iterator[int]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def accounts(self) -> NDArray[np.int64]:
        """The traders' account ids in arrival order (accounts are opened in that order),
        rebuilt only when traders change."""
        if self._accounts is None:
            self._accounts = np.flatnonzero(self.is_trader)
        return self._accounts

    # ------------------------------------------------------------------ rates

    def entry_probability(self, minutes: float) -> float:
        """The chance that a flat trader looks for an entry within `minutes`:
        ``entries_per_day`` × their share of a day, at most 1 (4 a day over a minute:
        4 / 1,440 = 1/360; over a second 1/21,600). Linear in the minutes, so the expected
        number of entries an hour is the same at any tick."""
        return min(1.0, self.config.entries_per_day * minutes / MINUTES_PER_DAY)

    def arrival_rate(self, minutes: float) -> float:
        """The expected number of new traders within `minutes`: ``arrivals_per_day`` ×
        their share of a day (the mean of the Poisson number that arrives in a tick)."""
        return self.config.arrivals_per_day * minutes / MINUTES_PER_DAY

    # ------------------------------------------------------------------ arrivals

    def add(self, n: int) -> list[LeveragedTrader]:
        """`n` new traders, each with an account funded with its capital; their parameters
        are drawn from the model's TraderConfig (see it for the distributions)."""
        cfg, rng = self.config, self._rng
        exchange = self.model.exchange
        capital = cfg.capital_scale * (1.0 + rng.pareto(cfg.capital_tail, n))
        max_leverage = cfg.leverage_cap * exchange.config.max_leverage
        leverage = np.clip(cfg.leverage_median * np.exp(rng.normal(0.0, cfg.leverage_sigma, n)),
                           cfg.leverage_floor, max_leverage)
        weights = np.asarray(cfg.strategy_mix) / sum(cfg.strategy_mix)
        strategy = rng.choice(len(STRATEGIES), size=n, p=weights)
        accounts = np.array([exchange.open_account(c) for c in capital.tolist()], dtype=np.int64)
        if not len(accounts):
            return []
        self._cover(int(accounts[-1]) + 1)
        self.is_trader[accounts] = True
        self.capital[accounts] = capital
        self.leverage[accounts] = leverage
        self.strategy[accounts] = strategy
        self._accounts = None
        added = [self.agent_class(self.model, self, account) for account in accounts.tolist()]
        self._agents.update((trader.account, trader) for trader in added)
        return added

    def _cover(self, n_accounts: int) -> None:
        """Grow the arrays to hold at least `n_accounts` accounts (doubling, at least)."""
        have = len(self.is_trader)
        if n_accounts <= have:
            return
        grow = max(have, n_accounts - have)
        for name, fill in (("is_trader", False), ("capital", 0.0), ("leverage", 0.0),
                           ("strategy", -1), ("exit_step", np.inf), ("exit_above", np.nan),
                           ("exit_below", np.nan)):
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full(grow, fill, dtype=old.dtype)]))
        self.triggers = self.exit_step, self.exit_above, self.exit_below

    def _scanned(self) -> int:
        """How many accounts a scan covers: all the exchange's that the arrays hold (an
        account opened after the newest trader's holds no trader)."""
        return min(self.model.exchange.ledger.n, len(self.is_trader))

    # ------------------------------------------------------------------ the phases

    def exit(self) -> None:
        """Close the positions whose holding time ran out or whose TP/SL the index hit."""
        model = self.model
        due = due_exits(self._scanned(), model.now, model.index, self.triggers,
                        model.exchange.ledger.arrays, self.is_trader)
        self.close_positions(due)

    def enter(self) -> None:
        """A sparse random draw (the order flow: the model's rng) of traders who look for
        an entry, each with probability ``entries_per_day`` × a tick's share of a day
        (4 a day, one-minute ticks: 1/360), after the ADL'd traders who re-enter
        (:meth:`deleveraged`); they act as one batch (:meth:`open_positions`)."""
        reentering, sides = self._reentering, self._reentry_sides
        self._reentering, self._reentry_sides = NO_ACCOUNTS, np.empty(0)
        if not self._agents:
            return
        order_flow = self.model.rng
        accounts = self.accounts
        minutes = self.model.tick_minutes
        if minutes != self._entry_tick[0]:  # the clock's ticks come in a few lengths
            self._entry_tick = (minutes, self.entry_probability(minutes))
        k = order_flow.binomial(len(accounts), self._entry_tick[1])
        chosen = NO_ACCOUNTS
        while len(chosen) < k:  # a second round only when a trader was drawn twice
            chosen = draw_distinct(chosen, accounts, order_flow.random(k - len(chosen)))
        if len(reentering):
            still = self.is_trader[reentering]  # a trader may have left since
            reentering, sides = reentering[still], sides[still]
            chosen = chosen[~np.isin(chosen, reentering)]
            sides = np.concatenate([sides, np.zeros(len(chosen))])
            chosen = np.concatenate([reentering, chosen])
        if len(chosen):
            self.open_positions(chosen, sides if len(reentering) else None)

    def deleveraged(self, accounts: NDArray[np.int64], changes: NDArray[np.float64]) -> None:
        """ADL changed the positions of `accounts` by `changes` (base units, signed) in the
        step just run. Each trader among them that it left flat re-enters with
        probability ``adl_reentry_probability`` (one uniform each, from the order flow):
        it looks for an entry at the next step (:meth:`enter`) on the side it was closed
        out of (a long sold by ADL buys). Nothing is drawn with a probability of 0."""
        probability = self.config.adl_reentry_probability
        if probability == 0.0 or not len(accounts):
            return
        held = accounts < len(self.is_trader)
        accounts, changes = accounts[held], changes[held]
        flat = self.is_trader[accounts] & (self.model.exchange.ledger.size[accounts] == 0.0)
        accounts, changes = accounts[flat], changes[flat]
        if not len(accounts):
            return
        again = self.model.rng.random(len(accounts)) < probability
        self._reentering = accounts[again]
        self._reentry_sides = -np.sign(changes[again])

    def renew(self) -> None:
        """Flat traders with less than :data:`LEAVE_BELOW` of their capital left leave
        (their accounts closed, if not in deficit); new ones arrive, a Poisson number at
        ``arrivals_per_day`` × a tick's share of a day."""
        exchange = self.model.exchange
        led = exchange.ledger
        gone = leavers(self._scanned(), self.is_trader, led.arrays, self.capital).tolist()
        for account in gone:
            trader = self._agents.pop(account)
            self.is_trader[account] = False
            self._accounts = None
            if led.collateral[account] >= 0.0:
                exchange.close_account(account)
            trader.remove()
        self.left += len(gone)
        arrivals = self._rng.poisson(self.arrival_rate(self.model.tick_minutes))
        if arrivals:
            self.add(int(arrivals))

    # ------------------------------------------------------------------ a warm start

    def warm_positions(self, history: NDArray[np.float64]) -> WarmPositions:
        """What the population's accounts hold after living the last
        ``warm_start_days`` of `history` (index prices up to step 0), drawn from the
        population's stream (:func:`perpabm.agents.warm.warm_positions`)."""
        cfg, model = self.config, self.model
        steps = round(cfg.warm_start_days * MINUTES_PER_DAY / model.step_minutes)
        accounts = self.accounts
        return warm.warm_positions(
            history[len(history) - 1 - min(steps, len(history) - 1):], accounts,
            self.capital[accounts], self.leverage[accounts], self.strategy[accounts],
            self._rng, entry_probability=self.entry_probability(model.step_minutes),
            mean_holding_steps=self._mean_holding_steps, lookback_steps=self.lookback_steps,
            take_profit=cfg.take_profit, stop_loss=cfg.stop_loss,
            tiers=model.exchange.config.mm_tiers, momentum=MOMENTUM, noise=NOISE,
            holding_tail=cfg.holding_tail)

    def hold(self, accounts: NDArray[np.int64], remaining: NDArray[np.float64]) -> None:
        """Give the positions `accounts` hold at step 0 (a warm start's) their exit
        triggers: `remaining` steps of holding time, take-profit and stop-loss from their
        entry prices."""
        if len(accounts):
            set_exit_triggers(accounts, np.ones(len(accounts)), remaining, 0.0,
                              self.model.exchange.ledger.arrays, self.config.take_profit,
                              self.config.stop_loss, self.triggers)

    # ------------------------------------------------------------------ the batches

    def open_positions(self, accounts: NDArray[np.int64],
                       sides: NDArray[np.float64] | None = None) -> None:
        """Traders `accounts` (ids, in the order drawn) look for an entry: each flat one
        with equity takes a position of equity × its leverage notional with a market
        order (:func:`entry_orders`), and those filled get exit triggers
        (:func:`set_exit_triggers`). `sides` (+1 buy, −1 sell, 0 or None: as its
        strategy says) fixes the side of some.

        Each draws a coin (its side, for a noise trader or when there is no trend) and
        a holding time (steps) from the traders' stream whether or not it trades, as two
        vectors: one call for all instead of one per trader.
        """
        model, cfg = self.model, self.config
        coins = self._rng.random(len(accounts))
        holds = warm.holding_times(self._rng, self._mean_holding_steps, cfg.holding_tail,
                                   len(accounts))
        exchange = model.exchange
        led = exchange.ledger
        if sides is None:
            sides = np.zeros(len(accounts))
        takers, orders = entry_orders(accounts, led.arrays, exchange.mark_price, self.leverage,
                                      self.strategy, model.history.trend(self.lookback_steps),
                                      coins, holds, model.index, sides)
        if len(takers):
            filled = exchange.market_orders(takers, orders[0], orders[1])
            set_exit_triggers(takers, filled, orders[2], model.now, led.arrays,
                              cfg.take_profit, cfg.stop_loss, self.triggers)

    def close_positions(self, accounts: NDArray[np.int64]) -> None:
        """Close the whole positions of `accounts` (traders' ids, in order) with market
        orders, as far as the book allows within :data:`MAX_SLIPPAGE` of the index."""
        if len(accounts):
            exchange = self.model.exchange
            orders = closing_orders(accounts, exchange.ledger.arrays, self.model.index)
            exchange.market_orders(accounts, orders[0], orders[1])


# ---------------------------------------------------------------------- kernels


@kernel
def due_exits(n: int, step: float, index: float, triggers: Triggers, ledger: LedgerArrays,
              is_trader: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Traders among the first `n` accounts whose holding time ran out by `step` or whose
    exit prices the `index` reached (at or above `exit_above`, at or below
    `exit_below`, of the `triggers`), in account order; their holding times are used up
    (set to ∞).

    An account whose triggers fired while it is flat (its size in the `ledger` bundle 0:
    closed by a liquidation or ADL, say) has its triggers cleared instead.
    """
    exit_step, exit_above, exit_below = triggers
    size = ledger[0][SIZE]
    count = 0  # counted without branches first: a loop the compiler vectorises
    for i in range(n):
        count += (exit_step[i] <= step) | (exit_above[i] <= index) | (exit_below[i] >= index)
    due = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(n if count else 0):
        if exit_step[i] <= step or exit_above[i] <= index or exit_below[i] >= index:
            if size[i] == 0.0:
                exit_step[i] = np.inf
                exit_above[i] = np.nan
                exit_below[i] = np.nan
            elif is_trader[i]:
                exit_step[i] = np.inf
                due[k] = i
                k += 1
    return due[:k]


@kernel
def leavers(n: int, is_trader: NDArray[np.bool_], ledger: LedgerArrays,
            capital: NDArray[np.float64]) -> NDArray[np.int64]:
    """Traders among the first `n` accounts who are flat with less than
    :data:`LEAVE_BELOW` of their starting capital left (USD collateral, in the `ledger`
    bundle, < 0.05 × `capital`: 249 of 5,000 leaves, 250 stays)."""
    size, collateral = ledger[0][SIZE], ledger[0][COLLATERAL]
    count = 0  # counted without branches first: a loop the compiler vectorises
    for i in range(n):
        count += is_trader[i] & (size[i] == 0.0) & (collateral[i] < LEAVE_BELOW * capital[i])
    gone = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(n if count else 0):
        if is_trader[i] and size[i] == 0.0 and collateral[i] < LEAVE_BELOW * capital[i]:
            gone[k] = i
            k += 1
    return gone


@kernel
def draw_distinct(drawn: NDArray[np.int64], population: NDArray[np.int64],
                  uniforms: NDArray[np.float64]) -> NDArray[np.int64]:
    """`drawn` followed by the members of `population` that `uniforms` (in [0, 1)) pick,
    in order, each member at most once: a uniform u picks member ⌊u·len(population)⌋,
    or nothing if that member is drawn already. Drawing again until there are as many
    as wanted samples without replacement, in a uniformly random order."""
    n = len(population)
    out = np.empty(len(drawn) + len(uniforms), dtype=np.int64)
    out[: len(drawn)] = drawn
    m = len(drawn)
    for u in uniforms:
        pick = population[min(int(u * n), n - 1)]
        if pick not in out[:m]:
            out[m] = pick
            m += 1
    return out[:m]


@kernel
def set_exit_triggers(accounts: NDArray[np.int64], filled: NDArray[np.float64],
                      holding_steps: NDArray[np.float64], step: float, ledger: LedgerArrays,
                      take_profit: float, stop_loss: float, triggers: Triggers) -> None:
    """Exit `triggers` of the positions `accounts` opened where `filled` is not 0: exit at
    `step` + its `holding_steps`, or once the index reaches the take-profit or stop-loss
    price (`take_profit`, `stop_loss`: fractions of the entry price in the `ledger`
    bundle; see the module docstring for a worked example)."""
    exit_step, exit_above, exit_below = triggers
    size, entry = ledger[0][SIZE], ledger[0][ENTRY_PRICE]
    for k in range(len(accounts)):
        if filled[k] == 0.0:
            continue
        account = accounts[k]
        held = size[account]
        exit_step[account] = step + holding_steps[k]
        side = 1.0 if held > 0.0 else -1.0 if held < 0.0 else 0.0
        profit_price = entry[account] * (1.0 + side * take_profit)
        loss_price = entry[account] * (1.0 - side * stop_loss)
        exit_above[account] = profit_price if held > 0.0 else loss_price
        exit_below[account] = loss_price if held > 0.0 else profit_price


@kernel
def closing_orders(accounts: NDArray[np.int64], ledger: LedgerArrays,
                   index: float) -> NDArray[np.float64]:
    """Market orders that close `accounts`' positions (their sizes in the `ledger`
    bundle, base units, signed): rows of quantities (−size) and limit prices (USD),
    :data:`MAX_SLIPPAGE` from the `index` on the side the order trades."""
    size = ledger[0][SIZE]
    orders = np.empty((2, len(accounts)))
    for k in range(len(accounts)):
        held = size[accounts[k]]
        orders[0, k] = -held
        orders[1, k] = index * (1.0 - math.copysign(MAX_SLIPPAGE, held))
    return orders


@kernel
def entry_orders(accounts: NDArray[np.int64], ledger: LedgerArrays, mark: float,
                 leverage: NDArray[np.float64], strategy: NDArray[np.int8], trend: float,
                 coins: NDArray[np.float64], holds: NDArray[np.float64], index: float,
                 sides: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The market orders of traders `accounts` looking for an entry, and who sends them.

    A trader sends one if it is flat (its size in the `ledger` bundle, base units) with
    equity (collateral + size × (`mark` − entry), USD) above zero: equity × `leverage`
    notional at the `index`, up to :data:`MAX_SLIPPAGE` from it. Its side is +1 (buy)
    or −1: its entry of `sides` where that is not 0 (an ADL'd trader re-entering);
    else the sign of the `trend` for momentum traders, against it for contrarians,
    and its coin (< 0.5: buy) for noise traders or when the trend is 0.

    Returns (takers, orders): the accounts that send one and rows of their quantities
    (signed, base units), limit prices (USD) and holding times (their `holds`).
    """
    values = ledger[0]
    size, collateral, entry = values[SIZE], values[COLLATERAL], values[ENTRY_PRICE]
    takers = np.empty(len(accounts), dtype=np.int64)
    orders = np.empty((3, len(accounts)))
    m = 0
    for k in range(len(accounts)):
        account = accounts[k]
        if size[account] != 0.0:
            continue
        equity = equity_at(collateral[account], size[account], entry[account], mark)
        if equity <= 0.0:
            continue
        if sides[k] != 0.0:
            side = sides[k]
        elif strategy[account] == NOISE or trend == 0.0:
            side = 1.0 if coins[k] < 0.5 else -1.0
        else:
            side = trend if strategy[account] == MOMENTUM else -trend
        takers[m] = account
        orders[0, m] = side * equity * leverage[account] / index
        orders[1, m] = index * (1.0 + side * MAX_SLIPPAGE)
        orders[2, m] = holds[k]
        m += 1
    return takers[:m], orders[:, :m]

"""PerpMarketModel: Mesa agents trading one perpetual on the exchange engine.

Step order, every step (one ``market.step_minutes``):

1. **index** — the exogenous index moves by its pre-drawn log return, plus the
   spot impact of last step's net liquidation flow (``market.spot_impact``);
2. **agents act** — the arbitrageur trades the basis, the vault unwinds
   inventory, traders whose exit triggers fired close, a sparse random set of
   flat traders opens positions; then makers requote, so that the book the
   mark and the liquidations see is replenished (trades within the step meet
   the previous step's quotes, as takers meet quotes a moment old). Traders
   and makers act as batches: the exits, the entries and the makers' requotes
   are one exchange call each (:meth:`Exchange.market_orders`,
   :meth:`Exchange.replace_quotes_of`), their orders taken in turn as one by one;
3. **mark price** — from the venue's rule (index, index + EMA basis, or median);
4. **liquidation waterfall** — :meth:`Exchange.update_mark` runs it to completion;
5. **funding** — at the venue's interval, from the mean premium; wiped-out
   traders leave and new ones arrive;
6. **record** — the series row, into preallocated arrays.

Randomness: one :class:`numpy.random.SeedSequence` per path; independent child
streams for the index, the order flow (which traders act: the model's ``rng``),
traders, makers, the arbitrageur, the vault and the exchange (ADL "random"
rule). Two configs that differ only in venue rules therefore see the same
exogenous index path (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import mesa
import numpy as np
import pandas as pd

from perpabm.agents import Arbitrageur, LeveragedTrader, MarketMaker, Vault
from perpabm.compiled import kernel
from perpabm.config.scenario import STRATEGIES, ScenarioConfig
from perpabm.exchange import Event, Exchange
from perpabm.exchange.events import event_columns
from perpabm.exchange.kernels.pairwise import numpy_sum
from perpabm.market import index_log_returns

STREAMS = ("index", "order_flow", "traders", "makers", "arbitrageur", "vault", "exchange")
SERIES_COLUMNS = (
    "index", "mark", "last", "best_bid", "best_ask", "bid_depth", "ask_depth",
    "open_interest", "insurance_fund", "vault_equity", "liquidated_notional",
    "backstop_notional", "adl_notional", "traders",
)
ACCOUNT_TYPES = (*STRATEGIES, "maker", "arbitrageur", "vault")
"""What holds an account: a trader's strategy, or the agent class."""
DEPTH_BAND = 0.01  # book depth is recorded within 1% of the mid
LEAVE_BELOW = 0.05  # a flat trader with less than this share of its capital leaves
_NO_ACCOUNTS = np.empty(0, dtype=np.int64)  # a draw's start: nobody drawn yet


@kernel
def _log_return_std(logs: np.ndarray) -> float:
    """Standard deviation of the differences of `logs` (log prices): the float
    ``np.diff(logs).std()`` gives, by the same steps — mean, squared deviations, mean —
    with numpy's sums (:func:`~perpabm.exchange.kernels.pairwise.numpy_sum`)."""
    returns = logs[1:] - logs[:-1]
    deviations = returns - numpy_sum(returns) / len(returns)
    return math.sqrt(numpy_sum(deviations * deviations) / len(returns))


@kernel
def _due_exits(n: int, step: float, index: float, exit_step: np.ndarray,
               exit_above: np.ndarray, exit_below: np.ndarray, size: np.ndarray,
               is_trader: np.ndarray) -> np.ndarray:
    """Traders among the first `n` accounts whose holding time ran out by `step` or whose
    exit prices the `index` reached (at or above `exit_above`, at or below
    `exit_below`), in account order; their holding times are used up (set to ∞).

    An account whose triggers fired while it is flat (closed by a liquidation or ADL,
    say) has its triggers cleared instead.
    """
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
def _leavers(n: int, is_trader: np.ndarray, size: np.ndarray, collateral: np.ndarray,
             capital: np.ndarray) -> np.ndarray:
    """Traders among the first `n` accounts who are flat with less than
    :data:`LEAVE_BELOW` of their starting capital left."""
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
def _draw_distinct(drawn: np.ndarray, population: np.ndarray,
                   uniforms: np.ndarray) -> np.ndarray:
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
def _set_exit_triggers(accounts: np.ndarray, filled: np.ndarray, holding_steps: np.ndarray,
                       step: float, size: np.ndarray, entry: np.ndarray, take_profit: float,
                       stop_loss: float, exit_step: np.ndarray, exit_above: np.ndarray,
                       exit_below: np.ndarray) -> None:
    """Exit triggers of the positions `accounts` opened where `filled` is not 0: exit at
    `step` + its `holding_steps`, or once the index reaches the take-profit or stop-loss
    price (`take_profit`, `stop_loss`: fractions of the `entry` price)."""
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


class PerpMarketModel(mesa.Model):
    """One simulated path of a perpetual-swap market under a ScenarioConfig."""

    def __init__(self, config: ScenarioConfig | None = None, *, rng: Any = None) -> None:
        config = ScenarioConfig() if config is None else config
        if not isinstance(config, ScenarioConfig):
            raise TypeError(f"config must be a ScenarioConfig; got {type(config).__name__}")
        streams = seed_streams(rng)
        super().__init__(rng=np.random.default_rng(streams["order_flow"]))
        self.config = config
        self.seed = streams
        self._rngs = {name: np.random.default_rng(streams[name])
                      for name in ("traders", "makers", "arbitrageur", "vault")}
        market, run = config.market, config.run
        exchange_config = config.exchange.replace(debug=config.exchange.debug or run.debug)
        self.exchange = Exchange(exchange_config, mark_price=market.start_price,
                                 rng=np.random.default_rng(streams["exchange"]),
                                 capacity=config.traders.count + 64,
                                 time_unit_minutes=market.step_minutes)
        self.step_minutes = market.step_minutes
        self.n_steps = run.steps
        self.step_index = 0
        self.index = market.start_price
        self._log_returns = index_log_returns(market, run.steps,
                                              np.random.default_rng(streams["index"]))
        self._index_history = np.empty(run.steps + 1)
        self._index_history[0] = market.start_price
        self._lookback = max(1, round(config.traders.lookback_minutes / market.step_minutes))
        self._arrival_rate = config.traders.arrivals_per_day * market.step_minutes / 1440.0
        self._net_liquidation_flow = 0.0
        self._volatility_cache: tuple[tuple[int, int] | None, float] = (None, math.nan)
        self._annualise = math.sqrt(market.step_years ** -1)  # a step's std to a year's
        self._step_liquidation_flow = 0.0

        capacity = self.exchange.ledger.size.shape[0]
        self._exit_step = np.full(capacity, np.inf)
        # Exit when the index is at or above / at or below these: a long's take-profit
        # and stop-loss, or a short's stop-loss and take-profit (a position never
        # changes side without new triggers: traders open only from flat).
        self._exit_above = np.full(capacity, np.nan)
        self._exit_below = np.full(capacity, np.nan)
        self._capital = np.zeros(capacity)
        self._leverage = np.zeros(capacity)  # a trader's leverage, by account
        self._account_type = np.full(capacity, -1, dtype=np.int8)  # index into ACCOUNT_TYPES
        self._is_trader = np.zeros(capacity, dtype=bool)  # holds a trader now
        self.makers = [MarketMaker(self, config.makers) for _ in range(config.makers.count)]
        self.arbitrageurs = [Arbitrageur(self, config.arbitrageur)
                             for _ in range(config.arbitrageur.count)]
        backstop = "backstop" in exchange_config.waterfall and config.vault.enabled
        self.vault = Vault(self, config.vault) if backstop else None
        for agents, kind in ((self.makers, "maker"), (self.arbitrageurs, "arbitrageur"),
                             ([self.vault] if self.vault else [], "vault")):
            for agent in agents:
                self._account_type[agent.account] = ACCOUNT_TYPES.index(kind)
        self.traders: dict[int, LeveragedTrader] = {}
        self._trader_ids: np.ndarray | None = None
        self._add_traders(config.traders.count)
        self._vault_start = self.vault.equity if self.vault else 0.0
        self._fund_start = self.exchange.insurance_fund
        self._series = np.full((run.steps, len(SERIES_COLUMNS)), np.nan)
        self._traders_left = 0

    # ------------------------------------------------------------------ observations

    def trend(self) -> float:
        """Sign of the index move over the traders' lookback window (0 if none)."""
        lookback = self._lookback
        t = self.step_index
        move = self.index - float(self._index_history[max(0, t - lookback)])
        return 1.0 if move > 0.0 else -1.0 if move < 0.0 else 0.0

    def realised_volatility(self, window_minutes: float) -> float:
        """Annualised realised volatility of index log returns over the window (the
        makers' calm volatility until a full window has passed: a handful of returns
        is too noisy to withdraw liquidity on)."""
        window = max(2, round(window_minutes / self.step_minutes))
        t = self.step_index
        if t < window:
            return self.config.makers.calm_volatility
        key = (t, window)
        if self._volatility_cache[0] != key:  # every maker asks the same in one step
            logs = np.log(self._index_history[t - window: t + 1])  # numpy's log, not libm's
            self._volatility_cache = (key, _log_return_std(logs) * self._annualise)
        return self._volatility_cache[1]

    def add_liquidation_flow(self, signed_notional: float) -> None:
        """Count signed USD notional (+ buying, − selling) as liquidation flow this step."""
        self._step_liquidation_flow += signed_notional

    # ------------------------------------------------------------------ traders

    def _add_traders(self, n: int) -> None:
        rng = self._rngs["traders"]
        for trader in LeveragedTrader.draw(self, n, rng):
            self._ensure_capacity(trader.account)
            self.traders[trader.account] = trader
            self._trader_ids = None
            self._capital[trader.account] = trader.capital
            self._leverage[trader.account] = trader.leverage
            self._is_trader[trader.account] = True
            self._account_type[trader.account] = ACCOUNT_TYPES.index(trader.strategy)

    def _ensure_capacity(self, account: int) -> None:
        if account < len(self._exit_step):
            return
        grow = max(len(self._exit_step), account + 1)
        self._exit_step = np.concatenate([self._exit_step, np.full(grow, np.inf)])
        self._exit_above = np.concatenate([self._exit_above, np.full(grow, np.nan)])
        self._exit_below = np.concatenate([self._exit_below, np.full(grow, np.nan)])
        self._capital = np.concatenate([self._capital, np.zeros(grow)])
        self._leverage = np.concatenate([self._leverage, np.zeros(grow)])
        self._account_type = np.concatenate(
            [self._account_type, np.full(grow, -1, dtype=np.int8)])
        self._is_trader = np.concatenate([self._is_trader, np.zeros(grow, dtype=bool)])

    def set_exit_triggers(self, accounts: np.ndarray, filled: np.ndarray,
                          holding_steps: np.ndarray) -> None:
        """Holding times (`holding_steps` from now), take-profit and stop-loss prices for
        the positions `accounts` just opened, where `filled` (their orders' filled
        quantities) is not 0."""
        cfg = self.config.traders
        led = self.exchange.ledger
        _set_exit_triggers(accounts, filled, holding_steps, float(self.step_index), led.size,
                           led.entry_price, cfg.take_profit, cfg.stop_loss, self._exit_step,
                           self._exit_above, self._exit_below)

    def _trader_accounts(self) -> np.ndarray:
        """The traders' account ids in arrival order (accounts are opened in that order),
        rebuilt only when traders change."""
        if self._trader_ids is None:
            self._trader_ids = np.flatnonzero(self._is_trader)
        return self._trader_ids

    def _traders_exit(self) -> None:
        """Close the positions whose holding time ran out or whose TP/SL was hit."""
        led = self.exchange.ledger
        due = _due_exits(led.n, float(self.step_index), self.index, self._exit_step,
                         self._exit_above, self._exit_below, led.size, self._is_trader)
        LeveragedTrader.close_positions(self, due)

    def _traders_enter(self) -> None:
        """A sparse random draw (the model's rng) of traders who look for an entry; they
        act as one batch (:meth:`LeveragedTrader.open_positions`)."""
        if not self.traders:
            return
        cfg = self.config.traders
        p = min(1.0, cfg.entries_per_day * self.step_minutes / 1440.0)
        accounts = self._trader_accounts()
        k = self.rng.binomial(len(accounts), p)
        if k == 0:
            return
        chosen = _NO_ACCOUNTS
        while len(chosen) < k:  # a second round only when a trader was drawn twice
            chosen = _draw_distinct(chosen, accounts, self.rng.random(k - len(chosen)))
        LeveragedTrader.open_positions(self, chosen, self._leverage, self._account_type,
                                       self._rngs["traders"])

    def _traders_renew(self) -> None:
        """Wiped-out traders leave; new ones arrive at the configured rate."""
        led = self.exchange.ledger
        gone = _leavers(led.n, self._is_trader, led.size, led.collateral,
                        self._capital).tolist()
        for account in gone:
            trader = self.traders.pop(account)
            self._is_trader[account] = False
            self._trader_ids = None
            if led.collateral[account] >= 0.0:
                self.exchange.close_account(account)
            trader.remove()
        self._traders_left += len(gone)
        arrivals = self._rngs["traders"].poisson(self._arrival_rate)
        if arrivals:
            self._add_traders(int(arrivals))

    # ------------------------------------------------------------------ the step

    def step(self) -> None:
        t = self.step_index
        if t >= self.n_steps:
            self.running = False
            return
        ex, cfg = self.exchange, self.config
        impact = cfg.market.spot_impact * self._net_liquidation_flow / 1e6
        self.index *= math.exp(self._log_returns[t] + impact)
        self.step_index = t + 1
        self._index_history[t + 1] = self.index

        for arbitrageur in self.arbitrageurs:
            arbitrageur.trade()
        if self.vault is not None:
            self.vault.unwind()
        self._traders_exit()
        self._traders_enter()
        if self.makers:
            MarketMaker.quote_all(self, self.makers)
        if self.vault is not None:
            self.vault.quote()

        events = ex.update_index(self.index, time=float(self.step_index))
        self._traders_renew()
        self._record(t, ex.mark_price, events)

    def run(self) -> PerpMarketModel:
        """Run all steps of the path; returns the model."""
        if self.step_index < self.n_steps:  # one Mesa time unit a step
            self.run_for(self.n_steps - self.step_index)
        self.running = False
        return self

    # ------------------------------------------------------------------ recording

    def _record(self, t: int, mark: float, events: list) -> None:
        ex = self.exchange
        liquidated = backstop = adl_notional = 0.0
        flow, self._step_liquidation_flow = self._step_liquidation_flow, 0.0
        for e in events:
            notional = abs(e.quantity) * e.price
            if e.kind in ("liquidation", "insurance_fund") and e.quantity:
                liquidated += notional
                flow += e.quantity * e.price
            elif e.kind == "backstop":
                backstop += notional
            elif e.kind == "adl":
                adl_notional += notional
        self._net_liquidation_flow = flow
        bid, ask, bid_depth, ask_depth = ex.book.near_mid(DEPTH_BAND, self.index)
        row = self._series[t]
        row[:] = (
            self.index, mark, ex.last_price or np.nan, bid, ask, bid_depth, ask_depth,
            ex.open_interest, ex.insurance_fund,
            self.vault.equity if self.vault else np.nan,
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

    def _account_type_labels(self, accounts: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """What holds each of `accounts` (ids; −1 for none), as a pandas string array:
        one of :data:`ACCOUNT_TYPES`, missing where there is no account."""
        accounts = np.asarray(accounts, dtype=np.int64)
        codes = np.full(len(accounts), -1, dtype=np.int64)
        known = (accounts >= 0) & (accounts < len(self._account_type))
        codes[known] = self._account_type[accounts[known]]
        labels = np.array([*ACCOUNT_TYPES, None], dtype=object)  # code −1 → missing
        return pd.array(labels[codes], dtype="string")

    def summary(self) -> dict[str, float]:
        """One row of path metrics: liquidations, ADL, vault and fund outcomes."""
        ex = self.exchange
        log = ex.event_log
        adl = [e for e in log if e.kind == "adl"]
        adl_times = [e.time for e in adl if not math.isnan(e.time)]
        episodes = {e.liquidation for e in log if e.kind != "funding"} - {-1}  # −1: none
        index = self._index_history[: self.step_index + 1]
        vault_equity = self._series[: self.step_index, SERIES_COLUMNS.index("vault_equity")]
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
            "first_adl_step": float(min(adl_times)) if adl_times else math.nan,
            "vault_pnl": (self.vault.equity - self._vault_start) if self.vault else math.nan,
            "vault_min_equity": float(np.nanmin(vault_equity)) if self.vault else math.nan,
            "insurance_fund_change": ex.insurance_fund - self._fund_start,
            "bad_debt": ex.bad_debt,
            "traders_left": float(self._traders_left),
            "conservation_error": ex.conservation_error(),
        }

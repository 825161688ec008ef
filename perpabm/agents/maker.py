"""Market makers: a ladder of quotes around the index, thinning as volatility rises.

A maker whose inventory ADL closed has lost that much of its hedge; as its config's
``adl_response`` says, it buys or sells it back through the book at the next step
(:meth:`MarketMaker.rehedge_all`), or quotes wider and thinner for a while
(:meth:`MarketMaker.ladder`). The model tells it (:meth:`MarketMaker.deleveraged`).

A maker requotes at every tick of the clock. With ``refill_seconds`` its book comes back
at a rate after a sweep, not in full at the next requote: per side it keeps the share of
its full depth it can post, and that share recovers toward 1 with the time constant
``refill_seconds`` (:class:`DepthRefill`), so the depth that returns in a minute
does not depend on how many ticks the minute is run as.

A ``hedged`` maker holds its hedge on an outside venue: each step, before it requotes,
it trades spot at the index to bring the hedge to −(inventory) plus what ADL left naked
(:meth:`MarketMaker.hedge_all`). Worked example: short 10 perp, hedge +10. ADL buys the
short back: inventory 0, naked +10, the hedge target stays 10 (−0 + 10) — the maker
holds 10 spot with nothing against it. ``"rehedge"`` sells 10 perp again (naked 0,
target 10: hedged); ``"close_hedge"`` sets naked to 0, so the target is 0 and it sells
the 10 spot at the index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import mesa
import numpy as np

from perpabm.agents.books import StrategyBook
from perpabm.compiled import kernel
from perpabm.config.market import SECONDS_PER_MINUTE
from perpabm.config.scenario import MakerConfig

if TYPE_CHECKING:
    from perpabm.agents.protocols import MarketModel


NO_ORDERS = np.empty((2, 0))
FULL_DEPTH = (1.0, 1.0)  # a DepthRefill's share of each side with nothing to refill
MIN_VOL_WINDOW = 2  # steps: the fewest log returns a volatility is taken over
REHEDGE_SLIPPAGE = 0.02  # a re-hedge walks the book no further than this from the index


def post_ladders(model: MarketModel, accounts: Sequence[int],
                 ladders: Sequence[np.ndarray]) -> None:
    """Each of `accounts` in turn replaces its quotes with its ladder of `ladders` (rows
    of signed quantities and prices, as :func:`ladder` gives), all in one exchange call
    (:meth:`Exchange.replace_quotes_of`): a requote does not trade, so no ladder depends
    on another's posting.

    Levels that would cross another's quotes, or that margin cannot cover, are left
    out; an account whose equity is gone cancels its quotes. No accounts: nothing to do.
    """
    if not accounts:
        return
    orders = np.concatenate(ladders, axis=1) if len(ladders) > 1 else ladders[0]
    model.exchange.replace_quotes_of(
        np.array(accounts, dtype=np.int64),
        np.array([ladder.shape[1] for ladder in ladders], dtype=np.int64), orders[0], orders[1])


def ladder_for(model: MarketModel, account: int, config: MakerConfig, *,
               widen: float = 1.0, thin: float = 1.0) -> np.ndarray:
    """The ladder `account` quotes now, as `config` says (:func:`ladder`): none if its
    equity is gone. `widen` multiplies its half-spread and level spacing and `thin` its
    depth (a maker withdrawn after ADL: ``adl_withdraw_spread``,
    ``adl_withdraw_depth``); a `thin` of 0 quotes nothing.

    Fair value is the index skewed against inventory; spread and depth follow
    realised volatility over ``config.vol_window_minutes`` (liquidity withdraws in
    stress; until a full window has passed, ``config.calm_volatility``: a handful of
    returns is too noisy to withdraw liquidity on); depth on the side that adds to
    inventory thins as inventory nears its limit, and that side is not quoted at the
    limit.
    """
    ex = model.exchange
    index = model.index
    equity = ex.equity(account)
    if equity <= 0.0 or thin == 0.0:
        return NO_ORDERS
    limit = config.inventory_limit * equity * ex.config.max_leverage / index
    inventory = ex.position(account)
    sigma = model.history.realised_volatility(
        max(MIN_VOL_WINDOW, round(config.vol_window_minutes / model.step_minutes)))
    if math.isnan(sigma):  # not a full window yet
        sigma = config.calm_volatility
    stress = 1.0 + config.withdrawal * max(sigma / config.calm_volatility - 1.0, 0.0)
    fair = index * (1.0 - config.inventory_skew * inventory / limit)
    return ladder(fair, stress, thin * config.depth / stress / index, inventory, limit,
                  widen * config.half_spread, widen * config.level_spacing, config.levels)


def scale_sides(orders: np.ndarray, bid_share: float, ask_share: float) -> np.ndarray:
    """`orders` (rows of signed quantities and prices, as :func:`ladder` gives) with each
    bid's quantity times `bid_share` and each ask's times `ask_share`; a level a share of
    0 leaves empty is left out (the exchange takes no order of quantity 0)."""
    quantities = orders[0] * np.where(orders[0] > 0.0, bid_share, ask_share)
    kept = quantities != 0.0
    return np.vstack((quantities[kept], orders[1, kept]))


@kernel
def ladder(fair: float, stress: float, base_quantity: float, inventory: float, limit: float,
           half_spread: float, spacing: float, levels: int) -> np.ndarray:
    """A ladder of `levels` bids then `levels` asks around `fair` (USD), nearest first:
    rows of quantities, signed (+ buy, − sell) in base units, and prices (USD).

    Level k sits (`half_spread` + k·`spacing`)·`stress` of `fair` away and holds
    `base_quantity` times the side's room: 1 when quoting reduces `inventory`, falling
    to 0 (the side not quoted) as inventory reaches `limit` (base units). A bid so far
    down in extreme stress that its price is not positive is not posted.
    """
    orders = np.empty((2, 2 * levels))  # one array back to Python: each costs a boxing
    n = 0
    for side in (1.0, -1.0):
        room = 1.0 - max(side * inventory, 0.0) / limit
        if room <= 0.0:
            continue
        quantity = side * base_quantity * room
        for level in range(levels):
            price = fair * (1.0 - side * (half_spread + level * spacing) * stress)
            if price > 0.0:
                orders[0, n] = quantity
                orders[1, n] = price
                n += 1
    return orders[:, :n]


class DepthRefill:
    """A quoting account's book coming back at a rate after a sweep (``refill_seconds``,
    the time constant): per side the share of its full ladder depth it posts.

    Before each requote, :meth:`refill`: per side, `left` is the share of the full depth
    still resting — the side's share at the last requote times the fraction of what it
    posted still resting now (the rest was filled, or cancelled by the exchange); a side
    that posted nothing keeps its share. It recovers toward 1 over the Δt seconds since
    the last requote: share = left + (1 − left) · (1 − exp(−Δt / refill_seconds)). After
    the requote, :meth:`note_posted`. Worked example: refill_seconds 30, a side swept
    empty (left 0), requoted a minute later: share 1 − e^−2 = 0.865 — the same after
    sixty requotes a second apart (e^−1/30 sixty times is e^−2); a side not traded
    against keeps its share (1 stays 1). With refill_seconds 0, full depth every time.
    """

    def __init__(self, refill_seconds: float) -> None:
        self.refill_seconds = refill_seconds
        self.share = FULL_DEPTH
        """[fraction of the full ladder's depth] (bids, asks) posted at the requote."""
        self.posted = (0.0, 0.0)
        """[base units] (bids, asks) resting just after the last requote, as the exchange
        took them (levels margin could not cover left out); (0, 0) before the first, or
        without ``refill_seconds`` (not read then)."""
        self.quoted_at = math.nan
        """[model time, in steps] ``model.now`` at the last requote; NaN before the
        first, or without ``refill_seconds``."""

    def refill(self, model: MarketModel, account: int) -> None:
        """Bring :attr:`share` up to date before `account` requotes (the class docstring
        says how); nothing without ``refill_seconds`` or before the first requote."""
        if self.refill_seconds == 0.0 or math.isnan(self.quoted_at):
            return
        elapsed = (model.now - self.quoted_at) * model.step_minutes * SECONDS_PER_MINUTE
        recovered = -math.expm1(-elapsed / self.refill_seconds)  # 1 − exp(−Δt/τ), exact near 0
        resting = model.exchange.book.open_quantity(account)
        shares = []
        for share, posted, rest in zip(self.share, self.posted, resting, strict=True):
            left = share * min(rest / posted, 1.0) if posted > 0.0 else share
            shares.append(left + (1.0 - left) * recovered)
        self.share = (shares[0], shares[1])

    def note_posted(self, model: MarketModel, account: int) -> None:
        """After `account` requoted: what rests of it (:attr:`posted`) and when
        (:attr:`quoted_at`), for the next :meth:`refill`; nothing without
        ``refill_seconds``."""
        if self.refill_seconds == 0.0:
            return
        self.posted = model.exchange.book.open_quantity(account)
        self.quoted_at = model.now

    def scale(self, orders: np.ndarray) -> np.ndarray:
        """`orders` (a ladder) at :attr:`share` of its depth on each side
        (:func:`scale_sides`); at full depth, `orders` themselves."""
        if self.share == FULL_DEPTH:  # nothing to refill: no call on the hot path
            return orders
        return scale_sides(orders, *self.share)


def requote(model: MarketModel,
            quoters: Sequence[tuple[int, DepthRefill, Callable[[], np.ndarray]]]) -> None:
    """Each (account, depth, ladder) of `quoters` replaces its quotes, in one exchange
    call (:func:`post_ladders`): every `depth` is first refilled from what its last
    requote left (:meth:`DepthRefill.refill`), the ladders are then built (each
    `ladder()` reads its side's share), and what each posted is noted
    (:meth:`DepthRefill.note_posted`). The makers and the quoting vault requote so."""
    for account, depth, _ in quoters:
        depth.refill(model, account)
    post_ladders(model, [account for account, _, _ in quoters],
                 [ladder() for _, _, ladder in quoters])
    for account, depth, _ in quoters:
        depth.note_posted(model, account)


class MarketMaker(mesa.Agent):
    """Quotes `levels` levels a side around its fair value at every requote (every tick of
    the clock; :meth:`ladder`), each side refilled at a rate after a sweep
    (:attr:`depth`).

    A maker has finite capital and can itself be liquidated, or auto-deleveraged; then
    it responds as ``config.adl_response`` says (the module docstring). A subclass
    (named in a scenario's ``agent_classes`` and ``makers.agent``) is built as
    ``cls(model, config)`` and quotes what its :meth:`ladder` returns.
    """

    def __init__(self, model: MarketModel, config: MakerConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)
        self.rehedge = 0.0
        """Base units (signed: + buy) it trades at the next step to win back inventory
        ADL closed; 0 when it has none to."""
        self.withdrawn_until = -math.inf
        """[model time, in steps, as ``model.now``] The time up to which (inclusive) it
        quotes its withdrawn ladder; −inf: never withdrawn."""
        self.depth = DepthRefill(config.refill_seconds)
        """Its book's refill after a sweep (``refill_seconds``): per side, the share of
        its depth it posts."""
        self.hedge = StrategyBook()
        """A ``hedged`` maker's spot held outside the exchange (base units, signed) and what
        it has cost and returned (USD)."""
        self.naked = 0.0
        """Base units of the hedge that ADL left without inventory against it and the
        maker has not answered yet (signed as the hedge)."""
        self.spot_flow = 0.0
        """This step's spot trades of the hedge, USD (+ bought, − sold)."""

    @property
    def hedge_pnl(self) -> float:
        """The outside hedge's P&L at the index, USD (0 for a maker without one)."""
        return self.hedge.pnl(self.model.index)

    def hedge_now(self) -> None:
        """Trade spot at the index to bring the hedge to −inventory + :attr:`naked` (a
        ``"close_hedge"`` maker first answers ADL by setting naked to 0); records the
        trade as :attr:`spot_flow`. Nothing for a maker without a hedge."""
        self.spot_flow = 0.0
        if not self.config.hedged:
            return
        if self.config.adl_response == "close_hedge":
            self.naked = 0.0
        trade = self.naked - self.model.exchange.position(self.account) - self.hedge.position
        if trade != 0.0:
            self.spot_flow = self.hedge.trade(trade, self.model.index)

    def ladder(self) -> np.ndarray:
        """The ladder to quote now: a (2, n) array of signed quantities (+ bid, − ask;
        base units) over prices (USD), nearest first; :func:`ladder_for` of the maker's
        config, withdrawn (wider by ``adl_withdraw_spread``, ``adl_withdraw_depth`` of
        the depth) up to :attr:`withdrawn_until`, each side's quantities times its
        the share of its depth :attr:`depth` posts. Override it to quote otherwise."""
        cfg = self.config
        if self.model.now <= self.withdrawn_until:
            full = ladder_for(self.model, self.account, cfg, widen=cfg.adl_withdraw_spread,
                              thin=cfg.adl_withdraw_depth)
        else:
            full = ladder_for(self.model, self.account, cfg)
        return self.depth.scale(full)

    def quote(self) -> None:
        """Replace all quotes with a fresh ladder, refilled (:meth:`quote_all` of one)."""
        MarketMaker.quote_all(self.model, [self])

    def deleveraged(self, change: float) -> None:
        """ADL changed its position by `change` (base units, signed) in the step just run:
        a ``"rehedge"`` maker will trade ``adl_rehedge_share`` of it back at the next
        step (:meth:`rehedge_all`); a ``"withdraw"`` maker quotes its withdrawn ladder at
        every requote up to ``adl_withdraw_minutes`` of model time from now, and at least
        at its next (:attr:`withdrawn_until`). Worked example: one-minute steps, ADL at
        step 100 (now 100), 30 minutes: withdrawn until 130, the requotes of steps 101 to 130;
        in ticks of 5 s, the 360 requotes after it."""
        cfg, model = self.config, self.model
        if cfg.hedged:
            self.naked += change  # ADL bought back a short (+): a long hedge stands alone
        if cfg.adl_response == "rehedge":
            self.rehedge -= cfg.adl_rehedge_share * change
        elif cfg.adl_response == "withdraw":
            # A withdrawal shorter than the tick still answers the ADL, at the next requote.
            minutes = max(cfg.adl_withdraw_minutes, model.tick_minutes)
            self.withdrawn_until = model.now + minutes / model.step_minutes

    @staticmethod
    def quote_all(model: MarketModel, makers: Sequence[MarketMaker]) -> None:
        """Every one of `makers` (perhaps none) replaces its quotes with its
        :meth:`ladder`, in turn, in one exchange call, its depth refilled at its rate
        (:func:`requote`)."""
        requote(model, [(maker.account, maker.depth, maker.ladder) for maker in makers])

    @staticmethod
    def rehedge_all(model: MarketModel, makers: Sequence[MarketMaker]) -> None:
        """Those of `makers` with a :attr:`rehedge` to trade send it as market orders, in
        turn, in one exchange call, each up to :data:`REHEDGE_SLIPPAGE` from the index
        (its own quotes are skipped); what is not filled, or what margin cannot cover,
        is dropped. Each one's :attr:`rehedge` is then 0."""
        hedgers = [maker for maker in makers if maker.rehedge != 0.0]
        if not hedgers:
            return
        quantities = np.array([maker.rehedge for maker in hedgers])
        limits = model.index * (1.0 + np.sign(quantities) * REHEDGE_SLIPPAGE)
        filled = model.exchange.market_orders([maker.account for maker in hedgers],
                                              quantities, limits)
        for maker, traded in zip(hedgers, filled.tolist(), strict=True):
            maker.rehedge = 0.0
            if maker.config.hedged:
                maker.naked += traded  # the perp leg re-opened: that much hedged again

    @staticmethod
    def hedge_all(makers: Sequence[MarketMaker]) -> float:
        """Each of `makers` brings its outside hedge up to date (:meth:`hedge_now`);
        returns their spot flow, USD."""
        flow = 0.0
        for maker in makers:
            maker.hedge_now()
            flow += maker.spot_flow
        return flow

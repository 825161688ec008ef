"""Market makers: a ladder of quotes around the index, thinning as volatility rises."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import mesa
import numpy as np

from perpabm.compiled import kernel
from perpabm.config.scenario import MakerConfig

if TYPE_CHECKING:
    from perpabm.agents.protocols import MarketModel


NO_ORDERS = np.empty((2, 0))
MIN_VOL_WINDOW = 2  # steps: the fewest log returns a volatility is taken over


def quote_ladders(model: MarketModel, quoters: Sequence[tuple[int, MakerConfig]]) -> None:
    """Each (account, config) of `quoters` in turn replaces its quotes with its ladder
    (:func:`ladder_for`), all in one exchange call (:func:`post_ladders`)."""
    if quoters:
        post_ladders(model, [account for account, _ in quoters],
                     [ladder_for(model, account, config) for account, config in quoters])


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


def ladder_for(model: MarketModel, account: int, config: MakerConfig) -> np.ndarray:
    """The ladder `account` quotes now, as `config` says (:func:`ladder`): none if its
    equity is gone.

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
    if equity <= 0.0:
        return NO_ORDERS
    limit = config.inventory_limit * equity * ex.config.max_leverage / index
    inventory = ex.position(account)
    sigma = model.history.realised_volatility(
        max(MIN_VOL_WINDOW, round(config.vol_window_minutes / model.step_minutes)))
    if math.isnan(sigma):  # not a full window yet
        sigma = config.calm_volatility
    stress = 1.0 + config.withdrawal * max(sigma / config.calm_volatility - 1.0, 0.0)
    fair = index * (1.0 - config.inventory_skew * inventory / limit)
    return ladder(fair, stress, config.depth / stress / index, inventory, limit,
                  config.half_spread, config.level_spacing, config.levels)


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


class MarketMaker(mesa.Agent):
    """Quotes `levels` levels a side around its fair value, every step (:meth:`ladder`).

    A maker has finite capital and can itself be liquidated. A subclass (named in a
    scenario's ``agent_classes`` and ``makers.agent``) is built as ``cls(model,
    config)`` and quotes what its :meth:`ladder` returns.
    """

    def __init__(self, model: MarketModel, config: MakerConfig) -> None:
        super().__init__(model)
        self.config = config
        self.account = model.exchange.open_account(config.capital)

    def ladder(self) -> np.ndarray:
        """The ladder to quote now: a (2, n) array of signed quantities (+ bid, − ask;
        base units) over prices (USD), nearest first; :func:`ladder_for` of the maker's
        config. Override it to quote otherwise."""
        return ladder_for(self.model, self.account, self.config)

    def quote(self) -> None:
        """Replace all quotes with a fresh ladder."""
        post_ladders(self.model, [self.account], [self.ladder()])

    @staticmethod
    def quote_all(model: MarketModel, makers: Sequence[MarketMaker]) -> None:
        """Every one of `makers` (perhaps none) replaces its quotes with its
        :meth:`ladder`, in turn, in one exchange call."""
        post_ladders(model, [maker.account for maker in makers],
                     [maker.ladder() for maker in makers])

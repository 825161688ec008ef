"""ExchangeConfig: the rules of one venue's perpetual, validated on construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Self

from perpabm import adl, mechanics
from perpabm.config.checks import (
    absent_or_in_range,
    applies,
    boolean,
    choice,
    in_range,
    named_code,
    require,
    text,
)
from perpabm.errors import ConfigError, closest, one_of

WATERFALL_STAGES = ("book", "backstop", "insurance_fund", "adl")
ADL_ALLOCATIONS = ("queue", "pro_rata", "socialized_loss", *adl.PROFIT_ALLOCATIONS)
ADL_PRICES = ("bankruptcy", "mark", "previous_mark", "mark_while_fund_pays")
ADL_TRIGGERS = ("unfilled", "negative_equity")
BACKSTOP_PRICES = ("bankruptcy", "mark")
BACKSTOP_TAKEOVERS = ("position", "account")
SURPLUS_DESTINATIONS = ("insurance_fund", "account")
MARK_RULES = ("index", "index_ema_basis", "median")


def _check_tiers(path: str, tiers: Any) -> tuple[tuple[float, float], ...]:
    """Maintenance-margin tiers as ((notional_floor, mmr), ...) floats, checked by the one
    tier-table check (:func:`perpabm.mechanics.tier_table`)."""
    applies(path, mechanics.TIER_TABLE_RULES)
    if isinstance(tiers, Set | Mapping):  # a set has no order, a mapping no pairs
        raise ConfigError(f"{path} must be a float mmr or a non-empty sequence of "
                          f"(notional_floor, mmr) pairs; got {tiers!r}")
    try:
        floors, mmrs, _ = mechanics.tier_table(tiers, path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return tuple(zip(floors.tolist(), mmrs.tolist(), strict=True))


def _check_waterfall(path: str, stages: Any) -> tuple[str, ...]:
    """The liquidation stages as a tuple: known names, each once, in the order of
    :data:`WATERFALL_STAGES`, ending with ADL, the last resort."""
    is_list = (not isinstance(stages, str | bytes | Set | Mapping)  # a set has no order
               and isinstance(stages, Iterable))
    listed = tuple(stages) if is_list else ()
    require(path, "a list of stage names", is_list and all(isinstance(s, str) for s in listed),
            f"{path} must be a list of stage names, in the order "
            f"{', '.join(WATERFALL_STAGES)}; got {stages!r}")
    for k, s in enumerate(listed):
        choice(f"{path}[{k}]", s, WATERFALL_STAGES)
    require(path, "no stage twice", len(set(listed)) == len(listed),
            f"{path} names a stage twice: {list(listed)}")
    order = [WATERFALL_STAGES.index(s) for s in listed]
    require(path, f"in the order {', '.join(WATERFALL_STAGES)}", order == sorted(order),
            f"{path} must keep the order book, backstop, insurance_fund, adl; "
            f"got {list(listed)}")
    require(path, 'ending with "adl"', "adl" in listed,
            f"{path} must end with 'adl', the last resort; got {list(listed)}")
    return listed


def _check_rules(path: str, rules: Any) -> tuple[tuple[str, Any], ...]:
    """Custom ADL ranking rules as (name, function or "package.module:function") pairs."""
    return named_code(
        path, rules, 'absent, or a table of name = "package.module:function", no name a '
        'built-in rule\'s', table="rule names to functions or to 'package.module:function' "
        "paths", builtins=adl.BUILTIN_RULES, builtin="ADL rule",
        is_code=lambda fn: callable(fn) or adl.is_import_path(fn),
        code="a function fn(size, entry_price, mark_price, collateral, mmr, rng) or a "
             "'package.module:function' path", check_name=_rule_name, twice="rule")


def _rule_name(path: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path} must be non-empty strings; got {name!r}")


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Rules of one linear, USD-margined perpetual on one venue.

    Money is in USD, quantities in base-asset units, fees and margin rates as
    fractions of notional, durations in minutes (converted to the exchange's time
    unit, the model's step).

    Liquidation waterfall: an account whose equity at the mark price falls
    below its maintenance margin is liquidated through ``waterfall``, an ordered
    subset of the stages

    - ``"book"``: liquidation orders walk the order book, never at a price worse
      than the account's bankruptcy price, large positions in slices;
    - ``"backstop"``: the registered backstop (a vault) may take over the rest of
      the position; at the bankruptcy price it takes the account's remaining
      margin with it. With ``backstop_takeover = "account"`` (Hyperliquid's
      liquidator vault) it takes the position at the mark together with the
      account's remaining collateral, and only from an account whose equity is
      not negative: a bankrupt account goes on to the next stage;
    - ``"insurance_fund"``: the fund closes the rest in the book beyond the
      bankruptcy price, paying the difference, while it has money; it also pays
      any deficit left on the account. A drawdown trigger (Bybit, OKX) can stop
      it early. With ``fund_takeover`` (Binance) it takes the rest over instead,
      at the bankruptcy price into its own margin account, up to
      ``fund_max_position`` × its balance of net notional, and offloads it
      through the book over time;
    - ``"adl"``: what is still open is closed against opposite-side positions,
      ranked by ``adl_rule`` (:func:`perpabm.adl.score`) and allocated by
      ``adl_allocation``. Each counterparty is first closed only as far as its
      own equity pays for the price it is closed at, so solvent winners are not
      made bankrupt while solvent capacity is left; accounts that are bankrupt
      themselves (score −inf) and ``adl_exempt`` accounts come last.

    Prices and funding (used by the market model, not the engine itself): the
    mark follows ``mark_rule``; funding is the average premium of mark over
    index, capped, paid every ``funding_interval_minutes``.

    Deficits on flat accounts (a counterparty closed beyond its equity) are paid
    by the insurance fund; under socialised loss the rest is spread per open
    unit; what is still owed stays on the account as bad debt, logged as a
    ``"bad_debt"`` event and summed by :attr:`Exchange.bad_debt`. Resting
    orders whose makers could no longer pay for their fill (a bid left above a
    falling mark) are skipped and cancelled, as venues cancel orders their
    owners cannot margin. ``docs/venues.md`` states each venue's rules with
    their sources.
    """

    name: str = "custom"
    """The venue's name: a preset's, or a label of your own."""
    max_leverage: float = 20.0
    """[notional ÷ equity] The highest leverage: the initial margin of a position, and of
    resting orders beyond it, is notional / max_leverage."""
    mm_tiers: tuple[tuple[float, float], ...] = ((0.0, 0.005),)
    """[(USD, fraction of notional) pairs] Maintenance margin tiers, as (notional floor,
    rate) pairs: a position's maintenance margin is its notional at the mark × the rate
    of the highest floor it reaches, less that tier's maintenance amount, which keeps
    it continuous (``docs/mechanics.md``, "A tier table")."""
    taker_fee: float = 0.0005
    """[fraction of notional] Fee on the fills of market orders, paid by the taker.
    Liquidation and insurance-fund orders pay none."""
    maker_fee: float = 0.0002
    """[fraction of notional] Fee on the fills of resting orders, paid by their maker;
    negative: a rebate."""
    liquidation_fee: float = 0.0
    """[fraction of liquidated notional] Charged on each liquidation order's fills in the
    book, to the insurance fund, capped at the account's remaining equity at the
    mark."""
    insurance_fund: float = 0.0
    """[USD] The insurance fund's balance at the start."""
    insurance_fund_ratio: float = 0.0
    """[fraction of open-interest notional] The fund scaled to the market it insures, as
    venues publish it (fund ÷ open interest; the presets' values and their sources are
    in ``docs/venues.md``, "Insurance funds"): a model path tops the fund up, at the end
    of each step, to this share of the open interest at the mark (a "fund_deposit"
    event), until the fund is first drawn on — it pays a deficit or a gap, takes a
    position over, or the waterfall passes beyond it (ADL, socialised loss, bad debt) —
    so that it stands at about that share when a stress begins. On top of
    ``insurance_fund``; 0: no top-up."""
    waterfall: tuple[str, ...] = ("book", "insurance_fund", "adl")
    """The stages a liquidation runs through, in order: ``"book"`` (liquidation orders
    in the book), ``"backstop"`` (the vault takes over), ``"insurance_fund"`` (the fund
    closes the rest, paying the gap) and ``"adl"`` (closed against opposite
    positions)."""
    partial_liquidation: bool = False
    """Whether a liquidation stops once the account is back above maintenance margin:
    after any liquidation order in the book or any stage."""
    liquidation_slice_fraction: float = 1.0
    """[fraction of the position] Size of each liquidation order of a sliced position,
    as a share of the position when the book stage starts."""
    liquidation_slice_min_notional: float = 0.0
    """[USD] Positions whose notional at the mark is above this go to the book in slices
    of ``liquidation_slice_fraction``; smaller ones as one order."""
    liquidation_slice_cooldown_seconds: float = 0.0
    """[seconds] A partial liquidation's cooldown: a sliced position (above
    ``liquidation_slice_min_notional``) sends one slice of ``liquidation_slice_fraction``
    to the book, and for this long after, the account's liquidation orders are for its
    whole position; once it has passed, the next liquidation is partial again. A mark
    update sends one slice an account: if it leaves the account below maintenance, it
    waits for the next mark, and so do the stages that would close the rest at once (the
    insurance fund, ADL on ``"unfilled"``); the backstop and ADL on
    ``"negative_equity"`` act as their triggers say. A slice the book cannot fill within
    the bankruptcy price hands the rest on at once. Worked example, 30 s: a long of 100
    sends 20; at a mark 3 s later, still liquidatable, the 80; with marks a minute apart
    the cooldown is over at each, and 20, 16, 12.8 … go. 0: every slice in the same
    update, one after the other. Hyperliquid: 30 (its "Liquidations" page)."""
    surplus_to: str = "insurance_fund"
    """Where the collateral a liquidated account has left after a full close goes: to the
    ``"insurance_fund"``, or it stays in the ``"account"``."""
    backstop_trigger: float = 1.0
    """[fraction of maintenance margin] The backstop stage offers the position to the
    backstop only once the account's equity is below backstop_trigger × its
    maintenance margin."""
    backstop_price: str = "bankruptcy"
    """The price the backstop takes a position over at: ``"bankruptcy"``, or ``"mark"``
    while the account's equity is not negative (else the bankruptcy price). Used by
    ``backstop_takeover = "position"`` only."""
    backstop_takeover: str = "position"
    """What the backstop takes over from an account below ``backstop_trigger``:
    ``"position"``, the rest of its position at ``backstop_price``, whatever its equity
    (a bankrupt account's deficit is the backstop's to bear); or ``"account"``
    (Hyperliquid's liquidator vault), the position at the mark together with the
    account's remaining collateral, which leaves it flat with nothing, and only while
    its equity at the mark is not negative: a bankrupt account is not taken over and
    goes on to the next stage (ADL). A partial takeover moves the same share of the
    position and of the equity. The backstop's account lives under the same margin
    rules as every other: it is liquidated, and auto-deleveraged as the losing side,
    like any account."""
    fund_max_slippage: float = 0.05
    """[fraction of the mark] How far from the mark the insurance fund's closing orders
    may walk the book."""
    fund_drawdown_trigger: float | None = None
    """[fraction of peak balance] The insurance fund stops paying once its balance is this
    far below its peak within ``fund_drawdown_window`` (Bybit, OKX), handing over to ADL
    early; absent: it pays while it has money."""
    fund_drawdown_window: float = 480.0
    """[minutes] How far back the peak balance of ``fund_drawdown_trigger`` is taken."""
    fund_takeover: bool = False
    """Whether the insurance-fund stage takes the rest of the position over (Binance: "the
    Futures Insurance Funds will take over Bankrupt Positions") instead of closing it in
    the book: at the account's bankruptcy price, into the fund's own margin account
    (account 0, opened with the fund's balance), which then holds it with its own P&L and
    offloads it through the book over time (:meth:`Exchange.unwind_insurance_fund`,
    ``fund_unwind_rate``). The fund's balance is that account's equity at the mark. It
    takes nothing once ``fund_drawdown_trigger`` has fired, nor beyond
    ``fund_max_position`` or what its equity above maintenance margin can pay for; the
    rest goes to the next stage (ADL). The account lives under the margin rules of every
    other (liquidated through the book and ADL, not offered to the backstop or to
    itself)."""
    fund_max_position: float = 1.0
    """[multiple of the fund's balance] Under ``fund_takeover``, the largest net notional at
    the mark the fund may hold; a takeover that would go beyond it takes only what fits
    (Binance: "by default, this is 100% the size of the insurance fund")."""
    fund_unwind_rate: float = 0.05
    """[fraction of the held position per minute] Under ``fund_takeover``, how fast the
    fund offloads what it holds through the book: each call of
    :meth:`Exchange.unwind_insurance_fund` (one per time unit; the model's is once a
    step of t minutes) sells 1 − (1 − rate)^t of it, so that (1 − rate)^t is left if it
    all fills; 0: it holds until it is liquidated or ADL'd. Binance's page says only
    "gradually" ("according to a preset algorithm"): the rate is our choice."""
    fund_unwind_slippage: float = 0.005
    """[fraction of the mark] Under ``fund_takeover``, how far from the mark the fund's
    unwind orders may walk the book; what does not fill within it waits for the next
    call."""
    adl_trigger: str = "unfilled"
    """When ADL runs: ``"unfilled"``, for whatever the earlier stages left open;
    ``"negative_equity"`` (Hyperliquid), only once the account's equity at the mark is
    negative, else the rest waits for the next mark."""
    adl_rule: str = "pnl_leverage"
    """How ADL ranks the opposite positions, highest score closed first: a built-in rule
    (``docs/venues.md``, "ADL ranking rules") or a name in ``adl_rules``."""
    adl_rules: tuple[tuple[str, Any], ...] = ()
    """Custom ADL ranking rules: a table of name = ``"package.module:function"``, the
    function fn(size, entry_price, mark_price, collateral, mmr, rng) returning one score
    per position; resolved when the exchange is built."""
    adl_allocation: str = "queue"
    """How ADL shares the quantity out: ``"queue"``, by rank, each position closed in full
    before the next; ``"pro_rata"``, in proportion to size; ``"socialized_loss"`` (Drift),
    the rest closed pro rata at the mark and the deficit spread over every other unit
    open at the bankruptcy, on both sides. In profit space (Chitra, arXiv 2512.01112),
    each winner gives up a haircut of its unrealised profit, paid through a partial close
    at the bankruptcy price (``docs/venues.md``, "Allocation in profit space"):
    ``"wealth_pro_rata"``, the same share of every winner's profit;
    ``"leverage_pro_rata"``, shares in proportion to effective leverage;
    ``"capped_pro_rata"``, the same share, at most ``adl_haircut_cap``;
    ``"smart_queue"``, by rank, each winner's whole profit until exactly the deficit is
    covered."""
    adl_haircut_cap: float = 1.0
    """[fraction of a winner's unrealised profit] Under ``adl_allocation =
    "capped_pro_rata"``, the most any winner gives up; a deficit beyond the winners'
    capped profit is left to the insurance fund, else bad debt."""
    adl_price: str = "bankruptcy"
    """The price ADL closes at: ``"bankruptcy"``, the liquidated account's, so the
    winners pay its deficit; ``"mark"``, so the deficit is left to the insurance fund,
    else bad debt; ``"previous_mark"`` (Hyperliquid), the mark before this update, the
    difference to the bankruptcy price going to the liquidated account (a surplus, then
    ``surplus_to``) or to the fund, else bad debt (a residual deficit);
    ``"mark_while_fund_pays"`` (OKX), the mark while the insurance fund can pay the
    whole deficit, else the bankruptcy price."""
    mark_rule: str = "median"
    """The mark price: ``"index"``, the oracle (dYdX, Drift); ``"index_ema_basis"``, the
    index plus an EMA of the perp's basis (BitMEX's fair price); ``"median"``, the median
    of that fair price, the book's mid and the last trade (Binance, Hyperliquid)."""
    mark_ema_minutes: float = 5.0
    """[minutes] Time constant of the EMA of the basis (book mid / index − 1) in the
    ``"index_ema_basis"`` and ``"median"`` marks: a mark update after t minutes weighs
    the newest basis 1 − exp(−t / mark_ema_minutes)."""
    mark_interval_seconds: float = 0.0
    """[seconds] How often the venue computes its mark: an index update less than this
    after the last mark update changes nothing (no mark, no liquidation, no funding
    sample), as the venue's mark keeps its own clock; 0: a new mark at every update.
    Hyperliquid: 3, as often as its validators publish the oracle price ("Oracle")."""
    funding_interval_minutes: float = 480.0
    """[minutes] How often funding is paid, rounded to whole steps (at least one)."""
    funding_cap: float = 0.0075
    """[fraction of notional per payment] Bound on the funding rate, the mean premium
    (mark / index − 1) over the interval, clamped to ±funding_cap; each position pays
    rate × size × mark (longs pay shorts when the rate is positive)."""
    debug: bool = False
    """Check the exchange's invariants (money and open interest conserved) after every
    operation; slower. ``run.debug`` turns it on too."""
    description: str = field(default="", compare=False)
    """One line on the venue's rules (not compared: two configs that differ only in it
    are equal)."""

    def __post_init__(self) -> None:
        p = "exchange"
        set_ = object.__setattr__
        text(f"{p}.name", self.name)
        set_(self, "max_leverage", in_range(f"{p}.max_leverage", self.max_leverage, 1.0,
                                                high_open=True))
        set_(self, "mm_tiers", _check_tiers(f"{p}.mm_tiers", self.mm_tiers))
        initial_rate = 1.0 / self.max_leverage
        require(f"{p}.mm_tiers", "the first rate ≤ 1/max_leverage",
                self.mm_tiers[0][1] <= initial_rate,
                f"{p}.mm_tiers[0].mmr ({self.mm_tiers[0][1]:g}) must not exceed the initial "
                f"margin rate 1/max_leverage ({initial_rate:g})")
        set_(self, "taker_fee", in_range(f"{p}.taker_fee", self.taker_fee, 0.0, 0.1))
        set_(self, "maker_fee", in_range(f"{p}.maker_fee", self.maker_fee, -0.01, 0.1))
        require(f"{p}.maker_fee", "≥ −taker_fee", self.maker_fee >= -self.taker_fee,
                f"{p}.maker_fee rebate ({self.maker_fee:g}) must not exceed taker_fee "
                f"({self.taker_fee:g}), or every trade would create money")
        set_(self, "liquidation_fee", in_range(f"{p}.liquidation_fee", self.liquidation_fee,
                                                   0.0, 0.5))
        set_(self, "insurance_fund", in_range(f"{p}.insurance_fund", self.insurance_fund, 0.0,
                                                  high_open=True))
        set_(self, "insurance_fund_ratio", in_range(f"{p}.insurance_fund_ratio",
                                                    self.insurance_fund_ratio, 0.0,
                                                    high_open=True))
        set_(self, "waterfall", _check_waterfall(f"{p}.waterfall", self.waterfall))
        boolean(f"{p}.partial_liquidation", self.partial_liquidation)
        set_(self, "liquidation_slice_fraction", in_range(
            f"{p}.liquidation_slice_fraction", self.liquidation_slice_fraction, 0.0, 1.0,
            low_open=True))
        set_(self, "liquidation_slice_min_notional", in_range(
            f"{p}.liquidation_slice_min_notional", self.liquidation_slice_min_notional, 0.0))
        set_(self, "liquidation_slice_cooldown_seconds", in_range(
            f"{p}.liquidation_slice_cooldown_seconds", self.liquidation_slice_cooldown_seconds,
            0.0, high_open=True))
        choice(f"{p}.surplus_to", self.surplus_to, SURPLUS_DESTINATIONS)
        set_(self, "backstop_trigger", in_range(f"{p}.backstop_trigger",
                                                    self.backstop_trigger, 0.0, 1.0,
                                                    low_open=True))
        choice(f"{p}.backstop_price", self.backstop_price, BACKSTOP_PRICES)
        choice(f"{p}.backstop_takeover", self.backstop_takeover, BACKSTOP_TAKEOVERS)
        set_(self, "fund_max_slippage", in_range(f"{p}.fund_max_slippage",
                                                     self.fund_max_slippage, 0.0, 1.0,
                                                     high_open=True))
        set_(self, "fund_drawdown_trigger", absent_or_in_range(
            f"{p}.fund_drawdown_trigger", self.fund_drawdown_trigger, 0.0, 1.0,
            low_open=True, high_open=True))
        set_(self, "fund_drawdown_window", in_range(f"{p}.fund_drawdown_window",
                                                        self.fund_drawdown_window, 0.0,
                                                        low_open=True))
        boolean(f"{p}.fund_takeover", self.fund_takeover)
        set_(self, "fund_max_position", in_range(f"{p}.fund_max_position",
                                                 self.fund_max_position, 0.0, high_open=True))
        set_(self, "fund_unwind_rate", in_range(f"{p}.fund_unwind_rate",
                                                self.fund_unwind_rate, 0.0, 1.0))
        set_(self, "fund_unwind_slippage", in_range(f"{p}.fund_unwind_slippage",
                                                    self.fund_unwind_slippage, 0.0, 1.0,
                                                    high_open=True))
        choice(f"{p}.adl_trigger", self.adl_trigger, ADL_TRIGGERS)
        set_(self, "adl_rules", _check_rules(f"{p}.adl_rules", self.adl_rules))
        choice(f"{p}.adl_rule", self.adl_rule, adl.BUILTIN_RULES,
               more=tuple(name for name, _ in self.adl_rules), more_are="a name in adl_rules")
        choice(f"{p}.adl_allocation", self.adl_allocation, ADL_ALLOCATIONS)
        set_(self, "adl_haircut_cap", in_range(f"{p}.adl_haircut_cap", self.adl_haircut_cap,
                                               0.0, 1.0, low_open=True))
        choice(f"{p}.adl_price", self.adl_price, ADL_PRICES)
        choice(f"{p}.mark_rule", self.mark_rule, MARK_RULES)
        set_(self, "mark_ema_minutes", in_range(f"{p}.mark_ema_minutes", self.mark_ema_minutes,
                                                0.0, 1e5, low_open=True))
        set_(self, "mark_interval_seconds", in_range(f"{p}.mark_interval_seconds",
                                                     self.mark_interval_seconds, 0.0,
                                                     high_open=True))
        set_(self, "funding_interval_minutes", in_range(
            f"{p}.funding_interval_minutes", self.funding_interval_minutes, 0.0, 1e6,
            low_open=True))
        set_(self, "funding_cap", in_range(f"{p}.funding_cap", self.funding_cap, 0.0, 1.0))
        boolean(f"{p}.debug", self.debug)
        text(f"{p}.description", self.description)

    @classmethod
    def preset(cls, name: str) -> ExchangeConfig:
        """The rules of a named venue: binance, bitmex, hyperliquid, dydx or drift.

        See :mod:`perpabm.presets` for what each models and simplifies.
        """
        return _preset("exchange.preset", name)

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes` applied (and validated); unknown names suggest the closest."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in changes:
            if key not in names:
                raise ConfigError(f"exchange.{key} is not a setting{closest(key, names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples, None kept) for TOML/JSON."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "mm_tiers":
                value = [list(t) for t in value]
            elif f.name == "adl_rules":
                value = rules_as_paths(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "exchange") -> ExchangeConfig:
        """Build from plain values; unknown keys are errors that suggest the closest name.

        A ``preset`` key starts from that venue's rules; the other keys override them.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path} must be a table of settings; got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        data = dict(data)
        base = _preset(f"{path}.preset", data.pop("preset")) if "preset" in data else cls()
        for key in data:
            if key not in names:
                raise ConfigError(f"{path}.{key} is not a setting{closest(key, names)}")
        return dataclasses.replace(base, **data)


def rules_as_paths(rules: tuple[tuple[str, Any], ...]) -> dict[str, str]:
    """Custom code as TOML and JSON write it — ADL rules, and agent classes too: name →
    ``"package.module:name"`` (a function or class given as itself is written as where
    it is defined)."""
    return {name: fn if isinstance(fn, str) else adl.code_label(fn) for name, fn in rules}


def _preset(path: str, name: Any) -> ExchangeConfig:
    """The preset called `name`; ConfigError naming `path` and the choices otherwise."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(one_of(path, name, PRESETS))
    return PRESETS[name]()


# --------------------------------------------------------------------------- venue presets
#
# The rules of real exchanges, for one BTC perpetual. They are defined here, beside the
# class, because ExchangeConfig.preset and the "preset" key of a scenario need them;
# perpabm.presets is their public module.
def binance() -> ExchangeConfig:
    """Binance USDⓈ-M BTCUSDT.

    Models: tiered maintenance margin in Binance's (floor, rate, cumulative
    amount) form; liquidation orders go to the book as IOC at the bankruptcy
    price; a liquidation clearance fee of 0.3% of notional (the historic BTCUSDT
    figure) and the rest of a liquidated account's margin go to the insurance
    fund; what the book does not take, the fund closes; when it cannot, ADL
    closes the rest in queue order by PnL% × margin ratio at the bankruptcy
    price, with no fee (Binance FAQ 360033525471, 360033525271).

    The insurance fund takes over what the book leaves, as FAQ 360033525371
    ("Insurance Fund") describes it (``fund_takeover``): the bankrupt position moves
    at its bankruptcy price into the fund's own account, which holds it with its own
    P&L and offloads it "gradually" through the book, accepting no more than its
    maximum net notional, "by default ... 100% the size of the insurance fund"
    (``fund_max_position = 1.0``); the rest goes to ADL. The fund starts at 4.3% of
    open interest (``insurance_fund_ratio``): the shared BTC/ETH/BNB USDⓈ-M fund
    held about 1.23B USD on 2025-10-10 (Binance Square, Binance's own post on the
    day), against about 16B USD of BTC and 12.8B USD of ETH futures open interest on
    Binance (CoinDesk, 2025-10-15; CryptoQuant, 2025-08): 1.23 / 28.8 = 0.043.

    Chosen where the FAQ is silent: the unwind rate (``fund_unwind_rate``, 5% of
    the holding a minute: the page names none); the fund's share of a shared pool
    that backs one contract (the ratio counts BTC and ETH open interest, not BNB).
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
        insurance_fund_ratio=0.043,
        waterfall=("book", "insurance_fund", "adl"),
        surplus_to="insurance_fund",
        fund_takeover=True,
        fund_max_position=1.0,
        adl_trigger="unfilled",
        adl_rule="binance",
        adl_allocation="queue",
        adl_price="bankruptcy",
        mark_rule="median",
        mark_ema_minutes=5.0,
        funding_interval_minutes=480.0,
        funding_cap=0.0075,
        description="Binance USDⓈ-M: book (IOC at bankruptcy) → insurance fund takes over → "
                    "ADL queue",
    )


def bitmex() -> ExchangeConfig:
    """BitMEX XBTUSD-style linear perpetual.

    Models: the liquidation engine takes the position at the bankruptcy price
    and closes it in the book; what it gets better than bankruptcy goes to the
    insurance fund (the whole maintenance margin is forfeited); when the fund is
    depleted, ADL closes the rest in queue order by PnL% × effective leverage,
    longs and shorts ranked separately, at the bankruptcy price (BitMEX
    auto-deleveraging pages).

    The fund starts at 0.88 × open interest (``insurance_fund_ratio``): BitMEX's
    own "Insurance Fund Coverage" (fund ÷ open interest) in its post "Upcoming
    changes to our Insurance Fund" (after 2025-10-10), which puts Binance at 0.11
    and Bybit at 0.07; in February 2020 it was about 0.21 (320M USD against more
    than 1.5B USD of open interest, Skew's figures).

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
        insurance_fund_ratio=0.88,
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
    positions above 100k USDC as a partial liquidation: 20% of the position, and
    for the 30-second cooldown after it, orders for the whole position
    (``liquidation_slice_cooldown_seconds = 30``; "after a block where any position of
    a user is partially liquidated, there is a cooldown period of 30 seconds. During
    this cooldown period, all market liquidation orders for that user will be for the
    entire position"), stopping once the account is back above maintenance margin;
    once equity < 2/3 of maintenance margin, and while it is not negative, the
    liquidator vault takes over the account's positions together with its remaining
    collateral, at the mark (``backstop_takeover = "account"``; the maintenance margin
    is not returned to the user); the vault's account lives under the same margin rules and can go
    bankrupt itself; ADL runs on any account whose value is negative — a trader's
    or the liquidator's — in queue order by (mark/entry)·(notional/account value),
    closing at the previous oracle price, the difference to the bankruptcy price
    going to the liquidated account (Hyperliquid docs: "Liquidations",
    "Auto-deleveraging", "Margining", "Margin tiers"). There is no insurance fund
    in the waterfall: the vault is the backstop. The mark is computed every 3
    seconds (``mark_interval_seconds = 3``), as often as the validators publish the
    oracle price it is built on ("Oracle": "every 3 seconds").

    Chosen where the docs are silent: the mark moves only when the oracle does (its
    book part is not recomputed in between); "previous oracle price" is read as the
    mark before this update (``adl_price = "previous_mark"``), and what that price leaves
    short of the bankruptcy price is bad debt on the liquidated account, as there is
    no fund to pay it (the venue reported none on 2025-10-10); the sort index for
    shorts mirrors the long one. Whether the liquidator shares its collateral
    with HLP's market making is the vault's setting (``vault.liquidator_share``).
    ``backstop_takeover = "position"`` with ``adl_price = "bankruptcy"`` gives the
    earlier reading, in which the vault takes bankrupt accounts over at their
    bankruptcy price and pays their deficit.
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
        liquidation_slice_cooldown_seconds=30.0,
        surplus_to="account",
        backstop_trigger=2.0 / 3.0,
        backstop_price="bankruptcy",
        backstop_takeover="account",
        adl_trigger="negative_equity",
        adl_rule="hyperliquid",
        adl_allocation="queue",
        adl_price="previous_mark",
        mark_rule="median",
        mark_ema_minutes=2.5,
        mark_interval_seconds=3.0,
        funding_interval_minutes=60.0,
        funding_cap=0.04,
        description="Hyperliquid: book (sliced) → liquidator vault takes the account over → "
                    "ADL on negative equity at the previous mark",
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

    The fund starts at 0.25% of open interest (``insurance_fund_ratio``): the
    community proposal "Seed Insurance Fund" (dYdX forum, December 2023) found 3,997
    USDC in it and proposed seeding about 1M USDC, when open interest was 386M to
    449M USD (Chaos Labs, end of Season 7): 1M / 400M ≈ 0.0025. A rough figure: the
    two are months apart, and later balances are not published in one place.

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
        insurance_fund_ratio=0.0025,
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

    The fund starts at 4% of open interest (``insurance_fund_ratio``): about 20M USD
    staked in Drift's insurance fund vaults (April 2026) against 392M to 516M USD of
    open interest (DefiLlama; November 2025): 0.039 to 0.051.

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
        insurance_fund_ratio=0.04,
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
    return _preset("exchange.preset", name)


def names() -> tuple[str, ...]:
    """Names of the bundled venue presets."""
    return tuple(PRESETS)


"""Bad-input tests: every invalid parameter is rejected with a one-line message that
names the field, and a rejected Exchange call leaves the engine state unchanged.

Configs raise :class:`perpabm.ConfigError`; engine calls raise ``ValueError``
(:class:`perpabm.MarginError`, a subclass, for margin breaches).
"""

import dataclasses
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from perpabm import ConfigError, Exchange, ExchangeConfig, MarginError, presets

NAN = math.nan
INF = math.inf


def assert_one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message, "empty error message"
    assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"
    return message


# ====================================================================== ExchangeConfig


def bad(case_id: str, field: str, suggest: str | None = None, **kwargs: Any):
    """An ExchangeConfig(**kwargs) that must fail naming exchange.<field>."""
    return pytest.param(kwargs, field, suggest, id=case_id)


CONFIG_CASES = [
    # name
    bad("name-int", "name", name=5),
    bad("name-none", "name", name=None),
    # max_leverage
    bad("max_leverage-below-1", "max_leverage", max_leverage=0.5),
    bad("max_leverage-negative", "max_leverage", max_leverage=-10.0),
    bad("max_leverage-nan", "max_leverage", max_leverage=NAN),
    bad("max_leverage-inf", "max_leverage", max_leverage=INF),
    bad("max_leverage-str", "max_leverage", max_leverage="20"),
    bad("max_leverage-bool", "max_leverage", max_leverage=True),
    # mm_tiers
    bad("mm_tiers-mmr-zero", "mm_tiers", mm_tiers=((0.0, 0.0),)),
    bad("mm_tiers-mmr-negative", "mm_tiers", mm_tiers=((0.0, -0.01),)),
    bad("mm_tiers-mmr-one", "mm_tiers", max_leverage=1.0, mm_tiers=((0.0, 1.0),)),
    bad("mm_tiers-mmr-above-one", "mm_tiers", mm_tiers=((0.0, 0.005), (1e6, 1.5))),
    bad("mm_tiers-scalar-mmr-one", "mm_tiers", mm_tiers=1.0),
    bad("mm_tiers-mmr-above-1/max_leverage", "mm_tiers", max_leverage=50.0,
        mm_tiers=((0.0, 0.03),)),
    bad("mm_tiers-first-floor-not-0", "mm_tiers", mm_tiers=((100.0, 0.005),)),
    bad("mm_tiers-floors-descending", "mm_tiers",
        mm_tiers=((0.0, 0.005), (1e6, 0.01), (5e5, 0.02))),
    bad("mm_tiers-floors-repeated", "mm_tiers", mm_tiers=((0.0, 0.005), (0.0, 0.01))),
    bad("mm_tiers-mmr-decreasing", "mm_tiers", mm_tiers=((0.0, 0.01), (1e6, 0.005))),
    bad("mm_tiers-floor-negative", "mm_tiers", mm_tiers=((0.0, 0.005), (-1.0, 0.01))),
    bad("mm_tiers-floor-inf", "mm_tiers", mm_tiers=((0.0, 0.005), (INF, 0.01))),
    bad("mm_tiers-mmr-nan", "mm_tiers", mm_tiers=((0.0, NAN),)),
    bad("mm_tiers-empty", "mm_tiers", mm_tiers=()),
    bad("mm_tiers-not-pairs", "mm_tiers", mm_tiers=((0.0, 0.005, 1.0),)),
    bad("mm_tiers-str", "mm_tiers", mm_tiers="0.005"),
    bad("mm_tiers-none", "mm_tiers", mm_tiers=None),
    bad("mm_tiers-dict", "mm_tiers", mm_tiers={0.0: 0.005}),
    bad("mm_tiers-bool-mmr", "mm_tiers", mm_tiers=((0.0, True),)),
    # fees
    bad("taker_fee-negative", "taker_fee", taker_fee=-0.0001),
    bad("taker_fee-above-10%", "taker_fee", taker_fee=0.2),
    bad("taker_fee-nan", "taker_fee", taker_fee=NAN),
    bad("maker_fee-rebate-above-1%", "maker_fee", maker_fee=-0.02),
    bad("maker_fee-rebate-exceeds-taker_fee", "maker_fee", taker_fee=0.0002, maker_fee=-0.0005),
    bad("maker_fee-bool", "maker_fee", maker_fee=False),
    bad("liquidation_fee-negative", "liquidation_fee", liquidation_fee=-0.01),
    bad("liquidation_fee-above-50%", "liquidation_fee", liquidation_fee=0.6),
    bad("liquidation_fee-str", "liquidation_fee", liquidation_fee="0.01"),
    # insurance_fund
    bad("insurance_fund-negative", "insurance_fund", insurance_fund=-1.0),
    bad("insurance_fund-inf", "insurance_fund", insurance_fund=INF),
    bad("insurance_fund-nan", "insurance_fund", insurance_fund=NAN),
    bad("insurance_fund_ratio-negative", "insurance_fund_ratio", insurance_fund_ratio=-0.05),
    bad("insurance_fund_ratio-nan", "insurance_fund_ratio", insurance_fund_ratio=NAN),
    bad("insurance_fund_ratio-inf", "insurance_fund_ratio", insurance_fund_ratio=INF),
    # waterfall
    bad("waterfall-out-of-order", "waterfall", waterfall=("insurance_fund", "book", "adl")),
    bad("waterfall-adl-not-last", "waterfall", waterfall=("adl", "book")),
    bad("waterfall-duplicated", "waterfall", waterfall=("book", "book", "adl")),
    bad("waterfall-missing-adl", "waterfall", waterfall=("book", "insurance_fund")),
    bad("waterfall-empty", "waterfall", waterfall=()),
    bad("waterfall-unknown-stage", "waterfall", "backstop",
        waterfall=("book", "backstp", "adl")),
    bad("waterfall-bare-str", "waterfall", waterfall="adl"),
    bad("waterfall-set-has-no-order", "waterfall", waterfall={"book", "adl"}),
    bad("waterfall-non-str-stage", "waterfall", waterfall=("book", 3, "adl")),
    bad("waterfall-none", "waterfall", waterfall=None),
    # partial liquidation and slices
    bad("partial_liquidation-int", "partial_liquidation", partial_liquidation=1),
    bad("partial_liquidation-str", "partial_liquidation", partial_liquidation="yes"),
    bad("liquidation_slice_fraction-zero", "liquidation_slice_fraction",
        liquidation_slice_fraction=0.0),
    bad("liquidation_slice_fraction-above-1", "liquidation_slice_fraction",
        liquidation_slice_fraction=1.5),
    bad("liquidation_slice_min_notional-negative", "liquidation_slice_min_notional",
        liquidation_slice_min_notional=-1.0),
    bad("liquidation_slice_min_notional-nan", "liquidation_slice_min_notional",
        liquidation_slice_min_notional=NAN),
    bad("liquidation_slice_cooldown_seconds-negative", "liquidation_slice_cooldown_seconds",
        liquidation_slice_cooldown_seconds=-1.0),
    bad("liquidation_slice_cooldown_seconds-nan", "liquidation_slice_cooldown_seconds",
        liquidation_slice_cooldown_seconds=NAN),
    bad("liquidation_slice_cooldown_seconds-inf", "liquidation_slice_cooldown_seconds",
        liquidation_slice_cooldown_seconds=INF),
    # surplus and backstop
    bad("surplus_to-typo", "surplus_to", "account", surplus_to="acount"),
    bad("surplus_to-none", "surplus_to", surplus_to=None),
    bad("backstop_trigger-zero", "backstop_trigger", backstop_trigger=0.0),
    bad("backstop_trigger-above-1", "backstop_trigger", backstop_trigger=1.01),
    bad("backstop_price-typo", "backstop_price", "bankruptcy", backstop_price="bankrupcy"),
    bad("backstop_takeover-typo", "backstop_takeover", "account", backstop_takeover="acount"),
    # insurance fund rules
    bad("fund_max_slippage-one", "fund_max_slippage", fund_max_slippage=1.0),
    bad("fund_max_slippage-negative", "fund_max_slippage", fund_max_slippage=-0.01),
    bad("fund_drawdown_trigger-zero", "fund_drawdown_trigger", fund_drawdown_trigger=0.0),
    bad("fund_drawdown_trigger-one", "fund_drawdown_trigger", fund_drawdown_trigger=1.0),
    bad("fund_drawdown_trigger-nan", "fund_drawdown_trigger", fund_drawdown_trigger=NAN),
    bad("fund_drawdown_trigger-bool", "fund_drawdown_trigger", fund_drawdown_trigger=False),
    bad("fund_drawdown_window-zero", "fund_drawdown_window", fund_drawdown_window=0.0),
    bad("fund_drawdown_window-negative", "fund_drawdown_window", fund_drawdown_window=-60.0),
    bad("fund_takeover-str", "fund_takeover", fund_takeover="yes"),
    bad("fund_max_position-negative", "fund_max_position", fund_max_position=-1.0),
    bad("fund_max_position-nan", "fund_max_position", fund_max_position=NAN),
    bad("fund_unwind_rate-negative", "fund_unwind_rate", fund_unwind_rate=-0.1),
    bad("fund_unwind_rate-above-1", "fund_unwind_rate", fund_unwind_rate=1.5),
    bad("fund_unwind_slippage-negative", "fund_unwind_slippage", fund_unwind_slippage=-0.01),
    # ADL
    bad("adl_trigger-unknown", "adl_trigger", "negative_equity", adl_trigger="negative-equity"),
    bad("adl_rule-typo", "adl_rule", "pnl_leverage", adl_rule="pnl_leverge"),
    bad("adl_rule-case", "adl_rule", "binance", adl_rule="Binance"),
    bad("adl_rule-int", "adl_rule", adl_rule=1),
    bad("adl_rule-not-in-adl_rules", "adl_rule", "mine", adl_rule="mien",
        adl_rules={"mine": np.abs}),
    bad("adl_rules-not-callable", "adl_rules", adl_rules={"mine": 3.0}),
    bad("adl_rules-not-a-path", "adl_rules", adl_rules={"mine": "rules.favour_whales"}),
    bad("adl_rules-builtin-name", "adl_rules", adl_rules={"profit": np.abs}),
    bad("adl_rules-empty-name", "adl_rules", adl_rules={"": np.abs}),
    bad("adl_rules-str", "adl_rules", adl_rules="mine"),
    bad("adl_rules-not-pairs", "adl_rules", adl_rules=(("mine", np.abs, 1),)),
    bad("adl_rules-twice", "adl_rules", adl_rules=(("mine", np.abs), ("mine", np.sign))),
    bad("adl_allocation-typo", "adl_allocation", "pro_rata", adl_allocation="prorata"),
    bad("adl_price-unknown", "adl_price", adl_price="last"),
    bad("adl_price-typo", "adl_price", "previous_mark", adl_price="previous-mark"),
    bad("adl_allocation-profit-typo", "adl_allocation", "smart_queue",
        adl_allocation="smart-queue"),
    bad("adl_haircut_cap-zero", "adl_haircut_cap", adl_haircut_cap=0.0),
    bad("adl_haircut_cap-above-1", "adl_haircut_cap", adl_haircut_cap=1.5),
    bad("mark_rule-typo", "mark_rule", "median", mark_rule="medain"),
    bad("mark_ema_minutes-zero", "mark_ema_minutes", mark_ema_minutes=0.0),
    bad("mark_interval_seconds-negative", "mark_interval_seconds", mark_interval_seconds=-3.0),
    bad("mark_interval_seconds-nan", "mark_interval_seconds", mark_interval_seconds=NAN),
    bad("mark_interval_seconds-inf", "mark_interval_seconds", mark_interval_seconds=INF),
    bad("funding_interval_minutes-negative", "funding_interval_minutes",
        funding_interval_minutes=-60.0),
    bad("funding_cap-above-one", "funding_cap", funding_cap=1.5),
    # flags and text
    bad("debug-int", "debug", debug=0),
    bad("debug-str", "debug", debug="false"),
    bad("description-int", "description", description=42),
]


def test_config_cases_cover_every_field():
    fields = {f.name for f in dataclasses.fields(ExchangeConfig)}
    covered = {case.values[1] for case in CONFIG_CASES}
    assert fields <= covered, f"no bad-input case for {sorted(fields - covered)}"
    assert len(CONFIG_CASES) >= 30


@pytest.mark.parametrize(("kwargs", "field", "suggest"), CONFIG_CASES)
def test_exchange_config_rejects(kwargs, field, suggest):
    with pytest.raises(ConfigError, match=re.escape(f"exchange.{field}")) as info:
        ExchangeConfig(**kwargs)
    message = assert_one_line(info.value)
    if suggest is not None:
        assert f'did you mean "{suggest}"' in message


def test_mmr_above_initial_rate_names_max_leverage():
    with pytest.raises(ConfigError, match=r"1/max_leverage") as info:
        ExchangeConfig(max_leverage=50.0, mm_tiers=((0.0, 0.03),))
    assert_one_line(info.value)


# ---------------------------------------------------------------- other ways to build one


def factory(case_id: str, build, field: str, suggest: str | None = None):
    return pytest.param(build, field, suggest, id=case_id)


FACTORY_CASES = [
    factory("preset-typo", lambda: ExchangeConfig.preset("binanse"), "exchange.preset",
            "binance"),
    factory("preset-unknown", lambda: ExchangeConfig.preset("ftx"), "exchange.preset"),
    factory("preset-not-str", lambda: ExchangeConfig.preset(["binance"]), "exchange.preset"),
    factory("presets.get-typo", lambda: presets.get("hyperliqud"), "exchange.preset",
            "hyperliquid"),
    factory("from_dict-unknown-key", lambda: ExchangeConfig.from_dict({"max_leverge": 10}),
            "exchange.max_leverge", "max_leverage"),
    factory("from_dict-unknown-key-custom-path",
            lambda: ExchangeConfig.from_dict({"adl_rul": "size"}, path="venues.a"),
            "venues.a.adl_rul", "adl_rule"),
    factory("from_dict-preset-typo", lambda: ExchangeConfig.from_dict({"preset": "bitmx"}),
            "exchange.preset", "bitmex"),
    factory("from_dict-preset-typo-custom-path",
            lambda: ExchangeConfig.from_dict({"preset": "dydy"}, path="venues.b"),
            "venues.b.preset", "dydx"),
    factory("from_dict-bad-value-over-preset",
            lambda: ExchangeConfig.from_dict({"preset": "drift", "taker_fee": -1.0}),
            "exchange.taker_fee"),
    factory("from_dict-waterfall-list-out-of-order",
            lambda: ExchangeConfig.from_dict({"waterfall": ["adl", "book"]}),
            "exchange.waterfall"),
    factory("from_dict-not-a-mapping", lambda: ExchangeConfig.from_dict([("debug", True)]),
            "exchange"),
    factory("replace-unknown-field", lambda: ExchangeConfig().replace(max_leverge=10.0),
            "exchange.max_leverge", "max_leverage"),
    factory("replace-revalidates", lambda: presets.binance().replace(max_leverage=0.0),
            "exchange.max_leverage"),
    factory("dataclasses.replace-revalidates",
            lambda: dataclasses.replace(ExchangeConfig(), adl_rule="pnl_leverge"),
            "exchange.adl_rule", "pnl_leverage"),
]


@pytest.mark.parametrize(("build", "field", "suggest"), FACTORY_CASES)
def test_config_factories_reject(build, field, suggest):
    with pytest.raises(ConfigError, match=re.escape(field)) as info:
        build()
    message = assert_one_line(info.value)
    if suggest is not None:
        assert f'did you mean "{suggest}"' in message


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(MarginError, ValueError)


@pytest.mark.parametrize("name", presets.names())
def test_valid_presets_still_build_and_round_trip(name):
    config = ExchangeConfig.preset(name)
    assert ExchangeConfig.from_dict(config.to_dict()) == config
    assert ExchangeConfig.from_dict({"preset": name}) == config


def test_numpy_numbers_are_numbers():
    config = ExchangeConfig(max_leverage=np.int64(10), taker_fee=np.float32(0.0005),
                            mm_tiers=np.float64(0.01))
    assert config == ExchangeConfig(max_leverage=10.0, taker_fee=float(np.float32(0.0005)),
                                    mm_tiers=((0.0, 0.01),))
    assert type(config.max_leverage) is float


# ====================================================================== Exchange calls

# The standard exchange (mark 100, time 10, default config: 20x, mmr 0.5%):
A, B, POOR, CLOSED = 0, 1, 2, 3  # A long 1 @ 100, B short 1 @ 100, POOR has 4 USD, CLOSED
BID, ASK = 1, 2  # A bids 1 @ 99, B asks 1 @ 101


def standard_exchange() -> Exchange:
    ex = Exchange(ExchangeConfig(), mark_price=100.0)
    assert [ex.open_account(c) for c in (1000.0, 1000.0, 4.0, 5.0)] == [A, B, POOR, CLOSED]
    ex.close_account(CLOSED)
    ex.fill(A, B, 1.0, 100.0)
    assert ex.place_limit(A, 1.0, 99.0) == BID
    assert ex.place_limit(B, -1.0, 101.0) == ASK
    ex.update_mark(100.0, time=10.0)
    return ex


def unmarked_exchange() -> Exchange:
    """Accounts as above, but no trade, no order and no mark price yet."""
    ex = Exchange(ExchangeConfig())
    assert [ex.open_account(c) for c in (1000.0, 1000.0, 4.0, 5.0)] == [A, B, POOR, CLOSED]
    ex.close_account(CLOSED)
    assert ex.mark_price is None
    return ex


SETUPS = {"standard": standard_exchange, "unmarked": unmarked_exchange}


def snapshot(ex: Exchange) -> tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame]:
    scalars = {
        "mark_price": ex.mark_price,
        "insurance_fund": ex.insurance_fund,
        "fees_collected": ex.fees_collected,
        "money_in": ex.money_in,
        "n_accounts": ex.n_accounts,
        "book_orders": len(ex.book),
        "bids": [a.tolist() for a in ex.book.depth("buy")],
        "asks": [a.tolist() for a in ex.book.depth("sell")],
        "n_events": len(ex.events),
        "time": ex.time,
        "last_price": ex.last_price,
        "backstop_account": ex.backstop_account,
    }
    accounts = ex.accounts() if ex.mark_price is not None else None
    return scalars, accounts, ex.events


def assert_unchanged(before, after) -> None:
    (scalars0, accounts0, events0), (scalars1, accounts1, events1) = before, after
    assert scalars1 == scalars0
    if accounts0 is not None:
        assert_frame_equal(accounts1, accounts0)
    assert_frame_equal(events1, events0)


def call(
    case_id: str,
    action,
    match: str,
    exc: type[Exception] = ValueError,
    *,
    setup: str = "standard",
):
    """`action(ex)` on a fresh `setup` exchange must raise `exc` matching `match`."""
    return pytest.param(setup, action, exc, match, id=case_id)


CALL_CASES = [
    # open_account
    call("open_account-collateral-negative", lambda ex: ex.open_account(-1.0), "collateral"),
    call("open_account-collateral-nan", lambda ex: ex.open_account(NAN), "collateral"),
    call("open_account-collateral-inf", lambda ex: ex.open_account(INF), "collateral"),
    call("open_account-collateral-str", lambda ex: ex.open_account("100"), "collateral"),
    call("open_account-collateral-none", lambda ex: ex.open_account(None), "collateral"),
    call("open_account-collateral-bool", lambda ex: ex.open_account(True), "collateral"),
    call("open_account-adl_exempt-str", lambda ex: ex.open_account(10.0, adl_exempt="no"),
         "adl_exempt"),
    # deposit
    call("deposit-zero", lambda ex: ex.deposit(A, 0.0), "amount"),
    call("deposit-negative", lambda ex: ex.deposit(A, -5.0), "amount"),
    call("deposit-nan", lambda ex: ex.deposit(A, NAN), "amount"),
    call("deposit-str", lambda ex: ex.deposit(A, "5"), "amount"),
    call("deposit-bool-amount", lambda ex: ex.deposit(A, True), "amount"),
    call("deposit-unknown-account", lambda ex: ex.deposit(99, 5.0), "account 99"),
    call("deposit-closed-account", lambda ex: ex.deposit(CLOSED, 5.0), "account 3 is closed"),
    # withdraw
    call("withdraw-negative", lambda ex: ex.withdraw(A, -1.0), "amount"),
    call("withdraw-inf", lambda ex: ex.withdraw(A, INF), "amount"),
    call("withdraw-above-free-margin", lambda ex: ex.withdraw(A, 995.0),
         "amount .* free margin", MarginError),
    call("withdraw-closed-account", lambda ex: ex.withdraw(CLOSED, 1.0), "account 3"),
    call("withdraw-float-account", lambda ex: ex.withdraw(0.0, 1.0), "account"),
    # fill
    call("fill-self-trade", lambda ex: ex.fill(A, A, 1.0, 100.0), "buyer and seller"),
    call("fill-quantity-zero", lambda ex: ex.fill(A, B, 0.0, 100.0), "quantity"),
    call("fill-quantity-negative", lambda ex: ex.fill(A, B, -1.0, 100.0), "quantity"),
    call("fill-quantity-nan", lambda ex: ex.fill(A, B, NAN, 100.0), "quantity"),
    call("fill-quantity-inf", lambda ex: ex.fill(A, B, INF, 100.0), "quantity"),
    call("fill-quantity-str", lambda ex: ex.fill(A, B, "1", 100.0), "quantity"),
    call("fill-price-zero", lambda ex: ex.fill(A, B, 1.0, 0.0), "price"),
    call("fill-price-negative", lambda ex: ex.fill(A, B, 1.0, -100.0), "price"),
    call("fill-price-nan", lambda ex: ex.fill(A, B, 1.0, NAN), "price"),
    call("fill-price-inf", lambda ex: ex.fill(A, B, 1.0, INF), "price"),
    call("fill-unknown-buyer", lambda ex: ex.fill(99, B, 1.0, 100.0), "buyer 99"),
    call("fill-negative-seller", lambda ex: ex.fill(A, -1, 1.0, 100.0), "seller -1"),
    call("fill-closed-seller", lambda ex: ex.fill(A, CLOSED, 1.0, 100.0), "seller 3 is closed"),
    call("fill-bool-buyer", lambda ex: ex.fill(True, B, 1.0, 100.0), "buyer"),
    call("fill-breaches-initial-margin", lambda ex: ex.fill(POOR, B, 10.0, 100.0),
         "initial margin", MarginError),
    call("fill-breaches-initial-margin-before-first-mark",
         lambda ex: ex.fill(POOR, B, 10.0, 100.0), "initial margin", MarginError,
         setup="unmarked"),
    # market_order
    call("market_order-quantity-zero", lambda ex: ex.market_order(A, 0.0), "quantity"),
    call("market_order-quantity-nan", lambda ex: ex.market_order(A, NAN), "quantity"),
    call("market_order-quantity-bool", lambda ex: ex.market_order(A, True), "quantity"),
    call("market_order-quantity-str", lambda ex: ex.market_order(A, "1"), "quantity"),
    call("market_order-limit_price-nan", lambda ex: ex.market_order(A, 1.0, NAN),
         "limit_price"),
    call("market_order-limit_price-zero", lambda ex: ex.market_order(A, -1.0, 0.0),
         "limit_price"),
    call("market_order-closed-account", lambda ex: ex.market_order(CLOSED, 1.0), "account 3"),
    call("market_order-breaches-initial-margin", lambda ex: ex.market_order(POOR, 1.0),
         "initial margin", MarginError),
    # market_orders
    call("market_orders-account-unknown",
         lambda ex: ex.market_orders([A, 9], [1.0, 1.0], [110.0, 110.0]), "accounts: 9"),
    call("market_orders-account-closed",
         lambda ex: ex.market_orders([CLOSED], [1.0], [110.0]), "accounts: account 3"),
    call("market_orders-account-float",
         lambda ex: ex.market_orders([0.0], [1.0], [110.0]), "accounts"),
    call("market_orders-quantity-zero",
         lambda ex: ex.market_orders([A, B], [1.0, 0.0], [110.0, 110.0]), "quantities"),
    call("market_orders-quantity-nan", lambda ex: ex.market_orders([A], [NAN], [110.0]),
         "quantities"),
    call("market_orders-limit-nan", lambda ex: ex.market_orders([A], [1.0], [NAN]),
         "limit_prices"),
    call("market_orders-limit-zero", lambda ex: ex.market_orders([A], [-1.0], [0.0]),
         "limit_prices"),
    call("market_orders-lengths", lambda ex: ex.market_orders([A, B], [1.0], [110.0]),
         "same length"),
    # place_limit
    call("place_limit-quantity-zero", lambda ex: ex.place_limit(A, 0.0, 99.0), "quantity"),
    call("place_limit-quantity-nan", lambda ex: ex.place_limit(A, NAN, 99.0), "quantity"),
    call("place_limit-price-nan", lambda ex: ex.place_limit(A, 1.0, NAN), "price"),
    call("place_limit-price-negative", lambda ex: ex.place_limit(A, 1.0, -99.0), "price"),
    call("place_limit-price-inf", lambda ex: ex.place_limit(A, -1.0, INF), "price"),
    call("place_limit-price-none", lambda ex: ex.place_limit(A, 1.0, None), "price"),
    call("place_limit-post_only-crosses", lambda ex: ex.place_limit(A, 1.0, 101.0,
                                                                   post_only=True), "post_only"),
    call("place_limit-unknown-account", lambda ex: ex.place_limit(7, 1.0, 99.0), "account 7"),
    call("place_limit-resting-breaches-initial-margin",
         lambda ex: ex.place_limit(POOR, 10.0, 90.0), "initial margin", MarginError),
    call("place_limit-breaches-initial-margin-before-first-mark",
         lambda ex: ex.place_limit(POOR, 10.0, 90.0), "initial margin", MarginError,
         setup="unmarked"),
    call("place_limit-crossing-rest-breaches-initial-margin",
         lambda ex: ex.place_limit(A, 1000.0, 102.0), "initial margin", MarginError),
    # cancel
    call("cancel-unknown-order", lambda ex: ex.cancel(999), "order_id 999"),
    call("cancel-negative-order", lambda ex: ex.cancel(-1), "order_id"),
    call("cancel-str-order", lambda ex: ex.cancel("1"), "order_id"),
    call("cancel-bool-order", lambda ex: ex.cancel(True), "order_id"),
    call("cancel-unhashable-order", lambda ex: ex.cancel([BID]), "order_id"),
    # update_mark
    call("update_mark-price-nan", lambda ex: ex.update_mark(NAN), "price"),
    call("update_mark-price-zero", lambda ex: ex.update_mark(0.0), "price"),
    call("update_mark-price-negative", lambda ex: ex.update_mark(-100.0), "price"),
    call("update_mark-price-inf", lambda ex: ex.update_mark(INF), "price"),
    call("update_mark-price-str", lambda ex: ex.update_mark("100"), "price"),
    call("update_mark-price-bool", lambda ex: ex.update_mark(True), "price"),
    call("update_mark-time-nan", lambda ex: ex.update_mark(100.0, time=NAN), "time"),
    call("update_mark-time-inf", lambda ex: ex.update_mark(100.0, time=INF), "time"),
    call("update_mark-time-str", lambda ex: ex.update_mark(100.0, time="11"), "time"),
    call("update_mark-time-bool", lambda ex: ex.update_mark(100.0, time=True), "time"),
    call("update_mark-time-goes-backwards", lambda ex: ex.update_mark(100.0, time=5.0), "time"),
    # apply_funding
    call("apply_funding-rate-nan", lambda ex: ex.apply_funding(NAN), "rate"),
    call("apply_funding-rate-inf", lambda ex: ex.apply_funding(-INF), "rate"),
    call("apply_funding-rate-str", lambda ex: ex.apply_funding("0.0001"), "rate"),
    call("apply_funding-rate-bool", lambda ex: ex.apply_funding(True), "rate"),
    call("apply_funding-rate-none", lambda ex: ex.apply_funding(None), "rate"),
    # close_account
    call("close_account-open-position", lambda ex: ex.close_account(A),
         "account 0 has an open position"),
    call("close_account-already-closed", lambda ex: ex.close_account(CLOSED), "account 3"),
    call("close_account-unknown", lambda ex: ex.close_account(4), "account 4"),
    # register_backstop
    call("register_backstop-handler-none", lambda ex: ex.register_backstop(B, None), "handler"),
    call("register_backstop-handler-number", lambda ex: ex.register_backstop(B, 0.5),
         "handler"),
    call("register_backstop-closed-account",
         lambda ex: ex.register_backstop(CLOSED, lambda offer: 0.0), "account 3"),
]


def test_call_cases_are_enough():
    assert len(CALL_CASES) >= 25


@pytest.mark.parametrize(("setup", "action", "exc", "match"), CALL_CASES)
def test_exchange_call_rejects_and_changes_nothing(setup, action, exc, match):
    ex = SETUPS[setup]()
    before = snapshot(ex)
    with pytest.raises(exc, match=match) as info:
        action(ex)
    assert_one_line(info.value)
    assert_unchanged(before, snapshot(ex))


def test_setups_are_consistent():
    """Sanity: the standard exchange is what the cases assume, and conserves money."""
    ex = standard_exchange()
    assert (ex.position(A), ex.position(B), ex.position(POOR)) == (1.0, -1.0, 0.0)
    assert ex.book.best_bid() == 99.0 and ex.book.best_ask() == 101.0
    assert ex.mark_price == 100.0 and ex.time == 10.0
    ex.check_invariants()


# ---------------------------------------------------------------- the constructor


def ctor(case_id: str, kwargs: dict[str, Any], exc: type[Exception], match: str):
    return pytest.param(kwargs, exc, match, id=case_id)


CTOR_CASES = [
    ctor("config-preset-name", {"config": "binance"}, TypeError, "config"),
    ctor("config-dict", {"config": {"max_leverage": 10}}, TypeError, "config"),
    ctor("mark_price-nan", {"mark_price": NAN}, ValueError, "mark_price"),
    ctor("mark_price-zero", {"mark_price": 0.0}, ValueError, "mark_price"),
    ctor("mark_price-str", {"mark_price": "100"}, ValueError, "mark_price"),
    ctor("capacity-str", {"capacity": "many"}, ValueError, "capacity"),
    ctor("capacity-negative", {"capacity": -5}, ValueError, "capacity"),
]


@pytest.mark.parametrize(("kwargs", "exc", "match"), CTOR_CASES)
def test_exchange_constructor_rejects(kwargs, exc, match):
    kwargs = {"config": ExchangeConfig(), **kwargs}
    with pytest.raises(exc, match=match) as info:
        Exchange(**kwargs)
    assert_one_line(info.value)

"""A scripted crash per venue preset, derived by hand, for longs and for shorts.

Two traders, L and K, each hold 100 at 100 with 1,000 USD (10x): bankruptcy
price 100 − 1,000/100 = 90 for a long, 100 + 1,000/100 = 110 for a short.
Their counterparties are S (20,000 USD, 0.5x) and T (2,000 USD, 5x). The maker
M rests 100 at 90.5 and 50 at 89.5 on the side the liquidations hit. The
insurance fund starts with 1,000 USD.

Every price is written for the long case; the short case mirrors it around
100 (p → 200 − p), which leaves every equity, bankruptcy gap and P&L the same.
"""

from __future__ import annotations

import pytest

from perpabm import Exchange, ExchangeConfig

SIDES = pytest.mark.parametrize("side", [1, -1], ids=["longs", "shorts"])


def mirror(price: float, side: int) -> float:
    return price if side > 0 else 200.0 - price


def crash_market(preset: str, side: int, seed: int = 0, **changes):
    config = ExchangeConfig.preset(preset).replace(insurance_fund=1_000.0, debug=True,
                                                   **changes)
    ex = Exchange(config, mark_price=100.0, rng=seed)
    m = ex.open_account(1_000_000.0)
    l_, k = ex.open_account(1_000.0), ex.open_account(1_000.0)
    s, t = ex.open_account(20_000.0), ex.open_account(2_000.0)
    for trader, counterparty in ((l_, s), (k, t)):
        buyer, seller = (trader, counterparty) if side > 0 else (counterparty, trader)
        ex.fill(buyer, seller, 100.0, 100.0)
    ex.place_limit(m, side * 100.0, mirror(90.5, side))
    ex.place_limit(m, side * 50.0, mirror(89.5, side))
    return ex, {"M": m, "L": l_, "K": k, "S": s, "T": t}


def rows(events, kind):
    return [e for e in events if e.kind == kind]


def assert_book_fund_adl_path(ex, a, events, side):
    """The shared path of the fund-backed presets after the first mark.

    L: its 100 fill in the book at 90.5 (≥ 90): collateral 1,000 + 100·(90.5 − 100) = 50.
    K: the book has only 89.5 left, past its bankruptcy price, so nothing fills there;
    the fund closes 50 at 89.5 and pays 50·(90 − 89.5) = 25, leaving K with
    1,000 + 50·(89.5 − 100) + 25 = 500 on 50 units, still bankrupt at 90.
    """
    book = rows(events, "liquidation")
    assert [(e.account, e.quantity, e.price) for e in book] == [
        (a["L"], -side * 100.0, mirror(90.5, side))]
    fund = rows(events, "insurance_fund")
    fund_fills = [e for e in fund if e.quantity != 0.0]
    assert [(e.account, e.quantity, e.price) for e in fund_fills] == [
        (a["K"], -side * 50.0, mirror(89.5, side))]
    assert fund_fills[0].amount == pytest.approx(-25.0)
    assert ex.position(a["L"]) == 0.0
    assert ex.position(a["K"]) == 0.0
    assert ex.position(a["M"]) == side * 150.0


@SIDES
def test_binance_fund_takes_over_what_its_size_allows_and_adl_takes_the_rest(side):
    ex, a = crash_market("binance", side)
    mark = mirror(90.3, side)
    events = ex.update_mark(mark)
    # L fills 100 at 90.5 in the book; the fee, 0.3% of its notional (27.15 for longs,
    # 32.85 for shorts), and the rest of its 50 go to the fund: 1,000 + 50 = 1,050.
    assert [(e.account, e.quantity) for e in rows(events, "liquidation")] == [
        (a["L"], -side * 100.0)]
    # K: the book's 50 at 89.5 are past its bankruptcy price 90, so the fund takes K's
    # position over at 90, as far as its net notional stays within 100% of its balance:
    # 1,050 / 90.3 = 11.628 units (shorts: 1,050 / 109.7 = 9.572), with K's equity on
    # them, 0.3 a unit (30 on 100).
    units = 1_050.0 / mark
    taken = rows(events, "fund_takeover")
    assert [(e.account, e.counterparty) for e in taken] == [(a["K"], ex.insurance_fund_account)]
    assert taken[0].quantity == pytest.approx(-side * units)
    assert taken[0].price == pytest.approx(mirror(90.0, side))
    assert taken[0].amount == pytest.approx(0.3 * units)
    assert ex.position(ex.insurance_fund_account) == pytest.approx(side * units)
    assert ex.insurance_fund == pytest.approx(1_050.0 + 0.3 * units)
    # ADL closes the other 100 − units against T, first in the queue, at 90: T realises
    # 10 a unit.
    adl = rows(events, "adl")
    assert [(e.account, e.counterparty) for e in adl] == [(a["T"], a["K"])]
    assert adl[0].quantity == pytest.approx(side * (100.0 - units))
    assert ex.collateral(a["T"]) == pytest.approx(2_000.0 + 10.0 * (100.0 - units))
    assert ex.position(a["K"]) == 0.0


@SIDES
def test_binance_book_fee_surplus_fund_and_adl_queue(side):
    """The fund as it works without the takeover: it buys what the book has left."""
    ex, a = crash_market("binance", side, fund_takeover=False)
    # mmr 0.4%: at 90.3 equity is 1,000 − 970 = 30 < MM 100·90.3·0.004 = 36.12
    # (shorts, at 109.7: 30 < 100·109.7·0.004 = 43.88).
    events = ex.update_mark(mirror(90.3, side))
    assert_book_fund_adl_path(ex, a, events, side)
    # Fee 0.3% of 100·90.5 = 27.15 (shorts: of 100·109.5 = 32.85); the rest of L's
    # 50 goes to the fund as surplus: 50 in all.
    fee = rows(events, "liquidation_fee")[0].amount
    assert fee == pytest.approx(27.15 if side > 0 else 32.85)
    # ADL: K's last 50 against the queue by PnL% × margin ratio. Both winners have
    # uPnL 970; T's 970/2,000 × MM/2,970 beats S's 970/20,000 × MM/20,970: T first,
    # closed for 50 at the bankruptcy price 90 (T realises 50·10 = 500).
    adl = rows(events, "adl")
    assert [(e.account, e.counterparty, e.quantity, e.rank) for e in adl] == [
        (a["T"], a["K"], side * 50.0, 1)]
    assert adl[0].price == pytest.approx(mirror(90.0, side))
    assert ex.collateral(a["T"]) == pytest.approx(2_500.0)
    assert ex.insurance_fund == pytest.approx(1_000.0 + 50.0 - 25.0)


@SIDES
def test_bitmex_margin_forfeited_to_fund_then_adl_by_pnl_times_leverage(side):
    ex, a = crash_market("bitmex", side)
    # mmr 0.5%: at 90.3 equity 30 < MM 45.15 (shorts: 30 < 54.85).
    events = ex.update_mark(mirror(90.3, side))
    assert_book_fund_adl_path(ex, a, events, side)
    # No liquidation fee; L's remaining 50 is forfeited to the fund.
    assert rows(events, "liquidation_fee") == []
    # PnL% 0.097 × leverage: T 9,030/2,970 = 3.04 beats S 9,030/20,970 = 0.43.
    adl = rows(events, "adl")
    assert [(e.account, e.quantity) for e in adl] == [(a["T"], side * 50.0)]
    assert adl[0].score == pytest.approx(0.097 * 100 * mirror(90.3, side) / 2_970.0)
    assert ex.insurance_fund == pytest.approx(1_025.0)


@SIDES
def test_dydx_penalty_capped_fund_pays_slippage_then_random_deleveraging(side):
    ex, a = crash_market("dydx", side)
    # MMF 3%: at 92.5 equity 1,000 − 750 = 250 < MM 277.5 (shorts at 107.5: 322.5).
    events = ex.update_mark(mirror(92.5, side))
    assert_book_fund_adl_path(ex, a, events, side)
    # Penalty 1.5% of 9,050 = 135.75 is capped at L's remaining 50, all to the fund.
    assert rows(events, "liquidation_fee")[0].amount == pytest.approx(50.0)
    # No ranking: one of the opposite positions, drawn by the seeded walk, takes 50.
    adl = rows(events, "adl")
    assert len(adl) == 1 and adl[0].account in (a["S"], a["T"])
    assert adl[0].quantity == side * 50.0
    assert ex.insurance_fund == pytest.approx(1_025.0)


def test_dydx_deleveraging_order_is_reproducible_from_the_seed():
    picks = set()
    for seed in range(12):
        runs = []
        for _ in range(2):
            ex, a = crash_market("dydx", 1, seed=seed)
            events = ex.update_mark(92.5)
            runs.append(rows(events, "adl")[0].account)
        assert runs[0] == runs[1]
        picks.add(runs[0])
    assert len(picks) == 2  # both opposite positions get picked across seeds


@SIDES
def test_drift_closes_the_rest_pro_rata_at_the_mark(side):
    ex, a = crash_market("drift", side)
    events = ex.update_mark(mirror(92.5, side))
    assert_book_fund_adl_path(ex, a, events, side)
    # K's last 50 close at the mark 92.5 against S and T in proportion to size
    # (100 each): 25 each. K keeps 500 + 50·(92.5 − 100) = 125: no deficit to spread.
    adl = rows(events, "adl")
    assert sorted((e.account, e.quantity) for e in adl) == [
        (a["S"], side * 25.0), (a["T"], side * 25.0)]
    assert all(e.price == mirror(92.5, side) for e in adl)
    assert rows(events, "socialized_loss") == []
    assert ex.collateral(a["K"]) == pytest.approx(125.0)
    assert ex.insurance_fund == pytest.approx(1_025.0)


@SIDES
def test_drift_fund_covers_gap_deficits_before_any_loss_is_socialised(side):
    ex, a = crash_market("drift", side)
    ex.book.cancel_account(a["M"])
    # A gap to 88 with an empty book: L and K each have equity 1,000 − 1,200 = −200.
    # Both close pro rata at the mark; the fund (1,000) pays both deficits of 200.
    ex.update_mark(mirror(88.0, side))
    assert ex.insurance_fund == pytest.approx(1_000.0 - 400.0)
    assert ex.events["kind"].eq("socialized_loss").sum() == 0
    assert ex.collateral(a["L"]) == pytest.approx(0.0, abs=1e-9)


@SIDES
def test_hyperliquid_book_then_vault_then_adl_on_negative_equity(side):
    ex, a = crash_market("hyperliquid", side)
    vault = ex.open_account(100_000.0)
    ex.register_backstop(
        vault, lambda offer: min(abs(offer.size), max(60.0 - abs(ex.position(vault)), 0.0)))

    # Mark 91: equity 1,000 − 900 = 100 < MM 100·91·0.0125 = 113.75 for both.
    # L (notional 9,100 < 100k, so one order) fills 100 at 90.5 and keeps its 50.
    # K: 89.5 is past its bankruptcy price; equity 100 ≥ 2/3·113.75 = 75.8, so the
    # vault does not step in, and equity ≥ 0, so ADL waits.
    first = ex.update_mark(mirror(91.0, side))
    assert [e.kind for e in first] == ["liquidation"]
    assert ex.collateral(a["L"]) == pytest.approx(50.0)
    assert ex.position(a["K"]) == side * 100.0

    # Mark 90.7: equity 70 < 2/3·(100·90.7·0.0125 = 113.375) = 75.6 and ≥ 0: the vault
    # takes what fits (60 of 100) at the mark, with the same share of K's equity,
    # 60/100 · 70 = 42. K keeps 40 with 28 of equity: collateral 1,000 − 60·9.3 − 42 = 400.
    second = ex.update_mark(mirror(90.7, side))
    assert [(e.kind, e.quantity) for e in second] == [("backstop", -side * 60.0)]
    assert second[0].price == pytest.approx(mirror(90.7, side))
    assert second[0].amount == pytest.approx(42.0)
    assert ex.position(vault) == side * 60.0
    assert ex.equity(vault) == pytest.approx(100_042.0)
    assert ex.collateral(a["K"]) == pytest.approx(400.0)

    # Mark 89.5: K's equity 400 + 40·(89.5 − 100) = −20 < 0 and the vault is full, so
    # ADL by (mark/entry)·(notional/account value): T (2,000 USD) beats S (20,000 USD),
    # closed at the previous mark 90.7, not K's bankruptcy price 90.
    third = ex.update_mark(mirror(89.5, side))
    adl = rows(third, "adl")
    assert [(e.account, e.quantity) for e in adl] == [(a["T"], side * 40.0)]
    assert adl[0].price == pytest.approx(mirror(90.7, side))
    # T realises 40·(100 − 90.7) = 372, giving up 40·(90.7 − 89.5) = 48 against the
    # mark: K's deficit of 20 and 40·(90.7 − 90) = 28 more, the surplus of the previous
    # mark over the bankruptcy price, which stays with K (surplus_to = "account").
    assert ex.collateral(a["T"]) == pytest.approx(2_000.0 + 372.0)
    assert ex.position(a["K"]) == 0.0
    assert ex.collateral(a["K"]) == pytest.approx(28.0)
    assert ex.bad_debt == 0.0
    assert ex.insurance_fund == 1_000.0  # Hyperliquid's fund is the vault

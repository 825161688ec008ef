"""A scripted crash on the bare exchange engine: who pays when the book empties.

Leveraged longs face low-leverage shorts; one market maker quotes a ladder
that thins as the price falls; a vault backstops liquidations up to a cap.
The price falls 20% in twenty steps and recovers a little. Every step prints
what the waterfall did; the end says who paid for the bankrupt longs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from perpabm.config import ExchangeConfig
from perpabm.config.checks import whole
from perpabm.exchange import BackstopOffer, Exchange

START_PRICE = 100.0


@dataclass
class CrashReport:
    """What a scripted crash produced: per-step table, ADL'd accounts, and totals."""

    preset: str
    steps: pd.DataFrame
    adl_hits: pd.DataFrame
    totals: dict[str, float]
    exchange: Exchange


def crash_path(drop: float = 0.2, fall_steps: int = 20, rebound: float = 0.1,
               rebound_steps: int = 10) -> np.ndarray:
    """Mark prices: a linear fall of `drop` over `fall_steps`, then a partial rebound."""
    bottom = START_PRICE * (1 - drop)
    fall = np.linspace(START_PRICE, bottom, fall_steps + 1)[1:]
    rise = np.linspace(bottom, bottom * (1 + rebound), rebound_steps + 1)[1:]
    return np.concatenate([fall, rise])


def _quote_ladder(ex: Exchange, maker: int, mark: float, depth: float) -> None:
    """Replace the maker's quotes: 10 levels a side, 0.2% apart, `depth` units per level."""
    ex.book.cancel_account(maker)
    for level in range(1, 11):
        offset = 0.002 * level
        ex.place_limit(maker, depth, mark * (1 - offset), post_only=True)
        ex.place_limit(maker, -depth, mark * (1 + offset), post_only=True)


def scripted_crash(preset: str = "hyperliquid", n_traders: int = 200, seed: int = 7,
                   vault_capital: float = 250_000.0, vault_cap: float = 0.5) -> CrashReport:
    """Run the scripted crash on `preset` and report what each waterfall stage did.

    Traders: `n_traders` longs with Pareto-distributed collateral (USD 1k scale,
    tail index 1.5) and log-normal leverage (median 10x, capped at the venue's
    maximum), each matched by a short at 2x. The vault backstops positions
    while its notional stays under `vault_cap` × its equity × 10.

    Raises ConfigError naming ``traders`` unless `n_traders` is a whole number ≥ 1,
    ``seed`` unless `seed` is one ≥ 0, and ``exchange.preset`` for an unknown preset.
    """
    n_traders = whole("traders", n_traders, low=1)
    seed = whole("seed", seed)
    config = ExchangeConfig.preset(preset).replace(insurance_fund=20_000.0)
    rng = np.random.default_rng(seed)
    ex = Exchange(config, mark_price=START_PRICE, rng=rng)
    maker = ex.open_account(2_000_000.0)
    vault = ex.open_account(vault_capital)

    def take_over(offer: BackstopOffer) -> float:
        room = vault_cap * 10 * ex.equity(vault) - abs(ex.position(vault)) * offer.mark_price
        return float(np.clip(room / offer.mark_price, 0.0, abs(offer.size)))

    ex.register_backstop(vault, take_over)
    collateral = 1_000.0 * (1 + rng.pareto(1.5, n_traders))
    leverage = np.minimum(np.exp(rng.normal(np.log(10), 0.6, n_traders)),
                          0.9 * config.max_leverage)
    longs = [ex.open_account(c) for c in collateral]
    shorts = [ex.open_account(c * lev / 2) for c, lev in zip(collateral, leverage, strict=True)]
    for long_, short, c, lev in zip(longs, shorts, collateral, leverage, strict=True):
        ex.fill(long_, short, c * lev / START_PRICE, START_PRICE)
    fund_start = ex.insurance_fund
    vault_start = ex.equity(vault)

    rows = []
    for step, mark in enumerate(crash_path(), start=1):
        drawdown = 1 - min(mark, START_PRICE) / START_PRICE
        _quote_ladder(ex, maker, mark, depth=max(50.0 * (1 - 4 * drawdown), 2.0))
        events = pd.DataFrame(ex.update_mark(float(mark)))
        kinds = events["kind"] if len(events) else pd.Series(dtype=str)

        def notional(kind: str, frame: pd.DataFrame = events, kinds: pd.Series = kinds) -> float:
            sel = frame[kinds == kind]
            return float((sel["quantity"].abs() * sel["price"]).sum()) if len(sel) else 0.0

        rows.append({
            "step": step,
            "mark": mark,
            "liquidated_in_book": notional("liquidation"),
            "vault_takeover": notional("backstop"),
            "fund_closed": notional("insurance_fund"),
            "fund_takeover": notional("fund_takeover"),
            "adl_notional": notional("adl"),
            "adl_accounts": int((kinds == "adl").sum()),
            "insurance_fund": ex.insurance_fund,
            "vault_equity": ex.equity(vault),
        })
    steps = pd.DataFrame(rows).set_index("step")
    adl = ex.events[ex.events["kind"] == "adl"]
    hits = adl.groupby("account").agg(quantity=("quantity", "sum"), fills=("quantity", "size"),
                                      rank=("rank", "min"))
    hits["taken_vs_mark"] = (
        adl.assign(loss=(adl["mark_price"] - adl["price"]).abs() * adl["quantity"].abs())
        .groupby("account")["loss"].sum()
    )
    totals = {
        "liquidations": float(ex.events["kind"].eq("liquidation").sum()),
        "adl_fills": float(len(adl)),
        "adl_notional": float((adl["quantity"].abs() * adl["price"]).sum()),
        "insurance_fund_change": ex.insurance_fund - fund_start,
        "vault_pnl": ex.equity(vault) - vault_start,
        "conservation_error": ex.conservation_error(),
    }
    return CrashReport(preset, steps, hits.sort_values("taken_vs_mark", ascending=False),
                       totals, ex)


def format_report(report: CrashReport) -> str:
    """The report as text for a terminal."""
    with pd.option_context("display.width", 120, "display.float_format", "{:,.2f}".format):
        lines = [
            f"Scripted crash on the {report.preset} preset: mark 100 → 80 → 88",
            "",
            report.steps.to_string(),
            "",
            f"ADL'd accounts (top 5 of {len(report.adl_hits)}), by profit taken vs the mark:",
            report.adl_hits.head(5).to_string() if len(report.adl_hits) else "  none",
            "",
        ]
    t = report.totals
    lines += [
        f"liquidation fills in the book: {t['liquidations']:,.0f}",
        f"ADL fills: {t['adl_fills']:,.0f}, notional {t['adl_notional']:,.0f} USD",
        f"insurance fund change: {t['insurance_fund_change']:+,.2f} USD",
        f"vault P&L: {t['vault_pnl']:+,.2f} USD",
        f"conservation error: {t['conservation_error']:.3g} USD",
    ]
    return "\n".join(lines)

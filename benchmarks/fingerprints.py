"""Fingerprints of seeded results: one SHA-256 per case over its summary row, event table
and series, and one over all cases.

A change that must leave every seeded result as it was (a refactor, a speed-up) is
checked by running this before and after it and comparing the lines, e.g.::

    .venv/bin/python benchmarks/fingerprints.py > before.txt
    # ... the change ...
    .venv/bin/python benchmarks/fingerprints.py > after.txt
    diff before.txt after.txt

The cases: every bundled scenario on three seeds; the crash scenario under every
venue preset on two seeds; and the crash scenario under the exchange options the
presets leave unused (each ADL allocation, rule and price, the backstop at the mark,
an insurance fund with a drawdown trigger, debug mode), on two seeds — so that every
branch of the liquidation waterfall and of the ADL arithmetic is run by some case.
Only the public API is used, so the script runs on any version of perpabm that has
it (``PYTHONPATH=/path/to/checkout`` measures another checkout). A change that adds a
summary figure or a series column is checked against the version before it with
``--leave-out NAME``: the figure is left out of every summary row's digest, the column
out of every series'.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator

import pandas as pd

from perpabm import list_scenarios, load_scenario, presets
from perpabm.config import ScenarioConfig
from perpabm.runner import run_path

SEEDS_SCENARIO = (1, 2, 3)
SEEDS_VARIANT = (1, 2)

VARIANTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("pro_rata", {"exchange.adl_allocation": "pro_rata"}),
    ("socialized_loss", {"exchange.adl_allocation": "socialized_loss"}),
    ("adl_at_mark_with_fund", {"exchange.adl_price": "mark",
                               "exchange.insurance_fund": 2_000_000.0}),
    ("rule_profit", {"exchange.adl_rule": "profit"}),
    ("rule_random", {"exchange.adl_rule": "random"}),
    ("rule_pnl_leverage", {"exchange.adl_rule": "pnl_leverage"}),
    ("backstop_at_mark", {"exchange.backstop_price": "mark"}),
    ("vault_full", {"vault.cap": 0.0}),
    ("vault_exempt_quoting", {"vault.adl_exempt": True, "vault.quotes": True}),
    ("fund_drawdown", {"exchange.preset": "binance", "exchange.insurance_fund": 500_000.0,
                       "exchange.fund_drawdown_trigger": 0.3}),
    ("surplus_to_account", {"exchange.preset": "binance", "exchange.surplus_to": "account"}),
    ("sliced_partial", {"exchange.preset": "binance", "exchange.partial_liquidation": True,
                        "exchange.liquidation_slice_fraction": 0.2,
                        "exchange.liquidation_slice_min_notional": 100_000.0,
                        "exchange.adl_trigger": "negative_equity"}),
    ("debug", {"run.debug": True}),
)


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's columns, dtypes, index and every value's bits."""
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))])
             .encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()


def path_digest(config: ScenarioConfig, seed: int, leave_out: frozenset[str] = frozenset()
                ) -> str:
    """SHA-256 of one path's summary row (every float's repr), events and series, the
    figures and columns named in `leave_out` left out."""
    row, events, series = run_path(config, seed, 0, with_series=True)
    series = series.drop(columns=[c for c in series.columns if c in leave_out])
    h = hashlib.sha256()
    h.update(json.dumps({k: repr(v) for k, v in row.items() if k not in leave_out},
                        sort_keys=True).encode())
    h.update(frame_digest(events).encode())
    h.update(frame_digest(series).encode())
    return h.hexdigest()


def cases() -> Iterator[tuple[str, ScenarioConfig, int]]:
    for name in list_scenarios():
        for seed in SEEDS_SCENARIO:
            yield f"{name}", load_scenario(name), seed
    crash = load_scenario("crash")
    for preset in presets.names():
        for seed in SEEDS_VARIANT:
            yield f"crash/{preset}", crash.replace("exchange.preset", preset), seed
    for label, changes in VARIANTS:
        config = crash
        for path, value in sorted(changes.items(), key=lambda kv: kv[0] != "exchange.preset"):
            config = config.replace(path, value)
        for seed in SEEDS_VARIANT:
            yield f"crash+{label}", config, seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leave-out", action="append", default=[], metavar="NAME",
                        help="a summary figure or series column left out of the digests "
                             "(repeatable)")
    args = parser.parse_args(argv)
    leave_out = frozenset(args.leave_out)
    total = hashlib.sha256()
    start = time.perf_counter()
    n = 0
    for label, config, seed in cases():
        digest = path_digest(config, seed, leave_out)
        total.update(digest.encode())
        print(f"{label:32s} seed {seed}  {digest[:16]}", flush=True)
        n += 1
    print(f"{'all ' + str(n) + ' cases':32s}         {total.hexdigest()}")
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

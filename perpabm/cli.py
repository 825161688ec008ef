"""The `perpabm` command."""

from __future__ import annotations

import argparse
import sys

from perpabm import presets
from perpabm.errors import ConfigError


def _demo(args: argparse.Namespace) -> int:
    from perpabm.demo import format_report, scripted_crash

    report = scripted_crash(args.preset, n_traders=args.traders, seed=args.seed)
    print(format_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perpabm",
        description="Agent-based Monte Carlo of perpetual-swap exchanges: "
        "liquidations, backstop vaults, insurance funds and auto-deleveraging.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run a scripted crash on the exchange engine and show who pays",
        description="Run a scripted 20%% crash on one venue preset and print, step by step, "
        "what the liquidation waterfall did and who was auto-deleveraged.",
    )
    demo.add_argument("--preset", default="hyperliquid", choices=presets.names(),
                      help="venue rules (default: hyperliquid)")
    demo.add_argument("--traders", type=int, default=200, help="leveraged longs (default: 200)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ConfigError, ValueError) as exc:
        print(f"perpabm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

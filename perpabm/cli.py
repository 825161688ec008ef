"""The `perpabm` command: run, sweep, validate, report, export, scenarios, config show, demo.

Every error — a usage error, an unknown scenario, bad TOML, a mistyped or
out-of-range setting, an unreadable price file, an unwritable or full output
folder — is one line on stderr and exit code 2, with no traceback; a run with
failed paths exits 1, and says why they failed. Ctrl-C is one line saying what
was saved and how to resume, exit 130. Warnings (a worker process that died and
whose paths were run again, paths missing from a results folder) are one line
each too.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any, NoReturn, TextIO

import pandas as pd
from tqdm import tqdm

from perpabm import presets
from perpabm.config.exchange import ExchangeConfig
from perpabm.config.scenario import ScenarioConfig
from perpabm.errors import ConfigError, RunInterrupted, StorageError, closest

QUANTILES = (0.05, 0.5, 0.95)
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
SWEEP_KEYS = ("scenario", "config", "grid", "design", "n_points", "n_paths", "seed",
              "with_series")


def _scenario(args: argparse.Namespace) -> ScenarioConfig:
    from perpabm.scenarios import load_scenario

    config = load_scenario(args.config or args.scenario)
    if args.preset:
        config = config.replace(exchange=ExchangeConfig.preset(args.preset))
    if args.rule:
        config = config.replace("exchange.adl_rule", args.rule)
    return config


def _show_progress(args: argparse.Namespace) -> bool:
    if args.quiet:
        return False
    return args.progress or sys.stderr.isatty()


def summary_table(paths: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Per point: ADL frequency, vault P&L mean and quantiles, liquidations per path
    (an empty table when no path finished). An outer quantile is NaN where fewer than
    ``analysis.MIN_TAIL_PATHS`` paths lie beyond it, as in :func:`analysis.vault_pnl`."""
    from perpabm import analysis

    if not len(paths):
        return pd.DataFrame()
    groups = paths.groupby(by) if by else [((), paths)]
    rows = []
    for key, group in groups:
        row: dict[str, Any] = dict(zip(by or [], key if isinstance(key, tuple) else (key,),
                                       strict=True))
        row["paths"] = len(group)
        row["adl_share"] = group["adl_fired"].mean()
        row["liquidations_per_path"] = group["liquidation_episodes"].mean()
        row["vault_pnl_mean"] = group["vault_pnl"].mean()
        for q in QUANTILES:
            tail = analysis.tail_paths(len(group), max(q, 1.0 - q))
            outer_too_few = q != 0.5 and tail < analysis.MIN_TAIL_PATHS
            row[f"vault_pnl_q{round(q * 100):02d}"] = (
                float("nan") if outer_too_few else group["vault_pnl"].quantile(q))
        rows.append(row)
    return pd.DataFrame(rows)


def _print_summary(results: Any, by: list[str] | None = None, out: str | None = None) -> int:
    if len(results.paths):
        with pd.option_context("display.width", 160, "display.max_columns", 20,
                               "display.float_format", "{:,.4g}".format):
            print(summary_table(results.paths, by).to_string(index=False))
    failed = len(results.failures)
    if failed:
        print(f"perpabm: {failed} of {failed + len(results.paths)} path(s) failed"
              f"{_failure_causes(results.failures)}; "
              + (f"the failures table in {out} has their tracebacks" if out else
                 "run with --out to keep their tracebacks"), file=sys.stderr)
        return 1
    return 0


def _failure_causes(failures: pd.DataFrame) -> str:
    """': MemoryError: … (3), ValueError: … (1)' — the commonest causes first."""
    causes = (failures["error_type"] + ": " + failures["message"].map(
        lambda m: " ".join(str(m).split())[:120])).value_counts()
    shown = [f"{cause} ({count})" for cause, count in causes.head(2).items()]
    more = f", and {len(causes) - 2} other cause(s)" if len(causes) > 2 else ""
    return ": " + ", ".join(shown) + more


def _run(args: argparse.Namespace) -> int:
    from perpabm.runner import run_paths

    config = _scenario(args)
    results = run_paths(config, args.paths, args.seed, n_jobs=args.jobs, out=args.out,
                        with_series=args.series, progress=_show_progress(args))
    return _print_summary(results, out=args.out)


def _sweep(args: argparse.Namespace) -> int:
    from perpabm.runner import sweep
    from perpabm.scenarios import load_scenario

    spec = _read_toml(args.sweep)
    for key in spec:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{args.sweep}: {key} is not a sweep setting"
                              f"{closest(key, SWEEP_KEYS)}")
    if "grid" not in spec:
        raise ConfigError(f"{args.sweep}: a sweep needs a [grid] table of dotted paths")
    if "scenario" in spec and "config" in spec:
        raise ConfigError(f"{args.sweep}: give scenario (a bundled name) or config (a TOML "
                          f"file), not both")
    for key, what in (("scenario", "a bundled scenario name"),
                      ("config", "a scenario TOML file, relative to the sweep file")):
        if key in spec and (not isinstance(spec[key], str) or not spec[key]):
            raise ConfigError(f"{args.sweep}: {key} must be {what}; got {spec[key]!r}")
    base = spec.get("scenario", "default")
    if "config" in spec:
        base = str(Path(args.sweep).parent / spec["config"])
    config = load_scenario(base)
    results = sweep(config, spec["grid"], spec.get("n_paths", 100), spec.get("seed", 0),
                    design=spec.get("design", "grid"), n_points=spec.get("n_points"),
                    with_series=args.series or spec.get("with_series", False),
                    n_jobs=args.jobs, backend=args.backend, out=args.out,
                    progress=_show_progress(args), scheduler=args.scheduler)
    return _print_summary(results, by=list(spec["grid"]), out=args.out)


def _validate(args: argparse.Namespace) -> int:
    from perpabm.scenarios import load_scenario
    from perpabm.validate import validate_scenario

    config = load_scenario(args.scenario)
    table, results = validate_scenario(config, args.paths, args.seed, record=args.record,
                                       n_jobs=args.jobs, out=args.out,
                                       progress=_show_progress(args))
    fired = int(results.paths["adl_fired"].sum()) if len(results.paths) else 0
    print(f"{config.name or args.scenario} against the record {args.record}: "
          f"{len(results.paths)} paths (seed {args.seed}), ADL on {fired}; model: the "
          f"statistic over the paths that give the figure, and their central 90%")
    shown = table.drop(columns="source").copy()
    shown.insert(0, "#", range(1, len(shown) + 1))
    shown["matches"] = shown["matches"].map({True: "yes", False: "no"}).fillna("—")
    with pd.option_context("display.width", 200, "display.max_colwidth", 52,
                           "display.float_format", "{:.4g}".format):
        print(shown.to_string(index=False))
    print("sources (docs/validation.md quotes them):")
    for number, source in enumerate(table["source"], start=1):
        print(f"  {number}. {source}")
    return 1 if len(results.failures) else 0


def _report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, whatever the environment
    from perpabm.report import write_report
    from perpabm.results import Results

    results = Results.load(args.folder)
    target = Path(args.out) if args.out else Path(args.folder) / "report"
    for path in write_report(results, target, by=args.by):
        print(path)
    return 0


def _export(args: argparse.Namespace) -> int:
    from perpabm.results import Results

    results = Results.load(args.folder)
    target = Path(args.to) if args.to else Path(args.folder) / "csv"
    for path in results.to_csv(target):
        print(path)
    return 0


def _read_toml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not valid TOML: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _scenarios(args: argparse.Namespace) -> int:
    from perpabm.scenarios import list_scenarios

    for name, description in list_scenarios().items():
        print(f"{name:<12} {description}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    from perpabm.config.reference import commented_toml
    from perpabm.config.toml import dumps
    from perpabm.scenarios import load_scenario

    config = load_scenario(args.name)
    print(commented_toml(config) if args.comments else dumps(config.to_dict()), end="")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from perpabm.demo import format_report, scripted_crash

    report = scripted_crash(args.preset, n_traders=args.traders, seed=args.seed)
    print(format_report(report))
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1; got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1; got {number}")
    return number


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (saying where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="perpabm",
        description="Agent-based Monte Carlo of perpetual-swap exchanges: "
        "liquidations, backstop vaults, insurance funds and auto-deleveraging.",
    )
    parser.add_argument("--version", action="version", version=f"perpabm {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run seeded paths of one scenario",
                              description="Run seeded paths of one scenario and print ADL "
                              "frequency, vault P&L and liquidations.")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--scenario", default="default", help="bundled scenario name")
    source.add_argument("--config", help="a scenario TOML file")
    run.add_argument("--preset", choices=presets.names(), help="venue rules to use instead")
    run.add_argument("--rule", help="ADL ranking rule (e.g. pnl_leverage, profit, leverage)")
    run.add_argument("--paths", type=_positive, default=100, help="paths (default: 100)")
    run.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    run.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores)")
    run.add_argument("--out", help="write results to this folder (resumable; asking it for "
                     "more paths computes only the new ones)")
    run.add_argument("--series", action="store_true",
                     help="keep every path's per-step series (the series table)")
    _progress_flags(run)
    run.set_defaults(run=_run)

    sweep = commands.add_parser("sweep", help="run a sweep described by a TOML file",
                                description="Run n_paths paths at every point of the [grid] "
                                "in SWEEP.toml (keys: scenario or config, n_paths, seed, "
                                "design, n_points, with_series, [grid]).")
    sweep.add_argument("sweep", metavar="SWEEP.toml")
    sweep.add_argument("--out", help="write results to this folder (resumable; more paths or "
                       "grid values compute only the new ones)")
    sweep.add_argument("--series", action="store_true",
                       help="keep every path's per-step series (as with_series = true)")
    sweep.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores)")
    sweep.add_argument("--backend", default="loky",
                       choices=("loky", "threading", "sequential", "dask"))
    sweep.add_argument("--scheduler", metavar="ADDR",
                       help="dask scheduler address (default: a local cluster)")
    _progress_flags(sweep)
    sweep.set_defaults(run=_sweep)

    validate = commands.add_parser(
        "validate", help="hold a scenario against the published record of a real event",
        description="Run seeded paths of a scenario and print, fact by fact, the record "
        "of a real event (2025-10-10 on Hyperliquid) beside the model's median and the "
        "central 90%% of its paths (docs/validation.md gives each fact's source).")
    validate.add_argument("scenario", help="bundled scenario name or TOML file")
    validate.add_argument("--record", default="oct10_2025",
                          help="the record to hold it against (default: oct10_2025)")
    validate.add_argument("--paths", type=_positive, default=32, help="paths (default: 32)")
    validate.add_argument("--seed", type=int, default=0, help="root seed (default: 0)")
    validate.add_argument("--jobs", type=int, default=-1,
                          help="worker processes (-1: all cores)")
    validate.add_argument("--out", help="write the paths to this folder (resumable)")
    _progress_flags(validate)
    validate.set_defaults(run=_validate)

    report = commands.add_parser(
        "report", help="write a results folder's standard tables and figures",
        description="Write the standard tables (CSV: ADL frequency and rate, vault P&L "
        "quantiles, VaR and ES, overshoot, time to first ADL, whom ADL hits) and figures "
        "(PNG) of a results folder, split by every sweep factor, and a report.md listing "
        "them.")
    report.add_argument("folder", metavar="DIR", help="a results folder (from --out)")
    report.add_argument("--out", metavar="OUT", help="folder for the report "
                        "(default: DIR/report)")
    report.add_argument("--by", nargs="+", metavar="SETTING",
                        help="split by these columns instead of the sweep factors")
    report.set_defaults(run=_report)

    export = commands.add_parser("export", help="write a results folder's tables as CSV",
                                 description="Write every table of a results folder (paths, "
                                 "events, series, points, failures, …) as CSV files.")
    export.add_argument("folder", metavar="DIR", help="a results folder (from --out)")
    export.add_argument("--to", metavar="OUT", help="folder for the CSV files "
                        "(default: DIR/csv)")
    export.set_defaults(run=_export)

    scenarios = commands.add_parser("scenarios", help="list the bundled scenarios")
    scenarios.set_defaults(run=_scenarios)

    config = commands.add_parser("config", help="show a scenario's full TOML")
    config_commands = config.add_subparsers(dest="config_command", required=True,
                                            metavar="SUBCOMMAND")
    show = config_commands.add_parser("show", help="print a scenario's full TOML (to copy)")
    show.add_argument("name", help="bundled scenario name or TOML file")
    show.add_argument("--comments", action="store_true",
                      help="above each key, its meaning, unit and allowed values")
    show.set_defaults(run=_config_show)

    demo = commands.add_parser(
        "demo", help="run a scripted crash on the exchange engine and show who pays",
        description="Run a scripted 20%% crash on one venue preset and print, step by step, "
        "what the liquidation waterfall did and who was auto-deleveraged.",
    )
    demo.add_argument("--preset", default="hyperliquid", choices=presets.names(),
                      help="venue rules (default: hyperliquid)")
    demo.add_argument("--traders", type=_positive, default=200,
                      help="leveraged longs (default: 200)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    demo.set_defaults(run=_demo)
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("perpabm")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _progress_flags(command: argparse.ArgumentParser) -> None:
    flags = command.add_mutually_exclusive_group()
    flags.add_argument("--quiet", action="store_true", help="no progress bar")
    flags.add_argument("--progress", action="store_true",
                       help="a progress bar even when stderr is not a terminal")


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """A warning as one line on stderr, clear of any progress bar."""
    text = " ".join(str(message).split())
    tqdm.write(f"perpabm: warning: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except (ConfigError, StorageError, ValueError) as exc:
            print(f"perpabm: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        except RunInterrupted as exc:
            print(f"perpabm: {exc}", file=sys.stderr)
            return INTERRUPTED_EXIT
        except KeyboardInterrupt:
            print("perpabm: interrupted", file=sys.stderr)
            return INTERRUPTED_EXIT


if __name__ == "__main__":
    sys.exit(main())

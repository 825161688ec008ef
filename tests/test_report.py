"""The standard report: tables, figures and report.md of small real runs, including runs
whose venue has no vault, whose paths never reach ADL and that kept no series."""

import dataclasses
import warnings

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from populations import LEVERED

import perpabm
from perpabm import Shock, analysis, load_scenario, report

ADL_FIGURES = ["adl_scatter.png", "adl_shares.png", "lorenz.png"]
SERIES_FIGURES = ["vault_equity.png", "path_anatomy.png"]


@pytest.fixture(scope="module")
def adl_run():
    """Two vault caps × 4 paths of a short crash that reaches ADL at cap 0, with series."""
    config = (load_scenario("oct10_2025").with_settings(LEVERED).replace("traders.count", 60)
              .replace("run.steps", 80).replace("market.shocks", (Shock(30, -0.15, 10),)))
    results = perpabm.sweep(config, {"vault.cap": [0.0, 2.0]}, n_paths=4, seed=1, n_jobs=1,
                            with_series=True)
    assert results.paths["adl_fired"].sum() > 0, "the fixture must reach ADL"
    return results


@pytest.fixture(scope="module")
def adl_report(adl_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete run reports without a warning
        written = report.write_report(adl_run, out)
    return out, written


@pytest.fixture(scope="module")
def quiet_run(tiny):
    """Two venues × 4 paths, no series: Binance has no vault and no path reaches ADL."""
    results = perpabm.sweep(tiny, {"exchange.preset": ["hyperliquid", "binance"]}, n_paths=4,
                            seed=1, n_jobs=1)
    binance = results.paths["exchange.preset"] == "binance"
    assert results.paths.loc[binance, "vault_pnl"].isna().all()
    assert results.paths["adl_fired"].sum() == 0, "the fixture must not reach ADL"
    assert len(results.series) == 0
    return results


def test_report_writes_every_table_and_figure_of_a_run_with_adl(adl_report):
    out, written = adl_report
    names = [path.name for path in written]
    assert names[-1] == report.REPORT_NAME
    assert set(report.TABLES) <= set(names)
    assert {"adl_frequency.png", "vault_pnl.png", "vault_pnl_ecdf.png", *ADL_FIGURES,
            *SERIES_FIGURES} <= set(names)
    assert all(path.parent == out and path.stat().st_size > 0 for path in written)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # nothing half-written left


def test_report_tables_are_split_by_the_sweep_factor(adl_run, adl_report):
    out, _ = adl_report
    frequency = pd.read_csv(out / "adl_frequency.csv")
    expected = analysis.adl_frequency(adl_run.paths, by=["vault.cap"])
    assert frequency["vault.cap"].tolist() == [0.0, 2.0]
    assert frequency["share"].tolist() == pytest.approx(expected["share"].tolist())
    overshoot = pd.read_csv(out / "overshoot.csv")
    episodes = analysis.adl_overshoot(adl_run.events)
    assert overshoot["episodes"].sum() == len(episodes)


def test_report_md_lists_every_file_and_renders_the_key_table(adl_report):
    out, written = adl_report
    text = (out / report.REPORT_NAME).read_text()
    for path in written[:-1]:
        assert f"`{path.name}`" in text
    assert "| vault.cap | paths | P(ADL) |" in text
    assert "\n| 0 | 4 |" in text and "\n| 2 | 4 |" in text  # a row per cap, 4 paths each
    assert "Not drawn" not in text


def test_report_copes_with_no_vault_no_adl_and_no_series(quiet_run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = report.write_report(quiet_run, tmp_path)
    names = {path.name for path in written}
    assert set(report.TABLES) <= names
    assert not names & {*ADL_FIGURES, *SERIES_FIGURES}
    pnl = pd.read_csv(tmp_path / "vault_pnl.csv").set_index("exchange.preset")
    assert pnl.loc["binance", "paths"] == 0 and pd.isna(pnl.loc["binance", "mean"])
    assert len(pd.read_csv(tmp_path / "adl_by_account_type.csv")) == 0
    text = (tmp_path / report.REPORT_NAME).read_text()
    assert "No vault P&L (a venue without a vault) for: exchange.preset = binance." in text
    for name in ADL_FIGURES:
        assert f"- `{name}`: ADL never fired on any path" in text
    for name in SERIES_FIGURES:
        assert f"- `{name}`: the run kept no per-step series" in text


def test_report_splits_by_the_columns_given(adl_run, tmp_path):
    written = report.write_report(adl_run, tmp_path, by=[])
    assert len(pd.read_csv(tmp_path / "adl_frequency.csv")) == 1  # all 8 paths in one group
    assert "split by nothing (one group)" in written[-1].read_text()
    hint = r"""no column 'vault.capp' \(did you mean "vault.cap"\?\)"""
    with pytest.raises(ValueError, match=hint):
        report.write_report(adl_run, tmp_path, by=["vault.capp"])


def test_report_of_two_factors_draws_the_heatmap(adl_run, tmp_path):
    written = report.write_report(adl_run, tmp_path, by=["vault.cap", "path"])
    assert "adl_heatmap.png" in {path.name for path in written}
    assert len(pd.read_csv(tmp_path / "vault_pnl.csv")) == 8  # 2 caps × 4 paths


def test_report_of_a_partial_run_warns_and_says_so(adl_run, tmp_path):
    failed = pd.DataFrame({"point": [0], "path": [4], "error_type": ["RuntimeError"]})
    partial = dataclasses.replace(adl_run, failures=failed)
    with pytest.warns(RuntimeWarning, match=r"1 path\(s\) failed"):
        written = report.write_report(partial, tmp_path, by=["vault.cap"])
    assert "**Partial:** 1 path(s) failed" in written[-1].read_text()

"""Calibration by simulated moments: a scenario's free parameters fitted to a record.

The record is a tuple of :class:`perpabm.validate.Fact` (2025-10-10 on Hyperliquid by
default); the model's figure for a fact is its statistic over paths of its measure
(:func:`perpabm.validate.path_measures`): the median, or for the yes/no "ADL fired"
the share of paths. The objective is a distance between the two, as in the simulated
method of moments (McFadden 1989; Pakes and Pollard 1989):

    J(θ) = Σ_f term_f(θ),   term_f = ln(m_f(θ) / r_f)²,

with m_f(θ) the model's figure at θ (a median, or a share of paths) and r_f the nearer
end of the record's range [low, high] (term 0 inside it). The facts are times, shares,
leverages and ratios of money whose errors are multiplicative — twice too long is as far
off as half as long — and whose sizes differ by orders of magnitude (seconds against
shares), so each term is a squared log ratio: unit-free, without weights to choose. A
figure more than :data:`MAX_FACTOR` away, not positive where the record is, or given by
no path (ADL never fired) counts as that factor, ln(100)² = 21.2. A record of 0 (bad
debt) is met by a figure of 0; a figure m there counts (m / :data:`ZERO_SCALE`)², at
most the same 21.2.

Every candidate runs on the same path seeds (common random numbers: the runner's
sweep seeds path k alike at every point), so two candidates differ by their
parameters, not by their draws, and J is a deterministic function of θ for a given
seed — a step function, since a path's events change discretely with θ.

The optimiser is scipy's differential evolution (Storn and Price 1997), chosen over a
local method (Nelder–Mead, Powell) because J is piecewise constant and has several
basins, where a simplex stalls on a flat step; over a sequential model-based method
(optuna's TPE) because each generation's candidates are independent, so the whole
generation runs as one sweep over both cores (``vectorized=True``), and because scipy
is already a dependency. ``polish`` is off: a gradient polish has nothing to follow on
a step function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from perpabm.config import ScenarioConfig
from perpabm.results import Results
from perpabm.runner import point_config, sweep
from perpabm.validate import OCT10_2025, Fact, record_table

__all__ = ["MAX_FACTOR", "MAX_TERM", "ZERO_SCALE", "Fit", "calibrate", "objective_terms"]

MAX_FACTOR = 100.0
"""The largest miss a term counts, as a factor: further off, not positive where the
record is, or missing, a figure counts as this far off."""
MAX_TERM = math.log(MAX_FACTOR) ** 2
"""ln(100)² = 21.2: the most one fact adds to J."""
ZERO_SCALE = 1e-3
"""For a record of 0 (bad debt as a share of the notional liquidated): the figure that
counts as a term of 1 — a tenth of a percent."""


@dataclass(frozen=True)
class Fit:
    """The outcome of :func:`calibrate`.

    - ``parameters``: the best candidate, dotted path → value;
    - ``objective``: J at it; ``terms``: each fact's term of J there;
    - ``config``: the scenario with the parameters applied;
    - ``table``: :func:`perpabm.validate.record_table` of its paths;
    - ``history``: every candidate evaluated, in order (``evaluation``, ``generation``,
      the parameters, ``objective`` and each fact's figure, ``model_<measure>``).
    """

    parameters: dict[str, float]
    objective: float
    terms: pd.Series
    config: ScenarioConfig
    table: pd.DataFrame
    history: pd.DataFrame


def objective_terms(figures: pd.Series, facts: tuple[Fact, ...]) -> pd.Series:
    """Each fact's term of J (the module docstring), from the model's figure for each
    fact (`figures`, indexed by the facts' measures; NaN where no path gives it).

    Worked example: a median of 240 s against a record of 652.6 s: ln(652.6 / 240)² =
    1.000² = 1.00; 3.27x against 0.18–0.20x: ln(3.27 / 0.20)² = 2.794² = 7.81; 0.6
    against 0.382–0.617: 0 (inside); a negative vault return against 0.075–0.146, or
    no ADL at all: ln(100)² = 21.2; bad debt 0.0005 of the notional against 0:
    (0.0005 / 0.001)² = 0.25.
    """
    terms = {}
    for fact in facts:
        figure = float(figures[fact.measure])
        if math.isnan(figure):
            term = MAX_TERM
        elif fact.low <= figure <= fact.high:
            term = 0.0
        elif fact.low <= 0.0 <= fact.high:  # a record of 0, or about it: an absolute gap
            gap = max(fact.low - figure, figure - fact.high)
            term = min((gap / ZERO_SCALE) ** 2, MAX_TERM)
        else:
            near = fact.low if figure < fact.low else fact.high
            ratio = figure / near
            term = MAX_TERM if ratio <= 1.0 / MAX_FACTOR else min(math.log(ratio) ** 2,
                                                                  MAX_TERM)
        terms[fact.measure] = term
    return pd.Series(terms, name="term")


def _tables(results: Results, configs: list[ScenarioConfig],
            facts: tuple[Fact, ...]) -> list[pd.DataFrame]:
    """The :func:`perpabm.validate.record_table` of each point of a sweep, measured with
    the point's own config (its step, its vault's capital)."""
    paths = dict(tuple(results.paths.groupby("point")))
    events = dict(tuple(results.events.groupby("point"))) if len(results.events) else {}
    return [record_table(Results(paths=paths.get(point, results.paths.iloc[:0]),
                                 events=events.get(point, results.events.iloc[:0]),
                                 series=results.series.iloc[:0]), config, facts)
            for point, config in enumerate(configs)]


def calibrate(config: ScenarioConfig, parameters: Mapping[str, tuple[float, float]],
              facts: tuple[Fact, ...] = OCT10_2025, n_paths: int = 16, seed: int = 0, *,
              popsize: int = 4, maxiter: int = 5, optimizer_seed: int = 0,
              n_jobs: int = -1, progress: bool = False) -> Fit:
    """Fit `parameters` (dotted path → (low, high)) of `config` to `facts` by
    differential evolution on J (the module docstring), each candidate on the same
    `n_paths` path seeds from `seed`.

    A generation of popsize · len(parameters) candidates runs as one sweep (``"zip"``
    design); `maxiter` generations follow the first, so at most
    popsize · len(parameters) · (maxiter + 1) candidates run; the fit is the one with the
    least J, with the table of its own paths. A range whose ends are both integers
    gives integers. `optimizer_seed` seeds the optimiser's draws, apart
    from the paths' `seed`.
    """
    if not parameters:
        raise ValueError("parameters must name at least one dotted setting to fit")
    measures = [f.measure for f in facts]
    if len(set(measures)) < len(measures):
        raise ValueError("facts must hold one fact a measure; "
                         f"{sorted({m for m in measures if measures.count(m) > 1})} repeat")
    names = list(parameters)
    bounds = []
    for name, (low, high) in parameters.items():
        if not low < high:
            raise ValueError(f"parameters[{name!r}] must be a (low, high) range with "
                             f"low < high; got {(low, high)!r}")
        bounds.append((float(low), float(high)))
    integer = [isinstance(parameters[n][0], int) and isinstance(parameters[n][1], int)
               for n in names]

    def setting(row: np.ndarray) -> dict[str, float]:
        return {n: (round(float(v)) if i else float(v))
                for n, v, i in zip(names, row, integer, strict=True)}

    history: list[dict[str, float]] = []
    tables: list[pd.DataFrame] = []  # each candidate's record table, as history

    def objective(x: np.ndarray) -> np.ndarray:
        candidates = [setting(column) for column in np.atleast_2d(x.T)]
        configs = [point_config(config, c) for c in candidates]
        grid = {n: [c[n] for c in candidates] for n in names}
        results = sweep(config, grid, n_paths, seed, design="zip", n_jobs=n_jobs,
                        progress=progress)
        values = np.empty(len(candidates))
        generation = len({h["generation"] for h in history})
        for point, (candidate, table) in enumerate(zip(
                candidates, _tables(results, configs, facts), strict=True)):
            figures = pd.Series(table["model"].to_numpy(), index=measures)
            terms = objective_terms(figures, facts)
            values[point] = float(terms.sum())
            history.append({"evaluation": len(history), "generation": generation,
                            **candidate, "objective": values[point],
                            **{f"model_{k}": float(v) for k, v in figures.items()}})
            tables.append(table)
        return values

    optimize.differential_evolution(
        objective, bounds, popsize=popsize, maxiter=maxiter, init="latinhypercube",
        polish=False, vectorized=True, updating="deferred", tol=0.0,
        rng=np.random.default_rng(optimizer_seed))
    frame = pd.DataFrame(history)
    best = int(frame["objective"].idxmin())
    fitted = {n: history[best][n] for n in names}
    table = tables[best]
    terms = objective_terms(pd.Series(table["model"].to_numpy(), index=measures), facts)
    return Fit(parameters=fitted, objective=float(terms.sum()), terms=terms,
               config=point_config(config, fitted), table=table, history=frame)

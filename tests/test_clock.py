"""The clock: steps cut into ticks, fixed or adaptive; it refines under stress and
coarsens after (``run.clock``, :mod:`perpabm.clock`)."""

from __future__ import annotations

import numpy as np
import pytest

from perpabm import PerpMarketModel
from perpabm.clock import Clock
from perpabm.config.scenario import RunConfig
from perpabm.errors import ConfigError

ADAPTIVE = {"run.clock": "adaptive", "run.step_seconds": 60.0, "run.fine_step_seconds": 1.0}


def test_times_are_exact_at_each_steps_end():
    # 60 ticks a step: tick 61 ends at 1 + 1/60; tick 120 at exactly 2.0.
    clock = Clock(ticks_per_step=60, calm_ticks=60, steps=3)
    assert clock.time(61) == 1.0 + 1.0 / 60.0
    assert clock.time(120) == 2.0


def test_the_fixed_clock_ticks_at_its_step():
    # 20-second ticks: 3 a step, each one of the finest.
    run = RunConfig(step_seconds=20.0, steps=2)
    clock = Clock.for_run(run)
    assert (clock.ticks_per_step, clock.calm_ticks) == (3, 1)
    assert clock.next_length(stressed=True) == 1 == clock.next_length(stressed=False)


def test_the_adaptive_clock_cuts_a_stressed_tick_and_keeps_it_cut_to_its_end():
    clock = Clock(ticks_per_step=60, calm_ticks=60, steps=2)
    assert clock.next_length(stressed=False) == 60  # calm: one tick of a minute
    assert clock.next_length(stressed=True) == 1  # stressed: a second
    clock.position = 1  # inside a cut minute: seconds to its end, calm or not
    assert clock.next_length(stressed=False) == 1
    clock.position = 60  # the next minute's start decides again
    assert clock.next_length(stressed=False) == 60


def test_the_last_tick_stops_at_the_paths_end():
    clock = Clock(ticks_per_step=60, calm_ticks=60, steps=1, position=59)
    assert clock.next_length(stressed=False) == 1


def test_a_step_of_a_minute_or_less_is_a_minute():
    assert RunConfig(step_seconds=5.0).step_minutes == 1.0
    assert RunConfig(step_seconds=300.0).step_minutes == 5.0


@pytest.mark.parametrize("seconds", [7.0, 90.0, 0.0])
def test_a_step_that_does_not_fit_a_minute_is_refused(seconds):
    with pytest.raises(ConfigError, match=r"run\.step_seconds"):
        RunConfig(step_seconds=seconds)


def test_a_fine_tick_must_divide_the_calm_one():
    with pytest.raises(ConfigError, match=r"run\.fine_step_seconds"):
        RunConfig(clock="adaptive", step_seconds=20.0, fine_step_seconds=3.0)


def test_the_moved_step_setting_says_where_it_went():
    with pytest.raises(ConfigError, match=r"market.step_minutes.*run.step_seconds"):
        PerpMarketModel("default", **{"market.step_minutes": 1.0})


def test_one_mesa_step_runs_a_step_of_ticks():
    # 20-second ticks: model.step() runs three, ending at model time 1.0.
    model = PerpMarketModel("default", rng=1, **{"traders.count": 20, "run.steps": 3,
                                                 "run.step_seconds": 20.0})
    model.step()
    assert (model.step_index, model.now, model.clock.position) == (1, 1.0, 3)
    assert model.tick_minutes == pytest.approx(1.0 / 3.0)


def test_a_path_runs_to_its_end_under_any_clock():
    for settings in ({"run.step_seconds": 60.0}, {"run.step_seconds": 5.0}, ADAPTIVE):
        model = PerpMarketModel("default", rng=1, **{"traders.count": 20, "run.steps": 4,
                                                     **settings}).run()
        assert (model.step_index, model.now, model.running) == (4, 4.0, False)
        assert len(model.series) == 4


def test_the_adaptive_clock_refines_in_a_crash_and_coarsens_after():
    # A 10% fall within minute 31: the minutes before it are calm ticks of a minute; the
    # fall's minute is cut into seconds; well after the cascade it is minutes again.
    settings = {**ADAPTIVE, "traders.count": 200, "run.steps": 60,
                "market.process": "gbm", "market.volatility": 0.05,
                "market.shocks": [{"at_minute": 30, "change": -0.10}]}
    model = PerpMarketModel("default", rng=3, **settings)
    ticks: list[tuple[float, float]] = []  # (model time at the tick's end, its minutes)
    while model.running:
        model.step()
        ticks.append((model.now, model.tick_minutes))
    times = np.array([t for t, _ in ticks])
    assert times[-1] == 60.0
    lengths = dict(ticks)  # the tick that ended each step
    assert all(lengths[float(m)] == 1.0 for m in range(1, 20))  # calm: a tick a minute
    assert lengths[31.0] == pytest.approx(1.0 / 60.0)  # the fall: ticks of a second
    assert lengths[60.0] == 1.0  # coarse again at the end

"""The model's clock: how a step (a minute) is cut into ticks, fixed or adaptive.

A path is ``run.steps`` steps; the clock runs each as ticks, every tick a whole number
of the finest ticks the run allows (``RunConfig.ticks_per_step`` of them a step):

- the fixed clock: every tick one of them (``run.step_seconds`` long: 60 of a second
  each minute at 1 s, one at 60 s);
- the adaptive clock: a calm tick is ``RunConfig.coarse_ticks`` of them
  (``run.step_seconds``), and a stressed one is cut into single ones
  (``run.fine_step_seconds``). Whether a calm-length tick is cut is decided at its start
  and holds to its end, so ticks always meet the calm grid and every step ends on a
  tick: the series, the index history and the agents' windows stay a step apart.

The clock counts in whole finest ticks, so times are exact: a tick ends at
``position / ticks_per_step`` steps, a whole number at each step's end (no sum of
float intervals drifts off it). The model runs each tick as an event of Mesa's event
list (``mesa.Model.schedule_event`` at the tick's end time), so ``model.step()``,
``run_for`` and ``run_until`` advance it in steps and a user's own scheduled events
interleave with the ticks at their times.

Worked example: steps of a minute, an adaptive clock of 60 s and 1 s: 60 finest ticks a
step, a calm tick 60 of them. A calm minute is one tick ending at 1.0; a stressed one 60
ticks ending at 1 + 1/60, 1 + 2/60, … 2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpabm.config.scenario import RunConfig

__all__ = ["Clock"]


@dataclass(slots=True)
class Clock:
    """Where a path is in its ticks, and how long the next one is.

    `ticks_per_step` is the finest ticks a step holds, `calm_ticks` how many of them a
    calm tick is (1 under the fixed clock), `steps` the path's length.
    """

    ticks_per_step: int
    calm_ticks: int
    steps: int
    position: int = 0
    """Finest ticks run so far."""

    @classmethod
    def for_run(cls, run: RunConfig) -> Clock:
        """The clock `run` asks for."""
        return cls(run.ticks_per_step, run.coarse_ticks, run.steps)

    @property
    def end(self) -> int:
        """The position at the path's end, in finest ticks."""
        return self.steps * self.ticks_per_step

    @property
    def ticks_are_steps(self) -> bool:
        """Whether every tick is a whole step (one finest tick a step): the model then runs
        it as Mesa's step, at no cost of an event of its own; finer ticks are scheduled
        one by one."""
        return self.ticks_per_step == 1

    @property
    def adaptive(self) -> bool:
        """Whether a tick can be cut finer than a calm one."""
        return self.calm_ticks > 1

    @property
    def deciding(self) -> bool:
        """Whether the next tick starts a calm-length tick: the moment the adaptive clock
        decides whether to cut it."""
        return self.position % self.calm_ticks == 0

    def time(self, position: int | None = None) -> float:
        """Model time, in steps, at `position` (finest ticks; default: now). Exact at a
        step's end: 120 ticks of 60 a step is 2.0, 61 is 1 + 1/60."""
        position = self.position if position is None else position
        steps, within = divmod(position, self.ticks_per_step)
        return steps + within / self.ticks_per_step

    def next_length(self, stressed: bool) -> int:
        """The next tick's length in finest ticks: a calm tick's, unless the clock is
        adaptive and either `stressed` holds at a calm tick's start or a cut tick is not
        over; never past the path's end."""
        if not self.adaptive:
            length = 1
        elif self.deciding:
            length = 1 if stressed else self.calm_ticks
        else:
            length = 1
        return min(length, self.end - self.position)

    def step_ends(self) -> bool:
        """Whether the tick just run ended a step."""
        return self.position % self.ticks_per_step == 0

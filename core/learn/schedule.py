"""The paper's learning-rate schedule (§4.1): Adam's rate halved every third of the planned steps."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["StepHalving", "make_schedule"]


class StepHalving(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay: ``lr = initial * factor ** floor(step / interval)``, ``interval`` =
    ``drop_every * total_steps`` (rounded, at least 1)."""

    def __init__(self, initial_learning_rate: float, total_steps: int, drop_every: float = 1 / 3,
                 factor: float = 0.5):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.drop_every = float(drop_every)
        self.factor = float(factor)
        self.interval = max(1, int(round(self.drop_every * self.total_steps)))

    def __call__(self, step):
        n = ops.floor(ops.cast(step, "float32") / float(self.interval))
        return self.initial_learning_rate * ops.power(self.factor, n)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "total_steps": self.total_steps,
                "drop_every": self.drop_every, "factor": self.factor}


def make_schedule(initial_learning_rate: float, total_steps: int, drop_every: float = 1 / 3,
                  factor: float = 0.5) -> StepHalving:
    """The paper's schedule: ``lr = initial * factor ** floor(step / (drop_every * total_steps))``.

    With the defaults the rate is 1e-4 for the first third of the steps, 5e-5 for the second
    and 2.5e-5 for the last.
    """
    return StepHalving(initial_learning_rate, total_steps, drop_every, factor)

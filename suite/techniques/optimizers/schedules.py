"""schedules: how the learning rate changes over a run (kind "lr_schedule", setting `lr_schedule`).

A schedule is the multiplier of the tuned `learning_rate` at each SGD step, as a function of the
share of the run's steps done. Every procedure that trains reads it. The rate of every step is
computed once, here, as a float32 table: a trial trained alone (Keras' optimizer looks its step up
in `TableSchedule`) and trained packed (suite.techniques.standard.packed reads the same table)
takes bit for bit the same steps.

The shipped schedules follow the benchmarks of training methods: AlgoPerf's baselines and the
Deep Learning Tuning Playbook warm up linearly and decay to zero (`cosine`, `linear`); He et al.
(2016) divide the rate by 10 at half and three quarters of the run (`step`). A run has finished
its schedule when it trained every planned step; the budget-robustness check
(suite.core.budget) rescales the schedule to half the steps, it does not cut it short.
"""

from __future__ import annotations

import math

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.settings import declare_setting, registered_name

keras = import_keras()

WARMUP_SHARE = 0.05  # of the run's steps; AlgoPerf's baselines warm up over 2-5%
STEP_DECAY_AT = (0.5, 0.75)  # He et al. 2016: /10 at 32k and 48k of 64k iterations
STEP_DECAY_FACTOR = 0.1

declare_setting("lr_schedule", "training", registered_name("lr_schedule"),
                "how the learning rate changes over the run: constant, cosine or linear (5% linear warm-up, "
                "then decay to 0), step (/10 at 50% and 75% of the steps)")


def _warmup(steps: np.ndarray, total: int) -> tuple[np.ndarray, int]:
    """The warm-up's multiplier (1 after it) and its length in steps (at least one)."""
    length = max(1, round(WARMUP_SHARE * total))
    return np.minimum(1.0, (steps + 1) / length), length


@registry.register("lr_schedule", "constant")
def constant(steps: np.ndarray, total: int) -> np.ndarray:
    return np.ones(len(steps))


@registry.register("lr_schedule", "cosine")
def cosine(steps: np.ndarray, total: int) -> np.ndarray:
    """Linear warm-up, then half a cosine from 1 down to 0 at step `total`."""
    warm, length = _warmup(steps, total)
    done = np.clip((steps - length + 1) / max(1, total - length + 1), 0.0, 1.0)
    return np.where(steps < length, warm, 0.5 * (1.0 + np.cos(math.pi * done)))


@registry.register("lr_schedule", "linear")
def linear(steps: np.ndarray, total: int) -> np.ndarray:
    """Linear warm-up, then a straight line from 1 down to 0 at step `total`."""
    warm, length = _warmup(steps, total)
    done = np.clip((steps - length + 1) / max(1, total - length + 1), 0.0, 1.0)
    return np.where(steps < length, warm, 1.0 - done)


@registry.register("lr_schedule", "step")
def step(steps: np.ndarray, total: int) -> np.ndarray:
    """He et al.'s step decay: the full rate, then a tenth from half the steps, a hundredth from three quarters."""
    drops = sum((steps >= round(at * total)).astype(float) for at in STEP_DECAY_AT)
    return STEP_DECAY_FACTOR ** drops


def schedule_name(config: dict) -> str:
    """The config's schedule. Study files must name one (the loader requires it); a config built by
    hand (a test, a bench script) that names none trains at a constant rate."""
    return config.get("lr_schedule", "constant")


def step_rates(config: dict, total_steps: int, learning_rate: float | None = None) -> np.ndarray:
    """The learning rate of each of a run's `total_steps` SGD steps, float32, as every trainer uses it."""
    rate = config["learning_rate"] if learning_rate is None else learning_rate
    steps = np.arange(total_steps, dtype=np.float64)
    multiplier = registry.get("lr_schedule", schedule_name(config))(steps, total_steps)
    return (float(rate) * multiplier).astype(np.float32)


class TableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Keras' learning rate at an optimizer step: the step's entry of a precomputed table
    (the last entry for steps past its end, e.g. a fit continued beyond its plan)."""

    def __init__(self, rates: np.ndarray):
        self.rates = np.asarray(rates, dtype=np.float32)

    def __call__(self, step):
        index = keras.ops.minimum(keras.ops.cast(step, "int32"), len(self.rates) - 1)
        return keras.ops.take(keras.ops.convert_to_tensor(self.rates), index)

    def get_config(self) -> dict:
        return {"rates": self.rates.tolist()}


def learning_rate_for(config: dict, total_steps: int, learning_rate: float | None = None):
    """What `compile_model` takes as the learning rate of a run of `total_steps` steps: the plain
    number for a constant schedule (Keras' own path), else the step table."""
    rate = config["learning_rate"] if learning_rate is None else learning_rate
    if schedule_name(config) == "constant":
        return rate
    return TableSchedule(step_rates(config, total_steps, rate))

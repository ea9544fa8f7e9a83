"""probe: what every probe is (a measurement at initialisation and after each epoch) and how a
trainer builds the study's probes.

A probe subclasses `Probe` and says only what it measures: `prepare()` once its model is set,
and `measure(epoch, logs)` -> (per-layer rows, scalar columns); the base class owns the life
cycle (epoch 0 before the first step, then after every epoch) and keeps what was measured.
Keras' `fit` drives it as a callback; a trainer that runs its own loop (packed training) calls
`observe(epoch, logs)`. Both build probes through `build_probes`, which also hands the training
sample to the probes that compare with it (`needs_training_sample`: D1, D4).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras

keras = import_keras()


class Probe(keras.callbacks.Callback):
    needs_training_sample = False  # True: the trainer calls `use_training_sample(x, y)` before training

    def __init__(self):
        super().__init__()
        self.layer_rows: list[dict] = []  # one per (epoch, layer)
        self.epoch_columns: dict[int, dict] = {}  # epoch -> scalar columns

    def prepare(self) -> None:
        """Once the model is set, before the measurement at epoch 0."""

    def measure(self, epoch: int, logs: dict) -> tuple[list[dict], dict]:
        raise NotImplementedError

    def use_training_sample(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not read the training sample")

    def observe(self, epoch: int, logs: dict | None = None) -> None:
        """Measure at `epoch` (0: before training, which prepares first) and keep the result."""
        if epoch == 0:
            self.prepare()
        rows, columns = self.measure(epoch, logs or {})
        self.layer_rows.extend(rows)
        self.epoch_columns[epoch] = columns

    def on_train_begin(self, logs=None):
        self.observe(0)

    def on_epoch_end(self, epoch, logs=None):
        self.observe(epoch + 1, logs)


def build_probes(names, probe_x: np.ndarray, probe_y: np.ndarray, config: dict,
                 training_sample: Callable[[], tuple] | None = None) -> list[Probe]:
    """The registered probes `names` for one trial, in order; `training_sample()` gives (x, y) of
    the images the trial trains on, asked for only when a probe needs them."""
    probes = [registry.get("probe", name)(probe_x, probe_y, config) for name in names]
    sample = None
    for probe in probes:
        if probe.needs_training_sample:
            if training_sample is None:
                raise ValueError(f"probe {type(probe).__name__} needs the training sample, and this trainer gives none")
            sample = sample or training_sample()
            probe.use_training_sample(*sample)
    return probes

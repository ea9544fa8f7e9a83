"""probe: the base class owns the life cycle (prepare, epoch 0, then after every epoch) for Keras'
fit and for a trainer that drives probes itself; build_probes hands the training sample over."""

import numpy as np
import pytest

from suite.core import probe as probes
from suite.core.probe import Probe, build_probes


class Recorder(Probe):
    def __init__(self, probe_x, probe_y, config):
        super().__init__()
        self.calls, self.sample = [], None

    def prepare(self):
        self.calls.append("prepare")

    def measure(self, epoch, logs):
        self.calls.append(epoch)
        return [{"probe": "recorder", "epoch": epoch, "layer": 1}], {"seen": logs.get("val_accuracy", -1.0)}


class NeedsSample(Recorder):
    needs_training_sample = True

    def use_training_sample(self, x, y):
        self.sample = (x, y)


def test_keras_hooks_and_observe_run_one_life_cycle():
    recorder = Recorder(None, None, {})
    recorder.on_train_begin()
    recorder.on_epoch_end(0, {"val_accuracy": 0.5})
    recorder.observe(2, {"val_accuracy": 0.75})  # a trainer that runs its own loop
    assert recorder.calls == ["prepare", 0, 1, 2]
    assert recorder.epoch_columns == {0: {"seen": -1.0}, 1: {"seen": 0.5}, 2: {"seen": 0.75}}
    assert [row["epoch"] for row in recorder.layer_rows] == [0, 1, 2]


def test_build_probes_asks_for_the_training_sample_once_and_only_when_needed(scoped_registry):
    scoped_registry.add("probe", "recorder", Recorder)
    scoped_registry.add("probe", "needs_sample", NeedsSample)
    asked = []

    def sample():
        asked.append(1)
        return np.zeros((2, 3)), np.zeros(2)

    built = build_probes(["recorder", "needs_sample", "needs_sample"], None, None, {}, training_sample=sample)
    assert [type(p) for p in built] == [Recorder, NeedsSample, NeedsSample]
    assert built[0].sample is None and built[1].sample is not None and len(asked) == 1
    assert build_probes(["recorder"], None, None, {}) and not asked[1:]  # no sample asked for, none needed
    with pytest.raises(ValueError, match="needs the training sample"):
        probes.build_probes(["needs_sample"], None, None, {})

"""A compiled twin (suite.core.twins) trains the numbers the model itself would, and is shared
only by models whose traced functions are the same."""

import random

import numpy as np
import pytest

from suite.core import twins
from suite.core.backend import import_keras
from suite.core.fit import TrialContext, compile_model, fit

keras = import_keras()
CONFIG = {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9}


def _model(dropout: float = 0.3, frozen: bool = False) -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(keras.layers.Activation("relu")(x))
    x = keras.layers.Dropout(dropout)(x)  # a random generator whose state is a variable
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.get_layer("conv").trainable = not frozen
    return model


def _compile(model: keras.Model) -> None:
    compile_model(model, CONFIG, keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])


DATA = np.random.default_rng(0).random((96, 8, 8, 1), dtype="float32"), np.arange(96) % 3


def _train(seed: int, through_twin: bool) -> tuple[list, list]:
    """A trial: seed, build, train 2 shuffled epochs; returns (history rows, trained values)."""
    keras.utils.set_random_seed(seed)
    model = _model()
    if through_twin:
        trained = twins.compiled_twin(model, {"config": CONFIG}, _compile)
    else:
        _compile(trained := model)
    result = fit(trained, TrialContext(), epochs=2, x=DATA[0], y=DATA[1], batch_size=16)
    if through_twin:
        twins.copy_values(trained, model)
    return result.rows(), [keras.ops.convert_to_numpy(v) for v in model.variables]


def test_a_twin_trains_the_same_numbers_as_the_model_compiled_itself(monkeypatch):
    monkeypatch.setattr(twins, "_TWINS", {})
    for seed in (0, 1, 0):  # the first compiles the twin; the others reuse it, one after another trial
        rows, values = _train(seed, through_twin=True)
        expected_rows, expected_values = _train(seed, through_twin=False)
        assert rows == expected_rows
        assert all(np.array_equal(a, b) for a, b in zip(values, expected_values))
    assert len(twins._TWINS) == (1 if keras.config.backend() == "tensorflow" else 0)


def test_compiling_a_twin_leaves_the_random_state_as_it_was(monkeypatch):
    monkeypatch.setattr(twins, "_TWINS", {})
    keras.utils.set_random_seed(3)
    model = _model()
    python_state, numpy_state = random.getstate(), np.random.get_state()[1].copy()
    twins.compiled_twin(model, {}, _compile)
    assert random.getstate() == python_state and np.array_equal(np.random.get_state()[1], numpy_state)


def test_only_models_that_trace_alike_share_a_twin():
    key = twins.structure_key(_model(), {})
    assert twins.structure_key(_model(), {}) == key  # other automatic names, same structure
    assert twins.structure_key(_model(dropout=0.5), {}) != key  # a setting the trace reads
    assert twins.structure_key(_model(frozen=True), {}) != key  # which variables train
    assert twins.structure_key(_model(), {"momentum": 0.0}) != key  # a compile setting


def test_a_model_with_constants_derived_from_its_variables_compiles_itself(monkeypatch):
    """A Normalization layer turns its mean and variance into constants that a trace keeps
    (EfficientNet's ImageNet input statistics): no twin could take another model's."""
    monkeypatch.setattr(twins, "_TWINS", {})
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Normalization()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    assert twins.compiled_twin(model, {}, _compile) is model and not twins._TWINS


class Unclonable(keras.Model):
    """A subclassed model with a required argument and no config: Keras cannot rebuild it."""

    def __init__(self, units):
        super().__init__()
        self.dense = keras.layers.Dense(units)

    def call(self, x):
        return self.dense(keras.ops.reshape(x, (-1, 64)))


def test_a_model_keras_cannot_clone_compiles_itself(monkeypatch):
    monkeypatch.setattr(twins, "_TWINS", {})
    model = Unclonable(3)
    model(DATA[0][:2])
    assert twins.compiled_twin(model, {}, _compile) is model and not twins._TWINS
    fit(model, TrialContext(), epochs=1, x=DATA[0], y=DATA[1], batch_size=16)  # and trains as before


def test_copying_values_between_other_structures_is_refused():
    import pytest

    other = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="same variables"):
        twins.copy_values(_model(), other)


@pytest.mark.jax
def test_on_jax_every_model_compiles_itself():
    """On JAX a fresh model's first fit draws one data order more than a reused twin's
    (suite.core.twins), so there twins are off: the model trains itself, with its numbers
    (a fresh process: the backend is per process)."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    script = ("from suite.core.plugins import load_plugins\n"
              "load_plugins()\n"
              "import pytest\n"
              "from tests.core import test_twins as t\n"
              "model = t._model()\n"
              "assert t.twins.compiled_twin(model, {}, t._compile) is model and not t.twins._TWINS\n"
              "with pytest.MonkeyPatch.context() as patch:\n"
              "    t.test_a_twin_trains_the_same_numbers_as_the_model_compiled_itself(patch)\n"
              "print('jax ok', t.keras.config.backend())\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "jax ok jax" in done.stdout, done.stderr[-3000:]

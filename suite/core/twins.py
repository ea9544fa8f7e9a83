"""twins: one compiled model per structure and process, to train every model of that structure.

Compiling and fitting a fresh Keras model traces its train and test functions again: about
1 s of each `fit` for the transfer study's small convnets (measured: 2.4 s for a fresh model's
150 steps, 1.4 s for the same steps on a model traced before), and a quick transfer run calls
`fit` about 150 times. A twin is a clone of the first model of a structure, compiled once.
Training a later model of that structure copies its values into the twin, puts the twin's
optimizer back to its state when first built (what a fresh optimizer starts from), fits the
twin and copies the trained values back: the same arithmetic on the same values, without tracing again.

What the traced functions read is in the key: the model's config (layers, their settings,
trainable flags, how they are wired) with the automatic names (functional_7, dense_3) replaced
by their order, which variables train, and the compile settings the caller names (constants
the trace bakes in among them). The values of variables (weights, optimizer state) are not.
Cloning draws no random numbers (the random state is put back), so which trial compiled a
twin changes no trial's numbers (tested).

TensorFlow only: on JAX, Keras builds a freshly compiled model on one batch at the start of its
first `fit`, which draws one shuffled data order more than a fit of a twin compiled before
(measured: the reused twin then trained on other batches), so there every model compiles itself.
So it does with `SUITE_NO_TWINS=1` in the environment, for comparison (bench/twins.py) and debugging.
A model with a layer that derives constants from its variables (`finalize_state`: the
Normalization layer in front of EfficientNet's ImageNet weights) compiles itself too: a trace
keeps those constants, and copying the variables would not change them.
(The standard procedure keeps its own cache, keyed by the trial's config: its data order is
explicit, not Keras' shuffle, so it reuses compiled models on JAX too.)
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np

from suite.core.backend import import_keras
from suite.core.keys import canonical_json

keras = import_keras()

MAX_TWINS = 64  # the transfer study has about 20 keys (structure, phase, schedule length); twins are small
UNCLONABLE = (NotImplementedError, TypeError, ValueError)  # what Keras raises for a model it cannot describe or rebuild
_TWINS: dict[str, tuple[keras.Model, list]] = {}  # key -> (twin, its optimizer's variables when fresh)


def structure_key(model: keras.Model, settings: dict) -> str:
    """Equal for two models exactly when one's traced train/test functions serve the other."""
    config = keras.saving.serialize_keras_object(model)
    order: dict[str, str] = {}

    def collect(node):
        if isinstance(node, dict):
            if isinstance(node.get("name"), str):
                order.setdefault(node["name"], f"#{len(order)}")
            for value in node.values():
                collect(value)
        elif isinstance(node, list | tuple):
            for value in node:
                collect(value)

    def rename(node):
        if isinstance(node, dict):
            return {key: rename(value) for key, value in node.items()}
        if isinstance(node, list | tuple):
            return [rename(value) for value in node]
        return order.get(node, node) if isinstance(node, str) else node

    collect(config)
    trains = {id(variable) for variable in model.trainable_variables}
    return canonical_json({"model": rename(config), "trains": [id(v) in trains for v in model.variables],
                           "settings": settings})


def _clone(model: keras.Model) -> keras.Model:
    """A new model of the same structure; the Python and NumPy random states are put back, so
    the initial values the clone draws leave every later draw as it would have been."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        return keras.models.clone_model(model)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def copy_values(source: keras.Model, target: keras.Model) -> None:
    """Every variable (weights, batch-norm statistics, random-generator states) from `source`."""
    if [v.shape for v in source.variables] != [v.shape for v in target.variables]:
        raise ValueError(f"twins: {source.name} and {target.name} do not have the same variables")
    for to, value in zip(target.variables, source.variables):
        to.assign(value)


def compiled_twin(model: keras.Model, settings: dict, compile: Callable[[keras.Model], None]) -> keras.Model:
    """A compiled model of `model`'s structure holding `model`'s values, its optimizer as freshly built.

    `compile(twin)` compiles a new twin; `settings` holds everything `compile` reads (a
    constant it bakes into the traced functions, such as a schedule's length, included).
    Train the twin, then `copy_values(twin, model)`. Where no twin can serve (module
    docstring), `model` itself is compiled and returned."""
    twin = _twin_for(model, settings, compile)
    if twin is None:
        compile(model)
        return model
    copy_values(model, twin)
    return twin


def _twin_for(model: keras.Model, settings: dict, compile: Callable[[keras.Model], None]) -> keras.Model | None:
    """The stored twin of `model`'s structure with its optimizer reset, a new one, or None."""
    derived_constants = any(hasattr(layer, "finalize_state") for layer in model._flatten_layers())
    if keras.config.backend() != "tensorflow" or os.environ.get("SUITE_NO_TWINS") == "1" or derived_constants:
        return None
    try:
        key = structure_key(model, settings)
    except UNCLONABLE:  # no config to tell structures apart
        return None
    if key in _TWINS:
        twin, fresh_optimizer = _TWINS[key]
        if len(twin.optimizer.variables) != len(fresh_optimizer):
            raise RuntimeError(f"twins: the optimizer of {twin.name} made variables after it was built")
        for variable, value in zip(twin.optimizer.variables, fresh_optimizer):
            variable.assign(value)
        return twin
    try:
        twin = _clone(model)
    except UNCLONABLE:  # Keras cannot rebuild it from its config
        return None
    if structure_key(twin, settings) != key:  # a clone that lost a setting
        return None
    compile(twin)
    # built now (fit would build it at its start), so its fresh state can be kept: not always
    # zeros (Adagrad starts its sums at 0.1), and its learning rate may be a variable
    twin.optimizer.build(twin.trainable_variables)
    if len(_TWINS) >= MAX_TWINS:
        _TWINS.pop(next(iter(_TWINS)))
    _TWINS[key] = twin, [keras.ops.convert_to_numpy(v) for v in twin.optimizer.variables]
    return twin

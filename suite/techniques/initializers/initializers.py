"""initializers: weight initialisers by name (claims I1-I6).

Keras' initializers (`keras.initializers.get`: zeros, glorot_normal, he_normal, ...)
come first; registered here are only what Keras lacks: a fixed-std normal
(`normal_<std>`, the notes' N(0, 1) and N(0, 0.01)) and a usable `constant`.
Initialisers are built unseeded: a trial seeds Keras' global generator once
(`keras.utils.set_random_seed`), so each layer draws different weights.
"""

from __future__ import annotations

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.settings import declare_setting, registered_name

keras = import_keras()

# A non-zero constant, so that `constant` shows symmetry (I1) without being `zeros`.
CONSTANT_VALUE = 0.1


@registry.register_pattern("initializer", r"normal_(\d+(?:\.\d+)?(?:e-?\d+)?)", "normal_<std>")
def normal(match) -> keras.initializers.Initializer:
    """N(0, std^2) regardless of fan-in: the naive scales the notes start from (I2, I3)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=float(match.group(1)))


@registry.register_pattern("initializer", r"constant_(-?\d+(?:\.\d+)?)", "constant_<value>")
def constant_value(match) -> keras.initializers.Initializer:
    return keras.initializers.Constant(float(match.group(1)))


@registry.register("initializer")
def constant() -> keras.initializers.Initializer:
    """Every weight equal and non-zero: symmetry is never broken (I1)."""
    return keras.initializers.Constant(CONSTANT_VALUE)


def _keras_initializer(name: str):
    try:
        return keras.initializers.get(name)
    except (ValueError, TypeError, KeyError):
        return None


def is_known(name: str) -> bool:
    return registry.lookup("initializer", name) is not None or _keras_initializer(name) is not None


def list_known() -> list[str]:
    keras_names = ["glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "ones", "orthogonal", "zeros"]
    return sorted(set(keras_names) | set(registry.list_names("initializer")))


_NAME = registered_name("initializer", is_known, list_known)
declare_setting("kernel_initializer", "model", _NAME, "initial weights: a Keras initializer, normal_<std> or constant")
declare_setting("bias_initializer", "model", _NAME, "initial biases (default zeros)")


def build_initializer(name: str) -> keras.initializers.Initializer:
    factory = registry.lookup("initializer", name)
    if factory is not None:
        return factory()
    init = _keras_initializer(name)
    if init is None:
        raise registry.UnknownNameError("initializer", name, list_known())
    return init

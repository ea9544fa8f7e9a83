"""activations: hidden-layer nonlinearities by name, as Keras layers.

Keras' own activations (`keras.activations.get`) come first; only what Keras lacks is
registered here (kind "activation"). Bounded activations declare their output range so
the probes can measure saturation (claims A1, A3, I2).
"""

from __future__ import annotations

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.settings import declare_setting, registered_name

keras = import_keras()

# Output range of bounded activations: a unit is "saturated" near either end (A1, I2).
BOUNDED_RANGE = {
    "sigmoid": (0.0, 1.0),
    "sigmoid_centered": (-0.5, 0.5),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}


def is_keras_activation(name: str) -> bool:
    try:
        keras.activations.get(name)
        return True
    except (ValueError, TypeError):
        return False


def is_known(name: str) -> bool:
    return is_keras_activation(name) or registry.lookup("activation", name) is not None


def list_known() -> list[str]:
    keras_names = ["elu", "gelu", "leaky_relu", "linear", "relu", "selu", "sigmoid", "silu", "softplus", "tanh"]
    return sorted(set(keras_names) | set(registry.list_names("activation")))


declare_setting("activation", "model", registered_name("activation", is_known, list_known),
                "hidden-layer nonlinearity: a Keras activation or a registered one (prelu, maxout, sigmoid_centered)")


def build_activation(name: str, layer_name: str) -> keras.layers.Layer:
    """A layer applying activation `name`; registered layers win over plain functions."""
    factory = registry.lookup("activation", name)
    if factory is not None:
        return factory(name=layer_name)
    if not is_keras_activation(name):
        raise registry.UnknownNameError("activation", name, list_known())
    return keras.layers.Activation(name, name=layer_name)


def _sigmoid_centered(x):
    return keras.ops.sigmoid(x) - 0.5


@registry.register("activation", "sigmoid_centered")
def sigmoid_centered(name: str) -> keras.layers.Layer:
    """sigmoid(x) - 1/2: sigmoid moved to zero mean, same slope (1/4 at 0) and range width (A2b).

    tanh(x) = 2 sigmoid(2x) - 1 differs from sigmoid in centring *and* in a 4x steeper slope
    at 0; this one differs in centring only, so the study can tell the two apart.
    """
    return keras.layers.Activation(_sigmoid_centered, name=name)


@registry.register("activation", "prelu")
def prelu(name: str) -> keras.layers.Layer:
    """PReLU (He et al. 2015): the negative slope is learned per unit (A6)."""
    return keras.layers.PReLU(name=name)


class Maxout(keras.layers.Layer):
    """Maxout (Goodfellow et al. 2013): the max over `pieces` linear units per output.

    The preceding linear layer is built `pieces` times wider (see `units_per_output`),
    so a maxout net has about `pieces` x the parameters of a ReLU net (A8).
    """

    def __init__(self, pieces: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pieces = pieces

    def call(self, x):
        channels = x.shape[-1] // self.pieces
        grouped = keras.ops.reshape(x, (-1, *x.shape[1:-1], channels, self.pieces))
        return keras.ops.max(grouped, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.pieces)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces}


MAXOUT_PIECES = 2


@registry.register("activation", "maxout")
def maxout(name: str) -> keras.layers.Layer:
    return Maxout(MAXOUT_PIECES, name=name)


def units_per_output(name: str) -> int:
    """Linear units needed per hidden unit: `pieces` for maxout, 1 otherwise."""
    return MAXOUT_PIECES if name == "maxout" else 1

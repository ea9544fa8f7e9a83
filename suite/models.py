"""models: network families by name (kind "model"), built from a study's model config.

Every hidden nonlinearity is a layer named `act_<i>`, so probes find the hidden
representations without knowing the family. Keyword names follow Keras
(`kernel_initializer`, `activation`) so a study factor maps straight onto them.
"""

from __future__ import annotations

from suite import registry
from suite.activations import build_activation
from suite.backend import import_keras
from suite.initializers import build_initializer

keras = import_keras()

HIDDEN_PREFIX = "act_"
# Model keywords a study may set (in `model:` or as a factor), with their defaults.
MODEL_DEFAULTS = {
    "family": "mlp",
    "depth": 5,
    "width": 100,
    "activation": "relu",
    "kernel_initializer": "glorot_uniform",
    "norm": "none",
}
NORMS = ("none", "batchnorm", "layernorm")


def build_norm(norm: str, name: str) -> keras.layers.Layer | None:
    if norm == "batchnorm":
        return keras.layers.BatchNormalization(name=name)
    if norm == "layernorm":
        return keras.layers.LayerNormalization(name=name)
    return None


def _hidden_block(x, layer, index: int, activation: str, norm: str):
    """linear layer -> optional norm -> activation `act_<index>`."""
    x = layer(x)
    norm_layer = build_norm(norm, f"norm_{index}")
    if norm_layer is not None:
        x = norm_layer(x)
    return build_activation(activation, f"{HIDDEN_PREFIX}{index}")(x)


@registry.register("model")
def mlp(input_shape, num_classes, depth=5, width=100, activation="relu",
        kernel_initializer="glorot_uniform", norm="none") -> keras.Model:
    """`depth` fully connected hidden layers of `width` units (the notes' 5x100 net)."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for i in range(1, depth + 1):
        dense = keras.layers.Dense(width, kernel_initializer=build_initializer(kernel_initializer), name=f"dense_{i}")
        x = _hidden_block(x, dense, i, activation, norm)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="mlp")


@registry.register("model")
def cnn(input_shape, num_classes, depth=2, width=32, activation="relu",
        kernel_initializer="glorot_uniform", norm="none") -> keras.Model:
    """`depth` 3x3 conv layers of `width` channels, 2x2 max-pool after every second one."""
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(1, depth + 1):
        conv = keras.layers.Conv2D(width, 3, padding="same",
                                   kernel_initializer=build_initializer(kernel_initializer), name=f"conv_{i}")
        x = _hidden_block(x, conv, i, activation, norm)
        if i % 2 == 0 and x.shape[1] > 2:
            x = keras.layers.MaxPooling2D(name=f"pool_{i}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_model(config: dict, input_shape, num_classes: int) -> keras.Model:
    """The model named by config["family"], with the config's model keywords."""
    family = registry.get("model", config["family"])
    kwargs = {k: config[k] for k in MODEL_DEFAULTS if k != "family" and k in config}
    return family(input_shape, num_classes, **kwargs)


def list_hidden_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.name.startswith(HIDDEN_PREFIX)]

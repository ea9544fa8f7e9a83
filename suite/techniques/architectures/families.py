"""models: network families by name (kind "model"), built from a study's model config.

Every hidden nonlinearity is a layer named `act_<i>` and the linear layer feeding it
`dense_<i>`/`conv_<i>`, so probes find hidden representations and their weights without
knowing the family. Keyword names follow Keras (`kernel_initializer`, `activation`), so
a study factor maps straight onto them; a family receives only the keywords it declares.
"""

from __future__ import annotations

import inspect

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.settings import Fraction, PositiveInt, declare_setting, one_of, registered_name
from suite.techniques.activations.activations import build_activation, units_per_output
from suite.techniques.initializers.initializers import build_initializer

keras = import_keras()

HIDDEN_PREFIX = "act_"
LINEAR_PREFIXES = ("dense_", "conv_")
# Model keywords a study may set (in `model:` or as a factor), with their defaults.
MODEL_DEFAULTS = {
    "family": "mlp",
    "depth": 5,
    "width": 100,
    "activation": "relu",
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
    "norm": "none",
    "stem_stride": 1,
    "dropout": 0.0,
    "l2": 0.0,
}
# Where a normalisation layer goes: before the activation (Ioffe & Szegedy 2015) or after.
NORMS = ("none", "batchnorm", "batchnorm_after", "layernorm")

# The model settings these families take; a study may set only those its arm's family declares.
declare_setting("family", "model", registered_name("model"), "the network family (kind model; default mlp)")
declare_setting("depth", "model", PositiveInt,
                "hidden layers (mlp, cnn; 1 + 2n for residual_mlp) or total layers 6n + 2 (plain_net, residual_net)")
declare_setting("width", "model", PositiveInt, "units or channels of the first stage")
declare_setting("norm", "model", one_of(*NORMS), "normalisation: before the activation, after it, or none (B1-B2)")
declare_setting("stem_stride", "model", PositiveInt, "stride of the first conv (smaller inputs for deep nets)")
declare_setting("dropout", "model", Fraction, "dropout after every hidden activation, training only (D4)")
declare_setting("l2", "model", Fraction, "L2 weight penalty on every hidden kernel (D4)")


class Block:
    """Builds the numbered hidden layers of one network from its model keywords."""

    def __init__(self, activation="relu", kernel_initializer="glorot_uniform", bias_initializer="zeros", norm="none",
                 dropout=0.0, l2=0.0):
        self.activation, self.norm = activation, norm
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.dropout, self.l2 = dropout, l2  # regularisation (D4): dropout after each activation, L2 on kernels
        self.index = 0

    def _linear(self, kind: str, units: int, **options):
        self.index += 1
        units *= units_per_output(self.activation)  # maxout needs k linear pieces per unit (A8)
        common = {"kernel_initializer": build_initializer(self.kernel_initializer),
                  "bias_initializer": build_initializer(self.bias_initializer), "name": f"{kind}_{self.index}",
                  "kernel_regularizer": keras.regularizers.L2(self.l2) if self.l2 else None}
        if kind == "dense":
            return keras.layers.Dense(units, **common)
        options = {"kernel_size": 3, "padding": "same", **options}  # D6 nets set their own sizes and padding
        return keras.layers.Conv2D(units, **common, **options)

    def _norm(self, name: str):
        if self.norm in ("batchnorm", "batchnorm_after"):
            return keras.layers.BatchNormalization(name=name)
        if self.norm == "layernorm":
            return keras.layers.LayerNormalization(name=name)
        return None

    def hidden(self, x, kind: str, units: int, residual=None, **options):
        """linear -> [norm] -> [+ shortcut] -> activation `act_<i>` -> [norm, if `batchnorm_after`]."""
        x = self._linear(kind, units, **options)(x)
        index = self.index
        norm = self._norm(f"norm_{index}")
        if norm is not None and self.norm != "batchnorm_after":
            x = norm(x)
        if residual is not None:
            if residual.shape[1:] != x.shape[1:]:
                # projection shortcut where the shape changes (option B of He et al. 2016)
                strides = -(-residual.shape[1] // x.shape[1])  # ceil: "same" padding rounds up
                residual = keras.layers.Conv2D(x.shape[-1], 1, strides=strides, padding="same",
                                               name=f"proj_{index}")(residual)
            x = keras.layers.Add(name=f"add_{index}")([x, residual])
        x = build_activation(self.activation, f"{HIDDEN_PREFIX}{index}")(x)
        if norm is not None and self.norm == "batchnorm_after":
            x = norm(x)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name=f"drop_{index}")(x)
        return x


def _head(x, num_classes: int):
    # float32 even under mixed precision: a float16 softmax loses small probabilities
    return keras.layers.Dense(num_classes, activation="softmax", name="head", dtype="float32")(x)


@registry.register("model")
def mlp(input_shape, num_classes, depth=5, width=100, activation="relu", kernel_initializer="glorot_uniform",
        bias_initializer="zeros", norm="none", dropout=0.0, l2=0.0) -> keras.Model:
    """`depth` fully connected hidden layers of `width` units (the notes' 5x100 net)."""
    block = Block(activation, kernel_initializer, bias_initializer, norm, dropout, l2)
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(depth):
        x = block.hidden(x, "dense", width)
    return keras.Model(inputs, _head(x, num_classes), name="mlp")


@registry.register("model")
def residual_mlp(input_shape, num_classes, depth=5, width=100, activation="relu", kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", norm="none") -> keras.Model:
    """`mlp` with an identity shortcut around every two hidden layers after the first, as
    residual_net's blocks (a_{l+2} = g(z_{l+2} + a_l)); nothing else differs from `mlp` of the
    same depth, so `mlp` is its plain twin (the depth_mlp study: R1-R3 on MLPs, cheap enough for
    thousands of SGD steps, as in the Highway-network comparisons, Srivastava et al. 2015).
    depth = 1 + 2n hidden layers."""
    if depth < 3 or depth % 2 == 0:
        raise ValueError(f"residual_mlp depth must be odd, 1 + 2n with n >= 1 (3, 5, 9, 17, 33, ...), got {depth}")
    block = Block(activation, kernel_initializer, bias_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(keras.layers.Flatten()(inputs), "dense", width)
    for _ in range((depth - 1) // 2):
        shortcut = x
        x = block.hidden(x, "dense", width)
        x = block.hidden(x, "dense", width, residual=shortcut)
    return keras.Model(inputs, _head(x, num_classes), name="residual_mlp")


@registry.register("model")
def cnn(input_shape, num_classes, depth=2, width=32, activation="relu", kernel_initializer="glorot_uniform",
        bias_initializer="zeros", norm="none", dropout=0.0, l2=0.0) -> keras.Model:
    """`depth` 3x3 conv layers of `width` channels, 2x2 max-pool after every second one."""
    block = Block(activation, kernel_initializer, bias_initializer, norm, dropout, l2)
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(1, depth + 1):
        x = block.hidden(x, "conv", width)
        if i % 2 == 0 and x.shape[1] > 2:
            x = keras.layers.MaxPooling2D(name=f"pool_{i}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, num_classes), name="cnn")


def _cifar_style(input_shape, num_classes, depth, width, activation, kernel_initializer, norm, stem_stride,
                 residual: bool, name: str) -> keras.Model:
    """He et al. (2016) CIFAR nets: a 3x3 stem, three stages of n two-conv blocks with
    width, 2x width, 4x width channels (stride 2 between stages), global pooling, head.
    depth = 6n + 2. `residual` adds the shortcut a_{l+2} = g(z_{l+2} + a_l), nothing else."""
    if (depth - 2) % 6 or depth < 8:
        raise ValueError(f"depth must be 6n + 2 (8, 14, 20, 32, 56, ...), got {depth}")
    blocks = (depth - 2) // 6
    block = Block(activation, kernel_initializer, "zeros", norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", width, strides=stem_stride)
    for stage in range(3):
        channels = width * 2 ** stage
        for b in range(blocks):
            strides = 2 if stage > 0 and b == 0 else 1
            shortcut = x
            x = block.hidden(x, "conv", channels, strides=strides)
            x = block.hidden(x, "conv", channels, residual=shortcut if residual else None)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, num_classes), name=name)


@registry.register("model")
def plain_net(input_shape, num_classes, depth=20, width=16, activation="relu", kernel_initializer="he_normal",
              norm="batchnorm", stem_stride=1) -> keras.Model:
    """The CIFAR-style net of He et al. without shortcuts (R1: degrades with depth)."""
    return _cifar_style(input_shape, num_classes, depth, width, activation, kernel_initializer, norm, stem_stride,
                        residual=False, name="plain_net")


@registry.register("model")
def residual_net(input_shape, num_classes, depth=20, width=16, activation="relu", kernel_initializer="he_normal",
                 norm="batchnorm", stem_stride=1) -> keras.Model:
    """The same net with identity shortcuts every two convs (R2: ResNet)."""
    return _cifar_style(input_shape, num_classes, depth, width, activation, kernel_initializer, norm, stem_stride,
                        residual=True, name="residual_net")


def build_model(config: dict, input_shape, num_classes: int) -> keras.Model:
    """The model named by config["family"], given the config keywords it declares."""
    family = registry.get("model", config["family"])
    accepted = inspect.signature(family).parameters
    kwargs = {k: v for k, v in config.items() if k in accepted and k not in ("input_shape", "num_classes")}
    return family(input_shape, num_classes, **kwargs)


def list_hidden_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.name.startswith(HIDDEN_PREFIX)]


def list_linear_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The numbered dense/conv layers feeding the hidden activations, in depth order."""
    layers = [layer for layer in model.layers if layer.name.startswith(LINEAR_PREFIXES)]
    return sorted(layers, key=lambda layer: int(layer.name.rsplit("_", 1)[1]))

"""architectures: the classic convolutional nets of claim D6, scaled to small images, and
what they cost (kind "model" families, a FLOP counter, an `architecture_stats` probe).

LeNet-5 keeps its paper size (61,706 parameters); the AlexNet-, VGG-, Network-in-Network
and Inception-style nets keep their papers' layer patterns with channel widths scaled
down to a 28x28x1 input; the small ResNet is `models.residual_net` with batch-norm after
every conv, as He et al.'s (the others have none, as their papers). Every hidden layer
goes through `models.Block` (`conv_<i>`/`dense_<i>` -> `act_<i>`), so the suite's probes
read any of them. This module builds and measures networks; it trains nothing and
judges nothing (the standard procedure and suite.core.analysis do).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.techniques.architectures.families import Block, _head, list_linear_layers, residual_net

keras = import_keras()

AUX_PREFIX = "aux_"  # training-only layers: left out of inference FLOPs
FC_DROPOUT = 0.5  # AlexNet and VGG put dropout on their fully connected layers only
EDGE_CORRELATION = 0.7  # |Pearson r| with an edge kernel from which a filter counts as an edge detector (D6)


# ---- families ------------------------------------------------------------------------

def _block(activation, kernel_initializer, norm) -> Block:
    return Block(activation, kernel_initializer, "zeros", norm)


def _classifier(block: Block, x, num_classes: int, units: int, layers: int = 2):
    """Flatten -> `layers` fully connected layers with dropout (AlexNet, VGG) -> softmax."""
    x = keras.layers.Flatten()(x)
    for _ in range(layers):
        x = block.hidden(x, "dense", units)
        x = keras.layers.Dropout(FC_DROPOUT, name=f"fc_drop_{block.index}")(x)
    return _head(x, num_classes)


@registry.register("model")
def lenet5(input_shape, num_classes, activation="tanh", kernel_initializer="glorot_uniform",
           norm="none") -> keras.Model:
    """LeCun et al. (1998): C1 6@5x5, S2 avg-pool, C3 16@5x5, S4 avg-pool, F5 120, F6 84.
    C1 pads by 2 ("same" on 28x28), as the paper's 32x32 input did: 61,706 parameters."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", 6, kernel_size=5)
    x = keras.layers.AveragePooling2D(2, name="pool_1")(x)
    x = block.hidden(x, "conv", 16, kernel_size=5, padding="valid")
    x = keras.layers.AveragePooling2D(2, name="pool_2")(x)
    x = keras.layers.Flatten()(x)
    x = block.hidden(x, "dense", 120)
    x = block.hidden(x, "dense", 84)
    return keras.Model(inputs, _head(x, num_classes), name="lenet5")


@registry.register("model")
def alexnet_style(input_shape, num_classes, width=12, activation="relu", kernel_initializer="he_normal",
                  norm="none") -> keras.Model:
    """Krizhevsky et al. (2012) at 1/8 of the width (96 -> 12 first channels): five convs
    (large first kernel, then 5x5, then three 3x3), overlapping 3x3/2 max-pools, two
    dropout FC layers. The 11x11 stride-4 stem becomes 5x5 stride 1 for 28x28 images."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", width, kernel_size=5)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_1")(x)
    x = block.hidden(x, "conv", width * 8 // 3, kernel_size=5)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_2")(x)
    for channels in (width * 4, width * 4, width * 8 // 3):
        x = block.hidden(x, "conv", channels)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool_3")(x)
    return keras.Model(inputs, _classifier(block, x, num_classes, width * 16), name="alexnet_style")


@registry.register("model")
def vgg_style(input_shape, num_classes, width=12, activation="relu", kernel_initializer="he_normal",
              norm="none") -> keras.Model:
    """Simonyan & Zisserman (2015): stacks of 3x3 "same" convs, channels doubling after
    every 2x2 max-pool (blocks of 2, 2, 3 convs for three pooling stages), two FC layers."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, convs in enumerate((2, 2, 3)):
        for _ in range(convs):
            x = block.hidden(x, "conv", width * 2 ** stage)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{stage + 1}")(x)
    return keras.Model(inputs, _classifier(block, x, num_classes, width * 16), name="vgg_style")


@registry.register("model")
def nin(input_shape, num_classes, width=16, activation="relu", kernel_initializer="he_normal",
        norm="none") -> keras.Model:
    """Lin et al. (2014), Network in Network: each "mlpconv" block is a spatial conv
    followed by two 1x1 convs (a small MLP at every position); global average pooling
    replaces the fully connected layers."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage, (channels, kernel) in enumerate(((width, 5), (width * 2, 5), (width * 2, 3))):
        x = block.hidden(x, "conv", channels, kernel_size=kernel)
        x = block.hidden(x, "conv", channels, kernel_size=1)
        x = block.hidden(x, "conv", channels, kernel_size=1)
        if stage < 2:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool_{stage + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _head(x, num_classes), name="nin")


def inception_block(block: Block, x, width: int, reduce: bool = True):
    """GoogLeNet's module with 3a's proportions (64 : 96>128 : 16>32 : 32 per 64): parallel
    1x1, 3x3, 5x5 convs and a 3x3 max-pool, concatenated. `reduce` puts the 1x1 convs
    in front of the 3x3/5x5 (Szegedy et al. Fig. 2b); without it they read every input
    channel (the naive module, Fig. 2a; its pool branch keeps its 1x1 so widths match)."""
    # built in Keras' layer order (deeper first), so `act_<i>` numbers follow model.layers
    three = block.hidden(x, "conv", width * 3 // 2, kernel_size=1) if reduce else x
    five = block.hidden(x, "conv", max(width // 4, 1), kernel_size=1) if reduce else x
    one = block.hidden(x, "conv", width, kernel_size=1)
    three = block.hidden(three, "conv", width * 2, kernel_size=3)
    five = block.hidden(five, "conv", width // 2, kernel_size=5)
    pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"branch_pool_{block.index}")(x)
    pool = block.hidden(pool, "conv", width // 2, kernel_size=1)
    return keras.layers.Concatenate(name=f"concat_{block.index}")([one, three, five, pool])


class AuxiliaryClassifierModel(keras.Model):
    """A functional model with a training-only side classifier (GoogLeNet, D6): in
    training it returns (main, auxiliary) and adds `aux_weight` x the auxiliary
    cross-entropy to the loss, so gradient enters the middle of the net; in inference
    (evaluate, predict, probes) it is the main classifier alone."""

    def __init__(self, inputs, outputs, aux_weight: float = 0.3, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.aux_weight = aux_weight

    def call(self, inputs, training=None, mask=None):
        main, aux = super().call(inputs, training=training, mask=mask)
        return (main, aux) if training else main

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, (tuple, list)):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        main, aux = y_pred
        if len(y.shape) == len(aux.shape):  # one-hot (soft) labels
            aux_loss = keras.losses.categorical_crossentropy(y, aux)
        else:
            aux_loss = keras.losses.sparse_categorical_crossentropy(y, aux)
        return super().compute_loss(x, y, main, sample_weight, training) + self.aux_weight * keras.ops.mean(aux_loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        main = y_pred[0] if isinstance(y_pred, (tuple, list)) else y_pred
        return super().compute_metrics(x, y, main, sample_weight)


def _auxiliary_head(x, num_classes: int, width: int):
    """GoogLeNet's side classifier, scaled: avg-pool, 1x1 conv, FC, dropout 0.7, softmax."""
    x = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="aux_pool")(x)
    x = keras.layers.Conv2D(width * 2, 1, activation="relu", name="aux_conv")(x)
    x = keras.layers.Flatten(name="aux_flatten")(x)
    x = keras.layers.Dense(width * 8, activation="relu", name="aux_dense")(x)
    x = keras.layers.Dropout(0.7, name="aux_drop")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="aux_head", dtype="float32")(x)


@registry.register("model")
def inception_style(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                    norm="none", reduce=True, aux_weight=0.0) -> keras.Model:
    """Szegedy et al. (2015), scaled: a 3x3 stem, two Inception modules at half the
    resolution and two at a quarter (width, then 2 x width per module branch unit),
    global average pooling. `aux_weight` > 0 adds the side classifier after the
    second module (the middle of the net), weighted like GoogLeNet's 0.3."""
    block = _block(activation, kernel_initializer, norm)
    inputs = keras.Input(input_shape)
    x = block.hidden(inputs, "conv", width * 2)
    x = keras.layers.MaxPooling2D(2, name="pool_1")(x)
    x = inception_block(block, x, width, reduce)
    x = inception_block(block, x, width, reduce)
    x = keras.layers.MaxPooling2D(2, name="pool_2")(x)
    middle = x
    x = inception_block(block, x, width * 2, reduce)
    x = inception_block(block, x, width * 2, reduce)
    main = _head(keras.layers.GlobalAveragePooling2D()(x), num_classes)
    if not aux_weight:
        return keras.Model(inputs, main, name="inception_style")
    aux = _auxiliary_head(middle, num_classes, width)
    return AuxiliaryClassifierModel(inputs, [main, aux], aux_weight=aux_weight, name="inception_aux")


@registry.register("model")
def small_resnet(input_shape, num_classes, depth=8, width=8, activation="relu", kernel_initializer="he_normal",
                 norm="batchnorm") -> keras.Model:
    """He et al. (2016), small: `models.residual_net` with three residual blocks (depth 8) and,
    as in the paper, batch-norm right after every conv and before its activation: conv -> BN ->
    ReLU, and conv -> BN -> + shortcut -> ReLU in the block's second layer. `norm` defaults to
    batchnorm, so a study that leaves `norm` unset trains the paper's net (D6); `norm: none`
    removes it for comparisons. Where the shape changes the shortcut is a 1x1 projection (option B)
    without a batch-norm of its own."""
    return residual_net(input_shape, num_classes, depth, width, activation, kernel_initializer, norm)


@registry.register("model")
def inception_aux(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                  norm="none") -> keras.Model:
    """The Inception-style net with GoogLeNet's auxiliary classifier (weight 0.3)."""
    return inception_style(input_shape, num_classes, width, activation, kernel_initializer, norm, aux_weight=0.3)


@registry.register("model")
def inception_naive(input_shape, num_classes, width=8, activation="relu", kernel_initializer="he_normal",
                    norm="none") -> keras.Model:
    """The Inception-style net without the 1x1 reductions (the naive module)."""
    return inception_style(input_shape, num_classes, width, activation, kernel_initializer, norm, reduce=False)


# ---- cost ----------------------------------------------------------------------------

def _leaf_layers(model) -> list:
    layers = []
    for layer in model.layers:
        layers.extend(_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return layers


def layer_multiply_adds(layer) -> int:
    """Multiply-adds of one conv/dense layer for one example: output positions x kernel size
    (a kxk conv from c_in to c_out channels: H_out x W_out x k x k x c_in x c_out)."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    positions = math.prod(int(d) for d in layer.output.shape[1:-1])
    return positions * math.prod(int(d) for d in kernel.shape)


def _inference_multiply_adds(model) -> list[int]:
    """Multiply-adds per example of each weighted layer on the inference path, input side first."""
    counts = [layer_multiply_adds(layer) for layer in _leaf_layers(model) if not layer.name.startswith(AUX_PREFIX)]
    return [count for count in counts if count]


def count_flops(model) -> int:
    """Forward FLOPs per example of the inference path: 2 x the multiply-adds of every conv
    and dense layer (bias adds, activations and pooling are left out, as usual)."""
    return 2 * sum(_inference_multiply_adds(model))


def count_training_flops(model) -> int:
    """FLOPs per example of one SGD step: the forward pass, the weight gradients (one forward's
    worth) and the input gradients of every weighted layer but the first, whose input is the
    image (nothing asks for its gradient, and compiled graphs drop it). For init's 5x100 MLP
    that is 2.34x the forward, not 3x: the first layer holds 66% of its multiply-adds."""
    weighted = _inference_multiply_adds(model)
    return 2 * (3 * sum(weighted) - (weighted[0] if weighted else 0))


def one_by_one_saving(size: int = 28, channels: int = 192, filters: int = 32, reduce_to: int = 16,
                      kernel: int = 5) -> list[dict]:
    """The notes' example (D6): 28x28x192 -> 28x28x32 by a 5x5 conv, directly or through a
    1x1 conv to 16 channels first. Built as Keras layers; parameters are Keras' counts."""
    inputs = keras.Input((size, size, channels))
    direct = keras.layers.Conv2D(filters, kernel, padding="same", name="direct")
    squeeze = keras.layers.Conv2D(reduce_to, 1, name="squeeze_1x1")
    expand = keras.layers.Conv2D(filters, kernel, padding="same", name="expand")
    direct(inputs)  # calling the layers builds them on the example's shapes
    expand(squeeze(inputs))
    rows = []
    for name, layers in (("direct 5x5", [direct]), (f"1x1 to {reduce_to}, then 5x5", [squeeze, expand])):
        rows.append({"way": name, "output": "x".join(str(d) for d in layers[-1].output.shape[1:]),
                     "parameters": sum(layer.count_params() for layer in layers),
                     "multiplications": sum(layer_multiply_adds(layer) for layer in layers)})
    return rows


def build_alexnet_paper(num_classes: int = 1000) -> keras.Model:
    """AlexNet as published (227x227x3; conv2, conv4, conv5 split over two GPUs: groups=2).
    Built only to be counted: Keras' CPU kernels do not run grouped convolutions."""
    conv = functools.partial(keras.layers.Conv2D, activation="relu", padding="same")
    inputs = keras.Input((227, 227, 3))
    x = keras.layers.Conv2D(96, 11, strides=4, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    x = keras.layers.MaxPooling2D(3, strides=2)(conv(256, 5, groups=2)(x))
    x = conv(256, 3, groups=2)(conv(384, 3, groups=2)(conv(384, 3)(x)))
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(3, strides=2)(x))
    x = keras.layers.Dense(4096, activation="relu")(keras.layers.Dense(4096, activation="relu")(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x), name="alexnet")


@functools.lru_cache(maxsize=1)
def paper_sized_nets() -> tuple[dict, ...]:
    """LeNet-5, AlexNet and VGG-16 at their papers' sizes, built in Keras and counted (D6);
    `quoted` is what the notes say. Allocates ~0.8 GB for a moment (VGG-16's weights)."""
    rows = []
    for name, quoted, build in (
            ("LeNet-5 (28x28x1, padded like the paper's 32x32)", "60k", lambda: lenet5((28, 28, 1), 10)),
            ("AlexNet (227x227x3, two-GPU grouping)", "60M", build_alexnet_paper),
            ("VGG-16 (224x224x3, keras.applications)", "138M", lambda: keras.applications.VGG16(weights=None))):
        model = build()
        rows.append({"net": name, "parameters": int(model.count_params()), "notes say": quoted,
                     "GFLOPs per image": count_flops(model) / 1e9})
        del model
    return tuple(rows)


def layer_path(model) -> str:
    """The output size after every conv and pooling layer: "28x28x1 > conv_1 5x5 same 28x28x6 > ..."."""
    steps = ["x".join(str(d) for d in model.input.shape[1:])]
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Conv2D) or "Pooling2D" in type(layer).__name__ and "Global" not in type(layer).__name__:
            size = getattr(layer, "kernel_size", None) or layer.pool_size
            strides = f"/{layer.strides[0]}" if layer.strides[0] > 1 else ""
            shape = "x".join(str(d) for d in layer.output.shape[1:])
            steps.append(f"{layer.name} {size[0]}x{size[1]}{strides} {layer.padding} {shape}")
    return " > ".join(steps)


# ---- first-layer filters vs edge kernels ----------------------------------------------

@functools.lru_cache(maxsize=8)
def edge_kernels(size: int) -> np.ndarray:
    """Oriented first-derivative kernels (vertical, horizontal, both diagonals) of a
    Gaussian with sigma = size / 4; at 3x3 also Sobel and Scharr with their diagonal
    forms. Shape (kernels, size, size)."""
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    gauss = np.exp(-(xx ** 2 + yy ** 2) / (2 * (size / 4) ** 2))
    bank = [-(xx * np.cos(t) + yy * np.sin(t)) * gauss for t in np.deg2rad([0, 45, 90, 135])]
    if size == 3:
        sobel, sobel_diagonal = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]]
        scharr, scharr_diagonal = [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], [[-10, -3, 0], [-3, 0, 3], [0, 3, 10]]
        for straight, diagonal in ((sobel, sobel_diagonal), (scharr, scharr_diagonal)):
            straight, diagonal = np.array(straight), np.array(diagonal)
            bank += [straight, straight.T, diagonal, np.fliplr(diagonal)]
    return np.stack([np.asarray(k, dtype=float) for k in bank])


def edge_correlations(kernel: np.ndarray) -> np.ndarray:
    """Per filter of a conv kernel (kh, kw, c_in, c_out): the largest |Pearson r| with any
    edge kernel of its size, input channels averaged (colour images: the luminance filter)."""
    filters = np.asarray(kernel, dtype=float).mean(axis=2)  # (kh, kw, c_out)
    if filters.shape[0] != filters.shape[1] or filters.shape[0] < 3:
        return np.array([])
    flat = filters.reshape(-1, filters.shape[-1]).T
    bank = edge_kernels(int(filters.shape[0])).reshape(-1, flat.shape[1])

    def unit(a):
        a = a - a.mean(axis=1, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    return np.abs(unit(flat) @ unit(bank).T).max(axis=1)


def first_conv_kernel(model) -> np.ndarray | None:
    """The kernel of the first conv layer with a spatial extent, or None (an MLP)."""
    for layer in list_linear_layers(model):
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[0] >= 3:
            return keras.ops.convert_to_numpy(layer.kernel)
    return None


# ---- probe ---------------------------------------------------------------------------

ARCHITECTURE_METRICS = (
    "flops",  # forward FLOPs per example, inference path (D6)
    "edge_filter_share",  # share of first-layer filters with |r| >= EDGE_CORRELATION to an edge kernel (D6)
    "edge_filter_gain",  # edge_filter_share now minus at initialisation (D6: learned, not given)
    "edge_filter_score",  # mean over first-layer filters of the largest |r| with an edge kernel
)


class ArchitectureStats(keras.callbacks.Callback):
    """FLOPs per example, and how edge-like the first conv layer's filters are, at
    initialisation (epoch 0) and after every epoch."""

    def __init__(self):
        super().__init__()
        self.epoch_columns: dict[int, dict] = {}

    def on_train_begin(self, logs=None):
        self.flops = float(count_flops(self.model))
        self.measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(epoch + 1)

    def measure(self, epoch: int):
        kernel = first_conv_kernel(self.model)
        r = edge_correlations(kernel) if kernel is not None else np.array([])
        share = float(np.mean(r >= EDGE_CORRELATION)) if r.size else float("nan")
        initial = self.epoch_columns.get(0, {}).get("edge_filter_share", share)
        self.epoch_columns[epoch] = {"flops": self.flops, "edge_filter_share": share,
                                     "edge_filter_gain": share - initial,
                                     "edge_filter_score": float(r.mean()) if r.size else float("nan")}


for _name in ARCHITECTURE_METRICS:
    registry.add("metric", _name, "epoch", probe="architecture_stats")


@registry.register("probe")
def architecture_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> ArchitectureStats:
    return ArchitectureStats()

"""cost: what a network costs, counted from its layers: multiply-adds per image (inference,
leaving out training-only auxiliary heads), a training step's FLOPs, the 1x1-convolution saving
of an Inception branch, and the paper-sized nets of claim D6 side by side. Builds and counts;
trains nothing (a parameter or FLOP count is a fact, never a claim).
"""

from __future__ import annotations

import functools
import math

from suite.core.backend import import_keras
from suite.techniques.architectures.classic import AUX_PREFIX, lenet5

keras = import_keras()


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

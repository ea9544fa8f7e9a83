"""Achieved FLOP/s of the suite's trials against this device's measured matmul peak.

Peak: the best of several float32 N x N matmuls on the Keras backend (2 N^3 FLOPs each).
Trial: the suite's own `run_trial` on Fashion-MNIST; a training step costs the forward FLOPs,
as much again for the weight gradients, and as much again for the input gradients of every
layer but the first (`count_training_flops`), over the step time the trial measured
itself (training steps only: no validation, probes or tracing). So the distance to the
hardware limit of each model the studies train is visible.

    python bench/flops.py [--epochs 3] [--size 2048]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import best_seconds, machine  # noqa: E402
from suite.core.backend import import_keras  # noqa: E402

keras = import_keras()

from suite.core.datasets import load_dataset  # noqa: E402
from suite.core.device import device_settings  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402
from suite.core.runner import run_trial  # noqa: E402
from suite.techniques.architectures.cost import count_flops, count_training_flops  # noqa: E402
from suite.techniques.architectures.families import build_model  # noqa: E402

load_plugins()

COMMON = {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 128, "activation": "relu",
          "kernel_initializer": "he_normal", "dataset": "fashion_mnist"}
# (label, model keywords, training images): one model of each kind the studies train
MODELS = [
    ("init/activation MLP 5x100", {"family": "mlp", "depth": 5, "width": 100}, 10000),
    ("cnn 2 conv x 32", {"family": "cnn", "depth": 2, "width": 32}, 10000),
    ("depth plain_net 20", {"family": "plain_net", "depth": 20, "width": 16}, 5000),
    ("architecture vgg_style", {"family": "vgg_style"}, 5000),
]


def matmul_peak(size: int, repeats: int = 10) -> float:
    """Best FLOP/s of float32 size x size matmuls (the first call warms up and is not timed)."""
    a = keras.random.normal((size, size), seed=1)
    b = keras.random.normal((size, size), seed=2)
    matmul = keras.ops.matmul
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        matmul = tf.function(keras.ops.matmul)
    best = best_seconds(lambda: keras.ops.convert_to_numpy(matmul(a, b)[0, 0]), repeats)  # numpy forces the work
    return 2 * size**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (the first, with tracing, is not timed)")
    parser.add_argument("--size", type=int, default=2048, help="matmul size for the peak")
    args = parser.parse_args()
    settings = device_settings()
    peak = matmul_peak(args.size)
    data = load_dataset("fashion_mnist")
    print(f"Machine: {machine()}; device {settings['device']}, {settings['precision']}, backend {keras.config.backend()}")
    print(f"Measured matmul peak ({args.size}x{args.size}, float32): {peak / 1e9:.1f} GFLOP/s\n")
    print("| model | forward MFLOP per image | step time (batch 128) | achieved GFLOP/s | share of peak |")
    print("|---|---:|---:|---:|---:|")
    for label, model, examples in MODELS:
        config = {**COMMON, **model, "epochs": args.epochs, "train_examples": examples}
        model = build_model(config, data.input_shape, data.num_classes)
        forward, training = count_flops(model), count_training_flops(model)
        outcome = run_trial(config, 0, (), data)
        step = outcome["timing"]["step_seconds"]
        achieved = training * config["batch_size"] / step
        print(f"| {label} | {forward / 1e6:.2f} | {step * 1e3:.1f} ms | {achieved / 1e9:.2f} | {achieved / peak:.1%} |")


if __name__ == "__main__":
    main()

"""Overhead of the suite per trial vs a plain hand-written Keras script (the target: at most 1.05x).

Both train the same model (the init study's 5x100 ReLU MLP) on the same 10k Fashion-MNIST
images for the same epochs, with validation each epoch and one test evaluation,
alternated, several repeats; prints the median wall-time ratio. The suite is measured
with and without its probes (the probes are extra measurements a plain script lacks).

    python bench/overhead.py [--repeats 5] [--epochs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suite.core import backend  # noqa: E402

keras = backend.import_keras()

from suite.core.datasets import load_dataset  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402
from suite.core.runner import run_trial  # noqa: E402

load_plugins()

CONFIG = {"family": "mlp", "depth": 5, "width": 100, "activation": "relu", "kernel_initializer": "he_normal",
          "optimizer": "sgd", "learning_rate": 0.03, "batch_size": 128, "train_examples": 10000}


def plain_keras(data, epochs: int, seed: int) -> float:
    """What a user would write by hand (fresh model, default compile, numpy arrays)."""
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(data.input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(5):
        x = keras.layers.Dense(100, activation="relu", kernel_initializer="he_normal")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.SGD(0.03), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    n = CONFIG["train_examples"]
    model.fit(data.x_train[:n], data.y_train[:n], batch_size=128, epochs=epochs,
              validation_data=(data.x_val, data.y_val), verbose=0)
    model.evaluate(data.x_test, data.y_test, verbose=0)
    return time.perf_counter() - started


def suite_trial(data, epochs: int, seed: int, probes: tuple) -> float:
    started = time.perf_counter()
    outcome = run_trial({**CONFIG, "epochs": epochs}, seed, probes, data)
    assert outcome["status"] == "ok", outcome["message"]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    data = load_dataset("fashion_mnist")
    plain_keras(data, 1, 0)  # warm-up: imports, first graph
    suite_trial(data, 1, 0, ())
    times = {"plain": [], "suite": [], "suite+probes": []}
    for repeat in range(args.repeats):  # alternated, so drift hits every variant alike
        times["plain"].append(plain_keras(data, args.epochs, repeat))
        times["suite"].append(suite_trial(data, args.epochs, repeat, ()))
        times["suite+probes"].append(suite_trial(data, args.epochs, repeat, ("activation_stats",)))
    plain = statistics.median(times["plain"])
    for name, values in times.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:13s} median {median:6.2f} s  ratio to plain {median / plain:5.2f}  ({runs})")


if __name__ == "__main__":
    main()

"""probes: measurements of a network's insides, as Keras callbacks (kind "probe").

A probe runs on a fixed probe batch before training (epoch 0) and after every epoch.
It returns per-layer rows (for the report's per-layer figures) and per-epoch scalar
columns (for claims), so a claim such as I2 is judged from the network's insides, not
only from its accuracy. Each probe declares the columns it adds in PROBE_METRICS
(registered as metrics of kind "epoch" with the probe's name).
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.techniques.activations.activations import BOUNDED_RANGE
from suite.techniques.architectures.families import list_hidden_layers, list_linear_layers

keras = import_keras()

HIST_BINS = 30
SATURATION_MARGIN = 0.02  # within 2% of the output range's ends counts as saturated (A1, I2)
SYMMETRY_RTOL = 1e-4  # units whose outputs agree this closely compute "the same function" (I1)
MAX_ROWS = 512  # per layer, rows (examples x positions) used for unit statistics

PROBE_METRICS = {
    "activation_stats": (
        "saturated_fraction",  # share of activations at either end of a bounded range (I2, A1, A3)
        "dead_fraction",  # share of units that output exactly 0 for every probe example (A5)
        "symmetry",  # share of units that duplicate another unit of their layer (I1, I3)
        "activation_std",  # mean over hidden layers of the activations' std (I3)
        "depth_std_ratio",  # std of the deepest hidden layer / std of the first (I4, I5)
        "activation_abs_mean",  # mean over layers of |mean activation|: zero-centring (A2, A7)
        "preactivation_abs_mean",  # the same for the activation's input (B1)
        "preactivation_std",  # spread of the activation's input (B1)
    ),
    "gradient_stats": (
        "grad_norm_first",  # gradient norm of the first hidden layer's weights (R3)
        "log10_grad_norm_first",  # the same on a log scale: seeds differ by orders of magnitude
        "grad_norm_last",  # ... and of the last hidden layer's
        "log10_grad_ratio",  # log10(first / last): far below 0 = vanishing gradients (A1, R3)
    ),
    "generalization": (
        "train_eval_accuracy",  # accuracy on a fixed sample of the training images, inference mode (no dropout/augmentation)
        "generalization_gap",  # train_eval_accuracy - val_accuracy: overfitting (D1, D4)
    ),
}
# One number per trial that the `generalization` probe makes possible (set by suite.train).
for _probe, _names in PROBE_METRICS.items():
    for _name in _names:
        registry.add("metric", _name, "epoch", probe=_probe)
registry.add("metric", "test_gap", "final")  # train_eval_accuracy - test_accuracy after training


def _unit_matrix(values: np.ndarray) -> np.ndarray:
    """(examples [x positions], units) with at most MAX_ROWS rows, fixed subsample."""
    matrix = values.reshape(-1, values.shape[-1])
    if len(matrix) > MAX_ROWS:
        rows = np.random.default_rng(0).choice(len(matrix), MAX_ROWS, replace=False)
        matrix = matrix[np.sort(rows)]
    return matrix.astype(np.float64)


def symmetry_score(matrix: np.ndarray) -> float:
    """Share of units (columns) whose outputs equal another unit's on every row (I1).

    Outputs are snapped to a grid of SYMMETRY_RTOL x the layer's scale, then identical
    columns are counted: O(units log units) instead of comparing every pair. Dead units
    all output 0, so they count as copies of one another: redundant too.
    """
    units = matrix.shape[1]
    if units < 2:
        return 0.0
    step = SYMMETRY_RTOL * (1.0 + np.abs(matrix).max())
    snapped = np.round(matrix / step).astype(np.int64)
    _, inverse, counts = np.unique(snapped, axis=1, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse.ravel()] > 1))


def layer_stats(values: np.ndarray, activation: str) -> dict:
    """Statistics of one hidden layer's output on the probe batch."""
    if not np.all(np.isfinite(values)):
        nan = float("nan")
        return {"mean": nan, "std": nan, "saturated_fraction": nan, "dead_fraction": nan,
                "symmetry": nan, "hist_edges": [], "hist_counts": []}
    matrix = _unit_matrix(values)
    bounds = BOUNDED_RANGE.get(activation)
    if bounds:
        low, high = bounds
        margin = SATURATION_MARGIN * (high - low)
        saturated = float(np.mean((values <= low + margin) | (values >= high - margin)))
    else:
        low, high = float(values.min()), float(values.max())
        saturated = float("nan")  # unbounded: saturation is not defined
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=HIST_BINS, range=(low, high))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "saturated_fraction": saturated,
        "dead_fraction": float(np.mean(np.all(matrix == 0.0, axis=0))),
        "symmetry": symmetry_score(matrix),
        "hist_edges": [float(e) for e in edges],
        "hist_counts": [int(c) for c in counts],
    }


def summarize_layers(rows: list[dict]) -> dict:
    """Per-epoch scalar columns from one epoch's per-layer rows."""
    if not rows:
        return {}
    stds = [row["std"] for row in rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = stds[-1] / stds[0] if stds[0] > 0 else float("nan")
    mean = lambda key: float(np.mean([row[key] for row in rows]))  # noqa: E731
    return {
        "saturated_fraction": mean("saturated_fraction"),
        "dead_fraction": mean("dead_fraction"),
        "symmetry": mean("symmetry"),
        "activation_std": mean("std"),
        "depth_std_ratio": float(ratio),
        "activation_abs_mean": float(np.mean([abs(row["mean"]) for row in rows])),
        "preactivation_abs_mean": float(np.mean([abs(row["pre_mean"]) for row in rows])),
        "preactivation_std": mean("pre_std"),
    }


class ActivationStats(keras.callbacks.Callback):
    """Per hidden layer: histogram, mean/std, saturated, dead and duplicated units."""

    def __init__(self, probe_x: np.ndarray, activation: str):
        super().__init__()
        self.probe_x, self.activation = probe_x, activation
        self.layer_rows: list[dict] = []  # one per (epoch, layer)
        self.epoch_columns: dict[int, dict] = {}  # epoch -> scalar columns

    def on_train_begin(self, logs=None):
        hidden = list_hidden_layers(self.model)
        # inputs (pre-activations, B1) and outputs of every hidden activation
        tensors = [layer.input for layer in hidden] + [layer.output for layer in hidden]
        self.probe_model = keras.Model(self.model.input, tensors)
        self.names = [layer.name for layer in hidden]
        self.measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(epoch + 1)

    def measure(self, epoch: int):
        tensors = self.probe_model(self.probe_x, training=False)
        depth = len(self.names)
        rows = []
        for index, (name, pre, out) in enumerate(zip(self.names, tensors[:depth], tensors[depth:]), start=1):
            stats = layer_stats(keras.ops.convert_to_numpy(out), self.activation)
            pre = keras.ops.convert_to_numpy(pre)
            finite = np.all(np.isfinite(pre))
            rows.append({"probe": "activation_stats", "epoch": epoch, "layer": index, "layer_name": name, **stats,
                         "pre_mean": float(pre.mean()) if finite else float("nan"),
                         "pre_std": float(pre.std()) if finite else float("nan")})
        self.layer_rows.extend(rows)
        self.epoch_columns[epoch] = summarize_layers(rows)


@registry.register("probe")
def activation_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> ActivationStats:
    return ActivationStats(probe_x, config.get("activation", ""))


def kernel_gradient_norms(model, x: np.ndarray, y: np.ndarray, kernels: list) -> list[float]:
    """Norm of d(loss)/d(kernel) for each kernel on one batch, in inference mode (so BN
    uses its moving statistics and no state changes). TensorFlow and JAX backends."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def loss_of(values):
            out, _ = model.stateless_call(values, frozen, x, training=False)
            return loss_fn(y, out)

        grads = jax.grad(loss_of)(trainable)
        position = {id(v): i for i, v in enumerate(model.trainable_variables)}
        return [float(jnp.linalg.norm(grads[position[id(k)]])) for k in kernels]
    raise NotImplementedError(f"gradient_stats supports the tensorflow and jax backends, not {backend}")


class GradientStats(keras.callbacks.Callback):
    """Per hidden layer: the norm of the loss gradient w.r.t. its weights (A1, R3)."""

    def __init__(self, probe_x: np.ndarray, probe_y: np.ndarray):
        super().__init__()
        self.probe_x, self.probe_y = probe_x, probe_y
        self.layer_rows: list[dict] = []
        self.epoch_columns: dict[int, dict] = {}

    def on_train_begin(self, logs=None):
        self.layers = list_linear_layers(self.model)
        self.measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(epoch + 1)

    def measure(self, epoch: int):
        norms = kernel_gradient_norms(self.model, self.probe_x, self.probe_y, [layer.kernel for layer in self.layers])
        for index, (layer, norm) in enumerate(zip(self.layers, norms), start=1):
            self.layer_rows.append({"probe": "gradient_stats", "epoch": epoch, "layer": index,
                                    "layer_name": layer.name, "grad_norm": norm})
        first, last = norms[0], norms[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = float(np.log10(first / last)) if first > 0 and last > 0 else float("nan")
        self.epoch_columns[epoch] = {"grad_norm_first": first, "grad_norm_last": last,
                                     "log10_grad_norm_first": float(np.log10(first)) if first > 0 else float("nan"),
                                     "log10_grad_ratio": ratio if np.isfinite(ratio) else float("nan")}


@registry.register("probe")
def gradient_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> GradientStats:
    return GradientStats(probe_x, probe_y)


TRAIN_SAMPLE = 2000  # training images the generalisation probe re-measures


class Generalization(keras.callbacks.Callback):
    """Accuracy on the training images the net learns from, measured like validation
    (inference mode: no dropout, no augmentation), and its gap to validation accuracy.
    Keras' own `accuracy` is a running mean over the epoch with dropout on: biased."""

    def __init__(self, probe_x: np.ndarray, probe_y: np.ndarray):
        super().__init__()
        self.val_x, self.val_y = probe_x, probe_y
        self.train_x = self.train_y = None
        self.epoch_columns: dict[int, dict] = {}

    def use_training_sample(self, x: np.ndarray, y: np.ndarray):
        self.train_x, self.train_y = x[:TRAIN_SAMPLE], y[:TRAIN_SAMPLE]

    def _accuracy(self, x, y) -> float:
        predicted = np.argmax(self.model.predict(x, batch_size=1024, verbose=0), axis=-1)
        return float(np.mean(predicted == y))

    def on_train_begin(self, logs=None):
        self.measure(0, None)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(epoch + 1, (logs or {}).get("val_accuracy"))

    def measure(self, epoch: int, val_accuracy):
        if self.train_x is None:
            raise RuntimeError("the generalization probe needs the training sample (suite.train sets it)")
        train = self._accuracy(self.train_x, self.train_y)
        val = float(val_accuracy) if val_accuracy is not None else self._accuracy(self.val_x, self.val_y)
        self.epoch_columns[epoch] = {"train_eval_accuracy": train, "generalization_gap": train - val}


@registry.register("probe")
def generalization(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> Generalization:
    return Generalization(probe_x, probe_y)

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
from suite.core.probe import Probe
from suite.techniques.activations.activations import BOUNDED_RANGE
from suite.techniques.architectures.families import list_hidden_layers, list_linear_layers

keras = import_keras()

HIST_BINS = 30
SATURATION_MARGIN = 0.02  # within 2% of the output range's ends counts as saturated (A1, I2)
SYMMETRY_RTOL = 1e-4  # units whose outputs agree this closely compute "the same function" (I1)
MAX_ROWS = 512  # per layer, rows (examples x positions) used for unit statistics
# A slope below 1/1000 of the identity's passes under 0.1% of the gradient: such a unit does not learn (A5, A6).
NO_GRADIENT_SLOPE = 1e-3
GRADIENT_BATCHES = 4  # training-mode gradients are averaged over this many batches of the probe images

PROBE_METRICS = {
    "activation_stats": (
        "saturated_fraction",  # share of activations at either end of a bounded range (I2, A1, A3)
        "dead_fraction",  # share of units whose pre-activation is <= 0 for every probe example (A5, A6)
        "no_gradient_fraction",  # share of units whose activation slope is ~0 for every probe example (A5, A6)
        "symmetry",  # share of units that duplicate another unit of their layer (I1, I3)
        "activation_std",  # mean over hidden layers of the activations' std (I3)
        "depth_std_ratio",  # std of the deepest hidden layer / std of the first (I4, I5)
        "activation_abs_mean",  # mean over layers of |mean activation|: zero-centring (A2, A7)
        "preactivation_abs_mean",  # the same for the activation's input (B1)
        "preactivation_std",  # spread of the activation's input (B1)
    ),
    "gradient_stats": (  # weight gradients in training mode (batch statistics), mean over GRADIENT_BATCHES batches
        "grad_norm_first",  # gradient norm of the first hidden layer's weights
        "log10_grad_norm_first",  # the same on a log scale: seeds differ by orders of magnitude
        "grad_norm_last",  # ... and of the last hidden layer's
        "log10_grad_ratio",  # log10(first / last): far below 0 = vanishing gradients (A1)
        "log10_grad_slope",  # log10 change of the norm per layer towards the input, fitted: below 0 = vanishing (R3)
    ),
    "generalization": (
        "train_eval_accuracy",  # accuracy on a fixed sample of the training images, inference mode (no dropout/augmentation)
        "train_eval_loss",  # cross-entropy on the same sample, inference mode, BN with the sample's statistics (R1, R2)
        "generalization_gap",  # train_eval_accuracy - val_accuracy: overfitting (D1, D4)
    ),
}
# One number per trial that the `generalization` probe makes possible (set by the standard procedure).
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
    # a random 64-bit hash of each column (wrapping arithmetic) instead of sorting whole columns:
    # 5x faster, and two different columns collide with probability about units^2 / 2^64
    weights = np.random.default_rng(0).integers(1, 2**62, size=len(snapped), dtype=np.int64)
    with np.errstate(over="ignore"):
        hashes = weights @ snapped
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse.ravel()] > 1))


def layer_stats(values: np.ndarray, activation: str) -> dict:
    """Statistics of one hidden layer's output on the probe batch."""
    if not np.all(np.isfinite(values)):
        nan = float("nan")
        return {"mean": nan, "std": nan, "saturated_fraction": nan, "symmetry": nan, "hist_edges": [], "hist_counts": []}
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
        "symmetry": symmetry_score(matrix),
        "hist_edges": [float(e) for e in edges],
        "hist_counts": [int(c) for c in counts],
    }


def unit_gradient_stats(pre: np.ndarray, slope: np.ndarray, elementwise: bool = True) -> dict:
    """Dead and gradient-less units of one hidden layer, over every probe row (examples x positions).

    dead_fraction: share of units whose pre-activation (the activation's input) is <= 0 on every
    row: the same test for ReLU, Leaky ReLU and PReLU (for ReLU, the units that output 0 on every
    row). NaN when the activation is not elementwise (maxout: a unit has several inputs).
    no_gradient_fraction: share of the activation's input columns whose slope |f'(z)| is at most
    NO_GRADIENT_SLOPE on every row, i.e. that pass (almost) no gradient back to their weights. `slope`
    is the activation's own derivative at the measured z (see `activation_slope`): a dead ReLU unit
    counts, a dead Leaky ReLU unit (slope alpha > 0) does not, a PReLU unit counts while its learned
    slope is ~0. For maxout it counts the linear pieces that never win.
    """
    pre = pre.reshape(-1, pre.shape[-1])
    slope = slope.reshape(-1, slope.shape[-1])
    if not (np.all(np.isfinite(pre)) and np.all(np.isfinite(slope))):
        return {"dead_fraction": float("nan"), "no_gradient_fraction": float("nan")}
    dead = float(np.mean(np.all(pre <= 0.0, axis=0))) if elementwise else float("nan")
    return {"dead_fraction": dead, "no_gradient_fraction": float(np.mean(np.all(np.abs(slope) <= NO_GRADIENT_SLOPE, axis=0)))}


def activation_slope(layer, pre) -> np.ndarray:
    """d(sum of the layer's outputs) / d(its input) at the measured pre-activations: for an elementwise
    activation f, f'(z) at every z (for maxout, 1 where a piece wins, 0 elsewhere). The layer's own
    autodiff, so a leaky or a learned PReLU slope is read from the layer, never from its name."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        z = tf.convert_to_tensor(pre)
        with tf.GradientTape() as tape:
            tape.watch(z)
            total = tf.reduce_sum(layer(z))
        return tape.gradient(total, z).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda z: jnp.sum(layer(z)))(jnp.asarray(pre)))
    raise NotImplementedError(f"activation_stats supports the tensorflow and jax backends, not {backend}")


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
        "no_gradient_fraction": mean("no_gradient_fraction"),
        "symmetry": mean("symmetry"),
        "activation_std": mean("std"),
        "depth_std_ratio": float(ratio),
        "activation_abs_mean": float(np.mean([abs(row["mean"]) for row in rows])),
        "preactivation_abs_mean": float(np.mean([abs(row["pre_mean"]) for row in rows])),
        "preactivation_std": mean("pre_std"),
    }


class ActivationStats(Probe):
    """Per hidden layer: histogram, mean/std, saturated, dead, gradient-less and duplicated units."""

    def __init__(self, probe_x: np.ndarray, activation: str):
        super().__init__()
        self.probe_x, self.activation = probe_x, activation

    def prepare(self):
        self.hidden = list_hidden_layers(self.model)
        # inputs (pre-activations: the dense/conv output, after the norm and shortcut where there are any)
        # and outputs of every hidden activation
        tensors = [layer.input for layer in self.hidden] + [layer.output for layer in self.hidden]
        self.probe_model = keras.Model(self.model.input, tensors)

    def measure(self, epoch: int, logs: dict):
        tensors = self.probe_model(self.probe_x, training=False)
        depth = len(self.hidden)
        pres, outs = tensors[:depth], tensors[depth:]
        slopes = [activation_slope(layer, pre) for layer, pre in zip(self.hidden, pres)]
        return activation_rows(epoch, [layer.name for layer in self.hidden], pres, outs, slopes, self.activation)


def activation_rows(epoch: int, names: list[str], pres: list, outs: list, slopes: list,
                    activation: str) -> tuple[list[dict], dict]:
    """One epoch of `activation_stats` from each hidden layer's input (pre-activation), output and
    activation slope on the probe batch: (per-layer rows, scalar columns). Shared with packed
    training, which computes the tensors of all members in one program."""
    rows = []
    for index, (name, pre, out, slope) in enumerate(zip(names, pres, outs, slopes), start=1):
        out, pre = keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(pre)
        finite = np.all(np.isfinite(pre))
        rows.append({"probe": "activation_stats", "epoch": epoch, "layer": index, "layer_name": name,
                     **layer_stats(out, activation),
                     **unit_gradient_stats(pre, np.asarray(slope), elementwise=pre.shape == out.shape),
                     "pre_mean": float(pre.mean()) if finite else float("nan"),
                     "pre_std": float(pre.std()) if finite else float("nan")})
    return rows, summarize_layers(rows)


# version 2: dead units by pre-activation (any activation), units without gradient
@registry.register("probe", version=2)
def activation_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> ActivationStats:
    return ActivationStats(probe_x, config.get("activation", ""))


def kernel_gradient_norms(model, x: np.ndarray, y: np.ndarray, kernels: list, batch_size: int = 128) -> list[float]:
    """Mean over GRADIENT_BATCHES batches of the probe images of ||d(loss)/d(kernel)|| for each kernel,
    in training mode: batch-norm normalises with the batch's own statistics and dropout drops, as in
    the steps the optimizer takes. Through `model.stateless_call`, so no variable of the model changes
    (weights, BN moving statistics, dropout seeds): the state each batch would update is carried to
    the next batch and then dropped. TensorFlow and JAX backends."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    batches = gradient_batches(x, y, batch_size)
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    chosen = [position[id(k)] for k in kernels]
    frozen = [v.value for v in model.non_trainable_variables]
    backend = keras.config.backend()
    per_batch = []
    if backend == "tensorflow":
        import tensorflow as tf

        trainable = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
        for xb, yb in batches:
            with tf.GradientTape() as tape:
                tape.watch(trainable)
                out, frozen = model.stateless_call(trainable, frozen, xb, training=True)
                loss = loss_fn(yb, out)
            grads = tape.gradient(loss, [trainable[i] for i in chosen])
            per_batch.append([float(tf.norm(g)) for g in grads])
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        trainable = [v.value for v in model.trainable_variables]
        for xb, yb in batches:
            def loss_of(values, state, xb=xb, yb=yb):
                out, state = model.stateless_call(values, state, xb, training=True)
                return loss_fn(yb, out), state

            grads, frozen = jax.grad(loss_of, has_aux=True)(trainable, frozen)
            per_batch.append([float(jnp.linalg.norm(grads[i])) for i in chosen])
    else:
        raise NotImplementedError(f"gradient_stats supports the tensorflow and jax backends, not {backend}")
    return [float(v) for v in np.mean(per_batch, axis=0)]


def log10_slope(norms: list[float]) -> float:
    """Least-squares slope of log10(norm) per layer, read from the last hidden layer towards the input.

    The layers are indexed 0 (first hidden) ... L-1 (last) and log10(norm) is fitted as a line in the
    index within one net; the result is minus that line's slope, so it has the sign of
    log10_grad_ratio: below 0 = the norm shrinks towards the input (vanishing, R3), above 0 = it grows
    (exploding), -0.1 = a factor 10^0.1 = 1.26 smaller each layer nearer the input. NaN when a norm
    is 0 or not finite, or there are fewer than two layers.
    """
    norms = np.asarray(norms, dtype=np.float64)
    if len(norms) < 2 or not np.all(np.isfinite(norms)) or np.any(norms <= 0):
        return float("nan")
    return -float(np.polyfit(np.arange(len(norms)), np.log10(norms), 1)[0])


class GradientStats(Probe):
    """Per hidden layer: the norm of the loss gradient w.r.t. its weights in training mode (A1, R3)."""

    def __init__(self, probe_x: np.ndarray, probe_y: np.ndarray, batch_size: int = 128):
        super().__init__()
        self.probe_x, self.probe_y, self.batch_size = probe_x, probe_y, batch_size

    def prepare(self):
        self.layers = list_linear_layers(self.model)

    def measure(self, epoch: int, logs: dict):
        norms = kernel_gradient_norms(self.model, self.probe_x, self.probe_y, [layer.kernel for layer in self.layers],
                                      self.batch_size)
        return gradient_rows(epoch, [layer.name for layer in self.layers], norms)


def gradient_rows(epoch: int, names: list[str], norms: list[float]) -> tuple[list[dict], dict]:
    """One epoch of `gradient_stats` from each linear layer's weight-gradient norm: (per-layer
    rows, scalar columns). Shared with packed training."""
    rows = [{"probe": "gradient_stats", "epoch": epoch, "layer": index, "layer_name": name, "grad_norm": float(norm)}
            for index, (name, norm) in enumerate(zip(names, norms), start=1)]
    first, last = float(norms[0]), float(norms[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.log10(first / last)) if first > 0 and last > 0 else float("nan")
    return rows, {"grad_norm_first": first, "grad_norm_last": last,
                  "log10_grad_norm_first": float(np.log10(first)) if first > 0 else float("nan"),
                  "log10_grad_ratio": ratio if np.isfinite(ratio) else float("nan"),
                  "log10_grad_slope": log10_slope(norms)}


def gradient_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The GRADIENT_BATCHES batches of the probe images the gradient norms are averaged over."""
    size = max(1, min(batch_size, len(x) // GRADIENT_BATCHES))
    return [(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(min(GRADIENT_BATCHES, len(x)))]


# version 2: gradients in training mode (batch statistics), averaged over 4 batches; the per-layer slope
@registry.register("probe", version=2)
def gradient_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> GradientStats:
    return GradientStats(probe_x, probe_y, int(config.get("batch_size", 128)))


TRAIN_SAMPLE = 2000  # training images the generalisation probe re-measures


class Generalization(Probe):
    """Accuracy and loss on the training images the net learns from, measured like validation
    (inference mode: no dropout, no augmentation), after every epoch on the same sample, and
    the accuracy's gap to validation accuracy. Keras' own `accuracy` and `loss` are running
    means over the epoch in training mode, of a net that changes during the epoch: biased.

    Batch-norm normalises with statistics re-estimated on the sample itself (one pass, nothing
    stored; "precise BN", Wu & Johnson 2021), not with its moving averages: after a few dozen
    steps those still lag far behind the weights (momentum 0.99), and a 32-layer net measured
    with them scored a loss of 14 where its training-mode loss was 1.1. The loss then says how
    well the net fits its training data, not how stale its running statistics are."""

    needs_training_sample = True

    def __init__(self, probe_x: np.ndarray, probe_y: np.ndarray):
        super().__init__()
        self.val_x, self.val_y = probe_x, probe_y
        self.train_x = self.train_y = None

    def use_training_sample(self, x: np.ndarray, y: np.ndarray):
        self.train_x, self.train_y = x[:TRAIN_SAMPLE], y[:TRAIN_SAMPLE]

    def _evaluate(self, x, y, sample_statistics: bool = False) -> tuple[float, float]:
        """Accuracy and mean cross-entropy (no regularisation penalty) in inference mode."""
        bn_layers = [layer for layer in self.model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
        if sample_statistics and bn_layers:
            probabilities = predict_with_sample_statistics(self.model, bn_layers, x)
        else:
            probabilities = self.model.predict(x, batch_size=1024, verbose=0)
        loss = keras.losses.sparse_categorical_crossentropy(y, probabilities)
        return float(np.mean(np.argmax(probabilities, axis=-1) == y)), float(np.mean(keras.ops.convert_to_numpy(loss)))

    def measure(self, epoch: int, logs: dict):
        if self.train_x is None:
            raise RuntimeError("the generalization probe needs the training sample (build_probes hands it over)")
        train, train_loss = self._evaluate(self.train_x, self.train_y, sample_statistics=True)
        val_accuracy = logs.get("val_accuracy") if epoch else None  # Keras' own, after an epoch
        val = float(val_accuracy) if val_accuracy is not None else self._evaluate(self.val_x, self.val_y)[0]
        return [], {"train_eval_accuracy": train, "train_eval_loss": train_loss, "generalization_gap": train - val}


def predict_with_sample_statistics(model, bn_layers: list, x: np.ndarray) -> np.ndarray:
    """The model's inference-mode output on `x`, each BN layer normalising with the mean and
    variance of its own input over all of `x`. One training-mode pass with momentum 0 yields
    those statistics as the updated moving values; the model's variables are never written."""
    saved = [layer.momentum for layer in bn_layers]
    trainable = [v.value for v in model.trainable_variables]
    try:
        for layer in bn_layers:
            layer.momentum = 0.0
        _, statistics = model.stateless_call(trainable, [v.value for v in model.non_trainable_variables], x,
                                             training=True)
    finally:
        for layer, momentum in zip(bn_layers, saved):
            layer.momentum = momentum
    outputs, _ = model.stateless_call(trainable, statistics, x, training=False)
    return keras.ops.convert_to_numpy(outputs)


# version 2: the training-sample loss; batch-norm with the sample's own statistics on the training sample
@registry.register("probe", version=2)
def generalization(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> Generalization:
    return Generalization(probe_x, probe_y)

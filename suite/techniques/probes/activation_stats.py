"""activation_stats: what each hidden layer's activations do on the probe images (a probe, kind "probe").

Per hidden layer and epoch (0 = before training): a histogram, mean and std, the share of saturated
activations, dead units (pre-activation <= 0 on every probe image), units without gradient, and units
that duplicate another; per epoch, the scalar columns claims read (METRICS).
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.probe import Probe
from suite.techniques.activations.activations import BOUNDED_RANGE
from suite.techniques.architectures.families import list_hidden_layers

keras = import_keras()

HIST_BINS = 30
SATURATION_MARGIN = 0.02  # within 2% of the output range's ends counts as saturated (A1, I2)
SYMMETRY_RTOL = 1e-4  # units whose outputs agree this closely compute "the same function" (I1)
MAX_ROWS = 512  # per layer, rows (examples x positions) used for unit statistics
# A slope below 1/1000 of the identity's passes under 0.1% of the gradient: such a unit does not learn (A5, A6).
NO_GRADIENT_SLOPE = 1e-3

METRICS = (
    "saturated_fraction",  # share of activations at either end of a bounded range (I2, A1, A3)
    "dead_fraction",  # share of units whose pre-activation is <= 0 for every probe example (A5, A6)
    "no_gradient_fraction",  # share of units whose activation slope is ~0 for every probe example (A5, A6)
    "symmetry",  # share of units that duplicate another unit of their layer (I1, I3)
    "activation_std",  # mean over hidden layers of the activations' std (I3)
    "depth_std_ratio",  # std of the deepest hidden layer / std of the first (I4, I5)
    "activation_abs_mean",  # mean over layers of |mean activation|: zero-centring (A2, A7)
    "preactivation_abs_mean",  # the same for the activation's input (B1)
    "preactivation_std",  # spread of the activation's input (B1)
)
for _name in METRICS:
    registry.add("metric", _name, "epoch", probe="activation_stats")


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



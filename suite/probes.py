"""probes: measurements of a network's insides, as Keras callbacks (kind "probe").

A probe runs on a fixed probe batch before training (epoch 0) and after every epoch.
It returns per-layer rows (for the report's per-layer figures) and per-epoch scalar
columns (for claims), so a claim such as I2 is judged from the network's insides, not
only from its accuracy. Each probe declares the columns it adds in PROBE_METRICS.
"""

from __future__ import annotations

import numpy as np

from suite import registry
from suite.activations import BOUNDED_RANGE
from suite.backend import import_keras
from suite.models import list_hidden_layers

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
    ),
}


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
        self.probe_model = keras.Model(self.model.input, [layer.output for layer in hidden])
        self.names = [layer.name for layer in hidden]
        self.measure(0)

    def on_epoch_end(self, epoch, logs=None):
        self.measure(epoch + 1)

    def measure(self, epoch: int):
        outputs = self.probe_model(self.probe_x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        rows = []
        for index, (name, out) in enumerate(zip(self.names, outputs), start=1):
            stats = layer_stats(keras.ops.convert_to_numpy(out), self.activation)
            rows.append({"epoch": epoch, "layer": index, "layer_name": name, **stats})
        self.layer_rows.extend(rows)
        self.epoch_columns[epoch] = summarize_layers(rows)


@registry.register("probe")
def activation_stats(probe_x: np.ndarray, config: dict) -> ActivationStats:
    return ActivationStats(probe_x, config.get("activation", ""))

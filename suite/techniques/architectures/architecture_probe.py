"""architecture_probe: the `architecture_stats` probe (claim D6): a net's FLOPs and parameters,
and whether its first convolution learns edge detectors (each filter's largest |Pearson r| with a
bank of oriented edge kernels, at initialisation and after every epoch).
"""

from __future__ import annotations

import functools

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.probe import Probe
from suite.techniques.architectures.cost import count_flops
from suite.techniques.architectures.families import list_linear_layers

keras = import_keras()

EDGE_CORRELATION = 0.7  # |Pearson r| with an edge kernel from which a filter counts as an edge detector (D6)


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



ARCHITECTURE_METRICS = (
    "flops",  # forward FLOPs per example, inference path (D6)
    "edge_filter_share",  # share of first-layer filters with |r| >= EDGE_CORRELATION to an edge kernel (D6)
    "edge_filter_gain",  # edge_filter_share now minus at initialisation (D6: learned, not given)
    "edge_filter_score",  # mean over first-layer filters of the largest |r| with an edge kernel
)


class ArchitectureStats(Probe):
    """FLOPs per example, and how edge-like the first conv layer's filters are, at
    initialisation (epoch 0) and after every epoch."""

    def prepare(self):
        self.flops = float(count_flops(self.model))

    def measure(self, epoch: int, logs: dict):
        kernel = first_conv_kernel(self.model)
        r = edge_correlations(kernel) if kernel is not None else np.array([])
        share = float(np.mean(r >= EDGE_CORRELATION)) if r.size else float("nan")
        initial = self.epoch_columns.get(0, {}).get("edge_filter_share", share)
        return [], {"flops": self.flops, "edge_filter_share": share, "edge_filter_gain": share - initial,
                    "edge_filter_score": float(r.mean()) if r.size else float("nan")}


for _name in ARCHITECTURE_METRICS:
    registry.add("metric", _name, "epoch", probe="architecture_stats")


@registry.register("probe")
def architecture_stats(probe_x: np.ndarray, probe_y: np.ndarray, config: dict) -> ArchitectureStats:
    return ArchitectureStats()

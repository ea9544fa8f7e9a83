"""gradient_stats: how large each layer's weight gradient is, and how it changes with depth (a probe).

Gradients in training mode (batch statistics, dropout on), averaged over GRADIENT_BATCHES batches of the
probe images, through `stateless_call` so that measuring changes nothing in the net (A1, R3).
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.probe import Probe
from suite.techniques.architectures.families import list_linear_layers

keras = import_keras()

GRADIENT_BATCHES = 4  # training-mode gradients are averaged over this many batches of the probe images

METRICS = (
    "grad_norm_first",  # gradient norm of the first hidden layer's weights
    "log10_grad_norm_first",  # the same on a log scale: seeds differ by orders of magnitude
    "grad_norm_last",  # ... and of the last hidden layer's
    "log10_grad_ratio",  # log10(first / last): far below 0 = vanishing gradients (A1)
    "log10_grad_slope",  # log10 change of the norm per layer towards the input, fitted: below 0 = vanishing (R3)
)
for _name in METRICS:
    registry.add("metric", _name, "epoch", probe="gradient_stats")


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



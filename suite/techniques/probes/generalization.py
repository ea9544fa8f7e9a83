"""generalization: the net on a fixed sample of its training images, measured like validation (a probe).

Inference mode (no dropout, no augmentation; batch-norm with the sample's own statistics), so a
claim about fitting the training data (R1, R2, D1, D4) reads clean numbers, not Keras' running
training-mode means.
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.probe import Probe

keras = import_keras()

METRICS = (
    "train_eval_accuracy",  # accuracy on a fixed sample of the training images, inference mode (no dropout/augmentation)
    "train_eval_loss",  # cross-entropy on the same sample, inference mode, BN with the sample's statistics (R1, R2)
    "generalization_gap",  # train_eval_accuracy - val_accuracy: overfitting (D1, D4)
)
for _name in METRICS:
    registry.add("metric", _name, "epoch", probe="generalization")
# one number per trial that this probe makes possible (set by the standard procedure)
registry.add("metric", "test_gap", "final")  # train_eval_accuracy - test_accuracy after training


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

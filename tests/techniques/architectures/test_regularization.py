"""regularization (D4): L2 adds l2 * sum(w^2) over the hidden kernels, dropout acts in training
only, and the generalization probe measures training accuracy with dropout off."""

import numpy as np
import pytest
from conftest import REPO

from suite.core.fit import OK
from suite.core.loader import load_study
from suite.core.runner import run_trial
from suite.techniques.architectures.families import build_model
from suite.techniques.probes.generalization import Generalization

BASE = {"family": "mlp", "depth": 2, "width": 16, "optimizer": "sgd", "learning_rate": 0.05, "batch_size": 32,
        "train_examples": 128, "epochs": 2}


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("l2", [0.0, 0.001, 0.1])
def test_l2_penalty_is_l2_times_the_squared_hidden_kernels(family, l2):
    model = build_model({"family": family, "depth": 2, "width": 8, "l2": l2}, (28, 28, 1), 10)
    model(np.zeros((1, 28, 28, 1), "float32"))  # the regularisation losses exist after a call
    hidden = [layer.kernel for layer in model.layers if layer.name.startswith(("dense_", "conv_"))]
    expected = l2 * sum(float(np.sum(np.square(np.asarray(kernel)))) for kernel in hidden)
    assert float(sum(np.asarray(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-5)
    assert bool(model.losses) == (l2 > 0)


def test_dropout_is_random_in_training_and_off_in_inference():
    model = build_model({"family": "mlp", "depth": 2, "width": 64, "dropout": 0.5}, (28, 28, 1), 10)
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype("float32")
    assert sum(layer.name.startswith("drop_") for layer in model.layers) == 2  # after every hidden activation
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), np.asarray(model(x, training=False)))
    assert not np.allclose(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)))


def test_probe_measures_training_accuracy_with_dropout_off(synthetic_data):
    model = build_model({**BASE, "dropout": 0.5}, synthetic_data.input_shape, 10)
    probe = Generalization(synthetic_data.x_val[:64], synthetic_data.y_val[:64])
    probe.set_model(model)
    x, y = synthetic_data.x_train[:100], synthetic_data.y_train[:100]
    probe.use_training_sample(x, y)
    probe.observe(1, {"val_accuracy": 0.25})
    by_hand = float(np.mean(np.argmax(np.asarray(model(x, training=False)), axis=-1) == y))
    measured = {key: probe.epoch_columns[1][key] for key in ("train_eval_accuracy", "generalization_gap")}
    assert measured == pytest.approx({"train_eval_accuracy": by_hand, "generalization_gap": by_hand - 0.25})


def test_regularised_trial_runs_and_records_the_gap_every_epoch(synthetic_data):
    outcome = run_trial({**BASE, "l2": 0.01, "dropout": 0.2}, 0, ("generalization",), synthetic_data)
    assert outcome["status"] == OK
    assert [row["epoch"] for row in outcome["history"]] == [0, 1, 2]
    assert all("generalization_gap" in row for row in outcome["history"])


def test_regularization_study_compares_against_the_unregularised_net():
    study = load_study(REPO / "studies" / "regularization.yaml")
    assert 0.0 in study.factors["l2"] and 0.0 in study.factors["dropout"]
    baseline = {"l2": 0.0, "dropout": 0.0}
    assert all(claim.worse in (baseline, {"l2": 0.0, "dropout": 0.5}) for claim in study.claims)

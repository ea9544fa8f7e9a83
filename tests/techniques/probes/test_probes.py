import numpy as np
import pytest

from suite.core import registry
from suite.techniques.probes import probes


def test_symmetry_score_counts_duplicated_units():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(50, 6))
    assert probes.symmetry_score(distinct) == 0.0
    same = np.repeat(rng.normal(size=(50, 1)), 6, axis=1)
    assert probes.symmetry_score(same) == 1.0
    half = distinct.copy()
    half[:, 3] = half[:, 0]
    assert np.isclose(probes.symmetry_score(half), 2 / 6)


def test_layer_stats_saturation_and_dead_units():
    saturated = np.concatenate([np.full((100, 5), 0.001), np.full((100, 5), 0.999)], axis=1)
    stats = probes.layer_stats(saturated, "sigmoid")
    assert stats["saturated_fraction"] == 1.0
    assert sum(stats["hist_counts"]) == saturated.size and len(stats["hist_edges"]) == probes.HIST_BINS + 1
    spread = np.random.default_rng(1).uniform(0.2, 0.8, size=(100, 10))
    assert probes.layer_stats(spread, "sigmoid")["saturated_fraction"] == 0.0
    relu = np.maximum(np.random.default_rng(2).normal(size=(100, 10)), 0)
    relu[:, :3] = 0.0
    stats = probes.layer_stats(relu, "relu")
    assert np.isclose(stats["dead_fraction"], 0.3) and np.isnan(stats["saturated_fraction"])


def test_non_finite_activations_give_nan_not_a_crash():
    stats = probes.layer_stats(np.array([[np.nan, 1.0]]), "relu")
    assert np.isnan(stats["std"]) and stats["hist_counts"] == []


def test_summary_columns_match_the_declared_metrics():
    rows = [{**probes.layer_stats(np.random.default_rng(i).normal(scale=1 / (i + 1), size=(64, 8)), "tanh"),
             "pre_mean": 0.1, "pre_std": 1.0} for i in range(3)]
    summary = probes.summarize_layers(rows)
    assert set(summary) == set(probes.PROBE_METRICS["activation_stats"])
    assert np.isclose(summary["depth_std_ratio"], rows[-1]["std"] / rows[0]["std"])


def test_probe_callback_measures_every_hidden_layer(synthetic_data):
    from suite.core.runner import run_trial

    config = {"family": "mlp", "depth": 3, "width": 8, "activation": "sigmoid", "kernel_initializer": "zeros",
              "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 64, "train_examples": 128, "epochs": 1}
    outcome = run_trial(config, 0, ("activation_stats",), synthetic_data)
    layers = outcome["layers"]
    assert {(row["epoch"], row["layer"]) for row in layers} == {(e, n) for e in (0, 1) for n in (1, 2, 3)}
    assert outcome["history"][0]["symmetry"] == 1.0  # zeros: every unit identical at init (I1)


def test_gradient_probe_sees_vanishing_gradients_in_a_deep_sigmoid_net(synthetic_data):
    from suite.core.runner import run_trial

    def first_epoch(activation, init):
        config = {"family": "mlp", "depth": 6, "width": 32, "activation": activation, "kernel_initializer": init,
                  "optimizer": "sgd", "learning_rate": 0.01, "batch_size": 64, "train_examples": 128, "epochs": 1}
        outcome = run_trial(config, 0, ("gradient_stats",), synthetic_data)
        assert {row["layer"] for row in outcome["layers"] if row["epoch"] == 0} == set(range(1, 7))
        return outcome["history"][0]

    sigmoid, relu = first_epoch("sigmoid", "glorot_normal"), first_epoch("relu", "he_normal")
    assert set(probes.PROBE_METRICS["gradient_stats"]) <= set(sigmoid)
    assert sigmoid["log10_grad_ratio"] < relu["log10_grad_ratio"] - 1  # A1: ten times smaller, at least


@pytest.mark.parametrize("name", registry.list_names("probe"))
def test_probe_contract(name, synthetic_data):
    """Every registered probe adds its declared columns at epoch 0 and after each epoch."""
    from suite.core.runner import run_trial

    config = {"family": "mlp", "depth": 2, "width": 8, "activation": "relu", "kernel_initializer": "he_normal",
              "optimizer": "sgd", "learning_rate": 0.05, "batch_size": 64, "train_examples": 128, "epochs": 2}
    outcome = run_trial(config, 0, (name,), synthetic_data)
    for row in outcome["history"]:
        assert set(_metrics_of(name)) <= set(row), (name, row["epoch"])
    # per-layer rows are optional (the generalization probe has none), but cover every epoch when given
    assert {row["epoch"] for row in outcome["layers"]} in ({0, 1, 2}, set())


def test_generalization_probe_measures_training_images_in_inference_mode(synthetic_data):
    """Dropout is off when the probe re-measures training accuracy: the gap is train - val,
    and the test gap is train - test (D1, D4)."""
    from suite.core.runner import run_trial

    config = {"family": "mlp", "depth": 2, "width": 64, "dropout": 0.5, "optimizer": "adam", "learning_rate": 0.003,
              "batch_size": 32, "train_examples": 256, "epochs": 3}
    outcome = run_trial(config, 0, ("generalization",), synthetic_data)
    last, final = outcome["history"][-1], outcome["final"]
    assert last["generalization_gap"] == pytest.approx(last["train_eval_accuracy"] - last["val_accuracy"])
    assert final["test_gap"] == pytest.approx(final["train_eval_accuracy"] - final["test_accuracy"])
    assert last["train_eval_accuracy"] > outcome["history"][0]["train_eval_accuracy"] + 0.2  # it learns


def _metrics_of(probe: str) -> list[str]:
    """The per-epoch metrics a probe declares (registered with its name)."""
    return [name for name in registry.entries("metric") if registry.metadata("metric", name).get("probe") == probe]


def test_every_probe_declares_its_metrics():
    assert all(_metrics_of(name) for name in registry.list_names("probe"))

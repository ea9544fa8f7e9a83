"""train: one trial end to end; a reused compiled model behaves exactly like a fresh one."""

import pytest

from suite.core import registry
from suite.core.fit import OK, build_optimizer
from suite.core.runner import run_trial
from suite.techniques.standard import procedure as train

BASE = {"family": "mlp", "depth": 2, "width": 16, "activation": "relu", "kernel_initializer": "he_normal",
        "optimizer": "adam", "learning_rate": 0.01, "batch_size": 64, "train_examples": 256, "epochs": 2}


def _run(config, data, seed=3):
    return run_trial(config, seed, ("activation_stats",), data)


def test_reused_model_equals_a_fresh_one_even_after_divergence(synthetic_data):
    train._COMPILED.clear()
    fresh = _run(BASE, synthetic_data)
    blown = _run({**BASE, "kernel_initializer": "normal_1", "learning_rate": 1e12, "optimizer": "adam"}, synthetic_data)
    assert len(train._COMPILED) == 1  # the same architecture: one compiled model
    reused = _run(BASE, synthetic_data)
    assert blown["status"] in ("ok", "diverged")
    assert reused["history"] == fresh["history"]
    assert reused["final"] == pytest.approx(fresh["final"], nan_ok=True)


def test_outcome_has_history_final_and_timing(synthetic_data):
    outcome = _run({**BASE, "optimizer": "sgd", "learning_rate": 0.1}, synthetic_data)
    assert outcome["status"] == OK
    assert [row["epoch"] for row in outcome["history"]] == [0, 1, 2]
    assert {"train_loss", "val_accuracy", "test_accuracy", "symmetry"} <= set(outcome["final"])
    assert outcome["timing"]["parameters"] > 0 and outcome["timing"]["step_seconds"] > 0


@pytest.mark.parametrize("name", registry.list_names("optimizer"))
def test_every_optimizer_builds(name):
    optimizer = build_optimizer({"optimizer": name, "learning_rate": 0.01})
    assert float(optimizer.learning_rate) == pytest.approx(0.01)

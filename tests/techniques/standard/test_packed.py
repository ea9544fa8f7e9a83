"""packed: a packed member trains exactly as the same trial alone; a diverging member
disturbs no other member.

Tolerance: relative 1e-5 (absolute 1e-6) on float32 losses. A packed dense layer is one
batched einsum where the Keras model does one matmul per layer; the sums may run in another
order, so the numbers agree to float32 rounding, not bit for bit, and the difference grows
only slowly over the first steps compared here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from suite.core import fit, step_curve
from suite.core.backend import import_keras
from suite.core.datasets import epoch_order, seed_sample
from suite.core.fit import build_optimizer
from suite.core.runner import run_trial
from suite.techniques.architectures.families import build_model
from suite.techniques.optimizers.schedules import learning_rate_for
from suite.techniques.standard import packed, procedure

keras = import_keras()

RTOL, ATOL = 1e-5, 1e-6
BASE = {"family": "mlp", "depth": 2, "width": 16, "activation": "relu", "kernel_initializer": "he_normal",
        "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 32, "train_examples": 200, "epochs": 2,
        "dataset": "synthetic"}
# three members: different seeds, learning rates and one a different initializer
MEMBERS = [({"learning_rate": 0.1}, 0), ({"learning_rate": 0.03}, 1),
           ({"learning_rate": 0.3, "kernel_initializer": "glorot_uniform"}, 2)]
# PReLU and maxout nets blow up at 0.3 on the synthetic data, and float rounding then grows past any tolerance
GENTLE = [({"learning_rate": 0.03}, 0), ({"learning_rate": 0.01}, 1),
          ({"learning_rate": 0.05, "kernel_initializer": "glorot_uniform"}, 2)]


def alone_step_losses(config: dict, seed: int, data, epochs: int) -> np.ndarray:
    """The trial alone: the family's Keras model (weights drawn as `standard` draws them), its
    optimizer, Keras' own train step, one batch at a time in the packed member's order."""
    keras.utils.set_random_seed(seed)
    model = build_model(config, data.input_shape, data.num_classes)
    n, batch = config["train_examples"], config["batch_size"]
    rate = learning_rate_for(config, -(-n // batch) * config["epochs"])  # the schedule over the planned steps
    model.compile(optimizer=build_optimizer(config, rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    sampled = seed_sample(data, seed)
    x, y = sampled.x_train[:n], sampled.y_train[:n]
    losses = []
    for epoch in range(1, epochs + 1):
        order = epoch_order(seed, epoch, n)
        for start in range(0, n, batch):
            index = order[start:start + batch]
            losses.append(model.train_on_batch(x[index], y[index], return_dict=True)["loss"])
    return np.array(losses)


def packed_step_losses(configs, seeds, data, epochs: int) -> tuple[np.ndarray, packed.PackedMLP]:
    pack = packed.PackedMLP(configs, seeds, data)
    return np.concatenate([pack.train_epoch().step_losses for _ in range(epochs)], axis=1), pack


def _configs(base, members=MEMBERS):
    return [{**base, **change} for change, _ in members], [seed for _, seed in members]


def test_sample_indices_are_the_runners_draw(synthetic_data):
    for seed in (0, 7):
        index = packed.sample_indices(seed, len(synthetic_data.x_train), 100)
        np.testing.assert_array_equal(synthetic_data.x_train[index], seed_sample(synthetic_data, seed).x_train[:100])


@pytest.mark.parametrize("optimizer", [{"optimizer": "sgd"}, {"optimizer": "momentum"}, {"optimizer": "nesterov"},
                                       {"optimizer": "sgd", "norm": "batchnorm", "l2": 0.001},
                                       {"optimizer": "sgd", "activation": "prelu"},
                                       {"optimizer": "sgd", "activation": "maxout", "norm": "batchnorm"},
                                       {"optimizer": "momentum", "lr_schedule": "cosine"},
                                       {"optimizer": "sgd", "lr_schedule": "step"},
                                       {"optimizer": "nesterov", "lr_schedule": "linear", "norm": "batchnorm"}])
def test_each_member_steps_as_it_would_alone(synthetic_data, optimizer):
    """7 steps per epoch (the last one partial: 200 = 6 x 32 + 8), 2 epochs; with a schedule each
    member's rate changes every step, and the second epoch's steps read the table where the first left off."""
    configs, seeds = _configs({**BASE, **optimizer})
    losses, pack = packed_step_losses(configs, seeds, synthetic_data, 2)
    assert losses.shape == (3, 14)
    for m, (config, seed) in enumerate(zip(configs, seeds)):
        alone = alone_step_losses(config, seed, synthetic_data, 2)
        np.testing.assert_allclose(losses[m], alone, rtol=RTOL, atol=ATOL)
    assert not np.allclose(losses[0], losses[1])  # the members really differ


def test_a_diverging_member_disturbs_no_other(synthetic_data):
    configs, seeds = _configs(BASE)
    blown = [*configs, {**BASE, "learning_rate": 1e12}]
    with_blown, pack = packed_step_losses(blown, [*seeds, 3], synthetic_data, 2)
    without, _ = packed_step_losses(configs, seeds, synthetic_data, 2)
    alive = keras.ops.convert_to_numpy(pack.alive)
    assert not np.isfinite(with_blown[3]).all() and not alive[3] and alive[:3].all()
    np.testing.assert_array_equal(with_blown[:3], without)  # the members are independent: bit for bit
    for m in (0, 1):
        np.testing.assert_allclose(with_blown[m], alone_step_losses(configs[m], seeds[m], synthetic_data, 2),
                                   rtol=RTOL, atol=ATOL)
    outcomes = packed.train_pack(blown, [*seeds, 3], synthetic_data)
    assert [o["status"] for o in outcomes] == ["ok", "ok", "ok", "diverged"]
    assert outcomes[3]["message"] == "non-finite loss in epoch 1" and outcomes[3]["history"][1]["train_loss"] is None


def _assert_close(packed_value, alone_value, what: str):
    if isinstance(alone_value, list) and alone_value and isinstance(alone_value[0], float):
        assert packed_value == pytest.approx(alone_value, rel=1e-3, abs=1e-4), what
    elif isinstance(alone_value, float) and isinstance(packed_value, float):
        assert packed_value == pytest.approx(alone_value, rel=1e-3, abs=1e-4, nan_ok=True), what
    else:
        assert packed_value == alone_value, what


@pytest.mark.parametrize("change, members", [({"optimizer": "momentum"}, MEMBERS),
                                             ({"optimizer": "momentum", "lr_schedule": "cosine"}, MEMBERS),
                                             ({"norm": "batchnorm", "activation": "tanh"}, MEMBERS),
                                             ({"activation": "prelu"}, GENTLE), ({"activation": "maxout"}, GENTLE)])
def test_a_packed_member_gives_the_standard_trials_numbers(synthetic_data, change, members):
    """Packed vs the standard procedure itself (`run_trial`, what --no-pack runs), with both
    packed probes: every history column, every per-layer probe row, the step curve and the final
    metrics. Accuracies are counts: one image may flip on a near tie."""
    # step-curve windows of 3 steps, so an epoch of 7 steps holds windows of 3, 3 and 1 (Keras' calls too);
    # a context, not the fixture: the JAX test calls this function directly
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(step_curve, "STEP_WINDOW", 3)
        patch.setattr(fit, "STEPS_PER_EXECUTION", 3)
        patch.setattr(procedure, "_COMPILED", {})  # no model compiled with another steps_per_execution
        _compare_packed_with_alone(synthetic_data, change, members)


def _compare_packed_with_alone(synthetic_data, change, members=MEMBERS):
    configs, seeds = _configs({**BASE, **change}, members)
    probes = ("activation_stats", "gradient_stats")
    outcomes = packed.train_pack(configs, seeds, synthetic_data, probes=probes)
    for result, config, seed in zip(outcomes, configs, seeds):
        alone = run_trial(config, seed, probes, synthetic_data)
        assert result["status"] == alone["status"] == "ok"
        assert [row.keys() for row in result["history"]] == [row.keys() for row in alone["history"]]
        for row, reference in zip(result["history"], alone["history"]):
            for key, value in reference.items():
                if key.endswith("accuracy"):
                    assert row[key] == pytest.approx(value, abs=1.01 / len(synthetic_data.y_val)), key
                else:
                    _assert_close(row[key], value, f"epoch {row['epoch']} {key}")
        curve, reference = result["step_curve"], alone["step_curve"]
        assert curve["ends"] == reference["ends"] == [3, 6, 7, 10, 13, 14]
        for accuracy, expected, images in zip(curve["train_accuracy"], reference["train_accuracy"], [96, 96, 8] * 2):
            assert accuracy == pytest.approx(expected, abs=1.01 / images)  # one image flipped by float rounding
        assert curve["train_loss"] == pytest.approx(reference["train_loss"], rel=RTOL, abs=1e-4)
        assert len(result["layers"]) == len(alone["layers"])
        for row, reference in zip(result["layers"], alone["layers"]):
            for key, value in reference.items():
                if key != "hist_counts":  # a histogram count may move one value across a bin edge
                    _assert_close(row[key], value, f"{row['probe']} epoch {row['epoch']} layer {row['layer']} {key}")
        assert result["final"]["test_loss"] == pytest.approx(alone["final"]["test_loss"], rel=RTOL, abs=1e-3)
        # a gap of two accuracies: one image may flip on each side, as the accuracies above allow
        one_image_each = 1.01 / len(synthetic_data.y_val) + 1.01 / len(synthetic_data.y_test)
        assert result["final"]["dev_test_gap"] == pytest.approx(alone["final"]["dev_test_gap"], abs=one_image_each)
        assert result["timing"]["pack_members"] == 3 and result["timing"]["parameters"] == alone["timing"]["parameters"]


def test_a_diverged_member_ends_as_the_standard_trial_does(synthetic_data):
    """NaN weights after the step that diverged: tested like the unpacked net (chance level)."""
    config, seed = {**BASE, "learning_rate": 1e12}, 3
    member = packed.train_pack([BASE, config], [0, seed], synthetic_data)[1]
    alone = run_trial(config, seed, (), synthetic_data)
    assert member["status"] == alone["status"] == "diverged" and member["message"] == alone["message"]
    assert member["final"]["test_accuracy"] == pytest.approx(alone["final"]["test_accuracy"])


def test_member_model_holds_the_members_weights(synthetic_data):
    configs, seeds = _configs(BASE)
    pack = packed.PackedMLP(configs, seeds, synthetic_data)
    pack.train_epoch()
    val_loss, _ = pack.evaluate("val")
    model = pack.member_model(1)
    model.compile(loss="sparse_categorical_crossentropy")
    loss = model.evaluate(synthetic_data.x_val, synthetic_data.y_val, batch_size=1024, verbose=0)
    assert loss == pytest.approx(val_loss[1], rel=RTOL)


@pytest.mark.parametrize("change", [{"dropout": 0.5}, {"optimizer": "adam"}, {"activation": "softmax"},
                                    {"family": "cnn"}, {"norm": "layernorm"}])
def test_what_cannot_be_packed_is_refused(change):
    with pytest.raises(ValueError, match="cannot pack"):
        packed.check_packable([{**BASE, **change}])
    with pytest.raises(ValueError, match="differ"):
        packed.check_packable([BASE, {**BASE, "batch_size": 64}])


@pytest.mark.jax
@pytest.mark.skipif(sys.modules.get("jax") is None and __import__("importlib").util.find_spec("jax") is None,
                    reason="jax is not installed")
def test_each_member_steps_as_it_would_alone_on_jax():
    """The same comparisons under KERAS_BACKEND=jax (a fresh process: the backend is per process): per-step
    losses (momentum, PReLU, maxout), and a packed member with both probes against the standard procedure."""
    script = (
        "import numpy as np\n"
        "from suite.core.plugins import load_plugins\n"
        "load_plugins()\n"
        "from suite.core.datasets import load_dataset\n"
        "from tests.techniques.standard import test_packed as t\n"
        "data = load_dataset('synthetic')\n"
        "for change in ({'optimizer': 'momentum'}, {'activation': 'prelu'}, {'activation': 'maxout'},\n"
        "               {'optimizer': 'momentum', 'lr_schedule': 'cosine'}, {'lr_schedule': 'step'}):\n"
        "    configs, seeds = t._configs({**t.BASE, **change})\n"
        "    losses, _ = t.packed_step_losses(configs, seeds, data, 2)\n"
        "    for m, (c, s) in enumerate(zip(configs, seeds)):\n"
        "        np.testing.assert_allclose(losses[m], t.alone_step_losses(c, s, data, 2), rtol=t.RTOL, atol=t.ATOL)\n"
        "t.test_a_packed_member_gives_the_standard_trials_numbers(data, {'norm': 'batchnorm', 'activation': 'tanh'},\n"
        "                                                       t.MEMBERS)\n"
        "t.test_a_packed_member_gives_the_standard_trials_numbers(data, {'lr_schedule': 'cosine'}, t.MEMBERS)\n"
        "print('jax ok')\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "jax ok" in done.stdout, done.stderr[-3000:]

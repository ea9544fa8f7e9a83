import numpy as np
import pytest

from suite.core import registry
from suite.core.backend import import_keras
from suite.techniques.probes import activation_stats, generalization, gradient_stats

keras = import_keras()


def test_symmetry_score_counts_duplicated_units():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(50, 6))
    assert activation_stats.symmetry_score(distinct) == 0.0
    same = np.repeat(rng.normal(size=(50, 1)), 6, axis=1)
    assert activation_stats.symmetry_score(same) == 1.0
    half = distinct.copy()
    half[:, 3] = half[:, 0]
    assert np.isclose(activation_stats.symmetry_score(half), 2 / 6)


def test_layer_stats_saturation():
    saturated = np.concatenate([np.full((100, 5), 0.001), np.full((100, 5), 0.999)], axis=1)
    stats = activation_stats.layer_stats(saturated, "sigmoid")
    assert stats["saturated_fraction"] == 1.0
    assert sum(stats["hist_counts"]) == saturated.size and len(stats["hist_edges"]) == activation_stats.HIST_BINS + 1
    spread = np.random.default_rng(1).uniform(0.2, 0.8, size=(100, 10))
    assert activation_stats.layer_stats(spread, "sigmoid")["saturated_fraction"] == 0.0
    assert np.isnan(activation_stats.layer_stats(spread, "relu")["saturated_fraction"])


def _unit_stats(activation: str, pre: np.ndarray) -> dict:
    """dead_fraction and no_gradient_fraction of a layer of Keras activation `activation` at `pre`."""
    layer = keras.layers.Activation(activation)
    pre = pre.astype("float32")
    return activation_stats.unit_gradient_stats(pre, activation_stats.activation_slope(layer, pre))


def test_a_relu_unit_with_one_positive_preactivation_is_alive():
    pre = -np.abs(np.random.default_rng(2).normal(size=(100, 10)))  # every unit negative on every row
    pre[17, 4] = 0.5  # unit 4 fires on one example
    pre[:, 7] = 0.0  # exactly 0 counts as dead: ReLU passes no gradient there
    stats = _unit_stats("relu", pre)
    assert stats["dead_fraction"] == pytest.approx(0.9)
    assert stats["no_gradient_fraction"] == pytest.approx(0.9)  # for ReLU, the dead units are the gradient-less ones


def test_a_leaky_unit_with_negative_preactivations_is_dead_but_still_gets_gradient():
    pre = np.random.default_rng(3).normal(size=(100, 10))
    pre[:, :3] = -np.abs(pre[:, :3]) - 0.1  # units 0-2 negative on every example
    stats = _unit_stats("leaky_relu", pre)
    assert stats["dead_fraction"] == pytest.approx(0.3)  # dead by the same test as ReLU (A6 can fail)
    assert stats["no_gradient_fraction"] == 0.0  # slope alpha > 0: they still pass a gradient
    slope = activation_stats.activation_slope(keras.layers.Activation("leaky_relu"), pre[:, :3].astype("float32"))
    assert np.all(slope > activation_stats.NO_GRADIENT_SLOPE)  # measured from the layer, not assumed from its name
    relu = _unit_stats("relu", pre)
    assert relu["dead_fraction"] == relu["no_gradient_fraction"] == pytest.approx(0.3)


def test_a_prelu_units_gradient_follows_its_learned_slope():
    pre = -np.abs(np.random.default_rng(4).normal(size=(50, 4))).astype("float32") - 0.1
    layer = keras.layers.PReLU()
    layer.build(pre.shape)
    alpha = np.array([0.0, 1e-5, 0.05, 0.3], dtype="float32")  # at init Keras' PReLU has alpha 0: a ReLU
    layer.alpha.assign(np.broadcast_to(alpha, layer.alpha.shape))
    stats = activation_stats.unit_gradient_stats(pre, activation_stats.activation_slope(layer, pre))
    assert stats["dead_fraction"] == 1.0
    assert stats["no_gradient_fraction"] == pytest.approx(0.5)  # the two with slope <= NO_GRADIENT_SLOPE


def test_maxout_has_no_dead_fraction_but_counts_pieces_that_never_win():
    pre = np.random.default_rng(5).normal(size=(64, 6)).astype("float32")
    stats = activation_stats.unit_gradient_stats(pre, np.zeros_like(pre), elementwise=False)
    assert np.isnan(stats["dead_fraction"]) and stats["no_gradient_fraction"] == 1.0


def test_non_finite_activations_give_nan_not_a_crash():
    stats = activation_stats.layer_stats(np.array([[np.nan, 1.0]]), "relu")
    assert np.isnan(stats["std"]) and stats["hist_counts"] == []


def test_summary_columns_match_the_declared_metrics():
    rows = [{**activation_stats.layer_stats(np.random.default_rng(i).normal(scale=1 / (i + 1), size=(64, 8)), "tanh"),
             "dead_fraction": 0.0, "no_gradient_fraction": 0.0, "pre_mean": 0.1, "pre_std": 1.0} for i in range(3)]
    summary = activation_stats.summarize_layers(rows)
    assert set(summary) == set(activation_stats.METRICS)
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
    assert set(gradient_stats.METRICS) <= set(sigmoid)
    assert sigmoid["log10_grad_ratio"] < relu["log10_grad_ratio"] - 1  # A1: ten times smaller, at least
    assert sigmoid["log10_grad_slope"] < relu["log10_grad_slope"] - 0.2  # the fitted line falls too


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
    assert last["train_eval_loss"] < outcome["history"][0]["train_eval_loss"]


def _metrics_of(probe: str) -> list[str]:
    """The per-epoch metrics a probe declares (registered with its name)."""
    return [name for name in registry.entries("metric") if registry.metadata("metric", name).get("probe") == probe]


def test_every_probe_declares_its_metrics():
    assert all(_metrics_of(name) for name in registry.list_names("probe"))


def _bn_net(seed: int = 0):
    """dense -> BN -> relu, twice, then the head; fresh BN moving statistics are (0, 1)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    x = inputs
    for i in (1, 2):
        x = keras.layers.Dense(8, name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"norm_{i}")(x)
        x = keras.layers.Activation("relu", name=f"act_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x))


def _manual_norms(model, x, y, kernels, size: int, training: bool) -> np.ndarray:
    """Mean over 4 batches of each kernel's gradient norm, by a plain GradientTape (state restored after)."""
    import tensorflow as tf

    saved = [v.numpy() for v in model.non_trainable_variables]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    norms = []
    for i in range(gradient_stats.GRADIENT_BATCHES):
        with tf.GradientTape() as tape:
            loss = loss_fn(y[i * size:(i + 1) * size], model(x[i * size:(i + 1) * size], training=training))
        norms.append([float(tf.norm(g)) for g in tape.gradient(loss, kernels)])
    for variable, value in zip(model.non_trainable_variables, saved):
        variable.assign(value)
    return np.mean(norms, axis=0)


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="the reference gradients use tf.GradientTape")
def test_gradient_probe_uses_batch_statistics_and_leaves_bn_state_alone():
    """Moving statistics (0, 1) but inputs of mean 3 and std 5: in training mode BN normalises with
    the batch's statistics, in inference mode it is the identity, and the gradients differ (R3)."""
    model = _bn_net()
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(128, 6)) * 5 + 3).astype("float32")
    y = rng.integers(0, 3, size=128)
    kernels = [model.get_layer(f"dense_{i}").kernel for i in (1, 2)]
    state = [v.numpy().copy() for v in model.variables]
    probed = np.array(gradient_stats.kernel_gradient_norms(model, x, y, kernels, batch_size=32))
    assert all(np.array_equal(before, after.numpy()) for before, after in zip(state, model.variables))
    training = _manual_norms(model, x, y, kernels, 32, training=True)
    inference = _manual_norms(model, x, y, kernels, 32, training=False)
    assert probed == pytest.approx(training, rel=1e-4)
    assert np.all(np.abs(probed / inference - 1) > 0.1)  # the old inference-mode probe measured another net


def test_gradient_probe_callback_does_not_change_bn_moving_statistics(synthetic_data):
    model = _bn_net(1)
    x = synthetic_data.x_val[:64].reshape(64, -1)[:, :6].astype("float32") * 4 + 2
    y = synthetic_data.y_val[:64] % 3
    before = {v.path: keras.ops.convert_to_numpy(v.value).copy() for v in model.non_trainable_variables}
    callback = gradient_stats.gradient_stats(x, y, {"batch_size": 16})
    callback.set_model(model)
    callback.on_train_begin()
    after = {v.path: keras.ops.convert_to_numpy(v.value) for v in model.non_trainable_variables}
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert np.isfinite(callback.epoch_columns[0]["log10_grad_slope"])


def test_log10_slope_sign_reads_towards_the_input():
    vanishing = [1e-4, 1e-3, 1e-2, 1e-1]  # first hidden layer ... last: ten times smaller per layer nearer the input
    assert gradient_stats.log10_slope(vanishing) == pytest.approx(-1.0)
    assert gradient_stats.log10_slope(vanishing[::-1]) == pytest.approx(1.0)  # exploding towards the input
    assert gradient_stats.log10_slope([0.5, 0.5, 0.5]) == pytest.approx(0.0)
    # same sign as log10_grad_ratio, and on a straight line it is that ratio per layer
    assert gradient_stats.log10_slope(vanishing) == pytest.approx(np.log10(vanishing[0] / vanishing[-1]) / 3)
    assert np.isnan(gradient_stats.log10_slope([0.0, 1.0])) and np.isnan(gradient_stats.log10_slope([1.0]))


def test_generalization_probe_records_the_inference_mode_training_loss():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 5)).astype("float32"), rng.integers(0, 3, size=300)
    callback = generalization.generalization(x[:10], y[:10], {})
    callback.set_model(model)
    callback.use_training_sample(x, y)
    callback.observe(1, {"val_accuracy": 0.5})
    probabilities = keras.ops.convert_to_numpy(model(x, training=False))
    expected = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert callback.epoch_columns[1]["train_eval_loss"] == pytest.approx(expected, rel=1e-5)
    assert callback.epoch_columns[1]["train_eval_accuracy"] == pytest.approx(np.mean(probabilities.argmax(-1) == y))


def test_training_sample_metrics_of_a_bn_net_use_the_sample_statistics_and_store_nothing():
    """Fresh BN moving statistics are (0, 1): with inputs of mean 3 and std 5 the inference-mode
    loss would measure the stale statistics; the probe re-estimates them on the sample."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(16)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.ReLU()(hidden)))
    rng = np.random.default_rng(0)
    x, y = (3 + 5 * rng.normal(size=(300, 5))).astype("float32"), rng.integers(0, 3, size=300)
    before = [keras.ops.convert_to_numpy(v.value).copy() for v in model.variables]
    callback = generalization.generalization(x[:10], y[:10], {})
    callback.set_model(model)
    callback.use_training_sample(x, y)
    callback.observe(1, {"val_accuracy": 0.5})
    # the same as a training-mode pass over the whole sample as one batch (this net has no dropout)
    probabilities, _ = model.stateless_call([v.value for v in model.trainable_variables],
                                            [v.value for v in model.non_trainable_variables], x, training=True)
    probabilities = keras.ops.convert_to_numpy(probabilities)
    expected = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert callback.epoch_columns[1]["train_eval_loss"] == pytest.approx(expected, rel=1e-4)
    stale = keras.ops.convert_to_numpy(model(x, training=False))
    assert abs(-np.mean(np.log(stale[np.arange(len(y)), y])) - expected) > 0.01  # the moving statistics differ
    assert all(np.array_equal(b, keras.ops.convert_to_numpy(v.value)) for b, v in zip(before, model.variables))
    assert model.layers[2].momentum == 0.99  # restored

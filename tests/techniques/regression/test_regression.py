"""Guards for the regression study (D5): outliers reach training labels only, metrics equal
scikit-learn's, each seed gets its own split, jointly trained logistic starts stay independent,
and the convexity check tells a convex cost from a non-convex one."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from sklearn import metrics as skm

from suite.core.backend import import_keras
from suite.core.datasets import load_dataset
from suite.core.fit import TrialContext
from suite.techniques.regression import regression

keras = import_keras()
CONFIG = {"optimizer": "adam", "learning_rate": 0.02, "batch_size": 32, "train_examples": 120, "epochs": 1,
          "logistic_learning_rate": 0.5}


@pytest.fixture(scope="module")
def diabetes():
    return load_dataset("diabetes")


def test_diabetes_is_a_float_regression_target_in_a_60_20_20_split(diabetes):
    assert (len(diabetes.y_train), len(diabetes.y_val), len(diabetes.y_test)) == (266, 88, 88)
    assert diabetes.num_classes == 0 and diabetes.y_train.dtype == np.float32 and diabetes.input_shape == (10,)
    assert np.allclose(diabetes.x_train.mean(axis=0), 0, atol=1e-5) and np.allclose(diabetes.x_train.std(axis=0), 1, atol=1e-4)


@pytest.mark.subprocess
def test_a_fresh_process_finds_the_dataset_by_name():
    # worker processes load the study's dataset by name before any study module is imported
    code = ("from suite.core.plugins import load_plugins; load_plugins(); "  # what the CLI and every worker do first
            "from suite.core.datasets import load_dataset; print(load_dataset('diabetes').input_shape)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(10,)" in done.stdout


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3])
def test_outliers_shift_exactly_the_fraction_upwards_and_nothing_else(diabetes, fraction):
    y = diabetes.y_train
    noisy, index = regression.inject_outliers(y, fraction, seed=1)
    assert len(index) == round(fraction * len(y))
    untouched = np.setdiff1d(np.arange(len(y)), index)
    assert np.array_equal(noisy[untouched], y[untouched])
    shift = (noisy[index] - y[index]) / np.std(y)
    assert np.all(shift >= regression.OUTLIER_SHIFT[0] - 1e-4) and np.all(shift <= regression.OUTLIER_SHIFT[1] + 1e-4)
    again, _ = regression.inject_outliers(y, fraction, seed=1)
    assert np.array_equal(noisy, again)  # the same labels for every loss of one seed: paired comparisons


def test_each_seed_splits_all_rows_anew(diabetes):
    first, again, other = (regression.resplit(diabetes, s) for s in (0, 0, 1))
    every = np.sort(np.concatenate([diabetes.y_train, diabetes.y_val, diabetes.y_test]))
    assert np.array_equal(np.sort(np.concatenate([other.y_train, other.y_val, other.y_test])), every)
    assert np.array_equal(first.y_test, again.y_test) and not np.array_equal(first.y_test, other.y_test)
    assert np.allclose(other.x_train.mean(axis=0), 0, atol=1e-5)  # standardised with its own training rows


def test_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    y_true = rng.uniform(25, 350, 50)
    y_pred = y_true + rng.normal(0, 40, 50)
    got = regression.regression_metrics(y_true, y_pred)
    assert got["test_mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert got["test_mse"] == pytest.approx(skm.mean_squared_error(y_true, y_pred))
    assert got["test_rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y_true, y_pred)))
    assert got["test_rmsle"] == pytest.approx(np.sqrt(skm.mean_squared_log_error(y_true, np.maximum(y_pred, 0))))
    assert got["test_r2"] == pytest.approx(skm.r2_score(y_true, y_pred))


def test_test_metrics_use_the_clean_labels_while_training_labels_carry_outliers(diabetes, monkeypatch):
    seen = {}
    real_metrics, real_outliers, real_fit = regression.regression_metrics, regression.inject_outliers, keras.Model.fit

    def spy_metrics(y_true, y_pred):
        seen["test_labels"] = np.asarray(y_true)
        return real_metrics(y_true, y_pred)

    def spy_outliers(y, fraction, seed):
        seen["clean"], (seen["noisy"], index) = y.copy(), real_outliers(y, fraction, seed)
        return seen["noisy"], index

    def spy_fit(model, x, y, **kwargs):
        seen["fitted"] = np.asarray(y)
        return real_fit(model, x, y, **kwargs)

    monkeypatch.setattr(regression, "regression_metrics", spy_metrics)
    monkeypatch.setattr(regression, "inject_outliers", spy_outliers)
    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    outcome = regression.regression({**CONFIG, "loss": "mae", "outlier_fraction": 0.3}, 2, diabetes, TrialContext())
    split = regression.resplit(diabetes, 2)
    assert outcome["status"] == "ok" and outcome["final"]["outliers"] == round(0.3 * 120)
    assert np.array_equal(seen["clean"], split.y_train[:120])  # outliers go into this seed's training labels ...
    assert np.corrcoef(seen["fitted"][:120], seen["noisy"])[0, 1] > 0.9999  # ... the model fits those (standardised)
    assert np.array_equal(seen["test_labels"], split.y_test)  # ... and is scored on clean test labels
    assert set(outcome["final"]) >= {"test_mae", "test_mse", "test_rmse", "test_rmsle", "test_r2"}


@pytest.mark.parametrize("loss", sorted(regression.LOGISTIC_LOSSES))
def test_starts_trained_together_move_exactly_as_if_trained_alone(loss):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype("float32")
    y = (rng.random((40, 1)) > 0.5).astype("float32")
    kernel, bias = rng.standard_normal((3, 2)).astype("float32") * 3, rng.standard_normal(2).astype("float32")

    def train(columns):
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(len(columns))(inputs))
        model.set_weights([kernel[:, columns], bias[columns]])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=regression._sum_over_starts(regression.LOGISTIC_LOSSES[loss]))
        for _ in range(5):
            model.train_on_batch(x, y)
        return model.get_weights()

    together, alone = train([0, 1]), train([1])
    np.testing.assert_allclose(together[0][:, 1], alone[0][:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together[1][1], alone[1][0], rtol=1e-5, atol=1e-6)


def test_convexity_check_tells_cross_entropy_from_squared_error(diabetes):
    x, y = diabetes.x_train, (diabetes.y_train > np.median(diabetes.y_train)).astype("float32")
    assert regression.convexity_violations("sigmoid_crossentropy", x, y, seed=0, pairs=200) == 0.0
    assert regression.convexity_violations("sigmoid_mse", x, y, seed=0, pairs=200) > 0.05
    # the numpy cost is the Keras loss the units train on
    weights = np.random.default_rng(0).standard_normal((4, 11))
    logits = x @ weights[:, :-1].T + weights[:, -1]
    for name, per_unit in regression.LOGISTIC_LOSSES.items():
        keras_cost = keras.ops.convert_to_numpy(per_unit(y[:, None], logits.astype("float32"))).mean(axis=0)
        np.testing.assert_allclose(regression.logistic_cost(name, weights, x, y), keras_cost, rtol=1e-4)


def test_logistic_arm_records_stalls_per_start_scale(diabetes):
    outcome = regression.regression({**CONFIG, "loss": "sigmoid_mse", "outlier_fraction": 0.1}, 0, diabetes, TrialContext())
    final = outcome["final"]
    assert outcome["status"] == "ok" and 0.0 <= final["stalled_fraction"] <= 1.0
    assert all(f"train_accuracy_start_{s:g}" in final for s in regression.START_SCALES)
    assert final["start_gap"] == pytest.approx(final["train_accuracy_start_0.01"] - final["train_accuracy_start_10"])

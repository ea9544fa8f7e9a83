"""regression: a real regression target and the losses of claim D5, as a dataset and a procedure.

Owns the `diabetes` dataset (scikit-learn's copy of Efron et al. 2004: 442 patients, 10
features, a continuous disease-progression score one year later; it ships inside the
package, so no download), outlier injection into *training* labels only, the `regression`
procedure and the metrics it records on clean test labels (MAE, MSE, RMSE, RMSLE, R^2).
The same procedure runs the logistic-regression arm of D5: squared error vs cross-entropy
on a sigmoid output, from many starting points at once, plus a numerical convexity check.
Must not: read study files, judge claims or draw figures.
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.datasets import SPLIT_SEED, Dataset, fingerprint
from suite.core.fit import DIVERGED, OK, TrialContext, compile_model, finite_or_none, fit, outcome
from suite.core.keys import derive_seed
from suite.core.settings import Fraction, PositiveNumber, declare_setting, one_of
from suite.techniques.optimizers.optimizers import OPTIMIZER_SETTINGS
from suite.techniques.optimizers.schedules import learning_rate_for

keras = import_keras()

TEST_SHARE, VALIDATION_SHARE = 0.2, 0.2  # 60/20/20, the notes' split for small data (D2)
OUTLIER_SHIFT = (3.0, 6.0)  # an outlier label = true label + U(3, 6) x std of the clean training labels
HUBER_DELTA = 1.345  # in robust-standardised units: the usual choice (95% efficiency on Gaussian noise)
START_SCALES = (0.01, 0.1, 1.0, 3.0, 10.0)  # logistic arm: std of the initial weights and bias
STARTS_PER_SCALE = 8
STALL_MARGIN = 0.05  # a start has stalled when its training accuracy ends this far below the optimum's
CONVEXITY_PAIRS = 500
# One Keras epoch = this many passes over the (266-row) training set: Keras' fixed cost per
# epoch (~0.1 s) dwarfs a pass over so few rows, so 100 one-pass epochs took 15 s, 10 of 10 passes ~2 s.
PASSES_PER_EPOCH = 10


def repeat_passes(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training set repeated PASSES_PER_EPOCH times (Keras shuffles the copies together)."""
    return np.concatenate([x] * PASSES_PER_EPOCH), np.concatenate([y] * PASSES_PER_EPOCH)


def _sum_over_starts(per_unit):
    """Each output unit is its own logistic regression: summing the units' losses gives every
    unit exactly the gradient it would get if trained alone."""
    return lambda y_true, logits: keras.ops.sum(per_unit(keras.ops.cast(y_true, logits.dtype), logits), axis=-1)


# (D5) squared error on a sigmoid output vs cross-entropy, on logits of shape (batch, starts)
LOGISTIC_LOSSES = {
    "sigmoid_mse": lambda y, z: keras.ops.square(keras.ops.sigmoid(z) - y),
    "sigmoid_crossentropy": lambda y, z: keras.ops.softplus(z) - y * z,  # -y log p - (1 - y) log(1 - p), stable
}
REGRESSION_LOSSES = {
    "mae": lambda: keras.losses.MeanAbsoluteError(),  # L1
    "mse": lambda: keras.losses.MeanSquaredError(),  # L2
    "huber": lambda: keras.losses.Huber(delta=HUBER_DELTA),
}
declare_setting("loss", "training", one_of(*REGRESSION_LOSSES, *LOGISTIC_LOSSES),
                "the loss: L1 (mae), L2 (mse), Huber, or on a sigmoid output squared error vs cross-entropy (D5)")
declare_setting("outlier_fraction", "training", Fraction,
                "share of training labels made outliers (regression) or flipped (logistic arms)")
declare_setting("logistic_learning_rate", "training", PositiveNumber, "the logistic arms' plain-SGD step size (D5)")
# What the `regression` procedure reads: its own settings, the optimizer's, and an MLP's size.
REGRESSION_SETTINGS = ("loss", "outlier_fraction", "logistic_learning_rate", *OPTIMIZER_SETTINGS, "depth", "width")
for _name in ("test_mae", "test_mse", "test_rmse", "test_rmsle", "test_r2", "stalled_fraction",
              "convexity_violations", "start_gap", *(f"train_accuracy_start_{s:g}" for s in START_SCALES)):
    registry.add("metric", _name, "final")
for _name in ("val_mae", "val_rmse"):
    registry.add("metric", _name, "epoch")


def split_rows(x: np.ndarray, y: np.ndarray, order_seed, fingerprint_: str, source: str) -> Dataset:
    """A 60/20/20 split in the order of a seeded permutation; features standardised with the
    training rows' statistics; float targets (`num_classes` 0: regression)."""
    order = np.random.default_rng(order_seed).permutation(len(y))
    n_test, n_val = round(TEST_SHARE * len(y)), round(VALIDATION_SHARE * len(y))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    x = ((x - x[train].mean(axis=0)) / x[train].std(axis=0)).astype("float32")
    y = y.astype("float32")
    return Dataset(name="diabetes", x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
                   x_test=x[test], y_test=y[test], num_classes=0, fingerprint=fingerprint_, source=source)


@registry.register("dataset")
def diabetes(data_dir: str | None = None) -> Dataset:
    """Diabetes progression (442 x 10, target 25-346), split 60/20/20 (trials split it again per seed)."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, scaled=False)
    return split_rows(x, y, SPLIT_SEED, fingerprint({"x": x, "y": y}), "sklearn.datasets.load_diabetes")


def resplit(data: Dataset, seed: int) -> Dataset:
    """The seed's own 60/20/20 split of all rows (repeated hold-out). With a convex loss every seed
    converges to the same fit, so only a new split makes seeds independent replicates (D5)."""
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    return split_rows(x, y, [SPLIT_SEED, seed], data.fingerprint, data.source)


def inject_outliers(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, corrupted indices): `fraction` of the labels shifted far upwards (one-sided gross
    errors, which pull an L2 fit the most). Only ever applied to training labels (D5)."""
    rng = np.random.default_rng(derive_seed(seed, "outliers"))
    index = np.sort(rng.choice(len(y), round(fraction * len(y)), replace=False))
    noisy = y.astype("float32").copy()
    noisy[index] += rng.uniform(*OUTLIER_SHIFT, len(index)).astype("float32") * float(np.std(y))
    return noisy, index


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """The notes' five metrics. R^2 = 1 - SSE/SST (the usual definition; the notes' Var(Y_hat)/Var(Y)
    agrees with it only for least squares on its own training data). RMSLE clips predictions at 0."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    error = y_pred - y_true
    mse = float(np.mean(error ** 2))
    log_error = np.log1p(np.maximum(y_pred, 0.0)) - np.log1p(y_true)
    return {"test_mae": float(np.mean(np.abs(error))), "test_mse": mse, "test_rmse": mse ** 0.5,
            "test_rmsle": float(np.sqrt(np.mean(log_error ** 2))),
            "test_r2": 1.0 - float(np.sum(error ** 2) / np.sum((y_true - y_true.mean()) ** 2))}


def build_regressor(config: dict, features: int) -> keras.Model:
    """Linear regression, or an MLP when the study sets `depth` (hidden ReLU layers of `width`)."""
    inputs = keras.Input((features,))
    x = inputs
    for i in range(1, config.get("depth", 0) + 1):
        x = keras.layers.Dense(config.get("width", 32), activation="relu", name=f"dense_{i}")(x)
    return keras.Model(inputs, keras.layers.Dense(1, name="output")(x))


def _outcome(context: TrialContext, status: str, history: list[dict], final: dict, message: str = "") -> dict:
    result = outcome(context, status, history, final, message)
    result["final"] = {k: finite_or_none(v) for k, v in result["final"].items()}
    return result


def _history(fit_history: dict, scale: float) -> list[dict]:
    """One row per epoch: training loss (standardised units) and validation MAE/RMSE in label units."""
    rows = [{"epoch": 0}]
    for epoch, loss in enumerate(fit_history["loss"]):
        row = {"epoch": epoch + 1, "train_loss": float(loss), "val_loss": float(fit_history["val_loss"][epoch])}
        for key in ("mae", "rmse"):
            row[f"val_{key}"] = float(fit_history[f"val_{key}"][epoch]) * scale
        rows.append(row)
    return rows


@registry.register("procedure", settings=REGRESSION_SETTINGS)
def regression(config: dict, seed: int, data: Dataset, context: TrialContext) -> dict:
    """(D5) Fit the diabetes target with an L1, L2 or Huber loss on labels with injected outliers;
    report every metric against the clean test labels."""
    if config["loss"] in LOGISTIC_LOSSES:
        return logistic(config, seed, data, context)
    keras.utils.set_random_seed(seed)
    # 1. data: this seed's split; outliers in the training labels only, validation and test stay clean
    data = resplit(data, seed)
    n = min(config["train_examples"], len(data.y_train))
    x, y = data.x_train[:n], data.y_train[:n]
    noisy, corrupted = inject_outliers(y, config["outlier_fraction"], seed)
    # 2. the target standardised robustly from the labels a practitioner would have: median and
    # MAD (breakdown point 50%; an IQR breaks at 25% and, inflated by 30% outliers, gave Huber's
    # delta the size of the outliers themselves)
    centre = float(np.median(noisy))
    scale = 1.4826 * float(np.median(np.abs(noisy - centre)))

    def standard(values):
        return ((values - centre) / scale).astype("float32")

    # 3. model and loss
    model = build_regressor(config, x.shape[1])
    # the study's schedule decays the step size to 0, so the last iterate sits at the loss's optimum,
    # not somewhere in the minibatch noise around it: the losses are compared, not their noise
    steps = config["epochs"] * PASSES_PER_EPOCH * -(-n // config["batch_size"])
    compile_model(model, config, REGRESSION_LOSSES[config["loss"]](), learning_rate=learning_rate_for(config, steps),
                  metrics=[keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse")])
    x_passes, y_passes = repeat_passes(x, standard(noisy))
    result = fit(model, context, epochs=config["epochs"], x=x_passes, y=y_passes, batch_size=config["batch_size"],
                 validation_data=(data.x_val, standard(data.y_val)))
    # 4. the test set, once, against clean labels in the original units
    predicted = keras.ops.convert_to_numpy(model(data.x_test, training=False))[:, 0] * scale + centre
    final = {**regression_metrics(data.y_test, predicted), "outliers": int(len(corrupted))}
    status, message = result.status, result.message
    if status == OK and not np.isfinite(predicted).all():
        status, message = DIVERGED, "non-finite test predictions"
    return _outcome(context, status, _history(result.history, scale), final, message)


# ---- logistic regression: squared error vs cross-entropy on a sigmoid (D5, seed 003) ----

def binary_labels(data: Dataset, fraction: float, seed: int, n: int):
    """Disease progression above the training median (1) or not (0); `fraction` of the
    training labels flipped (label noise), validation and test labels clean."""
    threshold = float(np.median(data.y_train))
    train = (data.y_train[:n] > threshold).astype("float32")
    rng = np.random.default_rng(derive_seed(seed, "label_noise"))
    flip = rng.choice(n, round(fraction * n), replace=False)
    train[flip] = 1.0 - train[flip]
    return train, (data.y_val > threshold).astype("float32"), (data.y_test > threshold).astype("float32")


def starting_points(features: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel (features, starts), bias (starts,), scale of each start): random directions at each scale."""
    rng = np.random.default_rng(derive_seed(seed, "logistic_starts"))
    scales = np.repeat(np.asarray(START_SCALES, dtype="float32"), STARTS_PER_SCALE)
    kernel = rng.standard_normal((features, len(scales))).astype("float32") * scales
    bias = rng.standard_normal(len(scales)).astype("float32") * scales
    return kernel, bias, scales


def logistic_cost(name: str, weights: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The mean cost over the data for each weight vector (rows of `weights`: kernel then bias), float64."""
    z = x.astype(float) @ weights[:, :-1].T + weights[:, -1]
    y = y.astype(float)[:, None]
    if name == "sigmoid_mse":
        return np.mean((1.0 / (1.0 + np.exp(-z)) - y) ** 2, axis=0)
    return np.mean(np.logaddexp(0.0, -z) * y + np.logaddexp(0.0, z) * (1.0 - y), axis=0)


def convexity_violations(name: str, x: np.ndarray, y: np.ndarray, seed: int, pairs: int = CONVEXITY_PAIRS) -> float:
    """Share of random weight pairs (a, b) where the cost at the midpoint exceeds the mean of the
    costs at a and b: never for a convex cost (up to rounding), sometimes for a non-convex one."""
    rng = np.random.default_rng(derive_seed(seed, "convexity_pairs"))
    scales = rng.choice(START_SCALES, size=(2, pairs, 1))
    a, b = (rng.standard_normal((2, pairs, x.shape[1] + 1)) * scales)
    mid = logistic_cost(name, (a + b) / 2, x, y)
    chord = (logistic_cost(name, a, x, y) + logistic_cost(name, b, x, y)) / 2
    return float(np.mean(mid > chord + 1e-9 * (1.0 + np.abs(chord))))


def optimum_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Training accuracy of the (practically unregularised) cross-entropy optimum, by L-BFGS."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1e4, max_iter=10_000).fit(x, y.astype(int))
    return float(fitted.score(x, y.astype(int)))


def logistic(config: dict, seed: int, data: Dataset, context: TrialContext) -> dict:
    """(D5) Logistic regression trained by plain SGD from 40 starting points at once (one output
    unit per start), with squared error or cross-entropy; which starts stall?"""
    keras.utils.set_random_seed(seed)
    name, data = config["loss"], resplit(data, seed)
    n = min(config["train_examples"], len(data.y_train))
    x = data.x_train[:n]
    y, y_val, y_test = binary_labels(data, config["outlier_fraction"], seed, n)
    kernel, bias, scales = starting_points(x.shape[1], seed)
    inputs = keras.Input((x.shape[1],))
    model = keras.Model(inputs, keras.layers.Dense(len(scales), name="starts")(inputs))
    model.get_layer("starts").set_weights([kernel, bias])

    def accuracy(y_true, logits):  # mean over the starts
        return keras.ops.mean(keras.ops.cast((logits > 0) == (y_true > 0.5), "float32"), axis=-1)

    # plain SGD, as in the claim (gradient descent), whatever the regression arms use
    compile_model(model, {"optimizer": "sgd"}, _sum_over_starts(LOGISTIC_LOSSES[name]), metrics=[accuracy],
                  learning_rate=config["logistic_learning_rate"])
    x_passes, y_passes = repeat_passes(x, y[:, None])
    result = fit(model, context, epochs=config["epochs"], x=x_passes, y=y_passes, batch_size=config["batch_size"],
                 validation_data=(data.x_val, y_val[:, None]))
    losses = result.history["loss"]
    history = [{"epoch": 0}] + [
        {"epoch": e + 1, "train_loss": float(losses[e]) / len(scales),
         "train_accuracy": float(result.history["accuracy"][e]), "val_accuracy": float(result.history["val_accuracy"][e])}
        for e in range(len(losses))]

    def per_start_accuracy(inputs_, labels):
        logits = keras.ops.convert_to_numpy(model(inputs_, training=False))
        return np.mean((logits > 0) == (labels[:, None] > 0.5), axis=0)

    train_acc, test_acc = per_start_accuracy(x, y), per_start_accuracy(data.x_test, y_test)
    by_scale = {f"train_accuracy_start_{s:g}": float(train_acc[scales == s].mean()) for s in START_SCALES}
    smallest, largest = (by_scale[f"train_accuracy_start_{s:g}"] for s in (START_SCALES[0], START_SCALES[-1]))
    final = {
        "train_accuracy": float(train_acc.mean()), "test_accuracy": float(test_acc.mean()),
        "stalled_fraction": float(np.mean(train_acc < optimum_accuracy(x, y) - STALL_MARGIN)),
        "start_gap": smallest - largest,
        "convexity_violations": convexity_violations(name, x, y, seed), **by_scale,
    }
    return _outcome(context, result.status, history, final, result.message)

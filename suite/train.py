"""train: runs one trial (build data, model and optimizer, fit, probe, test once).

Returns a plain dict outcome; the runner adds identity and provenance and stores it.
A NaN/inf loss ends the trial as `diverged` with its history kept, not as a crash.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from suite import probes, registry  # noqa: F401 (importing probes registers them)
from suite.backend import import_keras
from suite.data import Dataset
from suite.device import jit_compile
from suite.models import build_model

keras = import_keras()

OK, DIVERGED, ERROR, TIMEOUT = "ok", "diverged", "error", "timeout"
# Keras' history keys -> the suite's per-epoch column names
HISTORY_COLUMNS = {"loss": "train_loss", "accuracy": "train_accuracy", "val_loss": "val_loss", "val_accuracy": "val_accuracy"}
STATUSES = (OK, DIVERGED, ERROR, TIMEOUT)
PROBE_EXAMPLES = 512  # fixed validation images every probe looks at
STEPS_PER_EXECUTION = 64  # fewer Python round-trips per epoch: 5 epochs of the init MLP 1.38 s -> 1.0 s (16 vs 79)
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion")
# Names for SGD variants the notes compare as optimizers of their own (D3).
OPTIMIZER_ALIASES = {"momentum": ("sgd", {"momentum": 0.9}), "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True})}


def is_known_optimizer(name: str) -> bool:
    return name in OPTIMIZERS or name in OPTIMIZER_ALIASES


def list_known_optimizers() -> list[str]:
    return list(OPTIMIZERS) + list(OPTIMIZER_ALIASES)


def build_optimizer(config: dict) -> keras.optimizers.Optimizer:
    name, options = OPTIMIZER_ALIASES.get(config["optimizer"], (config["optimizer"], {}))
    options = {**options, "learning_rate": config["learning_rate"]}
    if "momentum" in config:
        options["momentum"] = config["momentum"]
    return keras.optimizers.get({"class_name": name, "config": options})


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where (status `diverged`)."""

    def __init__(self):
        super().__init__()
        self.diverged_at: int | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = self.epoch
            self.model.stop_training = True


class Deadline(keras.callbacks.Callback):
    """Stops training once `seconds` have passed since the trial began (status `timeout`,
    history kept); executors that can kill a worker also end a trial hung outside `fit`."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.started, self.hit = seconds, time.perf_counter(), False

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.started > self.seconds:
            self.hit = True
            self.model.stop_training = True


# Trials that differ only in these settings share one compiled model: tracing the
# train/test functions took half of a small trial's time (measured: ~1.1 of 2.3 s).
VALUE_ONLY_KEYS = ("kernel_initializer", "learning_rate", "epochs", "train_examples")
MAX_COMPILED = 8
_COMPILED: dict[str, keras.Model] = {}


def uses_soft_labels(config: dict) -> bool:
    """Augmentations that mix images (MixUp, CutMix) mix labels too: one-hot labels throughout."""
    return config.get("augmentation", "none") != "none"


def build_compiled_model(config: dict, data: Dataset) -> keras.Model:
    """A compiled model in the state a freshly built one would have for `config`.

    The fresh model is always built (so initial weights come from this trial's seed);
    when an identical architecture was compiled before, its variables take the fresh
    values and its optimizer state is zeroed, so the traced functions are reused.
    """
    fresh = build_model(config, data.input_shape, data.num_classes)
    signature = json.dumps({k: v for k, v in config.items() if k not in VALUE_ONLY_KEYS}, sort_keys=True, default=str)
    model = _COMPILED.get(signature)
    if model is not None and [v.shape for v in model.variables] == [v.shape for v in fresh.variables]:
        for target, source in zip(model.variables, fresh.variables):
            target.assign(source)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))
        model.optimizer.learning_rate = config["learning_rate"]
        return model
    if uses_soft_labels(config):
        loss, accuracy = "categorical_crossentropy", keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss, accuracy = "sparse_categorical_crossentropy", "accuracy"
    fresh.compile(optimizer=build_optimizer(config), loss=loss, metrics=[accuracy], steps_per_execution=STEPS_PER_EXECUTION,
                  jit_compile=jit_compile())
    if len(_COMPILED) >= MAX_COMPILED:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[signature] = fresh
    return fresh


EVAL_BATCH = 1024
_EVAL_SETS: dict[tuple, object] = {}


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[y]


def eval_data(data: Dataset, split: str, soft_labels: bool = False):
    """Validation/test data in the form Keras evaluates fastest, built once per process.

    On TensorFlow a cached `tf.data` pipeline: converting the numpy arrays again for
    every evaluation took a quarter of a small trial (5 x 0.085 s of 1.9 s)."""
    x, y = (data.x_val, data.y_val) if split == "val" else (data.x_test, data.y_test)
    if soft_labels:
        y = one_hot(y, data.num_classes)
    if keras.config.backend() != "tensorflow":
        return (x, y)
    key = (data.name, data.fingerprint, split, soft_labels)
    if key not in _EVAL_SETS:
        import tensorflow as tf

        _EVAL_SETS[key] = tf.data.Dataset.from_tensor_slices((x, y)).batch(EVAL_BATCH).cache()
    return _EVAL_SETS[key]


def _evaluate(model, data: Dataset, split: str, soft_labels: bool = False):
    evaluation = eval_data(data, split, soft_labels)
    if isinstance(evaluation, tuple):
        return model.evaluate(*evaluation, batch_size=EVAL_BATCH, verbose=0)
    return model.evaluate(evaluation, verbose=0)


class StepTimer(keras.callbacks.Callback):
    """Time of the training steps alone (A9): from each epoch's start to its last training
    batch, so validation, probes and, from the second epoch on, tracing are left out."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(self.last - self.started)

    def seconds_per_step(self, steps_per_epoch: int) -> float:
        # the first epoch traces the graph on a fresh model: use it only if it is all there is
        timed = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(timed)) / steps_per_epoch if timed and steps_per_epoch else float("nan")


def _finite_or_nan(value) -> float:
    value = float("nan") if value is None else float(value)
    return value if math.isfinite(value) else float("nan")


class EpochReporter(keras.callbacks.Callback):
    """Calls `report(epoch, epochs)` after every epoch, for the terminal's progress line."""

    def __init__(self, report, epochs: int):
        super().__init__()
        self.report, self.epochs = report, epochs

    def on_epoch_end(self, epoch, logs=None):
        self.report(epoch + 1, self.epochs)


def training_input(config: dict, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int):
    """What `fit` trains on: the arrays, or with an `augmentation` a shuffled tf.data
    pipeline that augments each training batch (validation and test never are)."""
    if not uses_soft_labels(config):
        return {"x": x, "y": y, "batch_size": config["batch_size"]}
    import tensorflow as tf

    augment = registry.get("augmentation", config["augmentation"])(config, num_classes, seed)
    pipeline = (tf.data.Dataset.from_tensor_slices((x, one_hot(y, num_classes)))
                .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
                .batch(config["batch_size"])
                .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE))
    return {"x": pipeline, "shuffle": False}  # shuffled above; Keras warns when asked to shuffle a dataset


def run_trial(config: dict, seed: int, probe_names: tuple, data: Dataset, artifacts_dir: str | None = None,
              on_epoch=None, time_limit: float | None = None) -> dict:
    """Train one configuration; returns {status, message, history, final, layers, timing}.

    A config with a `procedure` (freeze, finetune, distill, regression ...) is run by that
    registered procedure, which may share trained models through an artifact store.
    A `data_view` (e.g. a shifted test distribution) replaces the splits first."""
    from suite import components  # noqa: F401 (registers views, augmentations, procedures)

    if "data_view" in config:
        data = registry.get("data_view", config["data_view"])(data, config)
    if "procedure" in config:
        from suite.artifacts import ArtifactStore

        store = ArtifactStore(artifacts_dir or "results/artifacts")
        return registry.get("procedure", config["procedure"])(config, seed, data, store)
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    n = config["train_examples"]
    x, y = data.x_train[:n], data.y_train[:n]
    model = build_compiled_model(config, data)
    soft_labels = uses_soft_labels(config)
    probe_x, probe_y = data.x_val[:PROBE_EXAMPLES], data.y_val[:PROBE_EXAMPLES]
    probe_callbacks = [registry.get("probe", name)(probe_x, probe_y, config) for name in probe_names]
    for callback in probe_callbacks:
        if hasattr(callback, "use_training_sample"):  # probes that compare with the training data (D1, D4)
            callback.use_training_sample(x, y)
    guard, timer = DivergenceGuard(), StepTimer()
    deadline = [Deadline(time_limit)] if time_limit else []
    if on_epoch is not None:
        probe_callbacks.append(EpochReporter(on_epoch, config["epochs"]))

    fit_started = time.perf_counter()
    fit = model.fit(**training_input(config, x, y, data.num_classes, seed), epochs=config["epochs"],
                    validation_data=eval_data(data, "val", soft_labels), validation_batch_size=EVAL_BATCH,
                    callbacks=[guard, timer, *deadline, *probe_callbacks], verbose=0)
    train_seconds = time.perf_counter() - fit_started

    history = _history_rows(fit.history, probe_callbacks)
    final = {key: _finite_or_nan(history[-1].get(key, float("nan"))) for key in history[-1] if key != "epoch"}
    timed_out = bool(deadline) and deadline[0].hit
    status = DIVERGED if guard.diverged_at is not None else TIMEOUT if timed_out else OK
    # The test set is touched once, for the final number. A diverged net is tested too:
    # what it predicts (typically one class: chance level) is the honest outcome of that arm.
    test_loss, test_accuracy = _evaluate(model, data, "test", soft_labels)
    final.update(test_loss=_finite_or_nan(test_loss), test_accuracy=_finite_or_nan(test_accuracy))
    if "train_eval_accuracy" in final:  # the generalisation gap against the test set (D1, D4)
        final["test_gap"] = final["train_eval_accuracy"] - final["test_accuracy"]
    # how far the dev (validation) number is from the test number: small when both share a distribution (D2)
    final["dev_test_gap"] = abs(final.get("val_accuracy", float("nan")) - final["test_accuracy"])
    steps_per_epoch = math.ceil(n / config["batch_size"])
    return {
        "status": status,
        "message": (f"non-finite loss in epoch {guard.diverged_at}" if status == DIVERGED else
                    f"stopped after {time_limit:g} s (--trial-timeout), in epoch {len(history) - 1}" if status == TIMEOUT
                    else ""),
        "history": history,
        "final": final,
        "layers": [row for callback in probe_callbacks for row in getattr(callback, "layer_rows", [])],
        "timing": {"train_seconds": train_seconds, "wall_seconds": time.perf_counter() - started,
                   "step_seconds": timer.seconds_per_step(steps_per_epoch), "steps_per_epoch": steps_per_epoch,
                   "parameters": int(model.count_params())},
    }


def _history_rows(history: dict, probe_callbacks: list) -> list[dict]:
    """One row per epoch (0 = before training) with training metrics and probe columns."""
    names = HISTORY_COLUMNS
    epochs = len(history.get("loss", []))
    rows = [{"epoch": epoch} for epoch in range(epochs + 1)]
    for key, column in names.items():
        for epoch, value in enumerate(history.get(key, []), start=1):
            rows[epoch][column] = float(value)
    for callback in probe_callbacks:
        for epoch, columns in getattr(callback, "epoch_columns", {}).items():
            if epoch < len(rows):
                rows[epoch].update(columns)
    return [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
            for row in rows]

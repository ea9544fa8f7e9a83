"""standard: the standard training procedure (an arm that names no `procedure`).

Builds the study's model family from the arm's model settings, trains it on the first
`train_examples` training images through the one fit loop (suite.core.fit), runs the study's
probes every epoch, and touches the test set once (a net scored on several dev sets, a question of
model selection, has each epoch's checkpoint tested too: `CheckpointScores`). Trials that differ only in initial values
or learning rate reuse one compiled model (tracing took half of a small trial's time).
Must not: read study files, judge claims or draw figures.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from suite.core import registry, step_curve
from suite.core.backend import import_keras
from suite.core.datasets import Dataset, epoch_order
from suite.core.fit import (
    EVAL_BATCH,
    HISTORY_COLUMNS,
    OK,
    TrialContext,
    compile_model,
    finite_or_nan,
    finite_or_none,
    fit,
    outcome,
)
from suite.core.keys import canonical_json
from suite.core.probe import build_probes
from suite.techniques.architectures.families import build_model
from suite.techniques.optimizers.optimizers import OPTIMIZER_SETTINGS
from suite.techniques.optimizers.schedules import learning_rate_for, schedule_name

keras = import_keras()

PROBE_EXAMPLES = 512  # fixed validation images every probe looks at
# Trials that differ only in these settings share one compiled model: tracing the
# train/test functions took half of a small trial's time (measured: ~1.1 of 2.3 s).
VALUE_ONLY_KEYS = ("kernel_initializer", "learning_rate", "epochs", "train_examples")
MAX_COMPILED = 8
_COMPILED: dict[str, keras.Model] = {}
_EVAL_SETS: dict[tuple, object] = {}


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
    # a schedule's step table is traced into the compiled function: only a constant rate is a value
    value_only = VALUE_ONLY_KEYS if schedule_name(config) == "constant" else ("kernel_initializer",)
    signature = canonical_json({k: v for k, v in config.items() if k not in value_only})
    model = _COMPILED.get(signature)
    if model is not None and [v.shape for v in model.variables] == [v.shape for v in fresh.variables]:
        for target, source in zip(model.variables, fresh.variables):
            target.assign(source)
        for variable in model.optimizer.variables:
            variable.assign(keras.ops.zeros(variable.shape, dtype=variable.dtype))
        if schedule_name(config) == "constant":
            model.optimizer.learning_rate = config["learning_rate"]
        return model
    if uses_soft_labels(config):
        loss, accuracy = "categorical_crossentropy", keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss, accuracy = "sparse_categorical_crossentropy", "accuracy"
    total_steps = math.ceil(config["train_examples"] / config["batch_size"]) * config["epochs"]
    compile_model(fresh, config, loss, [accuracy], learning_rate=learning_rate_for(config, total_steps))
    if len(_COMPILED) >= MAX_COMPILED:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[signature] = fresh
    return fresh


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


class StepCurveRecorder(keras.callbacks.Callback):
    """The trial's step curve (suite.core.step_curve) from Keras' logs after each call of
    `steps_per_execution` steps: running means over the epoch so far."""

    def __init__(self, train_examples: int, batch_size: int):
        super().__init__()
        self.n, self.batch_size = train_examples, batch_size
        self.epochs: list[list[tuple]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        # batch: the call's last step from 0, as Keras numbers it: a full call's, even for the epoch's shorter last
        steps = min(batch + 1, math.ceil(self.n / self.batch_size))
        self.epochs[-1].append((steps, min(steps * self.batch_size, self.n), float(logs.get("accuracy", math.nan)),
                                float(logs.get("loss", math.nan))))

    def curve(self) -> dict:
        return step_curve.from_running_means(self.epochs)



class OrderedBatches(keras.utils.PyDataset):
    """The training images in the explicit order `epoch_order(seed, epoch, n)` of each epoch,
    the one a packed member visits too (suite.techniques.standard.packed), so a trial gives the
    same numbers trained alone or packed. `EpochOrder` sets the epoch before Keras reads a batch."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        self.order = epoch_order(self.seed, epoch, len(self.x))

    def release(self) -> None:
        """Drop the images after training. Keras' data adapter for this dataset stays referenced
        after `fit` returns, and `x` is a view that keeps the seed's whole training pool alive:
        measured 165 MiB per trial, 11 GiB per worker over the init study at quick with --no-pack,
        until the run stalled for memory."""
        self.x = self.y = self.order = None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.x[chosen], self.y[chosen]


class EpochOrder(keras.callbacks.Callback):
    def __init__(self, batches: OrderedBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch + 1)


def training_input(config: dict, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> tuple[dict, list]:
    """What `fit` trains on, and the callbacks that feed it: the images in each epoch's explicit
    order, or with an `augmentation` a shuffled tf.data pipeline that augments each training
    batch (validation and test never are)."""
    if not uses_soft_labels(config):
        batches = OrderedBatches(x, y, config["batch_size"], seed)
        return {"x": batches, "shuffle": False}, [EpochOrder(batches)]  # Keras would shuffle the batches
    import tensorflow as tf

    augment = registry.get("augmentation", config["augmentation"])(config, num_classes, seed)
    pipeline = (tf.data.Dataset.from_tensor_slices((x, one_hot(y, num_classes)))
                .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
                .batch(config["batch_size"])
                # sequential: the augmentations draw from one seeded stream in batch order, so a
                # seed gives the same images every run (a parallel map reorders the draws)
                .map(augment)
                .prefetch(tf.data.AUTOTUNE))
    return {"x": pipeline, "shuffle": False}, []  # shuffled above; Keras warns when asked to shuffle a dataset


# version 2: each epoch visits the training images in the explicit order `epoch_order` (was Keras' shuffle)
@registry.register("procedure", settings=(*OPTIMIZER_SETTINGS, "augmentation"), model_family=True, probes=True,
                   version=2)
def standard(config: dict, seed: int, data: Dataset, context: TrialContext) -> dict:
    """Train the study's model family on the first `train_examples` images; probe; test once."""
    keras.utils.set_random_seed(seed)
    n = config["train_examples"]
    x, y = data.x_train[:n], data.y_train[:n]
    model = build_compiled_model(config, data)
    soft_labels = uses_soft_labels(config)
    probe_x, probe_y = data.x_val[:PROBE_EXAMPLES], data.y_val[:PROBE_EXAMPLES]
    probe_callbacks = build_probes(context.probes, probe_x, probe_y, config, training_sample=lambda: (x, y))
    timer, steps = StepTimer(), StepCurveRecorder(n, config["batch_size"])
    # a net scored on several dev sets is a question of model selection: each epoch's checkpoint is scored too
    checkpoints = [CheckpointScores(data, soft_labels)] if data.val_views else []
    inputs, feeders = training_input(config, x, y, data.num_classes, seed)
    result = fit(model, context, epochs=config["epochs"], callbacks=[*feeders, timer, steps, *probe_callbacks,
                                                                     *checkpoints], **inputs,
                 validation_data=eval_data(data, "val", soft_labels), validation_batch_size=EVAL_BATCH)
    if isinstance(inputs["x"], OrderedBatches):
        inputs["x"].release()

    history = _history_rows(result.history, [*probe_callbacks, *checkpoints])
    final = {key: finite_or_nan(history[-1].get(key, float("nan"))) for key in history[-1] if key != "epoch"}
    # The test set is touched once, for the final number (each checkpoint too where several dev sets
    # choose among them: CheckpointScores). A diverged net is tested too:
    # what it predicts (typically one class: chance level) is the honest outcome of that arm.
    last = checkpoints[0].at_end(config["epochs"]) if checkpoints and result.status == OK else None
    test_loss, test_accuracy = (last["test_loss"], last["test_accuracy"]) if last else _evaluate(model, data, "test",
                                                                                              soft_labels)
    final.update(test_loss=finite_or_nan(test_loss), test_accuracy=finite_or_nan(test_accuracy))
    if "train_eval_accuracy" in final:  # the generalisation gap against the test set (D1, D4)
        final["test_gap"] = final["train_eval_accuracy"] - final["test_accuracy"]
    # how far the dev (validation) number is from the test number: small when both share a distribution (D2)
    final["dev_test_gap"] = abs(final.get("val_accuracy", float("nan")) - final["test_accuracy"])
    steps_per_epoch = math.ceil(n / config["batch_size"])
    done = outcome(context, result.status, history, final, result.message,
                   layers=[row for callback in probe_callbacks for row in callback.layer_rows],
                   train_seconds=result.seconds, step_seconds=timer.seconds_per_step(steps_per_epoch),
                   steps_per_epoch=steps_per_epoch, parameters=int(model.count_params()),
                   step_curve=steps.curve())
    if data.val_views:  # one training run scored on each dev set (suite.core.plan.Trial.view)
        done["evaluations"] = _score_views(model, data, soft_labels, final, checkpoints[0].view_epochs,
                                           scored_at_end=last is not None)
    return done


def _score_views(model, data: Dataset, soft_labels: bool, final: dict, view_epochs: dict,
                 scored_at_end: bool = False) -> dict:
    """{setting: {"history": the level the history's validation columns score, "levels": {level:
    {val_loss, val_accuracy, dev_test_gap}}, "epochs": {level: [{epoch, val_loss, val_accuracy}]}}}
    for each of the data's validation views. The view that is `x_val` itself was scored by the
    training loop: `final` and the history hold its numbers. With `scored_at_end`, the last epoch's
    scores in `view_epochs` are those of the final weights (CheckpointScores.at_end) and are reused."""
    scored = {}
    for setting, level, x_val in data.val_views:
        entry = scored.setdefault(setting, {"history": level, "levels": {}, "epochs": {}})  # the first view is `x_val`
        if x_val is data.x_val:
            entry["levels"][level] = {key: final.get(key, float("nan")) for key in ("val_loss", "val_accuracy",
                                                                                    "dev_test_gap")}
            continue
        epochs = view_epochs.get((setting, level), [])
        if scored_at_end and epochs:
            loss, accuracy = epochs[-1]["val_loss"], epochs[-1]["val_accuracy"]
        else:
            loss, accuracy = _evaluate(model, _view(data, setting, level, x_val), "val", soft_labels)
        entry["levels"][level] = {"val_loss": finite_or_nan(loss), "val_accuracy": finite_or_nan(accuracy),
                                  "dev_test_gap": abs(finite_or_nan(accuracy) - final["test_accuracy"])}
        entry["epochs"][level] = epochs
    return scored


def _view(data: Dataset, setting: str, level, x_val: np.ndarray) -> Dataset:
    """The data with one of its dev sets as `x_val`, under its own evaluation cache."""
    return dataclasses.replace(data, x_val=x_val, fingerprint=f"{data.fingerprint}|{setting}={level}")


class CheckpointScores(keras.callbacks.Callback):
    """Each epoch's net scored on the test set (history columns `test_loss`, `test_accuracy`) and on
    the dev sets the training loop does not score (`view_epochs`). A claim that picks a checkpoint on
    a dev set (`selection: per_seed_checkpoint`) reads the test score of the checkpoint it picked: the
    same number as testing that checkpoint once, without keeping every epoch's weights. Nothing is
    chosen on the test scores."""

    def __init__(self, data: Dataset, soft_labels: bool):
        super().__init__()
        self.data, self.soft_labels = data, soft_labels
        self.epoch_columns: dict[int, dict] = {}  # epoch -> {test_loss, test_accuracy}
        self.view_epochs: dict[tuple, list] = {}  # (setting, level) -> [{epoch, val_loss, val_accuracy}]

    def on_epoch_end(self, epoch, logs=None):
        loss, accuracy = _evaluate(self.model, self.data, "test", self.soft_labels)
        self.epoch_columns[epoch + 1] = {"test_loss": finite_or_nan(loss), "test_accuracy": finite_or_nan(accuracy)}
        for setting, level, x_val in self.data.val_views:
            if x_val is not self.data.x_val:
                loss, accuracy = _evaluate(self.model, _view(self.data, setting, level, x_val), "val", self.soft_labels)
                self.view_epochs.setdefault((setting, level), []).append(
                    {"epoch": epoch + 1, "val_loss": finite_or_nan(loss), "val_accuracy": finite_or_nan(accuracy)})

    def at_end(self, epochs: int) -> dict | None:
        """The test scores of the last epoch, if it is the `epochs`-th: a run that completed them all
        ends on that epoch's weights, so testing the net again would give the same numbers."""
        return self.epoch_columns.get(epochs) if max(self.epoch_columns, default=0) == epochs else None


def _history_rows(history: dict, probe_callbacks: list) -> list[dict]:
    """One row per epoch (0 = before training) with training metrics and probe columns."""
    epochs = len(history.get("loss", []))
    rows = [{"epoch": epoch} for epoch in range(epochs + 1)]
    for key, column in HISTORY_COLUMNS.items():
        for epoch, value in enumerate(history.get(key, []), start=1):
            rows[epoch][column] = float(value)
    for callback in probe_callbacks:
        for epoch, columns in callback.epoch_columns.items():
            if epoch < len(rows):
                rows[epoch].update(columns)
    return [{k: finite_or_none(v) for k, v in row.items()} for row in rows]

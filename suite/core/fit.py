"""fit: the one training loop every procedure goes through.

`compile_model` (the optimizer named by the study, one `steps_per_execution`), and `fit`
(divergence guard, the `--trial-timeout` deadline, epoch progress, history rows, status).
A procedure receives a `TrialContext` from the runner and passes it to every `fit`, so a
multi-phase procedure gets the same timeout and progress as standard training. A NaN/inf loss
ends training as `diverged` with its history kept, not as a crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from suite.core import registry, step_curve
from suite.core.backend import import_keras
from suite.core.device import jit_compile

keras = import_keras()

OK, DIVERGED, ERROR, TIMEOUT = "ok", "diverged", "error", "timeout"
STATUSES = (OK, DIVERGED, ERROR, TIMEOUT)
# Keras' history keys -> the suite's per-epoch column names
HISTORY_COLUMNS = {"loss": "train_loss", "accuracy": "train_accuracy", "val_loss": "val_loss", "val_accuracy": "val_accuracy"}
# Fewer Python round-trips per epoch: 5 epochs of the init MLP 1.38 s -> 1.0 s at 64 steps per call
# (16 vs 79 s per 64 trials). A call's logs are also the points of the trial's step curve, so one
# call runs a curve window's steps.
STEPS_PER_EXECUTION = step_curve.STEP_WINDOW
EVAL_BATCH = 1024


@dataclass
class TrialContext:
    """What the runner hands a procedure besides config, seed and data."""

    artifacts: object = None  # suite.core.artifacts.ArtifactStore: models shared between trials
    probes: tuple = ()  # probe names the study asks for
    on_epoch: Callable[[int, int], None] | None = None  # progress: (epochs done, epochs planned)
    time_limit: float | None = None  # seconds for the whole trial (--trial-timeout)
    planned_epochs: int = 0  # for progress; a multi-phase procedure sets the sum of its phases
    started: float = field(default_factory=time.perf_counter)
    epochs_done: int = 0
    sgd_steps: int = 0  # optimizer steps over all of the trial's fits: the budget it actually trained


class TrialStopped(Exception):
    """Raised by a multi-phase procedure when a phase diverged or ran out of time; the runner
    stores the status with the history so far."""

    def __init__(self, status: str, message: str, history: list[dict]):
        super().__init__(message)
        self.status, self.message, self.history = status, message, history


def build_optimizer(config: dict, learning_rate=None) -> keras.optimizers.Optimizer:
    """The optimizer named by `config["optimizer"]` (kind "optimizer"), at `learning_rate`
    (a number or a schedule; default: the config's)."""
    rate = config["learning_rate"] if learning_rate is None else learning_rate
    return registry.get("optimizer", config["optimizer"])(config, rate)


def compile_model(model: keras.Model, config: dict, loss, metrics=(), learning_rate=None,
                  weighted_metrics=()) -> None:
    """`weighted_metrics` count each image by its sample weight (an image of weight 0 not at all)."""
    model.compile(optimizer=build_optimizer(config, learning_rate), loss=loss, metrics=list(metrics),
                  weighted_metrics=list(weighted_metrics), steps_per_execution=STEPS_PER_EXECUTION,
                  jit_compile=jit_compile())


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
    """Stops training once the trial's time is up (status `timeout`, history kept); executors
    that can kill a worker also end a trial hung outside `fit`."""

    def __init__(self, context: TrialContext):
        super().__init__()
        self.context, self.hit = context, False

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.context.started > self.context.time_limit:
            self.hit = True
            self.model.stop_training = True


class EpochReporter(keras.callbacks.Callback):
    """Reports progress after every epoch, counted over all of a trial's fits."""

    def __init__(self, context: TrialContext):
        super().__init__()
        self.context = context

    def on_epoch_end(self, epoch, logs=None):
        self.context.epochs_done += 1
        planned = max(self.context.planned_epochs, self.context.epochs_done)
        self.context.on_epoch(self.context.epochs_done, planned)


@dataclass
class FitResult:
    history: dict  # Keras' history: metric -> per-epoch values
    status: str
    message: str
    seconds: float

    def rows(self, columns: dict = HISTORY_COLUMNS, first_epoch: int = 1) -> list[dict]:
        """One row per trained epoch, Keras' names mapped to the suite's columns."""
        epochs = len(self.history.get("loss", []))
        return [{"epoch": first_epoch + e, **{columns[k]: float(v[e]) for k, v in self.history.items() if k in columns}}
                for e in range(epochs)]


def fit(model: keras.Model, context: TrialContext, *, epochs: int, callbacks=(), **fit_args) -> FitResult:
    """`model.fit` with the divergence guard, the deadline and progress; never prints."""
    guard = DivergenceGuard()
    deadline = Deadline(context) if context.time_limit else None
    extra = [EpochReporter(context)] if context.on_epoch is not None else []
    if not context.planned_epochs:
        context.planned_epochs = epochs
    started = time.perf_counter()
    steps_before = _optimizer_steps(model)  # a reused compiled model's optimizer may have counted already
    history = model.fit(epochs=epochs, callbacks=[guard, *([deadline] if deadline else []), *callbacks, *extra],
                        verbose=0, **fit_args).history
    seconds = time.perf_counter() - started
    context.sgd_steps += _optimizer_steps(model) - steps_before
    if guard.diverged_at is not None:
        return FitResult(history, DIVERGED, f"non-finite loss in epoch {guard.diverged_at}", seconds)
    if deadline is not None and deadline.hit:
        done = len(history.get("loss", []))
        return FitResult(history, TIMEOUT, f"stopped after {context.time_limit:g} s (--trial-timeout), in epoch {done}",
                         seconds)
    return FitResult(history, OK, "", seconds)


def _optimizer_steps(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def finite_or_nan(value) -> float:
    """A final metric as a float: None and non-finite numbers become NaN."""
    value = float("nan") if value is None else float(value)
    return value if math.isfinite(value) else float("nan")


def finite_or_none(value):
    """JSON has no NaN: a non-finite number is stored as null."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def outcome(context: TrialContext, status: str, history: list[dict], final: dict, message: str = "",
            layers: list | None = None, step_curve: dict | None = None, **timing) -> dict:
    """A procedure's result: {status, message, history, final, layers, step_curve, timing}; the
    last history row's metrics are the final ones unless `final` says otherwise."""
    last = {k: v for k, v in (history[-1] if history else {}).items() if k != "epoch"}
    return {"status": status, "message": message, "history": history, "layers": layers or [],
            **({"step_curve": step_curve} if step_curve else {}), "final": {**last, **final},
            "timing": {"wall_seconds": time.perf_counter() - context.started, "sgd_steps": context.sgd_steps, **timing}}

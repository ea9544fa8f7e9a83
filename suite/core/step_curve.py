"""step_curve: a trial's training accuracy and loss over windows of a few SGD steps.

Speed claims (A4: "ReLU reaches 25% training error 6x sooner than tanh") are about a ratio of
steps; at epoch resolution two arms that reach a target within the same epoch tie, whatever
their speeds. Each trial therefore records, beside its per-epoch history, its training accuracy
and loss over windows of STEP_WINDOW steps, from the batches it trained on: each epoch is cut
into windows from its first step (its last window may be shorter), the cut Keras makes when it
runs `steps_per_execution` = STEP_WINDOW steps per call, whose per-call logs the standard
procedure reads. Packed members cut their per-step counts the same way, here, so a trial has the
same curve either way. `steps_to_target` reads the first window that reaches a level.
"""

from __future__ import annotations

import math

import numpy as np

STEP_WINDOW = 16  # SGD steps per point of the curve: the resolution of `steps_to_target`


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def windowed(epochs: list[tuple]) -> dict:
    """The curve from per-step arrays, one (correct, images, loss_sums) triple per epoch:
    correct predictions, images and summed batch loss of each step."""
    ends, accuracy, loss, done = [], [], [], 0
    for correct, images, loss_sums in epochs:
        correct, images, loss_sums = (np.asarray(a, "float64") for a in (correct, images, loss_sums))
        for start in range(0, len(images), STEP_WINDOW):
            part = slice(start, start + STEP_WINDOW)
            seen = images[part].sum()
            ends.append(done + min(start + STEP_WINDOW, len(images)))
            accuracy.append(_finite_or_none(correct[part].sum() / seen))
            loss.append(_finite_or_none(loss_sums[part].sum() / seen))
        done += len(images)
    return {"window": STEP_WINDOW, "ends": ends, "train_accuracy": accuracy, "train_loss": loss}


def from_running_means(epochs: list[list[tuple]]) -> dict:
    """The curve from Keras' logs after each call of at most STEP_WINDOW steps: per epoch a list
    of (steps so far, images so far, running mean accuracy, running mean loss), the means over the
    epoch so far weighted by images, so each window's own sums are differences of running sums."""
    ends, accuracy, loss, done = [], [], [], 0
    for calls in epochs:
        steps_before, seen_before, correct_before, loss_before = 0, 0, 0.0, 0.0
        for steps, seen, accuracy_mean, loss_mean in calls:
            if steps - steps_before > STEP_WINDOW:
                raise ValueError(f"a Keras call ran {steps - steps_before} steps, more than a window: compile with "
                                 f"steps_per_execution = {STEP_WINDOW} (suite.core.fit.STEPS_PER_EXECUTION)")
            # the running count of correct images is a whole number, up to float32 rounding of the mean
            correct = round(accuracy_mean * seen) if math.isfinite(accuracy_mean) else math.nan
            images = seen - seen_before
            ends.append(done + steps)
            accuracy.append(_finite_or_none((correct - correct_before) / images))
            loss.append(_finite_or_none((loss_mean * seen - loss_before) / images))
            steps_before, seen_before, correct_before, loss_before = steps, seen, correct, loss_mean * seen
        done += steps_before
    return {"window": STEP_WINDOW, "ends": ends, "train_accuracy": accuracy, "train_loss": loss}


def steps_to_target(curve: dict | None, target: dict) -> float:
    """SGD steps until the end of the first window whose `target["metric"]` (train_accuracy or
    train_loss) reaches `target["value"]` (at or below it for the loss). Never reached: the trained
    steps + one window, a censored value that understates the true time, so a speed claim judged
    on it errs towards caution. No curve (a trial stored before curves were recorded): NaN."""
    if not curve or not curve.get("ends"):
        return math.nan
    value, lower = target["value"], target["metric"].endswith("loss")
    for end, level in zip(curve["ends"], curve[target["metric"]]):
        if level is None:
            break  # diverged: nothing after this window counts
        if (level <= value) if lower else (level >= value):
            return float(end)
    return float(curve["ends"][-1] + curve["window"])

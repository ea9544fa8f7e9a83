"""The step curve: windows cut as Keras' calls cut them, recovered from running means, and
steps_to_target read from it (A4's ratio of steps)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.core import analysis, frames
from suite.core.loader import Claim, Profile, Study
from suite.core.step_curve import STEP_WINDOW, from_running_means, steps_to_target, windowed


def _epoch(steps: int, batch: int, n: int, rng) -> tuple:
    images = np.array([min(batch, n - i * batch) for i in range(steps)], float)
    correct = np.floor(rng.uniform(0, 1, steps) * images)
    loss_sums = rng.uniform(0.1, 2.0, steps) * images
    return correct, images, loss_sums


def test_windows_restart_each_epoch_and_count_steps_across_epochs():
    rng = np.random.default_rng(0)
    epochs = [_epoch(STEP_WINDOW + 3, 8, 8 * STEP_WINDOW + 20, rng) for _ in range(2)]
    curve = windowed(epochs)
    assert curve["ends"] == [STEP_WINDOW, STEP_WINDOW + 3, 2 * STEP_WINDOW + 3, 2 * STEP_WINDOW + 6]
    correct, images, _ = epochs[1]
    assert curve["train_accuracy"][3] == pytest.approx(correct[STEP_WINDOW:].sum() / images[STEP_WINDOW:].sum())


def test_keras_running_means_give_the_same_curve_as_the_steps():
    """What the standard procedure reads (running means after each call of STEP_WINDOW steps)
    against what a packed member counts (every step): one curve."""
    rng = np.random.default_rng(1)
    batch, n = 32, 32 * 2 * STEP_WINDOW + 7  # two full calls and a call of one partial batch
    epochs = [_epoch(math.ceil(n / batch), batch, n, rng) for _ in range(3)]
    logged = []
    for correct, images, loss_sums in epochs:
        calls = []
        for end in [*range(STEP_WINDOW, len(images), STEP_WINDOW), len(images)]:
            seen = images[:end].sum()
            calls.append((end, seen, np.float32(correct[:end].sum() / seen), np.float32(loss_sums[:end].sum() / seen)))
        logged.append(calls)
    from_logs, from_steps = from_running_means(logged), windowed(epochs)
    assert from_logs["ends"] == from_steps["ends"]
    assert from_logs["train_accuracy"] == pytest.approx(from_steps["train_accuracy"], abs=1e-12)  # counts recovered
    # a loss is a difference of float32 running means: a short window (7 images of an epoch's 1031) amplifies
    # their rounding
    assert from_logs["train_loss"] == pytest.approx(from_steps["train_loss"], rel=1e-4)


def test_a_call_longer_than_a_window_is_refused():
    with pytest.raises(ValueError, match="steps_per_execution"):
        from_running_means([[(STEP_WINDOW * 2, 100, 0.5, 1.0)]])


def test_steps_to_target_reads_the_first_window_that_reaches_the_level():
    curve = {"window": 16, "ends": [16, 32, 40, 56], "train_accuracy": [0.3, 0.8, 0.7, 0.9],
             "train_loss": [2.0, 0.9, 0.5, 0.4]}
    assert steps_to_target(curve, {"metric": "train_accuracy", "value": 0.75}) == 32
    assert steps_to_target(curve, {"metric": "train_loss", "value": 0.5}) == 40  # a loss is reached from above
    assert steps_to_target(curve, {"metric": "train_accuracy", "value": 0.95}) == 56 + 16  # censored
    diverged = {**curve, "train_loss": [2.0, None, None, None]}
    assert steps_to_target(diverged, {"metric": "train_loss", "value": 0.1}) == 56 + 16
    assert math.isnan(steps_to_target(None, {"metric": "train_loss", "value": 0.1}))  # stored before curves


def test_a_ratio_claim_on_steps_to_target_can_fail():
    """A4's form: "a reaches the target 6x sooner than b" on the trials' step curves."""
    claim = Claim(id="C", text="a 6x sooner", metric="steps_to_target", better={"init": "a"}, worse={"init": "b"},
                  direction="lower", target={"metric": "train_accuracy", "value": 0.75}, ratio=6, margin=1.5,
                  test="noninferior")
    study = Study(name="s", title="t", question="q", dataset="synthetic", model={"family": "mlp"},
                  factors={"init": ["a", "b"]}, training={"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 8},
                  probes=(), profiles={"smoke": Profile("smoke", 1, 1, 1)}, claims=(claim,))

    def judged(a_end: int, b_end: int) -> str:
        records = []
        for arm, end in (("a", a_end), ("b", b_end)):
            for seed in range(5):
                ends = list(range(16, 401, 16))
                accuracy = [0.9 if e >= end + 16 * (seed % 2) else 0.5 for e in ends]
                records.append({"key": f"{arm}{seed}", "arm": {"init": arm}, "seed": seed, "status": "ok",
                                "final": {"test_accuracy": 0.8}, "history": [{"epoch": 1}],
                                "step_curve": {"window": 16, "ends": ends, "train_accuracy": accuracy,
                                               "train_loss": [1.0] * len(ends)}})
        trials = frames.mark_selected(frames.trials_frame(records, study), study)
        return analysis.judge_claim(claim, trials, frames.epochs_frame(records, study)).verdict

    assert judged(32, 224) == analysis.SUPPORTED  # about 7x sooner every seed
    assert judged(32, 48) == analysis.CONTRADICTED  # about 1.4x: far from 6x
    # its effect is a log ratio, so the margin it is judged (and drawn) against is log(1.5), not 1.5
    assert analysis.judged_margin(claim) == pytest.approx(math.log(1.5))
    assert analysis.judged_margin(Claim(id="D", text="d", metric="test_accuracy", better={"init": "a"},
                                        worse={"init": "b"}, margin=0.02)) == 0.02

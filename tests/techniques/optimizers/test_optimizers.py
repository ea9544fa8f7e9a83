"""Guards for the optimizer study (D3): its arms, steps per epoch in every record, and the report's
learning-rate-vs-optimizer numbers and steps to target checked against hand computations."""

import base64
import io
import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from suite.core import loader, step_curve
from suite.core.fit import build_optimizer
from suite.core.frames import mark_selected
from suite.core.runner import run_trial
from suite.techniques.optimizers import sections as optimizer_sections

OPTIMIZERS = ("sgd", "adam")
RATES = (0.1, 0.01, 0.001)
# mean validation accuracy per (optimizer, rate); None = the trial diverged (tuning counts it 0)
VAL = {("sgd", 0.1): 0.80, ("sgd", 0.01): 0.70, ("sgd", 0.001): 0.40,
       ("adam", 0.1): None, ("adam", 0.01): 0.85, ("adam", 0.001): 0.83}
LOSSES = {"sgd": [1.0, 0.6, 0.35], "adam": [0.5, 0.3, 0.2]}  # training loss per epoch at any rate
STEPS_PER_EPOCH = 79
# per-step training loss: high until this step (numbered from 1 across epochs), low from it on
DROPS = {"sgd": (150, 1.0, 0.35), "adam": (40, 0.5, 0.3)}


def _step_curve(optimizer: str) -> dict:
    drop, high, low = DROPS[optimizer]
    steps = np.arange(1, 3 * STEPS_PER_EPOCH + 1)
    loss = np.where(steps < drop, high, low)
    epochs = [(np.zeros(STEPS_PER_EPOCH), np.full(STEPS_PER_EPOCH, 128.0), 128.0 * loss[e * STEPS_PER_EPOCH:][:STEPS_PER_EPOCH])
              for e in range(3)]
    return step_curve.windowed(epochs)


@pytest.fixture(scope="module")
def study():
    return loader.load_study(REPO / "studies" / "optimizer.yaml")


@pytest.fixture
def frames(study):
    trials, epochs = [], []
    for (optimizer, rate), seed in itertools.product(VAL, (0, 1)):
        key = f"{optimizer}-{rate}-{seed}"
        value = VAL[(optimizer, rate)]
        val = None if value is None else value + (0.01 if seed else -0.01)  # seeds scatter around the mean
        ident = {"key": key, "arm": optimizer, "optimizer": optimizer, "tuned_learning_rate": rate, "seed": seed}
        trials.append({**ident, "status": "ok" if val is not None else "diverged", "val_accuracy": val,
                       "test_accuracy": 0.5 + seed * 0.1, "train_loss": LOSSES[optimizer][-1],
                       "steps_per_epoch": STEPS_PER_EPOCH, "step_curve": _step_curve(optimizer)})
        epochs += [{**ident, "epoch": e + 1, "train_loss": loss, "val_accuracy": val}
                   for e, loss in enumerate(LOSSES[optimizer])]
    trials = mark_selected(pd.DataFrame(trials).astype({"val_accuracy": float}), study)
    return trials, pd.DataFrame(epochs).astype({"val_accuracy": float})


def test_study_tunes_one_shared_rate_grid_for_six_optimizers(study):
    assert study.factors["optimizer"] == ["sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"]
    assert list(study.tuned) == ["learning_rate"] and len(study.tuned["learning_rate"]) >= 5
    assert float(build_optimizer({"optimizer": "momentum", "learning_rate": 0.1}).momentum) == pytest.approx(0.9)
    assert float(build_optimizer({"optimizer": "sgd", "learning_rate": 0.1}).momentum) == 0.0


def test_every_trial_records_its_steps_per_epoch(synthetic_data):
    config = {"family": "mlp", "depth": 1, "width": 8, "optimizer": "sgd", "learning_rate": 0.1, "batch_size": 32,
              "train_examples": 100, "epochs": 1}
    assert run_trial(config, 0, (), synthetic_data)["timing"]["steps_per_epoch"] == 4  # ceil(100 / 32)


def test_sensitivity_numbers_equal_a_hand_computation(frames):
    table, summary = optimizer_sections.sensitivity_table(frames[0])
    rows = table.set_index("optimizer")
    assert rows.loc["sgd", "tuned learning rate"] == "0.1" and rows.loc["adam", "tuned learning rate"] == "0.01"
    assert rows.loc["sgd", "range over the grid"] == pytest.approx(0.40)
    assert rows.loc["adam", "worst val acc on the grid"] == 0.0  # diverged at 0.1: counts 0, as in the tuning
    assert rows.loc["sgd", "cost of one grid step off"] == pytest.approx(0.80 - 0.70)  # one neighbour only
    assert rows.loc["adam", "cost of one grid step off"] == pytest.approx(0.85 - (0.83 + 0.0) / 2)
    assert summary["optimizer_range"] == pytest.approx(0.05) and summary["best_optimizer"] == "adam"
    cells = np.array([[0.80, 0.70, 0.40], [0.0, 0.85, 0.83]])
    within = ((cells - cells.mean(axis=1, keepdims=True)) ** 2).sum()
    between = 3 * ((cells.mean(axis=1) - cells.mean()) ** 2).sum()
    assert summary["lr_share"] == pytest.approx(within / (within + between))


def test_steps_to_target_counts_mini_batches_at_the_tuned_rate(frames, study):
    trials, epochs = frames
    [entry] = optimizer_sections.steps_to_target(trials, epochs, study)
    csv = base64.b64decode(str(entry["csv"]).split("base64,")[1].split('"')[0])
    rows = pd.read_csv(io.BytesIO(csv)).set_index("optimizer")
    # a window's training loss <= 0.4 (the study's target) first in the window that ends at step 174 for sgd
    # (epoch 3's first; epoch 2's last, steps 144-158, still averages 0.61) and at step 48 for adam (7 steps at
    # 0.5 and 9 at 0.3: 0.39)
    assert step_curve.STEP_WINDOW == 16
    assert rows.loc["sgd", "mean steps (reached only)"] == pytest.approx(174)
    assert rows.loc["adam", "mean steps (reached only)"] == pytest.approx(48)
    assert rows.loc["adam", "tuned learning rate"] == pytest.approx(0.01)


def test_sections_draw_for_the_optimizer_study_and_skip_others(frames, study, studies_dir):
    trials, epochs = frames
    entries = (optimizer_sections.learning_rate_vs_optimizer(trials, epochs, study)
               + optimizer_sections.loss_by_steps(trials, epochs, study))
    assert [bool(e.get("uri")) for e in entries] == [True, False, True]
    assert "5.0 accuracy points (sgd to adam)" in entries[0]["caption"]
    other = loader.load_study(studies_dir / "tiny.yaml")
    assert optimizer_sections.learning_rate_vs_optimizer(trials, epochs, other) == []
    assert optimizer_sections.steps_to_target(trials, epochs, other) == []

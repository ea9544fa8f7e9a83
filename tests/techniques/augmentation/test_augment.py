"""augment (D1): every registered augmentation on one-channel images, training batches only,
soft labels for MixUp/CutMix, the gap metrics, and claims over a difference of differences."""

import numpy as np
import pytest
from conftest import REPO

from suite.core import analysis, frames, registry
from suite.core.datasets import seed_sample
from suite.core.fit import OK
from suite.core.loader import Claim, Profile, Study, load_study
from suite.core.runner import run_trial
from suite.techniques.standard.procedure import one_hot

MIXING = ("mixup", "cutmix")
BASE = {"family": "mlp", "depth": 1, "width": 16, "optimizer": "adam", "learning_rate": 0.01, "batch_size": 32,
        "train_examples": 96, "epochs": 2}


def _batch(n=32, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, size=(n, 28, 28, 1)).astype("float32")
    labels = one_hot(rng.integers(0, 10, n), 10)
    return images, labels


def _apply(name, images, labels, seed=1, **options):
    import tensorflow as tf

    augment = registry.get("augmentation", name)({}, 10, seed, **options)
    out_images, out_labels = augment(tf.constant(images), tf.constant(labels))
    return np.asarray(out_images), np.asarray(out_labels)


@pytest.mark.parametrize("name", registry.list_names("augmentation"))
def test_every_augmentation_keeps_grey_images_in_range(name):
    images, labels = _batch()
    out_images, out_labels = _apply(name, images, labels)
    assert out_images.shape == images.shape and out_images.dtype == np.float32
    assert np.all(np.isfinite(out_images)) and out_images.min() >= 0.0 and out_images.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(out_labels.sum(axis=1), 1.0, atol=1e-5)  # still a distribution over classes
    if name == "none":
        np.testing.assert_array_equal(out_images, images)
    else:
        assert np.mean(np.abs(out_images - images) > 1e-6) > 0.05
    if name in MIXING:  # D1: MixUp and CutMix mix the labels with the images
        assert np.any(out_labels.max(axis=1) < 0.999)
    else:
        np.testing.assert_array_equal(out_labels, labels)


def test_flips_are_horizontal_only():
    images, labels = _batch(64)
    out, _ = _apply("flip_crop", images, labels, padding=0)  # no padding: the crop is the whole image
    mirrored = [np.allclose(o, x[:, ::-1]) for o, x in zip(out, images)]
    kept = [np.allclose(o, x) for o, x in zip(out, images)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_crops_shift_by_at_most_the_padding():
    images = np.zeros((16, 28, 28, 1), "float32")
    images[:, 10:18, 10:18] = 1.0  # a bright square away from the border
    out, _ = _apply("flip_crop", images, one_hot(np.zeros(16, int), 10), padding=2)
    for image in out[..., 0]:
        rows, cols = np.nonzero(image > 0.5)
        assert image.sum() == pytest.approx(64.0)  # the square is moved, never cut or resized
        # rows/cols 10..17, shifted by up to 2 (the square is symmetric, so a mirror keeps its columns)
        assert rows.min() in range(8, 13) and cols.min() in range(8, 13)


def test_augmentation_sees_only_training_images(synthetic_data, monkeypatch):
    """The pipeline maps training batches only: every image it sees is a training image,
    each once per epoch; validation and test images never pass through it."""
    import tensorflow as tf

    seen = []

    def spy(config, num_classes, seed):
        def record(images, labels):
            seen.append(images.numpy().reshape(len(images), -1))
            return images

        def augment(images, labels):
            images = tf.py_function(record, [images, labels], tf.float32)
            return tf.ensure_shape(images, [None, 28, 28, 1]), labels

        return augment

    monkeypatch.setitem(registry._REGISTRY["augmentation"], "spy", spy)
    outcome = run_trial({**BASE, "augmentation": "spy"}, 0, ("generalization",), synthetic_data)
    assert outcome["status"] == OK
    images = np.concatenate(seen)
    drawn = seed_sample(synthetic_data, 0).x_train[:BASE["train_examples"]]  # the images seed 0 draws
    train_rows = {row.tobytes() for row in drawn.reshape(BASE["train_examples"], -1)}
    other_rows = {row.tobytes() for row in np.concatenate([synthetic_data.x_val, synthetic_data.x_test]).reshape(
        -1, images.shape[1])}
    assert len(images) == BASE["train_examples"] * BASE["epochs"]
    assert {row.tobytes() for row in images} == train_rows and not train_rows & other_rows


@pytest.mark.parametrize("name", ["none", "mixup", "randaugment"])
def test_trial_records_the_gap_against_validation_and_test(synthetic_data, name):
    outcome = run_trial({**BASE, "augmentation": name}, 0, ("generalization",), synthetic_data)
    assert outcome["status"] == OK
    final = outcome["final"]
    assert final["test_gap"] == pytest.approx(final["train_eval_accuracy"] - final["test_accuracy"])
    for row in outcome["history"][1:]:
        assert row["generalization_gap"] == pytest.approx(row["train_eval_accuracy"] - row["val_accuracy"])


def _did_records(gaps: dict) -> list[dict]:
    """gaps: (augmentation, size) -> per-seed test_gap."""
    return [{"key": f"{a}-{n}-{s}", "arm": {"augmentation": a, "train_examples": n}, "tuning": {}, "seed": s,
             "status": "ok", "final": {"test_gap": value}, "history": [{"epoch": 1}]}
            for (a, n), values in gaps.items() for s, value in enumerate(values)]


def test_a_list_of_selectors_judges_a_difference_of_differences():
    study = Study(name="s", title="t", question="q", dataset="synthetic", model={"family": "mlp"},
                  factors={"augmentation": ["none", "x"], "train_examples": [10, 40]},
                  training={"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 8}, probes=(),
                  profiles={"smoke": Profile("smoke", 1, 1, 1)}, claims=())
    gaps = {("none", 10): [0.30, 0.32, 0.31], ("x", 10): [0.10, 0.11, 0.12],  # cut by 0.20 at 10
            ("none", 40): [0.10, 0.12, 0.11], ("x", 40): [0.06, 0.07, 0.08]}  # cut by 0.04 at 40
    claim = Claim(id="C", text="cut more with less data", metric="test_gap", direction="lower",
                  better=[{"augmentation": "x", "train_examples": 10}, {"augmentation": "none", "train_examples": 40}],
                  worse=[{"augmentation": "none", "train_examples": 10}, {"augmentation": "x", "train_examples": 40}])
    records = _did_records(gaps)
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    cut_small = np.subtract(gaps[("none", 10)], gaps[("x", 10)])
    cut_large = np.subtract(gaps[("none", 40)], gaps[("x", 40)])
    assert verdict.effect == pytest.approx(np.mean(cut_small - cut_large) / 2)  # half the difference of differences
    assert verdict.verdict == analysis.SUPPORTED and verdict.n == 3
    assert frames.select_arms(trials, claim.better).sum() == 6  # two arms x three seeds


def test_augmentation_study_has_the_five_augmentations_at_two_sizes():
    study = load_study(REPO / "studies" / "augmentation.yaml")
    assert set(study.factors["augmentation"]) == set(registry.list_names("augmentation"))
    assert len(study.factors["train_examples"]) == 2
    assert any(isinstance(claim.better, list) for claim in study.claims)

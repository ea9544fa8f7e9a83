"""Source and target distributions (D2): the phone transform and the `phone_shift` view."""

import numpy as np
import pytest
import yaml

from suite.core import loader, registry
from suite.techniques.domains.domains import NOISE_SEEDS, phone_images, target_positions


def _view(data, **config):
    return registry.get("data_view", "phone_shift")(data, {"train_examples": 200, **config})


def _sharpness(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean())


def test_phone_images_are_blurred_fixed_and_in_range(synthetic_data):
    x = synthetic_data.x_test[:20]
    clean = phone_images(x, size=14, blur=1.0, noise=0.0)
    assert clean.shape == x.shape and clean.dtype == np.float32
    assert _sharpness(clean) < 0.5 * _sharpness(x)  # blur + low resolution remove fine detail
    noisy = phone_images(x, seed=3)
    assert np.array_equal(noisy, phone_images(x, seed=3)) and noisy.min() >= 0 and noisy.max() <= 1
    # the first images of a split are the same whether made alone or with the whole split
    assert np.array_equal(phone_images(synthetic_data.x_test, seed=NOISE_SEEDS["test"])[:5],
                          phone_images(synthetic_data.x_test[:5], seed=NOISE_SEEDS["test"]))


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 1.0])
def test_a_share_of_training_images_becomes_target_and_the_size_stays(synthetic_data, share):
    view = _view(synthetic_data, target_share=share)
    n = 200
    assert view.x_train.shape[0] == n and np.array_equal(view.y_train, synthetic_data.y_train[:n])
    changed = np.any(view.x_train != synthetic_data.x_train[:n], axis=(1, 2, 3))
    assert changed.sum() == round(share * n)
    assert set(np.flatnonzero(changed)) == set(target_positions(n, share))


@pytest.mark.parametrize("dev", ["source", "target"])
def test_dev_from_either_distribution_and_test_always_target(synthetic_data, dev):
    view = _view(synthetic_data, dev_distribution=dev)
    assert np.array_equal(view.x_val, synthetic_data.x_val) == (dev == "source")
    assert not np.array_equal(view.x_test, synthetic_data.x_test)
    assert np.array_equal(view.y_val, synthetic_data.y_val) and np.array_equal(view.y_test, synthetic_data.y_test)
    assert view.fingerprint != synthetic_data.fingerprint  # cached evaluation sets never mix views


def test_views_with_different_dev_sets_have_different_fingerprints(synthetic_data):
    assert _view(synthetic_data, dev_distribution="source").fingerprint != \
        _view(synthetic_data, dev_distribution="target").fingerprint


def test_a_trial_records_how_far_dev_is_from_test(synthetic_data):
    from suite.core.runner import run_trial

    config = {"family": "lenet5", "activation": "relu", "optimizer": "adam", "learning_rate": 0.003,
              "batch_size": 64, "train_examples": 256, "epochs": 1, "data_view": "phone_shift",
              "target_share": 0.5, "dev_distribution": "source"}
    final = run_trial(config, 0, (), synthetic_data)["final"]
    assert final["dev_test_gap"] == pytest.approx(abs(final["val_accuracy"] - final["test_accuracy"]))


def test_one_training_run_is_scored_on_both_dev_sets_and_each_dev_arm_sees_its_own(synthetic_data):
    from suite.core.plan import plan_trials, records_for
    from suite.core.runner import build_record, run_trial

    study = loader.load_study(loader.STUDIES_DIR / "split.yaml")
    trials = [t for t in plan_trials(study, study.profiles["quick"], "fp") if not t.half_budget]
    assert len({t.key for t in trials}) == len(trials) // 2  # source- and target-dev arms share each run
    assert all("dev_distribution" not in t.config for t in trials)
    source, target = (next(t for t in trials if t.evaluated_at == {"dev_distribution": dev} and t.seed == 0
                           and t.arm["target_share"] == 0.0 and t.tuning["learning_rate"] == 0.003)
                      for dev in ("source", "target"))
    assert source.key == target.key and source.arm["dev_distribution"] == "source"

    config = {**target.config, "family": "lenet5", "train_examples": 256, "epochs": 2, "dataset": "synthetic"}
    record = build_record(target, run_trial(config, 0, (), synthetic_data), {})
    alone = {dev: run_trial({**config, "dev_distribution": dev}, 0, (), synthetic_data)
             for dev in ("source", "target")}
    seen = {view["arm"]["dev_distribution"]: view for view in records_for([source, target], {target.key: record})}
    for dev in ("source", "target"):  # the same numbers as a run that trained with that dev set
        final = seen[dev]["final"]
        for metric in ("val_accuracy", "dev_test_gap", "test_accuracy"):
            assert final[metric] == pytest.approx(alone[dev]["final"][metric], abs=1e-6)
        # and each epoch's checkpoint scored on that dev set: what a dev set's early stopping chooses on
        per_epoch = [row["val_accuracy"] for row in seen[dev]["history"][1:]]
        assert per_epoch == pytest.approx([row["val_accuracy"] for row in alone[dev]["history"][1:]], abs=1e-6)
        assert len(per_epoch) == 2
    # every epoch's checkpoint is tested too (read only for the checkpoint a dev set chose); the last is the final net
    tested = [row["test_accuracy"] for row in record["history"][1:]]
    assert len(tested) == 2 and tested[-1] == pytest.approx(record["final"]["test_accuracy"], abs=1e-6)
    assert "test_accuracy" not in alone["source"]["history"][-1]  # a net with one dev set is tested once
    assert seen["source"]["key"] != seen["target"]["key"]  # one row per arm in the frames


@pytest.mark.parametrize("key, value, problem", [
    ("target_share", 1.5, r"training.target_share: input should be less than or equal to 1, got 1.5"),
    ("dev_distribution", "web", "training.dev_distribution: input should be 'source' or 'target', got 'web'"),
    ("data_view", "nope", "unknown data_view"),
])
def test_bad_view_settings_fail_before_training(tmp_path, tiny_study_dict, key, value, problem):
    tiny_study_dict["training"].update({"data_view": "phone_shift", key: value})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study_dict))
    with pytest.raises(loader.SpecError, match=problem):
        loader.load_study(path)


def test_view_settings_without_the_view_are_refused(tmp_path, tiny_study_dict):
    """Nothing reads `target_share` unless the arm uses the view that does: it would be silently ignored."""
    tiny_study_dict["training"]["target_share"] = 0.5
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study_dict))
    with pytest.raises(loader.SpecError, match="training.target_share: is not used by anything in arm"):
        loader.load_study(path)

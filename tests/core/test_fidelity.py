"""Arms that did not learn said as such; facts shown as numbers; the reference arm."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import write_study

from suite.core import analysis, loader


def _study(tmp_path, study_dict):
    directory = tmp_path / "studies"
    directory.mkdir(exist_ok=True)
    return loader.load_study(write_study(directory, study_dict))


def _frames(losses_he: list, losses_small: list, seeds=(0, 1, 2)):
    """Trials and epochs of two arms: per-epoch training losses given, test accuracy He > small."""
    trials, epochs = [], []
    for arm, losses, accuracy, step in (("he_normal", losses_he, 0.8, 0.01), ("normal_0.01", losses_small, 0.5, 0.02)):
        for seed in seeds:
            key = f"{arm}-{seed}"
            trials.append({"key": key, "arm": f"{arm} / relu", "kernel_initializer": arm, "activation": "relu",
                           "seed": seed, "status": "ok", "selected": True, "steps_per_epoch": 10,
                           "test_accuracy": accuracy + step * seed, "parameters": 100.0 if arm == "he_normal" else 50.0})
            epochs += [{"key": key, "epoch": e, "train_loss": loss, "seed": seed} for e, loss in enumerate(losses, start=1)]
    return pd.DataFrame(trials), pd.DataFrame(epochs)


def _learned(trials: pd.DataFrame, accuracy: dict) -> pd.DataFrame:
    """The frame with ten classes and each arm's validation accuracy (`accuracy`: arm prefix -> value)."""
    trials = trials.assign(classes=10.0)
    trials["val_accuracy"] = [accuracy[key.split("-")[0]] for key in trials["key"]]
    return trials


@pytest.mark.parametrize("needs", ["trained", "training"])
def test_an_arm_that_did_not_learn_is_named_and_the_claim_still_judged(tmp_path, tiny_study_dict, needs):
    """The net that learned nothing is the outcome of its technique (I6, B2-sigmoid): said, not hidden."""
    tiny_study_dict["claims"][0]["needs"] = needs
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([2.0, 1.0], [2.3, 2.3])
    trials = _learned(trials, {"he_normal": 0.8, "normal_0.01": 0.12})  # within 5 points of chance (0.10)
    verdict = analysis.judge_claims(study, trials, epochs)[0]
    assert verdict.verdict == analysis.SUPPORTED
    assert "normal_0.01 / relu did not learn (median validation accuracy 0.120, chance 0.10)" in verdict.reason
    assert "he_normal" not in verdict.reason
    trials = _learned(trials, {"he_normal": 0.8, "normal_0.01": 0.16})  # 6 points above chance: it learned a little
    assert "did not learn" not in analysis.judge_claims(study, trials, epochs)[0].reason


def test_a_comparison_in_which_no_arm_learned_is_not_judged(tmp_path, tiny_study_dict):
    tiny_study_dict["claims"][0]["needs"] = "trained"
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([2.3, 2.3], [2.3, 2.3])
    trials = _learned(trials, {"he_normal": 0.1, "normal_0.01": 0.1})
    verdict = analysis.judge_claims(study, trials, epochs)[0]
    assert verdict.verdict == analysis.NOT_JUDGED and verdict.holm_verdict == analysis.NOT_JUDGED
    assert verdict.reason.startswith("not judged: no compared arm learned") and verdict.effect > 0  # numbers kept
    trials.loc[trials["arm"] == "he_normal / relu", "status"] = "diverged"  # diverged or did not learn: the same
    assert "he_normal / relu diverged in all 3 runs" in analysis.judge_claims(study, trials, epochs)[0].reason


def test_a_claim_on_a_fixed_value_is_judged_when_its_arm_did_not_learn(tmp_path, tiny_study_dict):
    """"N(0, 0.01) does not let the net learn" rests on an arm that did not learn by its own statement."""
    tiny_study_dict["claims"][0].update(needs="trained", better={"kernel_initializer": "normal_0.01"}, than=0.4)
    del tiny_study_dict["claims"][0]["worse"]
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([2.3, 2.3], [2.3, 2.3])
    trials = _learned(trials, {"he_normal": 0.8, "normal_0.01": 0.1})
    verdict = analysis.judge_claims(study, trials, epochs)[0]
    assert verdict.verdict == analysis.SUPPORTED and "normal_0.01 / relu did not learn" in verdict.reason


def test_records_without_classes_skip_the_check(tmp_path, tiny_study_dict):
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([2.3, 2.3], [2.3, 2.3])
    trials["val_accuracy"] = 0.1  # stored before records named their classes
    assert "did not learn" not in analysis.judge_claims(study, trials, epochs)[0].reason
    trials["classes"] = 0.0  # a regression dataset: no classes, no chance accuracy
    assert "did not learn" not in analysis.judge_claims(study, trials, epochs)[0].reason


def test_facts_are_measured_numbers_per_arm(tmp_path, tiny_study_dict):
    tiny_study_dict["facts"] = [{"id": "F1", "text": "He has more parameters here", "metric": "parameters",
                                 "arms": [{"kernel_initializer": "he_normal"}, {"kernel_initializer": "normal_0.01"}],
                                 "why": "a count that follows from the architecture"}]
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([1.0, 0.9], [2.3, 2.3])
    values = analysis.fact_values(study.facts[0], trials, epochs)
    assert [v["mean"] for v in values] == [100.0, 50.0] and [v["n"] for v in values] == [3, 3]
    assert values[0]["arms"] == "kernel_initializer=he_normal"


def test_the_reference_arm_says_how_far_the_budget_got(tmp_path, tiny_study_dict):
    tiny_study_dict["reference"] = {"arm": {"kernel_initializer": "he_normal", "activation": "relu"},
                                    "accuracy": 0.88, "source": "a documented long run"}
    study = _study(tmp_path, tiny_study_dict)
    trials, _ = _frames([1.0, 0.9], [2.3, 2.3])
    reached = analysis.reference_reached(study, trials)
    assert reached["reached"] == pytest.approx(0.81) and reached["short_by"] == pytest.approx(0.07)


@pytest.mark.parametrize("change, where, problem", [
    (lambda s: s.update(facts=[{"id": "F", "text": "t", "metric": "nope", "arms": [{"activation": "relu"}],
                                "why": "w"}]), "facts[0].metric", "unknown metric"),
    (lambda s: s.update(facts=[{"id": "T1", "text": "t", "metric": "parameters", "arms": [{"activation": "relu"}],
                                "why": "w"}]), "facts[0].id", "duplicate id"),
    (lambda s: s.update(reference={"arm": {"activation": "relu"}, "accuracy": 0.9, "source": "s"}),
     "reference.arm", "selects 2 arms"),
    (lambda s: s["claims"][0].update(needs="forever"), "claims[0].needs", ""),
])
def test_bad_facts_references_and_needs_name_the_field(tmp_path, tiny_study_dict, change, where, problem):
    change(tiny_study_dict)
    with pytest.raises(loader.SpecError) as err:
        _study(tmp_path, tiny_study_dict)
    assert where in str(err.value) and problem in str(err.value)

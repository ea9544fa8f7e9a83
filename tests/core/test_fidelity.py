"""Claims judged only at a budget that can judge them; facts shown as numbers; the reference arm."""

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


def test_a_convergence_claim_on_still_falling_losses_is_not_judged(tmp_path, tiny_study_dict):
    tiny_study_dict["claims"][0]["needs"] = "convergence"
    study = _study(tmp_path, tiny_study_dict)
    claim = study.claims[0]
    trials, epochs = _frames([2.0, 1.5, 1.2, 1.0, 0.8], [2.3, 2.3, 2.3, 2.3, 2.3])
    problem = analysis.convergence_problem(claim, trials, epochs)
    assert problem.startswith("not judged at this budget") and "50 SGD steps" in problem
    assert "he_normal / relu still fell 20%" in problem  # (1.0 - 0.8) / 1.0 over the last epoch
    verdicts = analysis.judge_claims(study, trials, epochs)
    assert verdicts[0].verdict == analysis.NOT_JUDGED and verdicts[0].holm_verdict == analysis.NOT_JUDGED
    assert verdicts[0].effect > 0  # the evidence stays on the page
    assert verdicts[1].verdict != analysis.NOT_JUDGED  # a claim that needs no convergence is judged as before

    trials, epochs = _frames([2.0, 1.0, 0.82, 0.81, 0.80], [2.3, 2.3, 2.3, 2.3, 2.3])
    assert analysis.convergence_problem(claim, trials, epochs) == ""
    assert analysis.judge_claims(study, trials, epochs)[0].verdict == "supported"


def test_an_arm_that_fits_its_training_set_counts_as_converged(tmp_path, tiny_study_dict):
    """Memorised training images: the loss still falls by a large share (0.004 -> 0.002) of almost nothing."""
    tiny_study_dict["claims"][0]["needs"] = "convergence"
    claim = _study(tmp_path, tiny_study_dict).claims[0]
    trials, epochs = _frames([0.5, 0.02, 0.01, 0.006, 0.004, 0.002], [2.3] * 6)
    epochs["train_accuracy"] = [0.9, 1.0, 1.0, 1.0, 1.0, 1.0] * 3 + [0.1] * 18
    assert analysis.convergence_problem(claim, trials, epochs) == ""
    epochs["train_accuracy"] = [0.9, 0.95, 0.97, 0.98, 0.985, 0.989] * 3 + [0.1] * 18  # not yet 99%
    assert "he_normal / relu still fell 50%" in analysis.convergence_problem(claim, trials, epochs)


def test_one_run_jumping_up_late_does_not_hide_the_others_still_falling(tmp_path, tiny_study_dict):
    """Convergence is read per run, the median run deciding: the arm's mean curve would be flat here."""
    tiny_study_dict["claims"][0]["needs"] = "convergence"
    claim = _study(tmp_path, tiny_study_dict).claims[0]
    trials, epochs = _frames([2.0, 1.5, 1.2, 1.1, 1.0], [2.3] * 5)
    epochs.loc[epochs["key"] == "he_normal-2", "train_loss"] = [2.0, 1.5, 1.0, 0.9, 1.3]  # jumps up at the end
    assert epochs[epochs["key"].str.startswith("he_")].groupby("epoch")["train_loss"].mean().iloc[-2:].is_monotonic_increasing
    problem = analysis.convergence_problem(claim, trials, epochs)
    assert "he_normal / relu still fell 9%" in problem and "median of 3 runs" in problem  # (1.1 - 1.0) / 1.1
    epochs.loc[epochs["key"] == "he_normal-1", "train_loss"] = [2.0, 1.5, 1.0, 0.9, 0.9]  # two of three flat: converged
    assert analysis.convergence_problem(claim, trials, epochs) == ""


def test_one_epoch_cannot_show_convergence(tmp_path, tiny_study_dict):
    study = _study(tmp_path, tiny_study_dict)
    trials, epochs = _frames([1.0], [2.3])
    assert "too few to tell" in analysis.convergence_problem(study.claims[0], trials, epochs)


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

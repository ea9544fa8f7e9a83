"""The budget check: a claim about trained nets judged at B and at B/2, every branch of the rule,
the runs it plans, and the outcome it gives from records."""

from __future__ import annotations

import pytest
from conftest import write_study

from suite.core import budget, loader
from suite.core.evaluation import evaluate
from suite.core.plan import half_epochs, plan_trials

S, C, E, U, NJ = "supported", "contradicted", "equivalent", "inconclusive", "not judged"


@pytest.mark.parametrize("half, full, case, outcome", [
    (S, S, budget.HOLDS, S),
    (E, E, budget.HOLDS, E),
    (U, U, budget.UNDECIDED, U),
    (S, C, budget.DEPENDS, budget.BUDGET_DEPENDENT),
    (C, S, budget.DEPENDS, budget.BUDGET_DEPENDENT),
    (E, S, budget.DEPENDS, budget.BUDGET_DEPENDENT),
    (U, S, budget.EMERGES, S),
    (NJ, C, budget.EMERGES, C),  # not judged at B/2 (no arm had learned yet) counts as undecided there
    (S, U, budget.FADES, U),
    (None, S, budget.NOT_CHECKED, S),
    (S, NJ, budget.NOT_CHECKED, NJ),
])
def test_every_branch_of_the_rule(half, full, case, outcome):
    assert budget.combine(full, half) == (case, outcome)


def _side(verdict, effect, epochs):
    return {"verdict": verdict, "effect": effect, "ci": [effect - 0.01, effect + 0.01], "n": 3, "epochs": epochs}


def test_the_page_says_which_case_with_both_verdicts_and_effects():
    holds = budget.check(_side(S, 0.2, 10), _side(S, 0.1, 5))
    assert holds.note.startswith("holds at half the budget and at the budget") and "supported at 5 epochs" in holds.note
    depends = budget.check(_side(C, -0.1, 10), _side(S, 0.05, 5))
    assert depends.outcome == budget.BUDGET_DEPENDENT
    assert depends.note == ("budget-dependent: supported at 5 epochs (effect +0.05, n = 3), "
                            "but contradicted at 10 epochs (effect -0.1, n = 3)")
    assert "the effect grows with training" in budget.check(_side(S, 0.2, 10), _side(U, 0.01, 5)).note
    assert "the effect fades with training" in budget.check(_side(U, 0.01, 10), _side(S, 0.2, 5)).note
    assert "longer training settled it" in budget.check(_side(E, 0.0, 10), _side(U, 0.2, 5)).note
    assert "no compared arm had learned" in budget.check(_side(S, 0.2, 10), _side(NJ, 0.2, 5)).note
    assert "longer training leaves it undecided" in budget.check(_side(U, 0.2, 10), _side(E, 0.0, 5)).note
    assert budget.check(_side(S, 0.2, 1), None).note == "not checked at half the budget: one epoch cannot be halved"
    assert budget.check(_side(S, 0.2, 10), None).as_dict()["half"] is None


def test_half_the_epochs_rounded_up_and_none_for_one_epoch():
    assert [half_epochs(e) for e in (1, 2, 3, 7, 30)] == [None, 1, 2, 4, 15]


def _study(tmp_path, tiny_study_dict, needs="trained"):
    tiny_study_dict["claims"][0]["needs"] = needs
    levels = tiny_study_dict["factors"]["kernel_initializer"]
    if "glorot_uniform" not in levels:
        levels.append("glorot_uniform")  # an arm no claim compares
    directory = tmp_path / "studies"
    directory.mkdir(exist_ok=True)
    return loader.load_study(write_study(directory, tiny_study_dict))


def test_the_plan_adds_runs_at_half_the_epochs_for_the_arms_of_claims_about_trained_nets(tmp_path, tiny_study_dict):
    study = _study(tmp_path, tiny_study_dict)
    profile = study.profiles["full"]  # 3 epochs, 3 seeds, 2 learning rates
    trials = plan_trials(study, profile, "data")
    full = [t for t in trials if not t.half_budget]
    half = [t for t in trials if t.half_budget]
    assert len(full) == 3 * 2 * 3 and {t.config["epochs"] for t in full} == {3}
    assert len(half) == 2 * 2 * 3 and {t.config["epochs"] for t in half} == {2}
    assert {t.arm["kernel_initializer"] for t in half} == {"he_normal", "normal_0.01"}  # the compared arms only
    assert not {t.key for t in half} & {t.key for t in full}
    assert not any(t.half_budget for t in plan_trials(study, study.profiles["smoke"], "data"))  # one epoch
    training_only = _study(tmp_path, tiny_study_dict, needs="training")
    assert not any(t.half_budget for t in plan_trials(training_only, profile, "data"))


def _records(study, profile, values: dict) -> list[dict]:
    """Finished records of the plan: test accuracy per (arm's initializer, half_budget) and seed."""
    records = []
    for trial in plan_trials(study, profile, "data"):
        accuracy = values[(trial.arm["kernel_initializer"], trial.half_budget)][trial.seed]
        records.append({"key": trial.key, "arm": trial.arm, "tuning": trial.tuning, "seed": trial.seed,
                        "config": trial.config, **({"half_budget": True} if trial.half_budget else {}),
                        "status": "ok", "final": {"test_accuracy": accuracy, "val_accuracy": 0.5}, "history": [],
                        "provenance": {"classes": 10}})
    return records


def test_opposite_verdicts_at_half_and_full_budget_are_budget_dependent(tmp_path, tiny_study_dict):
    study = _study(tmp_path, tiny_study_dict)
    profile = study.profiles["full"]
    values = {("he_normal", False): [0.80, 0.82, 0.81], ("normal_0.01", False): [0.60, 0.61, 0.62],
              ("he_normal", True): [0.50, 0.51, 0.52], ("normal_0.01", True): [0.70, 0.71, 0.69],
              ("glorot_uniform", False): [0.7, 0.7, 0.7]}
    result = evaluate(study, _records(study, profile, values))
    verdict = result.verdicts[0]
    assert verdict.verdict == budget.BUDGET_DEPENDENT and verdict.holm_verdict == budget.BUDGET_DEPENDENT
    check = verdict.budget_check
    assert check["full"]["verdict"] == S and check["half"]["verdict"] == C
    assert check["full"]["epochs"] == 3 and check["half"]["epochs"] == 2
    assert check["full"]["effect"] == pytest.approx(0.2) and check["half"]["effect"] == pytest.approx(-0.19)
    assert len(result.trials) == 3 * 2 * 3  # the frames hold the profile's budget; the half-budget runs only judge
    assert result.verdicts[1].budget_check is None  # a claim at initialisation is not checked

    values[("he_normal", True)] = [0.75, 0.76, 0.77]
    held = evaluate(study, _records(study, profile, values)).verdicts[0]
    assert held.verdict == S and held.budget_check["case"] == budget.HOLDS


def test_a_confirmation_judges_its_runs_at_half_the_budget_with_the_values_chosen_at_the_budget(tmp_path,
                                                                                               tiny_study_dict):
    from suite.core.evaluation import RunInfo

    study = _study(tmp_path, tiny_study_dict)
    profile = study.profiles["full"]
    tuning = [dict(r) for r in _records(study, profile, {
        (arm, half): [0.8, 0.81, 0.82] if arm == "he_normal" else [0.6, 0.61, 0.62]
        for arm in ("he_normal", "normal_0.01", "glorot_uniform") for half in (False, True)})]
    # the 0.05 runs score better on validation at B/2: a B/2 choice of its own would pick 0.05, never trained below
    for record in tuning:
        at_half_with_005 = record.get("half_budget") and record["tuning"]["learning_rate"] == 0.05
        record["final"] = {**record["final"], "val_accuracy": 0.6 if at_half_with_005 else 0.5}
    chosen = {"he_normal / relu": {"learning_rate": 0.1}, "normal_0.01 / relu": {"learning_rate": 0.1},
              "glorot_uniform / relu": {"learning_rate": 0.1}}
    confirming = []
    for trial in plan_trials(study, profile, "data", first_seed=3, chosen=chosen):
        accuracy = 0.8 + trial.seed / 100 if trial.arm["kernel_initializer"] == "he_normal" else 0.6 + trial.seed / 200
        confirming.append({"key": trial.key, "arm": trial.arm, "tuning": trial.tuning, "seed": trial.seed,
                           "config": trial.config, **({"half_budget": True} if trial.half_budget else {}),
                           "status": "ok", "final": {"test_accuracy": accuracy, "val_accuracy": 0.5}, "history": [],
                           "provenance": {"classes": 10}})
    result = evaluate(study, tuning + confirming, RunInfo(judge_seeds=(3, 4, 5)))
    check = result.verdicts[0].budget_check
    assert check["half"]["n"] == 3 and check["half"]["verdict"] == S and check["full"]["n"] == 3

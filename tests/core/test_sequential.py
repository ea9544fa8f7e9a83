"""Seeds where the verdict is undecided: the looks' levels, the rule's error rates with looks, and
a study judged look by look."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower

from suite.core import sequential
from suite.core.budget import NOT_JUDGED
from suite.core.sequential import Look
from suite.core.verdicts import CONTRADICTED, EQUIVALENT, INCONCLUSIVE, SUPPORTED

REPS = 1500
LOOKS = (3, 8, 16)


@pytest.mark.parametrize(("spending", "bounds"), [
    # Lan-DeMets spending at three equally spaced looks, one-sided 0.025 (Jennison & Turnbull, table 7.6)
    ("obrien_fleming", (3.710, 2.511, 1.993)),
    ("pocock", (2.279, 2.295, 2.296)),
])
def test_the_levels_are_the_published_lan_demets_boundaries(spending, bounds):
    looks = sequential.looks_for((5, 10, 15), spending)
    assert [look.seeds for look in looks] == [5, 10, 15]
    assert [stats.norm.isf(look.alpha / 2) for look in looks] == pytest.approx(bounds, abs=2e-3)


def test_one_look_is_the_fixed_design():
    assert sequential.looks_for((3,)) == (Look(1, 3, 0.05),)


def test_exact_tests_start_at_the_first_look_that_can_decide():
    looks = sequential.looks_for(LOOKS)
    assert sequential.first_look("continuous", looks).seeds == 3
    # Pocock's level at 8 seeds is about 0.02: the sign test's smallest p there is 2^-7
    assert sequential.first_look("binary", looks).seeds == 8


def _fixed_power(effect: float, seeds: int, alpha: float = 0.05) -> float:
    return float(TTestPower().power(effect_size=effect, nobs=seeds, alpha=alpha, alternative="two-sided"))


@pytest.mark.parametrize("spending", ["pocock", "obrien_fleming"])
def test_looking_after_each_block_keeps_false_decisions_at_or_below_5_percent(spending):
    looks = sequential.looks_for(LOOKS, spending)
    se = math.sqrt(0.05 * 0.95 / REPS)
    no_effect = sequential.simulate(looks, 0.0, margin=0.2, reps=REPS)
    assert no_effect[SUPPORTED] + no_effect[CONTRADICTED] <= 0.05 + 3 * se, no_effect
    # an equivalence claim whose true difference sits on its margin: calling it equivalent is false
    on_margin = sequential.simulate(looks, 0.5, margin=0.5, test="equivalent", reps=REPS, seed=1)
    assert on_margin[SUPPORTED] <= 0.05 + 3 * se, on_margin
    # the exact sign test on discordant seeds under no effect
    binary = sequential.simulate(looks, 0.0, margin=0.0, scale="binary", reps=REPS, seed=2)
    assert binary[SUPPORTED] + binary[CONTRADICTED] <= 0.05 + 3 * se, binary


def test_the_looks_buy_power_between_the_first_and_the_last_look_for_fewer_seeds():
    looks = sequential.looks_for(LOOKS)
    one_sd = sequential.simulate(looks, 1.0, margin=0.2, reps=REPS, seed=3)
    # against the analytic power of fixed designs: far above 3 seeds', a little below 16 seeds'
    assert one_sd[SUPPORTED] > _fixed_power(1.0, 3) + 0.4
    assert _fixed_power(1.0, 16) - 0.2 < one_sd[SUPPORTED] <= _fixed_power(1.0, 16)
    assert one_sd["mean_seeds"] < 12  # large effects stop early
    assert sequential.simulate(looks, 3.0, margin=0.2, reps=200)["mean_seeds"] < 8  # most stop at 3 or 8


def test_a_claim_stops_at_its_first_decision_and_futility_never_at_the_first_look():
    looks = sequential.looks_for(LOOKS)
    clear = np.r_[np.full(3, 5.0) + [0.1, -0.1, 0.0], np.zeros(13)]
    decision, look, why = sequential.decide_in_looks(clear, looks, margin=0.2)
    assert (decision.verdict, look.seeds, why) == (SUPPORTED, 3, sequential.DECIDED)
    noise = np.random.default_rng(5).normal(0.0, 1.0, 16)
    decision, look, why = sequential.decide_in_looks(noise, looks, margin=0.05)
    assert look.seeds > 3 and why in (sequential.FUTILE, sequential.LAST)
    assert decision.verdict in (INCONCLUSIVE, EQUIVALENT)


# ---- a study judged look by look ------------------------------------------------------------

def _looked_study(tmp_path, tiny_study_dict):
    from conftest import write_study

    from suite.core import loader

    tiny_study_dict["factors"]["kernel_initializer"] = ["he_normal", "normal_0.01", "glorot_uniform"]
    tiny_study_dict["profiles"]["standard"] = {"train_examples": 256, "epochs": 1, "seeds": 3, "looks": [3, 8, 16],
                                               "tune_seeds": 1}
    tiny_study_dict["claims"] = [
        {**tiny_study_dict["claims"][0], "id": "T1"},  # he against N(0, 0.01): a large effect
        {**tiny_study_dict["claims"][0], "id": "T3", "text": "Glorot beats N(0, 0.01)",
         "better": {"kernel_initializer": "glorot_uniform"}}]  # no effect: undecided at 3 seeds
    directory = tmp_path / "studies"
    directory.mkdir(exist_ok=True)
    return loader.load_study(write_study(directory, tiny_study_dict))


def _fake_train(study, profile, asked: list, timed: list | None = None):
    """`train` for run_block: records of the planned trials with made-up accuracies."""
    from suite.core.plan import plan_trials

    rng = np.random.default_rng(0)
    noise = {seed: rng.normal(0, 0.05, 3) for seed in range(40)}
    means = {"he_normal": 0.9, "normal_0.01": 0.5, "glorot_uniform": 0.5}
    timed = [] if timed is None else timed

    def train(first_seed, chosen=None, arm_seeds=None, budget_check=True, timed_until=None, half_seeds=None):
        asked.append((first_seed, dict(arm_seeds) if arm_seeds else None, budget_check))
        timed.append(timed_until)
        records = []
        for t in plan_trials(study, profile, "fp", first_seed=first_seed, chosen=chosen, arm_seeds=arm_seeds,
                             budget_check=budget_check, half_seeds=half_seeds):
            init = t.arm["kernel_initializer"]
            value = means[init] + noise[t.seed][list(means).index(init)] + (t.tuning["learning_rate"] - 0.1)
            records.append({"key": t.key, "arm": t.arm, "tuning": t.tuning, "seed": t.seed, "config": t.config,
                            "status": "ok", "final": {"test_accuracy": value, "val_accuracy": value},
                            "timing": {"step_seconds": 2 - value, "timed_alone": True},
                            "history": [], "provenance": {"classes": 10}})
        return records

    return train


def test_undecided_claims_get_the_next_looks_seeds_and_decided_ones_stop(tmp_path, tiny_study_dict):
    from suite.core.replication import SeedBlock, run_block
    from suite.core.store import TrialStore

    study = _looked_study(tmp_path, tiny_study_dict)
    profile = study.profiles["standard"]
    asked = []
    block = SeedBlock("standard", "tensorflow", confirm=True, tune_seeds=1, looks=(3, 8, 16))
    result = run_block(study, profile, "fp", block, _fake_train(study, profile, asked),
                       TrialStore(tmp_path / "results", "tiny"), note=False)
    # the tuning run: one seed, the whole grid, no runs at half the budget; then judging from seed 1
    assert asked[0] == (0, {"he_normal / relu": 1, "normal_0.01 / relu": 1, "glorot_uniform / relu": 1}, False)
    assert asked[1][0] == 1 and set(asked[1][1].values()) == {3}
    assert asked[2][1] == {"he_normal / relu": 3, "normal_0.01 / relu": 8, "glorot_uniform / relu": 8}
    by_id = {v.claim.id: v for v in result.verdicts}
    t1, t3 = by_id["T1"], by_id["T3"]
    assert t1.verdict == SUPPORTED and t1.sequential["look"] == 1 and t1.n == 3
    assert t1.sequential["alpha"] == pytest.approx(sequential.looks_for((3, 8, 16))[0].alpha)
    assert t3.sequential["look"] >= 2 and t3.sequential["stop"] in (sequential.FUTILE, sequential.LAST,
                                                                     sequential.DECIDED)
    assert t3.n == t3.sequential["seeds"] and {p["seed"] for p in t3.pairs} == set(range(1, 1 + t3.n))
    assert result.run.label == "seeds 1-16, in looks of 3/8/16 seeds (values tuned on seed 0)"
    # the learning rate 0.1 scores best on the tuning seed: every judging trial uses it
    assert set(result.trials.loc[result.trials["selected"], "tuned_learning_rate"]) == {0.1}


def test_a_timing_claim_decided_early_leaves_its_arms_later_seeds_to_share_the_machine(tmp_path, tiny_study_dict):
    """Only the trials whose step time a timing claim reads run alone: once it stops at the first
    look, the seeds its arms run later for an undecided claim may run beside others."""
    from suite.core.replication import SeedBlock, _timed_until, run_block
    from suite.core.store import TrialStore

    study = _looked_study(tmp_path, tiny_study_dict)
    step_time = dataclasses.replace(study.claims[0], id="T4", text="He steps faster", metric="step_seconds",
                                    direction="lower", margin=0.01)
    study = dataclasses.replace(study, claims=(*study.claims, step_time))
    profile = study.profiles["standard"]
    asked, timed = [], []
    block = SeedBlock("standard", "tensorflow", confirm=True, tune_seeds=1, looks=(3, 8, 16))
    result = run_block(study, profile, "fp", block, _fake_train(study, profile, asked, timed),
                       TrialStore(tmp_path / "results", "tiny"), note=False)
    t4 = {v.claim.id: v for v in result.verdicts}["T4"]
    assert t4.verdict == SUPPORTED and t4.sequential["seeds"] == 3
    assert timed[1] is None  # the first look: every trial of a timed arm is read
    # after it: T4's arms are timed on seeds 1-3 only, though N(0, 0.01) runs 8 for T3
    assert timed[2] == {"he_normal / relu": 4, "normal_0.01 / relu": 4}
    assert asked[2][1]["normal_0.01 / relu"] == 8
    # a timing claim still waiting may read up to the last look's seeds: all its arms' seeds run alone
    waiting = dataclasses.replace(t4, sequential={**t4.sequential, "stop": sequential.WAITING, "next_seeds": 8})
    assert _timed_until(study, profile, [waiting], first=1) == {"he_normal / relu": 17, "normal_0.01 / relu": 17}


def _budget_checked(tmp_path, tiny_study_dict, at_half: dict):
    """(study, profile, train, asked): the looked study with claims about trained nets at 2 epochs,
    and a `train` whose accuracies are a little higher for He at B and `at_half`'s means at B/2."""
    from suite.core.plan import plan_trials

    study = _looked_study(tmp_path, tiny_study_dict)
    study = dataclasses.replace(study, claims=tuple(dataclasses.replace(c, needs="trained") for c in study.claims))
    profile = dataclasses.replace(study.profiles["standard"], epochs=2)
    rng = np.random.default_rng(1)
    noise = {seed: rng.normal(0, 0.05, 3) for seed in range(40)}
    means = {False: {"he_normal": 0.53, "normal_0.01": 0.5, "glorot_uniform": 0.5}, True: at_half}
    asked = []

    def train(first_seed, chosen=None, arm_seeds=None, budget_check=True, timed_until=None, half_seeds=None):
        asked.append((dict(arm_seeds), dict(half_seeds) if half_seeds else None))
        def final(t):  # the learning rate 0.1 is chosen (best on validation)
            value = (means[t.half_budget][t.arm["kernel_initializer"]]
                     + noise[t.seed][list(means[False]).index(t.arm["kernel_initializer"])])
            return {"test_accuracy": value, "val_accuracy": value + t.tuning["learning_rate"] - 0.1}

        return [{"key": t.key, "arm": t.arm, "tuning": t.tuning, "seed": t.seed, "config": t.config,
                 "half_budget": t.half_budget, "status": "ok", "history": [], "provenance": {"classes": 10},
                 "final": final(t)}
                for t in plan_trials(study, profile, "fp", first_seed=first_seed, arm_seeds=arm_seeds,
                                     half_seeds=half_seeds)]

    return study, profile, train, asked


def test_the_budget_checks_runs_at_half_the_budget_stop_when_their_verdict_is_decided(tmp_path, tiny_study_dict):
    """At B/2 an arm runs only the seeds its claims about trained nets need there: a claim decided at
    B/2 on the first look's seeds adds none while it waits at B; one undecided at both adds them at
    both. The check reads B/2 at the look that decided it, even where more seeds are stored, and
    only at a look whose runs at B/2 are all there."""
    from suite.core.evaluation import RunInfo, evaluate
    from suite.core.replication import SeedBlock, run_block
    from suite.core.store import TrialStore

    # He is far ahead at B/2 but only a little at B; Glorot is N(0, 0.01)'s equal at both
    study, profile, train, asked = _budget_checked(tmp_path, tiny_study_dict,
                                                   {"he_normal": 0.9, "normal_0.01": 0.5, "glorot_uniform": 0.5})
    # as the command line runs `standard`: values tuned on seed 0 (no runs at B/2), judged from seed 1
    block = SeedBlock("standard", "tensorflow", confirm=True, tune_seeds=1, looks=(3, 8, 16))
    result = run_block(study, profile, "fp", block, train, TrialStore(tmp_path / "results", "tiny"), note=False)
    he, normal, glorot = "he_normal / relu", "normal_0.01 / relu", "glorot_uniform / relu"
    assert asked[0] == ({he: 1, normal: 1, glorot: 1}, None)
    assert asked[1] == ({he: 3, normal: 3, glorot: 3}, {he: 3, normal: 3, glorot: 3})
    assert asked[2] == ({he: 8, normal: 8, glorot: 8}, {he: 3, normal: 8, glorot: 8})
    assert all(half[he] == 3 for _, half in asked[2:])
    t1 = {v.claim.id: v for v in result.verdicts}["T1"]
    assert t1.sequential["seeds"] >= 8 and t1.sequential["half_seeds"] == 3
    assert t1.budget_check["half"]["verdict"] == SUPPORTED and t1.budget_check["half"]["n"] == 3
    # the outcome and Holm's read that B/2 side: never budget-dependent against a decided B
    assert t1.budget_check["outcome"] == t1.verdict and t1.holm_verdict in (t1.verdict, INCONCLUSIVE)
    # every seed stored at B/2 (a run before this rule): the check still reads B/2 at its deciding look
    every = train(0, arm_seeds={he: 16, normal: 16, glorot: 16}, half_seeds={he: 16, normal: 16, glorot: 16})
    looks = RunInfo(looks=sequential.looks_for((3, 8, 16)), judge_first=0)
    assert {v.claim.id: v for v in evaluate(study, every, looks).verdicts}["T1"].budget_check["half"]["n"] == 3
    # a run at B/2 missing from the first look: no look at B/2 is complete, so none is read as decided
    gap = [r for r in every if not (r["half_budget"] and r["seed"] == 1 and r["arm"]["kernel_initializer"] == "he_normal")]
    t1_gap = {v.claim.id: v for v in evaluate(study, gap, looks).verdicts}["T1"]
    assert "half_seeds" not in t1_gap.sequential


def test_a_budget_check_whose_arms_did_not_learn_at_half_the_budget_asks_no_more_seeds_there(tmp_path,
                                                                                              tiny_study_dict):
    """Every net at chance at B/2: neither claim is judged there (no compared arm learned); as for a
    claim whose arms did not learn at B, more seeds would not change that."""
    from suite.core.replication import SeedBlock, run_block
    from suite.core.store import TrialStore

    study, profile, train, asked = _budget_checked(tmp_path, tiny_study_dict,
                                                   {"he_normal": 0.1, "normal_0.01": 0.1, "glorot_uniform": 0.1})
    block = SeedBlock("standard", "tensorflow", confirm=True, tune_seeds=1, looks=(3, 8, 16))
    result = run_block(study, profile, "fp", block, train, TrialStore(tmp_path / "results", "tiny"), note=False)
    assert len(asked) > 2 and all(set(half.values()) == {3} for _, half in asked[1:])  # B went on to 8 seeds
    assert max(asked[-1][0].values()) >= 8
    for verdict in result.verdicts:
        assert verdict.budget_check["half"]["verdict"] == NOT_JUDGED and verdict.sequential["half_seeds"] == 3


def test_a_look_not_yet_trained_leaves_the_claim_waiting(tmp_path, tiny_study_dict):
    from suite.core.evaluation import RunInfo, evaluate

    study = _looked_study(tmp_path, tiny_study_dict)
    profile = study.profiles["standard"]
    train = _fake_train(study, profile, [])
    records = train(0, arm_seeds={label: 3 for label in ("he_normal / relu", "normal_0.01 / relu",
                                                          "glorot_uniform / relu")})
    records = [r for r in records if r["tuning"]["learning_rate"] == 0.1]
    result = evaluate(study, records, RunInfo(looks=sequential.looks_for((3, 8, 16)), judge_first=0))
    t3 = {v.claim.id: v for v in result.verdicts}["T3"]
    assert t3.verdict == INCONCLUSIVE and t3.sequential["stop"] == sequential.WAITING
    assert sequential.waiting_seeds(result.verdicts) == {"T3": 8}


def test_identical_differences_on_every_seed_stop_at_once():
    """Two arms that are one net (two dev sets that chose the same rate) differ by exactly 0 on every
    seed: more seeds would repeat it, so the claim stops at its first look."""
    looks = sequential.looks_for(LOOKS)
    decision, look, why = sequential.decide_in_looks(np.zeros(16), looks, margin=0.01)
    assert (decision.verdict, look.seeds, why) == (INCONCLUSIVE, 3, sequential.FUTILE)

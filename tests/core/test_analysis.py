"""Verdicts from hand-made records: the judge can say all three things."""

import math

import pytest

from suite.core import analysis, frames
from suite.core.loader import Claim, Profile, Study


def _study(claims=(), tuned=True) -> Study:
    return Study(name="s", title="t", question="q", dataset="synthetic", model={"family": "mlp"},
                 factors={"init": ["a", "b"]},
                 training={"optimizer": "sgd", "learning_rate": [0.1, 0.01] if tuned else 0.1, "lr_schedule": "constant",
                           "batch_size": 8},
                 probes=(), profiles={"smoke": Profile("smoke", 1, 1, 1)}, claims=tuple(claims))


def _record(init, lr, seed, acc, status="ok", val=None, history=None):
    return {"key": f"{init}-{lr}-{seed}", "arm": {"init": init}, "tuning": {"learning_rate": lr}, "seed": seed,
            "status": status, "final": {"test_accuracy": acc, "val_accuracy": acc if val is None else val},
            "history": history or [{"epoch": 1, "val_accuracy": acc}]}


def _judge(a_values, b_values, direction="higher", metric="test_accuracy"):
    claim = Claim(id="C", text="a beats b", metric=metric, better={"init": "a"}, worse={"init": "b"}, direction=direction)
    study = _study([claim], tuned=False)
    records = [_record("a", 0.1, s, v) for s, v in enumerate(a_values)] + \
              [_record("b", 0.1, s, v) for s, v in enumerate(b_values)]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    return analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))


def test_supported_when_interval_above_zero():
    verdict = _judge([0.80, 0.82, 0.81], [0.10, 0.11, 0.09])
    assert verdict.verdict == analysis.SUPPORTED and verdict.n == 3
    assert verdict.ci[0] > 0 and math.isclose(verdict.effect, 0.71, abs_tol=1e-9)


def test_contradicted_when_interval_below_zero():
    assert _judge([0.10, 0.11, 0.09], [0.80, 0.82, 0.81]).verdict == analysis.CONTRADICTED


def test_inconclusive_when_interval_contains_zero():
    verdict = _judge([0.5, 0.7, 0.4], [0.6, 0.5, 0.6])
    assert verdict.verdict == analysis.INCONCLUSIVE and verdict.ci[0] < 0 < verdict.ci[1]


def test_one_seed_is_inconclusive():
    verdict = _judge([0.9], [0.1])
    assert verdict.verdict == analysis.INCONCLUSIVE and "fewer than two" in verdict.reason


def test_direction_lower_flips_the_sign():
    assert _judge([0.1, 0.12, 0.11], [0.8, 0.82, 0.81], direction="lower").verdict == analysis.SUPPORTED


def test_epoch_metric_reads_the_history():
    verdict = _judge([0.8, 0.81, 0.82], [0.1, 0.1, 0.11], metric="val_accuracy")
    assert verdict.verdict == analysis.SUPPORTED


@pytest.mark.parametrize("alone", [True, None])
def test_step_times_measured_beside_other_trials_decide_nothing(alone):
    """A claim on step time is decided only from trials timed with nothing beside them
    (records say `timed_alone`); older records, timed beside a neighbour, leave it inconclusive."""
    claim = Claim(id="C", text="a steps slower", metric="step_seconds", better={"init": "a"}, worse={"init": "b"})
    study = _study([claim], tuned=False)
    jitter = (0.0, 2e-5, -1e-5)
    records = [{**_record(init, 0.1, s, 0.8), "timing": {"step_seconds": step + jitter[s] * (init == "a"),
                                                         "timed_alone": alone}}
               for init, step in (("a", 0.003), ("b", 0.001)) for s in range(3)]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    if alone:
        assert verdict.verdict == analysis.SUPPORTED and verdict.reason == ""
    else:
        assert verdict.verdict == analysis.INCONCLUSIVE and "6 of 6 step times were measured while other" in verdict.reason


def test_diverged_pairs_are_dropped_and_reported():
    claim = Claim(id="C", text="", metric="test_accuracy", better={"init": "a"}, worse={"init": "b"})
    study = _study([claim], tuned=False)
    records = [_record("a", 0.1, s, 0.8 + s / 100) for s in range(3)] + \
              [_record("b", 0.1, 0, float("nan"), status="diverged")] + \
              [_record("b", 0.1, s, 0.1) for s in (1, 2)]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    assert verdict.n == 2 and "1 of 3 seeds dropped" in verdict.reason


def test_a_claim_pairs_the_seeds_both_sides_ran():
    # `a` ran seeds 0-5 (another claim asked for more), `b` only 0-2: three pairs, none dropped
    verdict = _judge([0.80, 0.82, 0.81, 0.5, 0.5, 0.5], [0.10, 0.11, 0.09])
    assert verdict.n == 3 and verdict.reason == "" and math.isclose(verdict.effect, 0.71, abs_tol=1e-9)


def test_a_seed_only_some_selected_arms_ran_is_not_averaged():
    claim = Claim(id="C", text="", metric="test_accuracy", better={"init": ["a", "b"]}, worse=None, than=0.5)
    study = _study([claim], tuned=False)
    records = [_record("a", 0.1, s, 0.9) for s in range(4)] + [_record("b", 0.1, s, 0.7) for s in range(3)]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    values = analysis.claim_values(claim, claim.better, trials, frames.epochs_frame(records, study))
    assert list(values.index) == [0, 1, 2] and values.tolist() == pytest.approx([0.8] * 3)  # not seed 3's 0.9 alone


def test_tuning_picks_best_validation_value_per_arm():
    study = _study()
    records = [_record("a", 0.1, s, acc=0.2, val=0.9) for s in range(2)] + \
              [_record("a", 0.01, s, acc=0.9, val=0.5) for s in range(2)] + \
              [_record("b", 0.1, s, acc=0.0, val=float("nan"), status="diverged") for s in range(2)] + \
              [_record("b", 0.01, s, acc=0.3, val=0.3) for s in range(2)]
    trials = frames.trials_frame(records, study)
    table = frames.tuning_table(trials, study)
    chosen = table[table["chosen"]].set_index("arm")["tuned_learning_rate"].to_dict()
    assert chosen == {"a": 0.1, "b": 0.01}  # by validation, never by test accuracy
    selected = frames.mark_selected(trials, study)
    assert selected["selected"].sum() == 4


@pytest.mark.parametrize("values, n", [([1.0, 2.0, 3.0], 3), ([float("nan"), 1.0], 1), ([], 0)])
def test_mean_ci(values, n):
    mean, low, high, count = frames.mean_ci(values)
    assert count == n
    if n >= 2:
        assert low < mean < high


def test_claim_against_a_fixed_value():
    claim = Claim(id="C", text="", metric="test_accuracy", better={"init": "a"}, worse=None, than=0.5)
    study = _study([claim], tuned=False)
    records = [_record("a", 0.1, s, 0.8 + s / 100) for s in range(3)] + [_record("b", 0.1, s, 0.1) for s in range(3)]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    assert verdict.verdict == analysis.SUPPORTED and math.isclose(verdict.worse_mean, 0.5)


def test_epochs_to_target_counts_not_reached_as_budget_plus_one():
    study = _study(tuned=False)
    curve = lambda values: [{"epoch": e, "val_accuracy": v} for e, v in enumerate(values, start=1)]
    records = [_record("a", 0.1, 0, 0.9, history=curve([0.5, 0.85, 0.9])),
               _record("b", 0.1, 0, 0.4, history=curve([0.2, 0.3, 0.4]))]
    epochs = frames.epochs_frame(records, study)
    reached = analysis.epochs_to_target(epochs, {"metric": "val_accuracy", "value": 0.8})
    assert reached.to_dict() == {"a-0.1-0": 2.0, "b-0.1-0": 4.0}
    losses = analysis.epochs_to_target(epochs.assign(val_loss=[1.0, 0.5, 0.4, 2, 2, 2]), {"metric": "val_loss", "value": 0.5})
    assert losses["a-0.1-0"] == 2.0  # a loss target is reached from above


def test_diverged_is_a_metric():
    study = _study(tuned=False)
    records = [_record("a", 0.1, 0, float("nan"), status="diverged"), _record("b", 0.1, 0, 0.5)]
    assert frames.trials_frame(records, study)["diverged"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("verdicts_by_epoch, effects, expected", [
    (["supported"] * 3, [0.1, 0.2, 0.3], "holds at every step measured (from step 0)"),
    (["inconclusive", "supported", "supported"], [0.01, 0.2, 0.3], "holds from step 10 on"),
    (["inconclusive", "inconclusive", "supported"], [0.01, 0.02, 0.3], "holds only at the end"),
    (["supported", "inconclusive", "contradicted"], [0.2, 0.0, -0.3], "holds at step 0 only, not at the end"),
    (["contradicted", "inconclusive", "supported"], [-0.2, -0.01, 0.3],
     "holds only at the end; the effect changes sign at step 20"),
    (["inconclusive"] * 3, [0.01, -0.01, 0.01], "does not hold at any step measured; the effect changes sign at step 20"),
    (["supported", "inconclusive"] * 3, [0.2, 0.01] * 3, "holds at steps 0, 20, 40 only, not at the end"),
    (["supported", "supported", "inconclusive"] * 2, [0.2, 0.2, 0.01] * 2, "holds at 4 of 6 steps measured, not at the end"),
])
def test_budget_curve_in_words(verdicts_by_epoch, effects, expected):
    from suite.core.analysis import describe_curve

    rows = [{"epoch": e, "steps": 10 * e, "effect": effect, "ci": [None, None], "verdict": verdict}
            for e, (verdict, effect) in enumerate(zip(verdicts_by_epoch, effects))]
    assert describe_curve(rows) == expected


def _curve(reached_at: int | None, ends=(16, 32, 48, 64, 80, 96, 112, 128)) -> dict:
    """A step curve whose training accuracy first reaches 0.8 at `reached_at` (None: never)."""
    accuracy = [0.9 if reached_at is not None and end >= reached_at else 0.5 for end in ends]
    return {"ends": list(ends), "window": 16, "train_accuracy": accuracy, "train_loss": [1.0] * len(ends)}


def test_time_to_target_drops_seeds_where_neither_side_reached_it():
    """Censoring: both sides never reaching the target would read as a ratio of 1 (equally fast) and push
    the verdict towards `equivalent`; it says nothing about which is faster, so that seed is dropped."""
    claim = Claim(id="C", text="a reaches 80% sooner", metric="steps_to_target", better={"init": "a"},
                  worse={"init": "b"}, direction="lower", target={"metric": "train_accuracy", "value": 0.8},
                  ratio=1.0, margin=1.25)
    study = _study([claim], tuned=False)
    times = {"a": [32, 48, 64, None], "b": [96, 128, None, None]}
    records = [{**_record(arm, 0.1, seed, 0.8), "step_curve": _curve(at)} for arm in times
               for seed, at in enumerate(times[arm])]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    assert verdict.n == 3 and [p["seed"] for p in verdict.pairs] == [0, 1, 2]
    assert "1 of 4 seeds dropped: neither side reached the target" in verdict.reason
    assert "on 1 seed one side never reached the target" in verdict.reason
    # seed 2: a reached at 64, b censored at 128 + 16 = 144; the ratio is a bound below the truth
    assert verdict.pairs[2] == {"seed": 2, "better": 64.0, "worse": 144.0}
    assert verdict.effect == pytest.approx(math.log(96 / 32) / 3 + math.log(128 / 48) / 3 + math.log(144 / 64) / 3)


def test_checkpoint_selection_picks_each_seeds_best_rate_and_epoch_on_validation():
    """D2-dev: each seed's dev set chooses among every rate and every epoch's checkpoint, and the claim
    reads the test score of the checkpoint it chose, never choosing on test."""
    claim = Claim(id="C", text="a's dev set picks better", metric="test_accuracy", better={"init": "a"},
                  worse={"init": "b"}, selection="per_seed_checkpoint")
    study = _study([claim])

    def history(vals, tests):
        return [{"epoch": 0}] + [{"epoch": e + 1, "val_accuracy": v, "test_accuracy": t}
                                 for e, (v, t) in enumerate(zip(vals, tests))]

    records = []
    for seed in range(2):
        # a's dev set peaks at epoch 1 of lr 0.1 (test 0.7); b's at epoch 2 of lr 0.01 (test 0.9 - seed / 10)
        records += [_record("a", 0.1, seed, 0.6, history=history([0.9, 0.5], [0.7, 0.6])),
                    _record("a", 0.01, seed, 0.8, history=history([0.4, 0.6], [0.95, 0.8])),
                    _record("b", 0.1, seed, 0.6, history=history([0.5, 0.5], [0.99, 0.99])),
                    _record("b", 0.01, seed, 0.9 - seed / 10, history=history([0.6, 0.7], [0.5, 0.9 - seed / 10]))]
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    epochs = frames.epochs_frame(records, study)
    assert analysis.claim_values(claim, claim.better, trials, epochs).round(3).tolist() == [0.7, 0.7]
    assert analysis.claim_values(claim, claim.worse, trials, epochs).round(3).tolist() == [0.9, 0.8]
    verdict = analysis.judge_claim(claim, trials, epochs)
    assert [round(p["better"] - p["worse"], 3) for p in verdict.pairs] == [-0.2, -0.1]
    # a budget curve's point at epoch 1 chooses among epoch 1's checkpoints only: b's dev set then picks lr 0.01
    curve = analysis.judge_by_epoch(claim, trials, epochs)
    assert [(row["epoch"], round(row["effect"], 3)) for row in curve] == [(1, 0.2), (2, -0.15)]
    # no epochs stored (every trial failed before training): no value, no error
    assert analysis.claim_values(claim, claim.better, trials, epochs.iloc[0:0]).empty


def test_per_seed_selection_picks_each_seeds_best_tuned_value():
    """D2-dev: a claim about the selection itself chooses the tuned value per seed on that seed's validation
    score; pooled selection would pick one rate for every seed, a difference without spread."""
    claim = Claim(id="C", text="a's dev set picks better", metric="test_accuracy", better={"init": "a"},
                  worse={"init": "b"}, selection="per_seed")
    study = _study([claim])
    # test accuracy per (init, lr, seed); validation scores make each seed pick a different rate
    records = []
    for seed, (a_pick, b_pick) in enumerate([(0.1, 0.01), (0.01, 0.1), (0.1, 0.1)]):
        for init, pick in (("a", a_pick), ("b", b_pick)):
            for lr, test in ((0.1, 0.8 + seed / 100), (0.01, 0.7 + seed / 100)):
                records.append(_record(init, lr, seed, test, val=0.9 if lr == pick else 0.5))
    trials = frames.mark_selected(frames.trials_frame(records, study), study)
    per_seed = analysis.claim_values(claim, claim.better, trials, frames.epochs_frame(records, study))
    assert per_seed.round(3).tolist() == [0.8, 0.71, 0.82]
    verdict = analysis.judge_claim(claim, trials, frames.epochs_frame(records, study))
    assert [round(p["better"] - p["worse"], 3) for p in verdict.pairs] == [0.1, -0.1, 0.0]


def test_an_arms_step_time_averages_the_trials_timed_alone_where_it_has_any():
    """Seeds run after an arm's timing claims stopped share the machine: their step times would
    raise the arm's mean, so the tables average those timed alone."""
    import pandas as pd

    trials = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 2, "selected": True, "status": "ok",
                           "step_seconds": [0.010, 0.012, 0.030, 0.020, 0.022],
                           "timed_alone": [True, True, None, None, None]})
    summary = frames.arm_summary(trials, metrics=("step_seconds",)).set_index("arm")["step_seconds"]
    assert summary["a"] == pytest.approx(0.011)  # the shared seed's 30 ms left out
    assert summary["b"] == pytest.approx(0.021)  # no trial timed alone: all of them

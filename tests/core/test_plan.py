from suite.core import loader, plan


def test_plan_expands_arms_tuning_and_seeds(studies_dir):
    study = loader.load_study(studies_dir / "tiny.yaml")
    trials = plan.plan_trials(study, study.profiles["quick"], "fp")
    assert len(trials) == 2 * 2 * 2  # arms x learning rates x seeds
    assert len({t.key for t in trials}) == len(trials)
    assert {t.config["learning_rate"] for t in trials} == {0.1, 0.05}
    assert all(t.config["epochs"] == 2 and t.config["train_examples"] == 512 for t in trials)


def test_keys_are_stable_and_hold_no_paths(tmp_path, studies_dir, tiny_study_dict):
    from conftest import write_study

    study = loader.load_study(studies_dir / "tiny.yaml")
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    moved = loader.load_study(write_study(other_dir, tiny_study_dict))
    keys = [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "fp")]
    assert keys == [t.key for t in plan.plan_trials(moved, moved.profiles["smoke"], "fp")]
    assert keys != [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "other-data")]


def test_profile_name_is_not_in_the_key_but_the_budget_is(studies_dir):
    study = loader.load_study(studies_dir / "tiny.yaml")
    smoke = study.profiles["smoke"]
    same_budget = loader.Profile("renamed", train_examples=smoke.train_examples, epochs=smoke.epochs, seeds=smoke.seeds)
    smoke = [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "fp")]
    assert smoke == [t.key for t in plan.plan_trials(study, same_budget, "fp")]
    assert set(smoke).isdisjoint(t.key for t in plan.plan_trials(study, study.profiles["quick"], "fp"))


def test_seeds_override(studies_dir):
    study = loader.load_study(studies_dir / "tiny.yaml")
    assert len(plan.plan_trials(study, study.profiles["smoke"], "fp", seeds=3)) == 2 * 2 * 3


def test_a_claim_may_ask_more_seeds_for_the_arms_it_compares(tmp_path, tiny_study_dict):
    from conftest import write_study

    tiny_study_dict["factors"]["activation"] = ["relu", "tanh"]
    tiny_study_dict["claims"][0].update(better={"kernel_initializer": "he_normal", "activation": "relu"},
                                        worse={"kernel_initializer": "normal_0.01", "activation": "relu"}, seeds=5)
    study = loader.load_study(write_study(tmp_path, tiny_study_dict))

    def seeds_per_arm(profile, seeds=None):
        trials = plan.plan_trials(study, study.profiles[profile], "fp", seeds=seeds)
        per_arm = {}
        for t in trials:
            per_arm.setdefault(t.arm_label, set()).add(t.seed)
        return {arm: len(s) for arm, s in per_arm.items()}

    # quick runs 2 seeds; the claim's two arms run 5 (per tuned value), the others keep 2
    assert seeds_per_arm("quick") == {"he_normal / relu": 5, "he_normal / tanh": 2,
                                      "normal_0.01 / relu": 5, "normal_0.01 / tanh": 2}
    assert seeds_per_arm("quick", seeds=7) == dict.fromkeys(seeds_per_arm("quick"), 7)  # more than asked: all get it
    assert set(seeds_per_arm("smoke").values()) == {1}  # a one-seed run judges nothing and stays small
    # the extra seeds are extra trials: the profile's own trials keep their keys
    (tmp_path / "plain").mkdir()
    plain = loader.load_study(write_study(tmp_path / "plain", {**tiny_study_dict, "claims": [
        {k: v for k, v in c.items() if k != "seeds"} for c in tiny_study_dict["claims"]]}))
    assert {t.key for t in plan.plan_trials(plain, plain.profiles["quick"], "fp")} < \
        {t.key for t in plan.plan_trials(study, study.profiles["quick"], "fp")}


def test_a_probe_that_measures_differently_changes_the_trial_keys():
    from suite.core.plan import probe_identity

    assert probe_identity("activation_stats") == "activation_stats@2"  # registered with version=2
    assert probe_identity("architecture_stats") == "architecture_stats"  # version 1: keys as before


def test_packs_are_fixed_by_the_plan_and_timing_claims_train_alone():
    """Packs group trials that differ only in value settings (here seeds, learning rates and the
    ReLU arms' initialisers); the arms a step-time claim compares (A9: sigmoid vs ReLU/Glorot,
    A9b: ELU) train alone, so each seed's step time is its own measurement, not a pack's."""
    from suite.core.packs import PACK_SIZE, Pack, form_packs, trials_of

    study = loader.load_study(loader.find_study_path("activation"))
    trials = plan.plan_trials(study, study.profiles["quick"], "fp")
    units = form_packs(trials, study=study)
    assert sorted(t.key for unit in units for t in trials_of(unit)) == sorted(t.key for t in trials)
    alone = [unit for unit in units if not isinstance(unit, Pack)]
    packs = [unit for unit in units if isinstance(unit, Pack)]
    timed = {(t.arm["activation"], t.arm["kernel_initializer"]) for t in alone if t.arm["activation"] in
             ("sigmoid", "relu", "elu")}
    assert timed == {("sigmoid", "glorot_uniform"), ("relu", "glorot_uniform"), ("elu", "glorot_uniform")}
    assert all(len({t.config["activation"] for t in pack.trials}) == 1 and pack.size <= PACK_SIZE for pack in packs)
    assert any(t.arm == {"activation": "relu", "kernel_initializer": "he_normal"} for p in packs for t in p.trials)
    # the same plan forms the same packs; without the study every packable trial may pack
    assert [u.key for u in form_packs(trials, study=study)] == [u.key for u in units]
    assert len([u for u in form_packs(trials) if isinstance(u, Pack)]) > len(packs)


def test_a_trial_read_at_evaluation_sees_its_own_dev_scores_or_none():
    trial = plan.Trial(key="k", study="s", arm={"share": 0.0, "dev": "source"}, tuning={}, seed=0, config={},
                       probes=(), evaluated_at={"dev": "source"})
    record = {"key": "k", "arm": {"share": 0.0}, "status": "ok",
              "final": {"val_accuracy": 0.9, "test_accuracy": 0.7, "dev_test_gap": 0.2},
              "history": [{"epoch": 1, "val_accuracy": 0.9, "loss": 1.0}],
              "evaluations": {"dev": {"history": "target", "levels": {
                  "target": {"val_accuracy": 0.9, "val_loss": 0.3, "dev_test_gap": 0.2},
                  "source": {"val_accuracy": 0.8, "val_loss": 0.5, "dev_test_gap": 0.1}}}}}
    seen = trial.view(record)
    assert seen["key"] == "k@dev=source" and seen["arm"] == trial.arm
    assert seen["final"] == {"val_accuracy": 0.8, "val_loss": 0.5, "test_accuracy": 0.7, "dev_test_gap": 0.1}
    assert seen["history"] == [{"epoch": 1, "loss": 1.0}]  # the history scored the target's dev set
    per_epoch = {"source": [{"epoch": 1, "val_accuracy": 0.8, "val_loss": 0.5}]}  # each checkpoint on the source's
    record["evaluations"]["dev"]["epochs"] = per_epoch
    assert trial.view(record)["history"] == [{"epoch": 1, "loss": 1.0, "val_accuracy": 0.8, "val_loss": 0.5}]
    failed = trial.view({**record, "evaluations": {}, "status": "error"})  # ended before it was scored
    assert "val_accuracy" not in failed["final"] and failed["final"]["test_accuracy"] == 0.7
    untouched = plan.Trial(key="k", study="s", arm={}, tuning={}, seed=0, config={}, probes=())
    assert untouched.view(record) is record


def test_a_claim_about_the_selection_keeps_every_tuned_value_on_the_judging_seeds():
    """Tune-then-judge freezes each arm's rate; D2-dev judges the choice itself, so its arms' judging
    seeds run every rate for each seed's dev set to choose among (the other arms run their frozen one)."""
    study = loader.load_study(loader.STUDIES_DIR / "split.yaml")
    profile = study.profiles["standard"]
    chosen = {plan.arm_label(arm, study.factors): {"learning_rate": 0.001} for arm in study.list_arms(profile)}
    trials = plan.plan_trials(study, profile, "fp", first_seed=2, chosen=chosen, budget_check=False)
    rates = {}
    for t in trials:
        rates.setdefault(t.arm["target_share"], set()).add(t.tuning["learning_rate"])
    assert rates[0.0] == {0.003, 0.001, 0.0003}  # the nets D2-dev compares
    assert rates[0.1] == rates[0.5] == rates[1.0] == {0.001}
    # at half the budget (the budget check of D2-shift and D2-mix, which share the arm) the rate stays frozen
    half = plan.plan_trials(study, profile, "fp", first_seed=2, chosen=chosen)
    assert {t.tuning["learning_rate"] for t in half if t.half_budget} == {0.001}

from suite import plan, spec


def test_plan_expands_arms_tuning_and_seeds(studies_dir):
    study = spec.load_study(studies_dir / "tiny.yaml")
    trials = plan.plan_trials(study, study.profiles["quick"], "fp")
    assert len(trials) == 2 * 2 * 2  # arms x learning rates x seeds
    assert len({t.key for t in trials}) == len(trials)
    assert {t.config["learning_rate"] for t in trials} == {0.1, 0.05}
    assert all(t.config["epochs"] == 2 and t.config["train_examples"] == 512 for t in trials)


def test_keys_are_stable_and_hold_no_paths(tmp_path, studies_dir, tiny_study_dict):
    from conftest import write_study

    study = spec.load_study(studies_dir / "tiny.yaml")
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    moved = spec.load_study(write_study(other_dir, tiny_study_dict))
    keys = [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "fp")]
    assert keys == [t.key for t in plan.plan_trials(moved, moved.profiles["smoke"], "fp")]
    assert keys != [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "other-data")]


def test_profile_name_is_not_in_the_key_but_the_budget_is(studies_dir):
    study = spec.load_study(studies_dir / "tiny.yaml")
    same_budget = spec.Profile("renamed", **{k: getattr(study.profiles["smoke"], k) for k in spec.PROFILE_KEYS})
    smoke = [t.key for t in plan.plan_trials(study, study.profiles["smoke"], "fp")]
    assert smoke == [t.key for t in plan.plan_trials(study, same_budget, "fp")]
    assert set(smoke).isdisjoint(t.key for t in plan.plan_trials(study, study.profiles["quick"], "fp"))


def test_seeds_override(studies_dir):
    study = spec.load_study(studies_dir / "tiny.yaml")
    assert len(plan.plan_trials(study, study.profiles["smoke"], "fp", seeds=3)) == 2 * 2 * 3

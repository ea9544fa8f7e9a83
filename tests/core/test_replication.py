"""Seed blocks (--first-seed), confirmation runs (--confirm) and their comparison on the report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import write_study

from suite import cli
from suite.core import frames, loader
from suite.core.replication import SeedBlock, agreement, chosen_tuning, note_block, stored_blocks


def _study(tmp_path, study_dict):
    directory = tmp_path / "studies"
    directory.mkdir(exist_ok=True)
    study_dict["profiles"]["quick"] = {"train_examples": 256, "epochs": 1, "seeds": 2}
    return loader.load_study(write_study(directory, study_dict)), directory


def test_a_block_plans_its_own_seeds_and_a_confirmation_the_next_disjoint_ones(tmp_path, tiny_study_dict):
    tiny_study_dict["claims"][0]["seeds"] = 3  # the claim's arms run more seeds than the profile's 2
    study, _ = _study(tmp_path, tiny_study_dict)
    profile = study.profiles["quick"]
    block = SeedBlock("quick", "tensorflow", first=100, confirm=True)
    tuning = block.trials(study, profile, "fp")
    assert {t.seed for t in tuning} == {100, 101, 102}
    chosen = {label: {"learning_rate": 0.05} for label in ("he_normal / relu", "normal_0.01 / relu")}
    confirming = block.confirmation_trials(study, profile, "fp", chosen)
    assert {t.seed for t in confirming} == {103, 104, 105}  # after every seed any arm used
    assert {t.tuning["learning_rate"] for t in confirming} == {0.05} and len(confirming) == 2 * 3
    # the same value and seed is the same trial, whichever run planned it
    block_103 = SeedBlock("quick", "tensorflow", first=103).trials(study, profile, "fp")
    assert {t.key for t in confirming} <= {t.key for t in block_103}
    assert block.label(study, profile) == "seeds 103-105 (values tuned on seeds 100-102)"


def test_chosen_values_are_plain_json_so_keys_match(tmp_path, tiny_study_dict):
    study, _ = _study(tmp_path, tiny_study_dict)
    records = [{"key": f"{arm}{lr}{seed}", "arm": {"kernel_initializer": arm, "activation": "relu"},
                "tuning": {"learning_rate": lr}, "seed": seed, "status": "ok",
                "final": {"val_accuracy": (0.9 if lr == 0.05 else 0.5) if arm == "he_normal" else 0.3}}
               for arm in ("he_normal", "normal_0.01") for lr in (0.1, 0.05) for seed in (0, 1)]
    chosen = chosen_tuning(study, records)
    assert chosen == {"he_normal / relu": {"learning_rate": 0.05}, "normal_0.01 / relu": {"learning_rate": 0.1}}
    assert all(type(v["learning_rate"]) is float for v in chosen.values())


def test_judge_seeds_select_only_the_fresh_trials_and_the_others_choose(tmp_path, tiny_study_dict):
    study, _ = _study(tmp_path, tiny_study_dict)
    rows = [{"key": f"k{arm}{lr}{seed}", "arm": arm, "kernel_initializer": arm, "activation": "relu",
             "tuned_learning_rate": lr, "seed": seed, "status": "ok",
             # seeds 0-1 prefer 0.05; the fresh seeds 2-3 would prefer 0.1: they must not choose
             "val_accuracy": (0.9 if lr == 0.05 else 0.5) if seed < 2 else (0.9 if lr == 0.1 else 0.1)}
            for arm in ("he_normal", "normal_0.01") for lr in (0.1, 0.05) for seed in range(4)
            if seed < 2 or lr == 0.05]
    selected = frames.mark_selected(pd.DataFrame(rows), study, judge_seeds={2, 3})
    assert set(selected.loc[selected["selected"], "seed"]) == {2, 3}
    assert set(selected.loc[selected["selected"], "tuned_learning_rate"]) == {0.05}


def test_a_value_chosen_at_the_edge_of_its_grid_is_flagged(tmp_path, tiny_study_dict):
    tiny_study_dict["training"]["learning_rate"] = [0.3, 0.1, 0.03]
    study, _ = _study(tmp_path, tiny_study_dict)
    table = pd.DataFrame({"arm": ["a", "a", "a", "b", "b", "b"], "tuned_learning_rate": [0.3, 0.1, 0.03] * 2,
                          "chosen": [True, False, False, False, True, False]})
    assert frames.tuned_at_edge(table, study) == {"a": ["learning_rate"]}


def test_agreement_counts_only_claims_decided_in_both():
    this = {"A": "supported", "B": "contradicted", "C": "inconclusive", "D": "supported"}
    other = {"A": "supported", "B": "supported", "C": "supported", "D": "inconclusive"}
    assert agreement(this, other) == {"decided_both": 2, "agree": 1, "flips": ["B"]}


def test_blocks_are_noted_once_each_and_filtered(tmp_path):
    first, second = SeedBlock("quick", "tensorflow", 0), SeedBlock("quick", "tensorflow", 100)
    for block in (first, second, first, SeedBlock("full", "jax", 0)):
        note_block(tmp_path, block)
    assert stored_blocks(tmp_path, "quick", "tensorflow") == [second, first]
    (tmp_path / "blocks.jsonl").write_text("not json\n")
    assert stored_blocks(tmp_path) == []  # unreadable: no comparison, never a crash


def _args(tmp_path, directory, *extra):
    return ["--study", "tiny", "--studies-dir", str(directory), "--results", str(tmp_path / "results"),
            "--out", str(tmp_path / "reports"), "--executor", "inline", "--quiet", "--profile", "quick", *extra]


@pytest.mark.slow
def test_two_blocks_and_a_confirmation_are_compared_on_the_report(tmp_path, tiny_study_dict, capsys):
    _, directory = _study(tmp_path, tiny_study_dict)
    summary_path = tmp_path / "reports" / "tiny" / "summary.json"
    assert cli.main(_args(tmp_path, directory)) == 0
    assert json.loads(summary_path.read_text())["replication"] == []
    assert cli.main(_args(tmp_path, directory, "--first-seed", "100")) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["seed_block"] == "seeds 100-101"
    assert [r["label"] for r in summary["replication"]] == ["seeds 0-1"]
    assert {"agree", "decided_both", "flips", "verdicts"} <= set(summary["replication"][0])

    capsys.readouterr()
    assert cli.main(_args(tmp_path, directory, "--confirm")) == 0
    assert "ran 0 trials, reused 8" in capsys.readouterr().err  # the tuning run is block 0, stored
    summary = json.loads(summary_path.read_text())
    assert summary["confirmation"] and summary["seed_block"] == "seeds 2-3 (values tuned on seeds 0-1)"
    assert [r["label"] for r in summary["replication"]] == ["tuning run, seeds 0-1", "seeds 100-101"]
    assert all(c["n"] == 2 for c in summary["claims"])  # judged on the two fresh seeds only
    html = (tmp_path / "reports" / "tiny" / "index.html").read_text()
    assert "<h2>Replication</h2>" in html and "tuning run, seeds 0-1" in html
    assert cli.main(_args(tmp_path, directory, "--first-seed", "-1")) == 2


@pytest.mark.slow
def test_the_standard_profile_tunes_then_judges_in_looks_and_a_report_of_stored_trials_agrees(
        tmp_path, tiny_study_dict, capsys):
    tiny_study_dict["profiles"]["standard"]["tune_seeds"] = 1
    _, directory = _study(tmp_path, tiny_study_dict)
    args = [a if a != "quick" else "standard" for a in _args(tmp_path, directory)]
    assert cli.main(args) == 0
    summary_path = tmp_path / "reports" / "tiny" / "summary.json"
    summary = json.loads(summary_path.read_text())
    # tuned on seed 0 (the grid of 2 rates), judged from seed 1 in looks of 2, then 3 seeds
    assert summary["seed_block"] == "seeds 1-3, in looks of 2/3 seeds (values tuned on seed 0)"
    for claim in summary["claims"]:
        looked = claim["sequential"]
        assert looked["looks"] == [2, 3] and claim["n"] == looked["seeds"]
        assert looked["stop"] in ("decided", "futile", "last look")
    capsys.readouterr()
    assert cli.main([*args, "--report-only"]) == 0
    again = json.loads(summary_path.read_text())
    assert [(c["id"], c["verdict"], c["n"]) for c in again["claims"]] == \
        [(c["id"], c["verdict"], c["n"]) for c in summary["claims"]]

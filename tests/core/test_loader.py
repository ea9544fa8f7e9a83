"""Study-file validation: every kind of bad input exits 2, names file and field, trains nothing."""

import pytest
from conftest import REPO, write_study

from suite import cli
from suite.core import loader, schema


def _mutate(study: dict, change) -> dict:
    change(study)
    return study


# (id, change to the tiny study, text the message must contain)
BAD_STUDIES = [
    ("unknown top-level key", lambda s: s.update(epochs=3), "epochs: unknown field"),
    ("unknown factor", lambda s: s["factors"].update(colour=["red"]), "factors.colour: unknown factor"),
    ("unknown activation", lambda s: s["factors"].update(activation=["relu", "swishy"]),
     "factors.activation[1]: unknown activation 'swishy'; known:"),
    ("unknown initializer", lambda s: s["factors"].update(kernel_initializer=["he_normal", "he_abnormal"]),
     "factors.kernel_initializer[1]: unknown initializer"),
    ("unknown optimizer", lambda s: s["training"].update(optimizer="sgdd"), "training.optimizer: unknown optimizer"),
    ("unknown dataset", lambda s: s.update(dataset="imagenet"), "dataset: unknown dataset 'imagenet'"),
    ("unknown model family", lambda s: s["model"].update(family="transformer"), "model.family: unknown model"),
    ("unknown probe", lambda s: s.update(probes=["xray"]), "probes[0]: unknown probe"),
    ("wrong type", lambda s: s["model"].update(depth="five"), "model.depth: input should be a valid integer, got 'five'"),
    ("wrong type for factors", lambda s: s.update(factors=["relu"]), "factors: input should be a valid dictionary"),
    ("empty grid", lambda s: s["factors"].update(activation=[]), "factors.activation: empty list"),
    ("negative epochs", lambda s: s["profiles"]["quick"].update(epochs=-1),
     "profiles.quick.epochs: input should be greater than 0, got -1"),
    ("zero seeds", lambda s: s["profiles"]["smoke"].update(seeds=0), "profiles.smoke.seeds"),
    ("missing profile", lambda s: s["profiles"].pop("full"), "profiles.full: required profile is missing"),
    ("missing field", lambda s: s.pop("question"), "question: required field is missing"),
    ("name differs from file", lambda s: s.update(name="other"), "name: 'other' must equal the file name 'tiny'"),
    ("claim names a missing level", lambda s: s["claims"][0]["better"].update(kernel_initializer="zeros"),
     "claims[0].better.kernel_initializer: no arm has kernel_initializer='zeros'"),
    ("claim names a missing factor", lambda s: s["claims"][0]["worse"].update(depth=3),
     "claims[0].worse.depth: not a factor"),
    ("duplicate claim id", lambda s: s["claims"][1].update(id="T1"), "claims[1].id: duplicate claim id"),
    ("unknown metric", lambda s: s["claims"][0].update(metric="f1"), "claims[0].metric: unknown metric 'f1'"),
    ("probe metric without the probe", lambda s: s.update(probes=[]), "claims[1].metric: unknown metric"),
    ("negative claim epoch", lambda s: s["claims"][1].update(epoch=-2), "claims[1].epoch"),
    ("zero claim seeds", lambda s: s["claims"][0].update(seeds=0), "claims[0].seeds: input should be greater than 0, got 0"),
    ("same arms on both sides", lambda s: s["claims"][0].update(worse={"kernel_initializer": "he_normal"}),
     "select the same arms"),
    ("empty tuning list", lambda s: s["training"].update(learning_rate=[]), "training.learning_rate: an empty list"),
    ("negative learning rate", lambda s: s["training"].update(learning_rate=[0.1, -0.1]),
     "training.learning_rate[1]: input should be greater than 0, got -0.1"),
    # the list: each exits 2 naming the field, before anything trains
    ("a setting the model family does not take", lambda s: s["model"].update(stem_stride=2),
     "model.stem_stride: is not used by anything in arm 'he_normal / relu' (procedure standard reads"),
    ("a factor the model family does not take", lambda s: s.update(model={"family": "plain_net", "depth": 8}) or
     s["factors"].update(dropout=[0.0, 0.5]), "factors.dropout: is not used by anything in arm"),
    ("a setting the procedure does not take", lambda s: s["training"].update(labels_per_class=10),
     "training.labels_per_class: is not used by anything in arm"),
    ("a boolean where a count belongs", lambda s: s["profiles"]["smoke"].update(seeds=True),
     "profiles.smoke.seeds: input should be a valid integer, got True"),
    ("a float epoch count", lambda s: s["profiles"]["quick"].update(epochs=2.5),
     "profiles.quick.epochs: input should be a valid integer, got 2.5"),
    ("a NaN learning rate", lambda s: s["training"].update(learning_rate=[0.1, float("nan")]),
     "training.learning_rate[1]: input should be a finite number"),
    ("a boolean learning rate", lambda s: s["training"].update(learning_rate=True),
     "training.learning_rate: input should be a valid number, got True"),
    ("probes a procedure does not run", lambda s: s["training"].update(procedure="regression", loss="mse",
                                                                     outlier_fraction=0.1, logistic_learning_rate=0.1),
     "probes: procedure regression runs no probes"),
    ("a claim without a margin", lambda s: s["claims"][0].pop("margin"), "claims[0].margin: required field is missing"),
    ("a margin without its reason", lambda s: s["claims"][0].pop("margin_reason"),
     "claims[0].margin_reason: required field is missing"),
    ("a claim without the budget it needs", lambda s: s["claims"][0].pop("needs"),
     "claims[0].needs: required field is missing"),
    ("an unknown test", lambda s: s["claims"][0].update(test="bigger"), "claims[0].test: input should be 'superior',"),
    ("a ratio margin that is not a factor", lambda s: s["claims"][0].update(ratio=2, margin=0.5),
     "claims[0].margin: for a ratio claim the margin is a factor > 1"),
    ("a string where a mapping belongs", lambda s: s["profiles"].update(quick="fast"),
     "profiles.quick: input should be a valid dictionary"),
]


@pytest.mark.parametrize("case, change, expected", BAD_STUDIES, ids=[c[0] for c in BAD_STUDIES])
def test_bad_study_exits_2_naming_the_field(tmp_path, tiny_study_dict, case, change, expected, capsys):
    directory = tmp_path / "studies"
    directory.mkdir()
    path = write_study(directory, _mutate(tiny_study_dict, change), name="tiny")
    results = tmp_path / "results"
    code = cli.main(["--study", "tiny", "--studies-dir", str(directory), "--results", str(results),
                     "--out", str(tmp_path / "reports"), "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err and expected in err
    assert not results.exists()  # nothing was trained or stored


def test_every_problem_of_a_file_comes_at_once(tmp_path, tiny_study_dict, capsys):
    tiny_study_dict["model"]["stem_stride"] = 2
    tiny_study_dict["profiles"]["smoke"]["seeds"] = True
    tiny_study_dict["training"]["optimizer"] = "sgdd"
    tiny_study_dict["claims"][0]["metric"] = "f1"
    directory = tmp_path / "studies"
    directory.mkdir()
    write_study(directory, tiny_study_dict)
    with pytest.raises(loader.SpecError) as err:
        loader.load_study(directory / "tiny.yaml")
    # structure first: a file whose types are wrong is not checked further, so fix those, then the rest
    assert [where for where, _ in err.value.problems] == ["profiles.smoke.seeds"]
    tiny_study_dict["profiles"]["smoke"]["seeds"] = 1
    write_study(directory, tiny_study_dict)
    with pytest.raises(loader.SpecError) as err:
        loader.load_study(directory / "tiny.yaml")
    wheres = [where for where, _ in err.value.problems]
    assert {"model.stem_stride", "training.optimizer", "claims[0].metric"} <= set(wheres)
    assert "3 problems" in str(err.value) or f"{len(wheres)} problems" in str(err.value)


def test_bytes_that_are_not_utf8_exit_2(tmp_path, capsys):
    directory = tmp_path / "studies"
    directory.mkdir()
    (directory / "tiny.yaml").write_bytes(b"name: tiny\ntitle: caf\xe9\n")
    results = tmp_path / "results"
    assert cli.main(["--study", "tiny", "--studies-dir", str(directory), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert str(directory / "tiny.yaml") in err and "is not UTF-8 text (byte 21 is 0xe9)" in err
    assert not results.exists()


@pytest.mark.parametrize("text, expected", [
    ("name: tiny\n  title: [unclosed", "yaml: not valid YAML"),
    ("- just\n- a list\n", "must be a mapping of fields"),
    ("name: tiny\nname: tiny\n", "duplicate key 'name'"),
])
def test_malformed_yaml_exits_2(tmp_path, text, expected, capsys):
    directory = tmp_path / "studies"
    directory.mkdir()
    (directory / "tiny.yaml").write_text(text)
    assert cli.main(["--study", "tiny", "--studies-dir", str(directory), "--results", str(tmp_path / "r")]) == 2
    assert expected in capsys.readouterr().err


def test_unknown_study_lists_known_ones(studies_dir, capsys):
    assert cli.main(["--study", "nosuch", "--studies-dir", str(studies_dir)]) == 2
    err = capsys.readouterr().err
    assert "no study named 'nosuch'" in err and "tiny" in err


def test_unknown_profile_exits_2(studies_dir, capsys):
    assert cli.main(["--study", "tiny", "--profile", "huge", "--studies-dir", str(studies_dir)]) == 2
    assert "has no profile 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize("path", loader.list_study_paths(REPO / "studies"), ids=lambda p: p.stem)
def test_every_shipped_study_is_valid(path):
    study = loader.load_study(path)
    assert study.name == path.stem
    assert study.list_arms() and study.claims
    assert set(loader.PROFILE_NAMES) <= set(study.profiles)


def test_arms_and_selectors(tiny_study_dict, studies_dir):
    study = loader.load_study(studies_dir / "tiny.yaml")
    arms = study.list_arms()
    assert arms == [{"kernel_initializer": "he_normal", "activation": "relu"},
                    {"kernel_initializer": "normal_0.01", "activation": "relu"}]
    assert loader.matches(arms[0], {"kernel_initializer": ["he_normal", "zeros"]})
    assert not loader.matches(arms[1], {"kernel_initializer": "he_normal"})
    assert study.tuned == {"learning_rate": [0.1, 0.05]}


def test_profile_may_change_dataset_and_factor_levels(studies_dir, tiny_study_dict, tmp_path):
    tiny_study_dict["profiles"]["full"].update(dataset="fashion_mnist",
                                               factors={"kernel_initializer": ["he_normal", "normal_0.01", "zeros"]})
    directory = tmp_path / "s2"
    directory.mkdir()
    study = loader.load_study(write_study(directory, tiny_study_dict))
    assert study.dataset_for(study.profiles["full"]) == "fashion_mnist"
    assert study.dataset_for(study.profiles["quick"]) == "synthetic"
    assert len(study.list_arms(study.profiles["full"])) == 3 and len(study.list_arms()) == 2


def test_profile_may_exclude_cells(tmp_path, tiny_study_dict):
    tiny_study_dict["factors"]["activation"] = ["relu", "tanh"]
    tiny_study_dict["profiles"]["quick"]["exclude"] = [{"kernel_initializer": "normal_0.01", "activation": "tanh"}]
    directory = tmp_path / "s3"
    directory.mkdir()
    study = loader.load_study(write_study(directory, tiny_study_dict))
    quick = study.list_arms(study.profiles["quick"])
    assert len(quick) == 3 and {"kernel_initializer": "normal_0.01", "activation": "tanh"} not in quick
    assert len(study.list_arms(study.profiles["full"])) == 4


@pytest.mark.parametrize("change, expected", [
    (lambda s: s["profiles"]["full"].update(factors={"kernel_initializer": ["zeros"]}),
     "claims[0].better: selects no arm of profile 'full'"),
    (lambda s: s["profiles"]["full"].update(factors={"depth": [2]}), "profiles.full.factors.depth: a profile may only"),
    (lambda s: s["profiles"]["full"].update(dataset="imagenet"), "profiles.full.dataset: unknown dataset"),
    (lambda s: s["profiles"]["standard"].update(looks=[2, 8, 4]), "profiles.standard.looks: needs two or more rising"),
    (lambda s: s["profiles"]["standard"].update(looks=[3, 8]), "profiles.standard.looks: the first look is the profile's"),
    (lambda s: s["profiles"]["quick"].update(spending="pocock"), "profiles.quick.spending: spends alpha over looks"),
    (lambda s: s["profiles"]["standard"].update(spending="linear"), "profiles.standard.spending"),
    (lambda s: s.update(training={**s["training"], "learning_rate": 0.1}) or s["profiles"]["standard"].update(tune_seeds=1),
     "profiles.standard.tune_seeds: nothing in `training` is tuned"),
    (lambda s: s["profiles"].pop("standard"), "profiles.standard: required profile is missing"),
    (lambda s: s["profiles"]["quick"].update(exclude=[{"width": 3}]), "profiles.quick.exclude[0].width: not a factor"),
    (lambda s: s["profiles"]["quick"].update(exclude=[{"activation": "elu"}]), "no arm has activation='elu'"),
    (lambda s: s["profiles"]["quick"].update(exclude=[{"kernel_initializer": "he_normal"}]),
     "claims[0].better: selects no arm of profile 'quick'"),
    (lambda s: s["claims"][0].update(than=0.5), "needs exactly one of `worse`"),
    (lambda s: s["claims"][0].update(metric="epochs_to_target"), "claims[0].target: must be a mapping"),
    (lambda s: s["claims"][0].update(metric="epochs_to_target", target={"metric": "test_accuracy", "value": 0.5}),
     "claims[0].target.metric: must be one of"),
    (lambda s: s["claims"][0].update(metric="steps_to_target", target={"metric": "val_accuracy", "value": 0.5}),
     "claims[0].target.metric: must be one of train_accuracy, train_loss"),
    (lambda s: s.update(not_judged=[{"id": "T1", "text": "x", "reason": "y"}]), "is also listed under `claims`"),
    (lambda s: s.update(not_judged=[{"id": "X1", "text": "x"}]), "not_judged[0].reason: required field is missing"),
    (lambda s: s["training"].update(learning_rate=0.1) or s["claims"][0].update(selection="per_seed"),
     "claims[0].selection: per_seed chooses among tuned values: the study tunes none"),
    (lambda s: s["claims"][0].update(selection="best"),
     "claims[0].selection: input should be 'pooled', 'per_seed' or 'per_seed_checkpoint'"),
    (lambda s: s["claims"][0].update(selection="per_seed_checkpoint", metric="test_accuracy"),
     "claims[0].selection: per_seed_checkpoint needs each epoch's test score, kept only in a study with a factor "
     "read at evaluation (dev_distribution)"),
    (lambda s: s["claims"][0].update(selection="per_seed_checkpoint", metric="val_accuracy"),
     "claims[0].selection: per_seed_checkpoint reads each epoch's test_accuracy or test_loss; the metric is val_accuracy"),
    (lambda s: s["training"].pop("lr_schedule"), "training.lr_schedule: required field is missing"),
    (lambda s: s["training"].update(lr_schedule="exponential"), "unknown lr_schedule 'exponential'"),
])
def test_more_bad_studies(tmp_path, tiny_study_dict, change, expected):
    change(tiny_study_dict)
    directory = tmp_path / "bad"
    directory.mkdir()
    with pytest.raises(loader.SpecError) as err:
        loader.load_study(write_study(directory, tiny_study_dict))
    assert expected in str(err.value)


def test_json_schema_is_current():
    """studies/schema.json is what `run_all.py --write-schema` writes now (rerun it after changing a setting)."""
    import json

    assert json.loads(schema.SCHEMA_PATH.read_text()) == json.loads(json.dumps(schema.json_schema(), sort_keys=True))


@pytest.mark.parametrize("path", loader.list_study_paths(REPO / "studies"), ids=lambda p: p.stem)
def test_every_shipped_study_passes_its_json_schema(path):
    """What an editor checks with studies/schema.json agrees with the loader on the shipped studies."""
    import json

    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(loader.read_yaml(path), json.loads(schema.SCHEMA_PATH.read_text()))


HOSTILE_FACTORS = {  # eight factors of ten valid levels each: 10^8 arms
    "depth": list(range(1, 11)), "width": list(range(1, 11)), "batch_size": list(range(1, 11)),
    "train_examples": list(range(100, 110)), "dropout": [i / 10 for i in range(10)],
    "l2": [i / 100 for i in range(10)], "learning_rate": [i / 100 for i in range(1, 11)],
    "kernel_initializer": ["he_normal", "glorot_uniform", *(f"normal_0.0{i}" for i in range(1, 9))],
}


def test_a_grid_of_ten_to_the_eight_arms_exits_2_before_it_is_expanded(tmp_path, tiny_study_dict, capsys,
                                                                         monkeypatch):
    tiny_study_dict["factors"] = HOSTILE_FACTORS
    tiny_study_dict["training"] = {"optimizer": "sgd"}
    directory = tmp_path / "studies"
    directory.mkdir()
    path = write_study(directory, tiny_study_dict, name="tiny")

    def never(*_):
        raise AssertionError("the grid was expanded")

    monkeypatch.setattr(loader.Study, "list_arms", never)
    code = cli.main(["--study", "tiny", "--studies-dir", str(directory), "--results", str(tmp_path / "results"),
                     "--out", str(tmp_path / "reports"), "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err
    assert "profiles.smoke: plans 100,000,000 trials (depth 10 x width 10" in err and "x 1 seed)" in err
    assert f"at most {loader.MAX_TRIALS:,}" in err


def test_seeds_from_the_command_line_cannot_grow_a_grid_past_the_bound(studies_dir, tmp_path, capsys):
    code = cli.main(["--study", "tiny", "--studies-dir", str(studies_dir), "--results", str(tmp_path / "results"),
                     "--out", str(tmp_path / "reports"), "--profile", "smoke", "--seeds", "10000000"])
    assert code == 2 and "plans 40,000,000 trials (kernel_initializer 2 x activation 1 arms x 2 learning_rate x " \
                         "10000000 seeds, from --seeds 10000000)" in capsys.readouterr().err

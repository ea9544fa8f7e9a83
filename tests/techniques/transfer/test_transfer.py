"""Guards for the transfer procedures (T1-T5): what is frozen stays frozen, the teacher is
untouched, the backbone really learns slower, hidden labels stay hidden, artifacts are reused."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from suite.core import registry, twins
from suite.core.artifacts import ArtifactStore
from suite.core.backend import import_keras
from suite.core.fit import TrialContext, fit
from suite.techniques.optimizers.schedules import step_rates
from suite.techniques.transfer import procedures, protocol

keras = import_keras()
CONFIG = {"optimizer": "sgd", "learning_rate": 0.05, "lr_schedule": "cosine", "batch_size": 32, "lr_ratio": 0.1,
          "source_epochs": 1, "head_epochs": 1, "epochs": 1, "iterations": 1, "labels_per_class": 5, "train_examples": 40,
          "teacher_arch": "cnn_small", "student_arch": "cnn_small"}


def _context(path) -> TrialContext:
    """What the runner hands a procedure: here only the artifact store matters."""
    return TrialContext(artifacts=ArtifactStore(path))


def test_split_hides_pool_labels_and_relabels_the_target(synthetic_data):
    tdata = protocol.split_transfer(synthetic_data, 5, 40, seed=0)
    assert not any("pool" in f.name and f.name.endswith("_y") for f in dataclasses.fields(tdata))
    assert set(np.unique(tdata.source_y)) <= set(protocol.SOURCE_CLASSES)
    assert np.bincount(tdata.labelled_y, minlength=5).tolist() == [5] * 5
    assert set(np.unique(tdata.test_y)) <= set(range(5)) and len(tdata.pool_x) <= 40


def test_frozen_backbone_and_its_bn_statistics_are_bit_identical_after_fit(synthetic_data):
    keras.utils.set_random_seed(0)  # op determinism (suite.core.device) refuses unseeded random ops
    tdata = protocol.split_transfer(synthetic_data, 5, 40, seed=0)
    backbone = protocol.build_backbone("cnn_small", synthetic_data.input_shape)
    backbone.trainable = False
    before = [w.copy() for w in backbone.get_weights()]  # includes BN moving mean/variance
    model = protocol.build_classifier(backbone, 5, pretrained=True)
    protocol.compile_classifier(model, CONFIG, decay_steps=100)
    head_before = model.get_layer("head").get_weights()[0].copy()
    model.fit(tdata.labelled_x, tdata.labelled_y, epochs=2, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, backbone.get_weights()))
    assert not np.array_equal(head_before, model.get_layer("head").get_weights()[0])  # the head did learn


@pytest.mark.slow
def test_distillation_leaves_the_teacher_unchanged(synthetic_data):
    keras.utils.set_random_seed(0)  # op determinism (suite.core.device) refuses unseeded random ops
    tdata = protocol.split_transfer(synthetic_data, 5, 40, seed=0)
    teacher = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    student = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    before = [w.copy() for w in teacher.get_weights()]
    distiller = procedures.Distiller(teacher, student, temperature=4.0, alpha=0.1)
    protocol.compile_classifier(distiller, CONFIG, decay_steps=100)
    distiller.fit(tdata.labelled_x, tdata.labelled_y, epochs=2, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, teacher.get_weights()))


def test_distillation_reads_no_label_where_the_weight_is_zero(synthetic_data):
    """Pool images enter distillation with weight 0: whatever sits in their label slot, the loss is the same."""
    x = synthetic_data.x_train[:8]
    teacher = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    student = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    distiller = procedures.Distiller(teacher, student, temperature=4.0, alpha=0.5)
    weight = np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32")
    labels = np.array([0, 1, 2, 3, 0, 0, 0, 0])
    other = np.array([0, 1, 2, 3, 4, 3, 2, 1])
    logits = student(x)
    loss = [float(distiller.compute_loss(x, y, logits, weight)) for y in (labels, other)]
    assert loss[0] == pytest.approx(loss[1])
    changed = float(distiller.compute_loss(x, np.array([4, 1, 2, 3, 0, 0, 0, 0]), logits, weight))
    assert changed != pytest.approx(loss[0])  # a labelled image's label does count


def test_training_accuracy_counts_only_the_labelled_images(synthetic_data):
    """The pool's placeholder labels (weight 0) must not enter the training accuracy that the
    convergence check reads: with every pool label set wrong on purpose, the accuracy is unchanged."""
    x = synthetic_data.x_train[:64]
    weight = np.r_[np.ones(16), np.zeros(48)].astype("float32")
    accuracies = []
    for pool_label_offset in (0, 1):
        keras.utils.set_random_seed(0)
        teacher = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
        student = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
        # training mode, as fit computes its metric (batch-norm on the batch's statistics)
        predicted = np.argmax(keras.ops.convert_to_numpy(student(x, training=True)), axis=1)
        labels = np.r_[predicted[:16], (predicted[16:] + pool_label_offset) % 5]  # labelled: all right
        distiller = procedures.Distiller(teacher, student, temperature=4.0, alpha=0.1)
        protocol.compile_classifier(distiller, {**CONFIG, "learning_rate": 0.0}, decay_steps=100)
        history = distiller.fit(x, labels, sample_weight=weight, epochs=1, batch_size=64, shuffle=False, verbose=0)
        accuracies.append(history.history["accuracy"][0])
    assert accuracies == [pytest.approx(1.0), pytest.approx(1.0)]


def test_a_few_shot_epoch_has_steps_per_epoch_sgd_steps(synthetic_data, monkeypatch):
    keras.utils.set_random_seed(0)  # op determinism (suite.core.device) refuses unseeded random ops
    tdata = protocol.split_transfer(synthetic_data, 2, 40, seed=0)  # 10 labelled images
    model = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    config = {**CONFIG, "steps_per_epoch": 7}
    trained = []
    monkeypatch.setattr(protocol, "fit", lambda twin, *args, **kwargs: trained.append(twin) or fit(twin, *args, **kwargs))
    protocol.train(model, tdata.labelled_x, tdata.labelled_y, tdata, config, epochs=2, context=TrialContext())
    [twin] = trained  # the compiled twin that trained the model (suite.core.twins)
    assert int(twin.optimizer.iterations) == 14
    last = float(twin.optimizer.learning_rate)  # the rate of the last step taken: the cosine's end, near 0
    assert last == pytest.approx(float(step_rates(config, 14)[-1])) and last < 0.02 * config["learning_rate"]


def test_finetune_backbone_learning_rate_is_the_smaller_one(synthetic_data):
    x, y = synthetic_data.x_train[:16], synthetic_data.y_train[:16] % 5

    def one_step(scale):
        keras.utils.set_random_seed(0)
        backbone = protocol.build_backbone("cnn_small", synthetic_data.input_shape)
        model = protocol.build_classifier(backbone, 5, backbone_lr_scale=scale)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        start_backbone = backbone.get_layer("conv_1").get_weights()[0].copy()
        start_head = model.get_layer("head").get_weights()[0].copy()
        model.train_on_batch(x, y)
        return (backbone.get_layer("conv_1").get_weights()[0] - start_backbone,
                model.get_layer("head").get_weights()[0] - start_head)

    full_backbone, full_head = one_step(1.0)
    scaled_backbone, scaled_head = one_step(0.1)
    np.testing.assert_allclose(scaled_head, full_head, rtol=1e-4, atol=1e-7)  # the head: the full rate
    np.testing.assert_allclose(scaled_backbone, 0.1 * full_backbone, rtol=1e-3, atol=1e-8)  # backbone: 0.1x


def test_source_artifact_is_built_once_then_loaded(tmp_path, synthetic_data):
    store = _context(tmp_path)
    first, notes = protocol.source_backbone(CONFIG, 0, synthetic_data, store, "cnn_small")
    again, notes_again = protocol.source_backbone(CONFIG, 0, synthetic_data, _context(tmp_path), "cnn_small")
    assert len(store.artifacts.built) == 1 and len(list(tmp_path.glob("*.weights.h5"))) == 1
    assert all(np.array_equal(a, b) for a, b in zip(first.get_weights(), again.get_weights()))
    assert notes == notes_again and 0.0 <= notes["source_val_accuracy"] <= 1.0  # the notes come back with it
    protocol.source_backbone(CONFIG, 1, synthetic_data, store, "cnn_small")  # another seed: another artifact
    assert len(store.artifacts.built) == 2


@pytest.mark.slow
def test_self_training_never_reads_the_pool_labels(tmp_path, synthetic_data, monkeypatch):
    """The split is the only place that sees labels, and it hands out none for the pool:
    with the split fixed, scrambling every label of the dataset changes no number."""
    tdata = protocol.split_transfer(synthetic_data, 5, 40, seed=0)
    for module in (protocol, procedures):  # the source model's split and the trial's
        monkeypatch.setattr(module, "split_transfer", lambda *args, **kwargs: tdata)
    scrambled = dataclasses.replace(synthetic_data, y_train=np.random.default_rng(1).permutation(synthetic_data.y_train))
    store = _context(tmp_path)
    results = [procedures.self_train(CONFIG, 0, d, store)["final"] for d in (synthetic_data, scrambled)]
    assert results[0] == pytest.approx(results[1])
    assert results[0]["pseudo_labels_iteration_1"] <= len(tdata.pool_x)


def test_pseudo_labels_are_confident_and_class_balanced():
    """Per class: the quota's most confident images, repeated when too few; unsure ones never."""
    pool = np.arange(20, dtype="float32").reshape(20, 1)  # image i is just the number i
    # images 0-11 -> class 0 with rising confidence, 12-13 -> class 1, 14-19 -> class 2 but unsure
    logits = np.zeros((20, 4), "float32")
    logits[:12, 0] = np.linspace(2, 8, 12)
    logits[12:14, 1] = 6.0
    logits[14:, 2] = 0.5
    teacher = lambda x, training=False: logits[x[:, 0].astype(int)]  # noqa: E731
    x, y, distinct = procedures.pseudo_label(teacher, pool, classes=4)
    quota = 20 // 4
    assert np.bincount(y, minlength=4).tolist() == [quota, quota, 0, 0]
    assert sorted(x[y == 0, 0].astype(int)) == [7, 8, 9, 10, 11]  # class 0's five most confident
    assert set(x[y == 1, 0].astype(int)) == {12, 13}  # class 1's two, repeated up to the quota
    assert distinct == 7


@pytest.mark.parametrize("arch", ["mobilenet_v3_small"])
def test_online_backbone_path_builds_and_trains_without_weights(arch, synthetic_data):
    """The keras.applications path of GPU runners, here with weights=None on tiny inputs."""
    backbone = protocol.build_backbone(arch, synthetic_data.input_shape, weights=None)
    backbone.trainable = False
    model = protocol.build_classifier(backbone, 5)
    protocol.compile_classifier(model, CONFIG, decay_steps=100)
    tdata = protocol.split_transfer(synthetic_data, 5, 40, seed=0)
    model.fit(tdata.labelled_x, tdata.labelled_y, epochs=1, batch_size=8, verbose=0)
    assert 0.0 <= protocol.test_accuracy(model, tdata) <= 1.0


@pytest.mark.slow
def test_every_procedure_runs_on_tiny_data(tmp_path, synthetic_data):

    store = _context(tmp_path)
    # the transfer procedures (other studies register procedures of their own, with other settings)
    ours = {name: fn for name, fn in registry.entries("procedure").items() if fn.__module__ == procedures.__name__}
    assert {"scratch", "freeze", "finetune", "distill_t4", "self_train"} <= set(ours)
    for name, procedure in ours.items():
        outcome = procedure(CONFIG, 0, synthetic_data, store)
        assert outcome["status"] == "ok" and 0.0 <= outcome["final"]["test_accuracy"] <= 1.0, name
    # one source backbone and one fine-tuned teacher, shared by all; each finetune_ratio_<r> variant fine-tunes its own
    assert len(store.artifacts.built) == 2 + 2


def test_the_finetune_arm_is_the_teacher_and_reports_its_history_when_loaded(tmp_path, synthetic_data):
    """`finetune` and the teacher are one model, trained once; a trial that loads it still has its curves."""
    built = procedures.finetune(CONFIG, 0, synthetic_data, _context(tmp_path))
    loaded = procedures.finetune(CONFIG, 0, synthetic_data, _context(tmp_path))
    distilled = procedures.distill(CONFIG, 0, synthetic_data, _context(tmp_path))
    assert loaded["history"] == built["history"] and len(built["history"]) == CONFIG["head_epochs"] + CONFIG["epochs"]
    assert loaded["final"]["test_accuracy"] == built["final"]["test_accuracy"]
    assert distilled["final"]["teacher_test_accuracy"] == built["final"]["test_accuracy"]


@pytest.mark.parametrize("procedure", ["freeze", "finetune"])
def test_a_trial_gives_the_same_numbers_whether_it_builds_the_source_model_or_loads_it(
        procedure, tmp_path, synthetic_data):
    """Which trial builds a shared artifact depends on the schedule (workers, resumes); the
    draws that pre-training consumes must not shift the trial's own initial weights."""
    run = getattr(procedures, procedure)
    builds = run(CONFIG, 0, synthetic_data, _context(tmp_path / "empty"))
    prebuilt = _context(tmp_path / "prebuilt")
    protocol.source_backbone(CONFIG, 0, synthetic_data, prebuilt, CONFIG["teacher_arch"])
    loads = run(CONFIG, 0, synthetic_data, prebuilt)
    assert loads["history"] == builds["history"] and loads["final"] == builds["final"]


def test_accuracy_against_labels_section_averages_per_arm_and_level():
    from conftest import REPO

    from suite.core import loader
    from suite.techniques.transfer import sections as transfer_sections

    study = loader.load_study(REPO / "studies" / "transfer.yaml")
    accuracy = {("scratch", 10): [0.80, 0.84], ("finetune", 10): [0.86, 0.88], ("scratch", 100): [0.90, 0.92]}
    trials = pd.DataFrame([{"procedure": p, "labels_per_class": n, "seed": s, "test_accuracy": a, "selected": True}
                           for (p, n), values in accuracy.items() for s, a in enumerate(values)])
    table = transfer_sections.accuracy_by_labels(trials).set_index(["procedure", "labels_per_class"])
    assert table.loc[("finetune", 10), "test accuracy"] == pytest.approx(0.87)
    assert table.loc[("scratch", 100), "seeds"] == 2
    [entry] = transfer_sections.accuracy_against_labels(trials, pd.DataFrame(), study)
    assert entry["uri"].startswith("data:image/png") and "finetune" in str(entry["table"])
    assert transfer_sections.accuracy_against_labels(trials.drop(columns="labels_per_class"), pd.DataFrame(), study) == []


def test_finetune_ratio_variants_fine_tune_at_their_own_backbone_rate(tmp_path, synthetic_data, monkeypatch):

    seen = []
    real = procedures.cached_teacher
    monkeypatch.setattr(procedures, "cached_teacher", lambda config, *args: seen.append(config["lr_ratio"]) or
                        real(config, *args))
    store = _context(tmp_path)
    for name in ("finetune", "finetune_ratio_1", "finetune_ratio_0.01"):
        registry.lookup("procedure", name)(CONFIG, 0, synthetic_data, store)
    assert seen == [CONFIG["lr_ratio"], 1.0, 0.01]
    assert len(store.artifacts.built) == 4  # one source, and a fine-tuned model per ratio


def test_the_hard_label_student_sees_the_distilled_students_images_and_learns_the_teachers_argmax(
        tmp_path, synthetic_data, monkeypatch):
    """T4's control: distill_hard trains the same student (same initial weights) on the same images,
    labels and weights as distill_t4, from the same stored teacher; only the teacher's target is hard."""

    seen = {}
    real_train = procedures.train

    def spy(model, x, y, tdata, config, epochs, context, sample_weight=None):
        seen[model.hard] = {"model": model, "x": x.copy(), "y": y.copy(), "weight": sample_weight.copy(),
                            "start": [w.copy() for w in model.student.get_weights()], "epochs": epochs}
        return real_train(model, x, y, tdata, config, epochs, context, sample_weight=sample_weight)

    monkeypatch.setattr(procedures, "train", spy)
    store = _context(tmp_path)
    soft_final = registry.lookup("procedure", "distill_t4")(CONFIG, 0, synthetic_data, store)["final"]
    hard_final = registry.lookup("procedure", "distill_hard")(CONFIG, 0, synthetic_data, store)["final"]
    soft, hard = seen[False], seen[True]
    tdata = protocol.split_transfer(synthetic_data, CONFIG["labels_per_class"], CONFIG["train_examples"], 0)
    assert len(hard["x"]) == len(tdata.labelled_x) + len(tdata.pool_x) > len(tdata.labelled_x)  # the pool too
    for key in ("x", "y", "weight"):
        np.testing.assert_array_equal(hard[key], soft[key])
    assert hard["epochs"] == soft["epochs"]
    assert all(np.array_equal(a, b) for a, b in zip(hard["start"], soft["start"]))
    assert len(store.artifacts.built) == 2  # one source model, one teacher: no second teacher
    assert hard_final["teacher_test_accuracy"] == soft_final["teacher_test_accuracy"]

    # the targets: the teacher's argmax as one-hot rows for distill_hard, its softened outputs for distill_t4
    x = hard["x"][:32]
    teacher_logits = keras.ops.convert_to_numpy(hard["model"].teacher(x, training=False))
    hard_targets = keras.ops.convert_to_numpy(hard["model"].teacher_targets(x))
    np.testing.assert_array_equal(hard_targets, np.eye(5)[teacher_logits.argmax(axis=1)])
    soft_targets = keras.ops.convert_to_numpy(soft["model"].teacher_targets(x))
    assert np.all((soft_targets > 0) & (soft_targets < 1))
    np.testing.assert_array_equal(soft_targets.argmax(axis=1), teacher_logits.argmax(axis=1))


def test_hard_distillation_loss_is_cross_entropy_on_the_teachers_argmax(synthetic_data):
    """With hard targets and T = 1 the teacher term is the plain cross-entropy against argmax(teacher)."""
    keras.utils.set_random_seed(0)
    x = synthetic_data.x_train[:8]
    teacher = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    student = protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5)
    logits = student(x)
    pseudo = keras.ops.convert_to_numpy(teacher(x, training=False)).argmax(axis=1)
    cross_entropy = keras.ops.convert_to_numpy(
        keras.losses.sparse_categorical_crossentropy(pseudo, logits, from_logits=True))
    hard = procedures.Distiller(teacher, student, temperature=1.0, alpha=0.0, hard=True)
    assert float(hard.compute_loss(x, np.zeros(8, "int32"), logits)) == pytest.approx(cross_entropy.mean(), rel=1e-5)
    soft = procedures.Distiller(teacher, student, temperature=1.0, alpha=0.0)
    assert float(soft.compute_loss(x, np.zeros(8, "int32"), logits)) != pytest.approx(cross_entropy.mean(), rel=1e-3)


def _fit_as_before(model, config, epochs, context, x, y, **kwargs):
    """protocol.fit_classifier before compiled twins: every model compiled itself."""
    protocol.compile_classifier(model, config, protocol.total_steps(len(x), epochs, config))
    return fit(model, context, epochs=epochs, x=x, y=y, batch_size=config["batch_size"], **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("procedure", ["scratch", "freeze", "distill_t4", "self_train"])
def test_compiled_twins_give_the_numbers_of_models_compiled_afresh(procedure, tmp_path, synthetic_data, monkeypatch):
    """Every fit of a procedure (source model, teacher, both fine-tuning phases, students) on a
    compiled twin gives exactly the numbers of the model compiled itself: when the twins are
    compiled, and when they are reused (a second run with its own artifacts trains all again)."""
    run, config = registry.lookup("procedure", procedure), {**CONFIG, "iterations": 2}
    with monkeypatch.context() as before:
        before.setattr(protocol, "fit_classifier", _fit_as_before)
        expected = run(config, 0, synthetic_data, _context(tmp_path / "before"))
    monkeypatch.setattr(twins, "_TWINS", {})
    fitted = []
    monkeypatch.setattr(protocol, "fit", lambda model, *args, **kwargs: fitted.append(model) or fit(model, *args, **kwargs))
    compiles = run(config, 0, synthetic_data, _context(tmp_path / "compiles"))
    compiled = len(twins._TWINS)
    reuses = run(config, 0, synthetic_data, _context(tmp_path / "reuses"))
    assert compiles["history"] == expected["history"] == reuses["history"]
    assert compiles["final"] == expected["final"] == reuses["final"]
    assert len(twins._TWINS) == compiled  # the second run compiled nothing
    twins_trained = {id(twin) for twin, *_ in twins._TWINS.values()}
    assert all(id(model) in twins_trained for model in fitted)  # every fit was on a twin


def test_a_twin_key_holds_what_the_transfer_models_trace(synthetic_data):
    """The distiller's temperature and hard targets and the backbone's gradient scale are read when
    the train function is traced: models that differ in them must not share a compiled twin."""
    def classifier(scale=1.0):
        return protocol.build_classifier(protocol.build_backbone("cnn_small", synthetic_data.input_shape), 5,
                                         backbone_lr_scale=scale)

    def key(model):
        return twins.structure_key(model, {})

    assert key(classifier(0.1)) == key(classifier(0.1)) != key(classifier(0.01)) != key(classifier())
    teacher, student = classifier(), classifier()
    distillers = [procedures.Distiller(teacher, student, t, 0.1, hard=h) for t, h in ((4.0, False), (1.0, False),
                                                                                     (1.0, True))]
    assert len({key(d) for d in distillers}) == 3
    assert key(procedures.Distiller(classifier(), classifier(), 4.0, 0.1)) == key(distillers[0])

"""transfer: reusing a trained network (claims T1-T5), as registered procedures (kind "procedure").

Protocol (offline): the source task is Fashion-MNIST classes 0-4 with all their training
images; the target task is classes 5-9 with `labels_per_class` labelled images each. The
other target training images form the unlabelled pool: `TransferData` holds them without
labels, so no procedure can read them. The source model is pre-trained once per
(architecture, seed) and kept as an artifact (suite.artifacts) for every arm and rerun;
so is the fine-tuned model, which is both the `finetune` arm and the teacher. Every arm
gets the same number of SGD steps, and every run's learning rate decays to 0 (cosine).
A procedure seeds its own models only after it holds its artifacts: which trial builds an
artifact (many random draws) and which loads it depends on the schedule, and must not
change a trial's numbers (tested).
Online runners can start from a `keras.applications` backbone with ImageNet weights.

Each procedure reads top to bottom: data, model, the one custom piece, train, test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from suite import registry
from suite.artifacts import ArtifactStore
from suite.backend import import_keras
from suite.data import Dataset
from suite.device import jit_compile
from suite.train import HISTORY_COLUMNS

keras = import_keras()

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
CONFIDENCE = 0.7  # self-training keeps pseudo-labels the teacher is at least this sure of
# An epoch has at least `steps_per_epoch` SGD steps (small sets are repeated): with 10
# labels per class a pass over the data is one step, and a budget in passes would leave
# every arm untrained. Default when a study does not set it:
STEPS_PER_EPOCH = 16
CURVE_EXAMPLES = 1000  # target validation images per epoch's learning-curve point
NOISE_DROPOUT = 0.3  # the noisy student's dropout before the head (with RandAugment on its inputs)


@dataclass(frozen=True)
class TransferData:
    source_x: np.ndarray
    source_y: np.ndarray
    labelled_x: np.ndarray
    labelled_y: np.ndarray
    pool_x: np.ndarray  # unlabelled: the labels of these images are never handed out
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def classes(self) -> int:
        return len(TARGET_CLASSES)


def split_transfer(data: Dataset, labels_per_class: int, pool_size: int, seed: int) -> TransferData:
    """Source = classes 0-4; target = classes 5-9 relabelled 0-4; the labelled subset is drawn per seed."""
    rng = np.random.default_rng(1000 + seed)
    source = np.isin(data.y_train, SOURCE_CLASSES)
    labelled, pool = [], []
    for cls in TARGET_CLASSES:
        index = rng.permutation(np.flatnonzero(data.y_train == cls))
        labelled.append(index[:labels_per_class])
        pool.append(index[labels_per_class:])
    labelled = np.concatenate(labelled)
    pool = rng.permutation(np.concatenate(pool))[:pool_size]
    # validation draws the learning curves only (verdicts use the test images): 1000 suffice
    val = np.flatnonzero(data.y_val >= TARGET_CLASSES[0])[:CURVE_EXAMPLES]
    test = data.y_test >= TARGET_CLASSES[0]
    shift = TARGET_CLASSES[0]
    return TransferData(
        source_x=data.x_train[source], source_y=data.y_train[source],
        labelled_x=data.x_train[labelled], labelled_y=data.y_train[labelled] - shift,
        pool_x=data.x_train[pool],
        val_x=data.x_val[val], val_y=data.y_val[val] - shift,
        test_x=data.x_test[test], test_y=data.y_test[test] - shift,
    )


# ---- architectures: a backbone (image -> features) is the reusable part -----------------

def _cnn_backbone(input_shape, depth: int, width: int, name: str) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(1, depth + 1):
        # the first conv has stride 2: 4x fewer multiply-adds, which a 2-core CPU budget needs
        x = keras.layers.Conv2D(width * (1 + (i - 1) // 2), 3, strides=2 if i == 1 else 1, padding="same",
                                use_bias=False, name=f"conv_{i}")(x)
        # momentum 0.9, not 0.99: a few-shot run has ~100 steps, too few for slow moving
        # statistics, and a fresh net then looks broken at test time (measured: 0.9 train, 0.3 val)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn_{i}")(x)
        x = keras.layers.Activation("relu", name=f"act_{i}")(x)
        if i % 2 == 0:
            x = keras.layers.MaxPooling2D(name=f"pool_{i}")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name=name)


def _application_backbone(input_shape, application: str, weights: str | None, name: str) -> keras.Model:
    """A keras.applications network without its top; grey 28x28 images become 32x32 RGB."""
    inputs = keras.Input(input_shape)
    x = inputs
    if input_shape[-1] == 1:
        x = keras.layers.Concatenate()([x, x, x])
    if input_shape[0] < 32:
        x = keras.layers.Resizing(32, 32)(x)
    x = keras.layers.Rescaling(255.0)(x)  # applications expect 0-255 inputs
    net = getattr(keras.applications, application)(include_top=False, weights=weights, input_shape=(*x.shape[1:],),
                                                   pooling="avg")
    return keras.Model(inputs, net(x), name=name)


ARCHITECTURES = {
    "cnn_large": lambda shape, weights: _cnn_backbone(shape, 4, 16, "cnn_large"),
    "cnn_small": lambda shape, weights: _cnn_backbone(shape, 2, 8, "cnn_small"),
    "mobilenet_v3_small": lambda shape, weights: _application_backbone(shape, "MobileNetV3Small", weights, "mobilenet"),
    "efficientnet_b0": lambda shape, weights: _application_backbone(shape, "EfficientNetB0", weights, "efficientnet"),
}


def build_backbone(arch: str, input_shape, weights: str | None = None) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise registry.UnknownNameError("architecture", arch, list(ARCHITECTURES))
    return ARCHITECTURES[arch](tuple(input_shape), weights)


class GradientScale(keras.layers.Layer):
    """Identity forward; backward multiplies the gradient by `scale`. Placed after a
    backbone, it gives every backbone weight `scale` x the head's SGD learning rate (T3)."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale + keras.ops.stop_gradient(x * (1.0 - self.scale))


def build_classifier(backbone: keras.Model, classes: int, *, pretrained: bool = False, backbone_lr_scale: float = 1.0,
                     dropout: float = 0.0, augment: bool = False) -> keras.Model:
    """image -> [augmentation] -> backbone -> [scale] -> [dropout] -> logits.

    A `pretrained` backbone runs its BN layers in inference mode, frozen or not (the Keras
    transfer-learning guide's advice for small target sets); a fresh one trains them."""
    inputs = keras.Input(backbone.input_shape[1:])
    x = inputs
    if augment:  # noisy student: RandAugment, active in training only
        x = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.5, name="randaugment")(x)
    x = backbone(x, training=False) if pretrained else backbone(x)
    if backbone_lr_scale != 1.0:
        x = GradientScale(backbone_lr_scale, name="backbone_lr_scale")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    # float32 logits even under mixed precision
    return keras.Model(inputs, keras.layers.Dense(classes, name="head", dtype="float32")(x))


# ---- training and testing ------------------------------------------------------------

def compile_model(model: keras.Model, config: dict, decay_steps: int | None = None) -> None:
    """SGD (momentum 0.9) or a named optimizer; with `decay_steps`, the learning rate follows a
    cosine from its value to 0 over that many steps, so a run ends on settled weights rather
    than on one noisy SGD iterate (a few-shot arm's last epochs otherwise swing by points)."""
    lr = config["learning_rate"]
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps)
    optimizer = keras.optimizers.SGD(lr, momentum=0.9) if config["optimizer"] == "sgd" else \
        keras.optimizers.get({"class_name": config["optimizer"], "config": {"learning_rate": lr}})
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], steps_per_execution=16, jit_compile=jit_compile())


def total_steps(examples: int, epochs: int, config: dict) -> int:
    return epochs * -(-examples // config["batch_size"])


def train(model: keras.Model, x, y, tdata: TransferData, config: dict, epochs: int, sample_weight=None) -> list[dict]:
    """Compile (a fresh optimizer, the learning rate decaying over this run) and fit; returns one
    history row per epoch (validation on the target's validation images)."""
    least = config.get("steps_per_epoch", STEPS_PER_EPOCH) * config["batch_size"]
    if len(x) < least:
        repeat = np.resize(np.arange(len(x)), least)  # fit shuffles
        x, y = x[repeat], y[repeat]
        sample_weight = None if sample_weight is None else sample_weight[repeat]
    compile_model(model, config, decay_steps=total_steps(len(x), epochs, config))
    fit_history = model.fit(x, y, sample_weight=sample_weight, batch_size=config["batch_size"], epochs=epochs,
                            verbose=0, validation_data=(tdata.val_x, tdata.val_y), validation_batch_size=1024)
    names = HISTORY_COLUMNS
    return [{"epoch": e + 1, **{names[k]: float(v[e]) for k, v in fit_history.history.items() if k in names}}
            for e in range(len(fit_history.history.get("loss", [])))]


def predict_logits(model: keras.Model, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Inference in eager batches: for a model used once, tracing `predict` cost more than it saved."""
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict_logits(model, x), axis=1) == y))


def test_accuracy(model: keras.Model, tdata: TransferData) -> float:
    return accuracy(model, tdata.test_x, tdata.test_y)


def source_backbone(config: dict, seed: int, data: Dataset, artifacts: ArtifactStore,
                    arch: str) -> tuple[keras.Model, dict]:
    """The backbone pre-trained on the source classes: built once per (arch, seed), then loaded.
    Returns (backbone, notes); notes hold the source model's validation accuracy on its own classes."""
    if config.get("source_weights") == "imagenet":  # online runners: downloaded ImageNet weights
        return build_backbone(arch, data.input_shape, weights="imagenet"), {}
    identity = {"what": "source", "arch": arch, "seed": seed, "data": data.fingerprint,
                "epochs": config["source_epochs"], "optimizer": config["optimizer"],
                "learning_rate": config["learning_rate"], "batch_size": config["batch_size"], "schedule": "cosine"}

    def pretrain() -> tuple[keras.Model, dict]:
        keras.utils.set_random_seed(10_000 + seed)
        tdata = split_transfer(data, 1, 1, seed)
        backbone = build_backbone(arch, data.input_shape)
        model = build_classifier(backbone, len(SOURCE_CLASSES))
        compile_model(model, config, decay_steps=total_steps(len(tdata.source_x), config["source_epochs"], config))
        model.fit(tdata.source_x, tdata.source_y, batch_size=config["batch_size"], epochs=config["source_epochs"],
                  verbose=0)
        source_val = np.isin(data.y_val, SOURCE_CLASSES)
        return backbone, {"source_val_accuracy": accuracy(model, data.x_val[source_val], data.y_val[source_val])}

    return artifacts.load_or_build(identity, pretrain, lambda: build_backbone(arch, data.input_shape))


def finetuned(config: dict, seed: int, data: Dataset, tdata: TransferData, artifacts: ArtifactStore, arch: str,
              x: np.ndarray | None = None, y: np.ndarray | None = None,
              noise: bool = False) -> tuple[keras.Model, list[dict]]:
    """(T3) Head first on the frozen backbone, then everything with a smaller backbone learning rate.
    Trains on the labelled images unless given `x, y`; `noise` adds RandAugment and dropout (T5)."""
    x, y = (tdata.labelled_x, tdata.labelled_y) if x is None else (x, y)
    backbone, _ = source_backbone(config, seed, data, artifacts, arch)
    # 1. new head on the frozen backbone
    backbone.trainable = False
    model = build_classifier(backbone, tdata.classes, pretrained=True, backbone_lr_scale=config["lr_ratio"],
                             dropout=NOISE_DROPOUT if noise else 0.0, augment=noise)
    history = train(model, x, y, tdata, config, config["head_epochs"])
    # 2. unfreeze; `train` recompiles, which is when a trainable change takes effect
    backbone.trainable = True
    history += train(model, x, y, tdata, config, config["epochs"])
    return model, history


def cached_teacher(config: dict, seed: int, data: Dataset, tdata: TransferData,
                   artifacts: ArtifactStore) -> tuple[keras.Model, dict]:
    """The `finetune` arm's model, trained once per setting and seed: it is also the large
    teacher of distillation and self-training. Returns (model, notes): its training
    `history` and its source model's notes."""
    arch = config["teacher_arch"]
    # `protocol` changes when the teacher's training does, so an older stored teacher is not reused
    # (3: seeded after its source model, whether that was built or loaded)
    identity = {"what": "teacher", "config": {k: v for k, v in config.items() if k != "procedure"}, "seed": seed,
                "data": data.fingerprint, "protocol": 3}

    def train_teacher() -> tuple[keras.Model, dict]:
        _, source = source_backbone(config, seed, data, artifacts, arch)  # first (module docstring)
        keras.utils.set_random_seed(seed)
        model, history = finetuned(config, seed, data, tdata, artifacts, arch)
        return model, {"history": history, **source}

    shape = data.input_shape
    return artifacts.load_or_build(
        identity, train_teacher,
        lambda: build_classifier(build_backbone(arch, shape), tdata.classes, pretrained=True,
                                 backbone_lr_scale=config["lr_ratio"]))


# ---- procedures ----------------------------------------------------------------------

def _outcome(started: float, history: list[dict], final: dict) -> dict:
    last = history[-1] if history else {}
    return {"status": "ok", "message": "", "history": history, "layers": [],
            "final": {**{k: v for k, v in last.items() if k != "epoch"}, **final},
            "timing": {"wall_seconds": time.perf_counter() - started}}


def _setup(config: dict, seed: int, data: Dataset) -> TransferData:
    keras.utils.set_random_seed(seed)
    return split_transfer(data, config["labels_per_class"], config["train_examples"], seed)


@registry.register("procedure")
def scratch(config, seed, data, artifacts, arch=None):
    """The teacher architecture trained on the target labels only (the baseline of T1)."""
    started, tdata = time.perf_counter(), _setup(config, seed, data)
    model = build_classifier(build_backbone(arch or config["teacher_arch"], data.input_shape), tdata.classes)
    history = train(model, tdata.labelled_x, tdata.labelled_y, tdata, config, config["head_epochs"] + config["epochs"])
    return _outcome(started, history, {"test_accuracy": test_accuracy(model, tdata)})


@registry.register("procedure")
def student_scratch(config, seed, data, artifacts):
    """The small student trained on the target labels only (the baseline of T4)."""
    return scratch(config, seed, data, artifacts, arch=config["student_arch"])


@registry.register("procedure")
def freeze(config, seed, data, artifacts):
    """(T2) Source backbone frozen, BN in inference mode; only a new head is trained."""
    started, tdata = time.perf_counter(), _setup(config, seed, data)
    backbone, source = source_backbone(config, seed, data, artifacts, config["teacher_arch"])
    keras.utils.set_random_seed(seed)  # after the artifacts (module docstring)
    backbone.trainable = False
    model = build_classifier(backbone, tdata.classes, pretrained=True)
    history = train(model, tdata.labelled_x, tdata.labelled_y, tdata, config, config["head_epochs"] + config["epochs"])
    return _outcome(started, history, {"test_accuracy": test_accuracy(model, tdata), **source})


@registry.register("procedure")
def finetune(config, seed, data, artifacts, lr_ratio: float | None = None):
    """(T3) Fine-tune the source backbone at `lr_ratio` x the head's learning rate: the
    study's setting (this model is also the teacher), or a variant's own ratio."""
    if lr_ratio is not None:
        config = {**config, "lr_ratio": lr_ratio}
    started, tdata = time.perf_counter(), _setup(config, seed, data)
    model, notes = cached_teacher(config, seed, data, tdata, artifacts)
    source = {k: v for k, v in notes.items() if k != "history"}
    return _outcome(started, notes.get("history", []), {"test_accuracy": test_accuracy(model, tdata), **source})


# Variants for the backbone learning-rate sweep (T3): finetune_ratio_1 gives every layer the same rate.
for _ratio in (0.01, 1):
    registry.register("procedure", f"finetune_ratio_{_ratio}")(
        lambda config, seed, data, artifacts, _ratio=_ratio: finetune(config, seed, data, artifacts, float(_ratio)))


class Distiller(keras.Model):
    """(T4, Hinton et al. 2015) loss = alpha * CE(labels, student)
    + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)); the teacher is frozen.
    Images with sample weight 0 (the unlabelled pool) enter the KL term only."""

    def __init__(self, teacher: keras.Model, student: keras.Model, temperature: float, alpha: float):
        super().__init__()
        self.teacher, self.student = teacher, student
        self.temperature, self.alpha = temperature, alpha
        self.teacher.trainable = False

    def call(self, x, training=False):
        return self.student(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        if sample_weight is not None:
            hard = hard * keras.ops.reshape(keras.ops.cast(sample_weight, hard.dtype), keras.ops.shape(hard))
        t = self.temperature
        teacher_soft = keras.ops.softmax(self.teacher(x, training=False) / t)
        student_log_soft = keras.ops.log_softmax(y_pred / t)
        kl = keras.ops.sum(teacher_soft * (keras.ops.log(teacher_soft + 1e-8) - student_log_soft), axis=-1)
        return keras.ops.mean(self.alpha * hard + (1.0 - self.alpha) * t * t * kl)


def distill(config, seed, data, artifacts, temperature: float = 4.0, alpha: float = 0.1):
    """(T4) The small student learns from the fine-tuned large teacher's soft labels on the
    transfer set: the labelled images (cross-entropy and KL) and the unlabelled pool (KL only:
    the teacher knows more than the few labels, and its outputs on unlabelled images are
    what distillation can pass on; Hinton et al. likewise use an unlabelled transfer set)."""
    started, tdata = time.perf_counter(), _setup(config, seed, data)
    teacher, _ = cached_teacher(config, seed, data, tdata, artifacts)
    keras.utils.set_random_seed(seed)
    student = build_classifier(build_backbone(config["student_arch"], data.input_shape), tdata.classes)
    distiller = Distiller(teacher, student, temperature, alpha)
    # the pool's label slots hold 0 with weight 0: no label of the pool exists to read
    x = np.concatenate([tdata.labelled_x, tdata.pool_x])
    y = np.concatenate([tdata.labelled_y, np.zeros(len(tdata.pool_x), tdata.labelled_y.dtype)])
    weight = np.concatenate([np.ones(len(tdata.labelled_x)), np.zeros(len(tdata.pool_x))]).astype("float32")
    history = train(distiller, x, y, tdata, config, config["head_epochs"] + config["epochs"], sample_weight=weight)
    return _outcome(started, history, {"test_accuracy": test_accuracy(student, tdata),
                                       "teacher_test_accuracy": test_accuracy(teacher, tdata)})


# Variants for the temperature sweep: a variant is its function's keyword defaults.
for _t in (1, 2, 4, 8):
    registry.register("procedure", f"distill_t{_t}")(
        lambda config, seed, data, artifacts, _t=_t: distill(config, seed, data, artifacts, temperature=float(_t)))


def pseudo_label(teacher: keras.Model, pool_x: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Hard pseudo-labels from the teacher (no true label is read), class-balanced as in Noisy
    Student (Xie et al. 2020, sec. 3): each class gets `len(pool) // classes` images, its most
    confident ones at least CONFIDENCE sure, repeated when it has fewer. Unbalanced, a
    second-generation student inherits its teacher's favourite classes (measured: one class
    fell to 20 of 929 images and the student to 0.63 from 0.85). Returns (x, y, distinct images)."""
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(predict_logits(teacher, pool_x)))
    label, confidence = probs.argmax(axis=1), probs.max(axis=1)
    quota = len(pool_x) // classes
    picked = []
    for cls in range(classes):
        sure = np.flatnonzero((label == cls) & (confidence >= CONFIDENCE))
        if len(sure):
            picked.append(np.resize(sure[np.argsort(-confidence[sure], kind="stable")][:quota], quota))
    picked = np.concatenate(picked) if picked else np.zeros(0, dtype=int)
    return pool_x[picked], label[picked].astype("int32"), len(np.unique(picked))


def self_train(config, seed, data, artifacts, noise: bool = True):
    """(T5, noisy student, Xie et al. 2020) the teacher pseudo-labels the pool; a student of the
    same architecture learns labelled + pseudo-labelled images under noise; the student becomes
    the next teacher. Each student starts, like the teacher, from the source backbone and is
    fine-tuned the same way, so it differs from its teacher only by the pseudo-labelled
    images and the noise (a student from scratch would also lose the source pre-training)."""
    started, tdata = time.perf_counter(), _setup(config, seed, data)
    teacher, _ = cached_teacher(config, seed, data, tdata, artifacts)
    final = {"teacher_test_accuracy": test_accuracy(teacher, tdata)}
    history: list[dict] = []
    for iteration in range(1, config["iterations"] + 1):
        pseudo_x, pseudo_y, distinct = pseudo_label(teacher, tdata.pool_x, tdata.classes)
        x = np.concatenate([tdata.labelled_x, pseudo_x])
        y = np.concatenate([tdata.labelled_y, pseudo_y])
        keras.utils.set_random_seed(seed * 100 + iteration)
        student, rows = finetuned(config, seed, data, tdata, artifacts, config["teacher_arch"], x, y, noise=noise)
        history += [{**row, "epoch": len(history) + i + 1, "iteration": iteration} for i, row in enumerate(rows)]
        final[f"test_accuracy_iteration_{iteration}"] = test_accuracy(student, tdata)
        final[f"pseudo_labels_iteration_{iteration}"] = distinct
        teacher = student
    final["test_accuracy"] = final[f"test_accuracy_iteration_{config['iterations']}"]
    return _outcome(started, history, final)


registry.register("procedure", "self_train")(lambda config, seed, data, artifacts: self_train(config, seed, data, artifacts))
registry.register("procedure", "self_train_no_noise")(
    lambda config, seed, data, artifacts: self_train(config, seed, data, artifacts, noise=False))

"""protocol: the transfer protocol (T1-T5): data split, networks, training and the shared models.

Protocol (offline): the source task is Fashion-MNIST classes 0-4 with all their training
images; the target task is classes 5-9 with `labels_per_class` labelled images each. The
other target training images form the unlabelled pool: `TransferData` holds them without
labels, so no procedure can read them. The source model is pre-trained once per
(architecture, seed) and kept as an artifact (suite.core.artifacts) for every arm and rerun;
so is the fine-tuned model, which is both the `finetune` arm and the teacher. Every arm
gets the same number of SGD steps, and every run's learning rate decays to 0 (cosine).
A procedure seeds its own models only after it holds its artifacts: which trial builds an
artifact (many random draws) and which loads it depends on the schedule, and must not
change a trial's numbers (tested).
Online runners can start from a `keras.applications` backbone with ImageNet weights.

The procedures that compare ways of reusing a network are in `procedures`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.datasets import Dataset
from suite.core.fit import OK, TrialContext, TrialStopped, compile_model, fit
from suite.core.keys import derive_seed
from suite.core.settings import Fraction, PositiveInt, declare_setting, one_of
from suite.core.twins import compiled_twin, copy_values
from suite.techniques.optimizers.optimizers import OPTIMIZER_SETTINGS
from suite.techniques.optimizers.schedules import learning_rate_for, schedule_name

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
    rng = np.random.default_rng(derive_seed(seed, "transfer_split"))
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


# The transfer protocol's settings. Every procedure below reads them all: the arms of one study
# share one protocol (the same source model, teacher and step budget), so an arm that does not
# itself train a student still runs under the settings that define its comparison.
declare_setting("labels_per_class", "training", PositiveInt, "labelled target images per class")
declare_setting("source_epochs", "training", PositiveInt, "epochs of source pre-training")
declare_setting("head_epochs", "training", PositiveInt, "epochs of the new head on the frozen backbone before fine-tuning")
declare_setting("steps_per_epoch", "training", PositiveInt, "the fewest SGD steps in an epoch (few-shot sets repeat)")
declare_setting("iterations", "training", PositiveInt, "student generations of self-training (T5)")
declare_setting("lr_ratio", "training", Fraction, "the backbone's learning rate as a share of the head's (T3)")
declare_setting("teacher_arch", "model", one_of(*ARCHITECTURES), "the large network (source model, teacher)")
declare_setting("student_arch", "model", one_of(*ARCHITECTURES), "the small network (student)")
declare_setting("source_weights", "model", one_of("pretrain", "imagenet"),
                "pretrain: on the source classes here; imagenet: keras.applications weights (downloads)")
TRANSFER_SETTINGS = ("labels_per_class", "source_epochs", "head_epochs", "steps_per_epoch", "iterations", "lr_ratio",
                     "teacher_arch", "student_arch", "source_weights", *OPTIMIZER_SETTINGS)


@keras.saving.register_keras_serializable("suite_transfer")
class GradientScale(keras.layers.Layer):
    """Identity forward; backward multiplies the gradient by `scale`. Placed after a
    backbone, it gives every backbone weight `scale` x the head's SGD learning rate (T3)."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        return x * self.scale + keras.ops.stop_gradient(x * (1.0 - self.scale))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


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

def compile_classifier(model: keras.Model, config: dict, decay_steps: int) -> None:
    """The study's optimizer (a fresh one) on logits; the learning rate follows the study's
    `lr_schedule` over `decay_steps` (each phase runs its own), so with a decay to 0 a run ends on
    settled weights rather than on one noisy SGD iterate (a few-shot arm's last epochs otherwise
    swing by points). Training accuracy is weighted: the distillation pool's images carry weight 0
    and a placeholder label that must not count."""
    compile_model(model, config, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["accuracy"], learning_rate=learning_rate_for(config, decay_steps))


def fit_classifier(model: keras.Model, config: dict, epochs: int, context: TrialContext, x, y, **kwargs):
    """`fit` with a fresh optimizer whose rate decays over this run, on a compiled twin of `model`
    (suite.core.twins: no tracing again for a structure trained before); the trained values end up
    in `model`. Returns fit's result. The schedule's rate and length are part of the twin's key:
    traced as constants, they round differently from variables (measured: 0.047450688 against
    0.04745069 at step 29 of 200), and a twin must give the numbers a fresh model gives."""
    decay_steps = total_steps(len(x), epochs, config)
    # the image count too: whether the last batch is partial decides which trace serves a batch
    settings = {"compiled": "classifier", "decay_steps": decay_steps, "examples": len(x),
                "batch_size": config["batch_size"], **{k: config.get(k) for k in OPTIMIZER_SETTINGS}}
    twin = compiled_twin(model, settings, lambda twin: compile_classifier(twin, config, decay_steps))
    result = fit(twin, context, epochs=epochs, x=x, y=y, batch_size=config["batch_size"], **kwargs)
    copy_values(twin, model)
    return result


def total_steps(examples: int, epochs: int, config: dict) -> int:
    return epochs * -(-examples // config["batch_size"])


def train(model: keras.Model, x, y, tdata: TransferData, config: dict, epochs: int, context: TrialContext,
          sample_weight=None) -> list[dict]:
    """Fit with a fresh optimizer, the learning rate decaying over this run; returns one
    history row per epoch (validation on the target's validation images). A diverged or timed-out
    phase ends the trial (TrialStopped)."""
    least = config.get("steps_per_epoch", STEPS_PER_EPOCH) * config["batch_size"]
    if len(x) < least:
        repeat = np.resize(np.arange(len(x)), least)  # fit shuffles
        x, y = x[repeat], y[repeat]
        sample_weight = None if sample_weight is None else sample_weight[repeat]
    result = fit_classifier(model, config, epochs, context, x, y, sample_weight=sample_weight,
                            validation_data=(tdata.val_x, tdata.val_y), validation_batch_size=1024)
    if result.status != OK:
        raise TrialStopped(result.status, result.message, result.rows())
    return result.rows()


def predict_logits(model: keras.Model, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Inference in eager batches: for a model used once, tracing `predict` cost more than it saved."""
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict_logits(model, x), axis=1) == y))


def test_accuracy(model: keras.Model, tdata: TransferData) -> float:
    return accuracy(model, tdata.test_x, tdata.test_y)


def source_backbone(config: dict, seed: int, data: Dataset, context: TrialContext,
                    arch: str) -> tuple[keras.Model, dict]:
    """The backbone pre-trained on the source classes: built once per (arch, seed), then loaded.
    Returns (backbone, notes); notes hold the source model's validation accuracy on its own classes."""
    if config.get("source_weights") == "imagenet":  # online runners: downloaded ImageNet weights
        return build_backbone(arch, data.input_shape, weights="imagenet"), {}
    # `protocol` changes when pre-training does, so an older stored source model is not reused
    # (4: derive_seed; 5: the source images in the order drawn for the seed, suite.core.datasets.seed_sample;
    # 6: the study's `lr_schedule` from the step table, suite.techniques.optimizers.schedules)
    identity = {"what": "source", "arch": arch, "seed": seed, "data": data.fingerprint, "protocol": 6,
                "epochs": config["source_epochs"], "optimizer": config["optimizer"],
                "learning_rate": config["learning_rate"], "batch_size": config["batch_size"],
                "schedule": schedule_name(config)}

    def pretrain() -> tuple[keras.Model, dict]:
        keras.utils.set_random_seed(derive_seed(seed, "source_model"))
        tdata = split_transfer(data, 1, 1, seed)
        backbone = build_backbone(arch, data.input_shape)
        model = build_classifier(backbone, len(SOURCE_CLASSES))
        result = fit_classifier(model, config, config["source_epochs"], context, tdata.source_x, tdata.source_y)
        if result.status != OK:
            raise TrialStopped(result.status, f"source model: {result.message}", [])
        source_val = np.isin(data.y_val, SOURCE_CLASSES)
        return backbone, {"source_val_accuracy": accuracy(model, data.x_val[source_val], data.y_val[source_val])}

    return context.artifacts.load_or_build(identity, pretrain, lambda: build_backbone(arch, data.input_shape))


def finetuned(config: dict, seed: int, data: Dataset, tdata: TransferData, context: TrialContext, arch: str,
              x: np.ndarray | None = None, y: np.ndarray | None = None,
              noise: bool = False) -> tuple[keras.Model, list[dict]]:
    """(T3) Head first on the frozen backbone, then everything with a smaller backbone learning rate.
    Trains on the labelled images unless given `x, y`; `noise` adds RandAugment and dropout (T5)."""
    x, y = (tdata.labelled_x, tdata.labelled_y) if x is None else (x, y)
    backbone, _ = source_backbone(config, seed, data, context, arch)
    # 1. new head on the frozen backbone
    backbone.trainable = False
    model = build_classifier(backbone, tdata.classes, pretrained=True, backbone_lr_scale=config["lr_ratio"],
                             dropout=NOISE_DROPOUT if noise else 0.0, augment=noise)
    history = train(model, x, y, tdata, config, config["head_epochs"], context)
    # 2. unfreeze; `train` recompiles, which is when a trainable change takes effect
    backbone.trainable = True
    history += train(model, x, y, tdata, config, config["epochs"], context)
    return model, history


def cached_teacher(config: dict, seed: int, data: Dataset, tdata: TransferData,
                   context: TrialContext) -> tuple[keras.Model, dict]:
    """The `finetune` arm's model, trained once per setting and seed: it is also the large
    teacher of distillation and self-training. Returns (model, notes): its training
    `history` and its source model's notes."""
    arch = config["teacher_arch"]
    # `protocol` changes when the teacher's training does, so an older stored teacher is not reused
    # (3: seeded after its source model, whether that was built or loaded; 4: seeds from derive_seed;
    # 5: its images in the order drawn for the seed)
    identity = {"what": "teacher", "config": {k: v for k, v in config.items() if k != "procedure"}, "seed": seed,
                "data": data.fingerprint, "protocol": 5}

    def train_teacher() -> tuple[keras.Model, dict]:
        _, source = source_backbone(config, seed, data, context, arch)  # first (module docstring)
        keras.utils.set_random_seed(seed)
        model, history = finetuned(config, seed, data, tdata, context, arch)
        return model, {"history": history, **source}

    shape = data.input_shape
    return context.artifacts.load_or_build(
        identity, train_teacher,
        lambda: build_classifier(build_backbone(arch, shape), tdata.classes, pretrained=True,
                                 backbone_lr_scale=config["lr_ratio"]))

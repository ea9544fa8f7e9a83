"""procedures: the ways of reusing a trained network that the transfer study compares (T1-T5).

Registered procedures (kind "procedure"); each reads top to bottom: data, model, the one custom
piece, train, test. The protocol they share (split, networks, training, the source model and the
teacher kept as artifacts) is in `protocol`.
"""

from __future__ import annotations

import numpy as np

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.datasets import Dataset
from suite.core.fit import OK, outcome
from suite.core.keys import derive_seed
from suite.techniques.transfer.protocol import (
    CONFIDENCE,
    TRANSFER_SETTINGS,
    TransferData,
    build_backbone,
    build_classifier,
    cached_teacher,
    finetuned,
    predict_logits,
    source_backbone,
    split_transfer,
    test_accuracy,
    train,
)

keras = import_keras()


def _setup(config: dict, seed: int, data: Dataset) -> TransferData:
    keras.utils.set_random_seed(seed)
    return split_transfer(data, config["labels_per_class"], config["train_examples"], seed)


@registry.register("procedure", settings=TRANSFER_SETTINGS)
def scratch(config, seed, data, context, arch=None):
    """The teacher architecture trained on the target labels only (the baseline of T1)."""
    tdata = _setup(config, seed, data)
    model = build_classifier(build_backbone(arch or config["teacher_arch"], data.input_shape), tdata.classes)
    history = train(model, tdata.labelled_x, tdata.labelled_y, tdata, config, config["head_epochs"] + config["epochs"], context)
    return outcome(context, OK, history, {"test_accuracy": test_accuracy(model, tdata)})


@registry.register("procedure", settings=TRANSFER_SETTINGS)
def student_scratch(config, seed, data, context):
    """The small student trained on the target labels only (the baseline of T4)."""
    return scratch(config, seed, data, context, arch=config["student_arch"])


@registry.register("procedure", settings=TRANSFER_SETTINGS)
def freeze(config, seed, data, context):
    """(T2) Source backbone frozen, BN in inference mode; only a new head is trained."""
    tdata = _setup(config, seed, data)
    backbone, source = source_backbone(config, seed, data, context, config["teacher_arch"])
    keras.utils.set_random_seed(seed)  # after the artifacts (module docstring)
    backbone.trainable = False
    model = build_classifier(backbone, tdata.classes, pretrained=True)
    history = train(model, tdata.labelled_x, tdata.labelled_y, tdata, config, config["head_epochs"] + config["epochs"], context)
    return outcome(context, OK, history, {"test_accuracy": test_accuracy(model, tdata), **source})


@registry.register("procedure", settings=TRANSFER_SETTINGS)
def finetune(config, seed, data, context, lr_ratio: float | None = None):
    """(T3) Fine-tune the source backbone at `lr_ratio` x the head's learning rate: the
    study's setting (this model is also the teacher), or a variant's own ratio."""
    if lr_ratio is not None:
        config = {**config, "lr_ratio": lr_ratio}
    tdata = _setup(config, seed, data)
    model, notes = cached_teacher(config, seed, data, tdata, context)
    source = {k: v for k, v in notes.items() if k != "history"}
    return outcome(context, OK, notes.get("history", []), {"test_accuracy": test_accuracy(model, tdata), **source})


# Variants for the backbone learning-rate sweep (T3): finetune_ratio_1 gives every layer the same rate.
for _ratio in (0.01, 1):
    registry.register("procedure", f"finetune_ratio_{_ratio}", settings=TRANSFER_SETTINGS)(
        lambda config, seed, data, context, _ratio=_ratio: finetune(config, seed, data, context, float(_ratio)))


@keras.saving.register_keras_serializable("suite_transfer")
class Distiller(keras.Model):
    """(T4, Hinton et al. 2015) loss = alpha * CE(labels, student)
    + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)); the teacher is frozen.
    Images with sample weight 0 (the unlabelled pool) enter the KL term only. With `hard` the
    teacher's target is its argmax as a one-hot vector instead of its softened outputs (T4's
    control: the same loss, images and steps, without what soft labels add)."""

    def __init__(self, teacher: keras.Model, student: keras.Model, temperature: float, alpha: float,
                 hard: bool = False):
        super().__init__()
        self.teacher, self.student = teacher, student
        self.temperature, self.alpha, self.hard = temperature, alpha, hard
        self.teacher.trainable = False

    def call(self, x, training=False):
        return self.student(x, training=training)

    def get_config(self):  # what a compiled twin (suite.core.twins) is cloned and matched by
        return {"teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "temperature": self.temperature, "alpha": self.alpha, "hard": self.hard}

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["teacher"]),
                   keras.saving.deserialize_keras_object(config["student"]),
                   config["temperature"], config["alpha"], config["hard"])

    def teacher_targets(self, x):
        """What the student is taught on `x`: softmax(teacher / T), or with `hard` one_hot(argmax teacher)."""
        logits = self.teacher(x, training=False)
        if self.hard:
            return keras.ops.one_hot(keras.ops.argmax(logits, axis=-1), int(logits.shape[-1]), dtype=logits.dtype)
        return keras.ops.softmax(logits / self.temperature)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        if sample_weight is not None:
            hard = hard * keras.ops.reshape(keras.ops.cast(sample_weight, hard.dtype), keras.ops.shape(hard))
        t = self.temperature
        target = self.teacher_targets(x)
        student_log_soft = keras.ops.log_softmax(y_pred / t)
        # a one-hot target's zeros contribute 0 * (log 1e-8 - ...) = 0: the KL is then the cross-entropy
        kl = keras.ops.sum(target * (keras.ops.log(target + 1e-8) - student_log_soft), axis=-1)
        return keras.ops.mean(self.alpha * hard + (1.0 - self.alpha) * t * t * kl)


def distill(config, seed, data, context, temperature: float = 4.0, alpha: float = 0.1, hard: bool = False):
    """(T4) The small student learns from the fine-tuned large teacher's soft labels on the
    transfer set: the labelled images (cross-entropy and KL) and the unlabelled pool (KL only:
    the teacher knows more than the few labels, and its outputs on unlabelled images are
    what distillation can pass on; Hinton et al. likewise use an unlabelled transfer set).
    `hard` teaches the teacher's argmax instead (`distill_hard`), everything else equal."""
    tdata = _setup(config, seed, data)
    teacher, _ = cached_teacher(config, seed, data, tdata, context)
    keras.utils.set_random_seed(seed)
    student = build_classifier(build_backbone(config["student_arch"], data.input_shape), tdata.classes)
    distiller = Distiller(teacher, student, temperature, alpha, hard=hard)
    # the pool's label slots hold 0 with weight 0: no label of the pool exists to read
    x = np.concatenate([tdata.labelled_x, tdata.pool_x])
    y = np.concatenate([tdata.labelled_y, np.zeros(len(tdata.pool_x), tdata.labelled_y.dtype)])
    weight = np.concatenate([np.ones(len(tdata.labelled_x)), np.zeros(len(tdata.pool_x))]).astype("float32")
    history = train(distiller, x, y, tdata, config, config["head_epochs"] + config["epochs"], context,
                    sample_weight=weight)
    return outcome(context, OK, history, {"test_accuracy": test_accuracy(student, tdata),
                                       "teacher_test_accuracy": test_accuracy(teacher, tdata)})


# Variants for the temperature sweep: a variant is its function's keyword defaults.
for _t in (1, 2, 4, 8):
    registry.register("procedure", f"distill_t{_t}", settings=TRANSFER_SETTINGS)(
        lambda config, seed, data, context, _t=_t: distill(config, seed, data, context, temperature=float(_t)))


# T4's control: the same student, images (labelled + pool), true-label term, seed, steps and
# schedule as distill_t<T>, taught the teacher's hard decisions (one-hot argmax; at T = 1, since
# a temperature only softens soft targets, and T^2 = 1 keeps the loss on the hard-label scale
# that Hinton et al.'s T^2 factor matches the soft term to). Its teacher is the same artifact.
registry.register("procedure", "distill_hard", settings=TRANSFER_SETTINGS)(
    lambda config, seed, data, context: distill(config, seed, data, context, temperature=1.0, hard=True))


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


def self_train(config, seed, data, context, noise: bool = True):
    """(T5, noisy student, Xie et al. 2020) the teacher pseudo-labels the pool; a student of the
    same architecture learns labelled + pseudo-labelled images under noise; the student becomes
    the next teacher. Each student starts, like the teacher, from the source backbone and is
    fine-tuned the same way, so it differs from its teacher only by the pseudo-labelled
    images and the noise (a student from scratch would also lose the source pre-training)."""
    tdata = _setup(config, seed, data)
    teacher, _ = cached_teacher(config, seed, data, tdata, context)
    final = {"teacher_test_accuracy": test_accuracy(teacher, tdata)}
    history: list[dict] = []
    for iteration in range(1, config["iterations"] + 1):
        pseudo_x, pseudo_y, distinct = pseudo_label(teacher, tdata.pool_x, tdata.classes)
        x = np.concatenate([tdata.labelled_x, pseudo_x])
        y = np.concatenate([tdata.labelled_y, pseudo_y])
        keras.utils.set_random_seed(derive_seed(seed, f"student_{iteration}"))
        student, rows = finetuned(config, seed, data, tdata, context, config["teacher_arch"], x, y, noise=noise)
        history += [{**row, "epoch": len(history) + i + 1, "iteration": iteration} for i, row in enumerate(rows)]
        final[f"test_accuracy_iteration_{iteration}"] = test_accuracy(student, tdata)
        final[f"pseudo_labels_iteration_{iteration}"] = distinct
        teacher = student
    final["test_accuracy"] = final[f"test_accuracy_iteration_{config['iterations']}"]
    return outcome(context, OK, history, final)


registry.register("procedure", "self_train", settings=TRANSFER_SETTINGS)(
    lambda config, seed, data, context: self_train(config, seed, data, context))
registry.register("procedure", "self_train_no_noise", settings=TRANSFER_SETTINGS)(
    lambda config, seed, data, context: self_train(config, seed, data, context, noise=False))

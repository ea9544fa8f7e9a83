"""augment: data augmentations by name (kind "augmentation"), for the training batches only (D1).

Each registered function takes (config, num_classes, seed) and returns a `tf.data` map
over batches of (images, one-hot labels), built from core Keras preprocessing layers
called with `training=True`. `suite.techniques.standard.procedure.training_input` maps it over the shuffled
training batches; validation, test and probe images never pass through it. MixUp and
CutMix mix the labels as well, which is why augmented trials train on one-hot labels.

This module must not build models, read data or change the evaluation pipeline.
Images are (28, 28, 1) in [0, 1] for Fashion-MNIST: every layer gets `value_range=(0, 1)`
and works on one channel (RandAugment's colour ops leave a grey image unchanged).
"""

from __future__ import annotations

from collections.abc import Callable

from suite.core import registry
from suite.core.backend import import_keras
from suite.core.keys import derive_seed
from suite.core.settings import declare_setting, registered_name

keras = import_keras()

# `augmentation: <name>` in a study's `training:` section or as a factor (D1).
declare_setting("augmentation", "training", registered_name("augmentation"),
                "augments each training batch (standard procedure; default none)")

VALUE_RANGE = (0.0, 1.0)  # suite.data scales every image to [0, 1]


def _images_only(*layers) -> Callable:
    """A batch map applying `layers` in order to the images; labels pass unchanged."""

    def augment(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        return images, labels

    return augment


def _mixing(layer) -> Callable:
    """A batch map for MixUp/CutMix: images and one-hot labels are mixed together."""

    def augment(images, labels):
        mixed = layer({"images": images, "labels": labels}, training=True)
        return mixed["images"], mixed["labels"]

    return augment


@registry.register("augmentation")
def none(config: dict, num_classes: int, seed: int) -> Callable:
    """The control arm: training batches as they are (the standard procedure skips the pipeline)."""
    return _images_only()


@registry.register("augmentation")
def flip_crop(config: dict, num_classes: int, seed: int, padding: int = 2) -> Callable:
    """Horizontal flip (left/right mirror images of clothes keep their class; up/down would
    not) and a random 28x28 crop of the image zero-padded by `padding` pixels (a shift of
    up to `padding` pixels, the CIFAR recipe scaled to 28x28)."""
    import tensorflow as tf

    flip = keras.layers.RandomFlip("horizontal", seed=seed)
    crop = None

    def pad_and_crop(images):
        nonlocal crop
        height, width = images.shape[1], images.shape[2]
        if crop is None:
            crop = keras.layers.RandomCrop(height, width, seed=derive_seed(seed, "crop"))
        padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
        return crop(padded, training=True)

    def augment(images, labels):
        return pad_and_crop(flip(images, training=True)), labels

    return augment


@registry.register("augmentation")
def brightness_rotation(config: dict, num_classes: int, seed: int, brightness: float = 0.2,
                        rotation: float = 0.04) -> Callable:
    """Brightness shifted by up to +-`brightness` of the value range, rotation by up to
    +-`rotation` of a full turn (0.04: about 15 degrees), black fill like the background."""
    return _images_only(
        keras.layers.RandomBrightness(brightness, value_range=VALUE_RANGE, seed=seed),
        keras.layers.RandomRotation(rotation, fill_mode="constant", fill_value=0.0, seed=derive_seed(seed, "rotation")),
    )


@registry.register("augmentation")
def randaugment(config: dict, num_classes: int, seed: int, num_ops: int = 2, factor: float = 0.5) -> Callable:
    """RandAugment (Cubuk et al. 2020): `num_ops` random ops per batch at magnitude `factor`."""
    return _images_only(keras.layers.RandAugment(value_range=VALUE_RANGE, num_ops=num_ops, factor=factor, seed=seed))


@registry.register("augmentation")
def mixup(config: dict, num_classes: int, seed: int, alpha: float = 0.2) -> Callable:
    """MixUp (Zhang et al. 2018): convex mixes of image pairs and of their labels, lambda ~ Beta(alpha, alpha)."""
    return _mixing(keras.layers.MixUp(alpha=alpha, seed=seed))


@registry.register("augmentation")
def cutmix(config: dict, num_classes: int, seed: int, factor: float = 1.0) -> Callable:
    """CutMix (Yun et al. 2019): a box of another image pasted in, labels mixed by its area."""
    return _mixing(keras.layers.CutMix(factor=factor, seed=seed))

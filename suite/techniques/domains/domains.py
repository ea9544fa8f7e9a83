"""domains: a source and a target distribution of the same images, and data views that
draw training, dev and test sets from them (kind "data_view", claim D2).

The source is the dataset as it is (sharp studio photos); the target is the same kind of
image as a phone app would deliver it: blurred, down-scaled and scaled back up to the
network's input size, with sensor noise. `phone_shift` keeps the training-set size fixed
and replaces a share of it with target images, draws the dev set from the source or the
target, and always tests on the target. The transform is pure numpy/scipy and fixed
(a fixed noise seed per split), so every trial sees the same target images. This module
builds data; it trains and judges nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
from scipy import ndimage

from suite.core import registry
from suite.core.datasets import Dataset
from suite.core.keys import canonical_json
from suite.core.settings import Fraction, PositiveInt, PositiveNumber, Share, declare_setting, one_of

SOURCE, TARGET = "source", "target"
PHONE_DEFAULTS = {"phone_size": 14, "phone_blur": 1.0, "phone_noise": 0.05}  # chosen before any run (D2)
MIX_SEED = 7  # which training images are replaced by target images: fixed, the same for every trial
NOISE_SEEDS = {"train": 11, "val": 12, "test": 13}  # the phone's sensor noise, fixed per split


# What a study may set (as a training setting or a factor) for the views below.
declare_setting("target_share", "training", Share, "share of target (phone) images in training (D2)")
# read only when the trained net is scored: nets that differ only in their dev set train once (D2)
declare_setting("dev_distribution", "training", one_of(SOURCE, TARGET), "where the dev (validation) set comes from (D2)",
                evaluation_only=True)
declare_setting("phone_size", "training", PositiveInt, "side the phone image is taken at")
declare_setting("phone_blur", "training", PositiveNumber, "Gaussian blur sigma, input pixels")
declare_setting("phone_noise", "training", Fraction, "std of the sensor noise, images in [0, 1]")
VIEW_SETTINGS = ("target_share", "dev_distribution", "phone_size", "phone_blur", "phone_noise")
registry.add("metric", "dev_test_gap", "final")  # |dev accuracy - test accuracy| (the standard procedure records it)


def phone_images(x: np.ndarray, size: int = 14, blur: float = 1.0, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Images (n, h, w, c) in [0, 1] as a phone would deliver them: Gaussian blur (sigma in
    input pixels), bilinear down-scaling to size x size, bilinear up-scaling back to h x w,
    additive Gaussian noise, clipped to [0, 1]."""
    x = np.asarray(x, dtype=np.float32)
    n, h, w, c = x.shape
    blurred = ndimage.gaussian_filter(x, sigma=(0, blur, blur, 0), mode="nearest")
    small = ndimage.zoom(blurred, (1, size / h, size / w, 1), order=1, mode="nearest", grid_mode=True)
    back = ndimage.zoom(small, (1, h / small.shape[1], w / small.shape[2], 1), order=1, mode="nearest", grid_mode=True)
    back = back[:, :h, :w]
    if noise:
        back = back + np.random.default_rng(seed).normal(0.0, noise, back.shape).astype(np.float32)
    return np.clip(back, 0.0, 1.0).astype(np.float32)


def phone_settings(config: dict) -> dict:
    return {key: config.get(key, default) for key, default in PHONE_DEFAULTS.items()}


_PHONE_CACHE: dict[tuple, np.ndarray] = {}


def _phone_split(data: Dataset, split: str, settings: dict, count: int | None = None) -> np.ndarray:
    """The target version of one split (its first `count` images), made once per process."""
    # the training pool's order differs per seed (`seed_sample`); validation and test do not
    key = (data.fingerprint, data.sample if split == "train" else "", split, count, canonical_json(settings))
    if key not in _PHONE_CACHE:
        if split == "train":  # one seed's draw at a time: each is as large as the training set
            for stale in [k for k in _PHONE_CACHE if k[2] == "train"]:
                del _PHONE_CACHE[stale]
        x = getattr(data, f"x_{split}")
        _PHONE_CACHE[key] = phone_images(x[:count], settings["phone_size"], settings["phone_blur"],
                                         settings["phone_noise"], NOISE_SEEDS[split])
    return _PHONE_CACHE[key]


def target_positions(n: int, share: float) -> np.ndarray:
    """Which of the first n training images are replaced by target images (fixed draw)."""
    count = int(round(share * n))
    return np.sort(np.random.default_rng(MIX_SEED).permutation(n)[:count])


def view_fingerprint(data: Dataset, view: str, settings: dict) -> str:
    """A new fingerprint for a view's data: cached evaluation sets must not mix views."""
    text = canonical_json({"data": data.fingerprint, "view": view, **settings})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@registry.register("data_view", settings=VIEW_SETTINGS)
def phone_shift(data: Dataset, config: dict) -> Dataset:
    """Train on the first `train_examples` images with a `target_share` of them replaced by
    their phone version (same size either way: what differs is the distribution, not the
    amount); dev from the source or the target (`dev_distribution`); test on the target.
    Dev and test images stay disjoint: dev is the fixed validation split, test the test set.
    Without `dev_distribution` (a setting read only at evaluation, left out of the trials the plan
    trains) the net is scored on both dev sets (`val_views`), the target's first."""
    settings = phone_settings(config)
    share, dev = config.get("target_share", 0.0), config.get("dev_distribution")
    n = min(config["train_examples"], len(data.x_train))
    x_train = data.x_train[:n].copy()
    positions = target_positions(n, share)
    if len(positions):
        x_train[positions] = _phone_split(data, "train", settings, n)[positions]
    target_val = None if dev == SOURCE else _phone_split(data, "val", settings)  # made only where it is read
    x_val = data.x_val if dev == SOURCE else target_val
    views = () if dev else (("dev_distribution", TARGET, target_val), ("dev_distribution", SOURCE, data.x_val))
    fingerprint = view_fingerprint(data, "phone_shift", {**settings, "dev": dev or "both"})
    return dataclasses.replace(data, name=f"{data.name}/phone_shift", x_train=x_train, y_train=data.y_train[:n],
                               x_val=x_val, x_test=_phone_split(data, "test", settings), fingerprint=fingerprint,
                               val_views=views)

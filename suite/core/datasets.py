"""data: datasets by name (kind "dataset"), as fixed train / validation / test splits.

Fashion-MNIST is found, in order, in `--data-dir` (or $SUITE_DATA_DIR), the Keras cache
(~/.keras/datasets/fashion-mnist/), Debian's /usr/share/datasets/fashion-mnist/, and
last through `keras.datasets` (a download, when online). The validation split is carved
from the training set with a fixed permutation, so every trial sees the same split; the
test set is only for a trial's final number. The fingerprint of the raw arrays enters
every trial key, so changed data never reuses old results.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.core import registry
from suite.core.keys import derive_seed

VALIDATION_EXAMPLES = 5000
SPLIT_SEED = 20240601  # fixed forever: changing it changes every split and every key

FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_SIZES = {"x_train": 60000, "y_train": 60000, "x_test": 10000, "y_test": 10000}
HOW_TO_GET = (
    "Get Fashion-MNIST with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu, "
    "offline), or run once online so Keras downloads it to ~/.keras/datasets/fashion-mnist/, "
    "or pass --data-dir DIR (or set SUITE_DATA_DIR) pointing to the four IDX files "
    f"({', '.join(name + '.gz' for name in FASHION_FILES.values())})."
)


class DataError(RuntimeError):
    """The dataset is missing or corrupt; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # float32 in [0, 1], shape (n, h, w, c)
    y_train: np.ndarray  # int32 class ids
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    fingerprint: str  # sha256 of the raw arrays, first 16 hex digits
    source: str  # where it was read from (provenance only: never in a key)
    sample: str = "pool order"  # which order of the training pool x_train holds (see `seed_sample`)
    # validation sets a trained net is also scored on, one per level of a setting read only at
    # evaluation: ((setting, level, x_val), ...), `y_val` the labels of each; the first level's is `x_val`
    val_views: tuple = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def parse_idx(raw: bytes, path: str) -> np.ndarray:
    """Decode one IDX file (magic 0x0000 08 <ndim>, big-endian uint32 dims, uint8 data)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] not in (1, 3):
        raise DataError(f"{path}: not an IDX file of unsigned bytes. {HOW_TO_GET}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes, expected {expected} for shape {dims} (truncated?). {HOW_TO_GET}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _read_idx(directory: Path, stem: str) -> np.ndarray:
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.exists():
            try:
                raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            except (OSError, EOFError) as err:
                raise DataError(f"{path}: cannot be read ({err}). {HOW_TO_GET}") from err
            return parse_idx(raw, str(path))
    raise DataError(f"{directory}: {stem}(.gz) is missing. {HOW_TO_GET}")


def _has_fashion_files(directory: Path) -> bool:
    return all((directory / f"{stem}.gz").exists() or (directory / stem).exists() for stem in FASHION_FILES.values())


def find_fashion_dir(data_dir: str | None = None) -> Path | None:
    """The first candidate directory holding the four IDX files, or None."""
    explicit = data_dir or os.environ.get("SUITE_DATA_DIR")
    if explicit:
        path = Path(explicit).expanduser()
        for candidate in (path, path / "fashion-mnist"):
            if _has_fashion_files(candidate):
                return candidate
        raise DataError(f"--data-dir/SUITE_DATA_DIR {path} does not hold Fashion-MNIST. {HOW_TO_GET}")
    for candidate in (Path.home() / ".keras" / "datasets" / "fashion-mnist", Path("/usr/share/datasets/fashion-mnist")):
        if _has_fashion_files(candidate):
            return candidate
    return None


def _download_fashion() -> dict[str, np.ndarray]:
    """Last resort: let Keras download the files (fails fast when offline)."""
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as err:  # noqa: BLE001 - any failure here means "not available"
        raise DataError(f"Fashion-MNIST not found locally and the download failed ({err}). {HOW_TO_GET}") from err
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check_fashion(arrays: dict[str, np.ndarray], where: str) -> None:
    for key, size in FASHION_SIZES.items():
        shape = arrays[key].shape
        if shape[0] != size or (key.startswith("x") and shape[1:] != (28, 28)):
            expected = (size, 28, 28) if key.startswith("x") else (size,)
            raise DataError(f"{where}: {key} has shape {shape}, expected {expected}. {HOW_TO_GET}")
        if key.startswith("y") and arrays[key].max() > 9:
            raise DataError(f"{where}: {key} holds labels above 9. {HOW_TO_GET}")


def fingerprint(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()[:16]


def split_dataset(name: str, arrays: dict[str, np.ndarray], num_classes: int, source: str) -> Dataset:
    """Scale images to [0, 1], add a channel axis, carve the fixed validation split."""

    def images(x: np.ndarray) -> np.ndarray:
        x = x.astype("float32") / 255.0
        return x[..., None] if x.ndim == 3 else x

    order = np.random.default_rng(SPLIT_SEED).permutation(len(arrays["y_train"]))
    n_val = min(VALIDATION_EXAMPLES, len(order) // 5)
    train, val = order[n_val:], order[:n_val]
    x, y = images(arrays["x_train"]), arrays["y_train"].astype("int32")
    return Dataset(
        name=name, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
        x_test=images(arrays["x_test"]), y_test=arrays["y_test"].astype("int32"),
        num_classes=num_classes, fingerprint=fingerprint(arrays), source=source,
    )


@registry.register("dataset")
def fashion_mnist(data_dir: str | None = None) -> Dataset:
    """Zalando's Fashion-MNIST: 60k + 10k 28x28 grey images of 10 clothing classes."""
    directory = find_fashion_dir(data_dir)
    if directory is None:
        arrays, source = _download_fashion(), "keras.datasets download"
    else:
        arrays = {key: _read_idx(directory, stem) for key, stem in FASHION_FILES.items()}
        source = str(directory)
    _check_fashion(arrays, source)
    return split_dataset("fashion_mnist", arrays, 10, source)


@registry.register("dataset")
def synthetic(data_dir: str | None = None, train: int = 1200, test: int = 300) -> Dataset:
    """Ten learnable 28x28 patterns plus noise: for tests, needs no files."""
    rng = np.random.default_rng(0)
    prototypes = rng.uniform(0, 255, size=(10, 28, 28))

    def draw(n: int):
        labels = rng.integers(0, 10, n)
        noisy = prototypes[labels] * 0.6 + rng.uniform(0, 255, size=(n, 28, 28)) * 0.4
        return noisy.astype(np.uint8), labels.astype(np.uint8)

    x_train, y_train = draw(train)
    x_test, y_test = draw(test)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return split_dataset("synthetic", arrays, 10, "generated")


CIFAR_HOW_TO_GET = (
    "CIFAR-10 is not shipped offline: run once with network access so Keras downloads it to "
    "~/.keras/datasets/cifar-10-batches-py/, or pass --data-dir DIR holding cifar-10-batches-py/."
)


def _read_cifar_batches(directory: Path) -> dict[str, np.ndarray]:
    """The five training batches and the test batch of the python-pickle release."""
    import pickle

    def batch(name: str):
        with open(directory / name, "rb") as handle:
            raw = pickle.load(handle, encoding="bytes")
        images = np.asarray(raw[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return images, np.asarray(raw[b"labels"], dtype=np.uint8)

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch("test_batch")
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "x_test": x_test, "y_test": y_test}


@registry.register("dataset")
def cifar10(data_dir: str | None = None) -> Dataset:
    """CIFAR-10: 50k + 10k 32x32 colour images of 10 classes (online runners, `full` budgets)."""
    candidates = [Path(p).expanduser() / "cifar-10-batches-py" for p in (data_dir, os.environ.get("SUITE_DATA_DIR")) if p]
    candidates.append(Path.home() / ".keras" / "datasets" / "cifar-10-batches-py")
    directory = next((c for c in candidates if (c / "test_batch").exists()), None)
    try:
        if directory is not None:
            arrays, source = _read_cifar_batches(directory), str(directory)
        else:
            import keras

            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
            arrays = {"x_train": x_train, "y_train": y_train.ravel(), "x_test": x_test, "y_test": y_test.ravel()}
            source = "keras.datasets download"
    except Exception as err:  # noqa: BLE001 - unreadable or not downloadable: say how to get it
        raise DataError(f"CIFAR-10 could not be loaded ({err}). {CIFAR_HOW_TO_GET}") from err
    if arrays["x_train"].shape != (50000, 32, 32, 3) or arrays["x_test"].shape != (10000, 32, 32, 3):
        raise DataError(f"{source}: CIFAR-10 arrays have unexpected shapes. {CIFAR_HOW_TO_GET}")
    return split_dataset("cifar10", arrays, 10, source)


def seed_sample(data: Dataset, seed: int) -> Dataset:
    """The training pool in the order drawn for `seed`; validation and test unchanged.

    Procedures train on the first `train_examples` images of x_train, so each seed gets its
    own random subset of the pool, in its own order, and the spread over seeds covers the
    data drawn as well as the initial weights (Bouthillier et al. 2021: data sampling is among
    the largest sources of variance in a benchmark)."""
    order = sample_order(seed, len(data.y_train))
    return dataclasses.replace(data, x_train=data.x_train[order], y_train=data.y_train[order],
                               sample=f"drawn for seed {seed}")


def sample_order(seed: int, pool: int) -> np.ndarray:
    """The pool indices in the order `seed_sample` puts them: its first n are the seed's subset."""
    return np.random.default_rng(derive_seed(seed, "train_sample")).permutation(pool)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which a trial of `seed` visits its n training images in epoch `epoch` (from 1).

    Explicit rather than Keras' own shuffle inside `fit`, which cannot be reproduced outside
    Keras: a trial trained alone (`standard`) and as a member of a pack (`packed`) see the same
    batches, so both give the same numbers."""
    return np.random.default_rng(derive_seed(seed, f"epoch_order_{epoch}")).permutation(n)


_CACHE: dict[tuple[str, str | None], Dataset] = {}


def load_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """The named dataset, read once per process."""
    key = (name, data_dir)
    if key not in _CACHE:
        _CACHE[key] = registry.get("dataset", name)(data_dir=data_dir)
    return _CACHE[key]

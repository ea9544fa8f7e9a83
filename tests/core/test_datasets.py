import gzip
from pathlib import Path

import numpy as np
import pytest

from suite.core import datasets as data


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion(directory: Path, n_train=60000, n_test=10000, corrupt: str | None = None):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
              "x_test": rng.integers(0, 255, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test)}
    for key, stem in data.FASHION_FILES.items():
        raw = _idx_bytes(arrays[key])
        if key == corrupt:
            raw = raw[: len(raw) // 2]
        (directory / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1))


def test_parse_idx_round_trip_and_checks():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert (data.parse_idx(_idx_bytes(array), "x") == array).all()
    with pytest.raises(data.DataError, match="truncated"):
        data.parse_idx(_idx_bytes(array)[:-1], "x")
    with pytest.raises(data.DataError, match="not an IDX"):
        data.parse_idx(b"PK\x03\x04garbage", "x")


def test_synthetic_splits_are_fixed_and_disjoint(synthetic_data):
    d = synthetic_data
    assert d.x_train.shape[1:] == (28, 28, 1) and d.x_train.dtype == np.float32
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    assert len(d.x_val) > 0 and len(d.x_test) > 0
    again = data.synthetic()
    assert again.fingerprint == d.fingerprint
    assert np.array_equal(again.x_val, d.x_val)


def test_data_dir_is_used_first_and_split(tmp_path):
    _write_fashion(tmp_path / "fm")
    d = data.fashion_mnist(data_dir=str(tmp_path / "fm"))
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (55000, 5000, 10000)
    assert d.source == str(tmp_path / "fm")


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(data.DataError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist(data_dir=str(tmp_path / "empty"))


def test_corrupt_file_is_a_clear_error(tmp_path):
    _write_fashion(tmp_path / "bad", corrupt="y_train")
    with pytest.raises(data.DataError, match="train-labels"):
        data.fashion_mnist(data_dir=str(tmp_path / "bad"))


def test_wrong_shape_is_a_clear_error(tmp_path):
    _write_fashion(tmp_path / "small", n_train=100)
    with pytest.raises(data.DataError, match="expected"):
        data.fashion_mnist(data_dir=str(tmp_path / "small"))


def test_fingerprint_changes_with_the_data():
    a = {"x": np.zeros(3, np.uint8)}
    b = {"x": np.array([0, 0, 1], np.uint8)}
    assert data.fingerprint(a) != data.fingerprint(b)

"""Shared fixtures: a tiny synthetic study, so tests need no files and no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402
import yaml  # noqa: E402

from suite.core.device import apply_device_options  # noqa: E402
from suite.core.plugins import load_plugins  # noqa: E402

load_plugins()  # the techniques register their pieces, settings and procedures (as the CLI and workers do)
# this process sizes its thread pools before any test runs an op, as every worker does, so that
# in-process trials compute the same numbers as those of spawned workers
apply_device_options()

REPO = Path(__file__).resolve().parent.parent

TINY_STUDY = {
    "name": "tiny",
    "title": "Tiny study",
    "question": "Does He beat N(0, 0.01) on a toy problem?",
    "dataset": "synthetic",
    "model": {"family": "mlp", "depth": 2, "width": 16},
    "factors": {"kernel_initializer": ["he_normal", "normal_0.01"], "activation": ["relu"]},
    "training": {"optimizer": "sgd", "learning_rate": [0.1, 0.05], "lr_schedule": "constant", "batch_size": 64},
    "probes": ["activation_stats"],
    "report": ["probe_curves", "activation_histograms"],
    "profiles": {
        "smoke": {"train_examples": 256, "epochs": 1, "seeds": 1},
        "quick": {"train_examples": 512, "epochs": 2, "seeds": 2},
        "standard": {"train_examples": 256, "epochs": 1, "seeds": 2, "looks": [2, 3]},
        "full": {"train_examples": 960, "epochs": 3, "seeds": 3},
    },
    "claims": [
        {"id": "T1", "text": "He learns, N(0, 0.01) does not", "metric": "test_accuracy",
         "better": {"kernel_initializer": "he_normal"}, "worse": {"kernel_initializer": "normal_0.01"},
         "margin": 0.01, "margin_reason": "one point of accuracy", "needs": "training"},
        {"id": "T2", "text": "He spreads activations at init", "metric": "depth_std_ratio", "epoch": 0,
         "better": {"kernel_initializer": "he_normal"}, "worse": {"kernel_initializer": "normal_0.01"},
         "margin": 0.1, "margin_reason": "a tenth of the first layer's spread", "needs": "initialisation"},
    ],
}


def write_study(directory: Path, study: dict, name: str | None = None) -> Path:
    path = directory / f"{name or study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture
def scoped_registry():
    """Names and settings a test registers are gone after it (suite.core.registry.scoped)."""
    from suite.core import registry

    with registry.scoped():
        yield registry


@pytest.fixture
def tiny_study_dict() -> dict:
    import copy

    return copy.deepcopy(TINY_STUDY)


@pytest.fixture
def studies_dir(tmp_path, tiny_study_dict) -> Path:
    directory = tmp_path / "studies"
    directory.mkdir()
    write_study(directory, tiny_study_dict)
    return directory


@pytest.fixture(scope="session")
def synthetic_data():
    from suite.core.datasets import load_dataset

    return load_dataset("synthetic")


def pytest_collection_modifyitems(items):
    """A test that starts processes or runs on JAX is slow too (`-m "not slow"` leaves it out)."""
    for item in items:
        if item.get_closest_marker("subprocess") or item.get_closest_marker("jax"):
            item.add_marker(pytest.mark.slow)

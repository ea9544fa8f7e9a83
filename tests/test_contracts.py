"""Contract tests generated over every registry kind: a new entry is tested without a new test."""

import inspect

import keras
import pandas as pd
import pytest
from pydantic import TypeAdapter

from suite.core import registry, settings
from suite.core.fit import build_optimizer
from suite.core.loader import list_study_paths, load_study
from suite.core.study import Study

# ---- every registry kind -----------------------------------------------------------------
# A new procedure, report section, data view, dataset, optimizer, setting or metric is checked
# here without a test of its own.

SETTINGS = settings.list_settings()


def _readers() -> set[str]:
    """Every setting some registered piece reads."""
    names = set(settings.CORE_SETTINGS)
    for kind in ("procedure", "data_view"):
        for name in registry.entries(kind):
            names |= set(registry.metadata(kind, name).get("settings", ()))
    for family in registry.entries("model"):
        names |= settings.family_parameters(family) | {"family"}
    return names


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_setting_contract(name):
    setting = SETTINGS[name]
    assert setting.section in settings.SECTIONS and setting.doc
    TypeAdapter(setting.type).json_schema()  # a valid pydantic type
    assert name in _readers(), f"setting {name!r} is declared but nothing reads it"


@pytest.mark.parametrize("name", registry.list_names("procedure"))
def test_procedure_contract(name):
    fn = registry.get("procedure", name)
    assert list(inspect.signature(fn).parameters)[:4] == ["config", "seed", "data", "context"]
    meta = registry.metadata("procedure", name)
    assert set(meta.get("settings", ())) <= set(SETTINGS), "a procedure reads only declared settings"


@pytest.mark.parametrize("name", registry.list_names("data_view"))
def test_data_view_contract(name, synthetic_data):
    meta = registry.metadata("data_view", name)
    assert set(meta.get("settings", ())) <= set(SETTINGS)
    view = registry.get("data_view", name)(synthetic_data, {"train_examples": 64})  # a trial's config has a size
    assert view.x_test.shape[1:] == synthetic_data.x_test.shape[1:] and view.num_classes == synthetic_data.num_classes


@pytest.mark.parametrize("name", registry.list_names("dataset"))
def test_dataset_contract(name):
    from suite.core.datasets import DataError, load_dataset

    try:
        data = load_dataset(name)
    except DataError as err:  # a dataset this machine lacks says how to get it
        assert "install" in str(err).lower() or "download" in str(err).lower() or "--data-dir" in str(err)
        return
    assert len(data.x_train) == len(data.y_train) and len(data.x_val) and len(data.x_test) and data.fingerprint


@pytest.mark.parametrize("name", registry.list_names("optimizer"))
def test_optimizer_contract(name):
    optimizer = build_optimizer({"optimizer": name, "learning_rate": 0.01})
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.01)


@pytest.mark.parametrize("name", sorted(registry.entries("metric")))
def test_metric_contract(name):
    assert registry.entries("metric")[name] in ("final", "epoch")
    probe = registry.metadata("metric", name).get("probe")
    assert probe is None or registry.lookup("probe", probe) is not None


EMPTY_STUDY = Study(name="empty", title="t", question="q", dataset="synthetic", model={}, factors={}, training={},
                    probes=(), profiles={}, claims=())


@pytest.mark.parametrize("name", registry.list_names("report_section"))
def test_report_section_contract(name):
    """A section is named by some shipped study, and draws nothing (no crash) from empty frames."""
    named_by = [path.stem for path in list_study_paths() if name in load_study(path).report]
    assert named_by, f"report section {name!r} is registered but no study names it"
    entries = registry.get("report_section", name)(pd.DataFrame(), pd.DataFrame(), EMPTY_STUDY, pd.DataFrame())
    assert entries == []

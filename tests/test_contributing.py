"""CONTRIBUTING.md's worked examples (and the README's study file) run as written: every code block is executed, every study
file goes through the loader, so the page cannot drift from the code again. Registrations are
scoped to each test (the `scoped_registry` fixture)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from suite.core import loader, registry

PAGE = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    """Each worked example's text, by its number ("1", "2", "3")."""
    parts = re.split(r"^## (\d)\. ", PAGE, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _run(code: str, namespace: dict | None = None) -> dict:
    namespace = {"__name__": "contributing_example", **(namespace or {})}
    exec(compile(code, "CONTRIBUTING.md", "exec"), namespace)  # noqa: S102 - the page's own code
    return namespace


def test_every_worked_example_is_found():
    sections = _sections()
    assert set(sections) == {"1", "2", "3"}
    assert [len(_blocks(sections[n], "python")) for n in "123"] == [1, 3, 1]
    assert [len(_blocks(sections[n], "yaml")) for n in "123"] == [0, 1, 1]


def test_example_1_a_new_activation_registers_builds_and_loads(scoped_registry, tmp_path, tiny_study_dict):
    from suite.core.backend import import_keras

    keras = import_keras()
    _run(_blocks(_sections()["1"], "python")[0], {"registry": registry, "keras": keras})
    layer = registry.get("activation", "bent_identity")("bent_identity")
    x = np.array([[-2.0, 0.0, 3.0]], dtype="float32")
    expected = (np.sqrt(x * x + 1) - 1) / 2 + x
    assert np.allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-6)
    # "the study loader now accepts activation: bent_identity in any study's factors"
    tiny_study_dict["factors"]["activation"] = ["relu", "bent_identity"]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study_dict, sort_keys=False))
    assert "bent_identity" in loader.load_study(path).factors["activation"]


def test_example_2_a_new_procedure_its_study_and_its_test(scoped_registry, tmp_path, synthetic_data):
    package_init, procedure, test = _blocks(_sections()["2"], "python")
    assert "import procedure" in package_init
    _run(procedure)
    assert registry.lookup("procedure", "label_smoothing") is not None
    study_text = _blocks(_sections()["2"], "yaml")[0]
    path = tmp_path / "label_smoothing.yaml"
    path.write_text(study_text)
    study = loader.load_study(path)  # the loader refused this example once: it must accept it now
    assert [claim.id for claim in study.claims] == ["LS1"]
    tests = _run(test)
    tests["test_label_smoothing_trains_and_records_every_epoch"](synthetic_data)


def test_example_3_a_report_section_draws_nothing_from_empty_frames_and_is_named(scoped_registry):
    import suite.techniques.optimizers.sections as sections

    code = _blocks(_sections()["3"], "python")[0]
    names = _run(code, dict(vars(sections)))  # the module's imports and its `_applies` guard
    section = registry.get("report_section", "best_rate_per_optimizer")
    assert section is names["best_rate_per_optimizer"]
    study = loader.load_study(REPO / "studies" / "optimizer.yaml")
    assert section(pd.DataFrame(), pd.DataFrame(), study) == []
    report_line = yaml.safe_load(_blocks(_sections()["3"], "yaml")[0])["report"]
    for name in report_line:
        assert registry.lookup("report_section", name) is not None, name


@pytest.mark.parametrize("kind", ["activation", "procedure", "report_section"])
def test_the_examples_leave_the_registry_as_they_found_it(kind):
    # runs after the examples in file order: their scoped registrations are gone
    assert {"activation": "bent_identity", "procedure": "label_smoothing",
            "report_section": "best_rate_per_optimizer"}[kind] not in registry.list_names(kind)


def test_the_readme_study_file_passes_the_loader(tmp_path):
    """The README's abridged study file is a study file the loader accepts, as it says."""
    (block,) = _blocks((REPO / "README.md").read_text(encoding="utf-8"), "yaml")
    path = tmp_path / "init.yaml"
    path.write_text(block)
    study = loader.load_study(path)
    assert len(study.list_arms()) == 18 and [claim.id for claim in study.claims] == ["I5"]

"""The JAX backend (what GPU images often carry instead of TensorFlow): a study's smoke run
passes there too, in a fresh process since the backend is fixed at Keras import."""

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")


@pytest.mark.jax
def test_tiny_study_runs_on_jax(tmp_path, studies_dir):
    command = [sys.executable, str(REPO / "run_all.py"), "--study", "tiny", "--profile", "quick", "--backend", "jax",
               "--executor", "inline", "--studies-dir", str(studies_dir), "--results", str(tmp_path / "results"),
               "--out", str(tmp_path / "reports"), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "reports" / "tiny" / "summary.json").read_text())
    assert summary["trials"] == {"ok": 8} and summary["provenance"]["backend"] == "jax"
    # the backend is part of the key: a TensorFlow run of the same study shares no trial
    records = list((tmp_path / "results" / "tiny").glob("*.json"))
    assert all(json.loads(p.read_text())["provenance"]["backend"] == "jax" for p in records)

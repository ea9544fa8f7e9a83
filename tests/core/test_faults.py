"""Faults: a run killed with SIGKILL loses only its trials in flight; a rerun completes it
to the same result as an uninterrupted run; two runs never share a results directory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_study


def _command(studies: Path, results: Path, out: Path) -> list[str]:
    return [sys.executable, str(REPO / "run_all.py"), "--study", "tiny", "--profile", "quick", "--executor", "inline",
            "--studies-dir", str(studies), "--results", str(results), "--out", str(out), "--quiet"]


def _records(results: Path) -> dict:
    return {p.stem: p.stat().st_mtime_ns for p in (results / "tiny").glob("*.json")}


@pytest.mark.subprocess
def test_sigkill_then_rerun_keeps_every_finished_trial_once(tmp_path, tiny_study_dict):
    studies = tmp_path / "studies"
    studies.mkdir()
    tiny_study_dict["profiles"]["quick"].update(epochs=3, seeds=3)  # 12 trials: time to kill mid-run
    write_study(studies, tiny_study_dict)
    results, out = tmp_path / "results", tmp_path / "reports"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(_command(studies, results, out), env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while len(_records(results)) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    survivors = _records(results)
    assert 3 <= len(survivors) < 12

    rerun = subprocess.run(_command(studies, results, out), env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"ran {12 - len(survivors)} trials, reused {len(survivors)}" in rerun.stderr
    after = _records(results)
    assert len(after) == 12
    assert all(after[key] == mtime for key, mtime in survivors.items())  # finished trials were not rewritten

    # the report equals that of an uninterrupted run: same trial keys and counts
    clean = subprocess.run(_command(studies, tmp_path / "clean", tmp_path / "clean_reports"), env=env,
                           capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    assert set(_records(tmp_path / "clean")) == set(after)
    resumed = json.loads((out / "tiny" / "summary.json").read_text())
    uninterrupted = json.loads((tmp_path / "clean_reports" / "tiny" / "summary.json").read_text())
    assert resumed["trials"] == uninterrupted["trials"] == {"ok": 12}
    assert [(c["id"], c["n"]) for c in resumed["claims"]] == [(c["id"], c["n"]) for c in uninterrupted["claims"]]


@pytest.mark.subprocess
def test_a_second_run_on_the_same_results_exits_2(tmp_path, studies_dir):
    from suite.core.store import TrialStore

    with TrialStore(tmp_path / "results", "tiny").lock():
        second = subprocess.run(_command(studies_dir, tmp_path / "results", tmp_path / "out"),
                                capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert "in use by another run" in second.stderr

"""Same command, same seeds, same numbers: inline, with one and with two worker processes, and
killed then resumed (which also changes the trial order and which trials reuse a compiled model).
RandAugment is in the study: its random draws must be reproducible too.

Every run trains on the same number of threads per trial (the suite's default), which the
records must say: on an AVX2-only CPU, float32 kernels round differently on 1 and on 2 threads,
so the numbers were equal only where a CPU's kernels happened not to care."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_study

VOLATILE = {"timing", "provenance", "traceback"}  # seconds and machine facts, never numbers of the model


def _threads(results: Path) -> set:
    return {json.dumps(json.loads(path.read_text())["provenance"]["threads"], sort_keys=True)
            for path in (results / "det").glob("*.json")}


def _study(tiny_study_dict: dict) -> dict:
    study = dict(tiny_study_dict, name="det")
    study["factors"] = {**study["factors"], "augmentation": ["none", "randaugment"]}
    study["training"] = {**study["training"], "learning_rate": 0.1}
    study["profiles"] = {**study["profiles"], "quick": {"train_examples": 256, "epochs": 2, "seeds": 2}}
    return study


def _command(studies: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "run_all.py"), "--studies-dir", str(studies), "--study", "det",
            "--profile", "quick", "--quiet", "--results", str(results), "--out", str(results / "reports"), *extra]


def _numbers(results: Path) -> dict:
    records = {}
    for path in (results / "det").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["key"]] = {k: v for k, v in record.items() if k not in VOLATILE}
    return records


@pytest.mark.subprocess
def test_same_seeds_give_identical_records_whatever_the_executor_or_a_kill(tmp_path, tiny_study_dict):
    studies = tmp_path / "studies"
    studies.mkdir()
    write_study(studies, _study(tiny_study_dict))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}

    inline, one, two, resumed = (tmp_path / name for name in ("inline", "one", "two", "resumed"))
    subprocess.run(_command(studies, inline, "--executor", "inline"), check=True, env=env, capture_output=True)
    for results, workers in ((one, "1"), (two, "2")):
        subprocess.run(_command(studies, results, "--executor", "processes", "--workers", workers), check=True, env=env,
                       capture_output=True)
    # killed (SIGKILL: no clean-up) as soon as two trials are stored, then the same command again
    process = subprocess.Popen(_command(studies, resumed, "--executor", "inline"), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((resumed / "det").glob("*.json"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(_numbers(resumed)) < 8, "the run finished before it could be killed: the test proves nothing"
    subprocess.run(_command(studies, resumed, "--executor", "inline"), check=True, env=env, capture_output=True)

    reference = _numbers(inline)
    assert len(reference) == 8 and all(r["status"] == "ok" for r in reference.values())
    # packs too: the un-augmented arms train packed, RandAugment's alone (packs are fixed by the plan)
    assert {"packed" in r for r in reference.values()} == {True, False}
    for name, results in (("1 worker", one), ("2 workers", two), ("killed and resumed", resumed)):
        other = _numbers(results)
        assert other.keys() == reference.keys()
        for key, record in reference.items():
            assert other[key] == record, f"{name}: trial {record['arm']} seed {record['seed']} differs"
    # one thread count in every record of every run, whatever the executor and worker count
    assert len(set.union(*(_threads(results) for results in (inline, one, two, resumed)))) == 1


def test_a_seed_draws_its_own_training_subset_and_order():
    from suite.core.datasets import load_dataset, seed_sample

    data = load_dataset("synthetic")
    first, again, other = seed_sample(data, 0), seed_sample(data, 0), seed_sample(data, 1)
    assert (first.x_train == again.x_train).all() and (first.y_train == again.y_train).all()
    assert not (first.y_train[:100] == other.y_train[:100]).all()
    assert sorted(first.y_train.tolist()) == sorted(data.y_train.tolist())  # the same pool, reordered
    assert (first.x_val == data.x_val).all() and (first.x_test == data.x_test).all()  # evaluation stays fixed

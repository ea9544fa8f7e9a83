"""Executors: every one gives the same trial keys and numbers as inline; a trial past its
timeout ends as `timeout`; a killed worker loses no finished trial; device settings."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_study

from suite.core import executors, loader
from suite.core.device import apply_device_options, device_settings, resolve_precision
from suite.core.executors import ExecutorOptions, plan_gpu_slots
from suite.core.packs import form_packs, timed_keys
from suite.core.plan import Trial, plan_trials
from suite.core.runner import run_study
from suite.core.store import TrialStore
from suite.core.study import matches


def _study(studies_dir) -> loader.Study:
    return loader.load_study(studies_dir / "tiny.yaml")


@pytest.mark.subprocess
@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_every_executor_gives_the_same_keys_and_numbers(tmp_path, studies_dir, synthetic_data, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    study = _study(studies_dir)
    inline = run_study(study, study.profiles["smoke"], synthetic_data, TrialStore(tmp_path / "a", "tiny"),
                       show_progress=False)
    other = run_study(study, study.profiles["smoke"], synthetic_data, TrialStore(tmp_path / "b", "tiny"),
                      show_progress=False, executor=executor, options=ExecutorOptions(workers=2))
    assert set(other.records) == set(inline.records)
    assert all(r["status"] == "ok" for r in other.records.values())
    for key, record in inline.records.items():  # same seed, same data, same threads per trial: same numbers
        assert other.records[key]["history"] == record["history"] and other.records[key]["final"] == record["final"]
        provenance = other.records[key]["provenance"]  # recorded by the process that trained
        assert provenance["precision"] == "float32" and provenance["threads"] == record["provenance"]["threads"]


def test_a_trial_past_its_timeout_ends_as_timeout_and_runs_again(tmp_path, studies_dir, synthetic_data):
    study = _study(studies_dir)
    store = TrialStore(tmp_path, "tiny")
    timed = run_study(study, study.profiles["quick"], synthetic_data, store, show_progress=False,
                      options=ExecutorOptions(trial_timeout=1e-6))
    assert {r["status"] for r in timed.records.values()} == {"timeout"}
    assert all("--trial-timeout" in r["message"] and r["history"] for r in timed.records.values())
    again = run_study(study, study.profiles["quick"], synthetic_data, store, show_progress=False)
    assert again.ran == len(timed.trials) and {r["status"] for r in again.records.values()} == {"ok"}


def _hang_on_seed_0(trial: Trial, data) -> dict:
    """A trial body for the workers: seed 0 hangs outside any `fit` (no Deadline callback can stop it)."""
    if trial.seed == 0:
        time.sleep(600)
    return {"status": "ok", "message": "", "final": {"seed": trial.seed}}


@pytest.mark.subprocess
def test_a_trial_hung_outside_fit_is_killed_and_its_neighbours_run_again(monkeypatch, synthetic_data):
    """The hard kill: past its timeout plus the grace, the hung trial's worker is killed and
    the trial marked `timeout`; a trial lost with the pool runs again in a fresh one."""
    monkeypatch.setattr(executors, "KILL_GRACE_SECONDS", 15.0)  # > a spawned worker's start-up (imports, data)
    trials = [Trial(key=f"trial-{seed}", study="tiny", arm={}, tuning={}, seed=seed, config={}, probes=())
              for seed in range(3)]
    outcomes: dict = {}
    started = time.monotonic()
    executors.run_processes(trials, synthetic_data, _hang_on_seed_0, on_start=lambda trial: None,
                            on_done=lambda trial, outcome: outcomes.setdefault(trial.seed, []).append(outcome),
                            options=ExecutorOptions(workers=2, trial_timeout=1.0))
    assert time.monotonic() - started < 120  # not the 600 s the trial would have hung
    assert [o["status"] for o in outcomes[0]] == ["timeout"] and "killed after 1 s" in outcomes[0][0]["message"]
    assert [o["status"] for o in outcomes[1]] == [o["status"] for o in outcomes[2]] == ["ok"]


def _timed_span(trial: Trial, data) -> dict:
    """A trial body for the workers: when it ran, in wall-clock seconds."""
    started = time.time()
    time.sleep(0.3)
    return {"status": "ok", "message": "", "final": {"span": (started, time.time())}}


@pytest.mark.subprocess
@pytest.mark.parametrize("executor", ["processes", "ray"])
def test_an_exclusive_trial_runs_with_nothing_beside_it(synthetic_data, executor):
    """Trials whose step time a claim compares (ExecutorOptions.exclusive) run after the others,
    one at a time: no other trial's span overlaps theirs."""
    if executor == "ray":
        pytest.importorskip("ray")
        from ray import cloudpickle  # Ray's workers cannot import this test module: ship _timed_span by value
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    trials = [Trial(key=f"trial-{seed}", study="tiny", arm={}, tuning={}, seed=seed, config={}, probes=())
              for seed in range(6)]
    exclusive = frozenset({"trial-0", "trial-3"})
    spans: dict = {}
    executors.registry.get("executor", executor)(
        trials, synthetic_data, _timed_span, on_start=lambda trial: None,
        on_done=lambda trial, outcome: spans.setdefault(trial.key, outcome["final"]["span"]),
        options=ExecutorOptions(workers=2, exclusive=exclusive))
    assert len(spans) == 6
    for key in exclusive:
        start, end = spans[key]
        for other, (other_start, other_end) in spans.items():
            assert other == key or other_end <= start or other_start >= end, f"{other} ran beside {key}"
    shared_end = max(end for key, (_, end) in spans.items() if key not in exclusive)
    assert all(spans[key][0] >= shared_end for key in exclusive)  # the others first: no worker waits idle


def test_the_trials_a_timing_claim_compares_are_exclusive(studies_dir):
    study = _study(studies_dir)
    trials = plan_trials(study, study.profiles["smoke"], "fingerprint")
    assert timed_keys(form_packs(trials, study=study), study) == frozenset()  # tiny has no timing claim
    claim = dataclasses.replace(study.claims[0], metric="step_seconds")
    timed = dataclasses.replace(study, claims=(claim,))
    keys = timed_keys(form_packs(trials, study=timed), timed)
    compared = [t.key for t in trials if matches(t.arm, claim.better) or matches(t.arm, claim.worse)]
    assert keys and keys == frozenset(compared)


def test_runs_at_half_the_budget_run_beside_others_unless_a_timing_claim_reads_them(studies_dir):
    """The budget check's runs at B/2 serve claims about trained nets; a step-time claim about
    training reads only the runs at the budget, so its arms' runs at B/2 need not run alone."""
    study = _study(studies_dir)
    trained = dataclasses.replace(study.claims[0], needs="trained")  # its arms also run at B/2
    step_time = dataclasses.replace(study.claims[0], id="T3", metric="step_seconds", needs="training")
    timed = dataclasses.replace(study, claims=(trained, step_time))
    trials = plan_trials(timed, timed.profiles["quick"], "fingerprint")
    half = {t.key for t in trials if t.half_budget}
    assert half  # two epochs: the check runs at one
    keys = timed_keys(form_packs(trials, study=timed), timed)
    assert keys and keys == {t.key for t in trials if not t.half_budget}
    # a timing claim about trained nets reads its runs at B/2 too: then they run alone
    trained_time = dataclasses.replace(step_time, needs="trained")
    timed = dataclasses.replace(timed, claims=(trained, trained_time))
    assert half <= timed_keys(form_packs(trials, study=timed), timed)


def test_records_of_timed_trials_say_they_ran_alone(tmp_path, tiny_study_dict, synthetic_data):
    tiny_study_dict["claims"].append({"id": "T3", "text": "He steps as fast", "metric": "step_seconds",
                                      "better": {"kernel_initializer": "he_normal"}, "needs": "training",
                                      "than": 1.0, "direction": "lower", "margin": 0.0001,
                                      "margin_reason": "a tenth of a millisecond"})
    study = loader.load_study(write_study(tmp_path, tiny_study_dict))
    run = run_study(study, study.profiles["smoke"], synthetic_data, TrialStore(tmp_path / "r", "tiny"),
                    show_progress=False)
    alone = {r["arm"]["kernel_initializer"]: r["timing"].get("timed_alone", False) for r in run.records.values()}
    assert alone == {"he_normal": True, "normal_0.01": False}
    # a stored record of a timed trial that was not timed alone (a run where no timing claim read
    # it) runs again, alone; the others are kept
    store = TrialStore(tmp_path / "r", "tiny")
    he = next(r for r in run.records.values() if r["arm"]["kernel_initializer"] == "he_normal")
    store.save_record({**he, "timing": {k: v for k, v in he["timing"].items() if k != "timed_alone"}})
    again = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    assert (again.ran, again.skipped) == (1, len(run.records) - 1) and again.records[he["key"]]["timing"]["timed_alone"] is True


def _spawned_workers(parent: int) -> list[int]:
    """Pool workers of `parent`, largest first: spawned children that run multiprocessing.spawn's
    main, ordered by resident memory (a worker holds TensorFlow and the data; the progress
    queue's manager process, spawned too, holds neither)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().split()[3]) == parent \
                    and b"spawn_main" in (proc / "cmdline").read_bytes():
                found.append((int((proc / "statm").read_text().split()[1]), int(proc.name)))
        except (OSError, IndexError, ValueError):
            continue
    return [pid for _, pid in sorted(found, reverse=True)]


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_a_killed_worker_loses_no_finished_trial(tmp_path, tiny_study_dict):
    studies = tmp_path / "studies"
    studies.mkdir()
    # 24 trials in 4 units (packs of 9 and 3 per activation), so work is left when the first unit is stored
    tiny_study_dict["profiles"]["quick"].update(epochs=3, seeds=3)
    tiny_study_dict["factors"]["activation"] = ["relu", "tanh"]
    write_study(studies, tiny_study_dict)
    command = [sys.executable, str(REPO / "run_all.py"), "--study", "tiny", "--profile", "quick", "--executor", "processes",
               "--workers", "2", "--studies-dir", str(studies), "--results", str(tmp_path / "results"),
               "--out", str(tmp_path / "out"), "--quiet"]
    records = lambda: list((tmp_path / "results" / "tiny").glob("*.json"))  # noqa: E731
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while len(records()) < 2 and time.time() < deadline and run.poll() is None:
        time.sleep(0.2)
    victims = _spawned_workers(run.pid)
    assert victims, "no worker process found"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 1, stderr  # some trial ended in error, the study went on
    stored = [json.loads(path.read_text()) for path in records()]
    assert len(stored) == 24
    errors = [r for r in stored if r["status"] == "error"]
    # what the killed worker ran (a trial, or a pack of trials trained together) and at most what the
    # other worker ran when the pool broke; every other trial finished
    lost_units = {r.get("packed", {}).get("pack", r["key"]) for r in errors}
    assert 1 <= len(lost_units) <= 2 and all("died" in r["message"] for r in errors)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"ran {len(errors)} trials, reused {24 - len(errors)}" in rerun.stderr


def test_device_settings_on_this_cpu():
    settings = apply_device_options()
    assert settings is device_settings()
    assert settings["precision"] == "float32" and settings["device"] == "CPU" and settings["memory"] == "host"


@pytest.mark.parametrize("requested, gpus, expected", [
    ("auto", [], "float32"),
    ("auto", [("H100", 9.0)], "mixed_bfloat16"),
    ("auto", [("A100", 8.0), ("T4", 7.5)], "mixed_float16"),  # the weakest GPU decides
    ("float32", [("H100", 9.0)], "float32"),
])
def test_precision_is_decided_per_device(requested, gpus, expected):
    assert resolve_precision(requested, gpus) == expected


def test_gpu_slots_put_k_workers_on_each_gpu_with_a_share_of_its_memory():
    slots, cap = plan_gpu_slots(2, 3, 80000)
    assert slots == ["0", "0", "0", "1", "1", "1"]
    assert cap == 24000
    assert plan_gpu_slots(1, 4, None) == (["0"] * 4, None)

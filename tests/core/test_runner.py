"""The runner: every trial ends with a status, nothing finished is lost or redone."""


import pytest

from suite.core import loader, registry
from suite.core.runner import run_study
from suite.core.store import TrialStore


@pytest.fixture
def broken_model(monkeypatch):
    """A model family that cannot be built, registered for one test only (contract tests see every family)."""
    def broken_for_tests(input_shape, num_classes, **kwargs):
        raise RuntimeError("this model cannot be built")

    monkeypatch.setitem(registry._REGISTRY["model"], "broken_for_tests", broken_for_tests)


def _study(studies_dir, **changes) -> loader.Study:
    study = loader.load_study(studies_dir / "tiny.yaml")
    return loader.Study(**{**study.__dict__, **changes})


def test_run_then_rerun_trains_nothing(tmp_path, studies_dir, synthetic_data):
    study = _study(studies_dir)
    store = TrialStore(tmp_path, study.name)
    first = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    assert first.ran == len(first.trials) == 4 and first.skipped == 0
    assert all(r["status"] == "ok" for r in first.records.values())
    assert all(r["history"][0]["epoch"] == 0 and r["final"]["test_accuracy"] is not None for r in first.records.values())
    second = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    assert second.ran == 0 and second.skipped == 4
    assert second.records == {k: r for k, r in TrialStore(tmp_path, study.name).load_records().records.items()}


def test_a_raising_trial_is_recorded_as_error_and_the_study_goes_on(tmp_path, studies_dir, synthetic_data,
                                                                   broken_model):
    study = _study(studies_dir, model={"family": "broken_for_tests", "depth": 1, "width": 4})
    store = TrialStore(tmp_path, study.name)
    report = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    statuses = [r["status"] for r in report.records.values()]
    assert statuses == ["error"] * 4
    assert all("cannot be built" in r["message"] for r in report.records.values())
    # a study whose every trial failed still gets a report that says so
    from suite.core import report as reports
    from suite.core.evaluation import evaluate

    summary = reports.build_study_report(evaluate(study, list(report.records.values())), study.profiles["smoke"],
                                         tmp_path / "out", 1.0, {"name": "synthetic"})
    assert summary["trials"] == {"error": 4}
    assert "cannot be built" in (tmp_path / "out" / study.name / "index.html").read_text()
    # errors are retried on a rerun (their cause may have been fixed), successes never
    assert run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False).ran == 4


def test_a_nan_loss_is_diverged_with_history_kept(tmp_path, studies_dir, synthetic_data):
    study = _study(studies_dir, training={"optimizer": "sgd", "learning_rate": 1e12, "lr_schedule": "constant", "batch_size": 64},
                   factors={"kernel_initializer": ["normal_1"]}, claims=())
    report = run_study(study, study.profiles["smoke"], synthetic_data, TrialStore(tmp_path, "tiny"), show_progress=False)
    (record,) = report.records.values()
    assert record["status"] == "diverged" and "non-finite loss in epoch 1" in record["message"]
    assert record["history"][0]["epoch"] == 0 and len(record["history"]) == 2
    assert record["final"]["test_loss"] is None  # non-finite, stored as null
    assert 0.0 <= record["final"]["test_accuracy"] <= 0.35  # what the broken net predicts: about chance


def test_corrupt_record_is_rerun(tmp_path, studies_dir, synthetic_data):
    study = _study(studies_dir)
    store = TrialStore(tmp_path, study.name)
    first = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    victim = store.path_for(first.trials[0].key)
    victim.write_text(victim.read_text()[:40])  # truncated, as by a full disk
    again = run_study(study, study.profiles["smoke"], synthetic_data, store, show_progress=False)
    assert again.ran == 1 and len(again.unreadable) == 1
    assert store.load_records().unreadable == []


def test_each_epoch_is_reported_to_the_progress_channel(studies_dir, synthetic_data):
    from suite.core.plan import plan_trials
    from suite.core.runner import run_one

    study = _study(studies_dir)
    trial = plan_trials(study, study.profiles["quick"], synthetic_data.fingerprint)[0]
    events = []
    channel = type("Channel", (), {"put": staticmethod(events.append)})()
    assert run_one(trial, synthetic_data, progress=channel)["status"] == "ok"
    assert events == [(trial.key, 1, 2), (trial.key, 2, 2)]

import json
import multiprocessing

import pytest

from suite.core.keys import RECORD_SCHEMA
from suite.core.store import StoreLockedError, TrialStore


def _record(key: str, **extra) -> dict:
    return {"key": key, "study": "s", "status": "ok", "final": {"test_accuracy": 0.5, "nan": float("nan")}, **extra}


def test_save_and_load_round_trip(tmp_path):
    store = TrialStore(tmp_path, "s")
    store.save_record(_record("abc"))
    loaded = store.load_records()
    assert list(loaded.records) == ["abc"] and not loaded.unreadable
    record = loaded.records["abc"]
    assert record["schema"] == RECORD_SCHEMA and record["final"]["nan"] is None
    assert not list(store.dir.glob(".tmp-*"))  # the temp file was renamed


def test_a_killed_write_leaves_a_temp_file_that_is_ignored_and_cleaned(tmp_path):
    store = TrialStore(tmp_path, "s")
    store.save_record(_record("good"))
    (store.dir / ".tmp-abc.part").write_text('{"key": "half')
    assert list(store.load_records().records) == ["good"] and not store.load_records().unreadable
    with store.lock():
        assert not list(store.dir.glob(".tmp-*"))


@pytest.mark.parametrize("content, reason", [
    ('{"key": "bad", "status": "o', "corrupt or truncated"),
    ("", "corrupt or truncated"),
    ('{"key": "other", "schema": 1}', "not a trial record"),
    ('{"key": "bad", "schema": 0, "status": "ok"}', "written by another suite version"),
])
def test_unreadable_records_are_reported_not_loaded(tmp_path, content, reason):
    store = TrialStore(tmp_path, "s")
    store.save_record(_record("good"))
    (store.dir / "bad.json").write_text(content)
    loaded = store.load_records()
    assert list(loaded.records) == ["good"]
    assert len(loaded.unreadable) == 1 and reason in loaded.unreadable[0][1]


def test_failed_write_leaves_no_partial_record(tmp_path):
    store = TrialStore(tmp_path, "s")
    with pytest.raises(TypeError):
        store.save_record(_record("x", final=object()))  # not JSON-serialisable
    assert not list(store.dir.glob("*.json")) and not list(store.dir.glob(".tmp-*"))


def _try_lock(root, queue):
    try:
        with TrialStore(root, "s").lock():
            queue.put("locked")
    except StoreLockedError as err:
        queue.put(str(err))


def test_second_run_on_the_same_store_is_refused(tmp_path):
    store = TrialStore(tmp_path, "s")
    queue = multiprocessing.get_context("spawn").Queue()
    with store.lock():
        process = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(str(tmp_path), queue))
        process.start()
        process.join(60)
        assert "in use by another run" in queue.get(timeout=5)
    process = multiprocessing.get_context("spawn").Process(target=_try_lock, args=(str(tmp_path), queue))
    process.start()
    process.join(60)
    assert queue.get(timeout=5) == "locked"


def test_records_are_plain_json(tmp_path):
    store = TrialStore(tmp_path, "s")
    stored = store.save_record(_record("k1"))
    assert json.loads(store.path_for("k1").read_text()) == stored

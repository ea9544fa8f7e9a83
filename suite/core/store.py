"""store: one self-describing JSON record per finished trial, written atomically.

Layout: <results>/<study>/<key>.json. A record is written to a temp file and renamed,
so a killed process leaves either a whole record or none. A record that cannot be read
(truncated, corrupt, another schema) is reported and its trial is run again. A lock
file keeps two runs from writing the same study's records at once.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.keys import RECORD_SCHEMA


class StoreLockedError(RuntimeError):
    """Another run holds this study's results directory."""


@dataclass
class LoadReport:
    records: dict = field(default_factory=dict)  # key -> record
    unreadable: list = field(default_factory=list)  # (path, reason)


def _clean(value):
    """JSON has no NaN: store non-finite floats as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class TrialStore:
    def __init__(self, root: str | Path, study: str):
        self.dir = Path(root) / study

    def path_for(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def save_record(self, record: dict) -> dict:
        """Write atomically (temp file in the same directory, fsync, rename); return the
        record as stored, so callers hold exactly what a later load would give."""
        self.dir.mkdir(parents=True, exist_ok=True)
        record = _clean({**record, "schema": RECORD_SCHEMA})
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".part")  # never matches *.json
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path_for(record["key"]))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return record

    def load_records(self) -> LoadReport:
        """Every readable record of this study; unreadable files are listed, not fatal."""
        report = LoadReport()
        if not self.dir.exists():
            return report
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                report.unreadable.append((str(path), f"corrupt or truncated ({err.__class__.__name__})"))
                continue
            if not isinstance(record, dict) or record.get("key") != path.stem:
                report.unreadable.append((str(path), "not a trial record of this suite"))
            elif record.get("schema") != RECORD_SCHEMA:
                report.unreadable.append((str(path), f"written by another suite version (schema "
                                                     f"{record.get('schema')}, this suite reads {RECORD_SCHEMA})"))
            else:
                report.records[record["key"]] = record
        return report

    @contextmanager
    def lock(self):
        """Exclusive lock for the duration of a run; a second run fails fast with a message."""
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StoreLockedError(f"{self.dir} is in use by another run of this study; "
                                   "wait for it to finish (or use another --results directory)") from None
        try:
            handle.write(str(os.getpid()))
            handle.flush()
            for stale in self.dir.glob(".tmp-*.part"):  # left by a killed run; no writer is active now
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

"""artifacts: trained models that several trials share (e.g. a pre-trained source backbone).

An artifact is a weights file named by the hash of its identity (what was trained, on
which data, with which settings and seed: never a path), under <results>/<study>/artifacts/.
It is built once, under a per-artifact file lock so parallel workers wait instead of
training it twice, written to a temp file and renamed; afterwards it is only loaded.
Beside the weights a JSON file keeps the builder's notes (e.g. the training history), so a
trial that loads the artifact reports the same as the trial that built it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path

from suite.core.keys import trial_key


class ArtifactStore:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.built: list[str] = []  # keys this process trained (tests check reuse with it)

    def path_for(self, identity: dict) -> Path:
        return self.dir / f"{trial_key(identity)}.weights.h5"

    def load_or_build(self, identity: dict, build: Callable, skeleton: Callable) -> tuple:
        """`build()` trains and returns (model, notes), notes a JSON-able dict; `skeleton()`
        returns the model untrained, to load into. Returns (model, notes)."""
        path = self.path_for(identity)
        notes_path = path.with_name(path.name.removesuffix(".weights.h5") + ".notes.json")
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker building it: wait, then load
            if path.exists():
                model = skeleton()
                model.load_weights(path)
                return model, json.loads(notes_path.read_text()) if notes_path.exists() else {}
            model, notes = build()
            tmp = self.dir / f".tmp-{os.getpid()}-{path.name}"
            notes_path.write_text(json.dumps(notes))  # before the weights: weights present means complete
            model.save_weights(tmp)
            os.replace(tmp, path)
            self.built.append(path.name)
            return model, notes

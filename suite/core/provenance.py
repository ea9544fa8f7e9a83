"""provenance: where and with what a result was produced (never part of a trial key)."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import suite

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty else "")


@lru_cache(maxsize=1)
def collect_provenance() -> dict:
    """Versions, commit and device of this process (imports Keras: call from the runner)."""
    from suite.core.backend import import_keras

    keras = import_keras()
    info = {
        "suite_version": suite.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "device": "CPU",
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            info["device"] = ", ".join(gpu.name for gpu in gpus)
    return info

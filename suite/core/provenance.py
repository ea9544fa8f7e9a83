"""provenance: where and with what a result was produced (never part of a trial key)."""

from __future__ import annotations

import os
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


def cpu_description() -> str:
    """"AMD EPYC (avx2 avx512f), 2 cores": the kind of CPU decides float32 kernels, so their rounding."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                model = value.strip()
            elif name.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    vector = " ".join(flag for flag in ("avx2", "avx512f") if flag in flags) or "no avx2"
    return f"{model} ({vector}), {os.cpu_count()} cores"


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
        "cpu": cpu_description(),
        "keras": keras.__version__,
        "backend": keras.config.backend(),
        "device": "CPU",
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "TensorFlow's default")  # suite.core.backend sets it
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            info["device"] = ", ".join(gpu.name for gpu in gpus)
    return info
